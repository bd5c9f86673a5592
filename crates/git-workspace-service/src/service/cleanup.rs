//! Cleanup and retention: refuse to lose work, worktrees first, only inside the base directory.

use std::path::Path;
use std::time::Duration;

use crate::events::EventKind;
use crate::registry::{Phase, Status, Strategy, WorkspaceRecord};
use crate::status::{self};
use crate::{Error, Result};

use super::*;

impl WorkspaceService {
    pub(super) fn inside_base(&self, path: &Path) -> bool {
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
        // A clone's directory holds all its refs; a worktree shares them with its clone, which
        // keeps them when the worktree goes (its own HEAD is what it alone holds).
        let clone = rec.strategy == crate::registry::Strategy::Clone;
        if st.has_unpushed() || (clone && self.unpushed_elsewhere(&rec.path)?) {
            return Err(Error::UnpushedCommits(rec.id.clone()));
        }
        Ok(())
    }

    /// Whether a commit exists only here on a ref other than HEAD: another local branch (the
    /// agent may have switched back to `main`) or a stash. Only HEAD was checked before, and a
    /// clone with its work on another branch was deleted.
    fn unpushed_elsewhere(&self, path: &std::path::Path) -> Result<bool> {
        let only_here = self
            .git
            .cmd(Some(path))
            .args([
                "rev-list",
                "--count",
                "--branches",
                // A glob without a wildcard means `refs/stash/*`; the bracket makes it this one
                // ref, and matches nothing when there is no stash (a plain `refs/stash` fails).
                "--glob=refs/stas[h]",
                "--not",
                "--remotes",
            ])
            .run()?;
        Ok(only_here.trim().parse::<u64>().unwrap_or(1) > 0)
    }

    /// Refuses to delete a clone that git knows worktrees of which no record here covers (one
    /// being provisioned right now, or made by hand): deleting the clone deletes their history.
    /// Forced or not: `force` gives up this workspace's work, not another's.
    fn check_no_foreign_worktrees(
        &self,
        rec: &WorkspaceRecord,
        known: &[WorkspaceRecord],
    ) -> Result<()> {
        let _ = self
            .git
            .cmd(Some(&rec.path))
            .args(["worktree", "prune"])
            .run();
        let listed = self
            .git
            .cmd(Some(&rec.path))
            .args(["worktree", "list", "--porcelain"])
            .run()?;
        let same = |a: &std::path::Path, b: &std::path::Path| {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
        };
        let foreign: Vec<String> = listed
            .lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .map(std::path::Path::new)
            .filter(|p| !same(p, &rec.path) && !known.iter().any(|w| same(p, &w.path)))
            .map(|p| p.display().to_string())
            .collect();
        if foreign.is_empty() {
            Ok(())
        } else {
            Err(Error::ForeignWorktrees {
                id: rec.id.clone(),
                paths: foreign.join(", "),
            })
        }
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
        // Its worktrees: the ones it lists, and any record naming it as parent (a worktree is
        // recorded before the parent lists it, so a crash or a failed write in between left one
        // the list lacks, and deleting the clone took that worktree's refs and objects).
        let worktrees: Vec<WorkspaceRecord> = {
            let reg = self.lock();
            reg.records
                .values()
                .filter(|w| rec.worktrees.contains(&w.id) || w.parent_id.as_deref() == Some(id))
                .filter(|w| w.status != Status::CleanedUp && w.id != rec.id)
                .cloned()
                .collect()
        };
        if rec.strategy == Strategy::Clone && rec.path.exists() {
            self.check_no_foreign_worktrees(&rec, &worktrees)?;
        }
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
