//! Helpers shared by the core tests: waiting with generous timeouts, reading /proc.

use pty_manager::QueueReceiver as Receiver;
use std::time::{Duration, Instant};

use pty_manager::{PtyManager, SessionEvent};

/// Generous: CI machines are slow and shared. Tests never assert on speed.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Polls `cond` until it holds or `TIMEOUT` passes.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the session's screen contains `needle`; returns the screen text.
pub fn wait_screen(mgr: &PtyManager, id: &str, needle: &str) -> String {
    let mut text = String::new();
    wait_until(&format!("{needle:?} on screen"), || {
        text = mgr
            .snapshot(id)
            .map(|s| s.lines.join("\n"))
            .unwrap_or_default();
        text.contains(needle)
    });
    text
}

/// Next event matching `pred`.
pub fn wait_event(
    rx: &Receiver<SessionEvent>,
    mut pred: impl FnMut(&SessionEvent) -> bool,
) -> SessionEvent {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = rx.recv_timeout(left).expect("event before the timeout");
        if pred(&ev) {
            return ev;
        }
    }
}

/// The `session_stopped` event of `id`.
pub fn wait_stopped(rx: &Receiver<SessionEvent>, id: &str) -> SessionEvent {
    wait_event(
        rx,
        |e| matches!(e, SessionEvent::Stopped { session, .. } if session.id == id),
    )
}

/// `(pid, session id, state)` of every process.
fn processes() -> Vec<(u32, u32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let state = fields[0].chars().next().unwrap_or('?');
        let sid = fields[3].parse().unwrap_or(0);
        out.push((pid, sid, state));
    }
    out
}

/// Live (non-zombie) processes whose session id is `sid`.
pub fn session_members(sid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|&(_, s, state)| s == sid && state != 'Z')
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Whether `pid` runs (exists and is not a zombie) and is still in session `sid`.
pub fn alive_in_session(pid: u32, sid: u32) -> bool {
    processes()
        .into_iter()
        .any(|(p, s, state)| p == pid && s == sid && state != 'Z')
}

/// A fresh temporary directory under the target dir's tmp (removed by the caller if it likes).
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pty-manager-test-{name}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
