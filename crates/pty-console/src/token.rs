//! The access token every request must carry.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// A secret that grants access to the console: 256 random bits from the OS, hex-encoded, or a
/// token given in configuration. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(..)")
    }
}

impl AccessToken {
    /// 32 bytes read from `/dev/urandom`, as 64 lower-case hex digits.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| Error::io("reading 32 random bytes from /dev/urandom", e))?;
        Ok(AccessToken(
            bytes.iter().map(|b| format!("{b:02x}")).collect(),
        ))
    }

    /// A token from configuration: 32–256 URL-safe characters (`[A-Za-z0-9._~-]`), so it can travel
    /// in a cookie or a query string unescaped and is long enough not to be guessed.
    ///
    /// ```
    /// use pty_console::AccessToken;
    /// assert!(AccessToken::from_config("short").is_err());
    /// assert!(AccessToken::from_config(&"a".repeat(32)).is_ok());
    /// ```
    pub fn from_config(token: &str) -> Result<Self> {
        let ok = (32..=256).contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'));
        if ok {
            Ok(AccessToken(token.to_owned()))
        } else {
            Err(Error::InvalidToken)
        }
    }

    /// The secret itself, for printing once at start and for clients.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the first difference is.
    pub fn matches(&self, candidate: &str) -> bool {
        let a = self.0.as_bytes();
        let b = candidate.as_bytes();
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }

    /// Writes the token to `path` with mode 0600 (created or truncated), so local tools can read it
    /// without it appearing in an argv or a log.
    pub fn write_to_file(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let ctx = || format!("writing the access token to {}", path.display());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(ctx(), e))?;
        // An existing file keeps its old mode with `open`; tighten it explicitly.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(ctx(), e))?;
        f.write_all(self.0.as_bytes())
            .and_then(|()| f.write_all(b"\n"))
            .map_err(|e| Error::io(ctx(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_64_hex_and_differ() {
        let a = AccessToken::generate().unwrap();
        let b = AccessToken::generate().unwrap();
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn matching_is_exact() {
        let t = AccessToken::from_config(&"x".repeat(40)).unwrap();
        assert!(t.matches(&"x".repeat(40)));
        for wrong in [
            "",
            "x",
            &"x".repeat(39),
            &"x".repeat(41),
            &format!("{}y", "x".repeat(39)),
        ] {
            assert!(!t.matches(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn config_tokens_are_validated() {
        for bad in [
            "",
            "has space and is long enough to pass the length",
            &"a".repeat(257),
        ] {
            assert!(AccessToken::from_config(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn token_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pty-console-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let t = AccessToken::generate().unwrap();
        t.write_to_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), t.expose());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
