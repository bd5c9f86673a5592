//! Key names to the bytes a terminal sends (BEHAVIOR.md §3.1).
//!
//! Names are trimmed and lower-cased; modifiers (`ctrl`, `shift`, `alt` and their aliases) come in
//! any order before the base key. Special keys take the xterm modifier parameter for any modifier
//! combination; letters, digits and punctuation accept only the combinations of the table. An
//! unknown name is an error, never typed as text.

use crate::{Error, Result};

const ESC: u8 = 0x1b;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Mods {
    ctrl: bool,
    shift: bool,
    alt: bool,
}

impl Mods {
    fn none(self) -> bool {
        !(self.ctrl || self.shift || self.alt)
    }
    /// The xterm modifier parameter: 1 + shift·1 + alt·2 + ctrl·4.
    fn param(self) -> u8 {
        1 + self.shift as u8 + 2 * self.alt as u8 + 4 * self.ctrl as u8
    }
    fn only(self, ctrl: bool, shift: bool, alt: bool) -> bool {
        self == Mods { ctrl, shift, alt }
    }
}

fn modifier(word: &str) -> Option<&'static str> {
    Some(match word {
        "ctrl" | "control" => "ctrl",
        "shift" => "shift",
        "alt" | "option" | "opt" | "meta" | "cmd" | "command" => "alt",
        _ => return None,
    })
}

fn alias(word: &str) -> &str {
    match word {
        "return" => "enter",
        "esc" => "escape",
        other => other,
    }
}

/// Keys sent as a CSI (or SS3) sequence: `(name, final byte, numeric code)`. A code of 0 means
/// `ESC [ final` / `ESC [ 1 ; m final`; otherwise `ESC [ code ~` / `ESC [ code ; m ~`.
const CSI_KEYS: &[(&str, u8, u8)] = &[
    ("up", b'A', 0),
    ("down", b'B', 0),
    ("right", b'C', 0),
    ("left", b'D', 0),
    ("home", b'H', 0),
    ("end", b'F', 0),
    ("insert", b'~', 2),
    ("delete", b'~', 3),
    ("pageup", b'~', 5),
    ("pagedown", b'~', 6),
    ("f1", b'P', 0),
    ("f2", b'Q', 0),
    ("f3", b'R', 0),
    ("f4", b'S', 0),
    ("f5", b'~', 15),
    ("f6", b'~', 17),
    ("f7", b'~', 18),
    ("f8", b'~', 19),
    ("f9", b'~', 20),
    ("f10", b'~', 21),
    ("f11", b'~', 23),
    ("f12", b'~', 24),
];

/// The bytes for one key name. `application_cursor` is the screen's `?1h` mode (arrows, home and
/// end then send `ESC O` + letter).
///
/// ```
/// use pty_manager::keys::encode_key;
/// assert_eq!(encode_key("Ctrl+C", false).unwrap(), b"\x03");
/// assert_eq!(encode_key("up", true).unwrap(), b"\x1bOA");
/// assert!(encode_key("hyper+x", false).is_err());
/// ```
pub fn encode_key(name: &str, application_cursor: bool) -> Result<Vec<u8>> {
    let unknown = || Error::UnknownKey(name.trim().to_owned());
    let lower = name.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return Err(unknown());
    }
    // Split on '+' but keep a literal trailing '+'-free base; keys like `ctrl+^` stay intact.
    let parts: Vec<&str> = lower.split('+').map(str::trim).collect();
    let (base, mod_words) = parts.split_last().ok_or_else(unknown)?;
    let mut mods = Mods::default();
    for w in mod_words {
        match modifier(w) {
            Some("ctrl") if !mods.ctrl => mods.ctrl = true,
            Some("shift") if !mods.shift => mods.shift = true,
            Some("alt") if !mods.alt => mods.alt = true,
            _ => return Err(unknown()),
        }
    }
    let base = alias(base);
    encode_base(base, mods, application_cursor).ok_or_else(unknown)
}

fn encode_base(base: &str, m: Mods, app_cursor: bool) -> Option<Vec<u8>> {
    if let Some(&(_, fin, code)) = CSI_KEYS.iter().find(|(n, _, _)| *n == base) {
        return Some(match (code, m.none()) {
            (0, true) if base.starts_with('f') => vec![ESC, b'O', fin],
            (0, true) if app_cursor => vec![ESC, b'O', fin],
            (0, true) => vec![ESC, b'[', fin],
            (0, false) => format!("\x1b[1;{}{}", m.param(), fin as char).into_bytes(),
            (c, true) => format!("\x1b[{c}~").into_bytes(),
            (c, false) => format!("\x1b[{c};{}~", m.param()).into_bytes(),
        });
    }
    let plain = m.none();
    let bytes = match base {
        "enter" if plain => vec![b'\r'],
        "enter" if m.only(false, true, false) => b"\x1b[13;2u".to_vec(),
        "enter" if m.only(false, false, true) => vec![ESC, b'\r'],
        "tab" if plain => vec![b'\t'],
        "tab" if m.only(false, true, false) => b"\x1b[Z".to_vec(),
        "backspace" if plain => vec![0x7f],
        "backspace" if m.only(false, false, true) => vec![ESC, 0x7f],
        "escape" if plain => vec![ESC],
        "space" if plain => vec![b' '],
        "space" if m.only(true, false, false) => vec![0],
        "@" if m.only(true, false, false) => vec![0],
        "[" if m.only(true, false, false) => vec![0x1b],
        "\\" if m.only(true, false, false) => vec![0x1c],
        "]" if m.only(true, false, false) => vec![0x1d],
        "^" if m.only(true, false, false) => vec![0x1e],
        "_" if m.only(true, false, false) => vec![0x1f],
        b if b.len() == 1 => {
            let c = b.as_bytes()[0];
            match c {
                // A terminal sends the same control byte for ctrl+shift+letter.
                b'a'..=b'z' if m.ctrl && !m.alt => vec![c - b'a' + 1],
                b'a'..=b'z' if m.ctrl && m.alt && !m.shift => vec![ESC, c - b'a' + 1],
                b'a'..=b'z' if m.only(false, false, true) => vec![ESC, c],
                b'a'..=b'z' if m.only(false, true, true) => vec![ESC, c.to_ascii_uppercase()],
                b'0'..=b'9' if m.only(false, false, true) => vec![ESC, c],
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(bytes)
}

/// Validates a whole list of key names and returns the canonical names to send, one per key.
/// Bare modifiers join the next element (`["ctrl", "shift", "c"]` is one key, `ctrl+shift+c`).
/// The first unknown name fails the whole list, so nothing of a bad list is ever written.
///
/// ```
/// use pty_manager::keys::normalize_keys;
/// assert_eq!(normalize_keys(&["ctrl", "shift", "up", "enter"]).unwrap(), ["ctrl+shift+up", "enter"]);
/// assert!(normalize_keys(&["down", "rm -rf /"]).is_err());
/// ```
pub fn normalize_keys<S: AsRef<str>>(names: &[S]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut pending: Vec<&'static str> = Vec::new();
    for name in names {
        let lower = name.as_ref().trim().to_ascii_lowercase();
        if let Some(m) = modifier(&lower) {
            pending.push(m);
            continue;
        }
        let full = if pending.is_empty() {
            lower
        } else {
            format!("{}+{lower}", pending.join("+"))
        };
        pending.clear();
        encode_key(&full, false)?;
        out.push(full);
    }
    if !pending.is_empty() {
        return Err(Error::UnknownKey(pending.join("+")));
    }
    Ok(out)
}

/// Encodes a validated list: one byte string per key.
pub fn encode_keys<S: AsRef<str>>(names: &[S], application_cursor: bool) -> Result<Vec<Vec<u8>>> {
    normalize_keys(names)?
        .iter()
        .map(|n| encode_key(n, application_cursor))
        .collect()
}

/// Splits a textual key list as models and old clients send it: `keys:down,enter` (the prefix is
/// optional). Validate the result with [`normalize_keys`].
pub fn parse_key_list(text: &str) -> Vec<String> {
    let t = text.trim();
    let t = t.strip_prefix("keys:").unwrap_or(t);
    t.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(name, bytes)` in normal cursor mode.
    const TABLE: &[(&str, &[u8])] = &[
        ("ctrl+a", b"\x01"),
        ("ctrl+c", b"\x03"),
        ("ctrl+h", b"\x08"),
        ("ctrl+i", b"\t"),
        ("ctrl+j", b"\n"),
        ("ctrl+m", b"\r"),
        ("ctrl+z", b"\x1a"),
        ("ctrl+shift+c", b"\x03"),
        ("ctrl+alt+a", b"\x1b\x01"),
        ("ctrl+[", b"\x1b"),
        ("ctrl+\\", b"\x1c"),
        ("ctrl+]", b"\x1d"),
        ("ctrl+^", b"\x1e"),
        ("ctrl+_", b"\x1f"),
        ("ctrl+space", b"\x00"),
        ("ctrl+@", b"\x00"),
        ("alt+a", b"\x1ba"),
        ("alt+z", b"\x1bz"),
        ("alt+shift+a", b"\x1bA"),
        ("shift+alt+q", b"\x1bQ"),
        ("alt+0", b"\x1b0"),
        ("alt+9", b"\x1b9"),
        ("alt+backspace", b"\x1b\x7f"),
        ("alt+enter", b"\x1b\r"),
        ("shift+enter", b"\x1b[13;2u"),
        ("enter", b"\r"),
        ("return", b"\r"),
        ("tab", b"\t"),
        ("shift+tab", b"\x1b[Z"),
        ("backspace", b"\x7f"),
        ("escape", b"\x1b"),
        ("esc", b"\x1b"),
        ("space", b" "),
        ("insert", b"\x1b[2~"),
        ("delete", b"\x1b[3~"),
        ("shift+delete", b"\x1b[3;2~"),
        ("ctrl+delete", b"\x1b[3;5~"),
        ("up", b"\x1b[A"),
        ("down", b"\x1b[B"),
        ("right", b"\x1b[C"),
        ("left", b"\x1b[D"),
        ("home", b"\x1b[H"),
        ("end", b"\x1b[F"),
        ("pageup", b"\x1b[5~"),
        ("pagedown", b"\x1b[6~"),
        ("shift+pageup", b"\x1b[5;2~"),
        ("shift+pagedown", b"\x1b[6;2~"),
        ("ctrl+pageup", b"\x1b[5;5~"),
        ("ctrl+pagedown", b"\x1b[6;5~"),
        ("shift+up", b"\x1b[1;2A"),
        ("shift+down", b"\x1b[1;2B"),
        ("shift+right", b"\x1b[1;2C"),
        ("shift+left", b"\x1b[1;2D"),
        ("shift+home", b"\x1b[1;2H"),
        ("shift+end", b"\x1b[1;2F"),
        ("alt+up", b"\x1b[1;3A"),
        ("alt+left", b"\x1b[1;3D"),
        ("shift+alt+up", b"\x1b[1;4A"),
        ("alt+shift+down", b"\x1b[1;4B"),
        ("ctrl+up", b"\x1b[1;5A"),
        ("ctrl+right", b"\x1b[1;5C"),
        ("ctrl+home", b"\x1b[1;5H"),
        ("ctrl+end", b"\x1b[1;5F"),
        ("ctrl+shift+up", b"\x1b[1;6A"),
        ("shift+ctrl+end", b"\x1b[1;6F"),
        ("f1", b"\x1bOP"),
        ("f2", b"\x1bOQ"),
        ("f3", b"\x1bOR"),
        ("f4", b"\x1bOS"),
        ("f5", b"\x1b[15~"),
        ("f6", b"\x1b[17~"),
        ("f7", b"\x1b[18~"),
        ("f8", b"\x1b[19~"),
        ("f9", b"\x1b[20~"),
        ("f10", b"\x1b[21~"),
        ("f11", b"\x1b[23~"),
        ("f12", b"\x1b[24~"),
        ("shift+f1", b"\x1b[1;2P"),
        ("shift+f4", b"\x1b[1;2S"),
        ("ctrl+f1", b"\x1b[1;5P"),
        ("ctrl+f4", b"\x1b[1;5S"),
        ("shift+f5", b"\x1b[15;2~"),
        ("shift+f12", b"\x1b[24;2~"),
        ("ctrl+f5", b"\x1b[15;5~"),
        ("ctrl+f12", b"\x1b[24;5~"),
        // Aliases, case and spacing.
        ("Control+C", b"\x03"),
        (" CTRL+c ", b"\x03"),
        ("option+b", b"\x1bb"),
        ("opt+b", b"\x1bb"),
        ("meta+b", b"\x1bb"),
        ("cmd+b", b"\x1bb"),
        ("command+b", b"\x1bb"),
        ("alt+return", b"\x1b\r"),
    ];

    #[test]
    fn table() {
        for (name, bytes) in TABLE {
            assert_eq!(encode_key(name, false).unwrap(), *bytes, "{name}");
        }
    }

    #[test]
    fn application_cursor_mode() {
        for (name, bytes) in [
            ("up", &b"\x1bOA"[..]),
            ("down", b"\x1bOB"),
            ("right", b"\x1bOC"),
            ("left", b"\x1bOD"),
            ("home", b"\x1bOH"),
            ("end", b"\x1bOF"),
            ("shift+up", b"\x1b[1;2A"),
            ("enter", b"\r"),
        ] {
            assert_eq!(encode_key(name, true).unwrap(), bytes, "{name}");
        }
    }

    #[test]
    fn unknown_names() {
        for name in [
            "",
            "a",
            "hyper+a",
            "ctrl",
            "ctrl+ctrl+a",
            "shift+a",
            "ctrl+1",
            "f13",
            "escape+x",
            "ctrl+enter",
            "rm -rf /",
            "alt+",
            "+",
        ] {
            assert!(
                matches!(encode_key(name, false), Err(Error::UnknownKey(_))),
                "{name:?} should be unknown"
            );
        }
    }

    #[test]
    fn lists_join_bare_modifiers_and_validate_first() {
        assert_eq!(
            normalize_keys(&["ctrl", "shift", "c"]).unwrap(),
            ["ctrl+shift+c"]
        );
        assert_eq!(
            normalize_keys(&["Control", "a", "down", "alt", "x"]).unwrap(),
            ["ctrl+a", "down", "alt+x"]
        );
        let err = normalize_keys(&["down", "enter", "bogus"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown key: bogus");
        assert!(matches!(
            normalize_keys(&["enter", "ctrl"]),
            Err(Error::UnknownKey(k)) if k == "ctrl"
        ));
        assert_eq!(
            encode_keys(&["up", "enter"], true).unwrap(),
            vec![b"\x1bOA".to_vec(), b"\r".to_vec()]
        );
    }

    #[test]
    fn textual_lists() {
        assert_eq!(parse_key_list("keys:down, enter"), ["down", "enter"]);
        assert_eq!(parse_key_list("ctrl,c"), ["ctrl", "c"]);
        assert_eq!(
            normalize_keys(&parse_key_list("keys:ctrl,c")).unwrap(),
            ["ctrl+c"]
        );
    }
}
