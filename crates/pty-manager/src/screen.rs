//! The screen model: what a person would see in a session's terminal.
//!
//! [`Screen`] wraps a `vt100` parser and adds what the detection engine and the console need on top
//! of the grid: the window title (OSC 0/2), the last OSC 7501 payload, whether a synchronized update
//! (`?2026h`) is open, replies to cursor-position queries, and a cheap count of the rows that
//! scrolled off since the current turn began. It needs no PTY: feed it bytes, take snapshots.

use std::collections::VecDeque;
use std::num::NonZeroU16;

use crate::ScreenSnapshot;
use crate::shadow::{Gate, Saved, Shadow, Widths};
use crate::skim::Skim;

/// Default number of scrolled-off rows kept as text by the screen model.
///
/// Rows are kept as plain text (what detection and turn output read), not as `vt100` cells: a
/// `vt100` row costs ~30 bytes per column, so BEHAVIOR.md's 10 000 rows would be ~36 MB per busy
/// session. 1 000 text rows cover what snapshots report (at most 1 000 rows) and the
/// 64 KiB turn output.
pub const DEFAULT_SCROLLBACK: usize = 1_000;

/// The most scrolled-off rows a [`ScreenSnapshot`] carries in `scrolled`.
pub const SNAPSHOT_SCROLLED_MAX: usize = 1_000;

/// Batches at least this big are considered for the flood fast path (see [`Screen::process`]).
pub(crate) const FAST_MIN: usize = 16 * 1024;

/// Deferred output parsed at once when it reaches this size (see [`Screen::feed`]); a flood of
/// lines is trimmed long before it (only one without line feeds gets there).
pub const FEED_MAX: usize = 4 << 20;

/// Deferred bytes before the skim's cut are dropped once there are at least this many (see
/// `Screen::trim`). Tests trim far more often, so that the random cases (tens of kilobytes)
/// cross many trims.
#[cfg(not(test))]
const TRIM_MIN: usize = 64 * 1024;
#[cfg(test)]
const TRIM_MIN: usize = 512;

/// A deferred buffer keeps its allocation for the next flood up to this size.
const FEED_KEEP_CAPACITY: usize = 256 * 1024;

/// The state `vt100` reports through callbacks, kept beside the grid.
#[derive(Debug, Default)]
struct Extras {
    title: String,
    osc7501: Option<String>,
    synchronized_update: bool,
    /// Bytes to write back to the application (query replies), drained by the owner.
    replies: Vec<u8>,
    /// Rows that scrolled off the main screen, as text, newest last (at most `keep`).
    scrolled: VecDeque<String>,
    keep: usize,
    /// Rows that ever scrolled off the main screen.
    scrolled_total: u64,
    /// Texts to record for the next scroll callbacks instead of the rows `vt100` scrolls:
    /// rows the fast path emulated that `vt100` only holds stale copies of.
    substitute: VecDeque<String>,
    scratch: String,
}

impl Extras {
    fn push_row(&mut self, row: String) {
        self.scrolled_total += 1;
        if self.keep == 0 {
            return;
        }
        if self.scrolled.len() == self.keep {
            self.scrolled.pop_front();
        }
        self.scrolled.push_back(row);
    }
}

impl vt100::Callbacks for Extras {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.title = String::from_utf8_lossy(title).into_owned();
    }

    fn unhandled_osc(&mut self, _: &mut vt100::Screen, params: &[&[u8]]) {
        if params.first() == Some(&&b"7501"[..]) {
            let payload = params[1..].join(&b';');
            self.osc7501 = Some(String::from_utf8_lossy(&payload).into_owned());
        }
    }

    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        match (i1, c) {
            // Cursor position report: the only query we answer (BEHAVIOR.md §2.2). DA1 (`CSI c`)
            // stays unanswered on purpose: the agent CLIs work without it, and answering would
            // make them switch key encodings we do not send.
            (None, 'n') if params.first().and_then(|p| p.first()) == Some(&6) => {
                let (row, col) = screen.cursor_position();
                self.replies
                    .extend_from_slice(format!("\x1b[{};{}R", row + 1, col + 1).as_bytes());
            }
            (Some(b'?'), 'h' | 'l') if params.iter().any(|p| p.first() == Some(&2026)) => {
                self.synchronized_update = c == 'h';
            }
            _ => {}
        }
    }

    fn on_scroll(&mut self, row: vt100::capture::RowContents<'_>, alternate: bool) {
        // The alternate screen has no scrollback: its scrolled rows are repaint artefacts.
        if alternate {
            return;
        }
        if let Some(text) = self.substitute.pop_front() {
            self.push_row(text);
            return;
        }
        if self.keep == 0 {
            self.scrolled_total += 1;
            return;
        }
        self.scratch.clear();
        let mut state = vt100::capture::BasicFormattedCaptureState::new();
        let _ = row.write_formatted_basic(&mut self.scratch, &mut state);
        let text = if self.scratch.contains('\x1b') {
            crate::ring::render_plain(self.scratch.as_bytes())
        } else {
            self.scratch.clone()
        };
        self.push_row(text.trim_end().to_owned());
    }
}

/// A terminal screen model fed with a session's output.
///
/// ```
/// use pty_manager::Screen;
/// let mut screen = Screen::new(80, 24);
/// screen.process(b"\x1b]0;my title\x07hello\r\nworld");
/// let snap = screen.snapshot();
/// assert_eq!(snap.title, "my title");
/// assert_eq!(snap.lines[0], "hello");
/// assert_eq!(snap.lines[1], "world");
/// assert_eq!(snap.cursor, (1, 5));
/// ```
pub struct Screen {
    parser: vt100::Parser<Extras>,
    /// `scrolled_total` when the turn mark was set.
    mark: u64,
    /// Parser state the fast path needs and `vt100` does not expose.
    gate: Gate,
    /// Character widths for the fast path.
    widths: Widths,
    /// The parser's saved cursor and pen, when the fast path knows them.
    saved: Option<Saved>,
    /// Bytes of floods that skipped the parser (see [`Screen::process`]).
    skipped_bytes: u64,
    /// Whether the fast path may be used (tests compare against full parsing).
    fast: bool,
    /// Times the parser panicked on output and was replaced (see [`Screen::process`]).
    resets: u64,
    /// Output given to [`Screen::feed`] and not parsed yet.
    pending: Vec<u8>,
    /// Follows `pending` while it stays in the fast subset (see [`crate::skim`]).
    skim: Option<Box<Skim>>,
    /// The visible rows with `pending` applied (see [`Screen::refresh_visible`]).
    view: Option<Box<View>>,
}

/// A second, throwaway parser that holds only the visible rows while the main one defers.
struct View {
    parser: vt100::Parser,
    /// Deferred bytes it reflects (it is current when that is all of them).
    at: usize,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (rows, cols) = self.parser.screen().size();
        f.debug_struct("Screen")
            .field("cols", &cols)
            .field("rows", &rows)
            .finish_non_exhaustive()
    }
}

fn nz(v: u16) -> NonZeroU16 {
    NonZeroU16::new(v).unwrap_or(NonZeroU16::MIN)
}

impl Screen {
    /// A blank screen of `cols` × `rows` (a zero is treated as 1) with the default scrollback.
    pub fn new(cols: u16, rows: u16) -> Self {
        Self::with_scrollback(cols, rows, DEFAULT_SCROLLBACK)
    }

    /// A blank screen keeping up to `scrollback` rows (as text) that scrolled off the top.
    pub fn with_scrollback(cols: u16, rows: u16, scrollback: usize) -> Self {
        let extras = Extras {
            keep: scrollback,
            ..Default::default()
        };
        Screen {
            // No vt100 scrollback: scrolled rows are captured as text by `on_scroll`.
            parser: vt100::Parser::new_with_callbacks(nz(rows), nz(cols), 0, extras),
            mark: 0,
            gate: Gate::new(nz(rows).get()),
            widths: Widths::default(),
            saved: None,
            skipped_bytes: 0,
            fast: true,
            resets: 0,
            pending: Vec::new(),
            skim: None,
            view: None,
        }
    }

    /// Feeds output bytes of the application. Query replies it produced are collected; take them
    /// with [`Screen::take_replies`].
    ///
    /// Flood fast path: `vt100` costs ~40 ns per byte, slower than a PTY delivers a flood. A
    /// large batch that starts between escape sequences on the main screen (no scroll region,
    /// no origin mode) first goes through a small emulator of the common subset of terminal
    /// output (text, CR/LF/BS/TAB, SGR colours, cursor up/down/forward/back, erase in line,
    /// save/restore cursor) that mirrors `vt100`'s rules exactly. When it finds a line start
    /// after which the rest of its part scrolls every row then on screen away without touching
    /// it again, `vt100` takes over there: it is given the cursor, pen and saved cursor, the
    /// rows scrolled off before that point are recorded from the emulator, the stale rows
    /// `vt100` scrolls off afterwards are recorded with the emulator's text, and `vt100` parses
    /// only the last screenful and whatever follows the first byte outside the subset. The
    /// visible screen (cells and attributes), cursor, pen, saved cursor, modes, title and the
    /// scrolled rows are the same as with full parsing (property-tested).
    ///
    /// Program output must never take the session (or the reactor thread with every other
    /// session) down: `vt100` 0.18 panics on some byte sequences (a character widened by U+FE0F
    /// near the right margin, then a cursor move). A panic while parsing is caught and the
    /// parser replaced by a blank one of the same size; the title, OSC 7501 payload and
    /// scrolled-off rows are kept, the next output repaints the grid, and
    /// [`Screen::parser_resets`] counts it.
    pub fn process(&mut self, bytes: &[u8]) {
        if self.pending.is_empty() {
            self.parse(bytes, None);
        } else {
            self.pending.extend_from_slice(bytes);
            self.flush();
        }
    }

    /// Takes output like [`Screen::process`] but may defer parsing it while it floods in: the
    /// accessors keep showing the state before the deferred bytes until [`Screen::flush`] (or
    /// [`Screen::process`]). Output outside the flood subset (anything but text, line controls,
    /// SGR, relative cursor moves, erase in line and save/restore cursor: a query, a title, a
    /// mode change) is parsed at once, so query replies are never late; so is output that
    /// reaches [`FEED_MAX`] bytes.
    ///
    /// Deferring is what makes floods cheap: when the deferred bytes are parsed, everything
    /// before the last line that is followed by a screenful plus the kept scrollback of scrolled
    /// rows is skipped (only the cursor, pen and saved cursor were followed through it), with
    /// the same resulting state as parsing every byte (property-tested). That part is dropped
    /// as the flood goes on, so a flood of lines holds about its last `rows + scrollback` lines.
    ///
    /// ```
    /// use pty_manager::Screen;
    /// let mut screen = Screen::new(80, 24);
    /// screen.feed(b"hello\r\nworld");
    /// screen.flush();
    /// assert_eq!(screen.lines()[1], "world");
    /// ```
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        if self.pending.is_empty() {
            self.skim = None;
            if self.fast {
                // The last parse ended inside a sequence (a read cut it): finish it first, so
                // that the skim starts between sequences.
                let k = self.gate.settle(&bytes[..bytes.len().min(4096)]);
                if k > 0 {
                    self.parse_settled(&bytes[..k]);
                    bytes = &bytes[k..];
                }
            }
            self.gate.alt = self.parser.screen().alternate_screen();
            if self.fast && self.gate.open() {
                let keep = self.parser.callbacks().keep;
                self.skim = Skim::start(self.parser.screen(), self.saved, keep).map(Box::new);
            }
            if self.skim.is_none() {
                self.parse(bytes, None);
                return;
            }
        }
        self.pending.extend_from_slice(bytes);
        let stopped = match self.skim.as_deref_mut() {
            Some(skim) => {
                let (pending, widths) = (&self.pending, &mut self.widths);
                // Program output must never take the reactor down: should the skim panic,
                // the deferred bytes are parsed without it.
                let followed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    skim.advance(pending, widths);
                    skim.stopped()
                }));
                followed.unwrap_or_else(|_| {
                    self.skim = None;
                    true
                })
            }
            None => true,
        };
        if stopped || self.pending.len() >= FEED_MAX {
            // Mid-flood: keep the buffer for the rest of it.
            self.parse_pending(true);
        } else {
            self.trim();
        }
    }

    /// Drops the deferred bytes before the skim's cut: nothing parses them any more (the cut
    /// only moves forward, and a view starts at or after it), so a long flood is held as its
    /// last `rows + scrollback` lines or so instead of everything since it began. That keeps
    /// the buffer in cache and spares the parse at [`FEED_MAX`] that a line flood used to
    /// reach every few megabytes. Trimming waits until the dead part is at least half the
    /// buffer, so each byte is moved at most about once.
    fn trim(&mut self) {
        let Some(skim) = self.skim.as_deref_mut() else {
            return;
        };
        let Some(at) = skim.cut().map(|c| c.at) else {
            return;
        };
        if at < TRIM_MIN || at < self.pending.len() / 2 {
            return;
        }
        self.pending.drain(..at);
        skim.rebase(at);
        if let Some(view) = self.view.as_deref_mut() {
            // A view from before the cut can no longer be current.
            view.at = view.at.checked_sub(at).unwrap_or(usize::MAX);
        }
        self.skipped_bytes += at as u64;
    }

    /// Parses the output [`Screen::feed`] deferred.
    pub fn flush(&mut self) {
        self.parse_pending(false);
    }

    /// Parses the deferred output; keeps a large buffer's allocation only if asked (a flood
    /// that goes on), so a quiet session does not hold megabytes.
    fn parse_pending(&mut self, keep_buffer: bool) {
        self.view = None;
        if self.pending.is_empty() {
            if !keep_buffer && self.pending.capacity() > FEED_KEEP_CAPACITY {
                self.pending = Vec::new();
            }
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let skim = self.skim.take();
        self.parse(&pending, skim.as_deref());
        pending.clear();
        if keep_buffer || pending.capacity() <= FEED_KEEP_CAPACITY {
            self.pending = pending;
        }
    }

    /// Brings what [`Screen::visible_snapshot`] shows up to date as cheaply as possible: with
    /// a screenful of scrolled lines deferred, only the bytes after the last line followed by a
    /// screenful of scrolls are parsed, into a throwaway grid (every row on screen before that
    /// line has scrolled off; the cursor, pen and saved cursor there are known from the skim),
    /// and the deferred bytes stay deferred for the kept scrollback. Otherwise it flushes. This
    /// is what lets a prompt printed right after a long burst be read within a fraction of a
    /// millisecond (property-tested against full parsing).
    pub fn refresh_visible(&mut self) {
        if self.pending.is_empty() || self.visible_current() {
            return;
        }
        let cut = self.skim.as_deref().and_then(|skim| {
            let m = skim.visible_cut()?;
            Some((m.at, skim.followed(), m.col, m.pen, m.view_saved?))
        });
        let Some((at, end, col, pen, saved)) = cut else {
            self.flush();
            return;
        };
        let (rows, cols) = self.parser.screen().size();
        let mut sync = Vec::with_capacity(64);
        if let Some((r, c, p)) = saved {
            sync.extend_from_slice(format!("\x1b[{};{}H", r + 1, c + 1).as_bytes());
            p.write_sgr(&mut sync);
            sync.extend_from_slice(b"\x1b7");
        }
        sync.extend_from_slice(format!("\x1b[{};{}H", rows, col + 1).as_bytes());
        pen.write_sgr(&mut sync);
        let view = self.view.get_or_insert_with(|| {
            Box::new(View {
                parser: vt100::Parser::new(rows, cols, 0),
                at: 0,
            })
        });
        let bytes = &self.pending[at..end];
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            view.parser.process(&sync);
            view.parser.process(bytes);
        }));
        match parsed {
            Ok(()) => view.at = self.pending.len(),
            Err(_) => self.flush(),
        }
    }

    /// Whether [`Screen::visible_snapshot`] reflects all output given so far.
    pub fn visible_current(&self) -> bool {
        self.pending.is_empty()
            || self
                .view
                .as_ref()
                .is_some_and(|v| v.at == self.pending.len())
    }

    /// Whether [`Screen::flush`] has work: deferred output, or a flood's buffer to free.
    pub fn needs_flush(&self) -> bool {
        !self.pending.is_empty() || self.pending.capacity() > FEED_KEEP_CAPACITY
    }

    /// Bytes given to [`Screen::feed`] and held for parsing (what a long flood skips is
    /// dropped as it goes, see [`Screen::feed`]).
    pub fn deferred(&self) -> usize {
        self.pending.len()
    }

    /// Parses `bytes`, skipping up to the skim's cut when it has one; a parser panic resets the
    /// grid (see [`Screen::process`]).
    fn parse(&mut self, bytes: &[u8], skim: Option<&Skim>) {
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut bytes = bytes;
            if let Some(cut) = skim.and_then(Skim::cut) {
                self.skip_to(cut);
                bytes = &bytes[cut.at..];
            }
            self.process_inner(bytes)
        }));
        if parsed.is_err() {
            self.replace_parser();
        }
    }

    /// Parses bytes the gate already followed (see [`Gate::settle`]).
    fn parse_settled(&mut self, bytes: &[u8]) {
        let parsed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.parser.process(bytes)));
        if parsed.is_err() {
            self.replace_parser();
        }
        if std::mem::take(&mut self.gate.saw_save) {
            self.saved = None;
        }
    }

    /// Puts the parser in the state the skim found at `cut` (see [`crate::skim`]): the rows on
    /// screen stay as they are, since all of them scroll off before anything reads them.
    fn skip_to(&mut self, cut: &crate::skim::Checkpoint) {
        let rows = self.size().1;
        let mut sync = Vec::with_capacity(64);
        if let Some((r, c, pen)) = cut.saved {
            sync.extend_from_slice(format!("\x1b[{};{}H", r + 1, c + 1).as_bytes());
            pen.write_sgr(&mut sync);
            sync.extend_from_slice(b"\x1b7");
            self.saved = cut.saved;
        }
        sync.extend_from_slice(format!("\x1b[{};{}H", rows, cut.col + 1).as_bytes());
        cut.pen.write_sgr(&mut sync);
        self.parser.process(&sync);
        self.parser.callbacks_mut().scrolled_total += cut.scrolls;
        self.skipped_bytes += cut.at as u64;
    }

    /// A blank parser of the same size in place of one that panicked, keeping what the callbacks
    /// collected (except a half-applied fast-path substitution).
    fn replace_parser(&mut self) {
        let (rows, cols) = self.parser.screen().size();
        let mut extras = std::mem::take(self.parser.callbacks_mut());
        extras.substitute.clear();
        extras.synchronized_update = false;
        self.parser = vt100::Parser::new_with_callbacks(rows, cols, 0, extras);
        self.gate = Gate::new(rows.get());
        self.saved = None;
        self.resets += 1;
    }

    /// How many times parsing panicked and the grid was reset (see [`Screen::process`]).
    pub fn parser_resets(&self) -> u64 {
        self.resets
    }

    fn process_inner(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        self.gate.alt = self.parser.screen().alternate_screen();
        if self.fast && bytes.len() >= FAST_MIN {
            // A batch that starts inside a sequence (the previous one was cut in it): let the
            // parser finish that sequence first.
            let k = self.gate.settle(&bytes[..bytes.len().min(4096)]);
            self.parser.process(&bytes[..k]);
            bytes = &bytes[k..];
            if std::mem::take(&mut self.gate.saw_save) {
                self.saved = None;
            }
        }
        if self.fast
            && bytes.len() >= FAST_MIN
            && self.gate.open()
            // Nothing can be skipped unless more than a screenful of lines follows.
            && bytes.iter().filter(|&&b| b == b'\n').count() > self.size().1 as usize
            && let Some(shadow) = Shadow::load(self.parser.screen(), self.saved, &mut self.widths)
        {
            let run = shadow.run(bytes);
            if let Some(at) = run.handover {
                let extras = self.parser.callbacks_mut();
                for row in run.scrolled {
                    extras.push_row(row);
                }
                extras.substitute = run.above.into();
                self.parser.process(&run.sync);
                self.parser.process(&bytes[at..run.consumed]);
                debug_assert!(self.parser.callbacks().substitute.is_empty());
                self.parser.callbacks_mut().substitute.clear();
                self.skipped_bytes += at as u64;
                self.saved = run.saved_end;
                bytes = &bytes[run.consumed..];
            }
        }
        self.parser.process(bytes);
        self.gate.scan(bytes);
        if std::mem::take(&mut self.gate.saw_save) {
            self.saved = None;
        }
    }

    /// Bytes the application asked for (cursor-position reports), to be written to its input.
    pub fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.parser.callbacks_mut().replies)
    }

    /// Whether replies are waiting in [`Screen::take_replies`].
    pub fn has_replies(&self) -> bool {
        !self.parser.callbacks().replies.is_empty()
    }

    /// Resizes the grid (a zero is treated as 1).
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.flush();
        self.parser.screen_mut().set_size(nz(rows), nz(cols));
        self.gate.resized(nz(rows).get());
        self.saved = None;
    }

    /// `(cols, rows)`.
    pub fn size(&self) -> (u16, u16) {
        let (rows, cols) = self.parser.screen().size();
        (cols.get(), rows.get())
    }

    /// Starts a new turn: rows that scroll off from now on are reported in
    /// [`ScreenSnapshot::scrolled`]; earlier ones no longer are.
    pub fn mark_turn_start(&mut self) {
        self.flush();
        self.mark = self.parser.callbacks().scrolled_total;
    }

    /// How many rows scrolled off the top since [`Screen::mark_turn_start`] (including rows no
    /// longer kept).
    pub fn scrolled_since_mark(&self) -> u64 {
        self.parser.callbacks().scrolled_total - self.mark
    }

    /// Total rows that scrolled off the top of the main screen since creation.
    pub fn scrolled_total(&self) -> u64 {
        self.parser.callbacks().scrolled_total
    }

    /// Bytes that took the flood fast path of [`Screen::process`] (for metrics and tests).
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped_bytes
    }

    /// The window title set with OSC 0 or OSC 2 (empty when never set).
    pub fn title(&self) -> &str {
        &self.parser.callbacks().title
    }

    /// Whether a synchronized update (`?2026h`) is open.
    pub fn synchronized_update(&self) -> bool {
        self.parser.callbacks().synchronized_update
    }

    /// Whether the application enabled bracketed paste (`?2004h`).
    pub fn bracketed_paste(&self) -> bool {
        self.parser.screen().bracketed_paste()
    }

    /// Whether cursor keys are in application mode (`?1h`).
    pub fn application_cursor(&self) -> bool {
        self.parser.screen().application_cursor()
    }

    /// Whether the alternate screen is active.
    pub fn alternate_screen(&self) -> bool {
        self.parser.screen().alternate_screen()
    }

    /// Cursor `(row, col)`, 0-based.
    pub fn cursor(&self) -> (u16, u16) {
        self.parser.screen().cursor_position()
    }

    /// The text of visible row `row` with trailing blanks trimmed (empty past the last row).
    pub fn row_text(&self, row: u16) -> String {
        let screen = self.parser.screen();
        let (_, cols) = screen.size();
        screen
            .rows(0, cols.get())
            .nth(row as usize)
            .map(|r| r.trim_end().to_owned())
            .unwrap_or_default()
    }

    /// The visible rows, top to bottom, trailing blanks trimmed.
    pub fn lines(&self) -> Vec<String> {
        let screen = self.parser.screen();
        let (_, cols) = screen.size();
        screen
            .rows(0, cols.get())
            .map(|r| r.trim_end().to_owned())
            .collect()
    }

    /// Up to `max` rows that scrolled off since the turn mark and are still kept, oldest first.
    pub fn scrolled_rows(&self, max: usize) -> Vec<String> {
        let kept = &self.parser.callbacks().scrolled;
        let want = (self.scrolled_since_mark().min(kept.len() as u64) as usize).min(max);
        kept.range(kept.len() - want..).cloned().collect()
    }

    /// Everything a person would read now, as plain data.
    ///
    /// While output is deferred ([`Screen::feed`]) it shows the state after the last
    /// [`Screen::flush`]: call that first for the current one.
    pub fn snapshot(&self) -> ScreenSnapshot {
        let scrolled = self.scrolled_rows(SNAPSHOT_SCROLLED_MAX);
        ScreenSnapshot {
            scrolled,
            ..self.visible_of(self.parser.screen())
        }
    }

    /// [`snapshot`](Self::snapshot) without the scrolled-off rows (`scrolled` is empty): what a
    /// detection pass reads when no rule looks at the tail, at a cost independent of how much
    /// output scrolled by.
    ///
    /// While output is deferred it shows the state after the last [`Screen::flush`] or
    /// [`Screen::refresh_visible`].
    pub fn visible_snapshot(&self) -> ScreenSnapshot {
        match &self.view {
            Some(v) if v.at == self.pending.len() => self.visible_of(v.parser.screen()),
            _ => self.visible_of(self.parser.screen()),
        }
    }

    /// The visible snapshot with rows and cursor from `grid`: the main parser's, or the view's
    /// (everything else is outside the flood subset, so deferred bytes cannot have changed it).
    fn visible_of(&self, grid: &vt100::Screen) -> ScreenSnapshot {
        let scrolled = Vec::new();
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        let extras = self.parser.callbacks();
        ScreenSnapshot {
            cols: cols.get(),
            rows: rows.get(),
            lines: grid
                .rows(0, cols.get())
                .map(|r| r.trim_end().to_owned())
                .collect(),
            cursor: grid.cursor_position(),
            cursor_visible: !screen.hide_cursor(),
            title: extras.title.clone(),
            alternate_screen: screen.alternate_screen(),
            bracketed_paste: screen.bracketed_paste(),
            application_cursor: screen.application_cursor(),
            synchronized_update: extras.synchronized_update,
            scrolled,
            osc7501: extras.osc7501.clone(),
        }
    }

    /// Bytes that paint the current screen (contents, attributes, cursor, input modes and title)
    /// on a blank terminal of the same size: what a late-joining viewer gets before the live stream.
    pub fn formatted_state(&self) -> Vec<u8> {
        let screen = self.parser.screen();
        let mut out = Vec::new();
        let title = &self.parser.callbacks().title;
        if !title.is_empty() {
            // Control characters cannot be part of a title sequence.
            let clean: String = title.chars().filter(|c| !c.is_control()).collect();
            out.extend_from_slice(format!("\x1b]2;{clean}\x07").as_bytes());
        }
        if screen.alternate_screen() {
            out.extend_from_slice(b"\x1b[?1049h");
        }
        out.extend_from_slice(screen.state_formatted().as_bytes());
        out
    }

    /// The underlying `vt100` screen, for callers that need cell attributes.
    pub fn vt100(&self) -> &vt100::Screen {
        self.parser.screen()
    }
}

#[cfg(test)]
impl Screen {
    /// A screen that always parses everything (the reference for fast-path tests).
    pub(crate) fn full_parsing(cols: u16, rows: u16, scrollback: usize) -> Screen {
        Screen {
            fast: false,
            ..Screen::with_scrollback(cols, rows, scrollback)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output without a line feed has no cut, so nothing can be dropped: it is parsed at the
    /// cap, the buffer is kept while the flood goes on and freed by a quiet flush.
    #[test]
    fn a_flood_without_lines_is_parsed_at_the_cap_and_its_buffer_freed_by_a_flush() {
        let mut s = Screen::new(80, 24);
        let mut full = Screen::full_parsing(80, 24, DEFAULT_SCROLLBACK);
        let text = b"0123456789 abcdefghijklmnopqrstuvwxyz \x1b[1;32mgreen\x1b[0m ";
        let chunk: Vec<u8> = text.iter().copied().cycle().take(64 * 1024).collect();
        let (mut fed, mut capped) = (0, false);
        while fed < FEED_MAX + chunk.len() {
            let before = s.deferred();
            s.feed(&chunk);
            full.process(&chunk);
            fed += chunk.len();
            assert!(s.deferred() < FEED_MAX, "parsed at the cap");
            capped |= s.deferred() < before;
        }
        assert!(capped, "never reached the cap");
        assert!(s.needs_flush());
        s.flush();
        assert_eq!(s.deferred(), 0);
        assert!(!s.needs_flush(), "a quiet screen holds no flood buffer");
        assert_eq!(s.snapshot(), full.snapshot());
        assert_eq!(s.scrolled_total(), full.scrolled_total());
    }

    /// A flood of lines holds only what it may still parse: the part before the skim's cut is
    /// dropped as it goes (never reaching the cap), and the result is that of full parsing,
    /// views included.
    #[test]
    fn a_line_flood_drops_what_it_skips() {
        let (cols, rows, keep) = (80u16, 24u16, 300usize);
        let mut s = Screen::with_scrollback(cols, rows, keep);
        let mut full = Screen::full_parsing(cols, rows, keep);
        let mut held = 0;
        for i in 0..60_000 {
            let line = format!(
                "\x1b[3{}m{i:06}\x1b[0m line of a flood {}\r\n",
                i % 8,
                "x".repeat(i % 70)
            );
            s.feed(line.as_bytes());
            full.process(line.as_bytes());
            held = held.max(s.deferred());
            if i % 9_999 == 0 {
                s.refresh_visible();
                assert_eq!(s.visible_snapshot(), full.visible_snapshot(), "line {i}");
            }
        }
        // Each line is at most ~100 bytes: the buffer held a few times the lines the cut
        // keeps, never megabytes.
        let most = (rows as usize + keep) * 100;
        assert!(held <= 2 * most + TRIM_MIN, "held {held} bytes");
        assert!(
            s.skipped_bytes() > 4_000_000,
            "skipped {}",
            s.skipped_bytes()
        );
        s.flush();
        assert_eq!(s.snapshot(), full.snapshot());
        assert_eq!(s.scrolled_total(), full.scrolled_total());
        assert_eq!(s.scrolled_rows(5000), full.scrolled_rows(5000));
    }

    #[test]
    fn title_from_osc_0_and_2() {
        let mut s = Screen::new(40, 5);
        s.process(b"\x1b]0;first\x07");
        assert_eq!(s.title(), "first");
        s.process(b"\x1b]2;second\x1b\\");
        assert_eq!(s.snapshot().title, "second");
    }

    #[test]
    fn osc_7501_payload_captured() {
        let mut s = Screen::new(40, 5);
        s.process(b"\x1b]7501;state=working;x=1\x07");
        assert_eq!(s.snapshot().osc7501.as_deref(), Some("state=working;x=1"));
    }

    #[test]
    fn cursor_position_query_is_answered_and_da1_is_not() {
        let mut s = Screen::new(40, 5);
        s.process(b"ab\r\ncd\x1b[6n");
        assert_eq!(s.take_replies(), b"\x1b[2;3R");
        s.process(b"\x1b[c\x1b[0c");
        assert!(s.take_replies().is_empty());
    }

    #[test]
    fn synchronized_output_tracked() {
        let mut s = Screen::new(40, 5);
        s.process(b"\x1b[?2026h");
        assert!(s.synchronized_update());
        s.process(b"\x1b[?25;2026l");
        assert!(!s.synchronized_update());
    }

    #[test]
    fn modes_tracked() {
        let mut s = Screen::new(40, 5);
        s.process(b"\x1b[?2004h\x1b[?1h\x1b[?1049h");
        let snap = s.snapshot();
        assert!(snap.bracketed_paste && snap.application_cursor && snap.alternate_screen);
        s.process(b"\x1b[?2004l\x1b[?1l\x1b[?1049l");
        let snap = s.snapshot();
        assert!(!snap.bracketed_paste && !snap.application_cursor && !snap.alternate_screen);
    }

    #[test]
    fn scrolled_rows_since_mark() {
        let mut s = Screen::with_scrollback(20, 3, 5);
        s.process(b"old1\r\nold2\r\nold3\r\nold4\r\n");
        s.mark_turn_start();
        assert!(s.snapshot().scrolled.is_empty());
        s.process(b"new1\r\nnew2\r\nnew3\r\nnew4\r\n");
        // Screen shows new3, new4, blank; old3, old4, new1, new2 scrolled off since the mark.
        assert_eq!(s.snapshot().scrolled, vec!["old3", "old4", "new1", "new2"]);
        assert_eq!(s.scrolled_since_mark(), 4);
        // Beyond the scrollback capacity only the newest kept rows come back, count stays exact.
        for i in 0..10 {
            s.process(format!("more{i}\r\n").as_bytes());
        }
        assert_eq!(s.scrolled_since_mark(), 14);
        let rows = s.snapshot().scrolled;
        assert_eq!(rows.len(), 5);
        assert_eq!(rows.last().map(String::as_str), Some("more7"));
        // The visible screen is unchanged by reading scrollback.
        assert_eq!(s.lines()[0], "more8");
    }

    #[test]
    fn resize_changes_grid() {
        let mut s = Screen::new(120, 40);
        s.resize(80, 24);
        assert_eq!(s.size(), (80, 24));
        let snap = s.snapshot();
        assert_eq!((snap.cols, snap.rows, snap.lines.len()), (80, 24, 24));
    }

    #[test]
    fn formatted_state_repaints_the_same_screen() {
        let mut s = Screen::new(30, 4);
        s.process(b"\x1b]2;t\x07\x1b[31mred\x1b[0m plain\r\nline two");
        let mut copy = Screen::new(30, 4);
        copy.process(&s.formatted_state());
        assert_eq!(copy.lines(), s.lines());
        assert_eq!(copy.cursor(), s.cursor());
        assert_eq!(copy.title(), "t");
    }

    /// A flood with colour, a title and a CR-overwritten progress line around a long plain run.
    fn flood() -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"\x1b]2;building\x07\x1b[1;32mstart\x1b[0m\r\n\x1b[?2004h");
        for i in 0..3000 {
            let line = format!(
                "{i:05} plain output line with\ttabs and some text {}\r\n",
                "x".repeat(i % 150)
            );
            out.extend_from_slice(line.as_bytes());
            if i % 997 == 0 {
                out.extend_from_slice(b"progress 10%\rprogress 20%\r\n");
            }
        }
        out.extend_from_slice(b"\x1b[31mred tail\x1b[0m\r\n\x1b]2;done\x07pty> ");
        out
    }

    #[test]
    fn flood_fast_path_matches_full_parsing() {
        let data = flood();
        let mut fast = Screen::new(120, 40);
        let mut slow = Screen::new(120, 40);
        for chunk in data.chunks(64 * 1024) {
            fast.process(chunk);
        }
        for chunk in data.chunks(1000) {
            slow.process(chunk);
        }
        assert!(fast.skipped_bytes() > 0, "the fast path did not engage");
        assert_eq!(slow.skipped_bytes(), 0);
        assert_eq!(fast.lines(), slow.lines());
        assert_eq!(fast.cursor(), slow.cursor());
        assert_eq!(fast.title(), "done");
        assert!(fast.bracketed_paste());
        assert_eq!(fast.formatted_state(), slow.formatted_state());
        assert_eq!(fast.scrolled_total(), slow.scrolled_total());
        assert_eq!(fast.scrolled_rows(5000), slow.scrolled_rows(5000));
    }

    #[test]
    fn fast_path_never_skips_escape_sequences() {
        // The same flood split so that a chunk boundary falls inside an OSC: the next chunk
        // must not be skipped as plain text.
        let mut data = flood();
        data.splice(0..0, b"\x1b]2;half".iter().copied());
        let mut fast = Screen::new(120, 40);
        let mut slow = Screen::new(120, 40);
        fast.process(&data[..5]);
        fast.process(&data[5..]);
        slow.process(&data);
        assert_eq!(fast.lines(), slow.lines());
        assert_eq!(fast.title(), slow.title());
    }

    /// Output that makes `vt100` 0.18 panic (found by random testing: a heart widened by
    /// U+FE0F at the margin of a 5-column screen, then cursor-up and more text) resets the grid
    /// instead of unwinding into the reactor; the title and scrolled rows survive and later
    /// output is drawn.
    #[test]
    fn a_parser_panic_resets_the_grid_and_keeps_the_rest() {
        let bad = "\n\n\n\t\u{2764}\u{fe0f}\x1b[1A\u{e9} b";
        let raw = std::panic::catch_unwind(|| {
            let mut p = vt100::Parser::new(nz(4), nz(5), 0);
            p.process(bad.as_bytes());
        });
        assert!(
            raw.is_err(),
            "vt100 no longer panics here: drop this guard's test input"
        );
        let mut s = Screen::new(5, 4);
        s.process(b"\x1b]0;kept\x07one\r\ntwo\r\nthree\r\nfour\r\nfive");
        let scrolled = s.scrolled_total();
        s.process(bad.as_bytes());
        assert_eq!(s.parser_resets(), 1);
        assert_eq!(s.title(), "kept");
        assert!(s.scrolled_total() >= scrolled);
        s.process(b"\x1b[Hafter");
        assert_eq!(s.lines()[0], "after");
        assert_eq!(s.size(), (5, 4));
    }
}
