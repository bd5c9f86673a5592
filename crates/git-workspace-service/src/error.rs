//! The crate's one error type. Every message that can carry text from outside (git's stderr, a
//! forge's error body) is redacted before it is stored here.

use std::path::PathBuf;

/// Everything that can go wrong in `git-workspace-service`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No workspace in the registry has this id.
    #[error("workspace not found: {0}")]
    WorkspaceNotFound(String),
    /// A repository location could not be parsed or is refused.
    #[error("invalid repository format: {repo:?}: {reason}")]
    InvalidRepo {
        /// The input as given.
        repo: String,
        /// Why it was refused.
        reason: String,
    },
    /// A branch name is not a valid git branch name.
    #[error("invalid branch name {name:?}: {reason}")]
    InvalidBranchName {
        /// The name as given.
        name: String,
        /// The rule it breaks.
        reason: String,
    },
    /// Some other input was refused.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which input.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A clone has worktrees no workspace record covers; deleting it would delete their
    /// history, so it is refused, forced or not.
    #[error("workspace {id} has worktrees this service did not record: {paths}")]
    ForeignWorktrees {
        /// The clone's workspace id.
        id: String,
        /// The worktree directories.
        paths: String,
    },
    /// A workspace's own git configuration (the agent's to write) redirects remotes or runs
    /// programs, so no credential is given to git there.
    #[error(
        "refusing to give git a credential in {path}: its repository configuration sets {key} \
         (remove it, or push without a credential)"
    )]
    UnsafeRepoConfig {
        /// The workspace directory.
        path: String,
        /// The configuration key found.
        key: String,
    },
    /// A `git` process could not be started.
    #[error("cannot run git {args}")]
    GitSpawn {
        /// The arguments (never contain secrets).
        args: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A `git` process failed; its stderr is redacted.
    #[error("git {args} failed ({status}): {stderr}")]
    Git {
        /// The arguments (never contain secrets).
        args: String,
        /// The exit status, as text.
        status: String,
        /// The tail of git's stderr, with every known secret redacted.
        stderr: String,
    },
    /// A `git` process did not finish within its time limit and was killed.
    #[error("git {args} did not finish within {seconds}s")]
    GitTimeout {
        /// The arguments (never contain secrets).
        args: String,
        /// The limit, in seconds.
        seconds: u64,
    },
    /// An in-process repository operation (gix) failed.
    #[error("cannot {op} in {path}")]
    Gix {
        /// What was attempted.
        op: &'static str,
        /// The repository.
        path: PathBuf,
        /// The gix error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A filesystem operation failed.
    #[error("cannot {op} {path}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The persisted registry or token file is not valid JSON.
    #[error("cannot parse {path}")]
    Json {
        /// Which file.
        path: PathBuf,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// `strategy: worktree` without a parent.
    #[error("parent workspace is required when strategy is \"worktree\"")]
    ParentRequired,
    /// The named parent does not exist.
    #[error("parent workspace not found: {0}")]
    ParentNotFound(String),
    /// A worktree of a worktree was asked for.
    #[error("parent workspace must be a clone, not a worktree: {0}")]
    ParentIsWorktree(String),
    /// The worktree names another repository than its parent.
    #[error("worktree must be for the same repository as parent: {repo} is not {parent_repo}")]
    WorktreeRepoMismatch {
        /// The repository asked for.
        repo: String,
        /// The parent's repository.
        parent_repo: String,
    },
    /// `remove_worktree` on a clone.
    #[error("workspace is not a worktree, use cleanup() instead: {0}")]
    NotAWorktree(String),
    /// The workspace is not in a state that allows the operation.
    #[error("workspace {id} is {status}, cannot {op}")]
    InvalidState {
        /// The workspace.
        id: String,
        /// Its status.
        status: String,
        /// What was asked.
        op: &'static str,
    },
    /// Cleanup refused: uncommitted work.
    #[error("workspace has uncommitted changes: {0}")]
    UncommittedChanges(String),
    /// Cleanup refused: commits that no remote has.
    #[error("workspace has unpushed commits: {0}")]
    UnpushedCommits(String),
    /// A path to delete resolved outside the base directory.
    #[error("workspace path resolves outside base dir, refusing to delete: {0}")]
    OutsideBaseDir(PathBuf),
    /// The caller may not do this (for example force-push).
    #[error("not permitted: {0}")]
    NotPermitted(String),
    /// No credential source yielded a token.
    #[error(
        "no credentials available for repository: {0}. configure oauth to enable interactive authentication"
    )]
    NoCredentials(String),
    /// The OAuth device flow ended without a token.
    #[error("oauth device flow failed: {0}")]
    DeviceFlow(String),
    /// A forge (GitHub) request failed at the transport level.
    #[error("{method} {url} failed: {message}")]
    Http {
        /// HTTP method.
        method: &'static str,
        /// URL without credentials.
        url: String,
        /// The transport's reason, redacted.
        message: String,
    },
    /// A forge answered with an error status; its error body is surfaced, redacted.
    #[error("{method} {url} returned {status}: {message}")]
    Forge {
        /// HTTP method.
        method: &'static str,
        /// URL without credentials.
        url: String,
        /// HTTP status.
        status: u16,
        /// GitHub's `message` and `errors`, redacted.
        message: String,
    },
    /// The encrypted token store could not be read or written.
    #[error("token store {path}: {reason}")]
    TokenStore {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong (never the token).
        reason: String,
    },
    /// A sealed token file did not open: the key or passphrase is wrong, or the file was
    /// altered (authenticated encryption refuses both). The file is left as it was.
    #[error("cannot open token file {path}: wrong key or passphrase, or the file was altered")]
    TokenStoreUnseal {
        /// The token file.
        path: PathBuf,
    },
}
