//! The crate's one error type.

/// Everything that can go wrong in `pty-manager`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No live or finished session has this id.
    #[error("session not found: {0}")]
    SessionNotFound(String),
    /// A key name is not in the key table; nothing was written.
    #[error("unknown key: {0}")]
    UnknownKey(String),
    /// An operating-system call failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
