//! Spawns N idle shells without an adapter and prints the manager's RSS per session, to separate
//! the core's memory (PTY, screen, ring, queues) from detection's.
//!
//! ```text
//! cargo run --release -p pty-manager --example idle_sessions [N]
//! ```

use std::time::Duration;

use pty_manager::{PtyManager, SpawnConfig};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let mgr = PtyManager::new().expect("manager");
    let warm = mgr
        .spawn(SpawnConfig::new("/bin/bash").args(["--noprofile", "--norc"]))
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(300));
    let _ = mgr.kill(&warm.id);
    let _ = mgr.remove(&warm.id);
    let before = rss_kb();
    for _ in 0..n {
        mgr.spawn(
            SpawnConfig::new("/bin/bash")
                .args(["--noprofile", "--norc"])
                .env("PS1", "pty> "),
        )
        .expect("spawn");
    }
    // Let every shell print its prompt.
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kb();
    println!(
        "{n} sessions: rss {before} kB -> {after} kB, {:.1} kB per session",
        (after - before) as f64 / n as f64
    );
}
