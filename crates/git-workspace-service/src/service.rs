//! The workspace service: provision, status, commit, push, pull requests, finalize, cleanup and
//! retention over a persisted registry.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::branch::BranchNaming;
use crate::clock::{Clock, SystemClock};
use crate::credentials::{
    CredentialRequest, CredentialService, GitHubAppConfig, GrantedTo, UserCredential, new_id,
};
use crate::device_flow::{DeviceFlowObserver, OAuthApp, Permissions};
use crate::events::{Event, EventBus, EventKind};
use crate::forge::{GitHub, GitHubConfig, NewPullRequest, PullRequest};
use crate::git::{Git, GitAuth, GitConfig, GitProgress};
use crate::hooks::{self, OnComplete};
use crate::redact::{Redactor, Secret};
use crate::registry::{
    CredentialRef, GitUser, Phase, PullRequestRef, Registry, Status, Strategy, WorkspaceRecord,
};
use crate::status::{self, WorkspaceStatus};
use crate::token_store::{MemoryTokenStore, TokenStore};
use crate::url::{Provider, RepoUrl};
use crate::{Error, Result, validate_branch_name};

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Every workspace lives in `<base_dir>/<uuid>`; the registry is `<base_dir>/registry.json`.
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

    /// The registry, refreshed from disk: several processes (the CLI, a server) may share one
    /// base directory, and each change is read-modify-write under this lock.
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        let mut g = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        g.refresh();
        g
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

    /// Provisions a workspace (no progress reports).
    pub fn provision(&self, req: ProvisionRequest) -> Result<WorkspaceRecord> {
        self.provision_with_progress(req, &mut |_| {})
    }

    /// Adds a worktree to a clone: shorthand for a worktree provision of the parent's repository.
    pub fn add_worktree(
        &self,
        parent_id: &str,
        mut req: ProvisionRequest,
    ) -> Result<WorkspaceRecord> {
        let parent = self.get(parent_id)?;
        req.strategy = Strategy::Worktree;
        req.parent_workspace = Some(parent_id.to_owned());
        req.repo = parent.repo;
        if req.base_branch.is_empty() {
            req.base_branch = parent.base_branch;
        }
        self.provision(req)
    }

    /// Provisions a workspace, reporting clone and fetch progress.
    pub fn provision_with_progress(
        &self,
        req: ProvisionRequest,
        on_progress: &mut dyn FnMut(GitProgress),
    ) -> Result<WorkspaceRecord> {
        // Everything is validated before anything touches the disk.
        let repo = self.parse_repo(&req.repo)?;
        validate_branch_name(&req.base_branch)?;
        let parent = match req.strategy {
            Strategy::Clone => None,
            Strategy::Worktree => {
                let pid = req.parent_workspace.clone().ok_or(Error::ParentRequired)?;
                let p = self
                    .get(&pid)
                    .map_err(|_| Error::ParentNotFound(pid.clone()))?;
                if p.strategy == Strategy::Worktree {
                    return Err(Error::ParentIsWorktree(pid));
                }
                if p.status != Status::Ready {
                    return Err(Error::InvalidState {
                        id: pid,
                        status: p.status.as_str().into(),
                        op: "add a worktree",
                    });
                }
                let prepo = self.parse_repo(&p.repo)?;
                if prepo.identity() != repo.identity() {
                    return Err(Error::WorktreeRepoMismatch {
                        repo: req.repo.clone(),
                        parent_repo: p.repo.clone(),
                    });
                }
                Some(p)
            }
        };
        let id = new_id();
        let (branch, managed) = match &req.branch_name {
            Some(b) => {
                validate_branch_name(b)?;
                (b.clone(), self.naming.is_managed(b))
            }
            None => {
                let exec = req
                    .execution_id
                    .clone()
                    .unwrap_or_else(|| id[..8].to_owned());
                let role = req.role.clone().unwrap_or_else(|| "agent".into());
                let b = self
                    .naming
                    .generate(&exec, &role, req.slug.as_deref())
                    .ok_or_else(|| Error::InvalidInput {
                        what: "branch parts",
                        reason: format!(
                            "execution id {exec:?} or role {role:?} has no usable characters"
                        ),
                    })?;
                validate_branch_name(&b)?;
                (b, true)
            }
        };
        for (what, v) in [
            ("execution id", &req.execution_id),
            ("task id", &req.task_id),
        ] {
            if let Some(v) = v
                && v.chars().any(char::is_control)
            {
                return Err(Error::InvalidInput {
                    what,
                    reason: "contains a control character".into(),
                });
            }
        }
        let git_user = req
            .git_user
            .clone()
            .unwrap_or_else(|| self.config.default_git_user.clone());
        validate_identity(&git_user)?;
        let now = self.clock.now_ms();
        let path = self.config.base_dir.join(&id);
        let mut rec = WorkspaceRecord {
            id: id.clone(),
            path: path.clone(),
            repo: repo.url.clone(),
            strategy: req.strategy,
            parent_id: parent.as_ref().map(|p| p.id.clone()),
            worktrees: Vec::new(),
            base_branch: req.base_branch.clone(),
            branch: branch.clone(),
            managed,
            execution_id: req.execution_id.clone(),
            task_id: req.task_id.clone(),
            role: req.role.clone(),
            slug: req.slug.clone(),
            status: Status::Provisioning,
            phase: Phase::Initializing,
            lost: false,
            last_error: None,
            git_user,
            credential: parent.as_ref().and_then(|p| p.credential.clone()),
            allow_force_push: req.allow_force_push,
            last_commit: None,
            pr: None,
            labels: Default::default(),
            owner_pid: Some(std::process::id()),
            created_at: now,
            updated_at: now,
        };
        {
            let mut reg = self.lock();
            reg.records.insert(id.clone(), rec.clone());
            reg.save()?;
        }
        self.emit(
            EventKind::Provisioning,
            &rec,
            serde_json::json!({"repo": rec.repo, "branch": branch}),
            None,
        );

        let result = match &parent {
            None => self.do_clone(&mut rec, &repo, req.credential.clone(), on_progress),
            Some(p) => self.do_worktree(&mut rec, p, on_progress),
        };
        match result {
            Ok(()) => {
                let rec = self.update(&id, |r| {
                    r.credential = rec.credential.clone();
                    r.status = Status::Ready;
                    r.phase = Phase::Ready;
                })?;
                if let Some(p) = &parent {
                    self.update(&p.id, |r| r.worktrees.push(id.clone()))?;
                    self.emit(
                        EventKind::WorktreeAdded,
                        &rec,
                        serde_json::json!({"parentWorkspaceId": p.id, "branch": rec.branch}),
                        None,
                    );
                }
                self.emit(
                    EventKind::Ready,
                    &rec,
                    serde_json::json!({"path": rec.path, "branch": rec.branch}),
                    None,
                );
                if let Some(h) = &req.on_complete {
                    self.run_hook(h, &rec);
                }
                Ok(rec)
            }
            Err(e) => {
                let msg = self.redactor.redact(&e.to_string());
                // Remove the half-made directory; the record stays, with the error.
                if let Some(p) = &parent {
                    let _ = self
                        .git
                        .cmd(Some(&p.path))
                        .args(["worktree", "remove", "--force", "--"])
                        .arg(&path)
                        .run();
                    let _ = self
                        .git
                        .cmd(Some(&p.path))
                        .args(["worktree", "prune"])
                        .run();
                }
                if path.exists() && self.inside_base(&path) {
                    let _ = std::fs::remove_dir_all(&path);
                }
                if let Some(c) = &rec.credential
                    && parent.is_none()
                {
                    self.credentials.revoke(&c.id);
                }
                let rec = self.update(&id, |r| {
                    r.status = Status::Error;
                    r.phase = Phase::Error;
                    r.last_error = Some(msg.clone());
                })?;
                self.emit(EventKind::Error, &rec, serde_json::Value::Null, Some(msg));
                if let Some(h) = req.on_complete.as_ref().filter(|h| h.run_on_error) {
                    self.run_hook(h, &rec);
                }
                Err(e)
            }
        }
    }

    fn run_hook(&self, hook: &OnComplete, rec: &WorkspaceRecord) {
        hooks::run(
            hook,
            rec,
            &self.config.webhook_allowed_hosts,
            self.clock.now_ms(),
            &self.events,
            &self.redactor,
        );
    }

    fn set_phase(&self, rec: &WorkspaceRecord, phase: Phase) -> Result<()> {
        self.update(&rec.id, |r| r.phase = phase).map(|_| ())
    }

    fn do_clone(
        &self,
        rec: &mut WorkspaceRecord,
        repo: &RepoUrl,
        user: Option<UserCredential>,
        on_progress: &mut dyn FnMut(GitProgress),
    ) -> Result<()> {
        let optional = user.is_none();
        let grant = self.credentials.request(CredentialRequest {
            repo: repo.clone(),
            user,
            permissions: Permissions::WRITE,
            ttl: None,
            granted_to: GrantedTo {
                workspace_id: Some(rec.id.clone()),
                execution_id: rec.execution_id.clone(),
                task_id: rec.task_id.clone(),
                agent_id: None,
            },
            optional,
        })?;
        rec.credential = grant.as_ref().map(|g| CredentialRef {
            id: g.id.clone(),
            kind: g.kind.as_str().into(),
            expires_at: Some(g.expires_at),
        });
        self.update(&rec.id, |r| {
            r.credential = rec.credential.clone();
            r.phase = Phase::Cloning;
        })?;
        let auth = self.auth_for(rec);
        self.git
            .cmd(None)
            .args(["clone", "--progress", "--branch"])
            .arg(&rec.base_branch)
            .arg("--")
            .arg(&repo.url)
            .arg(&rec.path)
            .auth(auth.as_ref())
            .run_progress(on_progress)?;
        self.set_phase(rec, Phase::CreatingBranch)?;
        create_and_switch_branch(&rec.path, &rec.branch, &rec.git_user)?;
        self.set_phase(rec, Phase::Configuring)?;
        // The workspace's own clone: its local config is the right place for its identity.
        for (k, v) in [
            ("user.name", &rec.git_user.name),
            ("user.email", &rec.git_user.email),
        ] {
            self.git
                .cmd(Some(&rec.path))
                .args(["config", "--local", "--", k])
                .arg(v)
                .run()?;
        }
        Ok(())
    }

    fn do_worktree(
        &self,
        rec: &mut WorkspaceRecord,
        parent: &WorkspaceRecord,
        on_progress: &mut dyn FnMut(GitProgress),
    ) -> Result<()> {
        self.set_phase(rec, Phase::Cloning)?;
        let auth = self.auth_for(parent);
        if let Err(e) = self
            .git
            .cmd(Some(&parent.path))
            .args(["fetch", "--progress", "origin", "--"])
            .arg(&rec.base_branch)
            .auth(auth.as_ref())
            .run_progress(on_progress)
        {
            self.events.log(&format!(
                "fetch of {} for worktree {} failed: {e}",
                rec.base_branch, rec.id
            ));
        }
        self.set_phase(rec, Phase::CreatingBranch)?;
        let start = format!("origin/{}", rec.base_branch);
        let start = if status::rev_parse(&parent.path, &start).is_ok() {
            start
        } else {
            rec.base_branch.clone()
        };
        self.git
            .cmd(Some(&parent.path))
            .args(["worktree", "add", "-b"])
            .arg(&rec.branch)
            .arg("--")
            .arg(&rec.path)
            .arg(&start)
            .run()?;
        // Starting from a remote-tracking branch sets it as upstream; the first push sets the real one.
        let _ = self
            .git
            .cmd(Some(&rec.path))
            .args(["branch", "--unset-upstream"])
            .run();
        self.set_phase(rec, Phase::Configuring)?;
        // Identity per worktree, leaving the parent's own identity alone: worktree-scoped config.
        self.git
            .cmd(Some(&parent.path))
            .args(["config", "--local", "extensions.worktreeConfig", "true"])
            .run()?;
        for (k, v) in [
            ("user.name", &rec.git_user.name),
            ("user.email", &rec.git_user.email),
        ] {
            self.git
                .cmd(Some(&rec.path))
                .args(["config", "--worktree", "--", k])
                .arg(v)
                .run()?;
        }
        Ok(())
    }

    /// Adds patterns to the repository's `.git/info/exclude` (for files injected into a
    /// workspace: memory files, agent config, hooks), so they are never committed.
    pub fn add_excludes(&self, id: &str, patterns: &[&str]) -> Result<()> {
        let rec = self.get(id)?;
        let dir = status::common_dir(&rec.path)?.join("info");
        std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let file = dir.join("exclude");
        let mut text = std::fs::read_to_string(&file).unwrap_or_default();
        for p in patterns {
            if p.contains(['\n', '\r']) {
                return Err(Error::InvalidInput {
                    what: "exclude pattern",
                    reason: format!("{p:?} contains a newline"),
                });
            }
            if !text.lines().any(|l| l == *p) {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(p);
                text.push('\n');
            }
        }
        std::fs::write(&file, text).map_err(io_err("write", &file))
    }

    /// The working-tree status of a workspace (gix).
    pub fn status(&self, id: &str) -> Result<WorkspaceStatus> {
        let rec = self.get(id)?;
        self.require_present(&rec, "read status")?;
        status::status(&rec.path, &rec.base_branch)
    }

    fn require_present(&self, rec: &WorkspaceRecord, op: &'static str) -> Result<()> {
        if matches!(rec.status, Status::CleanedUp | Status::Provisioning)
            || rec.lost
            || !rec.path.exists()
        {
            return Err(Error::InvalidState {
                id: rec.id.clone(),
                status: if rec.lost {
                    "lost".into()
                } else {
                    rec.status.as_str().into()
                },
                op,
            });
        }
        Ok(())
    }

    /// `git add -A` and `git commit -m <message>` (hooks and signing apply), with the workspace's
    /// identity. Nothing to commit is not an error.
    pub fn commit(&self, id: &str, message: &str) -> Result<CommitOutcome> {
        let rec = self.get(id)?;
        self.require_present(&rec, "commit")?;
        if message.trim().is_empty() {
            return Err(Error::InvalidInput {
                what: "commit message",
                reason: "it is empty".into(),
            });
        }
        self.git.cmd(Some(&rec.path)).args(["add", "-A"]).run()?;
        let st = status::status(&rec.path, &rec.base_branch)?;
        if st.staged.is_empty() {
            return Ok(CommitOutcome::NothingToCommit);
        }
        let u = &rec.git_user;
        self.git
            .cmd(Some(&rec.path))
            .args(["commit", "-q", "-m"])
            .arg(message)
            .env("GIT_AUTHOR_NAME", &u.name)
            .env("GIT_AUTHOR_EMAIL", &u.email)
            .env("GIT_COMMITTER_NAME", &u.name)
            .env("GIT_COMMITTER_EMAIL", &u.email)
            .run()?;
        let sha = status::rev_parse(&rec.path, "HEAD")?;
        let rec = self.update(id, |r| r.last_commit = Some(sha.clone()))?;
        self.emit(
            EventKind::Committed,
            &rec,
            serde_json::json!({"sha": sha}),
            None,
        );
        Ok(CommitOutcome::Committed(sha))
    }

    /// `git push -u origin <branch>`; `force_with_lease` only when the workspace allows it.
    pub fn push(&self, id: &str, force_with_lease: bool) -> Result<()> {
        let rec = self.get(id)?;
        self.require_present(&rec, "push")?;
        if force_with_lease && !rec.allow_force_push {
            return Err(Error::NotPermitted(format!(
                "force push is not allowed for workspace {id}"
            )));
        }
        let auth = self.auth_for(&rec);
        let mut cmd = self
            .git
            .cmd(Some(&rec.path))
            .args(["push", "--porcelain", "-u"]);
        if force_with_lease {
            cmd = cmd.arg("--force-with-lease");
        }
        cmd.args(["origin", "--"])
            .arg(format!("refs/heads/{0}:refs/heads/{0}", rec.branch))
            .auth(auth.as_ref())
            .run()?;
        self.emit(
            EventKind::Pushed,
            &rec,
            serde_json::json!({"branch": rec.branch}),
            None,
        );
        Ok(())
    }

    /// A GitHub client for a workspace's repository: its grant's token, else the configured one.
    pub fn forge_for(&self, rec: &WorkspaceRecord) -> Result<(GitHub, String, String)> {
        let repo = self.parse_repo(&rec.repo)?;
        if repo.provider(&self.config.github.host) != Provider::Github {
            return Err(Error::InvalidInput {
                what: "repository for a pull request",
                reason: format!("{} is not on {}", rec.repo, self.config.github.host),
            });
        }
        let (owner, name) = repo.owner_repo().ok_or_else(|| Error::InvalidRepo {
            repo: rec.repo.clone(),
            reason: "no owner/repo in the path".into(),
        })?;
        let token = rec
            .credential
            .as_ref()
            .and_then(|c| self.credentials.token(&c.id))
            .or_else(|| self.config.github_token.clone());
        Ok((
            GitHub::new(self.config.github.clone(), token, self.redactor.clone()),
            owner,
            name,
        ))
    }

    /// Opens a pull request from the workspace's branch, then adds labels and reviewers (their
    /// failures are warnings, returned and logged).
    pub fn create_pr(&self, id: &str, pr: &PrRequest) -> Result<(PullRequest, Vec<String>)> {
        let rec = self.get(id)?;
        if pr.title.trim().is_empty() {
            return Err(Error::InvalidInput {
                what: "pull request title",
                reason: "it is empty".into(),
            });
        }
        let base = pr
            .target_branch
            .clone()
            .unwrap_or_else(|| rec.base_branch.clone());
        validate_branch_name(&base)?;
        let (gh, owner, name) = self.forge_for(&rec)?;
        let created = gh.create_pull(
            &owner,
            &name,
            &NewPullRequest {
                title: pr.title.clone(),
                body: pr.body.clone(),
                head: rec.branch.clone(),
                base,
                draft: pr.draft,
            },
        )?;
        let mut warnings = Vec::new();
        if !pr.labels.is_empty()
            && let Err(e) = gh.add_labels(&owner, &name, created.number, &pr.labels)
        {
            warnings.push(self.redactor.redact(&format!("labels not added: {e}")));
        }
        if !pr.reviewers.is_empty()
            && let Err(e) = gh.request_reviewers(&owner, &name, created.number, &pr.reviewers)
        {
            warnings.push(
                self.redactor
                    .redact(&format!("reviewers not requested: {e}")),
            );
        }
        for w in &warnings {
            self.events.log(w);
        }
        let rec = self.update(id, |r| {
            r.pr = Some(PullRequestRef {
                number: created.number,
                url: created.url.clone(),
            })
        })?;
        self.emit(
            EventKind::PrCreated,
            &rec,
            serde_json::json!({"prNumber": created.number, "prUrl": created.url}),
            None,
        );
        Ok((created, warnings))
    }

    /// Commit if dirty, push, open a pull request, optionally clean up. On failure the
    /// workspace returns to `ready` with `last_error` set and `workspace:error` is emitted.
    pub fn finalize(&self, id: &str, req: &FinalizeRequest) -> Result<FinalizeOutcome> {
        let rec = self.get(id)?;
        self.require_present(&rec, "finalize")?;
        if rec.status != Status::Ready {
            return Err(Error::InvalidState {
                id: id.into(),
                status: rec.status.as_str().into(),
                op: "finalize",
            });
        }
        let rec = self.update(id, |r| {
            r.status = Status::Finalizing;
            r.last_error = None;
            r.owner_pid = Some(std::process::id());
        })?;
        self.emit(EventKind::Finalizing, &rec, serde_json::Value::Null, None);
        let result = self.finalize_steps(id, req);
        match result {
            Ok(mut out) => {
                if req.cleanup {
                    self.update(id, |r| {
                        r.status = Status::Ready;
                        r.phase = Phase::CleaningUp;
                    })?;
                    match self.cleanup(id, false) {
                        Ok(_) => out.cleaned_up = true,
                        Err(e) => out
                            .warnings
                            .push(self.redactor.redact(&format!("cleanup refused: {e}"))),
                    }
                }
                if !out.cleaned_up {
                    self.update(id, |r| {
                        r.status = Status::Ready;
                        r.phase = Phase::Done;
                    })?;
                }
                Ok(out)
            }
            Err(e) => {
                let msg = self.redactor.redact(&e.to_string());
                let rec = self.update(id, |r| {
                    r.status = Status::Ready;
                    r.phase = Phase::Ready;
                    r.last_error = Some(msg.clone());
                })?;
                self.emit(EventKind::Error, &rec, serde_json::Value::Null, Some(msg));
                Err(e)
            }
        }
    }

    fn finalize_steps(&self, id: &str, req: &FinalizeRequest) -> Result<FinalizeOutcome> {
        let mut out = FinalizeOutcome::default();
        if let Some(msg) = &req.commit_message {
            self.update(id, |r| r.phase = Phase::Committing)?;
            if let CommitOutcome::Committed(sha) = self.commit(id, msg)? {
                out.commit = Some(sha);
            }
        }
        if req.push {
            self.update(id, |r| r.phase = Phase::Pushing)?;
            self.push(id, req.force_with_lease)?;
            out.pushed = true;
        }
        if let Some(pr) = &req.pr {
            self.update(id, |r| r.phase = Phase::CreatingPr)?;
            let (created, warnings) = self.create_pr(id, pr)?;
            out.pr = Some(created);
            out.warnings.extend(warnings);
        }
        out.head = status::rev_parse(&self.get(id)?.path, "HEAD").ok();
        Ok(out)
    }

    fn inside_base(&self, path: &Path) -> bool {
        let (Ok(base), Ok(p)) = (self.config.base_dir.canonicalize(), path.canonicalize()) else {
            return false;
        };
        p != base && p.starts_with(&base)
    }

    fn check_safe(&self, rec: &WorkspaceRecord) -> Result<()> {
        if rec.status == Status::CleanedUp || rec.lost || !rec.path.exists() {
            return Ok(());
        }
        let st = status::status(&rec.path, &rec.base_branch)?;
        if !st.clean {
            return Err(Error::UncommittedChanges(rec.id.clone()));
        }
        if st.has_unpushed() {
            return Err(Error::UnpushedCommits(rec.id.clone()));
        }
        Ok(())
    }

    /// Removes a workspace. Unless `force`, refuses when it (or, for a clone, any of its
    /// worktrees) has uncommitted changes or unpushed commits; then nothing is removed. A clone's
    /// worktrees go first, then its credential is revoked. Only a directory strictly inside
    /// the base directory is deleted. Unknown ids are a no-op (`Ok(false)`).
    pub fn cleanup(&self, id: &str, force: bool) -> Result<bool> {
        let Ok(rec) = self.get(id) else {
            return Ok(false);
        };
        if rec.status == Status::CleanedUp {
            return Ok(false);
        }
        let worktrees: Vec<WorkspaceRecord> = {
            let reg = self.lock();
            rec.worktrees
                .iter()
                .filter_map(|w| reg.records.get(w).cloned())
                .filter(|w| w.status != Status::CleanedUp)
                .collect()
        };
        if !force {
            for w in &worktrees {
                self.check_safe(w)?;
            }
            self.check_safe(&rec)?;
        }
        self.update(id, |r| r.phase = Phase::CleaningUp)?;
        for w in &worktrees {
            self.remove_worktree_dir(&rec, w)?;
        }
        if !worktrees.is_empty() && rec.path.exists() {
            let _ = self
                .git
                .cmd(Some(&rec.path))
                .args(["worktree", "prune"])
                .run();
        }
        match (&rec.strategy, &rec.parent_id) {
            (Strategy::Worktree, Some(pid)) => {
                let parent = self.get(pid)?;
                self.remove_worktree_dir(&parent, &rec)?;
                if parent.path.exists() {
                    let _ = self
                        .git
                        .cmd(Some(&parent.path))
                        .args(["worktree", "prune"])
                        .run();
                }
            }
            _ => {
                if let Some(c) = &rec.credential {
                    self.credentials.revoke(&c.id);
                }
                self.delete_dir(&rec.path)?;
            }
        }
        let rec = self.update(id, |r| {
            r.status = Status::CleanedUp;
            r.phase = Phase::Done;
        })?;
        self.emit(EventKind::CleanedUp, &rec, serde_json::Value::Null, None);
        Ok(true)
    }

    /// Removes a worktree (cleanup of a worktree); a clone is an error.
    pub fn remove_worktree(&self, id: &str, force: bool) -> Result<bool> {
        let rec = self.get(id)?;
        if rec.strategy != Strategy::Worktree {
            return Err(Error::NotAWorktree(id.into()));
        }
        self.cleanup(id, force)
    }

    fn remove_worktree_dir(&self, parent: &WorkspaceRecord, w: &WorkspaceRecord) -> Result<()> {
        if w.path.exists() {
            if parent.path.exists() {
                self.git
                    .cmd(Some(&parent.path))
                    .args(["worktree", "remove", "--force", "--"])
                    .arg(&w.path)
                    .run()?;
            }
            self.delete_dir(&w.path)?;
        }
        let w = self.update(&w.id, |r| {
            r.status = Status::CleanedUp;
            r.phase = Phase::Done;
        })?;
        self.update(&parent.id, |r| r.worktrees.retain(|x| x != &w.id))?;
        self.emit(
            EventKind::WorktreeRemoved,
            &w,
            serde_json::json!({"parentWorkspaceId": parent.id}),
            None,
        );
        Ok(())
    }

    fn delete_dir(&self, path: &Path) -> Result<()> {
        if !path.exists() {
            return Ok(());
        }
        if !self.inside_base(path) {
            return Err(Error::OutsideBaseDir(path.to_path_buf()));
        }
        std::fs::remove_dir_all(path).map_err(io_err("remove", path))
    }

    /// Non-forced cleanup of every workspace older than `ttl` (worktrees before clones); returns
    /// what was cleaned and what was refused.
    pub fn sweep_expired(&self, ttl: Duration) -> Vec<(String, Result<bool>)> {
        let now = self.clock.now_ms();
        let mut due: Vec<WorkspaceRecord> = self
            .list()
            .into_iter()
            .filter(|r| {
                r.status != Status::CleanedUp && r.created_at + ttl.as_millis() as u64 <= now
            })
            .collect();
        due.sort_by_key(|r| r.strategy == Strategy::Clone);
        due.into_iter()
            .map(|r| {
                let id = r.id.clone();
                let res = if self.get(&id).is_ok_and(|x| x.status == Status::CleanedUp) {
                    Ok(false)
                } else {
                    self.cleanup(&id, false)
                };
                (id, res)
            })
            .collect()
    }

    /// Cleans every workspace of an execution (non-forced), then revokes its grants.
    pub fn cleanup_for_execution(&self, execution_id: &str) -> Vec<(String, Result<bool>)> {
        let mut ids: Vec<WorkspaceRecord> = self
            .list()
            .into_iter()
            .filter(|r| {
                r.execution_id.as_deref() == Some(execution_id) && r.status != Status::CleanedUp
            })
            .collect();
        ids.sort_by_key(|r| r.strategy == Strategy::Clone);
        let out = ids
            .into_iter()
            .map(|r| (r.id.clone(), self.cleanup(&r.id, false)))
            .collect();
        self.credentials.revoke_for_execution(execution_id);
        out
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

fn validate_identity(u: &GitUser) -> Result<()> {
    for (what, v) in [("git user name", &u.name), ("git user email", &u.email)] {
        if v.is_empty()
            || v.starts_with('-')
            || v.chars().any(|c| c.is_control() || c == '<' || c == '>')
        {
            return Err(Error::InvalidInput {
                what,
                reason: format!(
                    "{v:?} is empty, starts with '-' or contains control characters or <>"
                ),
            });
        }
    }
    Ok(())
}

/// Creates `refs/heads/<branch>` at HEAD and points HEAD at it, in-process with gix. The
/// working tree and index already match HEAD, so nothing else changes.
fn create_and_switch_branch(path: &Path, branch: &str, user: &GitUser) -> Result<()> {
    use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
    let repo = status::open(path)?;
    let gerr = |op: &'static str| {
        let path = path.to_path_buf();
        move |e: gix::Error| Error::Gix {
            op,
            path,
            source: Box::new(e),
        }
    };
    let head = repo.head_id().map_err(gerr("read HEAD"))?.detach();
    let full = format!("refs/heads/{branch}");
    let name: gix::refs::FullName =
        full.as_str()
            .try_into()
            .map_err(
                |e: gix::validate::reference::name::Error| Error::InvalidBranchName {
                    name: branch.into(),
                    reason: e.to_string(),
                },
            )?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let time = format!("{secs} +0000");
    let sig = gix::actor::SignatureRef {
        name: user.name.as_str().into(),
        email: user.email.as_str().into(),
        time: &time,
    };
    let log = |message: String| LogChange {
        mode: RefLog::AndReference,
        force_create_reflog: false,
        message: message.into(),
    };
    repo.edit_references_as(
        [
            RefEdit {
                change: Change::Update {
                    log: log(format!("branch: Created from {head}")),
                    expected: PreviousValue::MustNotExist,
                    new: gix::refs::Target::Object(head),
                },
                name: name.clone(),
                deref: false,
            },
            RefEdit {
                change: Change::Update {
                    log: log(format!("checkout: moving to {branch}")),
                    expected: PreviousValue::Any,
                    new: gix::refs::Target::Symbolic(name),
                },
                name: "HEAD".try_into().expect("HEAD is a valid name"),
                deref: false,
            },
        ],
        Some(sig),
    )
    .map_err(gerr("create the branch"))?;
    Ok(())
}
