//! Cursor-only tracking of flood output, so that the cell work of rows that scroll away unseen
//! can be skipped.
//!
//! [`crate::Screen::feed`] defers parsing while output floods in. A [`Skim`] follows the
//! deferred bytes with the same rules as [`crate::shadow`] (the `vt100`-exact subset: text,
//! CR/LF/VT/FF/BS/TAB/BEL, SGR, cursor up/down/forward/back, erase in line, DECSC/DECRC) but
//! keeps only the cursor, the pen, the saved cursor and a count of scrolled rows, no cells.
//! At every line feed that scrolls it records a [`Checkpoint`]. When the deferred bytes are
//! parsed, everything before the latest checkpoint followed by at least `rows + scrollback`
//! more scrolls can be skipped: every row on screen at that point scrolls off before the end,
//! and so do the next `scrollback` rows, so none of them is visible at the end or among the
//! kept scrolled-off rows. The parser only needs the checkpoint's cursor, pen and saved cursor
//! (and the count of rows that scrolled off before it).

use std::collections::VecDeque;

use crate::shadow::{
    CsiMiss, Pen, Saved, Widths, column_after, decode_utf8, parse_csi, printable_run,
};

/// Scrolls between recorded checkpoints: recording one (~100 bytes) at every line feed was ~4% of
/// the skim's work on coloured output.
const MARK_EVERY: u64 = 4;

/// The state at a line feed that scrolled, in the bytes the skim followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// Offset just after the line feed.
    pub(crate) at: usize,
    /// Rows that scrolled off before `at` (since the skim started).
    pub(crate) scrolls: u64,
    /// Cursor column at `at` (the cursor is on the bottom row; always `< cols`).
    pub(crate) col: usize,
    pub(crate) pen: Pen,
    /// The saved cursor, when a DECSC was followed before `at` (`col < cols`).
    pub(crate) saved: Option<Saved>,
    /// For a view of the visible rows only (see [`Skim::visible_cut`]): the saved cursor to
    /// set (`Some(None)`: unknown, and then no DECRC follows without a DECSC first, or the skim
    /// would have stopped); `None` when it cannot be set (a pending-wrap column).
    pub(crate) view_saved: Option<Option<Saved>>,
}

/// Outcome of one step.
enum Step {
    /// Bytes used.
    Ok(usize),
    /// The bytes end inside a sequence: wait for more.
    More,
    /// Outside the subset: stop for good.
    Stop,
}

/// Follows deferred output from the parser's state (see the module docs).
#[derive(Debug)]
pub(crate) struct Skim {
    rows: usize,
    cols: usize,
    row: usize,
    col: usize,
    pen: Pen,
    /// The saved cursor when known; DECRC with it unknown stops the skim.
    saved: Option<Saved>,
    /// Whether a DECSC was followed (the parser's saved cursor must then be set at a cut).
    saved_here: bool,
    scrolls: u64,
    /// Bytes of the deferred buffer followed so far.
    at: usize,
    /// Something outside the subset starts at `at`.
    stopped: bool,
    /// Scrolls a cut needs after it.
    need: u64,
    /// Usable checkpoints, oldest first: at most one followed by `need` scrolls (the front),
    /// then the ones still waiting for enough scrolls.
    marks: VecDeque<Checkpoint>,
    /// The last non-ASCII character printed (its UTF-8 bytes) and its width.
    /// Its bytes as a little-endian word (the bytes past its length zero), and its length.
    last_char: u32,
    last_len: usize,
    last_width: usize,
}

impl Skim {
    /// A skim starting in the parser's current state (the caller checked it is between
    /// sequences on the main screen, with no scroll region and no origin mode); `None` when the
    /// screen is too small to model. `keep` is how many scrolled-off rows the screen keeps.
    pub(crate) fn start(screen: &vt100::Screen, saved: Option<Saved>, keep: usize) -> Option<Skim> {
        let (rows, cols) = screen.size();
        let (rows, cols) = (rows.get() as usize, cols.get() as usize);
        if rows < 3 || cols < 2 || screen.alternate_screen() {
            return None;
        }
        let (row, col) = screen.cursor_position();
        Some(Skim {
            rows,
            cols,
            row: row as usize,
            col: col as usize,
            pen: Pen::of_screen(screen),
            saved,
            saved_here: false,
            scrolls: 0,
            at: 0,
            stopped: false,
            need: (rows + keep) as u64,
            marks: VecDeque::new(),
            // No character yet: a word no byte can match.
            last_char: 0x100,
            last_len: 1,
            last_width: 1,
        })
    }

    /// Whether the skim met something outside the subset (it follows nothing more).
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// The latest checkpoint followed by enough scrolls to skip everything before it.
    pub(crate) fn cut(&self) -> Option<&Checkpoint> {
        self.marks
            .front()
            .filter(|m| self.scrolls - m.scrolls >= self.need)
    }

    /// The latest checkpoint followed by at least a screenful of scrolls: every row on screen
    /// there is gone at the end, so the visible rows at the end follow from its cursor, pen and
    /// saved cursor alone (the kept scrollback does not).
    pub(crate) fn visible_cut(&self) -> Option<&Checkpoint> {
        let rows = self.rows as u64;
        self.marks
            .iter()
            .rev()
            .find(|m| self.scrolls - m.scrolls >= rows)
    }

    /// The first `d` bytes of the deferred buffer were dropped (`d` is at most the cut's
    /// offset): offsets now count from there.
    pub(crate) fn rebase(&mut self, d: usize) {
        debug_assert!(self.marks.front().is_some_and(|m| m.at >= d));
        self.at -= d;
        for m in &mut self.marks {
            m.at -= d;
        }
    }

    /// Bytes of the deferred buffer followed so far (the rest is an incomplete sequence).
    pub(crate) fn followed(&self) -> usize {
        self.at
    }

    /// Follows `bytes` (the whole deferred buffer; the part already followed is not read again).
    pub(crate) fn advance(&mut self, bytes: &[u8], widths: &mut Widths) {
        if self.stopped {
            return;
        }
        let mut i = self.at;
        while let Some(&b) = bytes.get(i) {
            if (0x20..0x7f).contains(&b) {
                let k = printable_run(&bytes[i..]);
                self.print(k, 1);
                i += k;
                continue;
            }
            let step = match b {
                b'\n' | 0x0b | 0x0c => {
                    if self.lf() && self.col < self.cols {
                        self.mark(i + 1);
                    }
                    Step::Ok(1)
                }
                b'\r' | 0x08 | b'\t' | 0x07 | 0x0e | 0x0f => {
                    self.col = column_after(b, self.col, self.cols);
                    Step::Ok(1)
                }
                0x1b => match bytes.get(i + 1) {
                    None => Step::More,
                    Some(b'[') => self.csi(&bytes[i..]),
                    Some(b'7') => {
                        self.saved = Some((self.row, self.col, self.pen));
                        self.saved_here = true;
                        Step::Ok(2)
                    }
                    Some(b'8') => match self.saved {
                        Some((r, c, p)) => {
                            (self.row, self.col, self.pen) = (r, c, p);
                            Step::Ok(2)
                        }
                        None => Step::Stop,
                    },
                    Some(_) => Step::Stop,
                },
                // Bars and spinners repeat one character: reuse its width.
                0x80.. if self.same_char(&bytes[i..]) => {
                    let len = self.last_len;
                    let k = periodic_prefix(&bytes[i..], len) / len;
                    self.print(k, self.last_width);
                    Step::Ok(k * len)
                }
                0x80.. => match decode_utf8(&bytes[i..]) {
                    Some((ch, len)) => match widths.get(ch) {
                        Some(w) if w <= self.cols => {
                            self.print(1, w);
                            self.last_char = word(&bytes[i..i + len]);
                            (self.last_len, self.last_width) = (len, w);
                            Step::Ok(len)
                        }
                        _ => Step::Stop,
                    },
                    None if utf8_prefix(&bytes[i..]) => Step::More,
                    None => Step::Stop,
                },
                _ => Step::Stop,
            };
            match step {
                Step::Ok(k) => i += k,
                Step::More => break,
                Step::Stop => {
                    self.stopped = true;
                    break;
                }
            }
        }
        self.at = i;
    }

    /// Whether `b` starts with the last non-ASCII character (compared by hand: a `memcmp`
    /// call per character cost more than decoding it).
    #[inline]
    fn same_char(&self, b: &[u8]) -> bool {
        let n = self.last_len;
        match b.first_chunk::<4>() {
            Some(w) => u32::from_le_bytes(*w) & (u32::MAX >> (32 - 8 * n)) == self.last_char,
            None => b.len() >= n && word(&b[..n]) == self.last_char,
        }
    }

    /// `k` characters of width `w`: `vt100` wraps before a character that does not fit.
    #[inline]
    fn print(&mut self, k: usize, w: usize) {
        // Most runs fit in the row.
        if self.col + k * w <= self.cols {
            self.col += k * w;
        } else {
            self.print_wrapping(k, w);
        }
    }

    #[inline(never)]
    fn print_wrapping(&mut self, mut k: usize, w: usize) {
        while k > 0 {
            if self.col + w > self.cols {
                self.col = 0;
                self.lf();
            }
            // `w` is 1 or 2: a shift, not a division.
            let take = ((self.cols - self.col) >> (w - 1)).min(k);
            self.col += take * w;
            k -= take;
        }
    }

    /// `vt100`'s `row_inc_scroll(1)` without a scroll region; returns whether it scrolled.
    fn lf(&mut self) -> bool {
        if self.row + 1 < self.rows {
            self.row += 1;
            false
        } else {
            self.scrolls += 1;
            true
        }
    }

    fn mark(&mut self, at: usize) {
        // Any checkpoint followed by enough scrolls is a valid cut; one every `MARK_EVERY`
        // scrolls costs a cut or view at most that many lines more to parse.
        if self
            .marks
            .back()
            .is_some_and(|m| self.scrolls - m.scrolls < MARK_EVERY)
        {
            return;
        }
        let saved = if self.saved_here {
            match self.saved {
                // A pending-wrap column cannot be set with a cursor move.
                Some(s) if s.1 < self.cols => Some(s),
                _ => return,
            }
        } else {
            None
        };
        let view_saved = match self.saved {
            Some(s) if s.1 >= self.cols => None,
            known => Some(known),
        };
        self.marks.push_back(Checkpoint {
            at,
            scrolls: self.scrolls,
            col: self.col,
            pen: self.pen,
            saved,
            view_saved,
        });
        while self
            .marks
            .get(1)
            .is_some_and(|m| self.scrolls - m.scrolls >= self.need)
        {
            self.marks.pop_front();
        }
    }

    /// One CSI sequence at `b[0] == ESC`, `b[1] == '['`, with the rules of
    /// [`crate::shadow::parse_csi`] (at most 16 parameters, none empty or over 9999, no
    /// private or intermediate bytes), each byte read once.
    #[inline]
    fn csi(&mut self, b: &[u8]) -> Step {
        // Most sequences of a flood have no parameter or one of one or two digits (`ESC[0m`,
        // `ESC[1A`, `ESC[K`, `ESC[36m`): those are read with a few loads.
        let final_byte = |x: u8| (0x40..=0x7e).contains(&x);
        let digit = |x: u8| x.wrapping_sub(b'0') < 10;
        match *b {
            [_, _, f, ..] if final_byte(f) => return self.csi_apply(&[], f, 3),
            [_, _, d, f, ..] if digit(d) && final_byte(f) => {
                return self.csi_apply(&[u16::from(d - b'0')], f, 4);
            }
            [_, _, d, e, f, ..] if digit(d) && digit(e) && final_byte(f) => {
                let v = u16::from(d - b'0') * 10 + u16::from(e - b'0');
                return self.csi_apply(&[v], f, 5);
            }
            _ => {}
        }
        self.csi_long(b)
    }

    /// [`Skim::csi`] for any other form: the shadow emulator's reader, same rules.
    fn csi_long(&mut self, b: &[u8]) -> Step {
        let mut params = [0u16; 16];
        match parse_csi(b, &mut params) {
            Ok((n, fin, len)) => self.csi_apply(&params[..n], fin, len),
            Err(CsiMiss::Incomplete) => Step::More,
            Err(CsiMiss::Other) => Step::Stop,
        }
    }

    /// Applies a CSI sequence of `len` bytes.
    #[inline(always)]
    fn csi_apply(&mut self, params: &[u16], fin: u8, len: usize) -> Step {
        let n = params.len();
        let first = |d: u16| match params.first() {
            None | Some(0) => d as usize,
            Some(&v) => v as usize,
        };
        match fin {
            b'm' => self.pen.sgr(params),
            _ if n > 1 => return Step::Stop,
            b'A' => self.row = self.row.saturating_sub(first(1)),
            b'B' => self.row = (self.row + first(1)).min(self.rows - 1),
            b'C' => self.col = (self.col + first(1)).min(self.cols - 1),
            b'D' => self.col = self.col.saturating_sub(first(1)),
            // Erase in line leaves the cursor where it is.
            b'K' if first(0) <= 2 => {}
            _ => return Step::Stop,
        }
        Step::Ok(len)
    }
}

/// The length of the longest prefix of `b` that repeats its first `p` bytes (`b[j] == b[j - p]`
/// for every `j` from `p` on), at least `p` when `b` has that many; eight bytes compared at a
/// time, since a bar is dozens of one character.
#[inline]
fn periodic_prefix(b: &[u8], p: usize) -> usize {
    let mut j = p;
    while let (Some(x), Some(y)) = (
        b.get(j..).and_then(<[u8]>::first_chunk::<8>),
        b.get(j - p..).and_then(<[u8]>::first_chunk::<8>),
    ) {
        let d = u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y);
        if d != 0 {
            return j + (d.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while b.get(j).is_some_and(|&x| x == b[j - p]) {
        j += 1;
    }
    j.min(b.len())
}

/// Up to four bytes as a little-endian word (missing bytes zero).
#[inline]
fn word(b: &[u8]) -> u32 {
    b.iter().rev().fold(0, |w, &x| w << 8 | u32::from(x))
}

/// Whether `b` (starting with a byte >= 0x80) is the valid start of a UTF-8 sequence that the
/// bytes end inside of.
fn utf8_prefix(b: &[u8]) -> bool {
    let len = match b[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return false,
    };
    b.len() < len && b[1..].iter().all(|c| (0x80..0xc0).contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skim_of(cols: u16, rows: u16, keep: usize, data: &[u8]) -> Skim {
        let p = vt100::Parser::new(
            std::num::NonZeroU16::new(rows).unwrap_or(std::num::NonZeroU16::MIN),
            std::num::NonZeroU16::new(cols).unwrap_or(std::num::NonZeroU16::MIN),
            0,
        );
        let mut s = Skim::start(p.screen(), None, keep).expect("a modelled screen");
        s.advance(data, &mut Widths::default());
        s
    }

    #[test]
    fn follows_the_cursor_like_the_parser() {
        let data = b"ab\r\ncd\x1b[2Aef\x1b[1;31mx\x1b[3Cy\x1b[K\t\x08z\xe2\x96\x88";
        let s = skim_of(20, 5, 0, data);
        let mut p = vt100::Parser::new(
            std::num::NonZeroU16::new(5).unwrap_or(std::num::NonZeroU16::MIN),
            std::num::NonZeroU16::new(20).unwrap_or(std::num::NonZeroU16::MIN),
            0,
        );
        p.process(data);
        let (r, c) = p.screen().cursor_position();
        assert_eq!((s.row, s.col), (r as usize, c as usize));
        assert_eq!(s.pen, Pen::of_screen(p.screen()));
        assert!(!s.stopped());
    }

    /// At every prefix of a run of SGRs (resets with and without more parameters, extended
    /// colours, a dozen in a row, a DECSC/DECRC between them) the skim's pen is the parser's,
    /// and so are the pens of the checkpoints and the saved cursor.
    #[test]
    fn sgrs_give_the_parsers_pen() {
        let mut data = Vec::new();
        for (k, seq) in [
            "1;31",
            "0",
            "38;5;16",
            "4",
            "0;1;44",
            "22",
            "38;2;1;2;3",
            "7",
            "27",
            "95",
            "103",
            "2",
            "3",
            "24",
            "39",
            "49",
            "0",
            "00;4",
            "000",
            "48;5;200",
            "1",
            "9",
            "38;5",
            "35",
        ]
        .iter()
        .enumerate()
        {
            data.extend_from_slice(format!("\x1b[{seq}mx").as_bytes());
            match k % 7 {
                2 => data.extend_from_slice(b"\x1b7"),
                5 => data.extend_from_slice(b"\r\n\x1b8y\x1b[1A"),
                6 => data.extend_from_slice(b"\r\n\r\n\r\n"),
                _ => {}
            }
        }
        // A dozen in a row, no reset between.
        for v in [31, 1, 4, 32, 7, 33, 2, 34, 3, 35, 22, 36] {
            data.extend_from_slice(format!("\x1b[{v}m").as_bytes());
        }
        for end in 0..=data.len() {
            let s = skim_of(20, 3, 0, &data[..end]);
            let mut p = vt100::Parser::new(
                std::num::NonZeroU16::new(3).unwrap_or(std::num::NonZeroU16::MIN),
                std::num::NonZeroU16::new(20).unwrap_or(std::num::NonZeroU16::MIN),
                0,
            );
            p.process(&data[..end]);
            for m in &s.marks {
                let mut q = vt100::Parser::new(
                    std::num::NonZeroU16::new(3).unwrap_or(std::num::NonZeroU16::MIN),
                    std::num::NonZeroU16::new(20).unwrap_or(std::num::NonZeroU16::MIN),
                    0,
                );
                q.process(&data[..m.at]);
                assert_eq!(m.pen, Pen::of_screen(q.screen()), "checkpoint at {}", m.at);
            }
            assert!(!s.stopped(), "{end}");
            assert_eq!(s.pen, Pen::of_screen(p.screen()), "after {end} bytes");
            // The saved pen: restoring it must give the parser's.
            if let Some((_, _, pen)) = s.saved {
                p.process(b"\x1b8");
                assert_eq!(pen, Pen::of_screen(p.screen()), "saved, after {end} bytes");
            }
        }
    }

    /// Invalid UTF-8 is outside the subset, also before any character was printed (the
    /// repeated-character shortcut must not take four 0xff bytes for a known character).
    #[test]
    fn invalid_utf8_stops_the_skim() {
        for data in [
            &b"\xff\xff\xff\xff\xff"[..],
            b"ab\xff\xff\xff\xff",
            b"\xe2\x96\x88\xff",
        ] {
            let s = skim_of(20, 5, 0, data);
            assert!(s.stopped(), "{data:?}");
        }
    }

    #[test]
    fn waits_for_the_rest_of_a_split_sequence_and_stops_outside_the_subset() {
        let mut w = Widths::default();
        let p = vt100::Parser::new(
            std::num::NonZeroU16::new(5).unwrap_or(std::num::NonZeroU16::MIN),
            std::num::NonZeroU16::new(20).unwrap_or(std::num::NonZeroU16::MIN),
            0,
        );
        let mut s = Skim::start(p.screen(), None, 0).expect("a modelled screen");
        let mut buf = b"ab\x1b[3".to_vec();
        s.advance(&buf, &mut w);
        assert_eq!(s.at, 2);
        buf.extend_from_slice(b"1m\xe2\x96");
        s.advance(&buf, &mut w);
        assert_eq!(s.at, 7);
        buf.extend_from_slice(b"\x88c");
        s.advance(&buf, &mut w);
        assert_eq!((s.at, s.col, s.stopped()), (buf.len(), 4, false));
        // A cursor-position query is not in the subset: it must be parsed where it stands.
        buf.extend_from_slice(b"\x1b[6nmore");
        s.advance(&buf, &mut w);
        assert!(s.stopped());
        assert_eq!(s.at, buf.len() - 8);
    }

    /// Every row (and the kept scrollback) full of stale text, then short lines: any row the
    /// cut let through from before it would show stale text. For each length around the
    /// boundary, the fed screen must equal full parsing.
    #[test]
    fn stale_rows_never_survive_a_cut() {
        let (cols, rows) = (30u16, 5u16);
        for keep in [0usize, 2] {
            for lines in 0..40 {
                let mut data: Vec<u8> = Vec::new();
                for _ in 0..rows as usize + keep {
                    data.extend_from_slice(b"\r\n");
                    data.extend_from_slice(&[b'X'; 29]);
                }
                let mut fed = crate::Screen::with_scrollback(cols, rows, keep);
                let mut slow = crate::Screen::full_parsing(cols, rows, keep);
                fed.process(&data);
                slow.process(&data);
                let flood: Vec<u8> = (0..lines)
                    .flat_map(|i| format!("\r\n{i}").into_bytes())
                    .collect();
                fed.feed(&flood);
                fed.flush();
                slow.process(&flood);
                let what = format!("keep {keep}, {lines} lines");
                assert_eq!(fed.snapshot(), slow.snapshot(), "{what}");
                assert_eq!(fed.scrolled_rows(100), slow.scrolled_rows(100), "{what}");
                assert_eq!(fed.scrolled_total(), slow.scrolled_total(), "{what}");
                if lines > 2 * (rows as usize + keep) {
                    assert!(fed.skipped_bytes() > 0, "{what}: nothing skipped");
                }
            }
        }
    }

    /// The visible-only view is reused from refresh to refresh, so its rows hold stale text of
    /// earlier views: none may show. Lines alternate long and short so stale text would.
    #[test]
    fn stale_rows_never_survive_a_view() {
        let (cols, rows) = (30u16, 5u16);
        let mut fed = crate::Screen::with_scrollback(cols, rows, 50);
        let mut slow = crate::Screen::full_parsing(cols, rows, 50);
        let mut views = 0;
        for i in 0..400 {
            let line = if i % 3 == 0 {
                format!("\r\n{}", "Y".repeat(29))
            } else {
                format!("\r\n{i}")
            };
            fed.feed(line.as_bytes());
            slow.process(line.as_bytes());
            if i % 7 < 3 {
                views += (fed.deferred() > 0) as u32;
                fed.refresh_visible();
                assert_eq!(fed.visible_snapshot(), slow.visible_snapshot(), "line {i}");
            }
        }
        assert!(views > 100, "views: {views}");
        fed.flush();
        assert_eq!(fed.snapshot(), slow.snapshot());
    }

    #[test]
    fn a_cut_needs_rows_plus_scrollback_scrolls_after_it() {
        // 5 rows, 3 kept: a cut needs 8 scrolls after it. 20 lines from the top: the first 4
        // line feeds move the cursor down, the other 16 scroll.
        let data: Vec<u8> = (0..20)
            .flat_map(|i| format!("line {i}\r\n").into_bytes())
            .collect();
        // Checkpoints are kept at scrolls 1, 5, 9, 13 (one every `MARK_EVERY`): the latest
        // with 8 scrolls after it is the one at 5, at most `MARK_EVERY - 1` lines before the
        // best possible cut (8).
        let s = skim_of(20, 5, 3, &data);
        assert_eq!(s.scrolls, 16);
        let cut = s.cut().expect("a cut");
        assert_eq!(cut.scrolls, 5);
        assert!(cut.scrolls + MARK_EVERY > 8);
        let lines_before = data[..cut.at].iter().filter(|&&b| b == b'\n').count();
        assert_eq!(lines_before, 4 + 5);
        assert_eq!(s.marks.len(), 3, "one usable cut and the 2 still waiting");
        // Too few scrolls: no cut.
        let s = skim_of(20, 5, 3, &data[..data.len() / 2]);
        assert_eq!(s.cut(), None);
    }

    /// The word-at-a-time run of one repeated character against a byte-at-a-time count, for
    /// every period from 1 to 4 and runs that end anywhere in a word or at the end.
    #[test]
    fn periodic_prefixes() {
        for p in 1..=4usize {
            let unit: Vec<u8> = (0..p as u8).map(|k| 0xe0 + k).collect();
            for reps in 1..20 {
                for tail in [&b""[..], b"x", b"\xe0", b"\xe0\xe1\x1b[0m"] {
                    let mut b = unit.repeat(reps);
                    b.extend_from_slice(tail);
                    let want = (p..b.len()).find(|&j| b[j] != b[j - p]).unwrap_or(b.len());
                    assert_eq!(periodic_prefix(&b, p), want, "{b:x?} period {p}");
                    assert_eq!(
                        want / p,
                        reps + usize::from(tail.len() >= p && tail[..p] == unit[..])
                    );
                }
            }
        }
    }
}
