//! Real git workspaces from a local bare remote through the actions: several agents from one
//! clone, each in its own worktree and branch; agent scratch files kept out of FINALIZE's commit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use orchestrator_plugin::actions::{self, ActionResult, ChatMemory, Message};
use orchestrator_plugin::runtime::{SettingsStore, StandaloneRuntime};
use orchestrator_plugin::services::{GitWorkspaces, ManagedPty, PtyService, WorkspaceService};
use orchestrator_plugin::settings::{PtyServiceConfig, WorkspaceConfig};

use crate::fakes::TempDir;
use crate::git_run::git;

struct Rig {
    rt: StandaloneRuntime,
    ws: Arc<GitWorkspaces>,
    pty: Arc<ManagedPty>,
    remote: PathBuf,
}

fn rig(tmp: &TempDir, search_path: Option<&Path>) -> Rig {
    let settings = SettingsStore::from_pairs([
        ("HOME", tmp.0.display().to_string()),
        (
            "CODING_WORKSPACE_CONFIG",
            json!({"baseDir": tmp.0.join("ws").display().to_string()}).to_string(),
        ),
    ]);
    let mut pty = ManagedPty::start(PtyServiceConfig::default(), |_| {}).unwrap();
    if let Some(p) = search_path {
        pty = pty.with_search_path(p.display().to_string());
    }
    let pty = Arc::new(pty);
    let wsc = WorkspaceConfig::from_settings(&|k| settings.get(k), Some(&tmp.0)).unwrap();
    let ws = Arc::new(GitWorkspaces::open(&wsc, None).unwrap());
    let rt = StandaloneRuntime::new(settings)
        .unwrap()
        .with_pty(pty.clone())
        .with_workspace(ws.clone());
    let remote = crate::run_cmd::bare_remote_for_tests(&tmp.0);
    Rig {
        rt,
        ws,
        pty,
        remote,
    }
}

fn call(rt: &StandaloneRuntime, action: &str, params: Value) -> ActionResult {
    let a = actions::find(action).unwrap();
    let params = params.as_object().cloned().unwrap_or_default();
    let msg = Message::text("room-1", "");
    actions::run(a, rt, &ChatMemory::default(), &msg, &params, &mut |_| {})
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(t) = std::fs::read_to_string(path)
            && !t.is_empty()
        {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn several_agents_share_one_clone_each_in_its_own_worktree() {
    let tmp = TempDir::new("multi-worktree");
    let r = rig(&tmp, None);
    let res = call(
        &r.rt,
        "START_CODING_TASK",
        json!({
            "repo": r.remote.display().to_string(),
            "agentType": "shell",
            "label": "app/split",
            "agents": "echo one > out.txt | echo two > out.txt | shell: echo three > out.txt",
        }),
    );
    assert!(res.success, "{}", res.text);
    assert!(
        res.text.starts_with("Launched 3/3 agents on "),
        "{}",
        res.text
    );
    let agents = res.data["agents"].as_array().unwrap().clone();
    assert_eq!(agents.len(), 3);

    // One clone, three worktrees of it.
    let all = r.ws.list();
    assert_eq!(all.len(), 4, "{all:?}");
    let clone_id = res.data["cloneWorkspaceId"].as_str().unwrap();
    let clone = r.ws.get(clone_id).unwrap();
    assert!(!clone.is_worktree);
    let mut branches = std::collections::BTreeSet::new();
    let mut dirs = std::collections::BTreeSet::new();
    let clone_git = std::fs::canonicalize(clone.path.join(".git")).unwrap();
    for (i, a) in agents.iter().enumerate() {
        let w = r.ws.get(a["workspaceId"].as_str().unwrap()).unwrap();
        assert!(w.is_worktree, "{w:?}");
        assert!(
            w.branch.ends_with(&format!("/coding-agent-{}", i + 1)),
            "{}",
            w.branch
        );
        assert_eq!(git(&w.path, &["branch", "--show-current"]), w.branch);
        let common = git(
            &w.path,
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        );
        assert_eq!(
            std::fs::canonicalize(common).unwrap(),
            clone_git,
            "worktree of the one clone"
        );
        assert_eq!(PathBuf::from(a["workdir"].as_str().unwrap()), w.path);
        branches.insert(w.branch.clone());
        dirs.insert(w.path.clone());
    }
    assert_eq!((branches.len(), dirs.len()), (3, 3), "distinct");
    assert!(!branches.contains(&clone.branch));
    let listed = git(&clone.path, &["worktree", "list", "--porcelain"]);
    assert_eq!(listed.matches("worktree ").count(), 4, "{listed}");

    // Each agent ran in its own worktree.
    for (a, want) in agents.iter().zip(["one", "two", "three"]) {
        let dir = PathBuf::from(a["workdir"].as_str().unwrap());
        assert_eq!(wait_for_file(&dir.join("out.txt")).trim(), want);
    }
    for a in &agents {
        let _ = r.pty.stop_session(a["sessionId"].as_str().unwrap(), true);
    }
}

#[test]
fn aider_scratch_files_stay_out_of_the_finalize_commit() {
    let tmp = TempDir::new("aider-scratch");
    // A fake `aider` on a private search path: it leaves Aider's files and one real change.
    let bin = tmp.0.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("aider");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         echo '# aider chat started' > .aider.chat.history.md\n\
         echo 'hi' > .aider.input.history\n\
         mkdir -p .aider.tags.cache.v4 && echo x > .aider.tags.cache.v4/cache.db\n\
         echo 'real work' > work.txt\n\
         echo done > .fake-aider-done\n\
         printf '> '\n\
         exec cat >/dev/null\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = rig(&tmp, Some(&bin));

    // A clone and a worktree of it: the worktree's `.git` is a file, and the exclusion must
    // still reach the shared exclude file.
    let res = call(
        &r.rt,
        "PROVISION_WORKSPACE",
        json!({"repo": r.remote.display().to_string()}),
    );
    assert!(res.success, "{}", res.text);
    let res = call(&r.rt, "PROVISION_WORKSPACE", json!({"useWorktree": true}));
    assert!(res.success, "{}", res.text);
    let wt = r.ws.list().into_iter().find(|w| w.is_worktree).unwrap();
    assert!(wt.path.join(".git").is_file());

    let res = call(
        &r.rt,
        "SPAWN_CODING_AGENT",
        json!({"agentType": "aider", "workdir": wt.path.display().to_string(),
               "memoryContent": "keep it small"}),
    );
    assert!(res.success, "{}", res.text);
    wait_for_file(&wt.path.join(".fake-aider-done"));
    std::fs::write(wt.path.join(".aider.chat.history.md"), "planted\n").unwrap();

    let res = call(
        &r.rt,
        "FINALIZE_WORKSPACE",
        json!({"workspaceId": wt.id, "skipPR": true, "commitMessage": "agent work"}),
    );
    assert!(res.success, "{}", res.text);
    let files = git(
        &wt.path,
        &["show", "--name-only", "--pretty=format:", "HEAD"],
    );
    let files: Vec<&str> = files.lines().filter(|l| !l.is_empty()).collect();
    assert!(files.contains(&"work.txt"), "{files:?}");
    assert!(
        !files.iter().any(|f| f.starts_with(".aider")),
        "Aider's files and the memory file are not committed: {files:?}"
    );
    let pushed = git(
        &r.remote,
        &["log", "--name-only", "--pretty=format:", &wt.branch],
    );
    assert!(!pushed.contains(".aider"), "{pushed}");
    for s in r.pty.list_sessions() {
        let _ = r.pty.stop_session(&s.id, true);
    }
}

#[test]
fn expired_workspaces_go_unless_in_use_or_holding_work() {
    use orchestrator_plugin::services::ProvisionRequest;
    let tmp = TempDir::new("ws-expiry");
    let r = rig(&tmp, None);
    let clone = |label: &str| {
        r.ws.provision(ProvisionRequest {
            repo: r.remote.display().to_string(),
            base_branch: "main".into(),
            branch_name: Some(format!("milady/exec-1/{label}")),
            ..ProvisionRequest::default()
        })
        .unwrap()
    };
    let idle = clone("idle");
    let dirty = clone("dirty");
    std::fs::write(dirty.path.join("unsaved.txt"), "work\n").unwrap();
    let busy = clone("busy");
    let parent = clone("parent");
    let wt =
        r.ws.provision(ProvisionRequest {
            repo: r.remote.display().to_string(),
            base_branch: "main".into(),
            branch_name: Some("milady/exec-1/wt".into()),
            use_worktree: true,
            parent_workspace_id: Some(parent.id.clone()),
            ..ProvisionRequest::default()
        })
        .unwrap();
    let in_use = |p: &Path| p == busy.path || p == wt.path;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let ttl = 86_400_000;

    // Not expired yet, or no TTL: nothing is tried.
    assert!(r.ws.sweep_expired(ttl, now, &in_use).is_empty());
    assert!(r.ws.sweep_expired(0, now + 2 * ttl, &in_use).is_empty());

    let mut got: Vec<(String, String)> =
        r.ws.sweep_expired(ttl, now + ttl + 1, &in_use)
            .into_iter()
            .map(|(id, res)| {
                let what = match res {
                    Ok(true) => "removed".to_string(),
                    Ok(false) => "nothing".to_string(),
                    Err(e) => format!("{e}"),
                };
                (id, what)
            })
            .collect();
    got.sort();
    let mut want = vec![
        (idle.id.clone(), "removed".to_string()),
        (
            dirty.id.clone(),
            format!("refused: workspace has uncommitted changes: {}", dirty.id),
        ),
    ];
    want.sort();
    assert_eq!(
        got, want,
        "busy, the worktree in use and its clone are left alone"
    );
    assert!(!idle.path.exists());
    for w in [&dirty, &busy, &parent, &wt] {
        assert!(w.path.is_dir(), "{} kept", w.path.display());
    }
}

/// A bare remote whose only branches are `trunk` (its HEAD, one commit) and `side` (one more);
/// returns the remote and the two commits.
pub fn trunk_remote(root: &Path) -> (PathBuf, String, String) {
    let remote = root.join("trunk.git");
    let seed = root.join("trunk-seed");
    std::fs::create_dir_all(&seed).unwrap();
    let r = remote.to_str().unwrap();
    git(root, &["init", "--bare", "-q", r]);
    git(
        root,
        &["--git-dir", r, "symbolic-ref", "HEAD", "refs/heads/trunk"],
    );
    git(&seed, &["init", "-q"]);
    let id = ["-c", "user.name=T", "-c", "user.email=t@example.invalid"];
    std::fs::write(seed.join("README.md"), "trunk\n").unwrap();
    git(&seed, &["add", "README.md"]);
    git(&seed, &[&id[..], &["commit", "-q", "-m", "seed"]].concat());
    git(&seed, &["push", "-q", r, "HEAD:refs/heads/trunk"]);
    let trunk = git(&seed, &["rev-parse", "HEAD"]);
    git(
        &seed,
        &[&id[..], &["commit", "-q", "--allow-empty", "-m", "side"]].concat(),
    );
    git(&seed, &["push", "-q", r, "HEAD:refs/heads/side"]);
    let side = git(&seed, &["rev-parse", "HEAD"]);
    (remote, trunk, side)
}

/// A repository without `main`: START with one agent clones its default branch (what the
/// remote's HEAD names), START with two gives each a worktree off it, `baseBranch` still wins.
#[test]
fn a_trunk_only_remote_starts_from_trunk() {
    let tmp = TempDir::new("trunk-start");
    let r = rig(&tmp, None);
    let (remote, trunk, side) = trunk_remote(&tmp.0);
    let repo = remote.display().to_string();

    let res = call(
        &r.rt,
        "START_CODING_TASK",
        json!({"repo": repo, "agentType": "shell", "label": "t/one", "task": "echo one > one.txt"}),
    );
    assert!(res.success, "{}", res.text);
    let a = &res.data["agents"][0];
    let w = r.ws.get(a["workspaceId"].as_str().unwrap()).unwrap();
    assert!(!w.is_worktree);
    assert_eq!(git(&w.path, &["rev-parse", "HEAD"]), trunk);
    assert_eq!(git(&w.path, &["branch", "--show-current"]), w.branch);
    assert_eq!(git(&w.path, &["rev-parse", "origin/trunk"]), trunk);
    assert_eq!(
        r.ws.inner().get(&w.id).unwrap().base_branch,
        "trunk",
        "recorded base (FINALIZE's PR target)"
    );
    assert_eq!(wait_for_file(&w.path.join("one.txt")).trim(), "one");
    let _ = r.pty.stop_session(a["sessionId"].as_str().unwrap(), true);

    let res = call(
        &r.rt,
        "START_CODING_TASK",
        json!({"repo": repo, "agentType": "shell", "label": "t/two", "agents": "echo a > a.txt | echo b > b.txt"}),
    );
    assert!(res.success, "{}", res.text);
    let clone =
        r.ws.get(res.data["cloneWorkspaceId"].as_str().unwrap())
            .unwrap();
    assert_eq!(git(&clone.path, &["rev-parse", "HEAD"]), trunk);
    let agents = res.data["agents"].as_array().unwrap().clone();
    assert_eq!(agents.len(), 2);
    for (a, f) in agents.iter().zip(["a.txt", "b.txt"]) {
        let w = r.ws.get(a["workspaceId"].as_str().unwrap()).unwrap();
        assert!(w.is_worktree, "{w:?}");
        assert_eq!(git(&w.path, &["rev-parse", "HEAD"]), trunk, "{w:?}");
        assert_eq!(r.ws.inner().get(&w.id).unwrap().base_branch, "trunk");
        assert!(!wait_for_file(&w.path.join(f)).is_empty());
        let _ = r.pty.stop_session(a["sessionId"].as_str().unwrap(), true);
    }

    // An explicit base is used as given, for the clone and for PROVISION's worktree of it.
    let res = call(
        &r.rt,
        "START_CODING_TASK",
        json!({"repo": repo, "agentType": "shell", "label": "t/side", "baseBranch": "side"}),
    );
    assert!(res.success, "{}", res.text);
    let a = &res.data["agents"][0];
    let w = r.ws.get(a["workspaceId"].as_str().unwrap()).unwrap();
    assert_eq!(git(&w.path, &["rev-parse", "HEAD"]), side);
    let _ = r.pty.stop_session(a["sessionId"].as_str().unwrap(), true);
    let res = call(
        &r.rt,
        "PROVISION_WORKSPACE",
        json!({"useWorktree": true, "parentWorkspaceId": w.id}),
    );
    assert!(res.success, "{}", res.text);
    let wt = PathBuf::from(res.data["path"].as_str().unwrap());
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), side, "the clone's base");
    let res = call(&r.rt, "PROVISION_WORKSPACE", json!({"repo": repo}));
    assert!(res.success, "{}", res.text);
    let p = PathBuf::from(res.data["path"].as_str().unwrap());
    assert_eq!(git(&p, &["rev-parse", "HEAD"]), trunk);
}

/// The workspaces are listed oldest first, so "the most recent" (the default workspace of
/// FINALIZE_WORKSPACE, spawn and worktree provisioning, BEHAVIOR.md §10.2) is the newest one:
/// the list came in the registry's order of random ids, and a finalize without a workspace
/// named committed, pushed and opened a pull request in an arbitrary one.
#[test]
fn workspaces_are_listed_oldest_first() {
    use orchestrator_plugin::services::ProvisionRequest;
    let tmp = TempDir::new("ws-order");
    let r = rig(&tmp, None);
    let made: Vec<String> = (0..6)
        .map(|i| {
            let w =
                r.ws.provision(ProvisionRequest {
                    repo: r.remote.display().to_string(),
                    base_branch: "main".into(),
                    branch_name: Some(format!("milady/exec-1/order-{i}")),
                    ..ProvisionRequest::default()
                })
                .unwrap();
            // Creation times are in milliseconds: keep them apart.
            std::thread::sleep(Duration::from_millis(3));
            w.id
        })
        .collect();
    let listed: Vec<String> = r.ws.list().into_iter().map(|w| w.id).collect();
    assert_eq!(listed, made);
}

/// In chat, progress replies reach the person as they are sent: MANAGE_ISSUES shows the device
/// code, waits for the authorization, says who authorized, then does what was asked.
#[test]
fn manage_issues_in_chat_shows_the_code_then_waits_for_the_person() {
    use test_support::github::{DeviceStep, FakeGitHub};
    let tmp = TempDir::new("chat-device");
    let gh = FakeGitHub::start().unwrap();
    gh.add_repo("octo", "hello", "main");
    gh.script_device_flow(
        vec![
            DeviceStep::Pending,
            DeviceStep::Success {
                token: "gho_from_chat".into(),
            },
        ],
        1,
        600,
    );
    let settings = SettingsStore::from_pairs([
        ("HOME", tmp.0.display().to_string()),
        (
            "CODING_WORKSPACE_CONFIG",
            json!({"baseDir": tmp.0.join("ws").display().to_string()}).to_string(),
        ),
        ("GITHUB_OAUTH_CLIENT_ID", "Iv1.test".to_string()),
    ]);
    let wsc = WorkspaceConfig::from_settings(&|k| settings.get(k), Some(&tmp.0)).unwrap();
    let ws = GitWorkspaces::open_with_oauth(&wsc, Some(&gh.base_url()), Some("Iv1.test".into()))
        .unwrap();
    let rt = StandaloneRuntime::new(settings)
        .unwrap()
        .with_workspace(Arc::new(ws));
    let mut progress = Vec::new();
    let params = json!({"operation": "list", "repo": "octo/hello"});
    let r = actions::run(
        actions::find("MANAGE_ISSUES").unwrap(),
        &rt,
        &ChatMemory::default(),
        &Message::text("room-1", ""),
        params.as_object().unwrap(),
        &mut |t| progress.push(t.to_string()),
    );
    assert!(r.success, "{}", r.text);
    assert_eq!(r.text, "No open issues found in octo/hello.");
    assert_eq!(progress.len(), 2, "{progress:?}");
    assert!(
        progress[0].starts_with("I need GitHub access to manage issues. Please authorize me:")
            && progress[0].contains("Enter code: **")
            && progress[0].ends_with("I'll wait for you to complete authorization..."),
        "{progress:?}"
    );
    assert_eq!(progress[1], "Authorized as octo-agent.");
}
