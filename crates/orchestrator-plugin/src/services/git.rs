//! `CODING_WORKSPACE_SERVICE` over `git-workspace-service`.

use git_workspace_service as gws;
use gws::forge::GitHub;
use gws::registry::{Strategy, WorkspaceRecord};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::workspace::{
    Authorization, DeviceCode, Issue, IssueQuery, IssueUpdate, NewIssue, PrRequest,
    ProvisionRequest, PullRequest, WorkspaceInfo, WorkspaceService,
};
use crate::settings::WorkspaceConfig;
use crate::{Error, Result};

/// The workspace service of the binary.
pub struct GitWorkspaces {
    inner: gws::WorkspaceService,
    forge: Arc<ForgeSlot>,
    forge_config: gws::forge::GitHubConfig,
    oauth_client_id: Option<String>,
    /// A device flow started by [`WorkspaceService::forge_authorization`] and not yet reported
    /// finished.
    pending: Mutex<Option<PendingFlow>>,
}

/// The forge client, replaced when a device flow yields a token (from the flow's thread).
struct ForgeSlot {
    github: RwLock<GitHub>,
    has_token: AtomicBool,
}

/// How a device flow ended: the login that authorized (when the forge said), or the flow's error.
type FlowOutcome = Arc<Mutex<Option<std::result::Result<Option<String>, String>>>>;

/// Where a device flow hands over its code, with when the forge gave it.
type Codes = std::sync::mpsc::Receiver<(DeviceCode, std::time::Instant)>;

/// A device flow running on its own thread.
struct PendingFlow {
    /// Its code, and when the forge gave it (the time left to enter it counts down from there).
    code: Option<(DeviceCode, std::time::Instant)>,
    codes: Codes,
    outcome: FlowOutcome,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for GitWorkspaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitWorkspaces").finish_non_exhaustive()
    }
}

fn svc(context: &str) -> impl Fn(gws::Error) -> Error + '_ {
    move |e| Error::service(context, e)
}

impl GitWorkspaces {
    /// Opens (or creates) the registry under `config.base_dir`. `api_url` overrides the GitHub
    /// REST base (GitHub Enterprise, a loopback test server); else `GITHUB_API_URL` or github.com.
    pub fn open(config: &WorkspaceConfig, api_url: Option<&str>) -> Result<Self> {
        Self::open_with_oauth(config, api_url, None)
    }

    /// As [`GitWorkspaces::open`], with the OAuth app client id (`GITHUB_OAUTH_CLIENT_ID`) that
    /// lets [`WorkspaceService::authorize_forge`] run the device flow.
    pub fn open_with_oauth(
        config: &WorkspaceConfig,
        api_url: Option<&str>,
        oauth_client_id: Option<String>,
    ) -> Result<Self> {
        let mut sc = gws::ServiceConfig::new(&config.base_dir);
        if let Some(url) = api_url {
            sc.github = gws::forge::GitHubConfig::with_api_url(url);
        }
        sc.branch_prefix = config.branch_prefix.clone();
        sc.github_token = config
            .github_token
            .as_ref()
            .map(|t| gws::Secret::new(t.expose().to_string()));
        let forge_config = sc.github.clone();
        let token = sc.github_token.clone();
        let inner =
            gws::WorkspaceService::open(sc).map_err(svc("opening the workspace registry"))?;
        if config.debug {
            // `CODING_WORKSPACE_CONFIG.debug`: one stderr line per workspace event, names only.
            inner.events().subscribe(Box::new(|e| {
                eprintln!(
                    "agent-orchestrator workspace: {} {}",
                    e.workspace_id,
                    e.kind.as_str()
                );
                Ok(())
            }));
        }
        let forge = GitHub::new(forge_config.clone(), token, inner.redactor().clone());
        Ok(GitWorkspaces {
            inner,
            forge: Arc::new(ForgeSlot {
                github: RwLock::new(forge),
                has_token: AtomicBool::new(config.github_token.is_some()),
            }),
            forge_config,
            oauth_client_id,
            pending: Mutex::new(None),
        })
    }

    fn forge(&self) -> std::sync::RwLockReadGuard<'_, GitHub> {
        self.forge.github.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the OAuth device flow on its own thread: the code arrives on the returned channel
    /// once the forge gave it; when the person authorizes, the thread installs the token in the
    /// forge client, then records the outcome (also on failure) and ends.
    fn start_device_flow(&self) -> Result<(Codes, FlowOutcome, std::thread::JoinHandle<()>)> {
        let Some(client_id) = &self.oauth_client_id else {
            return Err(Error::NotImplemented(
                "oauth device flow without GITHUB_OAUTH_CLIENT_ID".into(),
            ));
        };
        let app = gws::device_flow::OAuthApp::github(&self.forge_config.web_url, client_id);
        let redactor = self.inner.redactor().clone();
        let forge_config = self.forge_config.clone();
        let slot = self.forge.clone();
        let outcome: FlowOutcome = Arc::default();
        let done = outcome.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let flow = std::thread::Builder::new()
            .name("oauth-device-flow".into())
            .spawn(move || {
                let observer = CodeSender {
                    codes: Mutex::new(tx),
                    login: Mutex::new(None),
                };
                // With the API, the completion reports who authorized (`GET /user`).
                let token = gws::device_flow::run_device_flow_with_user(
                    &app,
                    gws::device_flow::Permissions::WRITE,
                    &gws::clock::SystemClock,
                    &observer,
                    &redactor,
                    &forge_config,
                );
                let result = match token {
                    Ok(token) => {
                        *slot.github.write().unwrap_or_else(|p| p.into_inner()) =
                            GitHub::new(forge_config, Some(token.access_token), redactor);
                        slot.has_token.store(true, Ordering::SeqCst);
                        Ok(lock(&observer.login).take())
                    }
                    Err(e) => Err(e.to_string()),
                };
                *lock(&done) = Some(result);
            })
            .map_err(|e| Error::Io {
                context: "starting the oauth device flow".into(),
                source: e,
            })?;
        Ok((rx, outcome, flow))
    }

    /// The branch a workspace of `repo` starts from when the caller names none: what the remote's
    /// `HEAD` points to (`git ls-remote --symref`, with the configured token as a header scoped
    /// to the forge's origin), else the forge's default branch (`GET /repos/{o}/{r}`), else
    /// `main`.
    pub fn default_base_branch(&self, repo: &str) -> String {
        super::default_branch::default_base_branch(&self.inner, Some(&self.forge()), repo)
    }

    /// The underlying service.
    pub fn inner(&self) -> &gws::WorkspaceService {
        &self.inner
    }

    /// `workspaceTtlMs`: non-forced cleanup of every workspace created `ttl_ms` or more before
    /// `now_ms` (worktrees before clones), except those `in_use` says a live session works in (a
    /// clone counts as in use while any of its worktrees is). Cleanup refuses uncommitted or
    /// unpushed work, so expiry never loses work; those come back as `Err(Refused)`. Returns
    /// what was tried: `(id, Ok(true))` removed.
    pub fn sweep_expired(
        &self,
        ttl_ms: u64,
        now_ms: u64,
        in_use: &dyn Fn(&std::path::Path) -> bool,
    ) -> Vec<(String, Result<bool>)> {
        if ttl_ms == 0 {
            return Vec::new();
        }
        let mut due: Vec<WorkspaceRecord> = self
            .inner
            .list()
            .into_iter()
            .filter(|r| {
                r.status.as_str() != "cleaned_up" && r.created_at.saturating_add(ttl_ms) <= now_ms
            })
            .collect();
        due.sort_by_key(|r| r.strategy == Strategy::Clone);
        let busy = |r: &WorkspaceRecord| {
            in_use(&r.path)
                || (r.strategy == Strategy::Clone
                    && self
                        .inner
                        .list_worktrees(&r.id)
                        .unwrap_or_default()
                        .iter()
                        .any(|w| w.status.as_str() != "cleaned_up" && in_use(&w.path)))
        };
        due.into_iter()
            .filter(|r| !busy(r))
            .filter(|r| {
                // A clone's cleanup may already have removed this worktree.
                self.inner
                    .get(&r.id)
                    .is_ok_and(|x| x.status.as_str() != "cleaned_up")
            })
            .map(|r| (r.id.clone(), WorkspaceService::cleanup(self, &r.id, false)))
            .collect()
    }
}

/// Hands the device code to the waiting caller and keeps the login the completion reports.
struct CodeSender {
    /// Each code with when the forge gave it (its time left counts from there).
    codes: std::sync::Mutex<std::sync::mpsc::Sender<(DeviceCode, std::time::Instant)>>,
    login: std::sync::Mutex<Option<String>>,
}

impl gws::device_flow::DeviceFlowObserver for CodeSender {
    fn on_completed(&self, c: &gws::device_flow::DeviceCompletion) {
        *self.login.lock().unwrap_or_else(|e| e.into_inner()) = c.username.clone();
    }

    fn on_prompt(&self, p: &gws::device_flow::DevicePrompt) {
        let _ = self.codes.lock().unwrap_or_else(|e| e.into_inner()).send((
            DeviceCode {
                verification_uri: p.verification_uri.clone(),
                user_code: p.user_code.clone(),
                expires_in_secs: p.expires_in,
            },
            std::time::Instant::now(),
        ));
    }
}

fn info(r: &WorkspaceRecord) -> WorkspaceInfo {
    WorkspaceInfo {
        id: r.id.clone(),
        path: r.path.clone(),
        branch: r.branch.clone(),
        repo: r.repo.clone(),
        is_worktree: r.strategy == Strategy::Worktree,
        label: None,
        status: r.status.as_str().to_string(),
    }
}

fn split_repo(repo: &str) -> Result<(&str, &str)> {
    repo.split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| Error::InvalidParameter(format!("repository must be owner/repo: {repo}")))
}

fn issue(i: gws::forge::Issue) -> Issue {
    Issue {
        number: i.number,
        title: i.title,
        body: i.body.unwrap_or_default(),
        state: i.state,
        labels: i.labels,
        url: i.url,
    }
}

impl WorkspaceService for GitWorkspaces {
    fn provision(&self, req: ProvisionRequest) -> Result<WorkspaceInfo> {
        let mut r = gws::ProvisionRequest::clone_of(req.repo.clone());
        r.base_branch = if !req.base_branch.is_empty() {
            req.base_branch
        } else if req.use_worktree {
            // A worktree starts where its clone started, unless told otherwise.
            req.parent_workspace_id
                .as_deref()
                .and_then(|p| self.inner.get(p).ok())
                .map(|p| p.base_branch)
                .unwrap_or_else(|| self.default_base_branch(&req.repo))
        } else {
            self.default_base_branch(&req.repo)
        };
        r.branch_name = req.branch_name;
        if req.use_worktree {
            r.strategy = Strategy::Worktree;
            r.parent_workspace = req.parent_workspace_id;
        }
        self.inner
            .provision(r)
            .map(|rec| info(&rec))
            .map_err(svc("provisioning"))
    }

    fn get(&self, id: &str) -> Option<WorkspaceInfo> {
        self.inner.get(id).ok().map(|r| info(&r))
    }

    fn list(&self) -> Vec<WorkspaceInfo> {
        // Oldest first, as the trait says: the registry is keyed by random ids, and its order
        // made "the most recent" workspace (the default of FINALIZE_WORKSPACE and others) an
        // arbitrary one.
        let mut records: Vec<_> = self
            .inner
            .list()
            .into_iter()
            .filter(|r| r.status.as_str() != "cleaned_up")
            .collect();
        records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        records.iter().map(info).collect()
    }

    fn commit(&self, id: &str, message: &str, _all: bool) -> Result<Option<String>> {
        match self.inner.commit(id, message).map_err(svc("committing"))? {
            gws::CommitOutcome::Committed(sha) => Ok(Some(sha)),
            gws::CommitOutcome::NothingToCommit => Ok(None),
        }
    }

    fn push(&self, id: &str, _set_upstream: bool) -> Result<()> {
        // The service always pushes with `-u origin <branch>`.
        self.inner.push(id, false).map_err(svc("pushing"))
    }

    fn create_pr(&self, id: &str, pr: PrRequest) -> Result<PullRequest> {
        let req = gws::PrRequest {
            title: pr.title,
            body: pr.body,
            target_branch: (!pr.base_branch.is_empty()).then_some(pr.base_branch),
            draft: pr.draft,
            labels: pr.labels,
            reviewers: pr.reviewers,
        };
        let (created, _warnings) = self
            .inner
            .create_pr(id, &req)
            .map_err(svc("opening the pull request"))?;
        Ok(PullRequest {
            number: created.number,
            url: created.url,
        })
    }

    fn list_issues(&self, repo: &str, q: &IssueQuery) -> Result<Vec<Issue>> {
        let (o, n) = split_repo(repo)?;
        let query = gws::forge::IssueQuery {
            state: q.state.clone(),
            labels: q.labels.clone(),
            ..Default::default()
        };
        Ok(self
            .forge()
            .list_issues(o, n, &query)
            .map_err(svc("listing issues"))?
            .into_iter()
            .map(issue)
            .collect())
    }

    fn get_issue(&self, repo: &str, number: u64) -> Result<Issue> {
        let (o, n) = split_repo(repo)?;
        self.forge()
            .get_issue(o, n, number)
            .map(issue)
            .map_err(svc("reading the issue"))
    }

    fn create_issue(&self, repo: &str, new: &NewIssue) -> Result<Issue> {
        let (o, n) = split_repo(repo)?;
        let req = gws::forge::NewIssue {
            title: new.title.clone(),
            body: (!new.body.is_empty()).then(|| new.body.clone()),
            labels: new.labels.clone(),
            ..Default::default()
        };
        self.forge()
            .create_issue(o, n, &req)
            .map(issue)
            .map_err(svc("creating the issue"))
    }

    fn update_issue(&self, repo: &str, number: u64, u: &IssueUpdate) -> Result<Issue> {
        let (o, n) = split_repo(repo)?;
        let req = gws::forge::IssueUpdate {
            title: u.title.clone(),
            body: u.body.clone(),
            state: u.state.clone(),
            labels: u.labels.clone(),
            assignees: None,
        };
        self.forge()
            .update_issue(o, n, number, &req)
            .map(issue)
            .map_err(svc("updating the issue"))
    }

    fn add_comment(&self, repo: &str, number: u64, body: &str) -> Result<String> {
        let (o, n) = split_repo(repo)?;
        let c = self
            .forge()
            .comment(o, n, number, body)
            .map_err(svc("commenting"))?;
        let url = self
            .forge()
            .get_issue(o, n, number)
            .map(|i| i.url)
            .unwrap_or_default();
        Ok(format!("{url}#issuecomment-{}", c.id))
    }

    fn add_labels(&self, repo: &str, number: u64, labels: &[String]) -> Result<Vec<String>> {
        let (o, n) = split_repo(repo)?;
        self.forge()
            .add_labels(o, n, number, labels)
            .map_err(svc("adding labels"))?;
        Ok(self
            .forge()
            .get_issue(o, n, number)
            .map(|i| i.labels)
            .unwrap_or_else(|_| labels.to_vec()))
    }

    fn status(&self, id: &str) -> Result<serde_json::Value> {
        let st = self.inner.status(id).map_err(svc("reading the status"))?;
        serde_json::to_value(st).map_err(|e| Error::service("reading the status", e))
    }

    fn unpushed_head(&self, id: &str) -> Result<Option<String>> {
        let st = self.inner.status(id).map_err(svc("reading the status"))?;
        Ok(if st.has_unpushed() { st.head } else { None })
    }

    fn cleanup(&self, id: &str, force: bool) -> Result<bool> {
        self.inner.cleanup(id, force).map_err(|e| match e {
            gws::Error::UncommittedChanges(_) | gws::Error::UnpushedCommits(_) => {
                Error::Refused(e.to_string())
            }
            other => Error::service("cleaning up", other),
        })
    }

    fn has_forge_token(&self) -> bool {
        self.forge.has_token.load(Ordering::SeqCst)
    }

    fn authorize_forge(&self, on_code: &mut dyn FnMut(&DeviceCode)) -> Result<Option<String>> {
        let (codes, outcome, flow) = self.start_device_flow()?;
        // The code reaches the person while the flow polls on its thread.
        for (code, _) in codes.iter() {
            on_code(&code);
        }
        flow.join()
            .map_err(|_| Error::service("oauth device flow", "the flow thread panicked"))?;
        let result = lock(&outcome).take();
        match result {
            Some(Ok(login)) => Ok(login),
            Some(Err(e)) => Err(Error::service("oauth device flow", e)),
            None => Err(Error::service(
                "oauth device flow",
                "the flow ended without an outcome",
            )),
        }
    }

    fn forge_authorization(&self) -> Result<Authorization> {
        let mut pending = lock(&self.pending);
        if pending.is_none() {
            if self.has_forge_token() {
                return Ok(Authorization::Ready);
            }
            let (codes, outcome, _flow) = self.start_device_flow()?;
            *pending = Some(PendingFlow {
                code: None,
                codes,
                outcome,
            });
        }
        let p = pending.as_mut().expect("a flow is pending");
        if p.code.is_none() {
            // The forge answers the code request at once; a flow that ended first has failed.
            if let Ok(code) = p.codes.recv_timeout(std::time::Duration::from_secs(30)) {
                p.code = Some(code);
            }
        }
        // How the flow ended, reported once (the flow records it before it lets go of the code
        // channel).
        let ended = lock(&p.outcome).take();
        if let Some(result) = ended {
            *pending = None;
            return Ok(match result {
                Ok(login) => Authorization::Authorized(login),
                Err(e) => Authorization::Failed(Error::service("oauth device flow", e).to_string()),
            });
        }
        match &p.code {
            Some((code, at)) => Ok(Authorization::Waiting(DeviceCode {
                expires_in_secs: code.expires_in_secs.saturating_sub(at.elapsed().as_secs()),
                ..code.clone()
            })),
            // Still no code: the flow stays, and the next call looks again.
            None => Err(Error::service(
                "oauth device flow",
                "the forge has not given a device code within 30 s; try again shortly",
            )),
        }
    }
}
