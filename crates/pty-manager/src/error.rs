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
    /// The session runs without an adapter, so it has no detection engine.
    #[error("session has no detection (spawned without an adapter): {0}")]
    NoDetection(String),
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
    /// A session with this id already exists.
    #[error("session already exists: {0}")]
    SessionExists(String),
    /// A caller-given session id is not `[A-Za-z0-9._-]{1,64}`.
    #[error("invalid session id: {0:?} (allowed: 1-64 of A-Z a-z 0-9 . _ -)")]
    InvalidId(String),
    /// The session exists but its process has exited or is being stopped.
    #[error("session not running: {0}")]
    SessionNotRunning(String),
    /// The program to run was not found (or is not executable).
    #[error("program not found: {program}")]
    ProgramNotFound {
        /// The program as given.
        program: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The working directory does not exist or is not a directory.
    #[error("working directory not found: {0}")]
    WorkdirNotFound(std::path::PathBuf),
    /// Starting the program failed for another reason.
    #[error("failed to spawn {program}")]
    Spawn {
        /// The program as given.
        program: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A terminal size with zero columns or rows.
    #[error("invalid terminal size: {cols}x{rows} (both must be at least 1)")]
    InvalidSize {
        /// Requested columns.
        cols: u16,
        /// Requested rows.
        rows: u16,
    },
    /// The manager's reactor thread is gone (the manager was shut down).
    #[error("manager is shut down")]
    ManagerClosed,
}
