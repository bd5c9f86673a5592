//! The branch a workspace starts from when the caller names none: the remote's default branch.
//!
//! Repositories whose default branch is `master`, `trunk` or anything else than `main` would
//! otherwise fail to clone (`git clone --branch main` of a repository without `main`). Asking the
//! remote (git, credentials, time limit) is git-workspace-service's
//! [`WorkspaceService::remote_default_branch`](gws::WorkspaceService::remote_default_branch);
//! this module only chooses among the answers.

use git_workspace_service as gws;

/// The branch a workspace of `repo` starts from when the caller names none: what the remote's
/// `HEAD` points to ([`gws::WorkspaceService::remote_default_branch`], with the service's
/// configured token as a header scoped to the forge's origin), else, given a `forge` client and
/// a repository on the forge, the forge's default branch (`GET /repos/{o}/{r}`), else `main`.
pub fn default_base_branch(
    svc: &gws::WorkspaceService,
    forge: Option<&gws::forge::GitHub>,
    repo: &str,
) -> String {
    let host = &svc.config().github.host;
    let Ok(url) = gws::RepoUrl::parse(repo, host) else {
        // Provisioning reports the bad repository with its reason.
        return "main".into();
    };
    // A failing or silent remote is not fatal here: the clone that follows reports git's error.
    if let Ok(Some(b)) = svc.remote_default_branch(repo) {
        return b;
    }
    if url.provider(host) == gws::Provider::Github
        && let (Some(forge), Some((owner, name))) = (forge, url.owner_repo())
        && let Ok(b) = forge.default_branch(&owner, &name)
        && gws::validate_branch_name(&b).is_ok()
    {
        return b;
    }
    "main".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn falls_back_to_main_when_the_remote_names_nothing() {
        let tmp = std::env::temp_dir().join(format!(
            "ao-default-branch-{}-{}",
            std::process::id(),
            crate::actions::new_id()
        ));
        let mut cfg = gws::ServiceConfig::new(tmp.join("ws"));
        cfg.git.env = vec![("GIT_CONFIG_NOSYSTEM".into(), "1".into())];
        let svc = gws::WorkspaceService::open(cfg).unwrap();
        let remote = tmp.join("r.git");
        let r = remote.to_str().unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args(args)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "git {args:?}");
        };
        git(&["init", "--bare", "-q", r]);
        git(&["--git-dir", r, "symbolic-ref", "HEAD", "refs/heads/trunk"]);
        // HEAD names trunk, which has no commit: the remote reports nothing, no forge to ask.
        assert_eq!(default_base_branch(&svc, None, r), "main");
        let seed = tmp.join("seed");
        std::fs::create_dir_all(&seed).unwrap();
        let s = seed.to_str().unwrap();
        git(&["-C", s, "init", "-q"]);
        git(&[
            "-C",
            s,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "seed",
        ]);
        git(&["-C", s, "push", "-q", r, "HEAD:refs/heads/trunk"]);
        assert_eq!(default_base_branch(&svc, None, r), "trunk");
        // A remote that does not exist, and a repository that does not parse.
        let missing = tmp.join("nope.git");
        assert_eq!(
            default_base_branch(&svc, None, missing.to_str().unwrap()),
            "main"
        );
        assert_eq!(default_base_branch(&svc, None, "not a repo"), "main");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
