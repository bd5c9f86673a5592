//! `CODING_WORKSPACE_SERVICE`: git workspaces, pull requests and issues.

use std::path::PathBuf;

use serde::Serialize;

use crate::{Error, Result};

/// What a provision asks for.
#[derive(Debug, Clone, Default)]
pub struct ProvisionRequest {
    /// Repository: URL, `owner/repo`, local path or `file://`. Empty for a worktree (it takes the
    /// parent's repository).
    pub repo: String,
    /// Branch to start from; empty = the remote's default branch (a worktree: its clone's), else
    /// `main`.
    pub base_branch: String,
    /// Branch to create; `None` = `<prefix>/exec-<ms>/coding-agent`.
    pub branch_name: Option<String>,
    /// A worktree of `parent_workspace_id` instead of a clone.
    pub use_worktree: bool,
    /// The parent clone of a worktree.
    pub parent_workspace_id: Option<String>,
    /// Human label.
    pub label: Option<String>,
}

/// One workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceInfo {
    /// Workspace id.
    pub id: String,
    /// Where it lives.
    pub path: PathBuf,
    /// Its branch.
    pub branch: String,
    /// The repository it was made from.
    pub repo: String,
    /// A worktree of another workspace (else a clone).
    pub is_worktree: bool,
    /// Human label.
    pub label: Option<String>,
    /// Status word (`ready`, `finalizing`, `error`, …).
    pub status: String,
}

/// A pull request to open.
#[derive(Debug, Clone, Default)]
pub struct PrRequest {
    /// Title.
    pub title: String,
    /// Body (markdown).
    pub body: String,
    /// Target branch.
    pub base_branch: String,
    /// Open as draft.
    pub draft: bool,
    /// Labels (failures are warnings).
    pub labels: Vec<String>,
    /// Reviewers (failures are warnings).
    pub reviewers: Vec<String>,
}

/// An opened pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    /// Number.
    pub number: u64,
    /// Web URL.
    pub url: String,
}

/// An issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// Number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// `open` or `closed`.
    pub state: String,
    /// Label names.
    pub labels: Vec<String>,
    /// Web URL.
    pub url: String,
}

/// Filters of an issue listing.
#[derive(Debug, Clone, Default)]
pub struct IssueQuery {
    /// `open`, `closed` or `all`.
    pub state: String,
    /// Only issues with all these labels.
    pub labels: Vec<String>,
}

/// A new issue.
#[derive(Debug, Clone, Default)]
pub struct NewIssue {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Labels.
    pub labels: Vec<String>,
}

/// Changes to an issue; `None` fields are kept.
#[derive(Debug, Clone, Default)]
pub struct IssueUpdate {
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
    /// New state (`open`, `closed`).
    pub state: Option<String>,
    /// Replacement labels.
    pub labels: Option<Vec<String>>,
}

/// An OAuth device-flow code for a person to enter (RFC 8628).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// Where to enter it.
    pub verification_uri: String,
    /// The code.
    pub user_code: String,
    /// Seconds until it expires.
    pub expires_in_secs: u64,
}

/// Where a device flow started by [`WorkspaceService::forge_authorization`] stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// The forge has a token and no flow's end is left to report: nothing to do.
    Ready,
    /// The person has not authorized yet: this code is waiting to be entered.
    Waiting(DeviceCode),
    /// The person authorized (the login that did, when the forge reported it); the forge has the
    /// token now.
    Authorized(Option<String>),
    /// The flow failed (expired, denied, the forge unreachable); the next call starts a new one.
    Failed(String),
}

/// Git workspaces and the forge.
pub trait WorkspaceService: Send + Sync {
    /// Clones a repository or adds a worktree, on a new branch.
    fn provision(&self, req: ProvisionRequest) -> Result<WorkspaceInfo>;
    /// One workspace, `None` if unknown.
    fn get(&self, id: &str) -> Option<WorkspaceInfo>;
    /// Every workspace, oldest first.
    fn list(&self) -> Vec<WorkspaceInfo>;
    /// `git add -A` (if `all`) and commit; `Ok(None)` when there is nothing to commit.
    fn commit(&self, id: &str, message: &str, all: bool) -> Result<Option<String>>;
    /// Pushes the workspace's branch (`-u` when `set_upstream`).
    fn push(&self, id: &str, set_upstream: bool) -> Result<()>;
    /// Opens a pull request from the workspace's branch.
    fn create_pr(&self, id: &str, pr: PrRequest) -> Result<PullRequest>;
    /// Lists issues of `owner/repo`.
    fn list_issues(&self, repo: &str, query: &IssueQuery) -> Result<Vec<Issue>>;
    /// One issue.
    fn get_issue(&self, repo: &str, number: u64) -> Result<Issue>;
    /// Creates an issue.
    fn create_issue(&self, repo: &str, issue: &NewIssue) -> Result<Issue>;
    /// Updates an issue (also close and reopen through `state`).
    fn update_issue(&self, repo: &str, number: u64, update: &IssueUpdate) -> Result<Issue>;
    /// Adds a comment; returns its URL.
    fn add_comment(&self, repo: &str, number: u64, body: &str) -> Result<String>;
    /// Adds labels; returns the issue's labels afterwards.
    fn add_labels(&self, repo: &str, number: u64, labels: &[String]) -> Result<Vec<String>>;
    /// Git status as JSON `{branch, clean, staged, modified, untracked}`.
    fn status(&self, id: &str) -> Result<serde_json::Value> {
        let _ = id;
        Err(Error::NotImplemented("workspace status".into()))
    }
    /// HEAD's commit when the workspace's branch holds commits the remote lacks (ahead of
    /// `origin/<branch>` once pushed, else of `origin/<base>`), `None` when it holds none. An
    /// agent that commits its own edits (Aider) leaves a clean tree with work still to land.
    fn unpushed_head(&self, id: &str) -> Result<Option<String>> {
        let _ = id;
        Err(Error::NotImplemented("workspace unpushed commits".into()))
    }
    /// Removes a workspace; refuses (`Ok(false)`) uncommitted or unpushed work unless `force`.
    fn cleanup(&self, id: &str, force: bool) -> Result<bool> {
        let _ = (id, force);
        Err(Error::NotImplemented("workspace cleanup".into()))
    }
    /// Whether the forge has a token to act with.
    fn has_forge_token(&self) -> bool;
    /// Starts the OAuth device flow: `on_code` is called with the code to show, then this blocks
    /// until the person authorized (or the code expired). Returns the login of the account that
    /// authorized, when the forge reported it (`GET /user`; `None` if that call failed: the token
    /// still counts). Implementations without OAuth say so.
    fn authorize_forge(&self, on_code: &mut dyn FnMut(&DeviceCode)) -> Result<Option<String>> {
        let _ = on_code;
        Err(Error::NotImplemented("oauth device flow".into()))
    }
    /// The device flow without blocking, for callers whose replies reach the person only when
    /// the call returns (MCP tools). A flow that ended and was not reported yet is reported
    /// (once); one still waiting gives its code again; else, with a token, [`Authorization::Ready`];
    /// else a new flow starts on a background thread and its code is returned.
    /// Implementations without it say so ([`Error::NotImplemented`]).
    fn forge_authorization(&self) -> Result<Authorization> {
        Err(Error::NotImplemented("oauth device flow".into()))
    }
}
