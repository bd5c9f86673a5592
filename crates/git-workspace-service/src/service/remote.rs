//! Questions to a remote asked before any workspace exists: which branch its `HEAD` names.

use std::time::Duration;

use super::WorkspaceService;
use crate::Result;
use crate::refname::validate_branch_name;

/// How long a remote may take to say where its `HEAD` points before git is killed.
const LS_REMOTE_TIMEOUT: Duration = Duration::from_secs(60);

impl WorkspaceService {
    /// The branch the remote of `repo` (any form [`ProvisionRequest`](super::ProvisionRequest)
    /// accepts) names as its default: what its `HEAD` points to, from
    /// `git ls-remote --symref -- <url> HEAD`.
    ///
    /// git gets the credential provisioning would use for that host without a grant (the
    /// configured token for a repository on the configured forge host, as a header scoped to
    /// its origin in git's environment, never in the URL or argv) and at most 60 seconds.
    ///
    /// Returns `Ok(Some(branch))` with a validated branch name, `Ok(None)` when the remote
    /// reports no symbolic `HEAD` (an empty repository whose `HEAD` branch has no commit, a dumb
    /// transport, a `HEAD` that is not a branch). Errors: [`Error::InvalidRepo`](crate::Error::InvalidRepo)
    /// for a repository that does not parse, [`Error::Git`](crate::Error::Git) (stderr redacted) or
    /// [`Error::GitTimeout`](crate::Error::GitTimeout) when git fails or takes too long, and
    /// [`Error::InvalidBranchName`](crate::Error::InvalidBranchName) when the remote names a branch that is not a
    /// safe branch name.
    pub fn remote_default_branch(&self, repo: &str) -> Result<Option<String>> {
        let url = self.parse_repo(repo)?;
        let auth = self.host_auth(&url);
        let out = self
            .git
            .cmd(None)
            .args(["ls-remote", "--symref", "--"])
            .arg(&url.url)
            .arg("HEAD")
            .auth(auth.as_ref())
            .timeout(LS_REMOTE_TIMEOUT)
            .run()?;
        let Some(branch) = parse_symref_head(&out) else {
            return Ok(None);
        };
        validate_branch_name(&branch)?;
        Ok(Some(branch))
    }
}

/// The branch `HEAD` points to in `git ls-remote --symref <url> HEAD` output
/// (`ref: refs/heads/<branch>\tHEAD`), if the remote reports one.
fn parse_symref_head(out: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let (target, name) = l.strip_prefix("ref: ")?.split_once('\t')?;
        (name.trim() == "HEAD")
            .then(|| target.trim().strip_prefix("refs/heads/"))
            .flatten()
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_branch_head_points_to() {
        let table: &[(&str, Option<&str>)] = &[
            (
                "ref: refs/heads/trunk\tHEAD\n0123456789abcdef0123456789abcdef01234567\tHEAD\n",
                Some("trunk"),
            ),
            ("ref: refs/heads/release/2.x\tHEAD\n", Some("release/2.x")),
            // No symbolic HEAD (old servers, empty output): nothing to go on.
            ("0123456789abcdef0123456789abcdef01234567\tHEAD\n", None),
            ("", None),
            // A symref of another name, or to something that is not a branch.
            ("ref: refs/heads/main\trefs/remotes/origin/HEAD\n", None),
            ("ref: refs/tags/v1\tHEAD\n", None),
        ];
        for (out, want) in table {
            assert_eq!(parse_symref_head(out).as_deref(), *want, "{out:?}");
        }
    }
}
