//! The crate's one error type.

/// Everything that can go wrong in `pty-console`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request came without the right access token.
    #[error("missing or wrong access token")]
    Unauthorized,
}
