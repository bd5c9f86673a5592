//! `on_complete` after provisioning, shared registries, and interrupted operations on restart.

use git_workspace_service::registry::Status;
use git_workspace_service::{OnComplete, ProvisionRequest, WorkspaceService};
use test_support::github::FakeGitHub;

use crate::support::{Recorder, World};

#[test]
fn on_complete_runs_an_argv_and_posts_only_to_allowed_hosts() {
    let gh = FakeGitHub::start().unwrap();
    let w = World::new("hooks");
    let bare = w.bare_remote("repo");
    let mut config = w.config(None);
    config.webhook_allowed_hosts = vec!["127.0.0.1".into()];
    let svc = WorkspaceService::open(config).unwrap();
    let rec = Recorder::attach(&svc);
    let script =
        "printf '%s|%s|%s|%s' \"$WORKSPACE_ID\" \"$STATUS\" \"$BRANCH\" \"$PWD\" > hook.txt";
    let hook = OnComplete {
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        webhook: Some(format!("{}/hooks/workspace", gh.base_url())),
        webhook_headers: vec![("X-Hook-Secret".into(), "hook-secret-value".into())],
        run_on_error: true,
    };
    let mut req = ProvisionRequest::clone_of(bare.display().to_string());
    req.on_complete = Some(hook.clone());
    let ws = svc.provision(req).unwrap();
    let ran = std::fs::read_to_string(ws.path.join("hook.txt")).unwrap();
    assert_eq!(
        ran,
        format!("{}|ready|{}|{}", ws.id, ws.branch, ws.path.display())
    );
    let posted = gh
        .requests()
        .into_iter()
        .find(|r| r.path == "/hooks/workspace")
        .unwrap();
    let body = posted.json();
    assert_eq!(
        (body["workspaceId"].as_str(), body["status"].as_str()),
        (Some(ws.id.as_str()), Some("ready"))
    );
    assert_eq!(posted.header("x-hook-secret"), Some("hook-secret-value"));
    // The fake answers 401 (no GitHub token): logged, redacted, and provisioning still succeeded.
    assert!(
        rec.logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("answered 401"))
    );

    // A failed provisioning runs the hook too (run_on_error), with status error.
    let mut req = ProvisionRequest::clone_of(bare.display().to_string());
    req.base_branch = "nope".into();
    req.on_complete = Some(hook.clone());
    let _ = svc.provision(req).unwrap_err();
    let last = gh
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/hooks/workspace")
        .unwrap();
    assert_eq!(last.json()["status"], "error");
    // The workspace directory is gone, so the command ran in the base directory, never in the
    // caller's working directory.
    let ran = std::fs::read_to_string(w.base.join("hook.txt")).unwrap();
    assert!(ran.contains("|error|"), "{ran}");
    assert!(!std::path::Path::new("hook.txt").exists());

    // A host that is not allowed is never contacted.
    let other = FakeGitHub::start().unwrap();
    let mut req = ProvisionRequest::clone_of(bare.display().to_string());
    req.on_complete = Some(OnComplete {
        webhook: Some(format!(
            "http://localhost:{}/x",
            other.base_url().rsplit(':').next().unwrap()
        )),
        ..OnComplete::default()
    });
    svc.provision(req).unwrap();
    assert!(other.requests().is_empty());
    assert!(
        rec.logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("webhook refused"))
    );
    for l in rec.logs.lock().unwrap().iter() {
        assert!(!l.contains("hook-secret-value"), "{l}");
    }
}

#[test]
fn two_services_on_one_base_directory_do_not_lose_each_others_records() {
    let w = World::new("shared");
    let bare = w.bare_remote("repo");
    let a = w.service(None);
    let b = w.service(None);
    let wa = a
        .provision(ProvisionRequest::clone_of(bare.display().to_string()))
        .unwrap();
    let wb = b
        .provision(ProvisionRequest::clone_of(bare.display().to_string()))
        .unwrap();
    assert_eq!(a.list().len(), 2);
    assert!(a.cleanup(&wb.id, false).unwrap());
    assert_eq!(b.get(&wb.id).unwrap().status, Status::CleanedUp);
    assert_eq!(b.get(&wa.id).unwrap().status, Status::Ready);
}

#[test]
fn interrupted_operations_are_marked_on_restart_unless_their_process_still_runs() {
    let w = World::new("interrupted");
    let bare = w.bare_remote("repo");
    let (x, y) = {
        let svc = w.service(None);
        let x = svc
            .provision(ProvisionRequest::clone_of(bare.display().to_string()))
            .unwrap();
        let y = svc
            .provision(ProvisionRequest::clone_of(bare.display().to_string()))
            .unwrap();
        (x, y)
    };
    // Rewrite the registry as a crash would have left it: x finalizing in a dead process, y
    // provisioning in a live one.
    let mut live = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let path = w.base.join("registry.json");
    let mut reg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for ws in reg["workspaces"].as_array_mut().unwrap() {
        if ws["id"] == x.id.as_str() {
            ws["status"] = "finalizing".into();
            ws["owner_pid"] = serde_json::json!(u32::MAX - 7);
        } else if ws["id"] == y.id.as_str() {
            ws["status"] = "provisioning".into();
            ws["owner_pid"] = serde_json::json!(live.id());
        }
    }
    std::fs::write(&path, serde_json::to_vec(&reg).unwrap()).unwrap();
    let svc = w.service(None);
    let rx = svc.get(&x.id).unwrap();
    assert_eq!(rx.status, Status::Ready);
    assert_eq!(rx.last_error.as_deref(), Some("finalize was interrupted"));
    if cfg!(target_os = "linux") {
        assert_eq!(
            svc.get(&y.id).unwrap().status,
            Status::Provisioning,
            "a live owner is left alone"
        );
    }
    let _ = live.kill();
    let _ = live.wait();
}
