//! The crate's one error type.

/// Everything that can go wrong in `pty-console`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request came without the right access token.
    #[error("missing or wrong access token")]
    Unauthorized,
    /// A WebSocket handshake came from a page of another origin.
    #[error("websocket origin {origin:?} is not this server ({expected})")]
    ForeignOrigin {
        /// The `Origin` header sent (empty when absent).
        origin: String,
        /// The origin the server accepts.
        expected: String,
    },
    /// A non-loopback address was asked for without the explicit flag.
    #[error("refusing to bind non-loopback address {0} without allow_remote")]
    RemoteBindRefused(std::net::SocketAddr),
    /// An access token given in configuration is unusable.
    #[error("access token must be 32 to 256 characters of [A-Za-z0-9._~-]")]
    InvalidToken,
    /// Binding, accepting or another socket or file operation failed.
    #[error("{context}")]
    Io {
        /// What was being done, with which input.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A control or spawn request was malformed.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// The manager refused or failed an operation.
    #[error(transparent)]
    Manager(#[from] pty_manager::Error),
    /// Approve/deny named a prompt that is no longer the one waiting (or none waits).
    #[error("stale prompt: {0}")]
    StalePrompt(String),
    /// `remove_rule` named a rule the session does not have.
    #[error("no session rule with id {0:?}")]
    RuleNotFound(String),
    /// A launcher could not start the agent the spawn form asked for.
    #[error("could not start agent {agent}: {reason}")]
    Launch {
        /// The agent type asked for.
        agent: String,
        /// What went wrong, as the launcher reported it.
        reason: String,
    },
    /// The spawn form named an agent this console cannot start.
    #[error("unknown agent type: {0}")]
    UnknownAgent(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
