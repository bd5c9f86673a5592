//! `cargo xtask bench`: runs `pty-bench-driver` (release build) next to a raw baseline reader on
//! the workloads of `../shared/bench/workloads` (and next to the same shells started without the
//! manager for the sessions workload), and prints the ratios against the targets of
//! issues 3 (core: direct mode, sessions) and 4 (detection: busy mode with and without stall
//! detection, prompt latency, CPU per MB from 1 MB to 100 MB).
//!
//! ```text
//! cargo xtask bench [--quick] [--repeats N] [--sessions N] [--idle-secs S] [--no-build]
//! cargo xtask bench --ab DRIVER_A DRIVER_B [--rounds N] [--workload plain|base64|ansi]
//!                   [--mode direct|busy] [--stall on|off] [--quick]
//! ```
//! Throughput runs use the protocol's sizes (256 MB plain, 200 MB of zeros through base64,
//! 100 MB ANSI; about 12 minutes with 5 repeats on 2 cores). `--quick` uses a quarter of them
//! (about 6 minutes); its ratios weigh fixed costs more, such as the Enter delay of a busy-mode
//! `send` (~75 ms), which is ~5% of a quarter-size plain run and ~14% of a quarter-size ANSI
//! run. `--full` is accepted and means the default.
//!
//! `--ab` compares two builds of the driver (say, one built from a worktree at the base commit)
//! on one throughput workload: each round runs the raw reader, then both drivers, in alternating
//! order, since on a shared 2-vCPU machine the run that follows the raw reader is not a neutral
//! place to be. It prints, per driver, the median of the per-round ratios to the raw reader, the
//! ratio of the medians and the median CPU per MB, and the paired CPU-per-MB difference: in
//! repeated rounds CPU per MB was much steadier than throughput.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use serde_json::Value;

struct Options {
    full: bool,
    repeats: usize,
    sessions: usize,
    idle_secs: u64,
    build: bool,
    /// `--ab`: two driver binaries to compare instead of the full bench.
    ab: Option<(PathBuf, PathBuf)>,
    rounds: usize,
    workload: String,
    /// Driver arguments for the mode compared by `--ab`.
    mode: String,
    stall: String,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        full: true,
        repeats: 5,
        sessions: 200,
        idle_secs: 10,
        build: true,
        ab: None,
        rounds: 20,
        workload: "ansi".to_owned(),
        mode: "direct".to_owned(),
        stall: "off".to_owned(),
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
            "--quick" => o.full = false,
            "--no-build" => o.build = false,
            "--repeats" => o.repeats = num("--repeats")?.max(1) as usize,
            "--sessions" => o.sessions = num("--sessions")?.max(1) as usize,
            "--idle-secs" => o.idle_secs = num("--idle-secs")?,
            "--rounds" => o.rounds = num("--rounds")?.max(1) as usize,
            "--ab" => {
                let (Some(a), Some(b)) = (it.next(), it.next()) else {
                    return Err("--ab needs two driver binaries".into());
                };
                o.ab = Some((PathBuf::from(a), PathBuf::from(b)));
            }
            "--workload" | "--mode" | "--stall" => {
                let allowed: &[&str] = match a.as_str() {
                    "--workload" => &WORKLOADS,
                    "--mode" => &["direct", "busy"],
                    _ => &["on", "off"],
                };
                let v = it
                    .next()
                    .filter(|v| allowed.contains(&v.as_str()))
                    .ok_or_else(|| format!("{a} needs one of {}", allowed.join(", ")))?;
                match a.as_str() {
                    "--workload" => o.workload = v.clone(),
                    "--mode" => o.mode = v.clone(),
                    _ => o.stall = v.clone(),
                }
            }
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

/// One manager mode's runs of a workload.
#[derive(Default)]
struct Series {
    speed: Vec<f64>,
    /// Each run's speed over the raw reader run of the same repeat.
    ratio: Vec<f64>,
    cpu: Vec<f64>,
}

impl Series {
    /// The median ratio and, with more than one run, the range.
    fn ratio_text(&self) -> String {
        let m = median(self.ratio.clone());
        let lo = self.ratio.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.ratio.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if self.ratio.len() > 1 {
            format!("{m:.2} ({lo:.2}-{hi:.2})")
        } else {
            format!("{m:.2}")
        }
    }
}

/// A workload's runs: the raw reader and the manager in each mode.
struct Row {
    name: &'static str,
    raw: Vec<f64>,
    raw_cpu: Vec<f64>,
    direct: Series,
    busy_off: Series,
    busy_on: Series,
    rss: f64,
}

impl Row {
    fn new(name: &'static str) -> Self {
        Row {
            name,
            raw: vec![],
            raw_cpu: vec![],
            direct: Series::default(),
            busy_off: Series::default(),
            busy_on: Series::default(),
            rss: 0.0,
        }
    }
}

/// The median; with an even count, the mean of the two middle values (the upper one alone
/// flattered every even-round `--ab` figure a little).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn f(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64().unwrap_or(f64::NAN)
}

/// The shell command that runs `gen.py --mode MODE` for `bytes` bytes.
fn gen_cmd(perf: &Path, py: &str, mode: &str, bytes: u64) -> String {
    let gen_py = perf.join("workloads/gen.py");
    format!("{py} {} --mode {mode} --bytes {bytes}", gen_py.display())
}

/// The throughput workloads, in the order the bench runs them (see [`workload_cmd`]).
const WORKLOADS: [&str; 3] = ["plain", "base64", "ansi"];

/// The shell command of a throughput workload at the protocol's size (a quarter with `--quick`).
fn workload_cmd(o: &Options, perf: &Path, py: &str, name: &str) -> String {
    let scale = if o.full { 1 } else { 4 };
    match name {
        "base64" => format!("head -c {} /dev/zero | base64", 200_000_000 / scale),
        "plain" => gen_cmd(perf, py, "plain", 256_000_000 / scale),
        _ => gen_cmd(perf, py, "ansi", 100_000_000 / scale),
    }
}

/// One driver's runs in an `--ab` comparison, one per round.
#[derive(Default)]
struct AbRuns {
    speed: Vec<f64>,
    cpu: Vec<f64>,
}

/// What `--ab` prints about two drivers' runs, paired by round with the raw reader's speed
/// `raw` of that round.
fn ab_summary(raw: &[f64], a: &AbRuns, b: &AbRuns) -> Vec<String> {
    let mut out = Vec::new();
    let raw_median = median(raw.to_vec());
    for (name, r) in [("A", a), ("B", b)] {
        let ratios = r.speed.iter().zip(raw).map(|(s, w)| s / w).collect();
        out.push(format!(
            "{name}: median of ratios {:.3}, ratio of medians {:.3}, CPU per MB {:.2} ms (median of {} runs)",
            median(ratios),
            median(r.speed.clone()) / raw_median,
            median(r.cpu.clone()),
            r.cpu.len()
        ));
    }
    let diffs: Vec<f64> = a.cpu.iter().zip(&b.cpu).map(|(x, y)| y - x).collect();
    let lower = diffs.iter().filter(|d| **d < 0.0).count();
    out.push(format!(
        "B - A, CPU per MB: median {:+.2} ms; B used less in {lower} of {} rounds",
        median(diffs.clone()),
        diffs.len()
    ));
    out
}

/// `--ab`: two drivers on one workload, alternating which runs first after the raw reader.
fn ab(o: &Options, a: &Path, b: &Path, perf: &Path, py: &str) -> Result<(), String> {
    for bin in [a, b] {
        if !bin.is_file() {
            return Err(format!("{} is not a file", bin.display()));
        }
    }
    let cmd = workload_cmd(o, perf, py, &o.workload);
    let mut args = vec!["throughput", "--mode", o.mode.as_str()];
    if o.mode == "busy" {
        args.extend_from_slice(&["--stall", o.stall.as_str()]);
    }
    args.extend_from_slice(&["--cmd", cmd.as_str()]);
    let (mut raw, mut ra, mut rb) = (Vec::new(), AbRuns::default(), AbRuns::default());
    for round in 0..o.rounds {
        eprintln!("xtask bench: --ab round {} of {}", round + 1, o.rounds);
        let r = driver(a, perf, py, &["raw-throughput", "--cmd", &cmd])?;
        raw.push(f(&r, &["mb_per_s"]));
        let order = if round % 2 == 0 {
            [(a, &mut ra), (b, &mut rb)]
        } else {
            [(b, &mut rb), (a, &mut ra)]
        };
        for (bin, runs) in order {
            let m = driver(bin, perf, py, &args)?;
            runs.speed.push(f(&m, &["mb_per_s"]));
            runs.cpu.push(f(&m, &["cpu_ms_per_mb"]));
        }
    }
    println!(
        "\n--ab: {} {}{}, {} rounds (A = {}, B = {})",
        o.workload,
        o.mode,
        if o.mode == "busy" {
            format!(", stall {}", o.stall)
        } else {
            String::new()
        },
        o.rounds,
        a.display(),
        b.display()
    );
    for line in ab_summary(&raw, &ra, &rb) {
        println!("{line}");
    }
    Ok(())
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
    if let Some((a, b)) = &o.ab {
        return ab(&o, a, b, &perf, &py);
    }
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
    let workloads = WORKLOADS.map(|name| (name, workload_cmd(&o, &perf, &py, name)));
    // Each repeat runs the raw reader and then the manager in every mode, back to back, and each
    // ratio pairs a manager run with the raw run of its own repeat: on a shared 2-core machine the
    // raw reader's speed drifts by tens of percent over minutes, and a ratio of two medians taken
    // minutes apart would carry that drift.
    let mut rows = Vec::new();
    for (name, cmd) in &workloads {
        eprintln!("xtask bench: throughput {name} ({} repeats)", o.repeats);
        let mut row = Row::new(name);
        for _ in 0..o.repeats {
            let r = driver(&bin, &perf, &py, &["raw-throughput", "--cmd", cmd])?;
            let raw = f(&r, &["mb_per_s"]);
            row.raw.push(raw);
            row.raw_cpu.push(f(&r, &["cpu_ms_per_mb"]));
            let runs: [(&[&str], &mut Series); 3] = [
                (&["--mode", "direct"], &mut row.direct),
                (&["--mode", "busy", "--stall", "off"], &mut row.busy_off),
                (&["--mode", "busy", "--stall", "on"], &mut row.busy_on),
            ];
            for (mode, series) in runs {
                let mut a = vec!["throughput"];
                a.extend_from_slice(mode);
                a.extend_from_slice(&["--cmd", cmd]);
                let m = driver(&bin, &perf, &py, &a)?;
                // Direct mode reads exactly the program's output; busy mode's shell session
                // adds its echo and prompts.
                let direct = mode[1] == "direct";
                if direct && m["bytes"] != r["bytes"] {
                    return Err(format!(
                        "{name} {}: byte counts differ (raw {}, manager {})",
                        mode.join(" "),
                        r["bytes"],
                        m["bytes"]
                    ));
                }
                let speed = f(&m, &["mb_per_s"]);
                series.speed.push(speed);
                series.ratio.push(speed / raw);
                series.cpu.push(f(&m, &["cpu_ms_per_mb"]));
                row.rss = row.rss.max(f(&m, &["mgr_peak_rss_kb"]));
            }
        }
        rows.push(row);
    }
    // CPU per MB must not grow with how much a session has produced. The raw reader runs before
    // each manager run as a control: the kernel's own cost per MB moves with the flood's length
    // on this machine (a raw reader measured ~3.4 ms/MB over 10 MB and ~6 over 100 MB), so the
    // manager's part is shown as the median of its per-repeat differences to the raw run.
    let mut flat = Vec::new();
    for mb in [1u64, 10, 100] {
        let cmd = gen_cmd(&perf, &py, "plain", mb * 1_000_000);
        eprintln!("xtask bench: busy --stall on, {mb} MB plain");
        let (mut cpu, mut raw_cpu, mut own) = (vec![], vec![], vec![]);
        for _ in 0..o.repeats {
            let r = driver(&bin, &perf, &py, &["raw-throughput", "--cmd", &cmd])?;
            let raw = f(&r, &["cpu_ms_per_mb"]);
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
            let m = f(&b, &["cpu_ms_per_mb"]);
            cpu.push(m);
            raw_cpu.push(raw);
            own.push(m - raw);
        }
        flat.push((mb, median(cpu), median(raw_cpu), median(own)));
    }
    // A p99 of 20 samples is their slowest, so one hiccup of this machine (a child woken late)
    // decides it; 100 make it the second slowest. `--quick` keeps the protocol's 20.
    let iterations = if o.full { "100" } else { "20" };
    eprintln!("xtask bench: prompt-latency --iterations {iterations}");
    let pl = driver(
        &bin,
        &perf,
        &py,
        &["prompt-latency", "--iterations", iterations],
    )?;
    eprintln!(
        "xtask bench: sessions --n {} --idle-secs {} --settle-ms 100",
        o.sessions, o.idle_secs
    );
    let n = o.sessions.to_string();
    let idle = o.idle_secs.to_string();
    // Its p99 is the third-slowest of 200 spawns (the driver's rank is 0.99 * (n - 1), rounded),
    // so one run says little: the median run (by spawn -> ready p99) is reported, with the range
    // over the runs. Each repeat also starts the same shells without the manager (`raw-sessions`:
    // a plain spawn and a poll loop per shell), before or after the manager's run in turn, so the
    // p99 that bash and this machine give on their own is measured in the same minutes.
    let (mut runs, mut raw_runs) = (Vec::new(), Vec::new());
    let sessions_args = [
        "sessions",
        "--n",
        &n,
        "--idle-secs",
        &idle,
        "--settle-ms",
        "100",
    ];
    let raw_args = ["raw-sessions", "--n", &n, "--settle-ms", "100"];
    for i in 0..o.repeats {
        if i % 2 == 0 {
            raw_runs.push(driver(&bin, &perf, &py, &raw_args)?);
            runs.push(driver(&bin, &perf, &py, &sessions_args)?);
        } else {
            runs.push(driver(&bin, &perf, &py, &sessions_args)?);
            raw_runs.push(driver(&bin, &perf, &py, &raw_args)?);
        }
    }
    let p99 = |v: &Value| f(v, &["spawn_ready_ms", "p99"]);
    let raw_median = |path: &[&str]| median(raw_runs.iter().map(|v| f(v, path)).collect());
    let (raw_p50, raw_p99, raw_prompt_p99) = (
        raw_median(&["spawn_ready_ms", "p50"]),
        raw_median(&["spawn_ready_ms", "p99"]),
        raw_median(&["spawn_prompt_ms", "p99"]),
    );
    // Paired by repeat: the manager's p99 minus the raw shells' p99 of the same repeat.
    let p99_over_raw = median(
        runs.iter()
            .zip(&raw_runs)
            .map(|(m, r)| p99(m) - p99(r))
            .collect(),
    );
    runs.sort_by(|a, b| p99(a).total_cmp(&p99(b)));
    let p99_range = (p99(&runs[0]), p99(&runs[runs.len() - 1]));
    let s = runs.swap_remove(runs.len() / 2);

    println!(
        "\nthroughput (--mode direct, median of {}; {} sizes; a ratio is the median of the runs' ratios to the raw reader run just before them, with their range)",
        o.repeats,
        if o.full { "protocol" } else { "quarter" }
    );
    println!(
        "| workload | raw reader MB/s | manager MB/s | ratio (target >= 0.90) | raw cpu ms/MB | manager cpu ms/MB | manager peak RSS kB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {} | {:.2} | {:.2} | {:.0} |",
            r.name,
            median(r.raw.clone()),
            median(r.direct.speed.clone()),
            r.direct.ratio_text(),
            median(r.raw_cpu.clone()),
            median(r.direct.cpu.clone()),
            r.rss
        );
    }
    println!(
        "\nthroughput --mode busy (shell session, detection on; median of {}, ratios as above)",
        o.repeats
    );
    println!(
        "| workload | raw reader MB/s | busy, stall off MB/s | ratio | busy, stall on MB/s | ratio (target >= 0.90 plain, >= 0.80 ansi) | cpu ms/MB off / on |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {} | {:.1} | {} | {:.2} / {:.2} |",
            r.name,
            median(r.raw.clone()),
            median(r.busy_off.speed.clone()),
            r.busy_off.ratio_text(),
            median(r.busy_on.speed.clone()),
            r.busy_on.ratio_text(),
            median(r.busy_off.cpu.clone()),
            median(r.busy_on.cpu.clone()),
        );
    }
    println!("\nCPU per MB, busy mode with stall detection, plain output (target: flat)");
    println!(
        "| session output | manager cpu ms/MB | raw reader cpu ms/MB (control) | manager - raw (median of per-repeat differences) |"
    );
    println!("|---|---|---|---|");
    for (mb, cpu, raw, own) in &flat {
        println!("| {mb} MB | {cpu:.2} | {raw:.2} | {own:+.2} |");
    }
    println!(
        "\nprompt-latency ({} iterations, 256 KiB burst before each prompt, task-complete settle {} ms)",
        pl["iterations"], pl["ready_settle_ms"]
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
    let p99 = p99(&s);
    println!(
        "\nsessions (n = {}; the median of {} runs by spawn -> ready p99)",
        o.sessions, o.repeats
    );
    println!("| metric | measured | target |");
    println!("|---|---|---|");
    println!("| idle CPU per 10 s | {idle_per_10s:.3} ms | <= 0.5 ms |");
    println!(
        "| idle context switches ({} s, whole process incl. the sleeping main thread) | {} (reactor thread: {} voluntary, {} involuntary) | 1 |",
        o.idle_secs,
        s["idle_ctx_switches"],
        s["idle_reactor_ctx_switches"]["voluntary"],
        s["idle_reactor_ctx_switches"]["involuntary"]
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
        "| spawn -> ready p50 / p99 (settle 100 ms) | {:.1} / {p99:.1} ms (p99 over the runs {:.1}-{:.1}) | p99 <= settle + 6 ms |",
        f(&s, &["spawn_ready_ms", "p50"]),
        p99_range.0,
        p99_range.1
    );
    println!(
        "| the same shells without the manager (raw-sessions): spawn -> ready p50 / p99; -> prompt p99 | {raw_p50:.1} / {raw_p99:.1} ms; {raw_prompt_p99:.1} ms (medians of {} runs) | |",
        raw_runs.len()
    );
    println!("| manager p99 - raw p99, paired by repeat (median) | {p99_over_raw:+.1} ms | |");
    println!(
        "| spawn call (returns once the program runs) p50 / p99 | {:.2} / {:.2} ms | |",
        f(&s, &["spawn_call_ms", "p50"]),
        f(&s, &["spawn_call_ms", "p99"])
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ab_options_are_checked() {
        let o = parse(&args(&[
            "--ab", "a", "b", "--rounds", "6", "--mode", "busy",
        ]))
        .unwrap();
        assert_eq!(o.ab, Some((PathBuf::from("a"), PathBuf::from("b"))));
        assert_eq!(
            (o.rounds, o.mode.as_str(), o.workload.as_str()),
            (6, "busy", "ansi")
        );
        assert!(parse(&args(&["--ab", "a"])).is_err());
        assert!(parse(&args(&["--workload", "video"])).is_err());
        assert!(parse(&args(&["--stall"])).is_err());
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![7.0]), 7.0);
        assert_eq!(median(vec![]), 0.0);
    }

    #[test]
    fn ab_summary_pairs_rounds() {
        let raw = [50.0, 40.0, 60.0];
        // Ratios to the raw reader: 0.8, 1.0, 0.9 for A and 0.9, 1.0, 0.7 for B.
        let a = AbRuns {
            speed: vec![40.0, 40.0, 54.0],
            cpu: vec![9.0, 8.0, 10.0],
        };
        let b = AbRuns {
            speed: vec![45.0, 40.0, 42.0],
            cpu: vec![8.5, 8.5, 9.0],
        };
        let out = ab_summary(&raw, &a, &b);
        assert_eq!(
            out[0],
            "A: median of ratios 0.900, ratio of medians 0.800, CPU per MB 9.00 ms (median of 3 runs)"
        );
        assert!(out[1].starts_with("B: median of ratios 0.900, ratio of medians 0.840"));
        // Differences -0.5, +0.5, -1.0: median -0.5, B lower in 2 of 3.
        assert_eq!(
            out[2],
            "B - A, CPU per MB: median -0.50 ms; B used less in 2 of 3 rounds"
        );
    }
}
