//! What a person sees in a session's terminal, as plain data.
//!
//! The screen model (`screen.rs`) produces a [`ScreenSnapshot`] after a batch of output; the
//! detection engine reads nothing else. Keeping it plain data lets detection be tested on recorded
//! screens with no PTY and no reactor.

/// One moment of a session's terminal, as a person would read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScreenSnapshot {
    /// Terminal width in cells.
    pub cols: u16,
    /// Terminal height in rows.
    pub rows: u16,
    /// The visible rows, top to bottom, each with trailing blanks trimmed. Always `rows` entries.
    pub lines: Vec<String>,
    /// Cursor position as `(row, col)`, 0-based.
    pub cursor: (u16, u16),
    /// Whether the application shows the cursor.
    pub cursor_visible: bool,
    /// Window title set by OSC 0 or OSC 2 (empty when never set).
    pub title: String,
    /// Whether the alternate screen is active.
    pub alternate_screen: bool,
    /// Whether the application enabled bracketed paste (`?2004h`).
    pub bracketed_paste: bool,
    /// Whether cursor keys are in application mode (`?1h`), so arrows send `ESC O` + letter.
    pub application_cursor: bool,
    /// Whether a synchronized update (`?2026h`) is open and not yet closed.
    pub synchronized_update: bool,
    /// Rows that scrolled off the top since the current turn began (bounded), oldest first.
    pub scrolled: Vec<String>,
    /// Payload of the most recent OSC 7501 sequence (Codex reports `state=idle|working|…` there).
    pub osc7501: Option<String>,
}

impl ScreenSnapshot {
    /// A snapshot of plain text rows (no title, cursor after the last non-empty row), padded or cut
    /// to `rows` rows. Meant for tests and for tools that classify text.
    ///
    /// ```
    /// use pty_manager::ScreenSnapshot;
    /// let s = ScreenSnapshot::from_text("pty> ", 120, 40);
    /// assert_eq!(s.lines.len(), 40);
    /// assert_eq!(s.lines[0], "pty>");
    /// assert_eq!(s.cursor, (0, 5));
    /// ```
    pub fn from_text(text: &str, cols: u16, rows: u16) -> Self {
        let raw: Vec<&str> = text.split('\n').collect();
        let mut lines: Vec<String> = raw
            .iter()
            .take(rows as usize)
            .map(|l| l.trim_end_matches('\r').trim_end().to_owned())
            .collect();
        let last = raw.len().min(rows as usize).saturating_sub(1);
        let cursor_col = raw
            .get(last)
            .map(|l| l.trim_end_matches('\r').chars().count())
            .unwrap_or(0);
        lines.resize(rows as usize, String::new());
        ScreenSnapshot {
            cols,
            rows,
            lines,
            cursor: (last as u16, cursor_col.min(cols as usize) as u16),
            cursor_visible: true,
            ..Default::default()
        }
    }
}
