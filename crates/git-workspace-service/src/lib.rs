//! Git workspaces for coding agents.
//!
//! Clone or add a worktree, create a branch, commit, push and open a pull request, with
//! credentials that reach `git` only through one process's environment and never leak into a
//! URL, argv, `.git/config`, a log line, an event or an error. Workspaces are kept in a persisted
//! registry so a restarted process can finish or clean what it started.
#![deny(missing_docs)]

mod error;

pub use error::Error;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
