//! Load measurement (run by hand; it prints numbers and asserts nothing about speed):
//! `cargo test -p pty-console --release --test integration -- --ignored --nocapture load`.
//!
//! 200 shell sessions each print a line every 100 ms while 3 WebSocket clients per session read
//! everything; the process's CPU time over the measured window is reported as cores used.

use std::time::{Duration, Instant};

use tungstenite::Message;

use crate::support::{Harness, has_prompt, ws_connect};

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
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
            readers.push(std::thread::spawn(move || {
                while let Ok(m) = ws.read() {
                    if let Message::Binary(b) = m {
                        received.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    for id in &ids {
        h.console
            .manager()
            .write_raw(
                id,
                b"while :; do echo \"$(date +%T.%N) streaming output line\"; sleep 0.1; done\r",
            )
            .unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    let (c0, t0, r0) = (
        cpu_seconds(),
        Instant::now(),
        received.load(std::sync::atomic::Ordering::Relaxed),
    );
    std::thread::sleep(Duration::from_secs(20));
    let (c1, t1, r1) = (
        cpu_seconds(),
        Instant::now(),
        received.load(std::sync::atomic::Ordering::Relaxed),
    );
    let cores = (c1 - c0) / (t1 - t0).as_secs_f64();
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
