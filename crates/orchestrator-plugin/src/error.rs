//! The crate's one error type.

/// Everything that can go wrong in `orchestrator-plugin`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A chat, HTTP or MCP input failed validation.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}
