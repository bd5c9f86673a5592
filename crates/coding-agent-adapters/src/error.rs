//! The crate's one error type.

/// Everything that can go wrong in `coding-agent-adapters`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No adapter is known by this name.
    #[error("unknown agent type: {0}")]
    UnknownAgent(String),
}
