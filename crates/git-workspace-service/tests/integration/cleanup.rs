//! Cleanup and retention: refusal of dirty or unpushed work, worktree cascade, TTL sweep,
//! restart recovery.

use std::sync::Arc;
use std::time::Duration;

use git_workspace_service::clock::FakeClock;
use git_workspace_service::registry::{Status, Strategy};
use git_workspace_service::{Error, FinalizeRequest, Options, ProvisionRequest, WorkspaceService};

use crate::support::{Recorder, World};

/// A clone of the local bare remote `bare`, provisioned by `svc`.
fn clone_of(
    svc: &WorkspaceService,
    bare: &std::path::Path,
) -> git_workspace_service::registry::WorkspaceRecord {
    svc.provision(ProvisionRequest::clone_of(bare.display().to_string()))
        .unwrap()
}

#[test]
fn dirty_and_unpushed_work_is_never_deleted_unless_forced() {
    let w = World::new("refuse");
    let bare = w.bare_remote("repo");
    let svc = w.service(None);
    let ws = clone_of(&svc, &bare);

    // Untracked file.
    std::fs::write(ws.path.join("new.txt"), "work").unwrap();
    assert!(matches!(
        svc.cleanup(&ws.id, false),
        Err(Error::UncommittedChanges(_))
    ));
    // Staged.
    w.git(&ws.path, &["add", "new.txt"]);
    assert!(matches!(
        svc.cleanup(&ws.id, false),
        Err(Error::UncommittedChanges(_))
    ));
    // Committed, never pushed.
    svc.commit(&ws.id, "work").unwrap();
    let st = svc.status(&ws.id).unwrap();
    assert_eq!(
        (st.ahead, st.compared_to.as_deref()),
        (1, Some("origin/main"))
    );
    assert!(matches!(
        svc.cleanup(&ws.id, false),
        Err(Error::UnpushedCommits(_))
    ));
    // Modified tracked file.
    std::fs::write(ws.path.join("README.md"), "changed").unwrap();
    assert!(matches!(
        svc.cleanup(&ws.id, false),
        Err(Error::UncommittedChanges(_))
    ));
    w.git(&ws.path, &["checkout", "--", "README.md"]);
    assert!(ws.path.exists(), "refusals removed nothing");

    // Pushed: clean and nothing unpushed, so cleanup proceeds.
    svc.push(&ws.id, false).unwrap();
    let st = svc.status(&ws.id).unwrap();
    assert_eq!(
        (st.ahead, st.compared_to.as_deref()),
        (0, Some(format!("origin/{}", ws.branch).as_str()))
    );
    assert!(svc.cleanup(&ws.id, false).unwrap());
    assert!(!ws.path.exists());
    assert_eq!(svc.get(&ws.id).unwrap().status, Status::CleanedUp);
    assert!(
        !svc.cleanup(&ws.id, false).unwrap(),
        "second cleanup is a no-op"
    );
    assert!(
        !svc.cleanup("unknown-id", false).unwrap(),
        "unknown id is a no-op"
    );

    // Forced cleanup deletes unpushed work on purpose.
    let ws2 = clone_of(&svc, &bare);
    std::fs::write(ws2.path.join("x"), "x").unwrap();
    assert!(svc.cleanup(&ws2.id, true).unwrap());
    assert!(!ws2.path.exists());
}

/// Work committed on the workspace's branch is found also after the agent switched back to the
/// base branch, and work in a stash too: cleanup looked at HEAD's branch only and deleted both.
#[test]
fn unpushed_work_off_head_is_never_deleted() {
    let w = World::new("off-head");
    let bare = w.bare_remote("repo");
    let svc = w.service(None);
    let ws = clone_of(&svc, &bare);
    std::fs::write(ws.path.join("new.txt"), "work").unwrap();
    svc.commit(&ws.id, "work").unwrap();
    w.git(&ws.path, &["checkout", "-q", "main"]);
    let st = svc.status(&ws.id).unwrap();
    assert!(
        st.clean && !st.has_unpushed(),
        "HEAD alone looks safe: {st:?}"
    );
    assert!(matches!(
        svc.cleanup(&ws.id, false),
        Err(Error::UnpushedCommits(_))
    ));
    assert!(ws.path.exists());

    let ws2 = clone_of(&svc, &bare);
    std::fs::write(ws2.path.join("README.md"), "stashed work").unwrap();
    w.git(&ws2.path, &["stash", "-q"]);
    assert!(svc.status(&ws2.id).unwrap().clean);
    assert!(matches!(
        svc.cleanup(&ws2.id, false),
        Err(Error::UnpushedCommits(_))
    ));
    assert!(ws2.path.exists());
}

#[test]
fn clone_cleanup_cascades_to_worktrees_and_refuses_for_theirs() {
    let w = World::new("cascade");
    let bare = w.bare_remote("repo");
    let svc = w.service(None);
    let rec = Recorder::attach(&svc);
    let parent = clone_of(&svc, &bare);
    let mut req = ProvisionRequest::clone_of(bare.display().to_string());
    req.execution_id = Some("e9".into());
    req.role = Some("tester".into());
    let child = svc.add_worktree(&parent.id, req).unwrap();
    assert_eq!(child.strategy, Strategy::Worktree);

    std::fs::write(child.path.join("wip.txt"), "wip").unwrap();
    assert!(
        matches!(svc.cleanup(&parent.id, false), Err(Error::UncommittedChanges(id)) if id == child.id)
    );
    assert!(parent.path.exists() && child.path.exists());
    std::fs::remove_file(child.path.join("wip.txt")).unwrap();

    rec.events.lock().unwrap().clear();
    assert!(svc.cleanup(&parent.id, false).unwrap());
    assert!(!parent.path.exists() && !child.path.exists());
    assert_eq!(svc.get(&child.id).unwrap().status, Status::CleanedUp);
    let kinds = rec.kinds();
    assert_eq!(kinds, ["worktree:removed", "workspace:cleaned_up"]);
    let removed = &rec.events.lock().unwrap()[0];
    assert_eq!(removed.data["parentWorkspaceId"], parent.id.as_str());
}

#[test]
fn removing_one_worktree_prunes_and_keeps_the_parent() {
    let w = World::new("rmwt");
    let bare = w.bare_remote("repo");
    let svc = w.service(None);
    let parent = clone_of(&svc, &bare);
    let child = svc
        .add_worktree(&parent.id, ProvisionRequest::clone_of(""))
        .unwrap();
    assert!(svc.remove_worktree(&child.id, false).unwrap());
    assert!(!child.path.exists() && parent.path.exists());
    let list = w.git(&parent.path, &["worktree", "list", "--porcelain"]);
    assert!(!list.contains(child.path.to_str().unwrap()), "{list}");
    assert!(svc.get(&parent.id).unwrap().worktrees.is_empty());
}

#[test]
fn ttl_sweep_follows_the_same_rule() {
    let w = World::new("ttl");
    let bare = w.bare_remote("repo");
    let clock = Arc::new(FakeClock::new(1_000_000_000));
    let opts = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    let svc = WorkspaceService::open_with(w.config(None), opts).unwrap();
    let clean = clone_of(&svc, &bare);
    let dirty = clone_of(&svc, &bare);
    std::fs::write(dirty.path.join("wip"), "x").unwrap();
    assert!(
        svc.sweep_expired(Duration::from_secs(60)).is_empty(),
        "nothing is old yet"
    );
    clock.advance(Duration::from_secs(61));
    let swept = svc.sweep_expired(Duration::from_secs(60));
    assert_eq!(swept.len(), 2);
    for (id, res) in swept {
        if id == clean.id {
            assert!(res.unwrap());
        } else {
            assert!(matches!(res, Err(Error::UncommittedChanges(_))));
        }
    }
    assert!(!clean.path.exists() && dirty.path.exists());
}

#[test]
fn a_restarted_service_lists_finalizes_and_cleans_what_it_made() {
    let w = World::new("restart");
    let bare = w.bare_remote("repo");
    let (kept, lost) = {
        let svc = w.service(None);
        let kept = clone_of(&svc, &bare);
        let lost = clone_of(&svc, &bare);
        std::fs::write(kept.path.join("result.txt"), "done").unwrap();
        (kept, lost)
    };
    std::fs::remove_dir_all(&lost.path).unwrap();
    // A directory the registry does not know is never touched.
    let stray = w.base.join("not-ours");
    std::fs::create_dir_all(&stray).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.base.join("registry.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let svc = w.service(None);
    let all = svc.list();
    assert_eq!(all.len(), 2);
    let l = svc.get(&lost.id).unwrap();
    assert!(l.lost && l.status == Status::Error);
    let out = svc
        .finalize(
            &kept.id,
            &FinalizeRequest {
                commit_message: Some("agent result".into()),
                push: true,
                force_with_lease: false,
                pr: None,
                cleanup: true,
            },
        )
        .unwrap();
    assert!(out.commit.is_some() && out.pushed && out.cleaned_up);
    assert_eq!(
        w.git(&bare, &["log", "-1", "--format=%s", &kept.branch]),
        "agent result"
    );
    assert!(!kept.path.exists());
    assert!(svc.cleanup(&lost.id, false).unwrap());
    assert!(stray.exists());
}

#[test]
fn cleanup_for_execution_cleans_its_workspaces_and_revokes_its_grants() {
    use git_workspace_service::Secret;
    use git_workspace_service::credentials::UserCredential;
    let w = World::new("byexec");
    let bare = w.bare_remote("repo");
    let svc = w.service(None);
    let mk = |exec: &str| {
        let mut r = ProvisionRequest::clone_of(bare.display().to_string());
        r.execution_id = Some(exec.into());
        r.role = Some("dev".into());
        r.credential = Some(UserCredential::Pat(Secret::new("ghp_exec_scoped_token")));
        svc.provision(r).unwrap()
    };
    let a = mk("e1");
    let b = svc
        .add_worktree(&a.id, {
            let mut r = ProvisionRequest::clone_of("");
            r.execution_id = Some("e1".into());
            r.role = Some("review".into());
            r
        })
        .unwrap();
    let other = mk("e2");
    let out = svc.cleanup_for_execution("e1");
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|(_, r)| r.is_ok()));
    assert!(!a.path.exists() && !b.path.exists() && other.path.exists());
    let grant = a.credential.unwrap().id;
    assert!(!svc.credentials().is_valid(&grant));
    assert!(svc.credentials().is_valid(&other.credential.unwrap().id));
}

/// A clone with a worktree no record covers (made by hand, or one being provisioned) is not
/// deleted, forced or not: that would delete the worktree's history with it.
#[test]
fn a_clone_with_a_foreign_worktree_is_not_deleted() {
    let w = World::new("foreign-wt");
    let bare = w.bare_remote("repo");
    let svc = w.service(None);
    let ws = clone_of(&svc, &bare);
    let other = w.base.join("by-hand");
    w.git(
        &ws.path,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "by-hand",
            &other.display().to_string(),
        ],
    );
    for force in [false, true] {
        match svc.cleanup(&ws.id, force) {
            Err(Error::ForeignWorktrees { paths, .. }) => assert!(paths.contains("by-hand")),
            r => panic!("force {force}: {r:?}"),
        }
        assert!(ws.path.exists() && other.exists());
    }
    w.git(
        &ws.path,
        &["worktree", "remove", &other.display().to_string()],
    );
    assert!(svc.cleanup(&ws.id, false).unwrap());
    assert!(!ws.path.exists());
}
