//! Exit, stop, drop: codes and signals reported, nothing left behind.

use std::time::{Duration, Instant};

use pty_manager::{PtyManager, SessionEvent, SessionStatus, SpawnConfig};

use crate::core_support::*;

fn sh(script: &str) -> SpawnConfig {
    SpawnConfig::new("/bin/sh").args(["-c", script])
}

#[test]
fn exit_code_reported() {
    let mgr = PtyManager::new().unwrap();
    let events = mgr.events();
    let s = mgr.spawn(sh("echo bye; exit 7")).unwrap();
    match wait_stopped(&events, &s.id) {
        SessionEvent::Stopped {
            code,
            signal,
            reason,
            session,
        } => {
            assert_eq!((code, signal), (Some(7), None));
            assert_eq!(reason, "exit code 7");
            assert_eq!(session.status, SessionStatus::Stopped);
        }
        other => panic!("{other:?}"),
    }
    // Output is drained before the exit is reported.
    assert!(mgr.logs(&s.id, 5).unwrap().contains(&"bye".to_owned()));
    assert!(!mgr.has(&s.id));
    assert_eq!(mgr.get(&s.id).unwrap().exit.unwrap().code, Some(7));
}

#[test]
fn exit_signal_reported() {
    let mgr = PtyManager::new().unwrap();
    let events = mgr.events();
    let s = mgr.spawn(sh("kill -TERM $$")).unwrap();
    match wait_stopped(&events, &s.id) {
        SessionEvent::Stopped {
            code,
            signal,
            reason,
            ..
        } => {
            assert_eq!((code, signal), (None, Some(libc::SIGTERM)));
            assert_eq!(reason, "signal SIGTERM");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn events_follow_the_lifecycle() {
    let mgr = PtyManager::new().unwrap();
    let events = mgr.events();
    let s = mgr.spawn(sh("exit 0")).unwrap();
    let mut names = Vec::new();
    loop {
        let ev = events.recv_timeout(TIMEOUT).unwrap();
        if ev.session_id() != s.id {
            continue;
        }
        names.push(ev.name());
        if ev.name() == "session_stopped" {
            break;
        }
    }
    assert_eq!(
        names,
        [
            "session_status_changed",
            "session_started",
            "session_status_changed",
            "session_stopped"
        ]
    );
}

#[test]
fn stop_kills_the_whole_group() {
    let mgr = PtyManager::new().unwrap();
    let s = mgr.spawn(sh("sleep 1000 & sleep 1000")).unwrap();
    let sid = s.pid.unwrap();
    let mut members = Vec::new();
    wait_until("the shell and both sleeps", || {
        members = session_members(sid);
        members.len() >= 3
    });
    let info = mgr.stop(&s.id, Some(Duration::from_secs(2))).unwrap();
    assert_eq!(info.status, SessionStatus::Stopped);
    assert!(info.exit.is_some());
    for pid in members {
        assert!(!alive_in_session(pid, sid), "pid {pid} survived stop");
    }
    assert!(!mgr.has(&s.id));
    assert!(mgr.list(None, None).is_empty());
}

#[test]
fn stop_escalates_to_kill_after_grace() {
    let mgr = PtyManager::new().unwrap();
    // Ignores TERM and HUP: only the SIGKILL after the grace ends it.
    let s = mgr
        .spawn(sh(
            "trap '' TERM HUP; echo armed; while :; do sleep 1; done",
        ))
        .unwrap();
    wait_screen(&mgr, &s.id, "armed");
    let info = mgr.stop(&s.id, Some(Duration::from_millis(300))).unwrap();
    assert_eq!(info.exit.unwrap().signal, Some(libc::SIGKILL));
    assert!(session_members(s.pid.unwrap()).is_empty());
}

#[test]
fn stop_on_exited_session_returns_at_once() {
    let mgr = PtyManager::new().unwrap();
    let events = mgr.events();
    let s = mgr.spawn(sh("exit 3")).unwrap();
    wait_stopped(&events, &s.id);
    let start = Instant::now();
    let info = mgr.stop(&s.id, None).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "stop waited the grace"
    );
    assert_eq!(info.exit.unwrap().code, Some(3));
    assert!(matches!(
        mgr.send(&s.id, "x"),
        Err(pty_manager::Error::SessionNotRunning(_))
    ));
}

#[test]
fn dropping_the_manager_kills_twenty_sessions() {
    let mgr = PtyManager::new().unwrap();
    let mut sessions = Vec::new();
    for i in 0..20 {
        let script = if i % 2 == 0 {
            "sleep 1000 & sleep 1000"
        } else {
            "trap '' TERM HUP; sleep 1000"
        };
        sessions.push(mgr.spawn(sh(script)).unwrap().pid.unwrap());
    }
    let mut members = Vec::new();
    for &sid in &sessions {
        wait_until("session processes", || session_members(sid).len() >= 2);
        members.extend(session_members(sid).into_iter().map(|p| (p, sid)));
    }
    assert_eq!(mgr.list(None, None).len(), 20);
    drop(mgr);
    for (pid, sid) in members {
        assert!(
            !alive_in_session(pid, sid),
            "pid {pid} outlived the manager"
        );
    }
}

#[test]
fn stop_all_and_counts() {
    let mgr = PtyManager::new().unwrap();
    for i in 0..3 {
        mgr.spawn(SpawnConfig::new("cat").id(format!("c{i}")))
            .unwrap();
    }
    let counts = mgr.status_counts();
    assert_eq!(counts.len(), SessionStatus::ALL.len());
    assert_eq!(counts[&SessionStatus::Starting], 3);
    assert_eq!(
        mgr.list(Some(SessionStatus::Starting), Some("shell")).len(),
        3
    );
    assert!(mgr.list(None, Some("claude")).is_empty());
    let stopped = mgr.stop_all(Some(Duration::from_secs(2)));
    assert_eq!(stopped.len(), 3);
    assert_eq!(mgr.status_counts()[&SessionStatus::Stopped], 3);
    assert!(mgr.list(None, None).is_empty());
    mgr.remove("c0").unwrap();
    assert!(mgr.get("c0").is_err());
}

/// A stop from another thread while the session is still being spawned (its id taken, its
/// program starting, not yet handed to the reactor) stops it: it returned the live handle and
/// signalled nothing, leaving the program running.
#[test]
fn a_stop_racing_the_spawn_stops_the_session() {
    use std::sync::Arc;
    let mgr = Arc::new(PtyManager::new().unwrap());
    for i in 0..30 {
        let id = format!("race-{i}");
        let stopper = {
            let (mgr, id) = (mgr.clone(), id.clone());
            std::thread::spawn(move || {
                while !mgr.has(&id) {
                    std::hint::spin_loop();
                }
                mgr.stop(&id, Some(Duration::from_secs(5)))
            })
        };
        let s = mgr
            .spawn(SpawnConfig::new("sleep").args(["100"]).id(&id))
            .unwrap();
        let stopped = stopper.join().unwrap().unwrap();
        assert!(!stopped.status.is_live(), "{i}: {stopped:?}");
        let pid = s.pid.expect("a pid") as i32;
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "{i}: the program still runs");
    }
}
