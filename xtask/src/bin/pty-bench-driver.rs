//! Benchmark driver for `../shared/bench/PROTOCOL.md` (v1), embedding `pty-manager` in-process.
//!
//! ```text
//! pty-bench-driver capabilities
//! pty-bench-driver throughput [--cmd CMD] [--mode direct] [--stall off]
//! pty-bench-driver sessions --n N [--idle-secs 10] [--settle-ms 100]
//! pty-bench-driver raw-throughput [--cmd CMD]     baseline: a plain read loop on a PTY master
//! ```
//!
//! The result is the last stdout line, one JSON object; everything else goes to stderr.
//! `--mode busy`, `--stall on` and `prompt-latency` need the detection engine and are refused
//! (exit 2) until it is wired into the reactor.

use std::io::Read;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use pty_manager::{OutputChunk, PtyManager, SpawnConfig};
use serde_json::{Value, json};

const DRIVER: &str = "rust-pty-manager";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("capabilities") => Ok(json!({
            "driver": DRIVER,
            "impl_version": env!("CARGO_PKG_VERSION"),
            "protocol": 1,
            "workloads": ["throughput", "sessions"],
            "modes": ["direct"],
            "stall": false,
        })),
        Some("throughput") => throughput(&args[1..]),
        Some("raw-throughput") => raw_throughput(&args[1..]),
        Some("sessions") => sessions(&args[1..]),
        Some(other) => Err(format!("unsupported workload: {other}")),
        None => {
            Err("usage: pty-bench-driver capabilities|throughput|sessions|raw-throughput".into())
        }
    };
    match result {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pty-bench-driver: {e}");
            ExitCode::from(2)
        }
    }
}

/// `--name value` from the arguments.
fn opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn opt_num<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match opt(args, name) {
        Some(v) => v.parse().map_err(|_| format!("bad value for {name}: {v}")),
        None => Ok(default),
    }
}

fn python() -> String {
    std::env::var("PERF_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".to_owned())
}

fn perf_root() -> String {
    std::env::var("PERF_ROOT").unwrap_or_else(|_| "../shared/bench".to_owned())
}

fn default_cmd() -> String {
    format!(
        "{} {}/workloads/gen.py --mode plain --bytes 256000000",
        python(),
        perf_root()
    )
}

/// `(user_s, sys_s, voluntary + involuntary context switches)` of this process.
fn rusage() -> (f64, f64, i64) {
    // SAFETY: getrusage fills the zeroed struct we pass; no other memory is touched.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        secs(ru.ru_utime),
        secs(ru.ru_stime),
        ru.ru_nvcsw + ru.ru_nivcsw,
    )
}

/// A `kB` field of `/proc/<pid>/status`.
fn status_kb(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn throughput(args: &[String]) -> Result<Value, String> {
    let mode = opt(args, "--mode").unwrap_or("direct");
    let stall = opt(args, "--stall").unwrap_or("off");
    if mode != "direct" {
        return Err(format!(
            "--mode {mode} needs the detection engine, not wired into the reactor yet"
        ));
    }
    if stall != "off" {
        return Err("--stall on needs the detection engine, not wired into the reactor yet".into());
    }
    let cmd = opt(args, "--cmd")
        .map(str::to_owned)
        .unwrap_or_else(default_cmd);
    let mgr = PtyManager::new().map_err(|e| e.to_string())?;
    let (u0, s0, _) = rusage();
    let start = Instant::now();
    let s = mgr
        .spawn(
            SpawnConfig::new("/bin/sh")
                .args(["-c", &cmd])
                .pass_env("PERF_ROOT")
                .pass_env("PERF_PYTHON"),
        )
        .map_err(|e| e.to_string())?;
    let att = mgr.attach(&s.id).map_err(|e| e.to_string())?;
    let (mut bytes, mut chunks, mut lost) = (0u64, 0u64, 0u64);
    let (mut first, mut last) = (None, start);
    loop {
        match att.output.recv_timeout(Duration::from_secs(600)) {
            Ok(OutputChunk::Data(d)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                bytes += d.len() as u64;
                chunks += 1;
            }
            Ok(OutputChunk::Lagged { dropped_bytes, .. }) => lost += dropped_bytes,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => return Err("no output for 600 s".into()),
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let (u1, s1, _) = rusage();
    let info = mgr.get(&s.id).map_err(|e| e.to_string())?;
    if lost > 0 {
        eprintln!("pty-bench-driver: the consumer lagged; {lost} bytes were dropped");
    }
    let first = first.unwrap_or(start);
    let stream = last.duration_since(first).as_secs_f64();
    let cpu = (u1 - u0) + (s1 - s0);
    Ok(json!({
        "driver": DRIVER, "workload": "throughput", "mode": mode, "stall": false, "cmd": cmd,
        "bytes": bytes, "chunks": chunks, "lost_bytes": lost,
        "exit": info.exit.map(|e| e.reason()),
        "wall_s": wall,
        "mb_per_s": bytes as f64 / 1e6 / wall,
        "stream_mb_per_s": if stream > 0.0 { bytes as f64 / 1e6 / stream } else { 0.0 },
        "first_byte_ms": ms(first.duration_since(start)),
        "mgr_user_s": u1 - u0, "mgr_sys_s": s1 - s0, "mgr_cpu_s": cpu,
        "cpu_ms_per_mb": cpu * 1000.0 / (bytes as f64 / 1e6).max(1e-9),
        "mgr_peak_rss_kb": status_kb("self", "VmHWM:"),
    }))
}

/// The baseline: the same command on a PTY, read by a plain blocking loop, nothing else.
fn raw_throughput(args: &[String]) -> Result<Value, String> {
    let cmd = opt(args, "--cmd")
        .map(str::to_owned)
        .unwrap_or_else(default_cmd);
    let ws = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let (u0, s0, _) = rusage();
    let start = Instant::now();
    let pty = nix::pty::openpty(Some(&ws), None).map_err(|e| format!("openpty: {e}"))?;
    let slave = pty.slave;
    let dup = |fd: &std::os::fd::OwnedFd| fd.try_clone().map_err(|e| e.to_string());
    let mut child = Command::new("/bin/sh")
        .args(["-c", &cmd])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::from(dup(&slave)?))
        .stdout(Stdio::from(dup(&slave)?))
        .stderr(Stdio::from(slave))
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let mut master = std::fs::File::from(pty.master);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut bytes, mut chunks) = (0u64, 0u64);
    let (mut first, mut last) = (None, start);
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                bytes += n as u64;
                chunks += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // EIO: the program's side is closed and everything was read.
            Err(_) => break,
        }
    }
    let _ = child.wait();
    let wall = start.elapsed().as_secs_f64();
    let (u1, s1, _) = rusage();
    let first = first.unwrap_or(start);
    let stream = last.duration_since(first).as_secs_f64();
    let cpu = (u1 - u0) + (s1 - s0);
    Ok(json!({
        "driver": "raw-pty-reader", "workload": "throughput", "mode": "direct", "stall": false,
        "cmd": cmd, "bytes": bytes, "chunks": chunks, "wall_s": wall,
        "mb_per_s": bytes as f64 / 1e6 / wall,
        "stream_mb_per_s": if stream > 0.0 { bytes as f64 / 1e6 / stream } else { 0.0 },
        "first_byte_ms": ms(first.duration_since(start)),
        "mgr_user_s": u1 - u0, "mgr_sys_s": s1 - s0, "mgr_cpu_s": cpu,
        "cpu_ms_per_mb": cpu * 1000.0 / (bytes as f64 / 1e6).max(1e-9),
        "mgr_peak_rss_kb": status_kb("self", "VmHWM:"),
    }))
}

/// `{n,min,p50,p90,p99,max,mean}` of samples in ms.
fn summary(samples: &[f64]) -> Value {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
        v[i.min(v.len() - 1)]
    };
    json!({
        "n": v.len(),
        "min": v.first().copied().unwrap_or(0.0),
        "p50": pct(50.0), "p90": pct(90.0), "p99": pct(99.0),
        "max": v.last().copied().unwrap_or(0.0),
        "mean": if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 },
    })
}

struct Ready {
    call: Duration,
    prompt: Duration,
    ready: Duration,
    pid: u32,
}

/// Spawns the standard shell session and waits until it is ready.
///
/// Until the detection engine is wired into the reactor, readiness is decided here from the
/// screen: the cursor row ends with the prompt `pty> ` and no output arrived for `settle`. The
/// detection engine will replace this with its `session_ready` event.
fn spawn_ready(mgr: &PtyManager, settle: Duration) -> Result<Ready, String> {
    let start = Instant::now();
    let s = mgr
        .spawn(
            SpawnConfig::new("/bin/bash")
                .args(["--noprofile", "--norc"])
                .env("PS1", "pty> "),
        )
        .map_err(|e| e.to_string())?;
    let call = start.elapsed();
    let att = mgr.attach(&s.id).map_err(|e| e.to_string())?;
    let prompt_shown = || {
        mgr.snapshot(&s.id).is_ok_and(|snap| {
            let row = &snap.lines[snap.cursor.0 as usize];
            row.ends_with("pty>") && snap.cursor.1 as usize == row.chars().count() + 1
        })
    };
    let mut prompt = None;
    loop {
        let wait = if prompt.is_some() {
            settle
        } else {
            Duration::from_secs(30)
        };
        match att.output.recv_timeout(wait) {
            Ok(_) => {
                if prompt_shown() {
                    prompt.get_or_insert_with(|| start.elapsed());
                }
            }
            Err(RecvTimeoutError::Timeout) if prompt.is_some() => break,
            Err(_) => return Err(format!("session {} never showed its prompt", s.id)),
        }
    }
    let ready = start.elapsed();
    Ok(Ready {
        call,
        prompt: prompt.unwrap_or(ready),
        ready,
        pid: s.pid.unwrap_or(0),
    })
}

fn sessions(args: &[String]) -> Result<Value, String> {
    let n: usize = opt_num(args, "--n", 200)?;
    let idle_secs: f64 = opt_num(args, "--idle-secs", 10.0)?;
    let settle_ms: u64 = opt_num(args, "--settle-ms", 100)?;
    let settle = Duration::from_millis(settle_ms);
    let mgr = PtyManager::new().map_err(|e| e.to_string())?;
    // Warm-up: one session spawned and killed.
    spawn_ready(&mgr, settle)?;
    for s in mgr.list(None, None) {
        let _ = mgr.kill(&s.id);
    }
    let rss_before = status_kb("self", "VmRSS:");
    let total = Instant::now();
    let (mut call, mut prompt, mut ready, mut pids) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let r = spawn_ready(&mgr, settle)?;
        call.push(ms(r.call));
        prompt.push(ms(r.prompt));
        ready.push(ms(r.ready));
        pids.push(r.pid);
    }
    let spawn_total = total.elapsed().as_secs_f64();
    let rss_after = status_kb("self", "VmRSS:");
    let children_rss: u64 = pids
        .iter()
        .map(|p| status_kb(&p.to_string(), "VmRSS:"))
        .sum();
    let (u0, s0, c0) = rusage();
    std::thread::sleep(Duration::from_secs_f64(idle_secs));
    let (u1, s1, c1) = rusage();
    let idle_cpu_ms = ((u1 - u0) + (s1 - s0)) * 1000.0;
    for s in mgr.list(None, None) {
        let _ = mgr.kill(&s.id);
    }
    Ok(json!({
        "driver": DRIVER, "workload": "sessions", "n": n, "ready_settle_ms": settle_ms,
        "ready_source": "driver (prompt at cursor + quiet for settle-ms)",
        "spawn_ready_ms": summary(&ready),
        "spawn_prompt_ms": summary(&prompt),
        "spawn_call_ms": summary(&call),
        "spawn_total_s": spawn_total,
        "mgr_rss_before_kb": rss_before, "mgr_rss_after_kb": rss_after,
        "mgr_rss_per_session_kb": (rss_after.saturating_sub(rss_before)) as f64 / n.max(1) as f64,
        "helper_rss_kb": 0, "children_rss_kb": children_rss,
        "idle_secs": idle_secs, "idle_cpu_ms": idle_cpu_ms,
        "idle_cpu_pct": idle_cpu_ms / (idle_secs * 1000.0) * 100.0,
        "idle_ctx_switches": c1 - c0,
    }))
}
