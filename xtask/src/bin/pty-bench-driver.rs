//! Benchmark driver for `../shared/bench/PROTOCOL.md` (v1), embedding `pty-manager` in-process.
//!
//! ```text
//! pty-bench-driver capabilities
//! pty-bench-driver throughput [--cmd CMD] [--mode direct|busy] [--stall on|off]
//! pty-bench-driver sessions --n N [--idle-secs 10] [--settle-ms 100]
//! pty-bench-driver prompt-latency [--iterations 20] [--burst-bytes 262144] [--ready-settle-ms 1500]
//! pty-bench-driver raw-throughput [--cmd CMD]     baseline: a plain read loop on a PTY master
//! pty-bench-driver raw-sessions --n N [--settle-ms 100]   baseline: the same shells started and
//!                                                         watched by hand, one poll loop each
//! ```
//!
//! The result is the last stdout line, one JSON object; everything else goes to stderr.
//! `--mode busy` runs the standard shell session (`ShellAdapter`, detection on) and sends
//! `exec /bin/sh -c 'CMD'` as a task; `--stall on` enables stall detection (8 s, no classifier).

use std::io::Read;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use std::sync::Arc;

use pty_manager::{
    DeclarativeAdapter, DetectionOptions, OutputChunk, PtyManager, QueueReceiver, SessionEvent,
    ShellAdapter, SpawnConfig, StallConfig,
};
use serde_json::{Value, json};

const DRIVER: &str = "rust-pty-manager";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("capabilities") => Ok(json!({
            "driver": DRIVER,
            "impl_version": env!("CARGO_PKG_VERSION"),
            "protocol": 1,
            "workloads": ["throughput", "sessions", "prompt-latency"],
            "modes": ["direct", "busy"],
            "stall": true,
        })),
        Some("throughput") => throughput(&args[1..]),
        Some("raw-throughput") => raw_throughput(&args[1..]),
        Some("raw-sessions") => raw_sessions(&args[1..]),
        Some("sessions") => sessions(&args[1..]),
        Some("prompt-latency") => prompt_latency(&args[1..]),
        Some(other) => Err(format!("unsupported workload: {other}")),
        None => {
            Err("usage: pty-bench-driver capabilities|throughput|sessions|prompt-latency|raw-throughput|raw-sessions".into())
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

/// A numeric field of `/proc/<pid>/status` (`kB` for the memory ones); `pid` may be a path
/// below `/proc` such as `self/task/<tid>`.
fn status_kb(pid: &str, field: &str) -> u64 {
    proc_field(&format!("{pid}/status"), field)
}

/// A numeric `name: value` field of a file below `/proc`, 0 when absent.
fn proc_field(file: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{file}"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Context switches of a thread (`self` is the main one, `self/task/<tid>` any): voluntary,
/// involuntary.
fn switches(task: &str) -> (u64, u64) {
    (
        status_kb(task, "voluntary_ctxt_switches:"),
        status_kb(task, "nonvoluntary_ctxt_switches:"),
    )
}

/// Context switches of the manager's reactor thread (`pty-reactor`): voluntary, involuntary.
fn reactor_switches() -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    for t in tasks.flatten() {
        let task = format!("self/task/{}", t.file_name().to_string_lossy());
        let comm = std::fs::read_to_string(format!("/proc/{task}/comm")).unwrap_or_default();
        if comm.trim() == "pty-reactor" {
            return switches(&task);
        }
    }
    (0, 0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn throughput(args: &[String]) -> Result<Value, String> {
    let mode = opt(args, "--mode").unwrap_or("direct");
    let stall = match opt(args, "--stall").unwrap_or("off") {
        "on" => true,
        "off" => false,
        other => return Err(format!("--stall takes on|off, not {other}")),
    };
    let cmd = opt(args, "--cmd")
        .map(str::to_owned)
        .unwrap_or_else(default_cmd);
    let mgr = PtyManager::new().map_err(|e| e.to_string())?;
    let options = DetectionOptions {
        stall: if stall {
            StallConfig::on()
        } else {
            StallConfig::default()
        },
        ..Default::default()
    };
    let (u0, s0, start, s, att) = match mode {
        "direct" => {
            let mut cfg = SpawnConfig::new("/bin/sh")
                .args(["-c", &cmd])
                .pass_env("PERF_ROOT")
                .pass_env("PERF_PYTHON");
            if stall {
                // Detection on the direct session too (the shell's rules; stall detection arms
                // only once a turn is busy, which a direct session never is).
                cfg.adapter = Some(Arc::new(ShellAdapter::with_shell("/bin/sh")));
                cfg.detection = options;
            }
            let (u0, s0, _) = rusage();
            let start = Instant::now();
            // Subscribed before the program starts: every byte is counted.
            let (s, att) = mgr.spawn_attached(cfg).map_err(|e| e.to_string())?;
            (u0, s0, start, s, att)
        }
        "busy" => {
            let events = mgr.events();
            let s = mgr
                .spawn(
                    shell_config()
                        .pass_env("PERF_ROOT")
                        .pass_env("PERF_PYTHON")
                        .detection(options),
                )
                .map_err(|e| e.to_string())?;
            wait_for(&events, &s.id, "session_ready", Duration::from_secs(30))?;
            drop(events);
            let att = mgr.attach(&s.id).map_err(|e| e.to_string())?;
            let (u0, s0, _) = rusage();
            let start = Instant::now();
            let task = format!("exec /bin/sh -c '{}'", cmd.replace('\'', "'\\''"));
            mgr.send(&s.id, &task).map_err(|e| e.to_string())?;
            (u0, s0, start, s, att)
        }
        other => return Err(format!("--mode takes direct|busy, not {other}")),
    };
    // Read calls and the reactor's context switches say how the reads were batched: a run
    // whose reader keeps up with the kernel reads less per call and sleeps more often.
    // The switches first: finding the reactor's task reads /proc, which `syscr` would count.
    let sw0 = reactor_switches();
    let reads0 = proc_field("self/io", "syscr:");
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
    let (reads1, sw1) = (proc_field("self/io", "syscr:"), reactor_switches());
    let info = mgr.get(&s.id).map_err(|e| e.to_string())?;
    if lost > 0 {
        eprintln!("pty-bench-driver: the consumer lagged; {lost} bytes were dropped");
    }
    let first = first.unwrap_or(start);
    let stream = last.duration_since(first).as_secs_f64();
    let cpu = (u1 - u0) + (s1 - s0);
    Ok(json!({
        "driver": DRIVER, "workload": "throughput", "mode": mode, "stall": stall, "cmd": cmd,
        "bytes": bytes, "chunks": chunks, "lost_bytes": lost,
        "read_calls": reads1 - reads0,
        "reader_ctx_switches": {"voluntary": sw1.0 - sw0.0, "involuntary": sw1.1 - sw0.1},
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
    let sw0 = switches("self");
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
    let sw1 = switches("self");
    let _ = child.wait();
    let wall = start.elapsed().as_secs_f64();
    let (u1, s1, _) = rusage();
    let first = first.unwrap_or(start);
    let stream = last.duration_since(first).as_secs_f64();
    let cpu = (u1 - u0) + (s1 - s0);
    Ok(json!({
        "driver": "raw-pty-reader", "workload": "throughput", "mode": "direct", "stall": false,
        "cmd": cmd, "bytes": bytes, "chunks": chunks, "wall_s": wall,
        "read_calls": chunks,
        "reader_ctx_switches": {"voluntary": sw1.0 - sw0.0, "involuntary": sw1.1 - sw0.1},
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

/// The standard shell session: bash with `PS1='pty> '`, read by the built-in `ShellAdapter`.
fn shell_config() -> SpawnConfig {
    SpawnConfig::with_adapter(Arc::new(ShellAdapter::with_shell("/bin/bash")))
}

/// Waits for the event `name` of session `id`; returns when it arrived.
fn wait_for(
    events: &QueueReceiver<SessionEvent>,
    id: &str,
    name: &str,
    limit: Duration,
) -> Result<Instant, String> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(e) if e.session_id() == id && e.name() == name => return Ok(Instant::now()),
            Ok(_) => {}
            Err(_) => return Err(format!("session {id}: no {name} within {limit:?}")),
        }
    }
}

/// Spawns the standard shell session and waits for its `session_ready` event (the detection
/// engine: the cursor row is the prompt `pty> ` and the screen held for `settle`).
///
/// The prompt time is exact to the driver thread's wake-up: the session's output is attached right
/// after `spawn` returns (the child has exec'd then, and bash takes milliseconds more to print
/// anything, so the prompt is normally still ahead) and the screen is checked after every chunk.
/// A prompt already on the initial screen counts at the time of the attach.
fn spawn_ready(mgr: &PtyManager, settle: Duration) -> Result<Ready, String> {
    let events = mgr.events();
    let start = Instant::now();
    let s = mgr
        .spawn(shell_config().detection(DetectionOptions {
            ready_settle_ms: Some(settle.as_millis() as u64),
            ..Default::default()
        }))
        .map_err(|e| e.to_string())?;
    let call = start.elapsed();
    let deadline = start + Duration::from_secs(30);
    let at_prompt = || {
        mgr.snapshot(&s.id)
            .is_ok_and(|snap| snap.lines[snap.cursor.0 as usize] == "pty>" && snap.cursor.1 == 5)
    };
    let att = mgr.attach(&s.id).map_err(|e| e.to_string())?;
    while !at_prompt() {
        let left = deadline.saturating_duration_since(Instant::now());
        match att.output.recv_timeout(left) {
            Ok(_) => {}
            Err(_) => return Err(format!("session {} never showed its prompt", s.id)),
        }
    }
    let prompt = start.elapsed();
    drop(att);
    wait_for(&events, &s.id, "session_ready", deadline - Instant::now())?;
    let ready = start.elapsed();
    Ok(Ready {
        call,
        prompt,
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
    let mut prompt_ready = vec![];
    for _ in 0..n {
        let r = spawn_ready(&mgr, settle)?;
        call.push(ms(r.call));
        prompt.push(ms(r.prompt));
        ready.push(ms(r.ready));
        prompt_ready.push(ms(r.ready - r.prompt));
        pids.push(r.pid);
    }
    let spawn_total = total.elapsed().as_secs_f64();
    let rss_after = status_kb("self", "VmRSS:");
    let children_rss: u64 = pids
        .iter()
        .map(|p| status_kb(&p.to_string(), "VmRSS:"))
        .sum();
    // Read outside the CPU window: reading /proc costs the main thread CPU time.
    let r0 = reactor_switches();
    let (u0, s0, c0) = rusage();
    std::thread::sleep(Duration::from_secs_f64(idle_secs));
    let (u1, s1, c1) = rusage();
    let r1 = reactor_switches();
    let idle_cpu_ms = ((u1 - u0) + (s1 - s0)) * 1000.0;
    // Stop latency: `kill` returns once the session is reaped.
    let mut kill = Vec::new();
    for s in mgr.list(None, None) {
        let t = Instant::now();
        let _ = mgr.kill(&s.id);
        kill.push(ms(t.elapsed()));
    }
    Ok(json!({
        "driver": DRIVER, "workload": "sessions", "n": n, "ready_settle_ms": settle_ms,
        "ready_source": "session_ready event (detection engine, ShellAdapter)",
        "spawn_ready_ms": summary(&ready),
        "spawn_prompt_ms": summary(&prompt),
        "spawn_call_ms": summary(&call),
        "prompt_ready_ms": summary(&prompt_ready),
        "spawn_total_s": spawn_total,
        "mgr_rss_before_kb": rss_before, "mgr_rss_after_kb": rss_after,
        "mgr_rss_per_session_kb": (rss_after.saturating_sub(rss_before)) as f64 / n.max(1) as f64,
        "helper_rss_kb": 0, "children_rss_kb": children_rss,
        "idle_secs": idle_secs, "idle_cpu_ms": idle_cpu_ms,
        "idle_cpu_pct": idle_cpu_ms / (idle_secs * 1000.0) * 100.0,
        "idle_ctx_switches": c1 - c0,
        // The reactor thread alone (voluntary = it slept and was woken; involuntary =
        // preempted), so a stray switch of the sleeping main thread can be told apart.
        "idle_reactor_ctx_switches": {"voluntary": r1.0 - r0.0, "involuntary": r1.1 - r0.1},
        "kill_ms": summary(&kill),
    }))
}

/// One shell of the raw spawn baseline: started, its prompt seen, then quiet for `settle`.
struct RawShell {
    child: std::process::Child,
    _master: std::fs::File,
    call: Duration,
    prompt: Duration,
    ready: Duration,
}

/// Starts the standard shell without the manager: `openpty`, then `std::process::Command` with a
/// `pre_exec` that makes the pty its controlling terminal, and a `poll` + `read` loop on the
/// master until the output ends with the prompt and nothing more arrives for `settle`
/// (PROTOCOL.md's definition of ready). The environment is the one the manager gives a shell
/// session here (its allow-list of this process's variables, the shell adapter's, the terminal's).
fn raw_shell(settle: Duration) -> Result<RawShell, String> {
    use std::os::fd::AsFd;
    use std::os::unix::process::CommandExt;
    let ws = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let start = Instant::now();
    let pty = nix::pty::openpty(Some(&ws), None).map_err(|e| format!("openpty: {e}"))?;
    // Close-on-exec, as the manager opens them: no shell inherits the earlier shells' masters.
    for fd in [&pty.master, &pty.slave] {
        use std::os::fd::AsRawFd;
        // SAFETY: F_SETFD on a descriptor this function owns.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
            return Err(format!("fcntl: {}", std::io::Error::last_os_error()));
        }
    }
    let slave = pty.slave;
    let dup = |fd: &std::os::fd::OwnedFd| fd.try_clone().map_err(|e| e.to_string());
    let mut cmd = Command::new("/bin/bash");
    cmd.args(["--noprofile", "--norc"])
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| {
            k.to_str()
                .is_some_and(|k| pty_manager::PASS_THROUGH_ENV.contains(&k))
        }))
        .envs([
            ("PS1", "pty> "),
            ("PS2", "pty+ "),
            ("HISTFILE", ""),
            ("TERM", "xterm-256color"),
            ("COLORTERM", "truecolor"),
        ])
        .stdin(Stdio::from(dup(&slave)?))
        .stdout(Stdio::from(dup(&slave)?))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("spawn bash: {e}"))?;
    let call = start.elapsed();
    // Our copies of the slave: once closed, a shell that dies ends the reads at once.
    drop(cmd);
    let mut master = std::fs::File::from(pty.master);
    let (mut tail, mut buf) = (Vec::<u8>::new(), [0u8; 4096]);
    let (mut prompt, mut quiet_since) = (None::<Duration>, None::<Instant>);
    let limit = start + Duration::from_secs(30);
    loop {
        let now = Instant::now();
        if now >= limit {
            return Err("a raw shell never became ready".into());
        }
        // Waiting for the prompt: until the limit; at the prompt: until the settle ends.
        let until = quiet_since.map_or(limit, |q| (q + settle).min(limit));
        let wait = until.saturating_duration_since(now);
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = nix::poll::PollTimeout::try_from(wait.as_millis().max(1) as i32)
            .map_err(|e| e.to_string())?;
        let n = match nix::poll::poll(&mut fds, ms) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        };
        if n == 0 {
            if quiet_since.is_some() && Instant::now() >= until {
                break;
            }
            continue;
        }
        let k = master.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if k == 0 {
            return Err("a raw shell closed its terminal".into());
        }
        tail.extend_from_slice(&buf[..k]);
        let cut = tail.len().saturating_sub(16);
        tail.drain(..cut);
        if tail.ends_with(b"pty> ") {
            prompt.get_or_insert_with(|| start.elapsed());
            quiet_since = Some(Instant::now());
        } else {
            quiet_since = None;
        }
    }
    Ok(RawShell {
        child,
        _master: master,
        call,
        prompt: prompt.unwrap_or_default(),
        ready: start.elapsed(),
    })
}

/// The baseline for `sessions`: the same N shells, spawned one after another and each waited for
/// until ready, by [`raw_shell`] instead of the manager. The shells stay open until the end, as
/// the manager's do.
fn raw_sessions(args: &[String]) -> Result<Value, String> {
    let n: usize = opt_num(args, "--n", 200)?;
    let settle_ms: u64 = opt_num(args, "--settle-ms", 100)?;
    let settle = Duration::from_millis(settle_ms);
    let kill = |mut s: RawShell| {
        // The shell leads its own process group.
        unsafe { libc::kill(-(s.child.id() as i32), libc::SIGKILL) };
        let _ = s.child.wait();
    };
    kill(raw_shell(settle)?);
    let mut shells = Vec::with_capacity(n);
    let (mut call, mut prompt, mut ready) = (vec![], vec![], vec![]);
    let mut failure = None;
    for _ in 0..n {
        match raw_shell(settle) {
            Ok(s) => {
                call.push(ms(s.call));
                prompt.push(ms(s.prompt));
                ready.push(ms(s.ready));
                shells.push(s);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    shells.into_iter().for_each(kill);
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(json!({
        "driver": "raw-pty-spawn", "workload": "sessions", "n": n, "ready_settle_ms": settle_ms,
        "ready_source": "prompt at the end of the output, then quiet for the settle (poll loop)",
        "spawn_ready_ms": summary(&ready),
        "spawn_prompt_ms": summary(&prompt),
        "spawn_call_ms": summary(&call),
    }))
}

/// CLOCK_MONOTONIC in ns, the clock the workload children use.
fn mono_ns() -> i64 {
    // SAFETY: clock_gettime writes the timespec we pass and nothing else.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts
    };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// The agent-like child of PROTOCOL.md: ready at `READY> `, one auto-response rule.
fn prompt_adapter(settle_ms: u64) -> Result<DeclarativeAdapter, String> {
    let yaml = format!(
        r#"
schema: 1
type: prompt-child
command: {py}
args: ['{root}/workloads/prompt_child.py']
input_style: text
ready_settle_ms: 100
task_complete_settle_ms: {settle_ms}
rules:
  - {{ id: bench.ready, signal: ready, region: cursor_row, pattern: '^READY>$' }}
  - id: bench.proceed
    signal: prompt
    region: cursor_row
    type: permission
    pattern: 'Do you want to proceed\? \[y/N\]'
    response: {{ text: "y" }}
    safe: true
"#,
        py = python(),
        root = perf_root(),
    );
    DeclarativeAdapter::from_yaml(&yaml).map_err(|e| e.to_string())
}

fn prompt_latency(args: &[String]) -> Result<Value, String> {
    let iterations: usize = opt_num(args, "--iterations", 20)?;
    let burst: u64 = opt_num(args, "--burst-bytes", 262_144)?;
    let settle_ms: u64 = opt_num(args, "--ready-settle-ms", 1500)?;
    let log = std::env::temp_dir().join(format!("pty-bench-prompt-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let mgr = PtyManager::new().map_err(|e| e.to_string())?;
    let events = mgr.events();
    let start = Instant::now();
    let s = mgr
        .spawn(
            SpawnConfig::with_adapter(Arc::new(prompt_adapter(settle_ms)?))
                .env("PERF_CHILD_LOG", log.to_string_lossy())
                .env("PERF_BURST_BYTES", burst.to_string()),
        )
        .map_err(|e| e.to_string())?;
    wait_for(&events, &s.id, "session_ready", Duration::from_secs(30))?;
    let startup_ready_ms = ms(start.elapsed());
    let (u0, s0, _) = rusage();
    let loop_start = Instant::now();
    let (mut detect_ns, mut ready_evt_ns) = (Vec::new(), Vec::new());
    for _ in 0..iterations {
        mgr.send(&s.id, "go").map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut detected, mut done) = (None, None);
        while done.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = events
                .recv_timeout(left)
                .map_err(|_| "no task_complete within 60 s".to_owned())?;
            if e.session_id() != s.id {
                continue;
            }
            match &e {
                SessionEvent::BlockingPrompt {
                    auto_responded: true,
                    ..
                } if detected.is_none() => detected = Some(mono_ns()),
                SessionEvent::BlockingPrompt {
                    auto_responded: false,
                    info,
                    ..
                } => {
                    return Err(format!(
                        "prompt reported but not answered: {:?}",
                        info.prompt
                    ));
                }
                SessionEvent::TaskComplete { .. } => done = Some(mono_ns()),
                _ => {}
            }
        }
        detect_ns.push(detected.ok_or("the prompt was never answered")?);
        ready_evt_ns.push(done.unwrap_or(0));
    }
    let loop_wall = loop_start.elapsed().as_secs_f64();
    let (u1, s1, _) = rusage();
    let _ = mgr.send(&s.id, "quit");
    let _ = wait_for(&events, &s.id, "session_stopped", Duration::from_secs(10));
    let text =
        std::fs::read_to_string(&log).map_err(|e| format!("reading {}: {e}", log.display()))?;
    let _ = std::fs::remove_file(&log);
    let rows: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let (mut detect, mut rtt, mut ready) = (vec![], vec![], vec![]);
    for (i, r) in rows.iter().enumerate().take(iterations) {
        let get = |k: &str| r[k].as_i64().unwrap_or(0);
        let t_prompt = get("t_prompt");
        detect.push((detect_ns[i] - t_prompt) as f64 / 1e6);
        rtt.push((get("t_recv") - t_prompt) as f64 / 1e6);
        ready.push((ready_evt_ns[i] - get("t_ready")) as f64 / 1e6);
    }
    Ok(json!({
        "driver": DRIVER, "workload": "prompt-latency", "iterations": iterations,
        "completed": rows.len().min(iterations), "burst_bytes": burst,
        "detect_ms": summary(&detect),
        "response_rtt_ms": summary(&rtt),
        "ready_ms": summary(&ready),
        "ready_settle_ms": settle_ms,
        "startup_ready_ms": startup_ready_ms,
        "loop_wall_s": loop_wall,
        "mgr_cpu_s": (u1 - u0) + (s1 - s0),
        "mgr_peak_rss_kb": status_kb("self", "VmHWM:"),
    }))
}
