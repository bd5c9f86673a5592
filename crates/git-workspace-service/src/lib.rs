//! Git workspaces for coding agents.
//!
//! Clone or add a worktree, create a branch, commit, push and open a pull request, with
//! credentials that reach `git` only through one process's environment and never leak into a
//! URL, argv, `.git/config`, a log line, an event or an error. Workspaces are kept in a persisted
//! registry so a restarted process can finish or clean what it started.
//!
//! ```no_run
//! use git_workspace_service::{FinalizeRequest, PrRequest, ProvisionRequest, ServiceConfig, WorkspaceService};
//!
//! let svc = WorkspaceService::open(ServiceConfig::new("/var/lib/agents/workspaces"))?;
//! let events = svc.events().channel();
//! let mut req = ProvisionRequest::clone_of("octo/hello"); // https://…, git@host:o/r, /path, file://…
//! req.execution_id = Some("exec-123".into());
//! req.role = Some("engineer".into()); // branch parallax/exec-123/engineer
//! let ws = svc.provision(req)?;
//! // … an agent works in ws.path …
//! let done = svc.finalize(&ws.id, &FinalizeRequest {
//!     commit_message: Some("feat: the agent's work".into()),
//!     push: true,
//!     force_with_lease: false,
//!     pr: Some(PrRequest { title: "The agent's work".into(), ..PrRequest::default() }),
//!     cleanup: false,
//! })?;
//! println!("{:?} {:?}", done.commit, done.pr.map(|p| p.url));
//! for e in events.try_iter() {
//!     println!("{}", e.to_json());
//! }
//! # Ok::<(), git_workspace_service::Error>(())
//! ```
#![deny(missing_docs)]

pub mod app_jwt;
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
