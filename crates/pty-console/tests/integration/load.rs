//! Load measurement (run by hand; it prints numbers and asserts nothing about speed):
//! `cargo test -p pty-console --release --test integration -- --ignored --nocapture load`.
//!
//! 200 shell sessions each print a line every 100 ms while 3 WebSocket clients per session read
//! everything; the process's CPU time over the measured window is reported as cores used.

use std::time::{Duration, Instant};

use tungstenite::Message;

use crate::support::{Harness, has_prompt, ws_connect};

/// CPU seconds (user + system) per thread name, over every thread of this process.
fn cpu_by_thread() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = task.path();
        let (Ok(stat), Ok(comm)) = (
            std::fs::read_to_string(path.join("stat")),
            std::fs::read_to_string(path.join("comm")),
        ) else {
            continue;
        };
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        // Thread names are cut to 15 bytes; group the numbered ones.
        let name = comm
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_owned();
        *out.entry(name).or_insert(0.0) += ticks / 100.0;
    }
    out
}

/// Whole-process CPU seconds, including threads that already ended.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

#[test]
#[ignore = "measurement; run by hand with --ignored --nocapture"]
fn load_200_sessions_3_clients_each() {
    let sessions: usize = std::env::var("LOAD_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let clients = 3;
    let h = Harness::start("load");
    let ids: Vec<String> = (0..sessions)
        .map(|i| h.shell(&format!("load-{i}")))
        .collect();
    for id in &ids {
        h.wait_screen(id, "a prompt", has_prompt);
    }
    let token = h.token();
    let addr = h.server.ws_addr();
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut readers = Vec::new();
    for id in &ids {
        for _ in 0..clients {
            let mut ws = ws_connect(addr, &format!("session={id}&token={token}"), &[]).unwrap();
            let received = received.clone();
            let reader = std::thread::Builder::new().name("load-client".into());
            readers.push(
                reader
                    .spawn(move || {
                        while let Ok(m) = ws.read() {
                            if let Message::Binary(b) = m {
                                received.fetch_add(
                                    b.len() as u64,
                                    std::sync::atomic::Ordering::Relaxed,
                                );
                            }
                        }
                    })
                    .unwrap(),
            );
        }
    }
    for id in &ids {
        // Builtins only (no fork per line): a numbered line every 100 ms.
        h.console
            .manager()
            .write_raw(
                id,
                b"i=0; while :; do echo \"streaming output line $i of the load test\"; i=$((i+1)); read -t 0.1 -s x; done\r",
            )
            .unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    let (c0, t0, r0) = (
        cpu_seconds(),
        Instant::now(),
        received.load(std::sync::atomic::Ordering::Relaxed),
    );
    let by0 = cpu_by_thread();
    std::thread::sleep(Duration::from_secs(20));
    let (c1, t1, r1) = (
        cpu_seconds(),
        Instant::now(),
        received.load(std::sync::atomic::Ordering::Relaxed),
    );
    let secs = (t1 - t0).as_secs_f64();
    let by1 = cpu_by_thread();
    for (name, v1) in &by1 {
        let v0 = by0.get(name).copied().unwrap_or(0.0);
        println!(
            "load: thread group {name:<16} {:.3} cores",
            (v1 - v0) / secs
        );
    }
    let cores = (c1 - c0) / secs;
    let mib_s = (r1 - r0) as f64 / (t1 - t0).as_secs_f64() / (1024.0 * 1024.0);
    println!(
        "load: {sessions} sessions x {clients} websocket clients: {cores:.3} cores \
         (manager + console + server + the test's own readers), {mib_s:.2} MiB/s delivered"
    );
    h.console
        .manager()
        .stop_all(Some(Duration::from_millis(500)));
    drop(readers);
}
