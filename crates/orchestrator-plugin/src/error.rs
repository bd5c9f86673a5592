//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `orchestrator-plugin`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A chat, HTTP or MCP input failed validation.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// A setting holds a value that cannot be used.
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The setting's name, e.g. `PTY_SERVICE_CONFIG`.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// The YAML configuration file could not be read or parsed.
    #[error("cannot read configuration file {path}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No model is configured (no API key, no base URL).
    #[error("no model configured: {0}")]
    ModelUnavailable(String),
    /// A model API call failed (transport or status). The message never contains the key.
    #[error("model call to {endpoint} failed: {reason}")]
    Model {
        /// The endpoint URL (without credentials).
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// The model answered, but not with a JSON object that satisfies the contract.
    #[error("model gave no valid answer: {0}")]
    NoAnswer(String),
    /// The agent type is not one of the known agents or aliases.
    #[error("unknown agent type: {0}")]
    UnknownAgentType(String),
    /// The agent's CLI is not installed on this machine.
    #[error("{display_name} CLI is not installed")]
    AgentNotInstalled {
        /// The agent's display name, e.g. `Claude Code`.
        display_name: String,
        /// The command that installs it.
        install_command: String,
        /// Where its documentation lives.
        docs_url: String,
    },
    /// A session id is not known to the PTY service.
    #[error("session not found: {0}")]
    SessionNotFound(String),
    /// A workspace id is not known to the workspace service.
    #[error("workspace not found: {0}")]
    WorkspaceNotFound(String),
    /// No scratch workspace belongs to this session id.
    #[error("Scratch workspace {0} not found")]
    ScratchNotFound(String),
    /// The concurrent session limit is reached.
    #[error("Concurrent session limit reached ({0})")]
    SessionLimit(usize),
    /// A path lies outside every allowed root.
    #[error("path {0} is outside of allowed directories")]
    OutsideAllowedRoots(PathBuf),
    /// A lower service (PTY, adapters, git, forge) failed; its message is passed on.
    #[error("{context}: {message}")]
    Service {
        /// What we were doing.
        context: String,
        /// The lower service's own message (already redacted by that service).
        message: String,
    },
    /// A lower service refused to act to protect work (uncommitted or unpushed changes).
    #[error("refused: {0}")]
    Refused(String),
    /// A feature that this build does not provide yet. Said plainly instead of pretending.
    #[error("not implemented: {0}")]
    NotImplemented(String),
    /// An I/O failure (stdio of the MCP server, files).
    #[error("i/o failed while {context}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps a lower service's error with what we were doing.
    pub fn service(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Service {
            context: context.into(),
            message: err.to_string(),
        }
    }
}
