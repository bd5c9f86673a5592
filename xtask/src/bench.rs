//! `cargo xtask bench`: runs `pty-bench-driver` (release build) next to a raw baseline reader on
//! the workloads of `../shared/bench/workloads`, and prints the ratios against the targets of
//! issues 3 (core: direct mode, sessions) and 4 (detection: busy mode with and without stall
//! detection, prompt latency, CPU per MB from 1 MB to 100 MB).
//!
//! ```text
//! cargo xtask bench [--full] [--repeats N] [--sessions N] [--idle-secs S] [--no-build]
//! ```
//! Default byte counts are a quarter of the protocol's so the run takes a few minutes; `--full`
//! uses the protocol's sizes (256 MB plain, 200 MB of zeros through base64, 100 MB ANSI).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use serde_json::Value;

struct Options {
    full: bool,
    repeats: usize,
    sessions: usize,
    idle_secs: u64,
    build: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        full: false,
        repeats: 3,
        sessions: 200,
        idle_secs: 10,
        build: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--full" => o.full = true,
            "--no-build" => o.build = false,
            "--repeats" => o.repeats = num("--repeats")?.max(1) as usize,
            "--sessions" => o.sessions = num("--sessions")?.max(1) as usize,
            "--idle-secs" => o.idle_secs = num("--idle-secs")?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn perf_root(root: &Path) -> Result<PathBuf, String> {
    let p = std::env::var_os("PERF_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/bench"));
    if p.join("workloads/gen.py").is_file() {
        Ok(p.canonicalize().unwrap_or(p))
    } else {
        Err(format!(
            "no workloads/gen.py under {} (set PERF_ROOT)",
            p.display()
        ))
    }
}

fn python() -> String {
    if let Ok(p) = std::env::var("PERF_PYTHON") {
        return p;
    }
    if Path::new("/usr/bin/python3").is_file() {
        "/usr/bin/python3".to_owned()
    } else {
        "python3".to_owned()
    }
}

/// Runs the driver and returns its result line.
fn driver(bin: &Path, perf: &Path, py: &str, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(bin)
        .args(args)
        .env("PERF_ROOT", perf)
        .env("PERF_PYTHON", py)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {:?} failed: {}",
            bin.display(),
            args,
            out.status
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("the driver printed no result")?;
    eprintln!("  {line}");
    serde_json::from_str(line).map_err(|e| format!("bad driver output: {e}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn f(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64().unwrap_or(f64::NAN)
}

pub fn run(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let root = workspace_root();
    let perf = perf_root(&root)?;
    let py = python();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    if o.build {
        eprintln!("xtask bench: cargo build --release -p xtask --bin pty-bench-driver");
        let st = Command::new(&cargo)
            .args([
                "build",
                "--release",
                "-p",
                "xtask",
                "--bin",
                "pty-bench-driver",
            ])
            .current_dir(&root)
            .status()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !st.success() {
            return Err("building the driver failed".into());
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release/pty-bench-driver");
    if !bin.is_file() {
        return Err(format!("{} not found (drop --no-build)", bin.display()));
    }
    let scale = if o.full { 1 } else { 4 };
    let gen_py = perf.join("workloads/gen.py");
    let workloads = [
        (
            "plain",
            format!(
                "{py} {} --mode plain --bytes {}",
                gen_py.display(),
                256_000_000 / scale
            ),
        ),
        (
            "base64",
            format!("head -c {} /dev/zero | base64", 200_000_000 / scale),
        ),
        (
            "ansi",
            format!(
                "{py} {} --mode ansi --bytes {}",
                gen_py.display(),
                100_000_000 / scale
            ),
        ),
    ];
    let mut rows = Vec::new();
    let mut busy_rows = Vec::new();
    for (name, cmd) in &workloads {
        eprintln!("xtask bench: throughput {name} ({} repeats)", o.repeats);
        let (mut raw, mut mgr, mut cpu, mut raw_cpu, mut rss) =
            (vec![], vec![], vec![], vec![], 0.0f64);
        for _ in 0..o.repeats {
            let r = driver(&bin, &perf, &py, &["raw-throughput", "--cmd", cmd])?;
            raw.push(f(&r, &["mb_per_s"]));
            raw_cpu.push(f(&r, &["cpu_ms_per_mb"]));
            let m = driver(
                &bin,
                &perf,
                &py,
                &["throughput", "--mode", "direct", "--cmd", cmd],
            )?;
            if m["bytes"] != r["bytes"] {
                return Err(format!(
                    "{name}: byte counts differ (raw {}, manager {})",
                    r["bytes"], m["bytes"]
                ));
            }
            mgr.push(f(&m, &["mb_per_s"]));
            cpu.push(f(&m, &["cpu_ms_per_mb"]));
            rss = rss.max(f(&m, &["mgr_peak_rss_kb"]));
        }
        // Busy mode: the shell session with detection on, the command sent as a task.
        let (mut off, mut on, mut off_cpu, mut on_cpu) = (vec![], vec![], vec![], vec![]);
        for _ in 0..o.repeats {
            for (stall, speed, cpu) in [
                ("off", &mut off, &mut off_cpu),
                ("on", &mut on, &mut on_cpu),
            ] {
                let b = driver(
                    &bin,
                    &perf,
                    &py,
                    &[
                        "throughput",
                        "--mode",
                        "busy",
                        "--stall",
                        stall,
                        "--cmd",
                        cmd,
                    ],
                )?;
                speed.push(f(&b, &["mb_per_s"]));
                cpu.push(f(&b, &["cpu_ms_per_mb"]));
            }
        }
        busy_rows.push((
            *name,
            median(off),
            median(on),
            median(off_cpu),
            median(on_cpu),
        ));
        rows.push((
            *name,
            median(raw),
            median(mgr),
            median(raw_cpu),
            median(cpu),
            rss,
        ));
    }
    // CPU per MB must not grow with how much a session has produced.
    let mut flat = Vec::new();
    for mb in [1u64, 10, 100] {
        let cmd = format!(
            "{py} {} --mode plain --bytes {}",
            gen_py.display(),
            mb * 1_000_000
        );
        eprintln!("xtask bench: busy --stall on, {mb} MB plain");
        let mut cpu = vec![];
        for _ in 0..o.repeats {
            let b = driver(
                &bin,
                &perf,
                &py,
                &[
                    "throughput",
                    "--mode",
                    "busy",
                    "--stall",
                    "on",
                    "--cmd",
                    &cmd,
                ],
            )?;
            cpu.push(f(&b, &["cpu_ms_per_mb"]));
        }
        flat.push((mb, median(cpu)));
    }
    eprintln!("xtask bench: prompt-latency --iterations 20");
    let pl = driver(&bin, &perf, &py, &["prompt-latency", "--iterations", "20"])?;
    eprintln!(
        "xtask bench: sessions --n {} --idle-secs {} --settle-ms 100",
        o.sessions, o.idle_secs
    );
    let n = o.sessions.to_string();
    let idle = o.idle_secs.to_string();
    let s = driver(
        &bin,
        &perf,
        &py,
        &[
            "sessions",
            "--n",
            &n,
            "--idle-secs",
            &idle,
            "--settle-ms",
            "100",
        ],
    )?;

    println!(
        "\nthroughput (--mode direct, median of {}; {} sizes)",
        o.repeats,
        if o.full { "protocol" } else { "quarter" }
    );
    println!(
        "| workload | raw reader MB/s | manager MB/s | ratio (target >= 0.90) | raw cpu ms/MB | manager cpu ms/MB | manager peak RSS kB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, raw, mgr, raw_cpu, cpu, rss) in &rows {
        println!(
            "| {name} | {raw:.1} | {mgr:.1} | {:.2} | {raw_cpu:.2} | {cpu:.2} | {rss:.0} |",
            mgr / raw
        );
    }
    println!(
        "\nthroughput --mode busy (shell session, detection on; median of {})",
        o.repeats
    );
    println!(
        "| workload | raw reader MB/s | busy, stall off MB/s | ratio | busy, stall on MB/s | ratio (target >= 0.90 plain, >= 0.80 ansi) | cpu ms/MB off / on |"
    );
    println!("|---|---|---|---|---|---|---|");
    for ((name, off, on, off_cpu, on_cpu), (_, raw, ..)) in busy_rows.iter().zip(&rows) {
        println!(
            "| {name} | {raw:.1} | {off:.1} | {:.2} | {on:.1} | {:.2} | {off_cpu:.2} / {on_cpu:.2} |",
            off / raw,
            on / raw
        );
    }
    println!("\nCPU per MB, busy mode with stall detection, plain output (target: flat)");
    println!("| session output | cpu ms/MB |");
    println!("|---|---|");
    for (mb, cpu) in &flat {
        println!("| {mb} MB | {cpu:.2} |");
    }
    println!(
        "\nprompt-latency (20 iterations, 256 KiB burst before each prompt, task-complete settle {} ms)",
        pl["ready_settle_ms"]
    );
    println!("| metric | p50 | p99 | target |");
    println!("|---|---|---|---|");
    for (name, key, target) in [
        (
            "prompt on screen -> answer in the child",
            "response_rtt_ms",
            "p50 <= 1 ms, p99 <= 3 ms",
        ),
        ("prompt on screen -> blocking_prompt event", "detect_ms", ""),
        (
            "child idle -> task_complete event (incl. settle)",
            "ready_ms",
            "settle + small",
        ),
    ] {
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {target} |",
            f(&pl, &[key, "p50"]),
            f(&pl, &[key, "p99"])
        );
    }
    let idle_per_10s = f(&s, &["idle_cpu_ms"]) * 10.0 / o.idle_secs.max(1) as f64;
    let p99 = f(&s, &["spawn_ready_ms", "p99"]);
    println!("\nsessions (n = {})", o.sessions);
    println!("| metric | measured | target |");
    println!("|---|---|---|");
    println!("| idle CPU per 10 s | {idle_per_10s:.3} ms | <= 0.5 ms |");
    println!(
        "| idle context switches ({} s, whole process incl. the sleeping main thread) | {} | 1 |",
        o.idle_secs, s["idle_ctx_switches"]
    );
    println!(
        "| manager RSS per idle session | {:.1} kB | <= 200 kB |",
        f(&s, &["mgr_rss_per_session_kb"])
    );
    println!(
        "| manager baseline RSS (after warm-up) | {:.0} kB | <= 10 MB |",
        f(&s, &["mgr_rss_before_kb"])
    );
    println!(
        "| spawn -> ready p50 / p99 (settle 100 ms) | {:.1} / {p99:.1} ms | p99 <= settle + 6 ms |",
        f(&s, &["spawn_ready_ms", "p50"])
    );
    println!(
        "| spawn -> prompt p50 / p99 | {:.1} / {:.1} ms | |",
        f(&s, &["spawn_prompt_ms", "p50"]),
        f(&s, &["spawn_prompt_ms", "p99"])
    );
    println!(
        "| kill of an idle shell p50 / p99 (returns once reaped) | {:.1} / {:.1} ms | |",
        f(&s, &["kill_ms", "p50"]),
        f(&s, &["kill_ms", "p99"])
    );
    println!("ready is the detection engine's session_ready event (ShellAdapter, settle 100 ms)");
    Ok(())
}
