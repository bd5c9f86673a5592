//! In-memory services and a test runtime: they record what handlers asked for, so each test can
//! check that the parameters given were the ones used.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use orchestrator_plugin::model::ModelSize;
use orchestrator_plugin::runtime::{
    CODING_WORKSPACE_SERVICE, PTY_SERVICE, Runtime, SCRATCH_SERVICE, Service,
};
use orchestrator_plugin::scratch::ScratchStore;
use orchestrator_plugin::services::pty::SessionStatus;
use orchestrator_plugin::services::{
    DeviceCode, Issue, IssueQuery, IssueUpdate, NewIssue, PrRequest, ProvisionRequest, PtyService,
    PullRequest, SessionInfo, SpawnRequest, WorkspaceInfo, WorkspaceService,
};
use orchestrator_plugin::{Error, Result};

#[derive(Default)]
pub struct FakePty {
    pub sessions: Mutex<Vec<SessionInfo>>,
    pub spawned: Mutex<Vec<SpawnRequest>>,
    pub sent: Mutex<Vec<(String, String)>>,
    pub keys: Mutex<Vec<(String, Vec<String>)>>,
    pub stopped: Mutex<Vec<(String, bool)>>,
    pub not_installed: Mutex<bool>,
    pub installed: Mutex<Vec<String>>,
}

impl FakePty {
    pub fn add(&self, id: &str, agent: &str, status: SessionStatus, prompt: Option<&str>) {
        let mut s = self.sessions.lock().unwrap();
        let n = s.len() as u64;
        s.push(SessionInfo {
            id: id.into(),
            name: id.into(),
            agent_type: agent.into(),
            status,
            completed: false,
            workdir: PathBuf::from(format!("/ws/{id}")),
            created_at_ms: 1000 + n,
            last_activity_ms: 1000 + n,
            prompt: prompt.map(str::to_string),
            error: None,
        });
    }
}

impl FakePty {
    pub fn mark_completed_for_test(&self, id: &str) {
        self.mark_completed(id);
    }
    pub fn get_session_for_test(&self, id: &str) -> SessionInfo {
        self.get_session(id).unwrap()
    }
}

const KNOWN_KEYS: [&str; 6] = ["enter", "escape", "up", "down", "tab", "ctrl+c"];

impl PtyService for FakePty {
    fn spawn_session(&self, req: SpawnRequest) -> Result<SessionInfo> {
        if *self.not_installed.lock().unwrap() {
            return Err(Error::AgentNotInstalled {
                display_name: "Codex".into(),
                install_command: "npm install -g @openai/codex".into(),
                docs_url: "https://github.com/openai/codex".into(),
            });
        }
        let id = format!("sess-{:04}-abcdef", self.spawned.lock().unwrap().len() + 1);
        let info = SessionInfo {
            id: id.clone(),
            name: req.name.clone().unwrap_or_else(|| id.clone()),
            agent_type: req.agent_type.clone(),
            status: SessionStatus::Starting,
            completed: false,
            workdir: req.workdir.clone(),
            created_at_ms: 5000 + self.spawned.lock().unwrap().len() as u64,
            last_activity_ms: 5000,
            prompt: None,
            error: None,
        };
        self.spawned.lock().unwrap().push(req);
        self.sessions.lock().unwrap().push(info.clone());
        Ok(info)
    }
    fn send_to_session(&self, id: &str, input: &str) -> Result<()> {
        self.sent.lock().unwrap().push((id.into(), input.into()));
        Ok(())
    }
    fn send_keys(&self, id: &str, keys: &[String]) -> Result<()> {
        if let Some(bad) = keys.iter().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(Error::InvalidParameter(format!("unknown key: {bad}")));
        }
        self.keys.lock().unwrap().push((id.into(), keys.to_vec()));
        Ok(())
    }
    fn get_session(&self, id: &str) -> Option<SessionInfo> {
        self.sessions
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.id == id)
            .cloned()
    }
    fn list_sessions(&self) -> Vec<SessionInfo> {
        self.sessions.lock().unwrap().clone()
    }
    fn stop_session(&self, id: &str, force: bool) -> Result<()> {
        self.stopped.lock().unwrap().push((id.into(), force));
        for s in self
            .sessions
            .lock()
            .unwrap()
            .iter_mut()
            .filter(|s| s.id == id)
        {
            s.status = SessionStatus::Stopped;
        }
        Ok(())
    }
    fn installed_agents(&self) -> Vec<String> {
        self.installed.lock().unwrap().clone()
    }
    fn mark_completed(&self, id: &str) {
        for s in self
            .sessions
            .lock()
            .unwrap()
            .iter_mut()
            .filter(|s| s.id == id)
        {
            s.completed = true;
        }
    }
}

#[derive(Default)]
pub struct FakeWorkspace {
    pub workspaces: Mutex<Vec<WorkspaceInfo>>,
    pub provisioned: Mutex<Vec<ProvisionRequest>>,
    pub commits: Mutex<Vec<(String, String)>>,
    pub pushes: Mutex<Vec<(String, bool)>>,
    pub prs: Mutex<Vec<(String, PrRequest)>>,
    pub dirty: Mutex<bool>,
    pub issues: Mutex<BTreeMap<u64, Issue>>,
    pub comments: Mutex<Vec<(u64, String)>>,
    pub token: Mutex<bool>,
    pub fail_provision: Mutex<Option<String>>,
    pub base: PathBuf,
}

impl FakeWorkspace {
    pub fn new(base: PathBuf) -> Self {
        FakeWorkspace {
            base,
            dirty: Mutex::new(true),
            token: Mutex::new(true),
            ..FakeWorkspace::default()
        }
    }
}

impl WorkspaceService for FakeWorkspace {
    fn provision(&self, req: ProvisionRequest) -> Result<WorkspaceInfo> {
        if let Some(e) = self.fail_provision.lock().unwrap().clone() {
            return Err(Error::service("git clone failed", e));
        }
        let n = self.workspaces.lock().unwrap().len() + 1;
        let path = self.base.join(format!("ws-{n}"));
        std::fs::create_dir_all(&path).unwrap();
        let w = WorkspaceInfo {
            id: format!("ws-{n}"),
            path,
            branch: req.branch_name.clone().unwrap_or_default(),
            repo: req.repo.clone(),
            is_worktree: req.use_worktree,
            label: req.label.clone(),
            status: "ready".into(),
        };
        self.provisioned.lock().unwrap().push(req);
        self.workspaces.lock().unwrap().push(w.clone());
        Ok(w)
    }
    fn get(&self, id: &str) -> Option<WorkspaceInfo> {
        self.workspaces
            .lock()
            .unwrap()
            .iter()
            .find(|w| w.id == id)
            .cloned()
    }
    fn list(&self) -> Vec<WorkspaceInfo> {
        self.workspaces.lock().unwrap().clone()
    }
    fn commit(&self, id: &str, message: &str, _all: bool) -> Result<Option<String>> {
        if !*self.dirty.lock().unwrap() {
            return Ok(None);
        }
        self.commits
            .lock()
            .unwrap()
            .push((id.into(), message.into()));
        Ok(Some("0123456789abcdef0123456789abcdef01234567".into()))
    }
    fn push(&self, id: &str, set_upstream: bool) -> Result<()> {
        self.pushes.lock().unwrap().push((id.into(), set_upstream));
        Ok(())
    }
    fn create_pr(&self, id: &str, pr: PrRequest) -> Result<PullRequest> {
        self.prs.lock().unwrap().push((id.into(), pr));
        Ok(PullRequest {
            number: 7,
            url: "https://github.com/acme/app/pull/7".into(),
        })
    }
    fn list_issues(&self, _repo: &str, q: &IssueQuery) -> Result<Vec<Issue>> {
        Ok(self
            .issues
            .lock()
            .unwrap()
            .values()
            .filter(|i| q.state == "all" || i.state == q.state)
            .cloned()
            .collect())
    }
    fn get_issue(&self, _repo: &str, n: u64) -> Result<Issue> {
        self.issues
            .lock()
            .unwrap()
            .get(&n)
            .cloned()
            .ok_or_else(|| Error::service("get issue", format!("issue {n} not found")))
    }
    fn create_issue(&self, repo: &str, new: &NewIssue) -> Result<Issue> {
        let mut issues = self.issues.lock().unwrap();
        let n = issues.len() as u64 + 1;
        let i = Issue {
            number: n,
            title: new.title.clone(),
            body: new.body.clone(),
            state: "open".into(),
            labels: new.labels.clone(),
            url: format!("https://github.com/{repo}/issues/{n}"),
        };
        issues.insert(n, i.clone());
        Ok(i)
    }
    fn update_issue(&self, _repo: &str, n: u64, u: &IssueUpdate) -> Result<Issue> {
        let mut issues = self.issues.lock().unwrap();
        let i = issues
            .get_mut(&n)
            .ok_or_else(|| Error::service("update issue", format!("issue {n} not found")))?;
        if let Some(t) = &u.title {
            i.title = t.clone();
        }
        if let Some(s) = &u.state {
            i.state = s.clone();
        }
        Ok(i.clone())
    }
    fn add_comment(&self, repo: &str, n: u64, body: &str) -> Result<String> {
        self.comments.lock().unwrap().push((n, body.into()));
        Ok(format!(
            "https://github.com/{repo}/issues/{n}#issuecomment-1"
        ))
    }
    fn add_labels(&self, _repo: &str, n: u64, labels: &[String]) -> Result<Vec<String>> {
        let mut issues = self.issues.lock().unwrap();
        let i = issues.get_mut(&n).unwrap();
        i.labels.extend(labels.iter().cloned());
        Ok(i.labels.clone())
    }
    fn has_forge_token(&self) -> bool {
        *self.token.lock().unwrap()
    }
    fn authorize_forge(&self, on_code: &mut dyn FnMut(&DeviceCode)) -> Result<Option<String>> {
        on_code(&DeviceCode {
            verification_uri: "https://github.com/login/device".into(),
            user_code: "ABCD-1234".into(),
            expires_in_secs: 900,
        });
        *self.token.lock().unwrap() = true;
        Ok(Some("octo-fake".into()))
    }
}

/// A runtime with settings, optional services, a scripted model and recorded replies.
pub struct TestRuntime {
    pub settings: BTreeMap<String, String>,
    pub pty: Option<Arc<FakePty>>,
    pub workspace: Option<Arc<FakeWorkspace>>,
    pub scratch: Option<Arc<ScratchStore>>,
    pub model_answers: Mutex<Vec<String>>,
    pub prompts: Mutex<Vec<String>>,
    pub replies: Mutex<Vec<String>>,
}

impl TestRuntime {
    pub fn new(base: &std::path::Path) -> Self {
        let mut settings = BTreeMap::new();
        settings.insert(
            "CODING_WORKSPACE_CONFIG".to_string(),
            serde_json::json!({"baseDir": base.display().to_string()}).to_string(),
        );
        TestRuntime {
            settings,
            pty: Some(Arc::new(FakePty::default())),
            workspace: Some(Arc::new(FakeWorkspace::new(base.join("clones")))),
            scratch: None,
            model_answers: Mutex::new(Vec::new()),
            prompts: Mutex::new(Vec::new()),
            replies: Mutex::new(Vec::new()),
        }
    }
    pub fn pty(&self) -> &FakePty {
        self.pty.as_ref().unwrap()
    }
    pub fn ws(&self) -> &FakeWorkspace {
        self.workspace.as_ref().unwrap()
    }
}

impl Runtime for TestRuntime {
    fn get_setting(&self, key: &str) -> Option<String> {
        self.settings.get(key).cloned()
    }
    fn get_service(&self, name: &str) -> Option<Service> {
        match name {
            PTY_SERVICE => self.pty.clone().map(|p| Service::Pty(p)),
            CODING_WORKSPACE_SERVICE => self.workspace.clone().map(|w| Service::Workspace(w)),
            SCRATCH_SERVICE => self.scratch.clone().map(Service::Scratch),
            _ => None,
        }
    }
    fn use_model(&self, _size: ModelSize, prompt: &str) -> Result<String> {
        self.prompts.lock().unwrap().push(prompt.into());
        let mut a = self.model_answers.lock().unwrap();
        if a.is_empty() {
            return Err(Error::ModelUnavailable("no scripted answer".into()));
        }
        Ok(a.remove(0))
    }
    fn reply(&self, text: &str) {
        self.replies.lock().unwrap().push(text.into());
    }
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("op-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p.canonicalize().unwrap())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
