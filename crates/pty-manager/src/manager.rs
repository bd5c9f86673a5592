//! The public handle: [`PtyManager`] starts sessions, answers queries and forwards input to the
//! reactor thread.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, sync_channel};

use crate::queue::{QueueReceiver, queue};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::events::{SessionInfo, SessionMetrics, now_ms};
use crate::reactor::{Command, Live, Reactor, Reply, SessionState, Shared};
use crate::{Error, Result, ScreenSnapshot, SessionEvent, SessionStatus, env, keys, pty};

/// Default grace between `SIGTERM` and `SIGKILL` in [`PtyManager::stop`] (BEHAVIOR.md §2.1).
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_millis(5000);

/// How long a stop waits for a session another thread is spawning to be registered (its spawn
/// call is between starting the program and handing it to the reactor: about a millisecond).
const REGISTER_WAIT: Duration = Duration::from_secs(10);

/// A stop's grace: none or zero is the default (BEHAVIOR.md §6.2).
fn stop_grace(grace: Option<Duration>) -> Duration {
    grace.filter(|g| !g.is_zero()).unwrap_or(DEFAULT_STOP_GRACE)
}
/// Grace used by [`PtyManager::shutdown`].
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(3000);
/// Chunks a subscriber may have queued before it is told it lagged.
pub const SUBSCRIBER_QUEUE: usize = 1024;
/// Bytes a subscriber may have queued before it is told it lagged (chunks are up to 256 KiB).
pub const SUBSCRIBER_BYTES: usize = 16 << 20;
/// Events an event receiver may have queued; beyond that it misses events (the reactor never waits).
pub const EVENT_QUEUE: usize = 16_384;

/// What to run in a new session. Build it with [`SpawnConfig::new`] and the setters; fields are
/// public for reading and for crates that add adapter settings.
///
/// ```
/// use pty_manager::SpawnConfig;
/// let cfg = SpawnConfig::new("/bin/sh").args(["-c", "echo hi"]).size(80, 24).id("demo-1");
/// assert_eq!(cfg.cols, 80);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SpawnConfig {
    /// Session id; generated (`pty-<unix ms>-<8 hex>`) when `None`.
    pub id: Option<String>,
    /// Display name (defaults to the id).
    pub name: Option<String>,
    /// Adapter type (`shell` by default).
    pub agent_type: String,
    /// Program, looked up on the child's `PATH`.
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Working directory (must exist); the manager's current directory when `None`.
    pub cwd: Option<PathBuf>,
    /// Variables to set (they win over the inherited ones).
    pub env: Vec<(String, String)>,
    /// Extra parent variables to pass through by name.
    pub pass_env: Vec<String>,
    /// Inherit the whole parent environment (off by default: secrets stay in the parent).
    pub inherit_env: bool,
    /// Columns (default 120).
    pub cols: u16,
    /// Rows (default 40).
    pub rows: u16,
    /// Lower bound of the delay before Enter in `send` (BEHAVIOR.md §2.1 `enter_delay`).
    pub min_enter_delay: Duration,
    /// Highlight glyph of the selected menu option (`❯`, `›`, …), for `select_menu_option`.
    pub menu_marker: Option<String>,
    /// Rows of scrollback kept by the screen model.
    pub scrollback: usize,
    /// Bytes kept in the raw output ring.
    pub ring_bytes: usize,
    /// The adapter whose rules read this session's screen. Without one the session runs with no
    /// detection (it stays `starting`/`busy` as the core sets it; nothing is ever answered).
    pub adapter: Option<Arc<dyn crate::Adapter>>,
    /// Detection settings (stall, auto-response policy, session rules).
    pub detection: crate::DetectionOptions,
}

impl Default for SpawnConfig {
    fn default() -> Self {
        SpawnConfig {
            id: None,
            name: None,
            agent_type: "shell".to_owned(),
            command: String::new(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            pass_env: Vec::new(),
            inherit_env: false,
            cols: 120,
            rows: 40,
            min_enter_delay: Duration::from_millis(50),
            menu_marker: None,
            scrollback: crate::screen::DEFAULT_SCROLLBACK,
            ring_bytes: crate::ring::DEFAULT_RING_BYTES,
            adapter: None,
            detection: crate::DetectionOptions::default(),
        }
    }
}

impl SpawnConfig {
    /// Runs `command` with the defaults.
    pub fn new(command: impl Into<String>) -> Self {
        SpawnConfig {
            command: command.into(),
            ..Default::default()
        }
    }
    /// Sets the session id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Sets the adapter type.
    pub fn agent_type(mut self, t: impl Into<String>) -> Self {
        self.agent_type = t.into();
        self
    }
    /// Sets the arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the working directory.
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }
    /// Sets one environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    /// Passes one parent variable through by name.
    pub fn pass_env(mut self, name: impl Into<String>) -> Self {
        self.pass_env.push(name.into());
        self
    }
    /// Inherits the whole parent environment.
    pub fn inherit_env(mut self, inherit: bool) -> Self {
        self.inherit_env = inherit;
        self
    }
    /// Sets the terminal size.
    pub fn size(mut self, cols: u16, rows: u16) -> Self {
        self.cols = cols;
        self.rows = rows;
        self
    }
    /// Sets the minimum Enter delay of `send`.
    pub fn min_enter_delay(mut self, d: Duration) -> Self {
        self.min_enter_delay = d;
        self
    }
    /// Sets the menu highlight glyph.
    pub fn menu_marker(mut self, marker: impl Into<String>) -> Self {
        self.menu_marker = Some(marker.into());
        self
    }
    /// A session of this adapter: its command, arguments, fixed environment, type, Enter delay and
    /// menu marker, and its detection rules.
    ///
    /// ```
    /// use pty_manager::{ShellAdapter, SpawnConfig};
    /// use std::sync::Arc;
    /// let cfg = SpawnConfig::with_adapter(Arc::new(ShellAdapter::with_shell("/bin/bash")));
    /// assert_eq!(cfg.command, "/bin/bash");
    /// assert_eq!(cfg.agent_type, "shell");
    /// ```
    pub fn with_adapter(adapter: Arc<dyn crate::Adapter>) -> Self {
        SpawnConfig {
            agent_type: adapter.agent_type().to_owned(),
            command: adapter.command(),
            args: adapter.args(),
            env: adapter.env(),
            min_enter_delay: Duration::from_millis(adapter.min_enter_delay_ms()),
            menu_marker: adapter.menu_marker(),
            adapter: Some(adapter),
            ..Default::default()
        }
    }
    /// Sets the detection settings.
    pub fn detection(mut self, options: crate::DetectionOptions) -> Self {
        self.detection = options;
        self
    }
}

/// One delivery to an output subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputChunk {
    /// Raw output bytes, in order.
    Data(Arc<[u8]>),
    /// The subscriber was too slow and missed this much output before the next chunk.
    Lagged {
        /// Chunks dropped.
        dropped_chunks: u64,
        /// Bytes in them.
        dropped_bytes: u64,
    },
}

/// A late joiner's view: paint `initial`, then apply `output` chunks. No byte is missing or doubled
/// between the two (they are taken under one lock). The stream ends (the receiver disconnects)
/// after the session's last output.
#[derive(Debug)]
pub struct Attachment {
    /// Bytes painting the current screen (see [`crate::Screen::formatted_state`]).
    pub initial: Vec<u8>,
    /// Live output.
    pub output: QueueReceiver<OutputChunk>,
}

/// Runs programs in pseudo-terminals on one reactor thread.
///
/// Dropping the manager kills every process group it started and waits for them.
///
/// ```no_run
/// use pty_manager::{PtyManager, SpawnConfig};
/// let mgr = PtyManager::new().unwrap();
/// let s = mgr.spawn(SpawnConfig::new("/bin/cat")).unwrap();
/// mgr.write_raw(&s.id, b"hello\r").unwrap();
/// ```
pub struct PtyManager {
    shared: Arc<Shared>,
    tx: Sender<Command>,
    waker: Arc<mio::Waker>,
    thread: Option<JoinHandle<()>>,
    ids: AtomicU64,
    random: RandomState,
}

impl std::fmt::Debug for PtyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyManager").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl PtyManager {
    /// Starts the reactor thread. The process's descriptor table is grown to 1024 slots (or the
    /// soft `RLIMIT_NOFILE`) first, so that spawns do not stall on growing it later.
    pub fn new() -> Result<Self> {
        crate::pty::reserve_fd_table();
        let shared = Arc::new(Shared::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let (reactor, waker) = Reactor::new(shared.clone(), rx).map_err(|source| Error::Io {
            context: "creating the reactor poll".to_owned(),
            source,
        })?;
        let thread = std::thread::Builder::new()
            .name("pty-reactor".to_owned())
            .spawn(move || reactor.run())
            .map_err(|source| Error::Io {
                context: "starting the reactor thread".to_owned(),
                source,
            })?;
        Ok(PtyManager {
            shared,
            tx,
            waker,
            thread: Some(thread),
            ids: AtomicU64::new(0),
            random: RandomState::new(),
        })
    }

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (reply, rx) = sync_channel(1);
        self.submit(make(reply))?;
        rx.recv().map_err(|_| Error::ManagerClosed)?
    }

    fn submit(&self, cmd: Command) -> Result<()> {
        self.tx.send(cmd).map_err(|_| Error::ManagerClosed)?;
        self.waker.wake().map_err(|source| Error::Io {
            context: "waking the reactor".to_owned(),
            source,
        })
    }

    fn generate_id(&self) -> String {
        let mut h = self.random.build_hasher();
        h.write_u64(self.ids.fetch_add(1, Ordering::Relaxed));
        format!("pty-{}-{:08x}", now_ms(), h.finish() as u32)
    }

    /// Starts `cfg.command` in a new PTY. Returns the handle (status `starting`). A missing
    /// program or working directory, a zero size or a taken id is an error and leaves nothing.
    pub fn spawn(&self, cfg: SpawnConfig) -> Result<SessionInfo> {
        self.spawn_with(cfg, None)
    }

    /// [`PtyManager::spawn`], with an output subscriber that gets every byte from the program's
    /// first. [`PtyManager::attach`] right after `spawn` can miss what the program printed before
    /// it (the late joiner gets that as the painted screen instead); use this for logs and
    /// captures that must be complete. The attachment's `initial` is empty.
    ///
    /// ```
    /// use pty_manager::{OutputChunk, PtyManager, SpawnConfig};
    /// use std::time::Duration;
    /// let mgr = PtyManager::new().unwrap();
    /// let (s, att) = mgr
    ///     .spawn_attached(SpawnConfig::new("echo").args(["hello"]))
    ///     .unwrap();
    /// let mut out = Vec::new();
    /// // The stream ends once the program has exited and its output is delivered.
    /// while let Ok(chunk) = att.output.recv_timeout(Duration::from_secs(10)) {
    ///     if let OutputChunk::Data(d) = chunk {
    ///         out.extend_from_slice(&d);
    ///     }
    /// }
    /// assert_eq!(out, b"hello\r\n");
    /// assert_eq!(mgr.get(&s.id).unwrap().exit.and_then(|e| e.code), Some(0));
    /// ```
    pub fn spawn_attached(&self, cfg: SpawnConfig) -> Result<(SessionInfo, Attachment)> {
        let (tx, rx) = queue(SUBSCRIBER_QUEUE, SUBSCRIBER_BYTES);
        let info = self.spawn_with(cfg, Some(tx))?;
        Ok((
            info,
            Attachment {
                initial: Vec::new(),
                output: rx,
            },
        ))
    }

    fn spawn_with(
        &self,
        cfg: SpawnConfig,
        subscriber: Option<crate::queue::QueueSender<OutputChunk>>,
    ) -> Result<SessionInfo> {
        if cfg.cols == 0 || cfg.rows == 0 {
            return Err(Error::InvalidSize {
                cols: cfg.cols,
                rows: cfg.rows,
            });
        }
        cfg.detection.validate()?;
        let id = match &cfg.id {
            Some(id) if !valid_id(id) => return Err(Error::InvalidId(id.clone())),
            Some(id) => id.clone(),
            None => self.generate_id(),
        };
        let cwd = match &cfg.cwd {
            Some(c) => c.clone(),
            None => std::env::current_dir().map_err(|source| Error::Io {
                context: "reading the current directory".to_owned(),
                source,
            })?,
        };
        let info = SessionInfo {
            id: id.clone(),
            name: cfg.name.clone().unwrap_or_else(|| id.clone()),
            agent_type: cfg.agent_type.clone(),
            status: SessionStatus::Pending,
            pid: None,
            workdir: cwd.clone(),
            started_at_ms: now_ms(),
            last_activity_ms: now_ms(),
            turn: 0,
            stalled: false,
            loading: false,
            tool: None,
            prompt: None,
            exit: None,
        };
        let mut state = SessionState::new(info, &cfg);
        // Subscribed before the program starts, so nothing it prints is missed.
        state
            .subscribers
            .extend(subscriber.map(|tx| crate::reactor::Subscriber::new(tx, 0)));
        let state = Arc::new(Mutex::new(state));
        let replaced = {
            let mut table = lock(&self.shared.table);
            if table
                .get(&id)
                .is_some_and(|old| lock(old).info.status.is_live())
            {
                return Err(Error::SessionExists(id));
            }
            // A stopped session of that id is replaced; kept until the spawn succeeds.
            table.insert(id.clone(), state.clone())
        };
        let env = env::build(
            std::env::vars_os(),
            cfg.inherit_env,
            &cfg.pass_env,
            &cfg.env,
            &id,
        );
        let spawned = pty::spawn(&pty::Program {
            command: &cfg.command,
            args: &cfg.args,
            cwd: &cwd,
            env: &env,
            cols: cfg.cols,
            rows: cfg.rows,
        });
        let spawned = match spawned {
            Ok(s) => s,
            Err(e) => {
                // Nothing of the failed spawn stays behind, and the stopped session it would have
                // replaced stays queryable.
                let mut table = lock(&self.shared.table);
                if table.get(&id).is_some_and(|s| Arc::ptr_eq(s, &state)) {
                    match replaced {
                        Some(old) => table.insert(id.clone(), old),
                        None => table.remove(&id),
                    };
                }
                return Err(e);
            }
        };
        let info = {
            let mut st = lock(&state);
            st.info.pid = Some(spawned.child.id());
            st.info.status = SessionStatus::Starting;
            st.info.started_at_ms = now_ms();
            st.metrics.pid = st.info.pid;
            st.metrics.started_at_ms = st.info.started_at_ms;
            st.info.clone()
        };
        // If the reactor is gone the command (and the child in it) is dropped, which kills it.
        self.submit(Command::Register(Box::new(Live::new(
            id, state, spawned, &cfg,
        ))))?;
        Ok(info)
    }

    fn state(&self, id: &str) -> Result<Arc<Mutex<SessionState>>> {
        lock(&self.shared.table)
            .get(id)
            .cloned()
            .ok_or_else(|| Error::SessionNotFound(id.to_owned()))
    }

    /// Live sessions (not yet stopped), optionally only those with `status` and/or `agent_type`,
    /// oldest first.
    pub fn list(
        &self,
        status: Option<SessionStatus>,
        agent_type: Option<&str>,
    ) -> Vec<SessionInfo> {
        let mut out: Vec<SessionInfo> = lock(&self.shared.table)
            .values()
            .map(|s| lock(s).info.clone())
            .filter(|i| i.status.is_live())
            .filter(|i| status.is_none_or(|s| i.status == s))
            .filter(|i| agent_type.is_none_or(|t| i.agent_type == t))
            .collect();
        out.sort_by(|a, b| (a.started_at_ms, &a.id).cmp(&(b.started_at_ms, &b.id)));
        out
    }

    /// A session's handle, live or stopped (stopped ones stay until [`PtyManager::remove`]).
    pub fn get(&self, id: &str) -> Result<SessionInfo> {
        Ok(lock(&*self.state(id)?).info.clone())
    }

    /// Whether a live session has this id.
    pub fn has(&self, id: &str) -> bool {
        self.state(id)
            .map(|s| lock(&s).info.status.is_live())
            .unwrap_or(false)
    }

    /// Forgets a stopped session's tombstone. A live session is not removed (stop it first).
    pub fn remove(&self, id: &str) -> Result<SessionInfo> {
        let mut table = lock(&self.shared.table);
        let state = table
            .get(id)
            .cloned()
            .ok_or_else(|| Error::SessionNotFound(id.to_owned()))?;
        let info = lock(&state).info.clone();
        if info.status.is_live() {
            return Err(Error::SessionExists(id.to_owned()));
        }
        table.remove(id);
        Ok(info)
    }

    /// Sessions per status, every status present (zero-filled), stopped tombstones included.
    pub fn status_counts(&self) -> BTreeMap<SessionStatus, usize> {
        let mut counts: BTreeMap<SessionStatus, usize> =
            SessionStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for s in lock(&self.shared.table).values() {
            *counts.entry(lock(s).info.status).or_default() += 1;
        }
        counts
    }

    /// The last `tail` lines of output as plain text (from the raw ring).
    pub fn logs(&self, id: &str, tail: usize) -> Result<Vec<String>> {
        Ok(lock(&*self.state(id)?).ring.tail_lines(tail))
    }

    /// The raw bytes kept in the session's output ring (the newest 1 MiB by default).
    pub fn raw_output(&self, id: &str) -> Result<Vec<u8>> {
        Ok(lock(&*self.state(id)?).ring.contents())
    }

    /// Counters of a session.
    pub fn metrics(&self, id: &str) -> Result<SessionMetrics> {
        Ok(lock(&*self.state(id)?).metrics.clone())
    }

    /// What the session's screen shows now.
    pub fn snapshot(&self, id: &str) -> Result<ScreenSnapshot> {
        let state = self.state(id)?;
        let mut st = lock(&state);
        st.screen.flush();
        Ok(st.screen.snapshot())
    }

    /// Subscribes to a session's output, starting with the bytes that paint its current screen.
    pub fn attach(&self, id: &str) -> Result<Attachment> {
        let state = self.state(id)?;
        let mut st = lock(&state);
        let (tx, rx) = queue(SUBSCRIBER_QUEUE, SUBSCRIBER_BYTES);
        st.screen.flush();
        let initial = st.screen.formatted_state();
        st.subscribers.retain(|s| !s.is_disconnected());
        if st.info.status.is_live() {
            let skip = st.fed_ahead;
            st.subscribers
                .push(crate::reactor::Subscriber::new(tx, skip));
        }
        Ok(Attachment {
            initial,
            output: rx,
        })
    }

    /// A new receiver of every event from now on (bounded; a receiver that is not drained misses
    /// events rather than slowing the reactor).
    pub fn events(&self) -> QueueReceiver<SessionEvent> {
        let (tx, rx) = queue(EVENT_QUEUE, usize::MAX);
        let mut subs = lock(&self.shared.event_subs);
        subs.retain(|s| !s.is_disconnected());
        subs.push(tx);
        rx
    }

    /// Sends a turn (BEHAVIOR.md §2.3): the text (bracketed paste when multi-line or long and the
    /// program enabled paste mode), Enter after a length-dependent delay as its own write, then a
    /// submit check with up to two more Enters. Status becomes `busy` and the turn advances.
    /// Returns the message id.
    pub fn send(&self, id: &str, text: &str) -> Result<String> {
        self.call(|reply| Command::Send {
            id: id.to_owned(),
            text: text.to_owned(),
            reply,
        })
    }

    /// Sends keys by name, 50 ms apart. The whole list is validated first; an unknown name fails
    /// with [`Error::UnknownKey`] and nothing is written.
    pub fn send_keys<S: AsRef<str>>(&self, id: &str, keys: &[S]) -> Result<()> {
        let names = keys::normalize_keys(keys)?;
        self.call(|reply| Command::Keys {
            id: id.to_owned(),
            names,
            reply,
        })
    }

    /// Pastes text without Enter; bracketed when `bracketed` and the program enabled paste mode.
    pub fn paste(&self, id: &str, text: &str, bracketed: bool) -> Result<()> {
        self.call(|reply| Command::Paste {
            id: id.to_owned(),
            text: text.to_owned(),
            bracketed,
            reply,
        })
    }

    /// Writes bytes as given.
    pub fn write_raw(&self, id: &str, bytes: &[u8]) -> Result<()> {
        self.call(|reply| Command::WriteRaw {
            id: id.to_owned(),
            bytes: bytes.to_vec(),
            reply,
        })
    }

    /// Selects option `index` (0-based) of a menu on screen and presses Enter (BEHAVIOR.md §3.2).
    pub fn select_menu_option(&self, id: &str, index: usize) -> Result<()> {
        self.call(|reply| Command::Menu {
            id: id.to_owned(),
            index,
            reply,
        })
    }

    /// Resizes the PTY and the screen model together. A zero size is an error.
    pub fn resize(&self, id: &str, cols: u16, rows: u16) -> Result<()> {
        if cols == 0 || rows == 0 {
            return Err(Error::InvalidSize { cols, rows });
        }
        self.call(|reply| Command::Resize {
            id: id.to_owned(),
            cols,
            rows,
            reply,
        })
    }

    /// Stops a session: `SIGTERM` (and `SIGHUP`, which interactive shells obey) to its process
    /// group, `SIGKILL` to the group and its session after `grace` (`None` or zero = 5 s, as
    /// BEHAVIOR.md §6.2 has it; [`PtyManager::kill`] kills at once), then reaps.
    /// Returns the final handle once reaped. On an already exited session it returns at once and
    /// signals nothing.
    pub fn stop(&self, id: &str, grace: Option<Duration>) -> Result<SessionInfo> {
        self.stop_session(id, stop_grace(grace), false)
    }

    /// Kills a session's group and session with `SIGKILL` at once, then reaps.
    pub fn kill(&self, id: &str) -> Result<SessionInfo> {
        self.stop_session(id, Duration::ZERO, true)
    }

    /// One stop, also of a session another thread is spawning right now.
    fn stop_session(&self, id: &str, grace: Duration, force: bool) -> Result<SessionInfo> {
        let start = Instant::now();
        loop {
            let info = self.call(|reply| Command::Stop {
                id: id.to_owned(),
                grace,
                force,
                reply,
            })?;
            if !Self::unregistered(&info, start) {
                return Ok(info);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether a stop's answer is that of a session the reactor does not run yet: the reactor
    /// answers a stop of a session it does not run at once, and one that is still live is being
    /// spawned by another thread (its program started, its registration on the way). Such a
    /// stop is sent again until the session is registered (or its spawn failed), for at most
    /// `REGISTER_WAIT`; before, it returned the live handle and signalled nothing.
    fn unregistered(info: &SessionInfo, since: Instant) -> bool {
        info.status.is_live() && since.elapsed() < REGISTER_WAIT
    }

    /// Stops every live session in parallel; returns their final handles.
    pub fn stop_all(&self, grace: Option<Duration>) -> Vec<SessionInfo> {
        let grace = stop_grace(grace);
        let waits: Vec<_> = self
            .list(None, None)
            .into_iter()
            .filter_map(|s| {
                let (reply, rx) = sync_channel(1);
                self.submit(Command::Stop {
                    id: s.id,
                    grace,
                    force: false,
                    reply,
                })
                .ok()
                .map(|_| rx)
            })
            .collect();
        let start = Instant::now();
        waits
            .into_iter()
            .filter_map(|rx| rx.recv().ok().and_then(|r| r.ok()))
            .filter_map(|info| {
                if Self::unregistered(&info, start) {
                    self.stop_session(&info.id, grace, false).ok()
                } else {
                    Some(info)
                }
            })
            .collect()
    }

    fn detect(
        &self,
        id: &str,
        op: crate::reactor::DetectOp,
    ) -> Result<crate::reactor::DetectReply> {
        self.call(|reply| Command::Detect {
            id: id.to_owned(),
            op: Box::new(op),
            reply,
        })
    }

    /// Adds a session auto-response rule (BEHAVIOR.md §4.3): replaces the rule with the same id,
    /// else appends; session rules are matched before the adapter's. Replacing forgets its `once`
    /// state. Only `prompt` rules; the rule must compile.
    pub fn add_rule(&self, id: &str, rule: crate::RuleSpec) -> Result<()> {
        self.detect(id, crate::reactor::DetectOp::AddRule(rule))
            .map(|_| ())
    }

    /// Removes a session rule by id; `false` when there was none. Forgets its `once` state.
    pub fn remove_rule(&self, id: &str, rule_id: &str) -> Result<bool> {
        match self.detect(id, crate::reactor::DetectOp::RemoveRule(rule_id.to_owned()))? {
            crate::reactor::DetectReply::Removed(r) => Ok(r),
            _ => Ok(false),
        }
    }

    /// Replaces every session rule (all compile, or nothing changes).
    pub fn set_rules(&self, id: &str, rules: Vec<crate::RuleSpec>) -> Result<()> {
        self.detect(id, crate::reactor::DetectOp::SetRules(rules))
            .map(|_| ())
    }

    /// A copy of the session rules, in matching order.
    pub fn rules(&self, id: &str) -> Result<Vec<crate::RuleSpec>> {
        match self.detect(id, crate::reactor::DetectOp::Rules)? {
            crate::reactor::DetectReply::Rules(r) => Ok(r),
            _ => Ok(Vec::new()),
        }
    }

    /// Removes every session rule.
    pub fn clear_rules(&self, id: &str) -> Result<()> {
        self.detect(id, crate::reactor::DetectOp::ClearRules)
            .map(|_| ())
    }

    /// The session's audit records of automatic input (BEHAVIOR.md §4.5), oldest first (≤ 200).
    pub fn audit(&self, id: &str) -> Result<Vec<crate::AuditRecord>> {
        match self.detect(id, crate::reactor::DetectOp::Audit)? {
            crate::reactor::DetectReply::Audit(r) => Ok(r),
            _ => Ok(Vec::new()),
        }
    }

    /// Feeds a hook event the agent reported (BEHAVIOR.md §7.9): once hooks have reported they
    /// decide turn end; the screen stays the fallback and the stall timer catches lost hooks.
    pub fn hook(&self, id: &str, event: crate::HookEvent) -> Result<()> {
        self.detect(id, crate::reactor::DetectOp::Hook(event))
            .map(|_| ())
    }

    /// Installs the stall classifier for every session (called on its own thread per stall;
    /// its answer applies only if the session is still in the same turn).
    pub fn set_classifier(&self, classifier: Arc<dyn crate::StallClassifier>) -> Result<()> {
        self.detect(
            "",
            crate::reactor::DetectOp::SetClassifier(
                classifier,
                self.tx.clone(),
                self.waker.clone(),
            ),
        )
        .map(|_| ())
    }

    /// Stops everything (grace 3 s) and forgets every session.
    pub fn shutdown(&self) {
        self.stop_all(Some(SHUTDOWN_GRACE));
        lock(&self.shared.table).clear();
    }
}

impl Drop for PtyManager {
    fn drop(&mut self) {
        // The reactor kills every group it still owns, reaps them, and exits.
        let _ = self.submit(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules() {
        assert!(valid_id("a"));
        assert!(valid_id("agent-1.x_y"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id("../x/y"));
        assert!(!valid_id(&"a".repeat(65)));
    }

    #[test]
    fn a_zero_or_missing_stop_grace_is_the_default() {
        assert_eq!(stop_grace(None), DEFAULT_STOP_GRACE);
        assert_eq!(stop_grace(Some(Duration::ZERO)), DEFAULT_STOP_GRACE);
        assert_eq!(
            stop_grace(Some(Duration::from_millis(10))),
            Duration::from_millis(10)
        );
    }
}
