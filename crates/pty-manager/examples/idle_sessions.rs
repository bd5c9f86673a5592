//! Spawns N idle shells and prints the manager's RSS per session. Without `--shell` the sessions
//! have no adapter (the core's memory: PTY, screen, ring, queues); with `--shell` they share one
//! `ShellAdapter` (the core plus detection), so the difference is detection's cost per session;
//! with `--shell-each` every session gets its own `ShellAdapter`, as the plugin and the console
//! build them.
//!
//! ```text
//! cargo run --release -p pty-manager --example idle_sessions [N] [--shell | --shell-each]
//! ```

use std::sync::Arc;
use std::time::Duration;

use pty_manager::{Adapter, PtyManager, ShellAdapter, SpawnConfig};

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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100);
    let adapter: Option<Arc<dyn Adapter>> = args
        .iter()
        .any(|a| a == "--shell")
        .then(|| Arc::new(ShellAdapter::with_shell("/bin/bash")) as Arc<dyn Adapter>);
    let each = args.iter().any(|a| a == "--shell-each");
    let config = || match &adapter {
        Some(a) => SpawnConfig::with_adapter(a.clone()),
        None if each => SpawnConfig::with_adapter(Arc::new(ShellAdapter::with_shell("/bin/bash"))),
        None => SpawnConfig::new("/bin/bash").args(["--noprofile", "--norc"]),
    };
    let mgr = PtyManager::new().expect("manager");
    let warm = mgr.spawn(config().env("PS1", "pty> ")).expect("spawn");
    std::thread::sleep(Duration::from_millis(300));
    let _ = mgr.kill(&warm.id);
    let _ = mgr.remove(&warm.id);
    let before = rss_kb();
    for _ in 0..n {
        mgr.spawn(config().env("PS1", "pty> ")).expect("spawn");
    }
    // Let every shell print its prompt.
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kb();
    println!(
        "{n} sessions ({}): rss {before} kB -> {after} kB, {:.1} kB per session",
        match (&adapter, each) {
            (Some(_), _) => "one shared shell adapter",
            (None, true) => "a shell adapter per session",
            (None, false) => "no adapter",
        },
        (after - before) as f64 / n as f64
    );
}
