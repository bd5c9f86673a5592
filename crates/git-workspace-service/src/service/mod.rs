//! The workspace service: provision, status, commit, push, pull requests, finalize, cleanup and
//! retention over a persisted registry. One file per stage: `provision.rs`, `finalize.rs`
//! (status, commit, push, pull requests), `cleanup.rs` (cleanup and retention), `remote.rs`
//! (questions to a remote before any workspace exists).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::branch::BranchNaming;
use crate::clock::{Clock, SystemClock};
use crate::credentials::{CredentialService, GitHubAppConfig, UserCredential};
use crate::device_flow::{DeviceFlowObserver, OAuthApp};
use crate::events::{Event, EventBus, EventKind};
use crate::forge::{GitHubConfig, PullRequest};
use crate::git::{Git, GitAuth, GitConfig};
use crate::hooks::OnComplete;
use crate::redact::{Redactor, Secret};
use crate::registry::{GitUser, Phase, Registry, Status, Strategy, WorkspaceRecord};
use crate::token_store::{MemoryTokenStore, TokenStore};
use crate::url::{Provider, RepoUrl};
use crate::{Error, Result};

mod cleanup;
mod finalize;
mod provision;
mod remote;

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Every workspace lives in `<base_dir>/<uuid>`; the registry is `<base_dir>/registry.json`
    /// (changes take a lock on `<base_dir>/registry.lock`).
    pub base_dir: PathBuf,
    /// How git is run.
    pub git: GitConfig,
    /// The forge.
    pub github: GitHubConfig,
    /// Prefix of generated branch names.
    pub branch_prefix: String,
    /// Identity used when a request names none.
    pub default_git_user: GitUser,
    /// Token for forge API calls when the workspace holds no credential (`GITHUB_TOKEN`).
    pub github_token: Option<Secret>,
    /// Hosts an `on_complete` webhook may be sent to.
    pub webhook_allowed_hosts: Vec<String>,
}

impl ServiceConfig {
    /// Defaults for `base_dir`: git from `PATH`, GitHub from `GITHUB_API_URL`, prefix `parallax`.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Self {
            base_dir: base_dir.into(),
            git: GitConfig::default(),
            github: GitHubConfig::from_env(),
            branch_prefix: crate::branch::DEFAULT_PREFIX.into(),
            default_git_user: GitUser::default(),
            github_token: None,
            webhook_allowed_hosts: Vec::new(),
        }
    }
}

/// Optional collaborators.
pub struct Options {
    /// Time source (TTL sweep, grant expiry, device flow).
    pub clock: Arc<dyn Clock>,
    /// Where OAuth tokens are cached.
    pub token_store: Box<dyn TokenStore>,
    /// GitHub App installation tokens.
    pub app: Option<GitHubAppConfig>,
    /// OAuth device flow.
    pub oauth: Option<(OAuthApp, Arc<dyn DeviceFlowObserver>)>,
    /// The redactor shared with the caller (register extra secrets on it).
    pub redactor: Redactor,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            token_store: Box::new(MemoryTokenStore::default()),
            app: None,
            oauth: None,
            redactor: Redactor::new(),
        }
    }
}

/// What to provision.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    /// URL, path or `owner/repo`.
    pub repo: String,
    /// Clone (default) or worktree of `parent_workspace`.
    pub strategy: Strategy,
    /// The clone a worktree belongs to.
    pub parent_workspace: Option<String>,
    /// Branch to start from (default `main`).
    pub base_branch: String,
    /// Execution id (part of the generated branch name).
    pub execution_id: Option<String>,
    /// Task id.
    pub task_id: Option<String>,
    /// Role (part of the generated branch name).
    pub role: Option<String>,
    /// Slug (part of the generated branch name).
    pub slug: Option<String>,
    /// A custom branch name instead of a generated one.
    pub branch_name: Option<String>,
    /// A credential the caller brings.
    pub credential: Option<UserCredential>,
    /// Commit identity.
    pub git_user: Option<GitUser>,
    /// Whether `push` may use `--force-with-lease`.
    pub allow_force_push: bool,
    /// Command and/or webhook run after provisioning.
    pub on_complete: Option<OnComplete>,
}

impl ProvisionRequest {
    /// A clone of `repo` from `main`.
    pub fn clone_of(repo: impl Into<String>) -> Self {
        Self {
            repo: repo.into(),
            strategy: Strategy::Clone,
            parent_workspace: None,
            base_branch: "main".into(),
            execution_id: None,
            task_id: None,
            role: None,
            slug: None,
            branch_name: None,
            credential: None,
            git_user: None,
            allow_force_push: false,
            on_complete: None,
        }
    }
}

/// A pull request to open.
#[derive(Debug, Clone, Default)]
pub struct PrRequest {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Target branch (default: the workspace's base branch).
    pub target_branch: Option<String>,
    /// Draft.
    pub draft: bool,
    /// Labels added after creation (failure is a warning).
    pub labels: Vec<String>,
    /// Reviewers requested after creation (failure is a warning).
    pub reviewers: Vec<String>,
}

/// What finalize does.
#[derive(Debug, Clone)]
pub struct FinalizeRequest {
    /// Commit message when the tree is dirty (`None` = do not commit).
    pub commit_message: Option<String>,
    /// Push the branch.
    pub push: bool,
    /// Use `--force-with-lease` (needs `allow_force_push`).
    pub force_with_lease: bool,
    /// Open a pull request.
    pub pr: Option<PrRequest>,
    /// Clean up afterwards (non-forced).
    pub cleanup: bool,
}

/// Result of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// A commit was made.
    Committed(String),
    /// Nothing to commit (not an error).
    NothingToCommit,
}

/// Result of finalize.
#[derive(Debug, Clone, Default)]
pub struct FinalizeOutcome {
    /// The new commit, if one was made.
    pub commit: Option<String>,
    /// HEAD after finalize.
    pub head: Option<String>,
    /// Whether the branch was pushed.
    pub pushed: bool,
    /// The pull request, if opened.
    pub pr: Option<PullRequest>,
    /// Non-fatal problems (labels, reviewers), redacted.
    pub warnings: Vec<String>,
    /// Whether the workspace was cleaned up.
    pub cleaned_up: bool,
}

/// The workspace service.
pub struct WorkspaceService {
    config: ServiceConfig,
    registry: Mutex<Registry>,
    git: Git,
    redactor: Redactor,
    events: EventBus,
    credentials: CredentialService,
    naming: BranchNaming,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WorkspaceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceService")
            .field("base_dir", &self.config.base_dir)
            .finish_non_exhaustive()
    }
}

/// The registry while [`WorkspaceService::lock`] holds it; the file lock is released on drop.
struct Locked<'a>(std::sync::MutexGuard<'a, Registry>);

impl std::ops::Deref for Locked<'_> {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        &self.0
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Registry {
        &mut self.0
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

impl WorkspaceService {
    /// Opens (creating if needed) the base directory and its registry with default options.
    pub fn open(config: ServiceConfig) -> Result<Self> {
        Self::open_with(config, Options::default())
    }

    /// Opens the service, then recovers: records whose directory vanished become `error` +
    /// `lost`; operations interrupted by a crash are marked; clones get `git worktree prune`.
    pub fn open_with(config: ServiceConfig, options: Options) -> Result<Self> {
        let mut config = config;
        crate::atomic::create_private_dir(&config.base_dir)?;
        // Absolute and canonical: git runs in other directories (a worktree is added from its
        // parent), and the inside-base check compares real paths.
        config.base_dir = config
            .base_dir
            .canonicalize()
            .map_err(io_err("resolve", &config.base_dir))?;
        let registry = Registry::load(&config.base_dir)?;
        let redactor = options.redactor;
        if let Some(t) = &config.github_token {
            redactor.add_token(t.expose());
        }
        let events = EventBus::new(redactor.clone());
        let mut credentials = CredentialService::new(
            config.github.clone(),
            options.token_store,
            options.clock.clone(),
            redactor.clone(),
            events.clone(),
        );
        if let Some(app) = options.app {
            credentials = credentials.with_app(app);
        }
        if let Some((app, obs)) = options.oauth {
            credentials = credentials.with_oauth(app, obs);
        }
        let svc = Self {
            git: Git::new(config.git.clone(), redactor.clone()),
            naming: BranchNaming::new(&config.branch_prefix),
            config,
            registry: Mutex::new(registry),
            redactor,
            events,
            credentials,
            clock: options.clock,
        };
        svc.recover()?;
        Ok(svc)
    }

    fn recover(&self) -> Result<()> {
        let now = self.clock.now_ms();
        let mut reg = self.lock();
        let mut prune = Vec::new();
        for r in reg.records.values_mut() {
            if r.status == Status::CleanedUp {
                continue;
            }
            // Another live process is working on it: not ours to judge.
            if matches!(r.status, Status::Provisioning | Status::Finalizing)
                && r.owner_pid.is_some_and(process_alive)
            {
                continue;
            }
            if !r.path.exists() {
                r.status = Status::Error;
                r.phase = Phase::Error;
                r.lost = true;
                r.last_error = Some(format!(
                    "workspace directory is missing: {}",
                    r.path.display()
                ));
                r.updated_at = now;
                continue;
            }
            match r.status {
                Status::Provisioning => {
                    r.status = Status::Error;
                    r.phase = Phase::Error;
                    r.last_error = Some("provisioning was interrupted".into());
                    r.updated_at = now;
                }
                Status::Finalizing => {
                    r.status = Status::Ready;
                    r.phase = Phase::Ready;
                    r.last_error = Some("finalize was interrupted".into());
                    r.updated_at = now;
                }
                _ => {}
            }
            if r.strategy == Strategy::Clone {
                prune.push(r.path.clone());
            }
        }
        reg.save()?;
        drop(reg);
        for p in prune {
            if let Err(e) = self.git.cmd(Some(&p)).args(["worktree", "prune"]).run() {
                self.events.log(&format!(
                    "git worktree prune in {} failed: {e}",
                    p.display()
                ));
            }
        }
        Ok(())
    }

    /// The registry, locked (within this process and across processes sharing the base
    /// directory) and refreshed from disk: each change is read-modify-write under this lock.
    fn lock(&self) -> Locked<'_> {
        let mut g = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        g.lock_and_refresh();
        Locked(g)
    }

    /// The event bus: subscribe to events and log lines here.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The redactor every message passes through.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The credential service.
    pub fn credentials(&self) -> &CredentialService {
        &self.credentials
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Branch naming under the configured prefix.
    pub fn naming(&self) -> &BranchNaming {
        &self.naming
    }

    /// Every workspace, including cleaned-up ones.
    pub fn list(&self) -> Vec<WorkspaceRecord> {
        self.lock().records.values().cloned().collect()
    }

    /// One workspace.
    pub fn get(&self, id: &str) -> Result<WorkspaceRecord> {
        self.lock()
            .records
            .get(id)
            .cloned()
            .ok_or_else(|| Error::WorkspaceNotFound(id.to_owned()))
    }

    /// The worktrees of a clone.
    pub fn list_worktrees(&self, parent_id: &str) -> Result<Vec<WorkspaceRecord>> {
        let parent = self.get(parent_id)?;
        let reg = self.lock();
        Ok(parent
            .worktrees
            .iter()
            .filter_map(|id| reg.records.get(id).cloned())
            .collect())
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut WorkspaceRecord)) -> Result<WorkspaceRecord> {
        let now = self.clock.now_ms();
        let mut reg = self.lock();
        let r = reg
            .records
            .get_mut(id)
            .ok_or_else(|| Error::WorkspaceNotFound(id.to_owned()))?;
        f(r);
        r.updated_at = now;
        let out = r.clone();
        reg.save()?;
        Ok(out)
    }

    fn emit(
        &self,
        kind: EventKind,
        rec: &WorkspaceRecord,
        data: serde_json::Value,
        error: Option<String>,
    ) {
        self.events.emit(Event {
            kind,
            workspace_id: rec.id.clone(),
            credential_id: rec.credential.as_ref().map(|c| c.id.clone()),
            execution_id: rec.execution_id.clone(),
            timestamp: self.clock.now_ms(),
            data,
            error,
        });
    }

    fn parse_repo(&self, repo: &str) -> Result<RepoUrl> {
        RepoUrl::parse(repo, &self.config.github.host)
    }

    /// The git credential of a workspace: its grant while valid; else, for a repository on the
    /// configured forge host only, the configured token (`GITHUB_TOKEN`), so a restarted
    /// process can still push what an earlier one provisioned.
    fn auth_for(&self, rec: &WorkspaceRecord) -> Option<GitAuth> {
        let repo = self.parse_repo(&rec.repo).ok()?;
        if let Some(cred) = &rec.credential
            && let Some(auth) = self.credentials.git_auth(&cred.id, &repo)
        {
            return Some(auth);
        }
        self.host_auth(&repo)
    }

    /// The configured token (`GITHUB_TOKEN`) as a credential for `repo`'s origin, for a
    /// repository on the configured forge host only; `None` for any other host.
    fn host_auth(&self, repo: &RepoUrl) -> Option<GitAuth> {
        let token = self.config.github_token.as_ref()?;
        if repo.provider(&self.config.github.host) != Provider::Github {
            return None;
        }
        Some(GitAuth::basic(repo.http_origin()?, token.expose()))
    }

    /// The environment that gives an agent running in this workspace the workspace's git
    /// credential: the same host-scoped `extraheader` variables git gets, plus `GH_TOKEN`.
    /// Empty when the workspace has no token (local or SSH remotes, public repositories). Only
    /// for callers whose settings allow agents git credentials (`agent_git_credentials`); by
    /// default an agent gets none.
    pub fn agent_git_env(&self, id: &str) -> Result<Vec<(String, String)>> {
        let rec = self.get(id)?;
        let Some(auth) = self.auth_for(&rec) else {
            return Ok(Vec::new());
        };
        let mut env = auth.env(0);
        let token = rec
            .credential
            .as_ref()
            .and_then(|c| self.credentials.token(&c.id))
            .or_else(|| self.config.github_token.clone());
        if let Some(t) = token {
            env.push(("GH_TOKEN".into(), t.expose().to_owned()));
        }
        Ok(env)
    }
}

/// Whether another process with this id is running (Linux: `/proc/<pid>`; elsewhere unknown,
/// so an in-progress record is treated as interrupted).
fn process_alive(pid: u32) -> bool {
    pid != std::process::id()
        && cfg!(target_os = "linux")
        && Path::new("/proc").join(pid.to_string()).exists()
}

// The service is shared between threads (an HTTP server, a supervisor): keep it Send + Sync.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<WorkspaceService>();
};
