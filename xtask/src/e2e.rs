//! `cargo xtask e2e [--agent NAME]...`: every pinned agent CLI runs a real turn offline.
//!
//! Per agent, in a fresh temporary HOME and TMPDIR: a bare remote seeded with `main`, the fake
//! model server and the fake GitHub (both on loopback); the workspace service provisions a clone
//! and a worktree of it; the agent runs in a PTY through `pty-manager` with the adapter's
//! detection rules and its offline configuration (AGENTS-OFFLINE.md); the harness waits for
//! `ready`, sends the task, answers the permission prompt the way a user does under the `standard`
//! preset (the preset asks for file writes), waits for `task_complete`, checks the file, finalizes
//! (commit, push to the bare remote, pull request on the fake GitHub), stops the session and
//! checks that no process of it survives and no file is left behind. A fresh unseeded HOME then
//! shows the login state, and one without the trust entry the trust dialog.
//!
//! Every step reports `ok`, `FAIL`, `n/a` (the agent has no such screen) or `not run: <reason>`.
//! The task exits non-zero unless every step of every agent is `ok` or `n/a`: an agent that is not
//! installed is reported as skipped, never as passed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coding_agent_adapters::{AgentType, AnswerPolicy, ApprovalPreset, Registry};
use git_workspace_service::forge::GitHubConfig;
use git_workspace_service::{
    FinalizeRequest, GitConfig, PrRequest, ProvisionRequest, Secret, ServiceConfig,
    WorkspaceService,
};
use pty_manager::{PtyManager, SessionEvent, SpawnConfig};
use test_support::github::FakeGitHub;
use test_support::model::{FakeModel, FakeModelOptions};

use crate::agents::{self, Launch, Pin, Seed};

/// The task every agent gets.
pub const TASK: &str = "Create file hello.txt containing 'Hello from the e2e run'";
const FILE: &str = "hello.txt";
const FILE_CONTENT: &str = "Hello from the e2e run\n";

/// How long each wait may take; generous, since CI machines are slow and shared.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
const TURN_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_GRACE: Duration = Duration::from_secs(8);
const LEFTOVER_WAIT: Duration = Duration::from_secs(15);

/// The steps, in table order.
const STEPS: &[&str] = &[
    "provision",
    "spawn",
    "ready",
    "send",
    "permission",
    "complete",
    "file",
    "finalize",
    "stop",
    "leftovers",
    "login",
    "trust",
];

/// One step's outcome.
#[derive(Debug, Clone)]
pub enum Outcome {
    Ok(Duration, String),
    Fail(Duration, String),
    NotApplicable(String),
}

impl Outcome {
    fn cell(&self) -> String {
        match self {
            Outcome::Ok(d, _) => format!("ok {:.1}s", d.as_secs_f64()),
            Outcome::Fail(d, _) => format!("FAIL {:.1}s", d.as_secs_f64()),
            Outcome::NotApplicable(_) => "n/a".into(),
        }
    }

    fn note(&self) -> &str {
        match self {
            Outcome::Ok(_, n) | Outcome::Fail(_, n) | Outcome::NotApplicable(n) => n,
        }
    }

    fn passed(&self) -> bool {
        matches!(self, Outcome::Ok(..) | Outcome::NotApplicable(_))
    }
}

/// One agent's row.
struct Row {
    agent: String,
    version: String,
    skipped: Option<String>,
    steps: Vec<(&'static str, Outcome)>,
}

impl Row {
    fn set(&mut self, step: &'static str, o: Outcome) {
        self.steps.retain(|(s, _)| *s != step);
        self.steps.push((step, o));
    }

    fn get(&self, step: &str) -> Option<&Outcome> {
        self.steps.iter().find(|(s, _)| *s == step).map(|(_, o)| o)
    }
}

pub fn run(args: &[String]) -> ExitCode {
    let mut only: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--agent" => match it.next() {
                Some(n) => only.push(n.clone()),
                None => {
                    eprintln!("xtask e2e: --agent needs a name");
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!("xtask e2e: unknown argument `{other}`");
                return ExitCode::from(2);
            }
        }
    }
    let pins = match agents::read_pins() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask e2e: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(bad) = only.iter().find(|n| !pins.iter().any(|p| &p.name == *n)) {
        eprintln!("xtask e2e: unknown agent `{bad}`");
        return ExitCode::from(2);
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    for pin in pins
        .iter()
        .filter(|p| only.is_empty() || only.contains(&p.name))
    {
        eprintln!("xtask e2e: == {} ==", pin.name);
        rows.push(run_agent(pin));
    }
    let table = render(&rows);
    println!("{table}");
    let report = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e/report.md");
    if let Some(dir) = report.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if std::fs::write(&report, &table).is_ok() {
        eprintln!("xtask e2e: table written to {}", report.display());
    }
    let ok = rows
        .iter()
        .all(|r| r.skipped.is_none() && r.steps.iter().all(|(_, o)| o.passed()));
    eprintln!(
        "xtask e2e: {} in {:.0}s",
        if ok { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The markdown table and, under it, every note.
fn render(rows: &[Row]) -> String {
    let mut out = String::from("| agent | version |");
    for s in STEPS {
        out.push_str(&format!(" {s} |"));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(STEPS.len()));
    out.push('\n');
    for r in rows {
        out.push_str(&format!("| {} | {} |", r.agent, r.version));
        for s in STEPS {
            let cell = match (&r.skipped, r.get(s)) {
                (Some(_), _) => "skipped".to_owned(),
                (None, Some(o)) => o.cell(),
                (None, None) => "not run".to_owned(),
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out.push('\n');
    for r in rows {
        if let Some(why) = &r.skipped {
            out.push_str(&format!("- {}: skipped: {why}\n", r.agent));
            continue;
        }
        for s in STEPS {
            match r.get(s) {
                Some(o) if !o.note().is_empty() => {
                    out.push_str(&format!("- {} {s}: {}\n", r.agent, o.note()))
                }
                None => out.push_str(&format!(
                    "- {} {s}: not run: an earlier step failed\n",
                    r.agent
                )),
                _ => {}
            }
        }
    }
    out
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A private temporary directory, removed (and checked removed) by [`World::finish`].
pub(crate) struct World {
    pub(crate) root: PathBuf,
}

impl World {
    pub(crate) fn new(tag: &str) -> Result<Self, String> {
        let root = std::env::temp_dir().join(format!(
            "ao-e2e-{tag}-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
        let root = root
            .canonicalize()
            .map_err(|e| format!("resolve {}: {e}", root.display()))?;
        for d in ["home", "tmp"] {
            std::fs::create_dir_all(root.join(d)).map_err(|e| format!("create {d}: {e}"))?;
        }
        Ok(Self { root })
    }

    pub(crate) fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Removes the directory; returns how many entries were still there afterwards.
    pub(crate) fn finish(self) -> usize {
        let _ = std::fs::remove_dir_all(&self.root);
        if self.root.exists() {
            count_entries(&self.root)
        } else {
            0
        }
    }
}

fn count_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    1 + if e.file_type().is_ok_and(|t| t.is_dir()) {
                        count_entries(&e.path())
                    } else {
                        0
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Runs `git` with the world's isolated configuration.
pub(crate) fn git(world: &World, cwd: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("HOME", world.home())
        .env("GIT_CONFIG_GLOBAL", world.home().join(".gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .map_err(|e| format!("git {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The URL the workspace service clones; git rewrites it to the local bare remote.
const REMOTE_URL: &str = "https://github.com/e2e/hello.git";

/// A bare remote seeded with one commit on `main`, and git told to use it for [`REMOTE_URL`].
fn seed_remote(world: &World) -> Result<PathBuf, String> {
    let gitconfig = world.home().join(".gitconfig");
    agents::write_gitconfig(&world.home())?;
    let seed = world.root.join("seed");
    let bare = world.root.join("remote.git");
    std::fs::create_dir_all(&seed).map_err(|e| e.to_string())?;
    let mut cfg = std::fs::read_to_string(&gitconfig).unwrap_or_default();
    cfg.push_str(&format!(
        "[protocol \"file\"]\n\tallow = always\n[url \"file://{}\"]\n\tinsteadOf = {REMOTE_URL}\n",
        bare.display()
    ));
    std::fs::write(&gitconfig, cfg).map_err(|e| e.to_string())?;
    git(world, &seed, &["init", "-q", "-b", "main"])?;
    std::fs::write(seed.join("README.md"), "# e2e\n").map_err(|e| e.to_string())?;
    git(world, &seed, &["add", "README.md"])?;
    git(world, &seed, &["commit", "-q", "-m", "initial"])?;
    git(
        world,
        &world.root,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            &bare.display().to_string(),
        ],
    )?;
    git(
        world,
        &seed,
        &["push", "-q", &bare.display().to_string(), "main"],
    )?;
    Ok(bare)
}

/// What the e2e run lets detection answer: the `standard` preset (which asks for writes and
/// shell commands), onboarding screens, the trust dialog for the workdir and the key it supplied.
fn standard_policy() -> AnswerPolicy {
    AnswerPolicy {
        preset: Some(ApprovalPreset::Standard),
        accept_onboarding: true,
        trust_workdir: true,
        supplied_api_key: true,
    }
}

/// The agent's PTY session with its adapter's detection rules under `policy`.
pub(crate) fn spawn_config(
    agent: &str,
    launch: &Launch,
    cwd: &Path,
    policy: &AnswerPolicy,
) -> Result<SpawnConfig, String> {
    let ty: AgentType = agent
        .parse()
        .map_err(|_| format!("no adapter for agent `{agent}`"))?;
    let registry = Registry::builtin().map_err(|e| format!("loading manifests: {e}"))?;
    let adapter = registry
        .get(ty)
        .adapter(policy)
        .map_err(|e| format!("building the {agent} adapter: {e}"))?;
    let mut cfg = SpawnConfig::with_adapter(std::sync::Arc::new(adapter))
        .name(format!("e2e-{agent}"))
        .args(launch.args.clone())
        .cwd(cwd)
        .inherit_env(false)
        .size(120, 40);
    cfg.command = launch.command.clone();
    for (k, v) in &launch.env {
        cfg = cfg.env(k.clone(), v.clone());
    }
    Ok(cfg)
}

/// Waits for the first event of session `id` that `pick` maps to a value.
pub(crate) fn wait_event<T>(
    events: &pty_manager::QueueReceiver<SessionEvent>,
    id: &str,
    timeout: Duration,
    seen: &mut Vec<String>,
    mut pick: impl FnMut(&SessionEvent) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(ev) = events.recv_timeout(left.min(Duration::from_millis(200))) else {
            continue;
        };
        if event_session(&ev) != Some(id) {
            continue;
        }
        if let SessionEvent::StatusChanged { to, .. } = &ev {
            seen.push(format!("{to:?}").to_lowercase());
        }
        if let Some(v) = pick(&ev) {
            return Some(v);
        }
    }
    None
}

fn event_session(ev: &SessionEvent) -> Option<&str> {
    Some(match ev {
        SessionEvent::Started { session }
        | SessionEvent::StatusChanged { session, .. }
        | SessionEvent::Stopped { session, .. }
        | SessionEvent::Error { session, .. }
        | SessionEvent::Ready { session }
        | SessionEvent::BlockingPrompt { session, .. }
        | SessionEvent::AutoResponse { session, .. }
        | SessionEvent::LoginRequired { session, .. }
        | SessionEvent::AuthRequired { session, .. }
        | SessionEvent::TaskComplete { session, .. } => session.id.as_str(),
        _ => return None,
    })
}

/// Pids of live processes whose environment holds `HOME=<home>`: the session's own processes
/// and anything they started, detached or not.
pub(crate) fn processes_with_home(home: &Path) -> Vec<u32> {
    let needle = format!("HOME={}", home.display());
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .collect()
}

/// Waits for every process of `home` to go; returns those still alive after `timeout`.
pub(crate) fn wait_no_processes(home: &Path, timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = processes_with_home(home);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Kills processes the run left behind (by pid: they carry this run's private HOME).
pub(crate) fn kill_leftovers(pids: &[u32]) {
    for pid in pids {
        if let Ok(pid) = i32::try_from(*pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn run_agent(pin: &Pin) -> Row {
    let mut row = Row {
        agent: pin.name.clone(),
        version: pin.version.clone(),
        skipped: None,
        steps: Vec::new(),
    };
    match agents::installed_version(&pin.command) {
        None => {
            row.version = "-".into();
            row.skipped = Some(agents::install_report_reason(&pin.name).unwrap_or_else(|| {
                format!("`{} --version` does not run (not installed?)", pin.command)
            }));
            return row;
        }
        Some(v) if v != pin.version => {
            row.version = v.clone();
            row.skipped = Some(format!("found {v}, pinned {}", pin.version));
            return row;
        }
        Some(_) => {}
    }
    if let Err(e) = turn_flow(pin, &mut row) {
        eprintln!("xtask e2e: {}: {e}", pin.name);
    }
    for (step, seed) in [("login", Seed::Nothing), ("trust", Seed::NoTrust)] {
        let o = state_check(pin, seed);
        eprintln!("xtask e2e: {} {step}: {}", pin.name, o.cell());
        row.set(step, o);
    }
    row
}

/// Runs a step: records its outcome and time; `Err` stops the flow.
fn step<T>(
    row: &mut Row,
    name: &'static str,
    f: impl FnOnce() -> Result<(T, String), String>,
) -> Result<T, String> {
    let t = Instant::now();
    let r = f();
    let o = match &r {
        Ok((_, note)) => Outcome::Ok(t.elapsed(), note.clone()),
        Err(e) => Outcome::Fail(t.elapsed(), e.clone()),
    };
    eprintln!("xtask e2e: {} {name}: {} {}", row.agent, o.cell(), o.note());
    row.set(name, o);
    r.map(|(v, _)| v)
}

/// The main flow; returns at the first failed step (later steps stay "not run").
fn turn_flow(pin: &Pin, row: &mut Row) -> Result<(), String> {
    let agent = pin.name.as_str();
    let world = World::new(agent)?;
    let result = turn_flow_in(pin, row, &world);
    // Whatever happened, nothing of this run may survive.
    let left = wait_no_processes(&world.home(), LEFTOVER_WAIT);
    kill_leftovers(&left);
    let files = world.finish();
    let note = format!("{} processes, {files} files left", left.len());
    row.set(
        "leftovers",
        if left.is_empty() && files == 0 {
            Outcome::Ok(Duration::ZERO, note)
        } else {
            Outcome::Fail(Duration::ZERO, format!("{note} (pids {left:?} killed)"))
        },
    );
    result
}

fn turn_flow_in(pin: &Pin, row: &mut Row, world: &World) -> Result<(), String> {
    let agent = pin.name.as_str();
    // Codex runs its tool call in its sandbox without asking; asking for escalated permissions
    // is what makes it show its approval prompt, which this run must answer.
    let model = FakeModel::start_with(
        FakeModelOptions::default()
            .escalate_commands(agent == "codex")
            .reply_delay(Duration::from_millis(700)),
    )
    .map_err(|e| e.to_string())?;
    let github = FakeGitHub::start().map_err(|e| e.to_string())?;
    github.add_repo("e2e", "hello", "main");

    let bare = seed_remote(world)?;

    let mut svc_config = ServiceConfig::new(world.root.join("workspaces"));
    svc_config.git = GitConfig {
        program: "git".into(),
        env: vec![
            ("HOME".into(), world.home().display().to_string()),
            (
                "GIT_CONFIG_GLOBAL".into(),
                world.home().join(".gitconfig").display().to_string(),
            ),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
        ],
    };
    svc_config.github = GitHubConfig::with_api_url(&github.base_url());
    svc_config.github_token = Some(Secret::new(github.token()));
    let svc = WorkspaceService::open(svc_config).map_err(|e| format!("workspace service: {e}"))?;

    let ws = step(row, "provision", || {
        let parent = svc
            .provision(ProvisionRequest::clone_of(REMOTE_URL))
            .map_err(|e| format!("clone: {e}"))?;
        let mut req = ProvisionRequest::clone_of(REMOTE_URL);
        req.slug = Some(format!("e2e-{agent}"));
        let wt = svc
            .add_worktree(&parent.id, req)
            .map_err(|e| format!("worktree: {e}"))?;
        let note = format!("worktree on branch {}", wt.branch);
        Ok((wt, note))
    })?;
    let workdir = ws.path.canonicalize().map_err(|e| e.to_string())?;
    if agent == "aider" {
        // Aider's chat history and tag cache land in the worktree; without this exclude,
        // finalize would commit them into the pull request. (The plugin must do the same.)
        svc.add_excludes(&ws.id, &[".aider*"])
            .map_err(|e| format!("excluding .aider*: {e}"))?;
    }

    let manager = PtyManager::new().map_err(|e| format!("pty manager: {e}"))?;
    let events = manager.events();
    let mut seen = Vec::new();
    let launch = agents::offline_launch(
        agent,
        &pin.version,
        &model,
        &world.home(),
        &world.tmp(),
        &workdir,
        Seed::Full,
    )?;
    let info = step(row, "spawn", || {
        let cfg = spawn_config(agent, &launch, &workdir, &standard_policy())?;
        let info = manager.spawn(cfg).map_err(|e| format!("spawn: {e}"))?;
        Ok((
            info,
            "through pty-manager with the adapter (orchestrator plugin path not exercised)".into(),
        ))
    })?;
    let id = info.id.clone();

    let flow = (|| -> Result<(), String> {
        step(row, "ready", || {
            wait_event(&events, &id, READY_TIMEOUT, &mut seen, |ev| {
                matches!(ev, SessionEvent::Ready { .. }).then_some(())
            })
            .map(|()| ((), String::new()))
            .ok_or_else(|| {
                format!(
                    "no session_ready within {READY_TIMEOUT:?} (statuses: {seen:?}); screen:\n{}",
                    screen_text(&manager, &id)
                )
            })
        })?;
        step(row, "send", || {
            manager
                .send(&id, TASK)
                .map(|m| ((), format!("message {m}")))
                .map_err(|e| format!("send: {e}"))
        })?;
        // Under `standard`, file writes and shell commands ask; the harness answers as the user
        // would, with the rule's suggested answer. Pi never asks.
        let t = Instant::now();
        let mut prompt_note = None;
        let mut answered_at = None;
        let mut answered: Vec<String> = Vec::new();
        let done = wait_event(&events, &id, TURN_TIMEOUT, &mut seen, |ev| match ev {
            SessionEvent::BlockingPrompt {
                info,
                auto_responded,
                ..
            } => {
                if *auto_responded {
                    prompt_note = Some(format!(
                        "answered by rule {:?} (not by the user)",
                        info.rule_id
                    ));
                } else if let Some(answer) = info
                    .suggested_response
                    .clone()
                    .filter(|a| !a.trim().is_empty())
                {
                    // Each distinct prompt is answered once. A signal without a suggested answer
                    // (Codex's OSC 7501 `blocked` arrives before its dialog is drawn) is not
                    // answered: keys sent before the dialog exists would be lost.
                    let key = format!("{:?}\u{1f}{}", info.rule_id, info.prompt);
                    if !answered.contains(&key) {
                        answered.push(key);
                        let r = answer_prompt(&manager, &id, &answer);
                        answered_at.get_or_insert(t.elapsed());
                        prompt_note = Some(match r {
                            Ok(()) => format!(
                                "{:?} prompt `{}` answered `{answer}` after {:.1}s",
                                info.prompt_type,
                                info.prompt.lines().next().unwrap_or("").trim(),
                                t.elapsed().as_secs_f64()
                            ),
                            Err(e) => format!("answering failed: {e}"),
                        });
                    }
                }
                None
            }
            SessionEvent::TaskComplete {
                turn_output, error, ..
            } => Some((turn_output.clone(), error.clone())),
            SessionEvent::Stopped { reason, .. } => {
                Some((String::new(), Some(format!("the agent exited: {reason}"))))
            }
            _ => None,
        });
        let asks = agent != "pi";
        row.set(
            "permission",
            match (&prompt_note, asks) {
                (Some(n), _) if n.starts_with("answering failed") => {
                    Outcome::Fail(t.elapsed(), n.clone())
                }
                (Some(n), _) if n.contains("not by the user") => {
                    Outcome::Fail(t.elapsed(), n.clone())
                }
                // Answered, and the turn then went on to complete: the answer took.
                (Some(n), _) if matches!(done, Some((_, None))) => {
                    Outcome::Ok(answered_at.unwrap_or_default(), n.clone())
                }
                (Some(n), _) => Outcome::Fail(
                    answered_at.unwrap_or_default(),
                    format!("{n}, but the turn did not complete"),
                ),
                (None, false) => Outcome::NotApplicable("pi never asks".into()),
                (None, true) => Outcome::Fail(
                    t.elapsed(),
                    "no permission prompt was detected under the standard preset".into(),
                ),
            },
        );
        let turn_time = t.elapsed();
        step(row, "complete", || match &done {
            Some((out, None)) => Ok((
                (),
                format!(
                    "turn output {} bytes{}",
                    out.len(),
                    if out.contains("FAKE_TURN_COMPLETE") {
                        ", has the model's closing text"
                    } else {
                        ""
                    }
                ),
            )),
            Some((_, Some(e))) => Err(format!("turn ended with an error: {e}")),
            None => Err(format!(
                "no task_complete within {TURN_TIMEOUT:?} (statuses: {seen:?}); screen:\n{}",
                screen_text(&manager, &id)
            )),
        })?;
        // The wait happened above; the step's time is the whole turn, send to completion.
        if let Some(Outcome::Ok(_, note)) = row.get("complete").cloned() {
            row.set("complete", Outcome::Ok(turn_time, note));
        }
        step(row, "file", || {
            let got = std::fs::read_to_string(workdir.join(FILE)).map_err(|e| {
                let out = done.as_ref().map(|(o, _)| o.as_str()).unwrap_or("");
                format!(
                    "{FILE} not created ({e}); the turn output was:\n{out}\nscreen now:\n{}",
                    screen_text(&manager, &id)
                )
            })?;
            if got.trim_end() == FILE_CONTENT.trim_end() {
                Ok(((), String::new()))
            } else {
                Err(format!("{FILE} holds {got:?}"))
            }
        })?;
        Ok(())
    })();

    // Finalize only after a complete turn; stop always.
    if flow.is_ok() {
        let _ = step(row, "finalize", || {
            let out = svc
                .finalize(
                    &ws.id,
                    &FinalizeRequest {
                        commit_message: Some("e2e: add hello.txt".into()),
                        push: true,
                        force_with_lease: false,
                        pr: Some(PrRequest {
                            title: format!("e2e: {agent} adds hello.txt"),
                            body: "Created by the end-to-end run.".into(),
                            ..PrRequest::default()
                        }),
                        cleanup: false,
                    },
                )
                .map_err(|e| format!("finalize: {e}"))?;
            let pushed = git(
                world,
                &world.root,
                &[
                    "--git-dir",
                    &bare.display().to_string(),
                    "ls-tree",
                    "--name-only",
                    &ws.branch,
                ],
            )
            .map_err(|e| format!("branch {} not on the remote: {e}", ws.branch))?;
            if !pushed.lines().any(|l| l == FILE) {
                return Err(format!("the pushed branch lacks {FILE}: {pushed:?}"));
            }
            let pr = out.pr.ok_or("no pull request was opened")?;
            if github.pulls("e2e", "hello").is_empty() {
                return Err("the fake GitHub has no pull request".into());
            }
            Ok((
                (),
                format!("commit {:?}, pushed, PR #{}", out.commit, pr.number),
            ))
        });
    }
    let _ = step(row, "stop", || {
        manager
            .stop(&id, Some(STOP_GRACE))
            .map_err(|e| format!("stop: {e}"))?;
        let reason = wait_event(&events, &id, STOP_GRACE * 2, &mut seen, |ev| match ev {
            SessionEvent::Stopped { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .ok_or("no session_stopped event")?;
        let left = wait_no_processes(&world.home(), LEFTOVER_WAIT);
        if left.is_empty() {
            Ok(((), format!("stopped: {reason}")))
        } else {
            Err(format!("stopped ({reason}) but pids {left:?} survive"))
        }
    });
    manager.shutdown();
    flow
}

pub(crate) fn screen_text(manager: &PtyManager, id: &str) -> String {
    manager
        .snapshot(id)
        .map(|s| {
            s.lines
                .iter()
                .map(|l| l.trim_end())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_else(|e| format!("(no snapshot: {e})"))
}

/// Writes a rule's suggested answer: `keys:a,b` as keys, `text:y` (or bare text) as the text
/// followed by Enter, nothing as Enter.
pub(crate) fn answer_prompt(manager: &PtyManager, id: &str, answer: &str) -> Result<(), String> {
    let answer = answer.strip_prefix("text:").unwrap_or(answer);
    if let Some(keys) = answer.strip_prefix("keys:") {
        let keys: Vec<&str> = keys.split(',').map(str::trim).collect();
        manager.send_keys(id, &keys).map_err(|e| e.to_string())
    } else if answer.trim().is_empty() {
        manager.send_keys(id, &["enter"]).map_err(|e| e.to_string())
    } else {
        manager
            .write_raw(id, answer.trim().as_bytes())
            .and_then(|()| manager.send_keys(id, &["enter"]))
            .map_err(|e| e.to_string())
    }
}

/// Starts the agent in a fresh HOME seeded as `seed` and checks what detection reports: for
/// `Nothing`, the login state; for `NoTrust`, a trust dialog that the policy answers.
fn state_check(pin: &Pin, seed: Seed) -> Outcome {
    let agent = pin.name.as_str();
    let t = Instant::now();
    let run = || -> Result<Outcome, String> {
        let world = World::new(&format!("{agent}-state"))?;
        let model = FakeModel::start().map_err(|e| e.to_string())?;
        let repo = world.root.join("repo");
        std::fs::create_dir_all(&repo).map_err(|e| e.to_string())?;
        let launch = agents::offline_launch(
            agent,
            &pin.version,
            &model,
            &world.home(),
            &world.tmp(),
            &repo,
            seed,
        )?;
        git(&world, &repo, &["init", "-q", "-b", "main"])?;
        let manager = PtyManager::new().map_err(|e| e.to_string())?;
        let events = manager.events();
        let info = manager
            .spawn(spawn_config(agent, &launch, &repo, &standard_policy())?)
            .map_err(|e| format!("spawn: {e}"))?;
        let mut seen = Vec::new();
        let found = wait_event(&events, &info.id, READY_TIMEOUT, &mut seen, |ev| {
            match (seed, ev) {
                (Seed::Nothing, SessionEvent::LoginRequired { instructions, .. }) => Some(format!(
                    "login_required: {}",
                    instructions.lines().next().unwrap_or("").trim()
                )),
                (
                    Seed::NoTrust,
                    SessionEvent::BlockingPrompt {
                        info,
                        auto_responded,
                        ..
                    },
                ) if info.prompt.to_lowercase().contains("trust") => Some(format!(
                    "trust dialog {}",
                    if *auto_responded {
                        "answered by the policy"
                    } else {
                        "shown, not answered"
                    }
                )),
                (Seed::NoTrust, SessionEvent::Ready { .. }) => {
                    Some("ready without a trust dialog".into())
                }
                _ => None,
            }
        });
        let screen = screen_text(&manager, &info.id);
        let _ = manager.stop(&info.id, Some(STOP_GRACE));
        let _ = wait_event(&events, &info.id, STOP_GRACE * 2, &mut seen, |ev| {
            matches!(ev, SessionEvent::Stopped { .. }).then_some(())
        });
        manager.shutdown();
        let left = wait_no_processes(&world.home(), LEFTOVER_WAIT);
        kill_leftovers(&left);
        let files = world.finish();
        let tail = if left.is_empty() && files == 0 {
            String::new()
        } else {
            format!("; {} processes, {files} files left", left.len())
        };
        Ok(match found {
            Some(note) if note.starts_with("ready without") => {
                // Pi and Aider have no trust dialog; reaching the prompt is the right outcome.
                if matches!(agent, "pi" | "aider") {
                    Outcome::NotApplicable(format!("{agent} has no trust dialog{tail}"))
                } else {
                    Outcome::Fail(t.elapsed(), format!("{note}{tail}"))
                }
            }
            Some(note) if note.contains("not answered") => {
                Outcome::Fail(t.elapsed(), format!("{note}{tail}"))
            }
            Some(note) if tail.is_empty() => Outcome::Ok(t.elapsed(), note),
            Some(note) => Outcome::Fail(t.elapsed(), format!("{note}{tail}")),
            None => Outcome::Fail(
                t.elapsed(),
                format!(
                    "nothing detected within {READY_TIMEOUT:?} (statuses {seen:?}){tail}; screen:\n{screen}"
                ),
            ),
        })
    };
    run().unwrap_or_else(|e| Outcome::Fail(t.elapsed(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_never_shows_a_missing_step_as_passed() {
        let rows = vec![
            Row {
                agent: "a".into(),
                version: "1.0.0".into(),
                skipped: None,
                steps: vec![(
                    "provision",
                    Outcome::Ok(Duration::from_millis(1500), String::new()),
                )],
            },
            Row {
                agent: "b".into(),
                version: "-".into(),
                skipped: Some("npm not found".into()),
                steps: vec![],
            },
        ];
        let t = render(&rows);
        assert!(t.contains("| a | 1.0.0 | ok 1.5s | not run |"), "{t}");
        assert!(t.contains("| b | - | skipped |"), "{t}");
        assert!(t.contains("- a spawn: not run: an earlier step failed"));
        assert!(t.contains("- b: skipped: npm not found"));
        assert!(!Outcome::Fail(Duration::ZERO, "x".into()).passed());
        assert!(Outcome::NotApplicable("x".into()).passed());
    }

    #[test]
    fn leftover_scan_finds_a_process_by_its_home() {
        let world = World::new("scan").unwrap();
        let mut child = Command::new("sleep")
            .arg("30")
            .env("HOME", world.home())
            .spawn()
            .unwrap();
        assert_eq!(processes_with_home(&world.home()), [child.id()]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(processes_with_home(&world.home()).is_empty());
        assert_eq!(world.finish(), 0);
    }
}
