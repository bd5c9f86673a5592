//! The services actions call, as traits: `PTY_SERVICE` and `CODING_WORKSPACE_SERVICE`.
//!
//! Actions see only these traits, so their handlers are tested with small in-memory services and
//! the binary plugs in the real ones built over `pty-manager`, `coding-agent-adapters` and
//! `git-workspace-service`.

pub mod capture;
pub mod default_branch;
pub mod excludes;
pub mod git;
pub mod managed;
pub mod pty;
pub mod workspace;

pub use git::GitWorkspaces;
pub use managed::ManagedPty;
pub use pty::{PlainStatus, PtyService, SessionInfo, SpawnRequest};
pub use workspace::{
    Authorization, DeviceCode, Issue, IssueQuery, IssueUpdate, NewIssue, PrRequest,
    ProvisionRequest, PullRequest, WorkspaceInfo, WorkspaceService,
};
