//! The persisted registry of workspaces: `<base_dir>/registry.json`, mode 0600, rewritten
//! atomically after every change. It holds no secrets: a credential appears by id, type and expiry.
//!
//! Several processes may share a base directory (the CLI next to a server). Each change is
//! read-modify-write under an exclusive `flock` on `<base_dir>/registry.lock`, so none of them
//! overwrites a change another made since it last read the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result, atomic};

/// The registry file's name inside the base directory.
pub const REGISTRY_FILE: &str = "registry.json";

/// The file whose `flock` guards each read-modify-write of the registry.
const LOCK_FILE: &str = "registry.lock";

/// Clone or worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// A full clone with its own `.git`.
    #[default]
    Clone,
    /// A linked worktree of a parent clone.
    Worktree,
}

/// Lifecycle status of a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being created.
    Provisioning,
    /// Usable.
    Ready,
    /// Committing, pushing, opening a PR.
    Finalizing,
    /// Its directory is gone; the record stays.
    CleanedUp,
    /// Provisioning failed, or the directory was lost.
    Error,
}

impl Status {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Ready => "ready",
            Self::Finalizing => "finalizing",
            Self::CleanedUp => "cleaned_up",
            Self::Error => "error",
        }
    }
}

/// Finer-grained progress within a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Phase {
    Initializing,
    Cloning,
    CreatingBranch,
    Configuring,
    Ready,
    Committing,
    Pushing,
    CreatingPr,
    CleaningUp,
    Done,
    Error,
}

/// A commit identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitUser {
    /// `user.name`.
    pub name: String,
    /// `user.email`.
    pub email: String,
}

impl Default for GitUser {
    fn default() -> Self {
        Self {
            name: "Workspace Agent".into(),
            email: "agent@workspace.local".into(),
        }
    }
}

/// A credential as the registry knows it: never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRef {
    /// The grant id.
    pub id: String,
    /// `pat`, `oauth`, `github_app`, `ssh_key`.
    pub kind: String,
    /// Expiry, milliseconds since the epoch.
    pub expires_at: Option<u64>,
}

/// A pull request opened for a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestRef {
    /// The PR number.
    pub number: u64,
    /// Its web URL.
    pub url: String,
}

/// One workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRecord {
    /// UUID; also the directory name under the base directory.
    pub id: String,
    /// The working directory.
    pub path: PathBuf,
    /// The repository as git is given it.
    pub repo: String,
    /// Clone or worktree.
    pub strategy: Strategy,
    /// The clone this worktree belongs to.
    pub parent_id: Option<String>,
    /// Worktrees of this clone.
    #[serde(default)]
    pub worktrees: Vec<String>,
    /// The branch the work started from.
    pub base_branch: String,
    /// The workspace's branch.
    pub branch: String,
    /// Whether `branch` follows the managed naming scheme.
    pub managed: bool,
    /// Execution this workspace serves.
    pub execution_id: Option<String>,
    /// Task id within the execution.
    pub task_id: Option<String>,
    /// Role of the agent.
    pub role: Option<String>,
    /// Slug of the task.
    pub slug: Option<String>,
    /// Lifecycle status.
    pub status: Status,
    /// Progress within the status.
    pub phase: Phase,
    /// The directory vanished while the process was not running.
    #[serde(default)]
    pub lost: bool,
    /// The last error, redacted.
    pub last_error: Option<String>,
    /// The commit identity.
    pub git_user: GitUser,
    /// The credential used, without its secret.
    pub credential: Option<CredentialRef>,
    /// Whether `push` may use `--force-with-lease`.
    #[serde(default)]
    pub allow_force_push: bool,
    /// The last commit made by finalize/commit.
    pub last_commit: Option<String>,
    /// The pull request, once opened.
    pub pr: Option<PullRequestRef>,
    /// Free-form labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The process that last started provisioning or finalizing this workspace, so a restart
    /// does not mistake another live process's work in progress for an interrupted one.
    #[serde(default)]
    pub owner_pid: Option<u32>,
    /// Creation time, ms since epoch.
    pub created_at: u64,
    /// Last change, ms since epoch.
    pub updated_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    workspaces: Vec<WorkspaceRecord>,
}

/// The set of records and where they are persisted.
#[derive(Debug)]
pub(crate) struct Registry {
    path: PathBuf,
    /// `registry.lock`, or `None` where it cannot be opened (a read-only directory): changes
    /// then only exclude each other within this process.
    lock_file: Option<std::fs::File>,
    pub(crate) records: BTreeMap<String, WorkspaceRecord>,
}

impl Registry {
    /// Loads `<base_dir>/registry.json`, or an empty registry if there is none.
    pub(crate) fn load(base_dir: &Path) -> Result<Self> {
        let path = base_dir.join(REGISTRY_FILE);
        let records = read_records(&path)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let lock_file = opts.open(base_dir.join(LOCK_FILE)).ok();
        Ok(Self {
            path,
            lock_file,
            records,
        })
    }

    /// Takes the registry's file lock (blocking while another process holds it), then re-reads
    /// the file so changes made since are not overwritten. The in-memory state stays if the
    /// file cannot be read. Release with [`Registry::unlock`].
    pub(crate) fn lock_and_refresh(&mut self) {
        if let Some(f) = &self.lock_file {
            // A file system without flock only loses the cross-process exclusion.
            let _ = f.lock();
        }
        if let Ok(records) = read_records(&self.path) {
            self.records = records;
        }
    }

    /// Releases the file lock taken by [`Registry::lock_and_refresh`].
    pub(crate) fn unlock(&self) {
        if let Some(f) = &self.lock_file {
            let _ = f.unlock();
        }
    }

    /// Rewrites the file atomically.
    pub(crate) fn save(&self) -> Result<()> {
        let f = File {
            version: 1,
            workspaces: self.records.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&f).map_err(|source| Error::Json {
            path: self.path.clone(),
            source,
        })?;
        atomic::write_private(&self.path, &bytes)
    }
}

/// The records in the registry file at `path` (none if there is no file).
fn read_records(path: &Path) -> Result<BTreeMap<String, WorkspaceRecord>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let f: File = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                path: path.to_path_buf(),
                source,
            })?;
            Ok(f.workspaces
                .into_iter()
                .map(|w| (w.id.clone(), w))
                .collect())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(source) => Err(Error::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> WorkspaceRecord {
        WorkspaceRecord {
            id: id.to_owned(),
            path: PathBuf::from("/nonexistent").join(id),
            repo: "file:///nonexistent/repo.git".into(),
            strategy: Strategy::Clone,
            parent_id: None,
            worktrees: vec![],
            base_branch: "main".into(),
            branch: format!("agent/{id}"),
            managed: true,
            execution_id: None,
            task_id: None,
            role: None,
            slug: None,
            status: Status::Ready,
            phase: Phase::Ready,
            lost: false,
            last_error: None,
            git_user: GitUser::default(),
            credential: None,
            allow_force_push: false,
            last_commit: None,
            pr: None,
            labels: BTreeMap::new(),
            owner_pid: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// Two registries on one base directory (as two processes would have: each opens its own
    /// lock file) insert records at the same time; every record survives. Without the file
    /// lock, a save made between another's refresh and save is overwritten.
    #[test]
    fn concurrent_changes_from_two_registries_are_all_kept() {
        let dir = std::env::temp_dir().join(format!("gws-registry-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        const EACH: usize = 40;
        let workers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let mut reg = Registry::load(&dir).unwrap();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        reg.lock_and_refresh();
                        let id = format!("{name}-{i}");
                        reg.records.insert(id.clone(), record(&id));
                        reg.save().unwrap();
                        reg.unlock();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let kept = Registry::load(&dir).unwrap().records.len();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(kept, 2 * EACH, "records lost");
    }
}
