//! Git workspaces for coding agents.
//!
//! Clone or add a worktree, create a branch, commit, push and open a pull request, with
//! credentials that reach `git` only through one process's environment and never leak into a
//! URL, argv, `.git/config`, a log line, an event or an error. Workspaces are kept in a persisted
//! registry so a restarted process can finish or clean what it started.
#![deny(missing_docs)]

mod atomic;
mod b64;
pub mod branch;
pub mod clock;
pub mod credentials;
pub mod device_flow;
mod error;
pub mod events;
pub mod forge;
mod git;
mod hooks;
mod redact;
mod refname;
pub mod registry;
mod service;
mod status;
pub mod token_store;
mod url;

pub use error::Error;
pub use git::{GitAuth, GitConfig, GitProgress};
pub use hooks::OnComplete;
pub use redact::{REDACTED, Redactor, Secret};
pub use refname::validate_branch_name;
pub use service::{
    CommitOutcome, FinalizeOutcome, FinalizeRequest, Options, PrRequest, ProvisionRequest,
    ServiceConfig, WorkspaceService,
};
pub use status::{WorkspaceStatus, rev_parse, status};
pub use url::{Provider, RepoUrl, Transport};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
