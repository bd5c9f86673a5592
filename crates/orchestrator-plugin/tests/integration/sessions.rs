//! The PTY service over real shells without a coordinator: chat notices for finished tasks, and
//! the idle timeout.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchestrator_plugin::services::{ManagedPty, PlainStatus, PtyService, SpawnRequest};
use orchestrator_plugin::settings::PtyServiceConfig;
use pty_manager::{PtyManager, SessionStatus, ShellAdapter, SpawnConfig};

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
            name: Some("scratch/echo".into()),
            initial_task: Some("echo marker-$((40+2))".into()),
            supervised: true,
            ..request_in("shell", &tmp.0)
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
            initial_task: Some("true".into()),
            ..request_in("shell", &tmp.0)
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
            name: Some("idle-one".into()),
            ..request_in("shell", &tmp.0)
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
    let req = || request_in("shell", &tmp.0);
    let first = pty.spawn_session(req()).unwrap();
    let err = pty.spawn_session(req()).unwrap_err();
    assert_eq!(err.to_string(), "Concurrent session limit reached (1)");
    pty.stop_session(&first.id, true).unwrap();
    let again = pty.spawn_session(req()).unwrap();
    pty.stop_session(&again.id, true).unwrap();
}

/// A fake agent CLI `name` running the shell `body`, in a `bin` directory of `tmp` (returned).
fn fake_agent(tmp: &TempDir, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = tmp.0.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join(name);
    std::fs::write(&script, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// A PTY service limited to `limit` sessions, with a fake `aider` that waits at its prompt:
/// planning and writing an agent's files before its program starts widens the window between
/// the limit check and the session being listed.
fn limited_service(tmp: &TempDir, limit: usize) -> Arc<ManagedPty> {
    let config = PtyServiceConfig {
        max_concurrent_sessions: limit,
        ..PtyServiceConfig::default()
    };
    let bin = fake_agent(tmp, "aider", "printf '> '\nexec cat >/dev/null\n");
    Arc::new(
        ManagedPty::start(config, |_| {})
            .unwrap()
            .with_search_path(bin.display().to_string()),
    )
}

/// Spawns every request at once (threads released together); the results in request order.
fn spawn_together(
    pty: &Arc<ManagedPty>,
    requests: Vec<SpawnRequest>,
) -> Vec<orchestrator_plugin::Result<orchestrator_plugin::services::SessionInfo>> {
    let gate = Arc::new(std::sync::Barrier::new(requests.len()));
    let handles: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let (pty, gate) = (pty.clone(), gate.clone());
            std::thread::spawn(move || {
                gate.wait();
                pty.spawn_session(req)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// A request for `agent_type` in `workdir`, everything else default.
fn request_in(agent_type: &str, workdir: &std::path::Path) -> SpawnRequest {
    SpawnRequest {
        agent_type: agent_type.into(),
        workdir: workdir.to_path_buf(),
        ..SpawnRequest::default()
    }
}

#[test]
fn concurrent_spawns_never_pass_the_session_limit() {
    let tmp = TempDir::new("sessions-limit-race");
    let pty = limited_service(&tmp, 2);
    let results = spawn_together(&pty, (0..8).map(|_| request_in("aider", &tmp.0)).collect());
    let started: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.to_string(), "Concurrent session limit reached (2)");
        }
    }
    let live = pty
        .list_sessions()
        .into_iter()
        .filter(|s| s.status.is_live())
        .count();
    for s in &started {
        pty.stop_session(&s.id, true).unwrap();
    }
    assert_eq!(started.len(), 2, "eight racing spawns under a limit of two");
    assert_eq!(live, 2);
}

/// Two spawns at once under a limit of two both start, every time: a spawn under way is never
/// counted twice (once listed by the manager, once as in flight).
#[test]
fn spawns_within_the_limit_all_start_even_when_concurrent() {
    let tmp = TempDir::new("sessions-limit-pairs");
    let pty = limited_service(&tmp, 2);
    for round in 0..100 {
        // Shells too: with nothing to prepare, a spawn checks the limit while the other one's
        // session is listed but not started yet.
        let mut req = request_in("aider", &tmp.0);
        if round % 2 == 0 {
            req.agent_type = "shell".into();
        }
        let results = spawn_together(&pty, vec![req.clone(), req]);
        for s in results.iter().flatten() {
            pty.stop_session(&s.id, true).unwrap();
        }
        for r in results {
            assert!(r.is_ok(), "round {round}: {}", r.unwrap_err());
        }
    }
}

/// A spawn refused for the session limit leaves its workspace as it was: it is refused before
/// the agent's files and memory file are written, also when it raced another spawn for the
/// last place.
#[test]
fn a_spawn_refused_for_the_limit_writes_nothing() {
    let tmp = TempDir::new("sessions-limit-untouched");
    let pty = limited_service(&tmp, 2);
    let shell = pty.spawn_session(request_in("shell", &tmp.0)).unwrap();
    for round in 0..10 {
        let dirs: Vec<_> = (0..2)
            .map(|k| {
                let d = tmp.0.join(format!("round-{round}-{k}"));
                std::fs::create_dir_all(&d).unwrap();
                d
            })
            .collect();
        let requests = dirs
            .iter()
            .map(|d| SpawnRequest {
                memory_content: Some("Keep the tests green.".into()),
                ..request_in("aider", d)
            })
            .collect();
        let results = spawn_together(&pty, requests);
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: one place left"
        );
        for (r, d) in results.iter().zip(&dirs) {
            match r {
                Ok(s) => {
                    assert!(
                        std::fs::read_dir(d).unwrap().count() > 0,
                        "the started one wrote"
                    );
                    pty.stop_session(&s.id, true).unwrap();
                }
                Err(e) => {
                    assert_eq!(e.to_string(), "Concurrent session limit reached (2)");
                    let left: Vec<_> = std::fs::read_dir(d)
                        .unwrap()
                        .map(|e| e.unwrap().file_name())
                        .collect();
                    assert!(
                        left.is_empty(),
                        "round {round}: the refused spawn wrote {left:?}"
                    );
                }
            }
        }
    }
    pty.stop_session(&shell.id, true).unwrap();
}

#[test]
fn the_idle_watchdog_stops_only_its_own_sessions_and_never_a_login() {
    let tmp = TempDir::new("sessions-idle-owner");
    // A fake `aider` that asks for a login and waits for the answer.
    let bin = fake_agent(
        &tmp,
        "aider",
        "printf 'Login to OpenRouter or create a free account? (Y)es/(N)o [Yes]: '\n\
         exec cat >/dev/null\n",
    );
    let notes = Arc::new(Mutex::new(Vec::new()));
    let n = notes.clone();
    let config = PtyServiceConfig {
        idle_timeout_ms: 1500,
        ..PtyServiceConfig::default()
    };
    let manager = Arc::new(PtyManager::new().unwrap());
    let pty = ManagedPty::with_manager(manager.clone(), config, move |t| {
        n.lock().unwrap().push(t.to_string())
    })
    .unwrap()
    .with_search_path(bin.display().to_string());
    // A shell someone else started on the same manager (the console does this).
    let console = manager
        .spawn(
            SpawnConfig::with_adapter(Arc::new(ShellAdapter::with_shell("/bin/sh")))
                .name("console-shell")
                .cwd(&tmp.0),
        )
        .unwrap();
    let login = pty
        .spawn_session(SpawnRequest {
            name: Some("needs-login".into()),
            ..request_in("aider", &tmp.0)
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while pty.get_session(&login.id).unwrap().status != SessionStatus::Authenticating {
        assert!(
            Instant::now() < deadline,
            "the fake aider never asked for a login"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let own = pty
        .spawn_session(SpawnRequest {
            name: Some("own-idle".into()),
            ..request_in("shell", &tmp.0)
        })
        .unwrap();
    wait_for(
        &notes,
        |n| n.starts_with("[own-idle] Session stopped — idle for"),
        "idle notice for the service's own shell",
    );
    // Both others have been idle longer than the stopped shell; one more watchdog pass.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!pty.get_session(&own.id).unwrap().status.is_live());
    assert!(manager.get(&console.id).unwrap().status.is_live());
    assert_eq!(
        pty.get_session(&login.id).unwrap().status,
        SessionStatus::Authenticating
    );
    assert!(
        !notes
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.contains("console-shell") || n.contains("needs-login")),
        "{:?}",
        notes.lock().unwrap()
    );
    manager.kill(&console.id).unwrap();
    pty.stop_session(&login.id, true).unwrap();
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
    let e = pty.spawn_session(request_in("codex", &tmp.0)).unwrap_err();
    assert!(e.to_string().contains("registerCodingAdapters"), "{e}");
    let s = pty.spawn_session(request_in("shell", &tmp.0)).unwrap();
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
            initial_task: Some("echo captured-$((6*7))".into()),
            ..request_in("shell", &tmp.0)
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

/// A long-running service forgets the sessions that stopped first beyond the ones it keeps:
/// their screens and output would otherwise be held for ever. What counts is when a session
/// stopped: one spawned first that ran longest is kept.
#[test]
fn only_the_sessions_that_stopped_last_are_kept() {
    let tmp = TempDir::new("sessions-keep-stopped");
    let pty = ManagedPty::start(PtyServiceConfig::default(), |_| {})
        .unwrap()
        .keep_stopped(2);
    let shell = || pty.spawn_session(request_in("shell", &tmp.0)).unwrap();
    let long = shell();
    let ids: Vec<String> = (0..4)
        .map(|_| {
            let s = shell();
            pty.stop_session(&s.id, true).unwrap();
            s.id
        })
        .collect();
    pty.stop_session(&long.id, true).unwrap();
    let live = shell();
    // The watcher looks every 5 to 6 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    while pty.get_session(&ids[2]).is_some() {
        assert!(
            Instant::now() < deadline,
            "the first stopped sessions were kept"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed: Vec<String> = pty.list_sessions().into_iter().map(|s| s.id).collect();
    assert_eq!(
        listed,
        vec![long.id.clone(), ids[3].clone(), live.id.clone()]
    );
    for old in &ids[..3] {
        assert!(pty.get_session(old).is_none(), "{old} forgotten");
    }
    assert!(
        pty.get_session(&live.id).unwrap().status.is_live(),
        "a live one is never forgotten"
    );
    pty.stop_session(&live.id, true).unwrap();
}
