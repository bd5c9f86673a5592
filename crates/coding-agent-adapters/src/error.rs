//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `coding-agent-adapters`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No adapter is known by this name.
    #[error("unknown agent type: {0}")]
    UnknownAgent(String),
    /// An approval preset name is not one of readonly, standard, permissive, autonomous.
    #[error("unknown preset: {0}")]
    UnknownPreset(String),
    /// A manifest could not be parsed or checked.
    #[error("invalid manifest {source_name}: {reason}")]
    InvalidManifest {
        /// Where the manifest came from (`builtin:claude`, a file path).
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The detection engine rejected a manifest's rules.
    #[error("invalid detection rules in {source_name}")]
    Detection {
        /// Where the manifest came from.
        source_name: String,
        /// The engine's error.
        #[source]
        source: pty_manager::Error,
    },
    /// A file could not be read, written or removed.
    #[error("{action} {path}")]
    Io {
        /// What was being done (`cannot read`, `cannot write`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An existing configuration file is not valid JSON/YAML, or not an object at the top, so
    /// merging into it could lose the user's settings; it is left untouched.
    #[error("cannot merge into {path}: {reason}")]
    Merge {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A launch option cannot be used (e.g. a value with a control character).
    #[error("invalid launch option {name}: {reason}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A hook request could not be understood.
    #[error("invalid hook payload: {0}")]
    InvalidHook(String),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
