//! The crate's one error type.

/// Everything that can go wrong in `git-workspace-service`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No workspace in the registry has this id.
    #[error("workspace not found: {0}")]
    WorkspaceNotFound(String),
}
