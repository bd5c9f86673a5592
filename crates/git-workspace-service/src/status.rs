//! Working-tree status, ahead/behind and HEAD, computed in-process with gix.

use std::path::Path;

use gix::status::UntrackedFiles;

use crate::{Error, Result};

/// The state of a workspace's working tree and branch.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkspaceStatus {
    /// The checked-out branch, `None` when HEAD is detached.
    pub branch: Option<String>,
    /// The commit HEAD points at, `None` in an empty repository.
    pub head: Option<String>,
    /// No staged, modified or untracked (non-ignored) paths.
    pub clean: bool,
    /// Paths whose index entry differs from HEAD.
    pub staged: Vec<String>,
    /// Tracked paths whose working-tree file differs from the index.
    pub modified: Vec<String>,
    /// Untracked, non-ignored paths.
    pub untracked: Vec<String>,
    /// The remote-tracking ref compared against: `origin/<branch>` once pushed, else
    /// `origin/<base>`; `None` when neither exists.
    pub compared_to: Option<String>,
    /// Commits on HEAD that `compared_to` lacks.
    pub ahead: usize,
    /// Commits on `compared_to` that HEAD lacks.
    pub behind: usize,
}

impl WorkspaceStatus {
    /// Whether some commit exists only here: ahead of the compared ref, or no ref to compare
    /// with while HEAD has commits.
    pub fn has_unpushed(&self) -> bool {
        self.ahead > 0 || (self.compared_to.is_none() && self.head.is_some())
    }
}

fn gix_err<E: std::error::Error + Send + Sync + 'static>(
    op: &'static str,
    path: &Path,
) -> impl FnOnce(E) -> Error + use<E> {
    let path = path.to_path_buf();
    move |e| Error::Gix {
        op,
        path,
        source: Box::new(e),
    }
}

/// Opens the repository at `path` (a clone or a linked worktree) with gix, isolated from the
/// user's and system configuration so the answer depends only on the repository.
pub(crate) fn open(path: &Path) -> Result<gix::Repository> {
    gix::open_opts(path, gix::open::Options::isolated()).map_err(|e| Error::Gix {
        op: "open the repository",
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

/// Computes the status of the workspace at `path`, comparing against `origin/<branch>` if it
/// exists, else `origin/<base_branch>`.
pub fn status(path: &Path, base_branch: &str) -> Result<WorkspaceStatus> {
    let repo = open(path)?;
    let mut out = WorkspaceStatus::default();
    let head_name = repo.head_name().map_err(gix_err("read HEAD", path))?;
    out.branch = head_name.as_ref().and_then(|n| {
        n.as_bstr()
            .to_string()
            .strip_prefix("refs/heads/")
            .map(str::to_owned)
    });
    let head_id = repo.head_id().ok().map(|id| id.detach());
    out.head = head_id.map(|id| id.to_string());

    let iter = repo
        .status(gix::progress::Discard)
        .map_err(gix_err("start a status", path))?
        .untracked_files(UntrackedFiles::Files)
        .into_iter(Vec::<gix::bstr::BString>::new())
        .map_err(gix_err("compute the status", path))?;
    for item in iter {
        let item = item.map_err(gix_err("compute the status", path))?;
        match item {
            gix::status::Item::TreeIndex(change) => {
                out.staged.push(change.location().to_string());
            }
            gix::status::Item::IndexWorktree(item) => {
                use gix::status::index_worktree::iter::Summary;
                let Some(summary) = item.summary() else {
                    continue;
                };
                let p = item.rela_path().to_string();
                match summary {
                    Summary::Added => out.untracked.push(p),
                    Summary::IntentToAdd => out.staged.push(p),
                    _ => out.modified.push(p),
                }
            }
        }
    }
    for v in [&mut out.staged, &mut out.modified, &mut out.untracked] {
        v.sort();
        v.dedup();
    }
    out.clean = out.staged.is_empty() && out.modified.is_empty() && out.untracked.is_empty();

    let candidates = out
        .branch
        .iter()
        .map(|b| format!("refs/remotes/origin/{b}"))
        .chain(std::iter::once(format!(
            "refs/remotes/origin/{base_branch}"
        )));
    for name in candidates {
        let Ok(mut r) = repo.find_reference(name.as_str()) else {
            continue;
        };
        let Ok(target) = r.peel_to_id() else { continue };
        let target = target.detach();
        out.compared_to = Some(name.trim_start_matches("refs/remotes/").to_owned());
        if let Some(head) = head_id {
            out.ahead = count_only_in(&repo, head, target, path)?;
            out.behind = count_only_in(&repo, target, head, path)?;
        }
        break;
    }
    Ok(out)
}

/// Commits reachable from `tip` but not from `hidden`.
fn count_only_in(
    repo: &gix::Repository,
    tip: gix::ObjectId,
    hidden: gix::ObjectId,
    path: &Path,
) -> Result<usize> {
    if tip == hidden {
        return Ok(0);
    }
    let walk = repo
        .rev_walk([tip])
        .with_hidden([hidden])
        .all()
        .map_err(gix_err("walk history", path))?;
    let mut n = 0;
    for info in walk {
        info.map_err(gix_err("walk history", path))?;
        n += 1;
    }
    Ok(n)
}

/// The id `rev` resolves to in the repository at `path`.
pub fn rev_parse(path: &Path, rev: &str) -> Result<String> {
    let repo = open(path)?;
    let id = repo
        .rev_parse_single(rev)
        .map_err(gix_err("resolve a revision", path))?;
    Ok(id.detach().to_string())
}

/// The directory shared by all worktrees of the repository at `path` (`.git` of the clone).
pub(crate) fn common_dir(path: &Path) -> Result<std::path::PathBuf> {
    Ok(open(path)?.common_dir().to_path_buf())
}
