//! `cargo xtask e2e [--agent NAME]...`: every pinned agent CLI runs a real turn offline, driven
//! through the orchestrator.
//!
//! Per agent and per phase, a fresh temporary root holds the HOME and TMPDIR of a child process
//! (`xtask e2e --phase …`, see [`crate::e2e_plugin`]) that builds the orchestrator plugin from
//! its settings and drives the agent with the plugin's chat actions against a loopback fake model
//! and a loopback fake GitHub: provision a worktree workspace, spawn with the `standard` preset,
//! wait for `ready`, send the task, see the permission prompt reported as `blocked` and answer it
//! as the user, see the turn complete, check the file, finalize (commit, push to the local bare
//! remote, pull request), stop. Two more phases start the agent on a fresh unseeded HOME: the
//! login state (`authenticating` with its prompt) and the trust dialog (answered by the preset).
//!
//! After each child ends, this side checks that no process carrying the root's HOME survives,
//! that the root is removed without leftovers, and that nothing new appeared in this user's HOME;
//! new entries of the system temp directory under an agent's name fail the run when `CI=true`
//! (nothing else runs then) and are reported otherwise (other programs share that directory).
//!
//! Every step reports `ok`, `FAIL`, `n/a` (the agent has no such screen) or `not run`. An agent
//! that is not installed (or not at its pinned version) is listed as `skipped: <reason>`. The
//! task exits non-zero when any step of an installed agent fails.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coding_agent_adapters::{AgentType, AnswerPolicy, Registry};
use pty_manager::{PtyManager, SessionEvent, SpawnConfig};

use crate::agents::{self, Launch, Pin};
use crate::e2e_plugin::{Phase, STEP_PREFIX};

/// The task every agent gets.
pub const TASK: &str = "Create file hello.txt containing 'Hello from the e2e run'";
pub(crate) const FILE: &str = "hello.txt";
pub(crate) const FILE_CONTENT: &str = "Hello from the e2e run\n";

/// How long one child may run before it is killed: the turn phase waits up to 90 s for ready and
/// 120 s for the turn, plus provisioning, finalizing and stopping.
const TURN_CHILD_TIMEOUT: Duration = Duration::from_secs(330);
const STATE_CHILD_TIMEOUT: Duration = Duration::from_secs(150);
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
    if args.first().map(String::as_str) == Some("--phase") {
        return crate::e2e_plugin::run_child(args);
    }
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
    let (passed, failed, skipped) = totals(&rows);
    // The closing line, whatever happened: a skipped agent is counted and named, never passed.
    println!(
        "e2e: {passed} passed, {failed} failed, {skipped} skipped in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Agents that passed every step, that failed one, that were skipped.
fn totals(rows: &[Row]) -> (usize, usize, usize) {
    let skipped = rows.iter().filter(|r| r.skipped.is_some()).count();
    let passed = rows
        .iter()
        .filter(|r| {
            r.skipped.is_none() && STEPS.iter().all(|s| r.get(s).is_some_and(Outcome::passed))
        })
        .count();
    (passed, rows.len() - skipped - passed, skipped)
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

    /// The world a parent made, seen from its child (which never removes it).
    pub(crate) fn at(root: PathBuf) -> Self {
        Self { root }
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
    for phase in [Phase::Turn, Phase::Login, Phase::Trust] {
        run_phase(pin, phase, &mut row);
    }
    row
}

/// The environment of a child: the world's HOME and TMPDIR, the locations of the programs, and
/// nothing else of this process's environment.
fn child_env(world: &World) -> Vec<(String, String)> {
    let home = world.home();
    let mut env = agents::world_env(&home, &world.tmp());
    // The plugin's git clones, pushes and fetches may only reach local repositories: the
    // world's ~/.gitconfig rewrites the forge URL to the bare remote, and should it ever not,
    // git fails instead of going to the network.
    env.push(("GIT_ALLOW_PROTOCOL".into(), "file".into()));
    // PYENV_ROOT: a pyenv-installed Aider's shim needs it. RUST_BACKTRACE: for a child's panic.
    for pass in ["PATH", "PYENV_ROOT", "RUST_BACKTRACE"] {
        if let Ok(v) = std::env::var(pass) {
            env.push((pass.into(), v));
        }
    }
    env
}

/// Runs one phase in a child and records its steps, then checks what the child left behind.
fn run_phase(pin: &Pin, phase: Phase, row: &mut Row) {
    let t = Instant::now();
    let outside_before = outside_entries();
    let first = first_step(phase);
    let world = match World::new(&format!("{}-{}", pin.name, phase.as_str())) {
        Ok(w) => w,
        Err(e) => {
            row.set(first, Outcome::Fail(t.elapsed(), e));
            return;
        }
    };
    let timeout = if phase == Phase::Turn {
        TURN_CHILD_TIMEOUT
    } else {
        STATE_CHILD_TIMEOUT
    };
    let mut child_pid = None;
    let ended = run_child(pin, phase, &world, timeout, row, &mut child_pid);
    let left = wait_no_processes(&world.home(), LEFTOVER_WAIT);
    kill_leftovers(&left);
    let files = world.finish();
    let (home_new, tmp_new) = outside_new(&outside_before, &outside_entries());
    let mut problems = Vec::new();
    match ended {
        // A child that failed before its first step: that step says why.
        Err(e) if row.get(first).is_none() => row.set(first, Outcome::Fail(t.elapsed(), e)),
        Err(e) => problems.push(e),
        Ok(()) => {}
    }
    if !left.is_empty() {
        problems.push(format!("pids {left:?} survived the child (killed)"));
    }
    if files > 0 {
        problems.push(format!(
            "{files} entries could not be removed from the root"
        ));
    }
    if !home_new.is_empty() {
        problems.push(format!("new in this user's HOME: {home_new:?}"));
    }
    let mut notes = Vec::new();
    // The plugin's per-process private directory names its process: one of the child's in the
    // system temp directory means TMPDIR was not honoured, wherever this runs. Other processes'
    // are theirs.
    let (ours, tmp_new): (Vec<String>, Vec<String>) = tmp_new.into_iter().partition(|p| {
        child_pid.is_some_and(|pid| p.ends_with(&format!("/agent-orchestrator-{pid}")))
    });
    let tmp_new: Vec<String> = tmp_new
        .into_iter()
        .filter(|p| !p.contains("/agent-orchestrator-"))
        .collect();
    if !ours.is_empty() {
        problems.push(format!(
            "the plugin's private directory is outside the root: {ours:?}"
        ));
    }
    // The system temp directory is shared with every other program on the machine; on a CI
    // machine nothing else runs at the same time, so there a new entry under an agent's name
    // counts. Elsewhere it is only reported.
    if !tmp_new.is_empty() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            problems.push(format!("new in the system temp directory: {tmp_new:?}"));
        } else {
            notes.push(format!(
                "new in the shared temp directory meanwhile, not attributed (CI=true counts \
                 them): {tmp_new:?}"
            ));
        }
    }
    let step = if phase == Phase::Turn {
        "leftovers"
    } else {
        phase.as_str()
    };
    match (problems.is_empty(), phase) {
        (true, Phase::Turn) => {
            let mut note = "0 processes, 0 files left in the root, nothing new in HOME".to_owned();
            for n in &notes {
                note.push_str("; ");
                note.push_str(n);
            }
            row.set(step, Outcome::Ok(Duration::ZERO, note));
        }
        (true, _) => {}
        (false, _) => {
            let note = problems.join("; ");
            let merged = match row.get(step) {
                Some(Outcome::Ok(d, n)) | Some(Outcome::Fail(d, n)) => {
                    Outcome::Fail(*d, format!("{n}; {note}"))
                }
                Some(Outcome::NotApplicable(n)) => {
                    Outcome::Fail(Duration::ZERO, format!("{n}; {note}"))
                }
                None => Outcome::Fail(t.elapsed(), note),
            };
            row.set(step, merged);
        }
    }
}

/// The step a phase reports first (where a failure to start it is shown).
fn first_step(phase: Phase) -> &'static str {
    match phase {
        Phase::Turn => "provision",
        Phase::Login => "login",
        Phase::Trust => "trust",
    }
}

/// Starts `xtask e2e --phase …` in the world and reads its step lines until it exits or runs
/// out of time (then it is killed; its agents are killed by the leftover sweep).
fn run_child(
    pin: &Pin,
    phase: Phase,
    world: &World,
    timeout: Duration,
    row: &mut Row,
    pid: &mut Option<u32>,
) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding xtask itself: {e}"))?;
    let mut child = Command::new(exe)
        .args(["e2e", "--phase", phase.as_str(), "--agent", &pin.name])
        .args(["--version", &pin.version, "--root"])
        .arg(&world.root)
        .env_clear()
        .envs(child_env(world))
        .current_dir(&world.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the e2e child: {e}"))?;
    *pid = Some(child.id());
    let stdout = child.stdout.take().ok_or("no stdout of the child")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            let _ = child.kill();
            break;
        }
        match rx.recv_timeout(left.min(Duration::from_millis(500))) {
            Ok(line) => {
                if let Some(json) = line.strip_prefix(STEP_PREFIX)
                    && let Some((step, o)) = parse_step(json)
                {
                    row.set(step, o);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the child: {e}"))?;
    let _ = reader.join();
    if timed_out {
        return Err(format!(
            "the {} phase did not end within {timeout:?} and was killed",
            phase.as_str()
        ));
    }
    // A child that died (panic, signal), or failed before its first step, leaves steps `not
    // run`; say why (its own message is on stderr above).
    if status.code().is_none()
        || status.code() == Some(101)
        || (!status.success() && row.get(first_step(phase)).is_none())
    {
        return Err(format!(
            "the {} phase child ended with {status}",
            phase.as_str()
        ));
    }
    Ok(())
}

/// One `E2E-STEP` line: the step (one of [`STEPS`]) and its outcome.
fn parse_step(json: &str) -> Option<(&'static str, Outcome)> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let step = STEPS.iter().find(|s| Some(**s) == v["step"].as_str())?;
    let took = Duration::from_millis(v["ms"].as_u64().unwrap_or(0));
    let note = v["note"].as_str().unwrap_or("").to_owned();
    let o = match v["status"].as_str()? {
        "ok" => Outcome::Ok(took, note),
        "na" => Outcome::NotApplicable(note),
        _ => Outcome::Fail(took, note),
    };
    Some((step, o))
}

/// What appeared between two [`outside_entries`] listings: (in HOME, in the temp directory).
fn outside_new(before: &BTreeSet<String>, after: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let tmp = std::env::temp_dir().display().to_string();
    after
        .difference(before)
        .cloned()
        .partition(|p| !p.starts_with(&format!("{tmp}/")))
}

/// Names an agent run could leave outside its root: entries of this user's HOME (and its
/// config, cache and data directories) and entries of the system temp directory that carry an
/// agent's or the orchestrator's name.
fn outside_entries() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let list = |dir: &Path, out: &mut BTreeSet<String>, keep: &dyn Fn(&str) -> bool| {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if keep(&name) {
                    out.insert(dir.join(&name).display().to_string());
                }
            }
        }
    };
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        for d in ["", ".config", ".cache", ".local/share"] {
            list(&home.join(d), &mut out, &|_| true);
        }
    }
    let marked = |n: &str| {
        let n = n.to_ascii_lowercase();
        [
            "claude",
            "codex",
            "gemini",
            "aider",
            "pi-",
            "agent-orchestrator",
        ]
        .iter()
        .any(|m| n.contains(m))
    };
    list(&std::env::temp_dir(), &mut out, &marked);
    out
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
    fn child_step_lines_become_outcomes_and_skips_are_counted_apart() {
        let ok = parse_step(r#"{"step":"ready","status":"ok","ms":1500,"note":"status ready"}"#);
        assert!(
            matches!(ok, Some(("ready", Outcome::Ok(d, ref n))) if d.as_millis() == 1500 && n == "status ready")
        );
        let na = parse_step(r#"{"step":"trust","status":"na","ms":0,"note":"none"}"#);
        assert!(matches!(na, Some(("trust", Outcome::NotApplicable(_)))));
        let bad = parse_step(r#"{"step":"file","status":"fail","ms":3,"note":"x"}"#);
        assert!(matches!(bad, Some(("file", Outcome::Fail(..)))));
        assert!(parse_step(r#"{"step":"nonsense","status":"ok","ms":0,"note":""}"#).is_none());
        assert!(parse_step("not json").is_none());

        let all_ok = |agent: &str| Row {
            agent: agent.into(),
            version: "1.0.0".into(),
            skipped: None,
            steps: STEPS
                .iter()
                .map(|s| (*s, Outcome::Ok(Duration::ZERO, String::new())))
                .collect(),
        };
        let mut failed = all_ok("b");
        failed.set("file", Outcome::Fail(Duration::ZERO, "missing".into()));
        let mut partial = all_ok("c");
        partial.steps.retain(|(s, _)| *s != "trust");
        let skipped = Row {
            agent: "d".into(),
            version: "-".into(),
            skipped: Some("npm not found".into()),
            steps: Vec::new(),
        };
        // A step that never reported is not a pass.
        assert_eq!(totals(&[all_ok("a"), failed, partial, skipped]), (1, 2, 1));
    }

    #[test]
    fn leftover_scan_finds_a_process_by_its_home() {
        let world = World::new("scan").unwrap();
        let mut child = Command::new("sleep")
            .arg("30")
            .env("HOME", world.home())
            .spawn()
            .unwrap();
        // /proc/<pid>/environ can read empty while the child is still in execve: look until it
        // shows (generously; under a loaded CI machine the first look came up empty).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut found = processes_with_home(&world.home());
        while found.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            found = processes_with_home(&world.home());
        }
        assert_eq!(found, [child.id()]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(processes_with_home(&world.home()).is_empty());
        assert_eq!(world.finish(), 0);
    }
}
