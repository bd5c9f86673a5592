//! `WorkspaceService::remote_default_branch`: what a real remote's `HEAD` names, asked with
//! real `git ls-remote` against local bare remotes.

use git_workspace_service::{Error, Secret};

use crate::support::World;

#[test]
fn asks_a_local_bare_remote_where_head_points() {
    let w = World::new("remote-head");
    let svc = w.service(None);
    let remote = w.tmp.0.join("r.git");
    let r = remote.to_str().unwrap();
    w.git(&w.tmp.0, &["init", "--bare", "-q", r]);
    w.git(
        &w.tmp.0,
        &["--git-dir", r, "symbolic-ref", "HEAD", "refs/heads/trunk"],
    );
    // HEAD names trunk, but trunk has no commit yet: git reports no symbolic HEAD.
    assert_eq!(svc.remote_default_branch(r).unwrap(), None);

    let seed = w.tmp.0.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    w.git(&seed, &["init", "-q"]);
    w.git(&seed, &["commit", "-q", "--allow-empty", "-m", "seed"]);
    w.git(&seed, &["push", "-q", r, "HEAD:refs/heads/trunk"]);
    assert_eq!(
        svc.remote_default_branch(r).unwrap().as_deref(),
        Some("trunk")
    );
    let file_url = format!("file://{r}");
    assert_eq!(
        svc.remote_default_branch(&file_url).unwrap().as_deref(),
        Some("trunk")
    );

    // A remote that does not exist is git's error, not a guess.
    let missing = w.tmp.0.join("nope.git");
    let err = svc
        .remote_default_branch(missing.to_str().unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::Git { .. }), "{err:?}");
    // A repository that does not parse never reaches git.
    let err = svc.remote_default_branch("not a repo").unwrap_err();
    assert!(matches!(err, Error::InvalidRepo { .. }), "{err:?}");
}

#[test]
fn a_forge_repository_is_asked_with_the_configured_token_and_errors_hide_it() {
    let w = World::new("remote-head-token");
    let bare = w.bare_remote("hello");
    w.rewrite_url("https://github.com/octo/hello.git", &bare);
    let token = "ghp_remoteheadtoken0123456789";
    let mut cfg = w.config(None);
    cfg.github_token = Some(Secret::new(token));
    let svc = git_workspace_service::WorkspaceService::open(cfg).unwrap();
    assert_eq!(
        svc.remote_default_branch("octo/hello").unwrap().as_deref(),
        Some("main")
    );
    // A failing forge repository (rewritten to a path with no repository, so nothing leaves
    // the machine): git's error names the command, never the token.
    w.rewrite_url(
        "https://github.com/octo/missing.git",
        &w.tmp.0.join("missing.git"),
    );
    let err = svc.remote_default_branch("octo/missing").unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(token), "{shown}");
}
