//! What building one session's detection adapter costs: time per build and heap bytes each live
//! session keeps, for every agent, when the rules are compiled for each session (what
//! `AgentManifest::adapter` did before its cache) and when they are shared.
//!
//! `cargo run -p coding-agent-adapters --example adapter_cost [sessions]` (default 200). Each
//! "session" is an adapter held alive that has classified one screen (so the regexes' lazily
//! built match caches are counted too). Bytes are the growth of the resident set divided by the
//! sessions, each way measured in a fresh child process (freed memory stays resident, so one
//! process could not compare them): a coarse but allocator-independent number.

use std::sync::Arc;
use std::time::Instant;

use coding_agent_adapters::{AgentType, AnswerPolicy, ApprovalPreset, Registry};
use pty_manager::{Adapter, DeclarativeAdapter, ScreenSnapshot};

/// Resident bytes of this process (`/proc/self/statm`; 0 where it does not exist).
fn resident() -> isize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<isize>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// A screen every agent's rules read (a finished turn's shape; which rules match is not the point).
fn screen() -> ScreenSnapshot {
    let r = "─".repeat(120);
    ScreenSnapshot::from_text(
        &format!(
            "> Say hello\n\nHello from the fake model.\n\nTokens: 1k sent, 10 received.\n{r}\n❯ \n{r}\n  ? for shortcuts\n"
        ),
        120,
        40,
    )
}

/// Median microseconds of `runs` calls of `f`.
fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Bytes per session kept by `sessions` adapters built by `build`, each after one pass.
fn bytes_per_session(sessions: usize, build: &dyn Fn() -> Arc<DeclarativeAdapter>) -> isize {
    let snap = screen();
    // One session first, so what is built once per process (shared rules) is not counted.
    let first = build();
    first.explain(&snap);
    let before = resident();
    let kept: Vec<Arc<DeclarativeAdapter>> = (0..sessions)
        .map(|_| {
            let a = build();
            a.explain(&snap);
            a
        })
        .collect();
    let per = (resident() - before) / sessions as isize;
    drop(kept);
    drop(first);
    per
}

const WAYS: [&str; 3] = ["compile", "adapter", "shared"];

/// The adapter of `agent` built one of the [`WAYS`].
fn build(registry: &Registry, agent: AgentType, way: &str) -> Arc<DeclarativeAdapter> {
    let m = registry.get(agent);
    let policy = AnswerPolicy::for_preset(ApprovalPreset::Standard);
    match way {
        // Compiled for each session: the manifest rewritten for the policy, then every regex.
        "compile" => Arc::new(
            DeclarativeAdapter::from_manifest(m.detection_manifest(&policy).unwrap()).unwrap(),
        ),
        // The cached adapter's clone (what `Arc::new(manifest.adapter(..))` callers get).
        "adapter" => Arc::new(m.adapter(&policy).unwrap()),
        _ => m.shared_adapter(&policy).unwrap(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let registry = Registry::builtin().expect("manifests");
    // Child: `--bytes <agent> <way> <sessions>` prints the bytes per session.
    if args.first().map(String::as_str) == Some("--bytes") {
        let agent: AgentType = args[1].parse().expect("agent");
        let sessions: usize = args[3].parse().expect("sessions");
        let way = args[2].clone();
        println!(
            "{}",
            bytes_per_session(sessions, &|| build(&registry, agent, &way))
        );
        return;
    }
    let sessions = args.first().cloned().unwrap_or_else(|| "200".to_owned());
    let exe = std::env::current_exe().expect("own path");
    println!(
        "{:<9} {:>11} {:>11} {:>11} | {:>12} {:>12} {:>12}",
        "agent",
        "compile us",
        "adapter us",
        "shared us",
        "compile B/s",
        "adapter B/s",
        "shared B/s"
    );
    for agent in AgentType::ALL {
        let t = WAYS.map(|w| median_us(30, || drop(build(&registry, agent, w))));
        let b = WAYS.map(|w| {
            let out = std::process::Command::new(&exe)
                .args(["--bytes", agent.as_str(), w, &sessions])
                .output()
                .expect("child");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        });
        println!(
            "{:<9} {:>11.0} {:>11.1} {:>11.2} | {:>12} {:>12} {:>12}",
            agent.as_str(),
            t[0],
            t[1],
            t[2],
            b[0],
            b[1],
            b[2]
        );
    }
}
