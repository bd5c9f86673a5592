//! Agent type names and their aliases (BEHAVIOR.md §10.1).

use crate::{Error, Result};

/// The canonical agent types.
pub const AGENT_TYPES: [&str; 8] = [
    "claude", "codex", "gemini", "aider", "pi", "opencode", "hermes", "shell",
];

const ALIASES: [(&str, &str); 12] = [
    ("claude-code", "claude"),
    ("claudecode", "claude"),
    ("openai", "codex"),
    ("openai-codex", "codex"),
    ("google", "gemini"),
    ("pi-ai", "pi"),
    ("piai", "pi"),
    ("pi-coding-agent", "pi"),
    ("picodingagent", "pi"),
    ("open-code", "opencode"),
    ("hermes-agent", "hermes"),
    ("bash", "shell"),
];

/// Resolves a user-written agent type to its canonical name; unknown names are an error (never a
/// silent fallback to another agent).
pub fn resolve_agent_type(name: &str) -> Result<&'static str> {
    let n = name.trim().to_ascii_lowercase();
    if let Some(t) = AGENT_TYPES.iter().find(|t| **t == n) {
        return Ok(t);
    }
    ALIASES
        .iter()
        .find(|(a, _)| *a == n)
        .map(|(_, t)| *t)
        .ok_or_else(|| Error::UnknownAgentType(name.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_and_unknown_names_fail() {
        let table = [
            ("Claude-Code", Some("claude")),
            ("openai", Some("codex")),
            ("google", Some("gemini")),
            ("picodingagent", Some("pi")),
            ("open-code", Some("opencode")),
            ("hermes", Some("hermes")),
            ("hermes-agent", Some("hermes")),
            ("bash", Some("shell")),
            ("shell", Some("shell")),
            ("cursor", None),
        ];
        for (input, want) in table {
            assert_eq!(resolve_agent_type(input).ok(), want, "{input}");
        }
        assert_eq!(
            resolve_agent_type("cursor").unwrap_err().to_string(),
            "unknown agent type: cursor"
        );
    }
}
