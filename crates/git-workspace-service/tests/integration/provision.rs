//! Provisioning: clones from a path, a file:// URL and a rewritten github.com URL; worktrees;
//! generated and custom branch names; identity; excludes; progress.

use git_workspace_service::registry::{Status, Strategy};
use git_workspace_service::{Error, ProvisionRequest, status};

use crate::support::{Recorder, World};

#[test]
fn clones_from_local_path_file_url_and_rewritten_github_url() {
    let w = World::new("clone");
    let bare = w.bare_remote("repo");
    w.rewrite_url("https://github.com/octo/hello.git", &bare);
    let svc = w.service(None);
    let rec = Recorder::attach(&svc);
    let inputs = [
        bare.display().to_string(),
        format!("file://{}", bare.display()),
        "https://github.com/octo/hello.git".to_owned(),
        "octo/hello".to_owned(),
    ];
    for input in &inputs {
        let mut req = ProvisionRequest::clone_of(input.clone());
        req.execution_id = Some("exec-123".into());
        req.role = Some("engineer".into());
        req.slug = Some("Auth Feature".into());
        let mut progress = Vec::new();
        let ws = svc
            .provision_with_progress(req, &mut |p| progress.push(p))
            .unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(ws.status, Status::Ready);
        assert_eq!(ws.branch, "parallax/exec-123/engineer-auth-feature");
        assert!(ws.path.starts_with(&w.base) && ws.path.join("README.md").exists());
        let st = status(&ws.path, "main").unwrap();
        assert_eq!(st.branch.as_deref(), Some(ws.branch.as_str()));
        assert!(st.clean && st.ahead == 0 && st.behind == 0, "{st:?}");
        assert_eq!(st.compared_to.as_deref(), Some("origin/main"));
        assert_eq!(w.git(&ws.path, &["config", "user.name"]), "Workspace Agent");
        assert_eq!(
            w.git(&ws.path, &["config", "user.email"]),
            "agent@workspace.local"
        );
        let parsed = svc.naming().parse(&ws.branch).unwrap();
        assert_eq!(
            (parsed.execution_id.as_str(), parsed.role.as_str()),
            ("exec-123", "engineer")
        );
        if input.starts_with("file://") {
            assert!(
                progress.iter().any(|p| p.percent.is_some()),
                "a file:// clone reports percentages: {progress:?}"
            );
        }
    }
    // One provisioning → ready pair per clone, nothing else (no credential was given).
    let kinds = rec.kinds();
    assert_eq!(kinds.len(), 2 * inputs.len(), "{kinds:?}");
    assert!(
        kinds
            .chunks(2)
            .all(|c| c == ["workspace:provisioning", "workspace:ready"])
    );
}

#[test]
fn worktrees_share_the_repository_and_refuse_bad_parents() {
    let w = World::new("wt");
    let bare = w.bare_remote("repo");
    let other = w.bare_remote("other");
    let svc = w.service(None);
    let rec = Recorder::attach(&svc);
    let mut req = ProvisionRequest::clone_of(bare.display().to_string());
    req.git_user = Some(git_workspace_service::registry::GitUser {
        name: "Parent Agent".into(),
        email: "parent@example.invalid".into(),
    });
    let parent = svc.provision(req).unwrap();

    let mut wreq = ProvisionRequest::clone_of(format!("file://{}", bare.display()));
    wreq.strategy = Strategy::Worktree;
    wreq.parent_workspace = Some(parent.id.clone());
    wreq.branch_name = Some("feature/custom-name".into());
    wreq.git_user = Some(git_workspace_service::registry::GitUser {
        name: "Child Agent".into(),
        email: "child@example.invalid".into(),
    });
    let child = svc.provision(wreq.clone()).unwrap();
    assert_eq!(child.strategy, Strategy::Worktree);
    assert!(!child.managed);
    assert_eq!(
        status(&child.path, "main").unwrap().branch.as_deref(),
        Some("feature/custom-name")
    );
    // Identity per worktree; the parent keeps its own.
    assert_eq!(w.git(&child.path, &["config", "user.name"]), "Child Agent");
    assert_eq!(
        w.git(&parent.path, &["config", "user.name"]),
        "Parent Agent"
    );
    // No implied upstream: the first push sets it.
    assert!(
        std::process::Command::new("git")
            .args(["rev-parse", "--abbrev-ref", "@{upstream}"])
            .current_dir(&child.path)
            .envs(w.env())
            .output()
            .unwrap()
            .stdout
            .is_empty()
    );
    assert_eq!(svc.list_worktrees(&parent.id).unwrap()[0].id, child.id);
    assert!(rec.kinds().ends_with(&[
        "workspace:provisioning",
        "worktree:added",
        "workspace:ready"
    ]));

    let mut of_child = wreq.clone();
    of_child.parent_workspace = Some(child.id.clone());
    of_child.branch_name = Some("x".into());
    assert!(matches!(
        svc.provision(of_child),
        Err(Error::ParentIsWorktree(_))
    ));
    let mut missing = wreq.clone();
    missing.parent_workspace = Some("nope".into());
    assert!(matches!(
        svc.provision(missing),
        Err(Error::ParentNotFound(_))
    ));
    let mut no_parent = wreq.clone();
    no_parent.parent_workspace = None;
    assert!(matches!(
        svc.provision(no_parent),
        Err(Error::ParentRequired)
    ));
    let mut mismatch = wreq.clone();
    mismatch.repo = other.display().to_string();
    mismatch.branch_name = Some("y".into());
    assert!(matches!(
        svc.provision(mismatch),
        Err(Error::WorktreeRepoMismatch { .. })
    ));
    assert!(matches!(
        svc.remove_worktree(&parent.id, false),
        Err(Error::NotAWorktree(_))
    ));
}

#[test]
fn failed_clone_keeps_a_redacted_record_and_removes_the_directory() {
    let w = World::new("fail");
    let bare = w.bare_remote("repo");
    let svc = w.service(None);
    let rec = Recorder::attach(&svc);
    let mut req = ProvisionRequest::clone_of(bare.display().to_string());
    req.base_branch = "does-not-exist".into();
    let err = svc.provision(req).unwrap_err();
    assert!(matches!(err, Error::Git { .. }), "{err}");
    let all = svc.list();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, Status::Error);
    assert!(
        all[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("does-not-exist")
    );
    assert!(!all[0].path.exists());
    assert_eq!(rec.kinds(), ["workspace:provisioning", "workspace:error"]);
}

#[test]
fn excludes_go_to_info_exclude_not_gitignore() {
    let w = World::new("excl");
    let bare = w.bare_remote("repo");
    let svc = w.service(None);
    let ws = svc
        .provision(ProvisionRequest::clone_of(bare.display().to_string()))
        .unwrap();
    svc.add_excludes(&ws.id, &["CLAUDE.md", ".claude/"])
        .unwrap();
    svc.add_excludes(&ws.id, &["CLAUDE.md"]).unwrap();
    std::fs::write(ws.path.join("CLAUDE.md"), "memory").unwrap();
    let exclude = std::fs::read_to_string(ws.path.join(".git/info/exclude")).unwrap();
    assert_eq!(exclude.matches("CLAUDE.md").count(), 1);
    assert!(!ws.path.join(".gitignore").exists());
    assert!(svc.status(&ws.id).unwrap().clean);
    assert!(svc.add_excludes(&ws.id, &["a\nb"]).is_err());
}

#[test]
fn status_counts_ahead_and_behind_the_remote() {
    let w = World::new("aheadbehind");
    let bare = w.bare_remote("repo");
    let svc = w.service(None);
    let ws = svc
        .provision(ProvisionRequest::clone_of(bare.display().to_string()))
        .unwrap();
    // Someone else lands two commits on main.
    let other = w.tmp.0.join("other");
    w.git(
        &w.tmp.0,
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    for i in 0..2 {
        std::fs::write(other.join(format!("o{i}")), "o").unwrap();
        w.git(&other, &["add", "-A"]);
        w.git(&other, &["commit", "-q", "-m", "other"]);
    }
    w.git(&other, &["push", "-q", "origin", "main"]);
    std::fs::write(ws.path.join("mine"), "m").unwrap();
    svc.commit(&ws.id, "mine").unwrap();
    w.git(&ws.path, &["fetch", "-q", "origin"]);
    let st = svc.status(&ws.id).unwrap();
    assert_eq!((st.ahead, st.behind, st.clean), (1, 2, true), "{st:?}");
    std::fs::write(ws.path.join("README.md"), "edited").unwrap();
    std::fs::write(ws.path.join("staged"), "s").unwrap();
    w.git(&ws.path, &["add", "staged"]);
    std::fs::write(ws.path.join("loose"), "l").unwrap();
    let st = svc.status(&ws.id).unwrap();
    assert_eq!(st.modified, ["README.md"]);
    assert_eq!(st.staged, ["staged"]);
    assert_eq!(st.untracked, ["loose"]);
    assert!(!st.clean);
}
