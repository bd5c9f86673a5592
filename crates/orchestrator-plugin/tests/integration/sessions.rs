//! The PTY service over real shells without a coordinator: chat notices for finished tasks, and
//! the idle timeout.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchestrator_plugin::services::{ManagedPty, PlainStatus, PtyService, SpawnRequest};
use orchestrator_plugin::settings::PtyServiceConfig;

use crate::fakes::TempDir;

fn wait_for(notes: &Mutex<Vec<String>>, pred: impl Fn(&str) -> bool, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(n) = notes.lock().unwrap().iter().find(|n| pred(n)) {
            return n.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {what}; notes: {:?}",
            notes.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_started_task_reports_completion_and_stops_a_spawned_one_only_reports() {
    let tmp = TempDir::new("sessions-notes");
    let notes = Arc::new(Mutex::new(Vec::new()));
    let n = notes.clone();
    let pty = ManagedPty::start(PtyServiceConfig::default(), move |t| {
        n.lock().unwrap().push(t.to_string())
    })
    .unwrap();
    let started = pty
        .spawn_session(SpawnRequest {
            agent_type: "shell".into(),
            name: Some("scratch/echo".into()),
            workdir: tmp.0.clone(),
            initial_task: Some("echo marker-$((40+2))".into()),
            supervised: true,
            ..SpawnRequest::default()
        })
        .unwrap();
    let note = wait_for(
        &notes,
        |n| n.starts_with("Agent \"scratch/echo\" completed the task."),
        "completion notice",
    );
    assert!(
        note.contains("marker-42"),
        "the turn output is quoted: {note}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while pty.get_session(&started.id).unwrap().status.is_live() {
        assert!(
            Instant::now() < deadline,
            "a finished START task's session is stopped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        pty.get_session(&started.id).unwrap().plain_status(),
        PlainStatus::Completed
    );

    let spawned = pty
        .spawn_session(SpawnRequest {
            agent_type: "shell".into(),
            workdir: tmp.0.clone(),
            initial_task: Some("true".into()),
            ..SpawnRequest::default()
        })
        .unwrap();
    wait_for(
        &notes,
        |n| n == "Coding agent completed the task.",
        "spawn completion notice",
    );
    assert!(
        pty.get_session(&spawned.id).unwrap().status.is_live(),
        "a spawned agent keeps running"
    );
    pty.stop_session(&spawned.id, true).unwrap();
}

#[test]
fn an_idle_session_past_the_timeout_is_stopped_and_reported() {
    let tmp = TempDir::new("sessions-idle");
    let notes = Arc::new(Mutex::new(Vec::new()));
    let n = notes.clone();
    let config = PtyServiceConfig {
        idle_timeout_ms: 1500,
        ..PtyServiceConfig::default()
    };
    let pty = ManagedPty::start(config, move |t| n.lock().unwrap().push(t.to_string())).unwrap();
    let s = pty
        .spawn_session(SpawnRequest {
            agent_type: "shell".into(),
            name: Some("idle-one".into()),
            workdir: tmp.0.clone(),
            ..SpawnRequest::default()
        })
        .unwrap();
    let note = wait_for(
        &notes,
        |n| n.starts_with("[idle-one] Session stopped — idle for"),
        "idle notice",
    );
    assert!(note.ends_with("minutes with no progress."), "{note}");
    assert!(!pty.get_session(&s.id).unwrap().status.is_live());
}

#[test]
fn the_session_limit_is_enforced() {
    let tmp = TempDir::new("sessions-limit");
    let config = PtyServiceConfig {
        max_concurrent_sessions: 1,
        ..PtyServiceConfig::default()
    };
    let pty = ManagedPty::start(config, |_| {}).unwrap();
    let req = || SpawnRequest {
        agent_type: "shell".into(),
        workdir: tmp.0.clone(),
        ..SpawnRequest::default()
    };
    let first = pty.spawn_session(req()).unwrap();
    let err = pty.spawn_session(req()).unwrap_err();
    assert_eq!(err.to_string(), "Concurrent session limit reached (1)");
    pty.stop_session(&first.id, true).unwrap();
    let again = pty.spawn_session(req()).unwrap();
    pty.stop_session(&again.id, true).unwrap();
}

#[test]
fn without_coding_adapters_only_the_shell_starts() {
    let tmp = TempDir::new("no-adapters");
    let config = PtyServiceConfig {
        register_coding_adapters: false,
        ..PtyServiceConfig::default()
    };
    let pty = ManagedPty::start(config, |_| {}).unwrap();
    assert!(pty.installed_agents().is_empty());
    let e = pty
        .spawn_session(SpawnRequest {
            agent_type: "codex".into(),
            workdir: tmp.0.clone(),
            ..SpawnRequest::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("registerCodingAdapters"), "{e}");
    let s = pty
        .spawn_session(SpawnRequest {
            agent_type: "shell".into(),
            workdir: tmp.0.clone(),
            ..SpawnRequest::default()
        })
        .unwrap();
    pty.stop_session(&s.id, true).unwrap();
}

#[test]
fn debug_capture_records_each_sessions_output() {
    let tmp = TempDir::new("capture");
    let root = tmp.0.join("captures");
    let config = PtyServiceConfig {
        debug_capture_dir: Some(root.clone()),
        ..PtyServiceConfig::default()
    };
    let pty = ManagedPty::start(config, |_| {}).unwrap();
    let s = pty
        .spawn_session(SpawnRequest {
            agent_type: "shell".into(),
            workdir: tmp.0.clone(),
            initial_task: Some("echo captured-$((6*7))".into()),
            ..SpawnRequest::default()
        })
        .unwrap();
    let file = root.join(&s.id).join("output.raw");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
        if text.contains("captured-42") {
            break;
        }
        assert!(Instant::now() < deadline, "not captured: {text:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    pty.stop_session(&s.id, true).unwrap();
}
