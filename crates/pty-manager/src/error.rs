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
    /// A rule region is not one of `bottom(N)`, `screen`, `title`, `tail(N)`, `osc(7501)`,
    /// `markers`, `cursor_row`.
    #[error("invalid region: {0:?}")]
    InvalidRegion(String),
    /// A detection rule could not be compiled (bad regex, duplicate id, bad response).
    #[error("invalid rule {id}: {reason}")]
    InvalidRule {
        /// The rule id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An adapter manifest could not be read (YAML, schema, fields).
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
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
