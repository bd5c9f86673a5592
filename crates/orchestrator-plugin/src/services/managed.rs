//! `PTY_SERVICE` over a real [`pty_manager::PtyManager`] and the agent manifests of
//! `coding-agent-adapters`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coding_agent_adapters::{AgentType, Registry};
use pty_manager::{Adapter, PtyManager, SessionEvent, SessionStatus, ShellAdapter, SpawnConfig};

use super::{PtyService, SessionInfo, SpawnRequest};
use crate::settings::PtyServiceConfig;
use crate::{Error, Result};

type Notify = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
struct State {
    completed: HashSet<String>,
    errors: HashMap<String, String>,
    /// Tasks waiting for their session to become ready.
    pending_tasks: HashMap<String, String>,
    /// Every session spawned here, oldest first (the manager lists only live ones).
    spawned: Vec<String>,
    /// When the Enter of each session's last turn has surely been written.
    enter_due: HashMap<String, Instant>,
}

/// The PTY service of the binary.
pub struct ManagedPty {
    manager: Arc<PtyManager>,
    config: PtyServiceConfig,
    registry: Option<Registry>,
    state: Arc<Mutex<State>>,
    path_var: Option<String>,
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
    /// Starts a manager and a watcher thread that delivers initial tasks once a session is ready
    /// and stops sessions idle past `idleTimeoutMs`, reporting through `notify`.
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
        let (m, s, n) = (Arc::downgrade(&manager), state.clone(), notify.clone());
        let idle_ms = config.idle_timeout_ms;
        std::thread::Builder::new()
            .name("pty-service-watch".into())
            .spawn(move || {
                loop {
                    let ev = events.recv_timeout(Duration::from_secs(1));
                    let Some(manager) = m.upgrade() else { return };
                    match ev {
                        Ok(SessionEvent::StatusChanged {
                            session,
                            to: SessionStatus::Ready,
                            ..
                        }) => {
                            let task = lock(&s).pending_tasks.remove(&session.id);
                            if let Some(task) = task
                                && let Err(e) = manager.send(&session.id, &task)
                            {
                                n(&format!("Failed to send to agent: {e}"));
                            }
                        }
                        Ok(SessionEvent::Error { session, error }) => {
                            lock(&s).errors.insert(session.id.clone(), error.clone());
                            n(&format!("Coding agent encountered an error: {error}"));
                        }
                        Ok(_) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(_) => return,
                    }
                    if idle_ms > 0 {
                        stop_idle(&manager, idle_ms, &n);
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
        })
    }

    /// The underlying manager (for the console server and `run`).
    pub fn manager(&self) -> &Arc<PtyManager> {
        &self.manager
    }

    fn to_info(&self, s: pty_manager::SessionInfo) -> SessionInfo {
        let st = lock(&self.state);
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
            prompt: s.prompt,
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

fn stop_idle(manager: &PtyManager, idle_ms: u64, notify: &Notify) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    for s in manager.list(None, None) {
        let idle = now.saturating_sub(s.last_activity_ms);
        // A blocked session waits for a person; that is not idleness.
        if s.status.is_live() && s.status != SessionStatus::Blocked && idle > idle_ms {
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
        let live = self
            .manager
            .list(None, None)
            .iter()
            .filter(|s| s.status.is_live())
            .count();
        if live >= self.config.max_concurrent_sessions {
            return Err(Error::SessionLimit(self.config.max_concurrent_sessions));
        }
        if !req.workdir.is_dir() {
            return Err(Error::InvalidParameter(format!(
                "workdir {} is not a directory",
                req.workdir.display()
            )));
        }
        let mut cfg = if req.agent_type == "shell" {
            let shell = ShellAdapter::from_env();
            let mut cfg = SpawnConfig::new(shell.command()).args(shell.args());
            for (k, v) in shell.env() {
                cfg = cfg.env(k, v);
            }
            cfg.agent_type("shell")
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
            if self.find_on_path(&manifest.command).is_none() {
                return Err(Error::AgentNotInstalled {
                    display_name: agent.display_name().into(),
                    install_command: manifest.install.command_line(),
                    docs_url: manifest.install.docs.clone(),
                });
            }
            // The adapters crate owns how each CLI is launched (preset flags, hook settings,
            // provider arguments); until its launch builder exists we refuse rather than start a
            // CLI with guessed flags.
            return Err(Error::NotImplemented(format!(
                "launching {} from the plugin (the adapters' launch builder is not available in this build)",
                agent.display_name()
            )));
        };
        cfg = cfg.cwd(&req.workdir);
        if let Some(name) = &req.name {
            cfg = cfg.name(name.clone());
        }
        for (k, v) in &req.credentials {
            cfg = cfg.env(k.clone(), v.expose().to_string());
        }
        let info = self
            .manager
            .spawn(cfg)
            .map_err(|e| Error::service("spawning the session", e))?;
        lock(&self.state).spawned.push(info.id.clone());
        if let Some(task) = req.initial_task.filter(|t| !t.trim().is_empty()) {
            // A shell reads what is typed before its prompt appears, so its command goes now;
            // agent TUIs get their task once detection says they are ready.
            if req.agent_type == "shell" {
                self.manager
                    .send(&info.id, &task)
                    .map_err(|e| Error::service("sending the initial task", e))?;
            } else {
                lock(&self.state)
                    .pending_tasks
                    .insert(info.id.clone(), task);
            }
        }
        Ok(self.to_info(self.manager.get(&info.id).unwrap_or(info)))
    }

    fn send_to_session(&self, id: &str, input: &str) -> Result<()> {
        // The manager writes a turn's Enter after a delay, and a new turn cancels the previous
        // turn's pending timers; two turns sent back to back would lose the first Enter. So a
        // turn waits until the previous one's Enter is out.
        let due = lock(&self.state).enter_due.get(id).copied();
        if let Some(due) = due {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        self.manager.send(id, input).map_err(|e| map_err(id, e))?;
        lock(&self.state)
            .enter_due
            .insert(id.to_string(), Instant::now() + enter_wait(input.len()));
        Ok(())
    }

    fn send_keys(&self, id: &str, keys: &[String]) -> Result<()> {
        self.manager.send_keys(id, keys).map_err(|e| map_err(id, e))
    }

    fn get_session(&self, id: &str) -> Option<SessionInfo> {
        self.manager.get(id).ok().map(|s| self.to_info(s))
    }

    fn list_sessions(&self) -> Vec<SessionInfo> {
        let ids = lock(&self.state).spawned.clone();
        ids.iter()
            .filter_map(|id| self.manager.get(id).ok())
            .map(|s| self.to_info(s))
            .collect()
    }

    fn stop_session(&self, id: &str, force: bool) -> Result<()> {
        lock(&self.state).pending_tasks.remove(id);
        let r = if force {
            self.manager.kill(id)
        } else {
            self.manager.stop(id, None)
        };
        r.map(|_| ()).map_err(|e| map_err(id, e))
    }

    fn mark_completed(&self, id: &str) {
        lock(&self.state).completed.insert(id.to_string());
    }

    fn output_lines(&self, id: &str, lines: usize) -> Result<Vec<String>> {
        self.manager.logs(id, lines).map_err(|e| map_err(id, e))
    }

    fn raw_output(&self, id: &str) -> Result<Vec<u8>> {
        self.manager.raw_output(id).map_err(|e| map_err(id, e))
    }
}

/// An upper bound of the manager's Enter delay (BEHAVIOR.md §2.1: at most 400 ms, or the agent's
/// minimum of up to 500 ms) plus scheduling slack.
fn enter_wait(len: usize) -> Duration {
    let by_len = 50 + 25 * len.div_ceil(1000) as u64;
    Duration::from_millis(by_len.clamp(500, 600) + 150)
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
