//! Status, commit, push, pull requests and finalize.

use crate::events::EventKind;
use crate::forge::{GitHub, NewPullRequest, PullRequest};
use crate::registry::{Phase, PullRequestRef, Status, WorkspaceRecord};
use crate::status::{self, WorkspaceStatus};
use crate::url::Provider;
use crate::{Error, Result, validate_branch_name};

use super::*;

impl WorkspaceService {
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
}
