//! The agent CLIs this crate knows.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A coding-agent CLI with a manifest in this crate. (`shell` is built into `pty-manager`.)
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AgentType {
    /// Claude Code (`claude`).
    Claude,
    /// OpenAI Codex CLI (`codex`).
    Codex,
    /// Gemini CLI (`gemini`).
    Gemini,
    /// Aider (`aider`).
    Aider,
    /// Pi coding agent (`pi`).
    Pi,
    /// OpenCode (`opencode`).
    Opencode,
    /// Hermes Agent (`hermes`).
    Hermes,
}

impl AgentType {
    /// Every agent, in display order.
    pub const ALL: [AgentType; 7] = [
        AgentType::Claude,
        AgentType::Codex,
        AgentType::Gemini,
        AgentType::Aider,
        AgentType::Pi,
        AgentType::Opencode,
        AgentType::Hermes,
    ];

    /// The lower-case type id used in manifests, events and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentType::Claude => "claude",
            AgentType::Codex => "codex",
            AgentType::Gemini => "gemini",
            AgentType::Aider => "aider",
            AgentType::Pi => "pi",
            AgentType::Opencode => "opencode",
            AgentType::Hermes => "hermes",
        }
    }

    /// The CLI's product name.
    pub fn display_name(self) -> &'static str {
        match self {
            AgentType::Claude => "Claude Code",
            AgentType::Codex => "Codex",
            AgentType::Gemini => "Gemini CLI",
            AgentType::Aider => "Aider",
            AgentType::Pi => "Pi",
            AgentType::Opencode => "OpenCode",
            AgentType::Hermes => "Hermes Agent",
        }
    }

    /// The embedded manifest text.
    pub(crate) fn builtin_manifest(self) -> &'static str {
        match self {
            AgentType::Claude => include_str!("../manifests/claude.yaml"),
            AgentType::Codex => include_str!("../manifests/codex.yaml"),
            AgentType::Gemini => include_str!("../manifests/gemini.yaml"),
            AgentType::Aider => include_str!("../manifests/aider.yaml"),
            AgentType::Pi => include_str!("../manifests/pi.yaml"),
            AgentType::Opencode => include_str!("../manifests/opencode.yaml"),
            AgentType::Hermes => include_str!("../manifests/hermes.yaml"),
        }
    }
}

impl fmt::Display for AgentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentType {
    type Err = Error;

    /// Parses a type id, case-insensitively (`Claude`, `claude-code` and `claude_code` name Claude).
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim().to_ascii_lowercase();
        let t = t
            .strip_suffix("-code")
            .or(t.strip_suffix("_code"))
            .unwrap_or(&t);
        AgentType::ALL
            .into_iter()
            .find(|a| a.as_str() == t)
            .ok_or_else(|| Error::UnknownAgent(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in AgentType::ALL {
            assert_eq!(a.as_str().parse::<AgentType>().unwrap(), a);
        }
        assert_eq!(
            "Claude-Code".parse::<AgentType>().unwrap(),
            AgentType::Claude
        );
        let e = "cursor".parse::<AgentType>().unwrap_err();
        assert_eq!(e.to_string(), "unknown agent type: cursor");
    }
}
