//! Provisioning: clone or worktree, branch, identity, excludes, `on_complete`.

use std::path::Path;

use crate::credentials::{CredentialRequest, GrantedTo, UserCredential, new_id};
use crate::device_flow::Permissions;
use crate::events::EventKind;
use crate::git::GitProgress;
use crate::hooks::{self, OnComplete};
use crate::registry::{CredentialRef, GitUser, Phase, Status, Strategy, WorkspaceRecord};
use crate::status::{self};
use crate::url::RepoUrl;
use crate::{Error, Result, validate_branch_name};

use super::*;

impl WorkspaceService {
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
}

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
