//! A small terminal emulator for the common subset of flood output, exact to `vt100` 0.18.
//!
//! [`crate::Screen`] feeds large batches through it instead of `vt100` (which costs ~40 ns a
//! byte): printable text (with `vt100`'s own character widths), CR, LF, VT, FF, BS, TAB, BEL,
//! SGR (`CSI … m`, semicolon parameters), CUU/CUD/CUF/CUB, EL (`CSI K`, `1K`, `2K`) and
//! DECSC/DECRC (`ESC 7`/`ESC 8`). Every step mirrors what `vt100` does for the same input,
//! including its wrap, wide-character and erase rules. Anything else stops the run: the
//! caller hands the rest to `vt100`.
//!
//! The run also finds where `vt100` can take over cheaply: a *handover* point is a line start on
//! a fresh bottom row after which the output scrolls every row then on screen away without
//! touching it again. From there `vt100` only needs the cursor, the pen and the saved cursor,
//! and the text of the rows that still scroll off (see [`Run`]).

use std::collections::HashMap;

use vt100::Color;

const BOLD: u8 = 1;
const DIM: u8 = 2;
const ITALIC: u8 = 4;
const UNDERLINE: u8 = 8;
const INVERSE: u8 = 16;

/// `vt100`'s text mode bits from its flags (bold, dim, italic, underline, inverse).
fn mode_bits(flags: [bool; 5]) -> u8 {
    [BOLD, DIM, ITALIC, UNDERLINE, INVERSE]
        .iter()
        .zip(flags)
        .filter(|(_, on)| *on)
        .fold(0, |m, (bit, _)| m | bit)
}

/// Drawing attributes, as `vt100` keeps them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Pen {
    fg: Color,
    bg: Color,
    mode: u8,
}

impl Pen {
    pub(crate) const DEFAULT: Pen = Pen {
        fg: Color::Default,
        bg: Color::Default,
        mode: 0,
    };

    pub(crate) fn of_screen(s: &vt100::Screen) -> Pen {
        let mode = mode_bits([s.bold(), s.dim(), s.italic(), s.underline(), s.inverse()]);
        Pen {
            fg: s.fgcolor(),
            bg: s.bgcolor(),
            mode,
        }
    }

    fn of_cell(c: &vt100::Cell) -> Pen {
        let mode = mode_bits([c.bold(), c.dim(), c.italic(), c.underline(), c.inverse()]);
        Pen {
            fg: c.fgcolor(),
            bg: c.bgcolor(),
            mode,
        }
    }

    /// `vt100`'s SGR for semicolon-separated parameters.
    #[inline]
    pub(crate) fn sgr(&mut self, params: &[u16]) {
        match params {
            [] | [0] => *self = Pen::DEFAULT,
            _ => self.sgr_list(params),
        }
    }

    /// [`Pen::sgr`] for a list: indexed, not an iterator with a closure (this runs for most
    /// sequences of a coloured flood).
    fn sgr_list(&mut self, params: &[u16]) {
        let p = self;
        let mut i = 0;
        while let Some(&n) = params.get(i) {
            i += 1;
            match n {
                0 => *p = Pen::DEFAULT,
                1 => p.mode = (p.mode & !(BOLD | DIM)) | BOLD,
                2 => p.mode = (p.mode & !(BOLD | DIM)) | DIM,
                3 => p.mode |= ITALIC,
                4 => p.mode |= UNDERLINE,
                7 => p.mode |= INVERSE,
                22 => p.mode &= !(BOLD | DIM),
                23 => p.mode &= !ITALIC,
                24 => p.mode &= !UNDERLINE,
                27 => p.mode &= !INVERSE,
                30..=37 => p.fg = Color::Idx((n - 30) as u8),
                38 | 48 => {
                    // An extended colour; anything unexpected (a missing or out-of-range
                    // component, another form) ends the sequence, as in `vt100`.
                    let Some((c, used)) = extended_color(&params[i..]) else {
                        return;
                    };
                    i += used;
                    if n == 38 {
                        p.fg = c;
                    } else {
                        p.bg = c;
                    }
                }
                39 => p.fg = Color::Default,
                40..=47 => p.bg = Color::Idx((n - 40) as u8),
                49 => p.bg = Color::Default,
                90..=97 => p.fg = Color::Idx((n - 82) as u8),
                100..=107 => p.bg = Color::Idx((n - 92) as u8),
                _ => {}
            }
        }
    }

    /// An SGR sequence that sets exactly this pen from any pen.
    pub(crate) fn write_sgr(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\x1b[0");
        for (bit, code) in [
            (BOLD, "1"),
            (DIM, "2"),
            (ITALIC, "3"),
            (UNDERLINE, "4"),
            (INVERSE, "7"),
        ] {
            if self.mode & bit != 0 {
                out.push(b';');
                out.extend_from_slice(code.as_bytes());
            }
        }
        for (color, base, bright, ext) in [(self.fg, 30, 90, 38), (self.bg, 40, 100, 48)] {
            let s = match color {
                Color::Default => continue,
                Color::Idx(i) if i < 8 => format!(";{}", base + i as u32),
                Color::Idx(i) if i < 16 => format!(";{}", bright + i as u32 - 8),
                Color::Idx(i) => format!(";{ext};5;{i}"),
                Color::Rgb(r, g, b) => format!(";{ext};2;{r};{g};{b}"),
            };
            out.extend_from_slice(s.as_bytes());
        }
        out.push(b'm');
    }
}

/// The colour of an SGR `38`/`48` from the parameters after it (`2;r;g;b` or `5;i`) and how
/// many it used; `None` ends the sequence.
#[inline]
fn extended_color(rest: &[u16]) -> Option<(Color, usize)> {
    let u8_of = |v: &u16| u8::try_from(*v).ok();
    match rest {
        [2, r, g, b, ..] => Some((Color::Rgb(u8_of(r)?, u8_of(g)?, u8_of(b)?), 4)),
        [5, i, ..] => Some((Color::Idx(u8_of(i)?), 2)),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Cell {
    /// `'\0'` when the cell has no contents.
    ch: char,
    wide: bool,
    cont: bool,
    pen: Pen,
}

impl Cell {
    const BLANK: Cell = Cell {
        ch: '\0',
        wide: false,
        cont: false,
        pen: Pen::DEFAULT,
    };

    /// `vt100`'s `Cell::clear`: no contents, no wide flags, the given attributes.
    fn cleared(pen: Pen) -> Cell {
        Cell { pen, ..Cell::BLANK }
    }
}

#[derive(Clone, Debug)]
struct Row {
    cells: Vec<Cell>,
    wrapped: bool,
    /// Whether any cell may be wide or a continuation (false: the cheap print path applies).
    any_wide: bool,
    /// Cells from here on are blank (`Cell::BLANK`).
    hi: usize,
    /// Not loaded from `vt100` yet (`cells` unused): the row's text, as scrolled off.
    stale: Option<String>,
    /// A blank row on which one run of printable ASCII was printed from column 0 with one
    /// pen, kept as that text until something else touches the row (`cells` still blank).
    lazy: Option<(String, Pen)>,
}

impl Row {
    fn blank(cols: usize) -> Row {
        Row {
            cells: vec![Cell::BLANK; cols],
            wrapped: false,
            any_wide: false,
            hi: 0,
            stale: None,
            lazy: None,
        }
    }

    /// The row as `vt100`'s scroll callback renders it (`write_formatted_basic`, escapes
    /// removed), trailing blanks trimmed.
    fn text(&self) -> String {
        let cells = &self.cells[..self.hi];
        if !self.any_wide {
            // Without wide cells every cell is one character (an empty one a space).
            let ascii = cells.iter().fold(true, |ok, c| ok & ((c.ch as u32) < 0x80));
            if ascii {
                let mut v: Vec<u8> = cells
                    .iter()
                    .map(|c| if c.ch == '\0' { b' ' } else { c.ch as u8 })
                    .collect();
                let n = v.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
                v.truncate(n);
                return String::from_utf8(v).unwrap_or_default();
            }
            let s: String = cells
                .iter()
                .map(|c| if c.ch == '\0' { ' ' } else { c.ch })
                .collect();
            return s.trim_end().to_owned();
        }
        let mut s = String::with_capacity(self.cells.len());
        let mut empty = 0;
        let mut prev_wide = false;
        for c in cells {
            if std::mem::take(&mut prev_wide) {
                continue;
            }
            prev_wide = c.wide;
            if *c == Cell::BLANK {
                empty += 1;
                continue;
            }
            for _ in 0..std::mem::take(&mut empty) {
                s.push(' ');
            }
            s.push(if c.ch == '\0' { ' ' } else { c.ch });
        }
        let n = s.trim_end().len();
        s.truncate(n);
        s
    }

    /// `vt100`'s `Row::erase`.
    fn erase(&mut self, i: usize, pen: Pen) {
        let cols = self.cells.len();
        let wide = self.cells[i].wide;
        if wide {
            if i + 1 >= cols {
                let p = self.cells[i].pen;
                self.cells[i] = Cell::cleared(p);
            } else {
                let p = self.cells[i + 1].pen;
                self.cells[i + 1] = Cell::cleared(p);
            }
        } else if self.cells[i].cont && i > 0 {
            let p = self.cells[i - 1].pen;
            self.cells[i - 1] = Cell::cleared(p);
        }
        self.cells[i] = Cell::cleared(pen);
        if pen != Pen::DEFAULT {
            self.hi = cols;
        }
        if i == cols.saturating_sub(if wide { 2 } else { 1 }) {
            self.wrapped = false;
        }
    }
}

/// The high bit of each byte of `x` that is below 0x20 or at or above 0x7f (the high bit, or
/// 0x7f + 1 reaching it); may flag a clean byte above a flagged one, never misses one, and the
/// lowest flag is always a real one (borrows and carries only run upwards from a flagged
/// byte).
#[inline]
fn not_printable(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    let high = (x | x.wrapping_add(ONES)) & HIGH;
    low | high
}

/// The length of the run of printable ASCII (0x20..0x7e) at the start of `b`; eight bytes at a
/// time, since floods are mostly that.
#[inline]
pub(crate) fn printable_run(b: &[u8]) -> usize {
    // Floods of coloured text have short runs: the first word is tested before the loop.
    if let Some(w) = b.first_chunk::<8>() {
        let flagged = not_printable(u64::from_le_bytes(*w));
        if flagged != 0 {
            return (flagged.trailing_zeros() / 8) as usize;
        }
    }
    let mut i = 0;
    for w in b.chunks_exact(8) {
        let flagged = not_printable(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
        if flagged != 0 {
            return i + (flagged.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + b[i..]
        .iter()
        .position(|c| !(0x20..0x7f).contains(c))
        .unwrap_or(b.len() - i)
}

/// The column after CR, BS or TAB, as `vt100` moves it (tab stops every 8 columns, never past
/// the last one); BEL, SO and SI leave it. For those six bytes only.
#[inline]
pub(crate) fn column_after(b: u8, col: usize, cols: usize) -> usize {
    match b {
        b'\r' => 0,
        0x08 => col.saturating_sub(1),
        b'\t' => ((col / 8 + 1) * 8).min(cols - 1),
        _ => col,
    }
}

/// The character a complete, valid UTF-8 sequence at the start of `b` encodes, and its length.
pub(crate) fn decode_utf8(b: &[u8]) -> Option<(char, usize)> {
    let cont = |i: usize, lo: u8, hi: u8| b.get(i).copied().filter(|x| (lo..=hi).contains(x));
    let (cp, len) = match b[0] {
        0xc2..=0xdf => {
            let b1 = cont(1, 0x80, 0xbf)?;
            (u32::from(b[0] & 0x1f) << 6 | u32::from(b1 & 0x3f), 2)
        }
        0xe0..=0xef => {
            let (lo, hi) = match b[0] {
                0xe0 => (0xa0, 0xbf),
                0xed => (0x80, 0x9f),
                _ => (0x80, 0xbf),
            };
            let b1 = cont(1, lo, hi)?;
            let b2 = cont(2, 0x80, 0xbf)?;
            let cp =
                u32::from(b[0] & 0x0f) << 12 | u32::from(b1 & 0x3f) << 6 | u32::from(b2 & 0x3f);
            (cp, 3)
        }
        0xf0..=0xf4 => {
            let (lo, hi) = match b[0] {
                0xf0 => (0x90, 0xbf),
                0xf4 => (0x80, 0x8f),
                _ => (0x80, 0xbf),
            };
            let b1 = cont(1, lo, hi)?;
            let b2 = cont(2, 0x80, 0xbf)?;
            let b3 = cont(3, 0x80, 0xbf)?;
            let cp = u32::from(b[0] & 0x07) << 18
                | u32::from(b1 & 0x3f) << 12
                | u32::from(b2 & 0x3f) << 6
                | u32::from(b3 & 0x3f);
            (cp, 4)
        }
        _ => return None,
    };
    char::from_u32(cp).map(|c| (c, len))
}

/// Why [`parse_csi`] read no sequence.
pub(crate) enum CsiMiss {
    /// The bytes end inside the sequence.
    Incomplete,
    /// A form the subset leaves to `vt100`.
    Other,
}

/// Reads the CSI sequence at the start of `b` (`b[0] == ESC`, `b[1] == '['`): its parameters
/// go to `params` (at most 16, no empty fields, none over 9999, no private or intermediate
/// bytes); returns how many, the final byte and the sequence's length. The parameters are
/// written in place rather than returned: copying the array out was a store-forwarding stall
/// on every sequence of a flood.
#[inline]
pub(crate) fn parse_csi(b: &[u8], params: &mut [u16; 16]) -> Result<(usize, u8, usize), CsiMiss> {
    let mut n = 0;
    // The parameter being read, and whether it has a digit yet.
    let (mut v, mut digits) = (0u32, false);
    let mut i = 2;
    loop {
        let Some(&x) = b.get(i) else {
            return Err(CsiMiss::Incomplete);
        };
        match x {
            b'0'..=b'9' => {
                v = v * 10 + u32::from(x - b'0');
                if v > 9999 {
                    return Err(CsiMiss::Other);
                }
                digits = true;
            }
            b';' => {
                // Empty fields are left to vt100.
                if !digits || n == params.len() {
                    return Err(CsiMiss::Other);
                }
                params[n] = v as u16;
                n += 1;
                (v, digits) = (0, false);
            }
            0x40..=0x7e => {
                if digits {
                    if n == params.len() {
                        return Err(CsiMiss::Other);
                    }
                    params[n] = v as u16;
                    n += 1;
                } else if n > 0 {
                    return Err(CsiMiss::Other);
                }
                return Ok((n, x, i + 1));
            }
            _ => return Err(CsiMiss::Other),
        }
        i += 1;
    }
}

/// Where `vt100` may take over from a run (see the module docs).
#[derive(Clone, Debug)]
struct Handover {
    /// Byte offset of the line start.
    at: usize,
    /// Rows scrolled off before it.
    scrolls: usize,
    /// Characters printed before it.
    printed: u64,
    col: usize,
    pen: Pen,
    saved: Option<Saved>,
    /// DECSCs executed before it.
    saves: u64,
    /// Lowest absolute cursor line (`row + scrolls`) seen after this point up to the next one.
    low_after: u64,
}

/// The result of [`Shadow::run`].
#[derive(Debug)]
pub(crate) struct Run {
    /// Bytes emulated: the rest starts with something outside the subset (or is incomplete).
    pub(crate) consumed: usize,
    /// Where `vt100` takes over (`None`: no usable point, `vt100` must parse everything).
    pub(crate) handover: Option<usize>,
    /// Rows that scrolled off before `handover`, oldest first (text as `vt100` records it).
    pub(crate) scrolled: Vec<String>,
    /// The rows on screen at `handover` above the cursor row, top first: `vt100` will scroll
    /// them off while parsing `handover..consumed` (without touching them), so its scroll
    /// callbacks for them must record these texts instead of its own stale rows.
    pub(crate) above: Vec<String>,
    /// Bytes that bring `vt100` (in the state it had before the run) to the state at
    /// `handover` as far as `handover..consumed` can observe: cursor, pen, saved cursor and a
    /// blank cursor row.
    pub(crate) sync: Vec<u8>,
    /// The saved cursor and pen after `consumed`, when known.
    pub(crate) saved_end: Option<Saved>,
}

/// A saved cursor `(row, col)` and pen.
pub(crate) type Saved = (usize, usize, Pen);

/// Character widths as `vt100` computes them (`None`: not in the fast subset), probed once per
/// character with a scratch parser so they always match the `vt100` in use.
#[derive(Default)]
pub(crate) struct Widths {
    known: HashMap<char, u8>,
    /// Direct-mapped cache in front of `known` (allocated on first use).
    recent: Option<Box<[(char, u8); 256]>>,
}

impl Widths {
    pub(crate) fn get(&mut self, c: char) -> Option<usize> {
        let recent = self
            .recent
            .get_or_insert_with(|| Box::new([('\0', 0); 256]));
        let slot = &mut recent[c as usize & 255];
        if slot.0 == c {
            return (slot.1 > 0).then_some(slot.1 as usize);
        }
        let w = *self.known.entry(c).or_insert_with(|| {
            if c == '\u{fffd}' || ('\u{80}'..'\u{a0}').contains(&c) {
                return 0;
            }
            let one = std::num::NonZeroU16::MIN;
            let eight = std::num::NonZeroU16::new(8).unwrap_or(one);
            let mut p = vt100::Parser::new(one, eight, 0);
            let mut buf = [0u8; 5];
            buf[0] = b'a';
            let n = c.encode_utf8(&mut buf[1..]).len();
            p.process(&buf[..=n]);
            let s = p.screen();
            let Some(cell) = s.cell(0, 1) else { return 0 };
            let mut exp = [0u8; 4];
            if cell.contents() != c.encode_utf8(&mut exp) {
                return 0;
            }
            let w = if cell.is_wide() { 2 } else { 1 };
            if s.cursor_position().1 != 1 + w {
                return 0;
            }
            w as u8
        });
        *slot = (c, w);
        (w > 0).then_some(w as usize)
    }
}

/// The emulator state for one run over a batch.
pub(crate) struct Shadow<'w> {
    /// Where rows not loaded yet come from.
    screen: &'w vt100::Screen,
    rows: usize,
    cols: usize,
    grid: Vec<Row>,
    /// Index in `grid` of screen row 0 (the grid is a ring).
    top: usize,
    row: usize,
    col: usize,
    pen: Pen,
    /// Saved cursor and pen when known (`vt100` does not expose them: the caller knows them
    /// from an earlier run, or the run saves them itself; while unknown, DECRC stops the run).
    saved: Option<Saved>,
    saves: u64,
    printed: u64,
    scrolled: Vec<String>,
    widths: &'w mut Widths,
}

/// Outcome of one step.
enum Step {
    /// Bytes used.
    Ok(usize),
    /// Outside the subset, or incomplete: stop before this byte.
    Stop,
}

impl<'w> Shadow<'w> {
    /// The emulator in the state of `screen` (main screen, no scroll region, no origin mode:
    /// the caller checks those), or `None` when that state is outside what it models.
    pub(crate) fn load(
        screen: &'w vt100::Screen,
        saved: Option<Saved>,
        widths: &'w mut Widths,
    ) -> Option<Shadow<'w>> {
        let (rows, cols) = screen.size();
        let (rows, cols) = (rows.get() as usize, cols.get() as usize);
        if rows < 3 || cols < 2 || screen.alternate_screen() {
            return None;
        }
        // Rows are loaded cell by cell only when the run touches them; the others only need
        // their text, for when they scroll off.
        let grid = screen
            .rows(0, cols as u16)
            .enumerate()
            .map(|(r, text)| Row {
                wrapped: screen.row_wrapped(r as u16),
                stale: Some(text.trim_end().to_owned()),
                ..Row::blank(cols)
            })
            .collect();
        let (row, col) = screen.cursor_position();
        Some(Shadow {
            screen,
            rows,
            cols,
            grid,
            top: 0,
            row: row as usize,
            col: col as usize,
            pen: Pen::of_screen(screen),
            saved,
            saves: 0,
            printed: 0,
            scrolled: Vec::with_capacity(256),
            widths,
        })
    }

    fn line(&mut self, r: usize) -> &mut Row {
        let i = (self.top + r) % self.rows;
        &mut self.grid[i]
    }

    /// Loads screen row `r` from `vt100` if the run has not touched it yet; `false` when it
    /// holds something the emulator does not model (combining sequences).
    fn ensure(&mut self, r: usize) -> bool {
        let i = (self.top + r) % self.rows;
        if let Some((text, pen)) = self.grid[i].lazy.take() {
            let row = &mut self.grid[i];
            for (cell, b) in row.cells.iter_mut().zip(text.bytes()) {
                *cell = Cell {
                    ch: b as char,
                    wide: false,
                    cont: false,
                    pen,
                };
            }
            row.hi = text.len();
            return true;
        }
        if self.grid[i].stale.is_none() {
            return true;
        }
        // A slot is recycled (and loaded) when its row scrolls off, so a slot still stale
        // holds the row `vt100` has at the same index.
        let orig = i;
        let cols = self.cols;
        let mut any_wide = false;
        let mut cells = Vec::with_capacity(cols);
        for c in 0..cols {
            let Some(v) = self.screen.cell(orig as u16, c as u16) else {
                return false;
            };
            let mut chars = v.contents().chars();
            let ch = match (chars.next(), chars.next()) {
                (None, _) => '\0',
                (Some(ch), None) => ch,
                (Some(_), Some(_)) => return false,
            };
            let cell = Cell {
                ch,
                wide: v.is_wide(),
                cont: v.is_wide_continuation(),
                pen: Pen::of_cell(v),
            };
            any_wide |= cell.wide || cell.cont;
            cells.push(cell);
        }
        let row = &mut self.grid[i];
        row.cells = cells;
        row.any_wide = any_wide;
        row.hi = cols;
        row.stale = None;
        true
    }

    /// Whether printing a character of width `w` only touches loaded rows (loading them).
    fn ready(&mut self, w: usize) -> bool {
        self.ensure(self.row)
            && (self.col + w <= self.cols || self.row + 1 >= self.rows || self.ensure(self.row + 1))
    }

    fn scrolls(&self) -> usize {
        self.scrolled.len()
    }

    /// `vt100`'s `row_inc_scroll(1)` without a scroll region; returns whether it scrolled.
    fn lf(&mut self) -> bool {
        if self.row + 1 < self.rows {
            self.row += 1;
            return false;
        }
        let top = self.top;
        let r = &mut self.grid[top];
        let text = if let Some((mut text, _)) = r.lazy.take() {
            let n = text.trim_end().len();
            text.truncate(n);
            text
        } else if let Some(text) = r.stale.take() {
            text
        } else {
            r.text()
        };
        self.scrolled.push(text);
        r.cells[..r.hi].fill(Cell::BLANK);
        r.wrapped = false;
        r.any_wide = false;
        r.hi = 0;
        self.top = (self.top + 1) % self.rows;
        true
    }

    /// `vt100`'s `WrappedScreen::text` for a character of width 1 or 2.
    fn print(&mut self, ch: char, w: usize) {
        let cols = self.cols;
        if self.col + w > cols {
            let wrap = {
                let last = self.line(self.row).cells[cols - 1];
                last.ch != '\0' || last.cont
            };
            let prev = self.row;
            self.col = 0;
            let scrolled = self.lf();
            let prev = prev - scrolled as usize;
            let now = self.row;
            self.line(prev).wrapped = wrap && prev + 1 == now;
        }
        let (r, col, pen) = (self.row, self.col, self.pen);
        let row = self.line(r);
        row.hi = row.hi.max((col + 3).min(cols));
        if !row.any_wide && w == 1 {
            row.cells[col] = Cell {
                ch,
                wide: false,
                cont: false,
                pen,
            };
        } else {
            row.any_wide = true;
            let was_wide = row.cells[col].wide;
            let is_wide = w == 2;
            row.cells[col] = Cell {
                ch,
                wide: is_wide,
                cont: false,
                pen,
            };
            // text_cleanup
            if col > 0 && row.cells[col - 1].wide {
                let p = row.cells[col - 1].pen;
                row.cells[col - 1] = Cell::cleared(p);
            }
            if was_wide && !is_wide {
                row.cells[col + 1] = Cell {
                    ch: ' ',
                    wide: false,
                    cont: false,
                    pen,
                };
            }
            if !was_wide && is_wide {
                let next_was_wide = row.cells[col + 1].wide;
                row.cells[col + 1] = Cell {
                    cont: true,
                    ..Cell::BLANK
                };
                if next_was_wide {
                    row.cells[col + 2] = Cell::cleared(pen);
                    if col + 2 == cols - 1 {
                        row.wrapped = false;
                    }
                }
            }
        }
        self.printed += 1;
        self.col += w;
    }

    /// Prints the printable ASCII run at the start of `bytes` (at least one byte); returns how
    /// many bytes it printed. Within a row without wide cells this is a plain copy.
    fn print_ascii(&mut self, bytes: &[u8]) -> usize {
        let cols = self.cols;
        let (r, col, pen) = (self.row, self.col, self.pen);
        let row = self.line(r);
        if col >= cols || row.any_wide {
            self.print(bytes[0] as char, 1);
            return 1;
        }
        let n = printable_run(&bytes[..bytes.len().min(cols - col)]);
        if col == 0 && row.hi == 0 {
            // A plain line on a fresh row: keep it as text (see `Row::lazy`).
            let text = std::str::from_utf8(&bytes[..n])
                .map(str::to_owned)
                .unwrap_or_default();
            row.lazy = Some((text, pen));
            self.col += n;
            self.printed += n as u64;
            return n;
        }
        for (cell, &b) in row.cells[col..col + n].iter_mut().zip(bytes) {
            *cell = Cell {
                ch: b as char,
                wide: false,
                cont: false,
                pen,
            };
        }
        row.hi = row.hi.max(col + n);
        self.col += n;
        self.printed += n as u64;
        n
    }

    fn el(&mut self, mode: u16) {
        let (r, col, pen, cols) = (self.row, self.col, self.pen, self.cols);
        let row = self.line(r);
        let blank = pen == Pen::DEFAULT;
        match mode {
            // Without wide cells `Row::erase` is a plain clear of each cell, which unwraps
            // the row when it reaches the last column.
            0 if !row.any_wide => {
                if col < cols {
                    let end = if blank { row.hi.max(col) } else { cols };
                    row.cells[col..end].fill(Cell::cleared(pen));
                    row.wrapped = false;
                    row.hi = if blank { row.hi.min(col) } else { cols };
                }
            }
            1 if !row.any_wide => {
                let last = col.min(cols - 1);
                row.cells[..=last].fill(Cell::cleared(pen));
                if last == cols - 1 {
                    row.wrapped = false;
                }
                if !blank {
                    row.hi = row.hi.max(last + 1);
                }
            }
            0 => {
                for i in col..cols {
                    row.erase(i, pen);
                }
            }
            1 => {
                for i in 0..=col.min(cols - 1) {
                    row.erase(i, pen);
                }
            }
            _ => {
                let end = if blank { row.hi } else { cols };
                row.cells[..end].fill(Cell::cleared(pen));
                row.wrapped = false;
                row.any_wide = false;
                row.hi = end;
                if blank {
                    row.hi = 0;
                }
            }
        }
    }

    /// One CSI sequence starting at `b[0] == ESC`, `b[1] == '['`.
    fn csi(&mut self, b: &[u8]) -> Step {
        let mut params = [0u16; 16];
        let Ok((n, fin, len)) = parse_csi(b, &mut params) else {
            return Step::Stop;
        };
        let params = &params[..n];
        let first = |d: u16| match params.first() {
            None | Some(0) => d,
            Some(&v) => v,
        };
        match fin {
            b'm' => self.pen.sgr(params),
            _ if n > 1 => return Step::Stop,
            b'A' => {
                let d = first(1) as usize;
                self.row = self.row.saturating_sub(d);
            }
            b'B' => {
                let d = first(1) as usize;
                self.row = (self.row + d).min(self.rows - 1);
            }
            b'C' => {
                let d = first(1) as usize;
                self.col = (self.col + d).min(self.cols - 1);
            }
            b'D' => {
                let d = first(1) as usize;
                self.col = self.col.saturating_sub(d);
            }
            b'K' => match first(0) {
                m @ 0..=2 if self.ensure(self.row) => self.el(m),
                _ => return Step::Stop,
            },
            _ => return Step::Stop,
        }
        Step::Ok(len)
    }

    /// Emulates `bytes` (which start in the parser's ground state) up to the first thing
    /// outside the subset, and picks the handover point.
    pub(crate) fn run(mut self, bytes: &[u8]) -> Run {
        let mut hand: Vec<Handover> = Vec::new();
        let mut low = u64::MAX;
        let mut i = 0;
        let n = bytes.len();
        while i < n {
            let b = bytes[i];
            // Printable ASCII: the bulk of any flood.
            if (0x20..0x7f).contains(&b) {
                if !self.ready(1) {
                    break;
                }
                i += self.print_ascii(&bytes[i..]);
                continue;
            }
            let step = match b {
                b'\n' | 0x0b | 0x0c => {
                    let scrolled = self.lf();
                    if scrolled && self.col < self.cols {
                        if let Some(h) = hand.last_mut() {
                            h.low_after = h.low_after.min(low);
                        }
                        low = u64::MAX;
                        hand.push(Handover {
                            at: i + 1,
                            scrolls: self.scrolls(),
                            printed: self.printed,
                            col: self.col,
                            pen: self.pen,
                            saved: self.saved,
                            saves: self.saves,
                            low_after: u64::MAX,
                        });
                    }
                    Step::Ok(1)
                }
                b'\r' | 0x08 | b'\t' | 0x07 | 0x0e | 0x0f => {
                    self.col = column_after(b, self.col, self.cols);
                    Step::Ok(1)
                }
                0x1b => match bytes.get(i + 1) {
                    Some(b'[') => self.csi(&bytes[i..]),
                    Some(b'7') => {
                        self.saved = Some((self.row, self.col, self.pen));
                        self.saves += 1;
                        Step::Ok(2)
                    }
                    Some(b'8') => match self.saved {
                        Some((r, c, p)) => {
                            (self.row, self.col, self.pen) = (r, c, p);
                            Step::Ok(2)
                        }
                        None => Step::Stop,
                    },
                    _ => Step::Stop,
                },
                0x80.. => match decode_utf8(&bytes[i..]) {
                    Some((ch, len)) => match self.widths.get(ch) {
                        Some(w) if w <= self.cols && self.ready(w) => {
                            self.print(ch, w);
                            Step::Ok(len)
                        }
                        _ => Step::Stop,
                    },
                    None => Step::Stop,
                },
                _ => Step::Stop,
            };
            match step {
                Step::Ok(k) => i += k,
                Step::Stop => break,
            }
            low = low.min((self.row + self.scrolls()) as u64);
        }
        if let Some(h) = hand.last_mut() {
            h.low_after = h.low_after.min(low);
        }
        self.finish(hand, i)
    }

    fn finish(mut self, hand: Vec<Handover>, consumed: usize) -> Run {
        let bottom = (self.rows - 1) as u64;
        let total = self.scrolls();
        let printed = self.printed;
        // The latest handover point whose later output scrolls every row above it away and
        // never goes above its line (suffix minimum of the lowest line reached).
        let mut low = u64::MAX;
        let mut pick = None;
        for h in hand.iter().rev() {
            low = low.min(h.low_after);
            let line = bottom + h.scrolls as u64;
            let ok = low >= line
                && total - h.scrolls >= self.rows - 1
                && (printed > h.printed || h.printed == 0)
                && (h.saves == 0 || h.saved.is_some_and(|(_, c, _)| c < self.cols));
            if ok {
                pick = Some(h.clone());
                break;
            }
        }
        let Some(h) = pick else {
            return Run {
                consumed,
                handover: None,
                scrolled: Vec::new(),
                above: Vec::new(),
                sync: Vec::new(),
                saved_end: None,
            };
        };
        let mut scrolled = std::mem::take(&mut self.scrolled);
        let mut above = scrolled.split_off(h.scrolls);
        above.truncate(self.rows - 1);
        let mut sync = Vec::with_capacity(64);
        // Blank cursor row with the default pen (what a scrolled-in row is), then the saved
        // cursor, the cursor and the pen.
        sync.extend_from_slice(format!("\x1b[0m\x1b[{};1H\x1b[2K", self.rows).as_bytes());
        if let Some((r, c, p)) = h.saved.filter(|_| h.saves > 0) {
            sync.extend_from_slice(format!("\x1b[{};{}H", r + 1, c + 1).as_bytes());
            p.write_sgr(&mut sync);
            sync.extend_from_slice(b"\x1b7");
        }
        sync.extend_from_slice(format!("\x1b[{};{}H", self.rows, h.col + 1).as_bytes());
        h.pen.write_sgr(&mut sync);
        Run {
            consumed,
            handover: Some(h.at),
            scrolled,
            above,
            sync,
            saved_end: self.saved,
        }
    }
}

/// What the fast path must know about the bytes `vt100` parses itself: whether the parser is
/// between sequences, and whether the main screen may have a scroll region or origin mode
/// (`vt100` does not expose either). A small copy of the parser's state machine; when unsure it
/// says "not ground" / "may have", which only costs speed.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    st: GateSt,
    /// Raw parameter bytes of the CSI being read (capped).
    params: Vec<u8>,
    inter: bool,
    /// Bytes still expected of a UTF-8 sequence in the ground state.
    utf8: u8,
    /// The main screen may have a scroll region.
    region: bool,
    /// Origin mode may be on (sticky until a full reset).
    origin: bool,
    /// The alternate screen is active (synced from `vt100` before each batch).
    pub(crate) alt: bool,
    /// A DECSC (or something else that changes the saved cursor) was parsed.
    pub(crate) saw_save: bool,
    rows: u16,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum GateSt {
    #[default]
    Ground,
    Esc,
    EscInter,
    Csi,
    /// OSC: ends with BEL or ESC.
    Osc,
    /// DCS, SOS, PM, APC: end with ESC.
    Str,
}

impl Gate {
    pub(crate) fn new(rows: u16) -> Gate {
        Gate {
            rows,
            ..Gate::default()
        }
    }

    /// Whether the fast path may start here.
    pub(crate) fn open(&self) -> bool {
        self.ground() && !self.region && !self.origin && !self.alt
    }

    /// Whether the parser is between sequences.
    fn ground(&self) -> bool {
        self.st == GateSt::Ground && self.utf8 == 0
    }

    /// Follows `bytes` only until the parser is between sequences again; returns how many
    /// bytes that took (all of them if it never is).
    pub(crate) fn settle(&mut self, bytes: &[u8]) -> usize {
        for (i, b) in bytes.iter().enumerate() {
            if self.ground() {
                return i;
            }
            self.scan(std::slice::from_ref(b));
        }
        bytes.len()
    }

    /// A resize resets the scroll regions.
    pub(crate) fn resized(&mut self, rows: u16) {
        self.rows = rows;
        self.region = false;
    }

    /// Follows bytes that `vt100` parses.
    pub(crate) fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == 0x18 || b == 0x1a {
                self.st = GateSt::Ground;
                self.utf8 = 0;
                continue;
            }
            if b == 0x1b {
                self.st = GateSt::Esc;
                self.utf8 = 0;
                continue;
            }
            match self.st {
                GateSt::Ground => {
                    self.utf8 = match b {
                        0xc0..=0xdf => 1,
                        0xe0..=0xef => 2,
                        0xf0..=0xf7 => 3,
                        0x80..=0xbf => self.utf8.saturating_sub(1),
                        _ => 0,
                    };
                }
                GateSt::Esc => match b {
                    b'[' => {
                        self.st = GateSt::Csi;
                        self.params.clear();
                        self.inter = false;
                    }
                    b']' => self.st = GateSt::Osc,
                    b'P' | b'X' | b'^' | b'_' => self.st = GateSt::Str,
                    0x20..=0x2f => self.st = GateSt::EscInter,
                    0x00..=0x1f | 0x7f => {}
                    b'7' => {
                        self.saw_save = true;
                        self.st = GateSt::Ground;
                    }
                    b'c' => {
                        self.saw_save = true;
                        self.region = false;
                        self.origin = false;
                        self.alt = false;
                        self.st = GateSt::Ground;
                    }
                    _ => self.st = GateSt::Ground,
                },
                GateSt::EscInter => {
                    if (0x30..=0x7e).contains(&b) {
                        self.st = GateSt::Ground;
                    }
                }
                GateSt::Csi => match b {
                    0x30..=0x3f => {
                        if self.params.len() < 64 {
                            self.params.push(b);
                        } else {
                            // Too long to judge: assume the worst if it turns out to matter.
                            self.inter = true;
                        }
                    }
                    0x20..=0x2f => self.inter = true,
                    0x40..=0x7e => {
                        self.dispatch(b);
                        self.st = GateSt::Ground;
                    }
                    _ => {}
                },
                GateSt::Osc => {
                    if b == 0x07 {
                        self.st = GateSt::Ground;
                    }
                }
                GateSt::Str => {}
            }
        }
    }

    fn dispatch(&mut self, fin: u8) {
        let p = &self.params;
        let private = p.first() == Some(&b'?');
        match (private, fin) {
            (false, b'r') => {
                if self.alt {
                    return;
                }
                if self.inter || !p.iter().all(|&b| b.is_ascii_digit() || b == b';') {
                    self.region = true;
                    return;
                }
                let mut f = p.split(|&b| b == b';').map(|x| {
                    std::str::from_utf8(x)
                        .ok()
                        .and_then(|s| s.parse::<u32>().ok())
                        .unwrap_or(0)
                });
                let rows = u32::from(self.rows.max(1));
                let top = f.next().filter(|&v| v != 0).unwrap_or(1);
                let bottom = f.next().filter(|&v| v != 0).unwrap_or(rows);
                let (t0, b0) = (top - 1, (bottom - 1).min(rows - 1));
                self.region = t0 < b0 && !(t0 == 0 && b0 == rows - 1);
            }
            (true, b'h' | b'l') if !self.inter => {
                for f in p[1..].split(|&b| b == b';') {
                    let v = std::str::from_utf8(f)
                        .ok()
                        .and_then(|s| s.parse::<u32>().ok());
                    match v {
                        Some(6) if fin == b'h' => self.origin = true,
                        Some(47) => self.alt = fin == b'h',
                        Some(1049) => {
                            self.alt = fin == b'h';
                            self.saw_save = true;
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Screen;

    /// xorshift64*: deterministic cases without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
            &v[self.below(v.len() as u64) as usize]
        }
    }

    /// gen.py's ANSI block (the benchmark workload), as the PTY delivers it (LF -> CRLF).
    fn gen_ansi_block() -> Vec<u8> {
        let mut out = String::new();
        for i in 0..512u32 {
            let (c1, c2) = (31 + i % 7, 90 + (i * 3) % 8);
            let _ = c2;
            out.push_str(&format!(
                "\x1b[1;{c1}m[build]\x1b[0m \x1b[38;5;{}mcompiling\x1b[0m unit_{i:05}.rs \
                 \x1b[38;2;{};{};{}m{}\x1b[0m \x1b[2m({} ms)\x1b[22m\n",
                16 + i % 200,
                i % 256,
                (i * 7) % 256,
                (i * 13) % 256,
                if i % 5 != 0 { "ok" } else { "cached" },
                i % 997
            ));
            let pct = i % 101;
            let bar =
                "\u{2588}".repeat((pct / 5) as usize) + &"\u{2591}".repeat((20 - pct / 5) as usize);
            out.push_str(&format!(
                "\x1b7\x1b[1A\x1b[2K\r\x1b[36m{bar}\x1b[0m {pct:3}%\x1b8"
            ));
            let spin = [
                '\u{280b}', '\u{2819}', '\u{2839}', '\u{2838}', '\u{283c}', '\u{2834}',
            ];
            out.push_str(&format!(
                "\r\x1b[K\x1b[33m{}\x1b[0m working\x1b[5C\x1b[5D\n",
                spin[(i % 6) as usize]
            ));
        }
        out.replace('\n', "\r\n").into_bytes()
    }

    /// prompt_child.py's burst: coloured log lines cut at an arbitrary byte count, then the prompt.
    fn prompt_burst(burst: usize) -> Vec<u8> {
        let mut blk = String::new();
        for i in 0..256 {
            blk.push_str(&format!(
                "\x1b[32mINFO\x1b[0m step {i:05}: compiling sources, linking objects, writing artefacts to target/\n"
            ));
        }
        let blk = blk.into_bytes();
        let mut out = Vec::new();
        let mut left = burst;
        while left > 0 {
            let n = left.min(blk.len());
            out.extend_from_slice(&blk[..n]);
            left -= n;
        }
        out.extend_from_slice(b"\nT_PROMPT=123\nDo you want to proceed? [y/N] ");
        let mut crlf = Vec::new();
        for b in out {
            if b == b'\n' {
                crlf.push(b'\r');
            }
            crlf.push(b);
        }
        crlf
    }

    /// Every observable of `vt100` and the screen model: cells (contents, attributes, width),
    /// wrap flags, cursor, pen, modes, title, OSC 7501, scrolled rows; then probes of the
    /// saved cursor (DECRC), the last printed character (REP) and the scroll region (LFs).
    fn assert_same(fast: &mut Screen, slow: &mut Screen, what: &str) {
        for round in 0..2 {
            let (a, b) = (fast.vt100(), slow.vt100());
            let (rows, cols) = b.size();
            assert_eq!(a.size(), b.size(), "{what}");
            for r in 0..rows.get() {
                assert_eq!(
                    a.row_wrapped(r),
                    b.row_wrapped(r),
                    "{what}: wrap of row {r}"
                );
                for c in 0..cols.get() {
                    let (x, y) = (a.cell(r, c), b.cell(r, c));
                    assert_eq!(x, y, "{what}: cell {r},{c} (round {round})");
                }
            }
            assert_eq!(a.contents_formatted(), b.contents_formatted(), "{what}");
            assert_eq!(a.cursor_position(), b.cursor_position(), "{what}: cursor");
            assert_eq!(Pen::of_screen(a), Pen::of_screen(b), "{what}: pen");
            assert_eq!(fast.formatted_state(), slow.formatted_state(), "{what}");
            assert_eq!(fast.snapshot(), slow.snapshot(), "{what}: snapshot");
            assert_eq!(fast.scrolled_total(), slow.scrolled_total(), "{what}");
            assert_eq!(
                fast.scrolled_rows(100_000),
                slow.scrolled_rows(100_000),
                "{what}: scrolled"
            );
            if round == 0 {
                let probe = b"\x1b8Z\x1b[bQ\r\n\r\n\r\n\r\n";
                fast.process(probe);
                slow.process(probe);
            }
        }
    }

    /// Feeds `data` in random chunks to a screen that takes the fast path and to one that
    /// never does, and compares them.
    fn check(data: &[u8], cols: u16, rows: u16, rng: &mut Rng, what: &str) -> u64 {
        let mut fast = Screen::with_scrollback(cols, rows, 5000);
        let mut slow = Screen::full_parsing(cols, rows, 5000);
        // The same chunks for both: `vt100` itself is not always independent of how its input
        // is cut (seen with malformed UTF-8 in the random cases).
        let mut i = 0;
        while i < data.len() {
            let n = match rng.below(4) {
                0 => 1 + rng.below(64) as usize,
                1 => FAST_MIN_TEST + rng.below(8 * 1024) as usize,
                _ => FAST_MIN_TEST + rng.below(96 * 1024) as usize,
            };
            let end = (i + n).min(data.len());
            fast.process(&data[i..end]);
            slow.process(&data[i..end]);
            i = end;
        }
        assert_eq!(slow.skipped_bytes(), 0);
        assert_same(&mut fast, &mut slow, what);
        fast.skipped_bytes()
    }

    const FAST_MIN_TEST: usize = crate::screen::FAST_MIN;

    /// Like [`check`], through [`Screen::feed`] (deferring, skipping to the skim's cut) with
    /// random flushes, keeping `keep` scrolled rows. The reference parses the same pieces the
    /// fed screen parses at once (everything since the last point where nothing was deferred),
    /// since `vt100` is not independent of how malformed input is cut. Returns the bytes the
    /// fed screen skipped.
    ///
    /// With `views` (input without malformed UTF-8, so that any cut parses alike), it also
    /// checks [`Screen::refresh_visible`] at random points against a screen that parsed every
    /// byte so far.
    fn check_fed(
        data: &[u8],
        (cols, rows, keep): (u16, u16, usize),
        views: bool,
        rng: &mut Rng,
        what: &str,
    ) -> u64 {
        let mut fed = Screen::with_scrollback(cols, rows, keep);
        let mut slow = Screen::full_parsing(cols, rows, keep);
        let mut live = Screen::full_parsing(cols, rows, keep);
        let mut since = Vec::new();
        let mut viewed = 0;
        let mut i = 0;
        while i < data.len() {
            let n = match rng.below(4) {
                0 => 1 + rng.below(64) as usize,
                1 => 1 + rng.below(4096) as usize,
                _ => FAST_MIN_TEST + rng.below(96 * 1024) as usize,
            };
            let end = (i + n).min(data.len());
            fed.feed(&data[i..end]);
            since.extend_from_slice(&data[i..end]);
            if views {
                live.process(&data[i..end]);
                if rng.below(3) == 0 {
                    viewed += (fed.deferred() > 0) as u32;
                    fed.refresh_visible();
                    assert!(fed.visible_current(), "{what}");
                    assert_eq!(
                        fed.visible_snapshot(),
                        live.visible_snapshot(),
                        "{what}: view after {end} bytes"
                    );
                }
            }
            if rng.below(16) == 0 {
                fed.flush();
            }
            if fed.deferred() == 0 {
                slow.process(&since);
                since.clear();
            }
            i = end;
        }
        fed.flush();
        slow.process(&since);
        assert_same(&mut fed, &mut slow, what);
        if views && data.len() > 200_000 {
            assert!(viewed > 0, "{what}: no view was built");
        }
        fed.skipped_bytes()
    }

    #[test]
    fn fed_floods_match_full_parsing() {
        let mut rng = Rng(0x51ed_2701_9e3a_44c1);
        let ansi = gen_ansi_block().repeat(4);
        for (cols, rows, keep) in [(120, 40, 200), (120, 40, 0), (37, 5, 50), (80, 24, 1000)] {
            let what = format!("gen.py ansi {cols}x{rows}, keep {keep}");
            let skipped = check_fed(&ansi, (cols, rows, keep), true, &mut rng, &what);
            if keep < 1000 {
                assert!(skipped > ansi.len() as u64 / 3, "{what}: skipped {skipped}");
            }
        }
        let burst = prompt_burst(262_144);
        let skipped = check_fed(&burst, (120, 40, 300), true, &mut rng, "prompt burst");
        assert!(
            skipped > burst.len() as u64 / 3,
            "prompt burst: skipped {skipped}"
        );
    }

    #[test]
    fn random_fed_output_matches_full_parsing() {
        let (engaged, cases) = random_cases(
            0x0dd_ba11_cafe_f00d,
            |rng, data, (cols, rows), wild, what| {
                let keep = *rng.pick(&[0usize, 3, 40, 1000]);
                let what = format!("{what}, keep {keep}");
                check_fed(data, (cols, rows, keep), wild == 0, rng, &what) > 0
            },
        );
        eprintln!("skipped bytes in {engaged} of {cases}");
        assert!(
            engaged >= cases / 4,
            "skipping engaged in only {engaged} cases"
        );
    }

    #[test]
    fn benchmark_workloads_match_full_parsing() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let ansi = gen_ansi_block().repeat(3);
        let skipped = check(&ansi, 120, 40, &mut rng, "gen.py ansi");
        assert!(
            skipped > ansi.len() as u64 / 2,
            "fast path mostly unused: {skipped}"
        );
        let burst = prompt_burst(262_144);
        let skipped = check(&burst, 120, 40, &mut rng, "prompt burst");
        assert!(
            skipped > burst.len() as u64 / 2,
            "fast path mostly unused: {skipped}"
        );
        // Narrow and short screens: lines wrap, wide bars split.
        check(&ansi, 37, 5, &mut rng, "gen.py ansi 37x5");
        check(&burst, 80, 24, &mut rng, "prompt burst 80x24");
    }

    /// One random fragment. `wild` 0: only the emulated subset, with short cursor moves;
    /// 1: rarely something that stops the emulator; 2: often, and long cursor moves.
    fn fragment(rng: &mut Rng, wild: u8, out: &mut Vec<u8>) {
        const WORDS: &[&str] = &[
            "hello",
            "x",
            "the quick brown fox",
            "0123456789abcdef",
            " ",
            "  ",
            "\u{2588}\u{2591}",
            "\u{6f22}\u{5b57}",
            "\u{280b}",
            "caf\u{e9}",
            "\u{1f600}",
            "\u{ff21}x\u{ff22}",
            "tab\tstop",
        ];
        const ODD: &[&[u8]] = &[
            b"\x1b[H",
            b"\x1b[5;3H",
            b"\x1b[2J",
            b"\x1b[J",
            b"\x1b[3;10r",
            b"\x1b[r",
            b"\x1b[?6h",
            b"\x1b[?6l",
            b"\x1b[?1049h",
            b"\x1b[?1049l",
            b"\x1b[?47h",
            b"\x1b[?47l",
            b"\x1b]0;t1\x07",
            b"\x1b]2;t2\x1b\\",
            b"\x1b]7501;done\x07",
            b"\x1bM",
            b"\x1b[2L",
            b"\x1b[M",
            b"\x1b[4X",
            b"\x1b[3b",
            b"\x1b[6n",
            b"\xff",
            b"\xc3",
            b"\xc2\x85",
            b"\x18",
            b"\x1b[31;;1m",
            b"\x1b[38:5:3m",
            b"\x1b[?2004h",
            b"\x1b[?25l",
            b"\x1b[1;31",
            b"\x7f",
            b"\x1b(B",
            b"\x1bc",
            b"\x1b[3G",
            b"\x1b[2d",
            b"\x1b[2S",
            b"\x1b[T",
            b"\x1b[5K",
            b"\x00",
            b"e\xcc\x81",
            b"\x1b[?1;2004h",
        ];
        let odd = match wild {
            0 => 0,
            1 => (rng.below(100) == 0) as u64,
            _ => (rng.below(8) == 0) as u64,
        };
        if odd == 1 {
            let frag: &[u8] = ODD[rng.below(ODD.len() as u64) as usize];
            out.extend_from_slice(frag);
            return;
        }
        match rng.below(100) {
            0..=34 => out.extend_from_slice(rng.pick(WORDS).as_bytes()),
            35..=49 => out.extend_from_slice(b"\r\n"),
            50..=53 => out.push(b'\n'),
            54..=57 => out.push(b'\r'),
            58..=59 => out.push(*rng.pick(&[0x08u8, 0x09, 0x07, 0x0b, 0x0c, 0x0e])),
            60..=71 => {
                let mut s = String::from("\x1b[");
                let n = rng.below(4);
                for k in 0..n {
                    if k > 0 {
                        s.push(';');
                    }
                    let v = match rng.below(6) {
                        0 => 38,
                        1 => 48,
                        2 => rng.below(300),
                        3 => *rng.pick(&[0, 1, 2, 3, 4, 7, 22, 23, 24, 27, 39, 49, 5]),
                        _ => *rng.pick(&[31, 42, 95, 103, 2, 5, 255, 256]),
                    };
                    s.push_str(&v.to_string());
                }
                s.push('m');
                out.extend_from_slice(s.as_bytes());
            }
            72..=81 => {
                let n = if wild == 2 {
                    *rng.pick(&[0, 1, 1, 1, 2, 3, 7, 80, 500])
                } else {
                    *rng.pick(&[0, 1, 1, 2])
                };
                let f = *rng.pick(&['A', 'B', 'C', 'D', 'K', 'C', 'D']);
                let s = match (f, rng.below(3)) {
                    ('K', k) => format!("\x1b[{}K", ["", "1", "2"][k as usize]),
                    (_, 0) => format!("\x1b[{f}"),
                    _ => format!("\x1b[{n}{f}"),
                };
                out.extend_from_slice(s.as_bytes());
            }
            82..=87 => out.extend_from_slice(if rng.below(2) == 0 {
                b"\x1b7"
            } else {
                b"\x1b8"
            }),
            _ => {
                // A long plain line (wraps on narrow screens).
                let n = rng.below(200) as usize;
                out.extend((0..n).map(|k| b'a' + (k % 26) as u8));
            }
        }
    }

    /// `SHADOW_CASES` (default 45) random mixes of [`fragment`]s of 20 to 80 KB on assorted
    /// screen sizes, a third each of every `wild` level; `run` checks one case (given the
    /// generator to go on with) and says whether the fast path engaged. Returns how many did, of
    /// how many.
    fn random_cases(
        seed: u64,
        mut run: impl FnMut(&mut Rng, &[u8], (u16, u16), u8, String) -> bool,
    ) -> (u32, u32) {
        let mut rng = Rng(seed);
        let mut engaged = 0;
        let cases: u32 = std::env::var("SHADOW_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(45);
        for case in 0..cases {
            let (cols, rows) = *rng.pick(&[(120u16, 40u16), (80, 24), (20, 6), (9, 3), (33, 10)]);
            let len = 20_000 + rng.below(60_000) as usize;
            let mut data = Vec::with_capacity(len + 64);
            let wild = (case % 3) as u8;
            while data.len() < len {
                fragment(&mut rng, wild, &mut data);
            }
            let what = format!("case {case} ({cols}x{rows}, wild {wild})");
            engaged += run(&mut rng, &data, (cols, rows), wild, what) as u32;
        }
        (engaged, cases)
    }

    #[test]
    fn random_output_matches_full_parsing() {
        let (engaged, cases) =
            random_cases(0x1234_5678_9abc_def1, |rng, data, (cols, rows), _, what| {
                check(data, cols, rows, rng, &what) > 0
            });
        eprintln!("engaged in {engaged} of {cases}");
        assert!(
            engaged >= cases / 3,
            "the fast path engaged in only {engaged} cases"
        );
    }

    #[test]
    fn gate_follows_modes_and_sequences() {
        let mut g = Gate::new(24);
        assert!(g.open());
        g.scan(b"\x1b[3;10r");
        assert!(!g.open());
        g.scan(b"\x1b[1;24r");
        assert!(g.open());
        g.scan(b"\x1b[5;2r");
        assert!(g.open(), "an empty region resets to the full screen");
        g.scan(b"\x1b]0;title");
        assert!(!g.open());
        g.scan(b"\x07ok\xe2\x96");
        assert!(!g.open(), "inside a UTF-8 sequence");
        g.scan(b"\x88");
        assert!(g.open());
        g.scan(b"\x1b[?1049h\x1b[2;5r");
        g.alt = true;
        assert!(!g.open());
        g.scan(b"\x1b[?1049l");
        assert!(g.open(), "the region was set on the alternate screen");
        g.scan(b"\x1b[?6h\x1b[?6l");
        assert!(!g.open(), "origin mode is sticky until a reset");
        g.scan(b"\x1bc");
        assert!(g.open());
        g.scan(b"\x1b[2;5");
        assert!(!g.open());
        g.scan(b"r");
        assert!(!g.open());
        g.resized(24);
        assert!(g.open());
    }

    #[test]
    fn printable_runs() {
        let mut rng = Rng(3);
        for _ in 0..20_000 {
            let n = rng.below(40) as usize;
            let b: Vec<u8> = (0..n)
                .map(|_| match rng.below(10) {
                    0 => rng.below(256) as u8,
                    _ => 0x20 + rng.below(0x5f) as u8,
                })
                .collect();
            let want = b
                .iter()
                .position(|c| !(0x20..0x7f).contains(c))
                .unwrap_or(n);
            assert_eq!(printable_run(&b), want, "{b:x?}");
        }
        // Every byte value at every position of two words, after printable text and before
        // more of it (and before every other value: borrows and carries must not hide it).
        for v in 0..=255u8 {
            for at in 0..16 {
                for after in [b'a', 0x00, 0x1f, 0x7f, 0x80, 0xff] {
                    let mut b = vec![b'a'; 16];
                    b[at] = v;
                    b[at + 1..].fill(after);
                    let want = b
                        .iter()
                        .position(|c| !(0x20..0x7f).contains(c))
                        .unwrap_or(16);
                    assert_eq!(printable_run(&b), want, "{b:x?}");
                }
            }
        }
    }

    /// The CSI reader against its rules written out plainly: every short string over an
    /// alphabet of digits, separators, finals and bytes outside the subset, and random long
    /// ones around the limits (16 parameters, 9999).
    #[test]
    fn csi_reader_follows_its_rules() {
        fn value(f: &[u8]) -> u32 {
            f.iter().fold(0u32, |v, &x| {
                v.saturating_mul(10).saturating_add(u32::from(x - b'0'))
            })
        }
        fn rules(b: &[u8]) -> Result<(Vec<u16>, u8, usize), bool> {
            let end = b[2..]
                .iter()
                .position(|x| !(x.is_ascii_digit() || *x == b';'))
                .map(|p| p + 2);
            let fields: Vec<&[u8]> = b[2..end.unwrap_or(b.len())].split(|&x| x == b';').collect();
            let (last, done) = fields.split_last().expect("split gives a field");
            let bad = done.len() > 16
                || done.iter().any(|f| f.is_empty() || value(f) > 9999)
                || value(last) > 9999;
            // `Err(true)`: outside the subset; `Err(false)`: incomplete.
            let Some(end) = end else { return Err(bad) };
            if bad || !(0x40..=0x7e).contains(&b[end]) {
                return Err(true);
            }
            let mut params: Vec<u16> = done.iter().map(|f| value(f) as u16).collect();
            if !last.is_empty() {
                params.push(value(last) as u16);
            } else if !done.is_empty() {
                return Err(true);
            }
            if params.len() > 16 {
                return Err(true);
            }
            Ok((params, b[end], end + 1))
        }
        fn check(b: &[u8]) {
            let mut params = [0u16; 16];
            let got = match parse_csi(b, &mut params) {
                Ok((n, fin, len)) => Ok((params[..n].to_vec(), fin, len)),
                Err(CsiMiss::Other) => Err(true),
                Err(CsiMiss::Incomplete) => Err(false),
            };
            assert_eq!(got, rules(b), "{:?}", String::from_utf8_lossy(b));
        }
        let alphabet = b"09;m?\x07 ";
        let mut b = b"\x1b[".to_vec();
        for len in 0..=6u32 {
            for code in 0..alphabet.len().pow(len) {
                b.truncate(2);
                let mut c = code;
                for _ in 0..len {
                    b.push(alphabet[c % alphabet.len()]);
                    c /= alphabet.len();
                }
                check(&b);
            }
        }
        let mut rng = Rng(11);
        for _ in 0..20_000 {
            b.truncate(2);
            for f in 0..rng.below(19) {
                if f > 0 {
                    b.push(b';');
                }
                for _ in 0..rng.below(6) {
                    b.push(*rng.pick(b"0123456789"));
                }
            }
            if rng.below(4) > 0 {
                b.push(*rng.pick(b"mACK?"));
            }
            check(&b);
        }
    }

    #[test]
    fn utf8_decoding_matches_std() {
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let n = 1 + rng.below(4) as usize;
            let b: Vec<u8> = (0..n).map(|_| 0x80 | rng.below(0x80) as u8).collect();
            let mut b = b;
            b[0] = 0xc0 + rng.below(0x40) as u8;
            let std = (1..=4).find_map(|k| {
                let s = std::str::from_utf8(b.get(..k)?).ok()?;
                s.chars().next().map(|c| (c, k))
            });
            assert_eq!(decode_utf8(&b), std, "{b:x?}");
        }
        assert_eq!(decode_utf8("\u{2588}x".as_bytes()), Some(('\u{2588}', 3)));
        assert_eq!(decode_utf8("\u{1f600}".as_bytes()), Some(('\u{1f600}', 4)));
    }

    #[test]
    fn widths_come_from_vt100() {
        let mut w = Widths::default();
        assert_eq!(w.get('a'), Some(1));
        assert_eq!(w.get('\u{2588}'), Some(1));
        assert_eq!(w.get('\u{6f22}'), Some(2));
        assert_eq!(w.get('\u{301}'), None);
        assert_eq!(w.get('\u{85}'), None);
        assert_eq!(w.get('\u{fffd}'), None);
    }
}
