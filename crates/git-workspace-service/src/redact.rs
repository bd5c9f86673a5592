//! One redactor for every string that leaves the crate: errors, events, log lines, git stderr.

use std::sync::{Arc, Mutex};

use crate::b64;

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not registered: replacing every occurrence of a two-letter
/// string would garble messages without protecting anything real.
const MIN_SECRET_LEN: usize = 6;

/// Replaces every known secret in a string by `[redacted]`.
///
/// Cloning is cheap and clones share one set of secrets, so a token registered once (when a
/// credential is granted) is hidden everywhere: in git's stderr, in forge error bodies, in events
/// and in log lines.
///
/// ```
/// use git_workspace_service::Redactor;
///
/// let r = Redactor::new();
/// r.add_token("ghp_secret123");
/// assert_eq!(r.redact("auth ghp_secret123 failed"), "auth [redacted] failed");
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").finish_non_exhaustive()
    }
}

impl Redactor {
    /// An empty redactor.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers one literal secret.
    pub fn add(&self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let mut secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_owned());
            // Longest first, so a secret that contains another is replaced whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Registers a forge token together with the encoded forms it travels in (the HTTP basic
    /// credential git sends), so neither form can leak.
    pub fn add_token(&self, token: &str) {
        self.add(token);
        self.add(&b64::encode(format!("x-access-token:{token}").as_bytes()));
    }

    /// Registers a PEM private key: the whole text, and each line of its base64 body (a
    /// message that quotes part of the key, or the key re-wrapped, is still hidden).
    pub fn add_pem(&self, pem: &str) {
        self.add(pem.trim());
        for line in pem.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with("-----") && !line.contains(':') {
                self.add(line);
            }
        }
    }

    /// Returns `text` with every registered secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_owned();
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }

    /// Redacts every string inside a JSON value, in place.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => *s = self.redact(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
    }
}

/// A secret string whose `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it must be sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_token_and_its_basic_form() {
        let r = Redactor::new();
        r.add_token("tok_abcdef");
        let basic = b64::encode(b"x-access-token:tok_abcdef");
        let s = format!("a tok_abcdef b {basic} c");
        assert_eq!(r.redact(&s), "a [redacted] b [redacted] c");
        assert_eq!(format!("{:?}", Secret::new("tok_abcdef")), "[redacted]");
    }

    #[test]
    fn clones_share_secrets_and_json_is_walked() {
        let r = Redactor::new();
        let r2 = r.clone();
        r2.add("secret-value");
        let mut v = serde_json::json!({"a": ["x secret-value"], "b": {"c": "secret-value"}});
        r.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": ["x [redacted]"], "b": {"c": "[redacted]"}})
        );
    }
}
