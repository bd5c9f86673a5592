//! `PTY_SERVICE` over a real [`pty_manager::PtyManager`] and the agent manifests of
//! `coding-agent-adapters`.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coding_agent_adapters::hooks::{
    HookEffect, HookEndpoint, ParsedHook, generate_token, parse_hook, respond as respond_hook,
};
use coding_agent_adapters::launch::{Credentials, LaunchOptions, TaskDelivery, plan_launch};
use coding_agent_adapters::memory::{MemoryMode, write_memory};
use coding_agent_adapters::{AgentType, ApprovalPreset, Registry, write_files};
use pty_manager::{PtyManager, SessionEvent, SessionStatus, ShellAdapter, SpawnConfig};

use super::{PtyService, SessionInfo, SpawnRequest};
use crate::settings::PtyServiceConfig;
use crate::{Error, Result};

type Notify = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
struct State {
    completed: HashSet<String>,
    errors: HashMap<String, String>,
    /// Every session spawned here, oldest first (the manager lists only live ones).
    spawned: Vec<String>,
    /// Sessions spawned here whose stop was reported, in the order they stopped (the oldest
    /// are forgotten first, see `forget_old_stopped`).
    stopped_order: std::collections::VecDeque<String>,
    /// Audit records of automatic input per session (newest last, at most 200).
    audit: HashMap<String, Vec<serde_json::Value>>,
    /// Sessions whose events are reported in chat: id → (label, started by START_CODING_TASK).
    reported: HashMap<String, (String, bool)>,
    /// Hook endpoints of sessions launched with hook telemetry, with what the reply depends on.
    hooks: HashMap<String, (HookEndpoint, AgentType, ApprovalPreset)>,
    /// Where agents POST their hooks, once the server listens.
    hook_url: Option<String>,
    /// Each agent session's private directory (settings, hook headers), removed when it stops.
    private_dirs: HashMap<String, PathBuf>,
    /// Stalls detected per session (per-type metrics, `ranked` selection).
    stalls: HashMap<String, u64>,
    /// The login instructions of sessions that asked for a login, shown as their prompt while
    /// they are `authenticating` (pty-manager's prompt covers `blocked` only).
    login: HashMap<String, String>,
}

/// How many stopped sessions a service keeps by default, the ones that stopped last (see
/// [`ManagedPty::keep_stopped`]).
pub const KEEP_STOPPED: usize = 50;

/// Where supervision events go, if a coordinator runs.
pub type EventSink = Arc<dyn crate::supervision::Observer>;

/// The PTY service of the binary.
pub struct ManagedPty {
    manager: Arc<PtyManager>,
    config: PtyServiceConfig,
    registry: Option<Registry>,
    state: Arc<Mutex<State>>,
    path_var: Option<String>,
    sink: Arc<Mutex<Option<EventSink>>>,
    /// The directory holding the agent sessions' private directories, made at the first agent
    /// spawn (see [`make_private_root`]).
    private_root: Mutex<Option<PrivateRoot>>,
    /// Spawns past the session-limit check whose session the manager does not list yet.
    spawning: Mutex<usize>,
    /// Stopped sessions kept before the oldest are forgotten (read by the watcher thread).
    keep_stopped: Arc<std::sync::atomic::AtomicUsize>,
    notify: Notify,
}

impl std::fmt::Debug for ManagedPty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedPty")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ManagedPty {
    /// Starts a manager and a watcher thread that routes session events and stops sessions idle
    /// past `idleTimeoutMs`, reporting through `notify` (which also hears of initial tasks that
    /// could not be sent).
    pub fn start(
        config: PtyServiceConfig,
        notify: impl Fn(&str) + Send + Sync + 'static,
    ) -> Result<Self> {
        let manager =
            Arc::new(PtyManager::new().map_err(|e| Error::service("starting the pty manager", e))?);
        Self::with_manager(manager, config, notify)
    }

    /// The same over an existing manager (shared with the console server).
    pub fn with_manager(
        manager: Arc<PtyManager>,
        config: PtyServiceConfig,
        notify: impl Fn(&str) + Send + Sync + 'static,
    ) -> Result<Self> {
        let registry = Registry::builtin().ok();
        let state = Arc::new(Mutex::new(State::default()));
        let notify: Notify = Arc::new(notify);
        let events = manager.events();
        let sink: Arc<Mutex<Option<EventSink>>> = Arc::new(Mutex::new(None));
        let (m, s, n, k) = (
            Arc::downgrade(&manager),
            state.clone(),
            notify.clone(),
            sink.clone(),
        );
        let idle_ms = config.idle_timeout_ms;
        let debug = config.debug;
        let keep_stopped = Arc::new(std::sync::atomic::AtomicUsize::new(KEEP_STOPPED));
        let keep = keep_stopped.clone();
        std::thread::Builder::new()
            .name("pty-service-watch".into())
            .spawn(move || {
                let mut last_tick = Instant::now();
                loop {
                    let ev = events.recv_timeout(Duration::from_secs(1));
                    let Some(manager) = m.upgrade() else { return };
                    match ev {
                        Ok(ev) => {
                            if debug {
                                // Names only: event payloads carry agent output and input.
                                eprintln!(
                                    "agent-orchestrator pty: session {} {}",
                                    ev.session_id(),
                                    ev.name()
                                );
                            }
                            route_event(&manager, &s, &n, &k, ev)
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(_) => return,
                    }
                    if idle_ms > 0 {
                        stop_idle(&manager, &s, idle_ms, &n);
                    }
                    if last_tick.elapsed() >= Duration::from_secs(5) {
                        last_tick = Instant::now();
                        let keep = keep.load(std::sync::atomic::Ordering::Relaxed);
                        forget_old_stopped(&manager, &s, keep);
                        let observer = lock(&k).clone();
                        if let Some(o) = observer {
                            o.tick(&probes(&manager, &s));
                        }
                    }
                }
            })
            .map_err(|e| Error::Io {
                context: "starting the pty service watcher".into(),
                source: e,
            })?;
        Ok(ManagedPty {
            manager,
            config,
            registry,
            state,
            path_var: std::env::var("PATH").ok(),
            sink,
            private_root: Mutex::new(None),
            spawning: Mutex::new(0),
            keep_stopped,
            notify,
        })
    }

    /// Takes one of `maxConcurrentSessions` for a spawn, before it prepares anything (an
    /// agent's files, its memory file): live sessions and spawns not yet listed by the manager
    /// are counted under one lock, and [`SpawnSlot::spawn`] lists the session and gives the slot
    /// back under that same lock, so a spawn is never counted twice nor missed.
    fn reserve_slot(&self) -> Result<SpawnSlot<'_>> {
        let mut spawning = lock(&self.spawning);
        let live = self
            .manager
            .list(None, None)
            .iter()
            .filter(|s| s.status.is_live())
            .count();
        if live + *spawning >= self.config.max_concurrent_sessions {
            return Err(Error::SessionLimit(self.config.max_concurrent_sessions));
        }
        *spawning += 1;
        Ok(SpawnSlot {
            spawning: &self.spawning,
            held: true,
        })
    }

    /// A new private directory for one agent session (settings and hook headers live there:
    /// only this user may enter it), inside the private root made at the first call.
    fn private_dir(&self) -> Result<PathBuf> {
        let root = {
            let mut root = lock(&self.private_root);
            match &*root {
                Some(r) if r.intact() => r.path.clone(),
                // None yet, or the one we made is gone or not ours alone any more: a new one.
                _ => {
                    let runtime = std::env::var_os("XDG_RUNTIME_DIR");
                    let made =
                        make_private_root(runtime.as_deref()).map_err(|source| Error::Io {
                            context: "creating the agents' private directory".into(),
                            source,
                        })?;
                    root.insert(made).path.clone()
                }
            }
        };
        let dir = root.join(crate::actions::new_id());
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|source| Error::Io {
                context: format!("creating {}", dir.display()),
                source,
            })?;
        Ok(dir)
    }

    /// Keeps the `n` (at least one) of this service's stopped sessions that stopped last (their
    /// final screen, output ring, audit, status and stall count; default [`KEEP_STOPPED`]) and
    /// forgets those that stopped before, checked every 5 to 6 s: a long-running server would
    /// otherwise hold every session's screen and up to a megabyte of its output for ever.
    /// Forgotten sessions also leave the per-agent-type metrics that `ranked` selection reads.
    pub fn keep_stopped(self, n: usize) -> Self {
        self.keep_stopped
            .store(n, std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// Looks agent CLIs up on this `PATH`-style list instead of the process's `PATH` (the
    /// program found is the one started).
    pub fn with_search_path(mut self, path: impl Into<String>) -> Self {
        self.path_var = Some(path.into());
        self
    }

    /// Where agents report hooks (`http://127.0.0.1:<port>/api/coding-agents/hooks`); sessions
    /// spawned afterwards get hook telemetry (Claude, Gemini).
    pub fn set_hook_url(&self, url: impl Into<String>) {
        lock(&self.state).hook_url = Some(url.into());
    }

    /// Routes session events to supervision (a coordinator's `on_event`) instead of chat notices.
    pub fn set_event_sink(&self, sink: EventSink) {
        *lock(&self.sink) = Some(sink);
    }

    /// The underlying manager (for the console server and `run`).
    pub fn manager(&self) -> &Arc<PtyManager> {
        &self.manager
    }

    fn to_info(&self, s: pty_manager::SessionInfo) -> SessionInfo {
        let st = lock(&self.state);
        let prompt = s.prompt.or_else(|| {
            (s.status == SessionStatus::Authenticating)
                .then(|| st.login.get(&s.id).cloned())
                .flatten()
        });
        SessionInfo {
            completed: st.completed.contains(&s.id),
            error: st.errors.get(&s.id).cloned(),
            id: s.id,
            name: s.name,
            agent_type: s.agent_type,
            status: s.status,
            workdir: s.workdir,
            created_at_ms: s.started_at_ms,
            last_activity_ms: s.last_activity_ms,
            prompt,
        }
    }

    fn find_on_path(&self, program: &str) -> Option<PathBuf> {
        if program.contains('/') {
            return Path::new(program).is_file().then(|| PathBuf::from(program));
        }
        std::env::split_paths(self.path_var.as_deref()?)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    }
}

/// A spawn counted against the session limit until its session is listed (or it fails).
struct SpawnSlot<'a> {
    spawning: &'a Mutex<usize>,
    held: bool,
}

impl SpawnSlot<'_> {
    /// Runs `spawn` (which makes the manager list the session) and gives the slot back, under
    /// the lock the limit is checked under.
    fn spawn<T>(mut self, spawn: impl FnOnce() -> T) -> T {
        let mut spawning = lock(self.spawning);
        let out = spawn();
        *spawning -= 1;
        self.held = false;
        out
    }
}

impl Drop for SpawnSlot<'_> {
    fn drop(&mut self) {
        if self.held {
            *lock(self.spawning) -= 1;
        }
    }
}

/// What a spawn prepared before its program started (a private directory, a hook endpoint),
/// undone if the spawn does not get that far.
struct Prepared<'a> {
    state: &'a Mutex<State>,
    private: Option<PathBuf>,
    hook_id: Option<String>,
    started: bool,
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        if self.started {
            return;
        }
        if let Some(dir) = &self.private {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(id) = &self.hook_id {
            lock(self.state).hooks.remove(id);
        }
    }
}

impl Drop for ManagedPty {
    fn drop(&mut self) {
        // Private directories of sessions that never reported their stop.
        // Only the directory we made: a replacement of someone else's is theirs.
        if let Some(root) = lock(&self.private_root).take().filter(PrivateRoot::intact) {
            let _ = std::fs::remove_dir_all(root.path);
        }
    }
}

/// Makes a new directory only this user can enter, for the agent sessions' private directories
/// (settings and hook headers, which carry a hook token): under `$XDG_RUNTIME_DIR` when that is
/// an absolute directory of this user that nobody else can write, else under the temp dir.
///
/// Its name carries a random part and it is made with a plain `mkdir` (mode 0700) that fails if
/// the name exists: in a shared `/tmp`, a name another user could guess (say, one made of our
/// pid) can be taken first, and a directory of theirs would let them swap the settings an agent
/// reads for their own.
pub(crate) fn make_private_root(
    runtime_dir: Option<&std::ffi::OsStr>,
) -> std::io::Result<PrivateRoot> {
    let base = runtime_dir
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
        .filter(|d| {
            std::fs::symlink_metadata(d).is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.is_dir() && m.uid() == euid() && m.mode() & 0o022 == 0
            })
        })
        .unwrap_or_else(std::env::temp_dir);
    let names = std::iter::repeat_with(|| {
        format!(
            "agent-orchestrator-{}-{}",
            std::process::id(),
            crate::actions::new_id()
        )
    });
    make_private_root_in(&base, names.take(8))
}

/// [`make_private_root`] in `base`, trying `names` in turn: a name that exists already (a
/// directory, a file, a symbolic link) is never used.
fn make_private_root_in(
    base: &Path,
    names: impl Iterator<Item = String>,
) -> std::io::Result<PrivateRoot> {
    use std::os::unix::fs::MetadataExt;
    let mut last = None;
    for name in names {
        let dir = base.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                let m = std::fs::symlink_metadata(&dir)?;
                return Ok(PrivateRoot {
                    path: dir,
                    id: (m.dev(), m.ino()),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free private directory name")))
}

/// The directory [`make_private_root`] made, and its identity (device, inode) when made.
#[derive(Debug, Clone)]
pub(crate) struct PrivateRoot {
    path: PathBuf,
    id: (u64, u64),
}

impl PrivateRoot {
    /// Whether the path is still the directory we made, ours alone: a temp-dir cleaner may
    /// have removed it, or someone else made one of that name since (its name is not secret
    /// once it exists).
    fn intact(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(&self.path).is_ok_and(|m| {
            m.is_dir()
                && m.uid() == euid()
                && m.mode() & 0o077 == 0
                && (m.dev(), m.ino()) == self.id
        })
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Sends supervision events to `sink`, or, without a coordinator, the chat notices of
/// BEHAVIOR.md §10.2; keeps the audit ring.
fn route_event(
    manager: &Arc<PtyManager>,
    state: &Mutex<State>,
    notify: &Notify,
    sink: &Mutex<Option<EventSink>>,
    ev: SessionEvent,
) {
    use crate::supervision::Event as Sup;
    let sink = lock(sink).clone();
    let reported = |id: &str| lock(state).reported.get(id).cloned();
    let who = |label: &str, start: bool| {
        if start {
            format!("Agent \"{label}\"")
        } else {
            "Coding agent".to_string()
        }
    };
    match ev {
        SessionEvent::Ready { session } => {
            if let Some(sink) = &sink {
                sink.event(Sup::Notice {
                    session_id: session.id.clone(),
                    kind: "ready",
                    data: serde_json::json!({}),
                });
            }
        }
        SessionEvent::BlockingPrompt {
            session,
            info,
            auto_responded,
        } => {
            if let Some(sink) = sink {
                let recent = manager
                    .logs(&session.id, 60)
                    .map(|l| l.join("\n"))
                    .unwrap_or_default();
                sink.event(Sup::Blocked {
                    session_id: session.id,
                    prompt: info.prompt,
                    auto_responded,
                    recent_output: recent,
                });
            } else if !auto_responded && let Some((label, start)) = reported(&session.id) {
                notify(&format!(
                    "{} is waiting for input: {}",
                    who(&label, start),
                    info.prompt.trim()
                ));
            }
        }
        SessionEvent::TaskComplete {
            session,
            turn_output,
            error,
            ..
        } => {
            if let Some(sink) = sink {
                sink.event(Sup::TurnComplete {
                    session_id: session.id,
                    turn_output,
                });
            } else if let Some((label, start)) = reported(&session.id) {
                if let Some(e) = error {
                    notify(&format!("{} encountered an error: {e}", who(&label, start)));
                } else if start {
                    let out: String = turn_output
                        .trim()
                        .chars()
                        .rev()
                        .take(500)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    let tail = if out.is_empty() {
                        String::new()
                    } else {
                        format!("\n\n{out}")
                    };
                    notify(&format!("Agent \"{label}\" completed the task.{tail}"));
                    lock(state).completed.insert(session.id.clone());
                    let (m, id) = (manager.clone(), session.id.clone());
                    std::thread::spawn(move || {
                        let _ = m.stop(&id, None);
                    });
                } else {
                    notify("Coding agent completed the task.");
                }
            }
        }
        SessionEvent::LoginRequired {
            session,
            instructions,
            url,
        } => {
            if let Some(sink) = &sink {
                sink.event(Sup::Notice {
                    session_id: session.id.clone(),
                    kind: "login_required",
                    data: serde_json::json!({"instructions": instructions, "url": url}),
                });
            }
            let text = match url {
                Some(u) if !instructions.contains(&u) => format!("{instructions}\n{u}"),
                _ => instructions,
            };
            lock(state).login.insert(session.id, text);
        }
        SessionEvent::ToolRunning {
            session,
            tool_name,
            description,
        } => {
            if let Some(sink) = &sink {
                sink.event(Sup::Notice {
                    session_id: session.id,
                    kind: "tool_running",
                    data: serde_json::json!({"toolName": tool_name, "description": description}),
                });
            }
        }
        SessionEvent::Message { message } => {
            if let Some(sink) = &sink {
                sink.event(Sup::Notice {
                    session_id: message.session_id.clone(),
                    kind: "message",
                    data: serde_json::json!({"message": message}),
                });
            }
        }
        SessionEvent::StallDetected { session, .. } => {
            *lock(state).stalls.entry(session.id).or_default() += 1;
        }
        SessionEvent::AutoResponse { session, record } => {
            let mut st = lock(state);
            let ring = st.audit.entry(session.id).or_default();
            ring.push(serde_json::to_value(&record).unwrap_or_default());
            if ring.len() > 200 {
                ring.remove(0);
            }
        }
        SessionEvent::Stopped { session, .. } => {
            let private = lock(state).ended(&session.id);
            if let Some(dir) = private {
                let _ = std::fs::remove_dir_all(dir);
            }
            if let Some(sink) = sink {
                sink.event(Sup::Stopped {
                    session_id: session.id,
                });
            }
        }
        SessionEvent::Error { session, error } => {
            lock(state).errors.insert(session.id.clone(), error.clone());
            if let Some(sink) = sink {
                sink.event(Sup::Error {
                    session_id: session.id,
                    message: error,
                });
            } else if let Some((label, start)) = reported(&session.id) {
                notify(&format!(
                    "{} encountered an error: {error}",
                    who(&label, start)
                ));
            }
        }
        _ => {}
    }
}

/// What the idle watchdog needs to know about every session spawned here.
fn probes(manager: &PtyManager, state: &Mutex<State>) -> Vec<crate::supervision::Probe> {
    use std::hash::{Hash, Hasher};
    let ids = lock(state).spawned.clone();
    ids.into_iter()
        .filter_map(|id| {
            let info = manager.get(&id).ok()?;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            manager.logs(&id, 40).unwrap_or_default().hash(&mut h);
            Some(crate::supervision::Probe {
                session_id: id,
                alive: info.status.is_live(),
                output_key: h.finish(),
                last_activity_at: info.last_activity_ms,
            })
        })
        .collect()
}

impl State {
    /// A session stopped: its stop is noted (once, and only for sessions spawned here: others
    /// are not ours to keep), its login text and hook token are dropped, and its private
    /// directory is handed back for removal.
    fn ended(&mut self, id: &str) -> Option<PathBuf> {
        if self.spawned.iter().any(|s| s == id) && !self.stopped_order.iter().any(|s| s == id) {
            self.stopped_order.push_back(id.to_owned());
        }
        self.login.remove(id);
        // Its hook token dies with it (a late hook is answered as for an unknown session).
        self.hooks.remove(id);
        self.private_dirs.remove(id)
    }

    /// Everything kept here about a session, dropped; its private directory (if still recorded)
    /// handed back for removal.
    fn forget(&mut self, id: &str) -> Option<PathBuf> {
        self.spawned.retain(|s| s != id);
        self.completed.remove(id);
        self.errors.remove(id);
        self.audit.remove(id);
        self.reported.remove(id);
        self.hooks.remove(id);
        self.stalls.remove(id);
        self.login.remove(id);
        self.private_dirs.remove(id)
    }
}

/// Forgets this service's stopped sessions beyond the `keep` that stopped last (at least one is
/// kept): the manager's tombstone (screen, output ring) and everything kept here about them.
/// Only sessions whose stop was reported are counted, so a supervisor has had its event.
fn forget_old_stopped(manager: &PtyManager, state: &Mutex<State>, keep: usize) {
    let forget: Vec<String> = {
        let mut st = lock(state);
        let excess = st.stopped_order.len().saturating_sub(keep.max(1));
        st.stopped_order.drain(..excess).collect()
    };
    if forget.is_empty() {
        return;
    }
    for id in &forget {
        let _ = manager.remove(id);
    }
    let dirs: Vec<PathBuf> = {
        let mut st = lock(state);
        forget.iter().filter_map(|id| st.forget(id)).collect()
    };
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Stops the sessions this service spawned that have shown no activity for `idle_ms`. Sessions
/// others started on the same manager (the console's shells) are not its to stop, and a session
/// blocked on a prompt or waiting for a login waits for a person, which is not idleness.
fn stop_idle(manager: &PtyManager, state: &Mutex<State>, idle_ms: u64, notify: &Notify) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let ours: HashSet<String> = lock(state).spawned.iter().cloned().collect();
    for s in manager.list(None, None) {
        let idle = now.saturating_sub(s.last_activity_ms);
        let waits_for_a_person = matches!(
            s.status,
            SessionStatus::Blocked | SessionStatus::Authenticating
        );
        if ours.contains(&s.id) && s.status.is_live() && !waits_for_a_person && idle > idle_ms {
            let _ = manager.stop(&s.id, None);
            notify(&format!(
                "[{}] Session stopped — idle for {} minutes with no progress.",
                s.name,
                idle / 60_000
            ));
        }
    }
}

impl PtyService for ManagedPty {
    fn spawn_session(&self, req: SpawnRequest) -> Result<SessionInfo> {
        // Before anything is prepared: a refused spawn leaves the workspace as it was.
        let slot = self.reserve_slot()?;
        let mut prepared = Prepared {
            state: &self.state,
            private: None,
            hook_id: None,
            started: false,
        };
        if !self.config.register_coding_adapters && req.agent_type != "shell" {
            return Err(Error::InvalidParameter(format!(
                "coding agent adapters are disabled (PTY_SERVICE_CONFIG registerCodingAdapters: \
                 false); only the shell agent can be started, not {}",
                req.agent_type
            )));
        }
        if !req.workdir.is_dir() {
            return Err(Error::InvalidParameter(format!(
                "workdir {} is not a directory",
                req.workdir.display()
            )));
        }
        // BEHAVIOR.md §2.1: 300 ms after `ready` for the shell and agents without their own.
        let mut post_ready_ms = 300;
        let mut pending_task = None;
        let mut session_id: Option<String> = None;
        let mut private: Option<PathBuf> = None;
        let mut cfg = if req.agent_type == "shell" {
            pending_task = req.initial_task.clone();
            SpawnConfig::with_adapter(Arc::new(ShellAdapter::from_env()))
        } else {
            let agent = AgentType::from_str(&req.agent_type)
                .map_err(|_| Error::UnknownAgentType(req.agent_type.clone()))?;
            let registry = self.registry.as_ref().ok_or_else(|| {
                Error::service(
                    "loading agent manifests",
                    "the built-in manifests failed to load",
                )
            })?;
            let manifest = registry.get(agent);
            let Some(program) = self.find_on_path(&manifest.command) else {
                return Err(Error::AgentNotInstalled {
                    display_name: agent.display_name().into(),
                    install_command: manifest.install.command_line(),
                    docs_url: manifest.install.docs.clone(),
                });
            };
            let preset = req
                .approval_preset
                .clone()
                .unwrap_or_else(|| self.config.default_approval_preset.clone());
            let preset = ApprovalPreset::from_str(&preset)
                .ok()
                .ok_or_else(|| Error::InvalidParameter(format!("unknown preset: {preset}")))?;
            let private_dir = self.private_dir()?;
            private = Some(private_dir.clone());
            prepared.private = Some(private_dir.clone());
            let creds = &req.credentials;
            let hook_url = lock(&self.state).hook_url.clone();
            let hooks = match hook_url {
                Some(url) if matches!(agent, AgentType::Claude | AgentType::Gemini) => {
                    let id = format!("ao-{}", crate::actions::new_id());
                    let token =
                        generate_token().map_err(|e| Error::service("making a hook token", e))?;
                    let ep = HookEndpoint::new(url, id.clone(), token)
                        .map_err(|e| Error::service("configuring hooks", e))?;
                    session_id = Some(id);
                    Some(ep)
                }
                _ => None,
            };
            let opts = LaunchOptions {
                hooks: hooks.clone(),
                workdir: req.workdir.clone(),
                private_dir: Some(private_dir.clone()),
                preset: Some(preset),
                task: req.initial_task.clone(),
                credentials: Credentials::from_env(|k| {
                    creds
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.expose().to_string())
                }),
                supplied_credentials: !creds.is_empty(),
                trust_workdir: true,
                accept_onboarding: true,
                home: self.config.agent_config_home.clone(),
                model: req.model.clone(),
                write_agent_config: self.config.agent_config_home.is_some(),
                ..LaunchOptions::default()
            };
            let spec = plan_launch(manifest, &opts).map_err(|e| {
                Error::service(format!("planning the {} launch", agent.display_name()), e)
            })?;
            // Everything the agent and we leave in the workspace stays out of its commits:
            // the CLI's own scratch files, our config and hook files there, the memory file.
            let mut keep_out: Vec<String> = super::excludes::scratch_patterns(agent)
                .iter()
                .map(|p| p.to_string())
                .collect();
            for f in &spec.files {
                if let coding_agent_adapters::files::FileLocation::Workspace(rel) = &f.location {
                    keep_out.push(rel.display().to_string());
                }
            }
            write_files(&spec.files, &spec.roots)
                .map_err(|e| Error::service("writing the agent's config files", e))?;
            if let Some(memory) = req
                .memory_content
                .as_deref()
                .filter(|m| !m.trim().is_empty())
            {
                let path = write_memory(manifest, &req.workdir, memory, MemoryMode::Write)
                    .map_err(|e| Error::service("writing the memory file", e))?;
                if let Ok(rel) = path.strip_prefix(&req.workdir) {
                    keep_out.push(rel.display().to_string());
                }
            }
            super::excludes::exclude_in_repo(&req.workdir, &keep_out)?;
            let adapter = manifest
                .adapter(&spec.policy)
                .map_err(|e| Error::service("building the agent's detection rules", e))?;
            let mut cfg = SpawnConfig::with_adapter(Arc::new(adapter));
            if let (Some(ep), Some(id)) = (hooks, &session_id) {
                cfg = cfg.id(id.clone());
                lock(&self.state)
                    .hooks
                    .insert(id.clone(), (ep, agent, preset));
                prepared.hook_id = Some(id.clone());
            }
            // The program preflight found is the one that runs (made absolute: the session's
            // working directory is not ours).
            cfg.command = if spec.command == manifest.command {
                std::path::absolute(&program)
                    .unwrap_or(program)
                    .display()
                    .to_string()
            } else {
                spec.command.clone()
            };
            cfg.args = spec.args.clone();
            for (k, v) in &spec.env {
                cfg = cfg.env(k.clone(), v.clone());
            }
            if let TaskDelivery::TypeAfterReady {
                text,
                post_ready_delay_ms,
                ..
            } = &spec.task
            {
                pending_task = Some(text.clone());
                post_ready_ms = *post_ready_delay_ms;
            }
            cfg
        };
        // Stall detection is on for plugin sessions (BEHAVIOR.md §5.1); a classifier, when one is
        // installed, is asked about stalls, and its suggestions are reported, never typed.
        cfg = cfg.detection(pty_manager::DetectionOptions {
            stall: pty_manager::StallConfig {
                enabled: true,
                timeout_ms: self.config.stall_timeout_ms,
                ..pty_manager::StallConfig::default()
            },
            ..pty_manager::DetectionOptions::default()
        });
        cfg = cfg.cwd(&req.workdir);
        if let Some(name) = &req.name {
            cfg = cfg.name(name.clone());
        }
        for (k, v) in &req.credentials {
            cfg = cfg.env(k.clone(), v.expose().to_string());
        }
        // A capture subscribes before the program starts, so it records from the first byte.
        let (info, capture) = slot
            .spawn(|| match &self.config.debug_capture_dir {
                Some(root) => self
                    .manager
                    .spawn_attached(cfg)
                    .map(|(info, att)| (info, Some((att, root)))),
                None => self.manager.spawn(cfg).map(|info| (info, None)),
            })
            .map_err(|e| Error::service("spawning the session", e))?;
        prepared.started = true;
        if let Some((att, root)) = capture
            && let Err(e) = super::capture::start(att, &info.id, root)
        {
            // The session runs either way; the person who asked for captures is told.
            eprintln!("PARALLAX_DEBUG_CAPTURE: {e}");
        }
        {
            let mut st = lock(&self.state);
            st.spawned.push(info.id.clone());
            if let Some(p) = private {
                st.private_dirs.insert(info.id.clone(), p);
            }
            st.reported.insert(
                info.id.clone(),
                (
                    req.name.clone().unwrap_or_else(|| info.id.clone()),
                    req.supervised,
                ),
            );
        }
        // A program that ended at once (bad credentials, a crash at start) may have been
        // reported stopped before it was recorded here: what its stop drops is dropped now
        // (doing it twice is harmless).
        if !self.manager.get(&info.id).is_ok_and(|s| s.status.is_live()) {
            let dir = lock(&self.state).ended(&info.id);
            if let Some(dir) = dir {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        if req.supervised {
            let observer = lock(&self.sink).clone();
            if let Some(o) = observer {
                o.registered(crate::supervision::TaskSpec {
                    session_id: info.id.clone(),
                    label: req.name.clone().unwrap_or_else(|| info.id.clone()),
                    task: req.initial_task.clone().unwrap_or_default(),
                    workdir: req.workdir.clone(),
                    repo: None,
                });
            }
        }
        // The task is typed once the session is ready (BEHAVIOR.md §2.3), also a shell's: typed
        // before its prompt, the terminal echoed it and the shell's line editor showed it again.
        // A session still starting after 30 s gets it anyway; a blocked or authenticating one
        // waits for ready; a stopped one never gets it.
        if let Some(task) = pending_task.filter(|t| !t.trim().is_empty()) {
            let timing = pty_console::TaskTiming {
                post_ready: Duration::from_millis(post_ready_ms.min(5_000)),
                ..pty_console::TaskTiming::default()
            };
            let (m, n, id) = (
                Arc::downgrade(&self.manager),
                self.notify.clone(),
                info.id.clone(),
            );
            std::thread::spawn(move || {
                if let Err(e) = pty_console::wait_ready_and_send(&m, &id, &task, timing) {
                    n(&format!("Failed to send to agent: {e}"));
                }
            });
        }
        Ok(self.to_info(self.manager.get(&info.id).unwrap_or(info)))
    }

    fn send_to_session(&self, id: &str, input: &str) -> Result<()> {
        // Back-to-back sends are safe: the manager queues a send behind the previous one's pending
        // Enter, so two messages never merge into one line.
        self.manager.send(id, input).map_err(|e| map_err(id, e))?;
        Ok(())
    }

    fn send_keys(&self, id: &str, keys: &[String]) -> Result<()> {
        self.manager.send_keys(id, keys).map_err(|e| map_err(id, e))
    }

    fn get_session(&self, id: &str) -> Option<SessionInfo> {
        self.manager.get(id).ok().map(|s| self.to_info(s))
    }

    fn list_sessions(&self) -> Vec<SessionInfo> {
        // Sessions spawned here (stopped ones included), then live ones others started on the
        // same manager (the console's own shell).
        let mut ids = lock(&self.state).spawned.clone();
        for s in self.manager.list(None, None) {
            if !ids.contains(&s.id) {
                ids.push(s.id);
            }
        }
        ids.iter()
            .filter_map(|id| self.manager.get(id).ok())
            .map(|s| self.to_info(s))
            .collect()
    }

    fn stop_session(&self, id: &str, force: bool) -> Result<()> {
        let r = if force {
            self.manager.kill(id)
        } else {
            self.manager.stop(id, None)
        };
        r.map(|_| ()).map_err(|e| map_err(id, e))
    }

    fn mark_completed(&self, id: &str) {
        let mut st = lock(&self.state);
        // A session already forgotten (see `forget_old_stopped`) gets no entry that nothing
        // would remove.
        if st.spawned.iter().any(|s| s == id) {
            st.completed.insert(id.to_string());
        }
    }

    fn output_lines(&self, id: &str, lines: usize) -> Result<Vec<String>> {
        self.manager.logs(id, lines).map_err(|e| map_err(id, e))
    }

    fn raw_output(&self, id: &str) -> Result<Vec<u8>> {
        self.manager.raw_output(id).map_err(|e| map_err(id, e))
    }

    fn hook(&self, session_id: &str, token: &str, body: &[u8]) -> (u16, serde_json::Value) {
        use serde_json::json;
        let not_found = || {
            (
                200,
                json!({"status": "ignored", "reason": "session_not_found"}),
            )
        };
        // Only a session launched with hook telemetry has a token to check: any other id (a
        // shell, the console's sessions, no session at all) gets the same answer, so the route,
        // open without the console's token, does not tell which sessions exist. Hook sessions'
        // ids are random.
        let entry = lock(&self.state).hooks.get(session_id).cloned();
        let Some((ep, agent, preset)) = entry else {
            return not_found();
        };
        if !ep.token_matches(token) {
            return (401, json!({"error": "Invalid hook token"}));
        }
        if self.manager.get(session_id).is_err() {
            return not_found();
        }
        let report = match parse_hook(body) {
            Ok(ParsedHook::Event(r)) => r,
            Ok(ParsedHook::UnknownEvent(_)) => {
                return (200, json!({"status": "ignored", "reason": "unknown_event"}));
            }
            Err(coding_agent_adapters::Error::InvalidHook(m)) => return (400, json!({"error": m})),
            Err(e) => return (400, json!({"error": e.to_string()})),
        };
        let outcome = respond_hook(agent, &report, Some(preset));
        let event = match outcome.effect {
            HookEffect::ToolRunning { tool, .. } => {
                pty_manager::HookEvent::ToolStarted { name: tool }
            }
            HookEffect::CheckPrompt => pty_manager::HookEvent::Permission,
            HookEffect::TurnEnd { error } => pty_manager::HookEvent::TurnEnded { error },
            HookEffect::Note => pty_manager::HookEvent::SessionEnded,
            _ => pty_manager::HookEvent::Activity,
        };
        if let Err(e) = self.manager.hook(session_id, event) {
            return (500, json!({"error": e.to_string()}));
        }
        (200, outcome.reply)
    }

    fn audit(&self, id: &str) -> Result<Vec<serde_json::Value>> {
        self.manager.get(id).map_err(|e| map_err(id, e))?;
        Ok(lock(&self.state).audit.get(id).cloned().unwrap_or_default())
    }

    fn stall_count(&self, id: &str) -> u64 {
        lock(&self.state).stalls.get(id).copied().unwrap_or(0)
    }

    /// Agent CLIs found on the search path, in the registry's order (no version run: this is
    /// asked at every `ranked` spawn).
    fn installed_agents(&self) -> Vec<String> {
        let Some(registry) = self
            .registry
            .as_ref()
            .filter(|_| self.config.register_coding_adapters)
        else {
            return Vec::new();
        };
        AgentType::ALL
            .iter()
            .filter(|a| self.find_on_path(&registry.get(**a).command).is_some())
            .map(|a| a.as_str().to_string())
            .collect()
    }
}

fn map_err(id: &str, e: pty_manager::Error) -> Error {
    if matches!(e, pty_manager::Error::SessionNotFound(_)) {
        return Error::SessionNotFound(id.to_string());
    }
    Error::Service {
        context: format!("session {id}"),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_private_root_is_a_fresh_directory_of_ours_in_a_safe_place() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let tmp = std::env::temp_dir();
        // A runtime dir others may write is not used.
        let open_runtime = tmp.join(format!("ao-open-runtime-{}", crate::actions::new_id()));
        std::fs::create_dir(&open_runtime).unwrap();
        std::fs::set_permissions(&open_runtime, std::fs::Permissions::from_mode(0o777)).unwrap();
        let a = make_private_root(Some(open_runtime.as_os_str()))
            .unwrap()
            .path;
        let b = make_private_root(None).unwrap().path;
        // A private runtime dir of ours is used.
        let runtime = tmp.join(format!("ao-runtime-{}", crate::actions::new_id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&runtime)
            .unwrap();
        let c = make_private_root(Some(runtime.as_os_str())).unwrap().path;
        // A relative one is not.
        let d = make_private_root(Some(std::ffi::OsStr::new("relative/dir")))
            .unwrap()
            .path;
        for dir in [&a, &b, &d] {
            assert_eq!(dir.parent(), Some(tmp.as_path()), "{}", dir.display());
        }
        assert_eq!(c.parent(), Some(runtime.as_path()));
        assert!(a != b && a != d && b != d);
        for dir in [&a, &b, &c, &d] {
            let m = std::fs::symlink_metadata(dir).unwrap();
            assert!(m.is_dir());
            assert_eq!(m.uid(), euid());
            assert_eq!(m.mode() & 0o777, 0o700, "{}", dir.display());
            std::fs::remove_dir(dir).unwrap();
        }
        for dir in [&open_runtime, &runtime] {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// A name that exists already (here a symbolic link someone planted to a directory of
    /// theirs, and a directory) is passed over, and what it points to is left alone.
    #[test]
    fn an_existing_name_is_never_used_as_the_private_root() {
        let base = std::env::temp_dir().join(format!("ao-names-{}", crate::actions::new_id()));
        let theirs = base.join("theirs");
        std::fs::create_dir_all(&theirs).unwrap();
        std::os::unix::fs::symlink(&theirs, base.join("one")).unwrap();
        std::fs::create_dir(base.join("two")).unwrap();
        let names = ["one", "two", "three"].map(String::from);
        let root = make_private_root_in(&base, names.into_iter()).unwrap();
        assert_eq!(root.path, base.join("three"));
        assert!(root.intact());
        assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);
        let names = ["one", "two"].map(String::from);
        let err = make_private_root_in(&base, names.into_iter()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        let _ = std::fs::remove_dir_all(&base);
    }

    /// The root is checked before each use: removed (a temp-dir cleaner) and made again by
    /// someone else under the same name, it is not used; a new one is made.
    #[test]
    fn a_private_root_that_was_replaced_is_not_used_again() {
        use std::os::unix::fs::PermissionsExt;
        let pty = ManagedPty::start(PtyServiceConfig::default(), |_| {}).unwrap();
        let first = pty.private_dir().unwrap();
        let root = first.parent().unwrap().to_path_buf();
        let second = pty.private_dir().unwrap();
        assert_eq!(second.parent(), Some(root.as_path()), "kept while intact");
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let third = pty.private_dir().unwrap();
        assert_ne!(third.parent(), Some(root.as_path()));
        assert_eq!(
            std::fs::read_dir(&root).unwrap().count(),
            0,
            "nothing made in theirs"
        );
        drop(pty);
        assert!(root.is_dir(), "the replacement is not ours to remove");
        assert!(!third.exists(), "ours is removed with the service");
        std::fs::remove_dir(&root).unwrap();
    }

    /// An agent that exits at once (bad credentials, a crash at start) leaves no private
    /// directory (with its settings and hook token) behind, even when its stop is reported
    /// before the spawn recorded the directory.
    #[test]
    fn an_agent_that_exits_at_once_leaves_no_private_directory() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = std::env::temp_dir().join(format!("ao-quick-exit-{}", crate::actions::new_id()));
        let bin = tmp.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("aider"), "#!/bin/sh\nexit 3\n").unwrap();
        std::fs::set_permissions(bin.join("aider"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let pty = ManagedPty::start(PtyServiceConfig::default(), |_| {})
            .unwrap()
            .with_search_path(bin.display().to_string());
        for _ in 0..10 {
            let s = pty
                .spawn_session(SpawnRequest {
                    agent_type: "aider".into(),
                    workdir: tmp.clone(),
                    ..SpawnRequest::default()
                })
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while pty.manager.get(&s.id).unwrap().status.is_live() {
                assert!(Instant::now() < deadline, "the fake agent never exited");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // The watcher handles the last stop events on its own thread.
        let root = lock(&pty.private_root).clone().unwrap().path;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = std::fs::read_dir(&root).unwrap().count();
            let recorded = lock(&pty.state).private_dirs.len();
            if left == 0 && recorded == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{left} private directories left, {recorded} recorded"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(pty);
        let _ = std::fs::remove_dir_all(&tmp);
    }

    /// One raw HTTP/1.1 request over loopback; the status and the body (JSON when it parses).
    fn http(
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split_once("\r\n\r\n").unwrap().1;
        (status, serde_json::from_str(body).unwrap_or(json!(body)))
    }

    /// A shell session whose hook endpoint is registered as a Claude session's would be, with
    /// `token` and the `readonly` preset (a real Claude spawn needs the CLI on PATH).
    fn shell_with_claude_hook(pty: &ManagedPty, token: &str) -> SessionInfo {
        let info = pty
            .spawn_session(SpawnRequest {
                agent_type: "shell".into(),
                workdir: std::env::temp_dir(),
                ..SpawnRequest::default()
            })
            .unwrap();
        let ep = HookEndpoint::new(
            "http://127.0.0.1:9/api/coding-agents/hooks",
            info.id.clone(),
            token,
        )
        .unwrap();
        lock(&pty.state).hooks.insert(
            info.id.clone(),
            (ep, AgentType::Claude, ApprovalPreset::Readonly),
        );
        info
    }

    /// Through the real console server on 127.0.0.1:0, with no console token: the session's hook
    /// token alone gets the hook in; a wrong or missing one is 401; other methods 405.
    #[test]
    fn hooks_pass_the_console_server_on_the_session_token_alone() {
        let manager = Arc::new(PtyManager::new().unwrap());
        let pty = Arc::new(
            ManagedPty::with_manager(manager.clone(), PtyServiceConfig::default(), |_| {}).unwrap(),
        );
        let token = "fedcba9876543210fedcba9876543210";
        let info = shell_with_claude_hook(&pty, token);
        let runtime =
            crate::runtime::StandaloneRuntime::new(crate::runtime::SettingsStore::from_pairs::<
                String,
                String,
            >([]))
            .unwrap()
            .with_pty(pty.clone());
        let api: Arc<dyn pty_console::Routes> =
            Arc::new(crate::http_api::HttpApi::new(Arc::new(runtime), None));
        let console =
            pty_console::Console::new(manager, Arc::new(pty_console::ShellLauncher)).unwrap();
        let server = pty_console::ConsoleServer::start(
            console,
            pty_console::ServerConfig::default(),
            vec![api],
        )
        .unwrap();
        let addr = server.http_addr();
        let id = info.id.as_str();
        let body = br#"{"hook_event_name":"PreToolUse","tool_name":"Write","tool_input":{}}"#;
        let denied = json!({"hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "Write is not allowed by the readonly approval preset"
        }});
        let bad = json!({"error": "Invalid hook token"});
        let ignored = json!({"status": "ignored", "reason": "session_not_found"});
        let sid = "X-Parallax-Session-Id";
        let tok = "X-Parallax-Hook-Token";
        type Row<'a> = (
            &'a str,
            &'a [(&'a str, &'a str)],
            u16,
            &'a serde_json::Value,
        );
        // A session without hook telemetry (a plain shell): answered like an unknown id.
        let plain = pty
            .spawn_session(SpawnRequest {
                agent_type: "shell".into(),
                workdir: std::env::temp_dir(),
                ..SpawnRequest::default()
            })
            .unwrap();
        let table: [Row; 8] = [
            ("POST", &[(sid, id), (tok, token)], 200, &denied),
            (
                "POST",
                &[(sid, id), (tok, "0123456789abcdef0123456789abcdef")],
                401,
                &bad,
            ),
            ("POST", &[(sid, id), (tok, "")], 401, &bad),
            ("POST", &[(sid, id)], 401, &bad),
            (
                "POST",
                &[(sid, "no-such-session"), (tok, token)],
                200,
                &ignored,
            ),
            ("POST", &[(sid, &plain.id), (tok, token)], 200, &ignored),
            // No token at all is refused before any lookup, whatever the id.
            ("POST", &[(sid, &plain.id)], 401, &bad),
            (
                "GET",
                &[(sid, id), (tok, token)],
                405,
                &json!({"error": "Method not allowed"}),
            ),
        ];
        for (method, headers, status, reply) in table {
            assert_eq!(
                http(addr, method, crate::http_api::HOOKS_PATH, headers, body),
                (status, reply.clone()),
                "{method} {headers:?}"
            );
        }
        // The console token is still needed next door.
        let (status, _) = http(
            addr,
            "GET",
            "/api/coding-agents",
            &[(sid, id), (tok, token)],
            b"",
        );
        assert_eq!(status, 401);
    }

    #[test]
    fn hooks_need_the_sessions_token_and_reply_by_preset() {
        let pty = ManagedPty::start(PtyServiceConfig::default(), |_| {}).unwrap();
        let token = "0123456789abcdef0123456789abcdef";
        let info = shell_with_claude_hook(&pty, token);
        let body = br#"{"hook_event_name":"PreToolUse","tool_name":"Write","tool_input":{}}"#;
        let table: [(&str, &str, &[u8], u16, serde_json::Value); 6] = [
            (
                "nope",
                token,
                body,
                200,
                json!({"status": "ignored", "reason": "session_not_found"}),
            ),
            (
                &info.id,
                "wrong-token-wrong-token-wrong!!",
                body,
                401,
                json!({"error": "Invalid hook token"}),
            ),
            (
                &info.id,
                "",
                body,
                401,
                json!({"error": "Invalid hook token"}),
            ),
            (
                &info.id,
                token,
                b"{}",
                400,
                json!({"error": "Missing hook_event_name"}),
            ),
            (
                &info.id,
                token,
                br#"{"hook_event_name":"Bogus"}"#,
                200,
                json!({"status": "ignored", "reason": "unknown_event"}),
            ),
            (
                &info.id,
                token,
                body,
                200,
                json!({"hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": "deny",
                    "permissionDecisionReason": "Write is not allowed by the readonly approval preset"
                }}),
            ),
        ];
        for (id, tok, body, status, reply) in table {
            let (s, r) = pty.hook(id, tok, body);
            assert_eq!(
                (s, &r),
                (status, &reply),
                "{id} {tok} {}",
                String::from_utf8_lossy(body)
            );
        }
        pty.stop_session(&info.id, true).unwrap();
    }
}
