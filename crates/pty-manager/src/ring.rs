//! A bounded ring of a session's raw output, for logs and for clients that want recent bytes.
//! Detection never reads it (it reads the screen).

/// Default capacity of a session's raw ring (BEHAVIOR.md §2.1).
pub const DEFAULT_RING_BYTES: usize = 1 << 20;

/// The newest `capacity` bytes of a stream.
///
/// A plain `Vec` written in place once full: pushing is one or two `memcpy`s, whatever the volume.
#[derive(Debug)]
pub struct RawRing {
    buf: Vec<u8>,
    /// Where the next byte goes once `buf` is full (also the oldest byte).
    head: usize,
    capacity: usize,
    total: u64,
}

impl RawRing {
    /// An empty ring keeping at most `capacity` bytes. Memory grows with use, not up front.
    pub fn new(capacity: usize) -> Self {
        RawRing {
            buf: Vec::new(),
            head: 0,
            capacity,
            total: 0,
        }
    }

    /// Appends bytes, dropping the oldest beyond the capacity.
    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.capacity == 0 {
            return;
        }
        let mut bytes = &bytes[bytes.len().saturating_sub(self.capacity)..];
        if self.buf.len() < self.capacity {
            let take = (self.capacity - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        while !bytes.is_empty() {
            let n = (self.capacity - self.head).min(bytes.len());
            self.buf[self.head..self.head + n].copy_from_slice(&bytes[..n]);
            self.head = (self.head + n) % self.capacity;
            bytes = &bytes[n..];
        }
    }

    /// The kept bytes, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        if self.buf.len() < self.capacity {
            return self.buf.clone();
        }
        [&self.buf[self.head..], &self.buf[..self.head]].concat()
    }

    /// Bytes ever pushed.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The last `n` lines of the kept output, rendered as plain text: escape sequences removed,
    /// a carriage return overwrites from the line start, other control characters dropped, each
    /// line cut at 4 KiB.
    pub fn tail_lines(&self, n: usize) -> Vec<String> {
        let text = render_plain(&self.contents());
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        let start = lines.len().saturating_sub(n);
        lines[start..]
            .iter()
            .map(|l| cut(l.trim_end(), 4096).to_owned())
            .collect()
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Removes ANSI escape sequences and control characters; `\r` followed by text restarts the line.
pub(crate) fn render_plain(bytes: &[u8]) -> String {
    strip(bytes, true)
}

/// Removes ANSI escape sequences and control characters except `\n` and `\t`.
pub(crate) fn strip_controls(bytes: &[u8]) -> String {
    strip(bytes, false)
}

fn strip(bytes: &[u8], cr_overwrites: bool) -> String {
    #[derive(PartialEq)]
    enum St {
        Text,
        Esc,
        Csi,
        Osc,
        OscEsc,
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut line_start = 0;
    let mut pending_cr = false;
    let mut st = St::Text;
    for &b in bytes {
        match st {
            St::Text => match b {
                0x1b => st = St::Esc,
                b'\n' => {
                    pending_cr = false;
                    out.push(b'\n');
                    line_start = out.len();
                }
                b'\r' => pending_cr = cr_overwrites,
                b'\t' => out.push(b'\t'),
                0..=0x1f | 0x7f => {}
                _ => {
                    if pending_cr {
                        out.truncate(line_start);
                        pending_cr = false;
                    }
                    out.push(b);
                }
            },
            St::Esc => {
                st = match b {
                    b'[' => St::Csi,
                    b']' | b'P' | b'_' | b'^' | b'X' => St::Osc,
                    b'(' | b')' | b'#' | b'%' => St::Esc,
                    _ => St::Text,
                }
            }
            St::Csi => {
                if (0x40..=0x7e).contains(&b) {
                    st = St::Text;
                }
            }
            St::Osc => match b {
                0x07 => st = St::Text,
                0x1b => st = St::OscEsc,
                _ => {}
            },
            St::OscEsc => st = if b == b'\\' { St::Text } else { St::Osc },
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_newest_bytes() {
        let mut r = RawRing::new(5);
        r.push(b"abc");
        r.push(b"defg");
        assert_eq!(r.contents(), b"cdefg");
        r.push(b"0123456789");
        assert_eq!(r.contents(), b"56789");
        assert_eq!(r.total(), 17);
    }

    #[test]
    fn tail_lines_are_rendered() {
        let mut r = RawRing::new(1024);
        r.push(b"one\r\n\x1b[31mtwo\x1b[0m\r\nspin |\rspin /\rdone\r\n\x1b]0;t\x07four\r\n");
        assert_eq!(r.tail_lines(10), vec!["one", "two", "done", "four"]);
        assert_eq!(r.tail_lines(2), vec!["done", "four"]);
    }
}
