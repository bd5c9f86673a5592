//! What the spawn form can start: a [`Launcher`] lists agents and starts sessions. The console
//! ships [`ShellLauncher`] (the built-in shell agent, always available); the binary supplies one
//! that also knows the agent CLIs preflight found.

use std::path::PathBuf;
use std::sync::Arc;

use pty_manager::{Adapter, PtyManager, SessionInfo, ShellAdapter, SpawnConfig};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Longest task text the spawn form accepts.
pub const MAX_TASK_BYTES: usize = 64 * 1024;

/// One entry of the spawn form's agent list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentChoice {
    /// Adapter type (`shell`, `claude`, …).
    pub agent_type: String,
    /// Label shown to people.
    pub label: String,
    /// Whether it can be started here (its CLI was found).
    pub available: bool,
    /// Why not, or what was found (version, path).
    pub detail: String,
}

/// The spawn form's request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpawnRequest {
    /// Adapter type.
    pub agent: String,
    /// Working directory (absolute, existing).
    pub workdir: PathBuf,
    /// First task; for the shell agent, a command line. May be empty.
    #[serde(default)]
    pub task: String,
    /// Display name (defaults to the id).
    #[serde(default)]
    pub name: Option<String>,
}

impl SpawnRequest {
    /// Checks the fields that do not depend on the agent.
    pub fn validate(&self) -> Result<()> {
        crate::bridge::check_workdir(&self.workdir)?;
        if self.task.len() > MAX_TASK_BYTES {
            return Err(Error::BadRequest(format!(
                "task is {} bytes, more than {MAX_TASK_BYTES}",
                self.task.len()
            )));
        }
        if self.name.as_ref().is_some_and(|n| n.len() > 200) {
            return Err(Error::BadRequest("name longer than 200 bytes".to_owned()));
        }
        Ok(())
    }
}

/// Lists agents and starts sessions for the console.
pub trait Launcher: Send + Sync {
    /// The agents to offer, the shell agent among them.
    fn agents(&self) -> Vec<AgentChoice>;
    /// Starts a session for a validated request (workdir checked) and sees that its task is
    /// sent once the session is ready (e.g. with [`crate::send_when_ready`]), not before: text
    /// typed before the program reads it shows twice or gets lost.
    fn launch(&self, manager: &Arc<PtyManager>, req: &SpawnRequest) -> Result<SessionInfo>;
}

/// Starts the built-in shell agent (BEHAVIOR.md §7.8): `$SHELL` or `/bin/bash`, prompt `pty> `.
#[derive(Debug, Default, Clone)]
pub struct ShellLauncher;

impl ShellLauncher {
    /// The shell agent's entry of the agent list.
    pub fn choice() -> AgentChoice {
        let adapter = ShellAdapter::from_env();
        AgentChoice {
            agent_type: "shell".to_owned(),
            label: "Shell".to_owned(),
            available: true,
            detail: adapter.command(),
        }
    }

    /// Starts a shell session for `req` (whose agent must be `shell`). Its task, a command line,
    /// is typed once the shell shows its prompt (see [`crate::send_when_ready`]); this returns at
    /// once.
    pub fn spawn_shell(manager: &Arc<PtyManager>, req: &SpawnRequest) -> Result<SessionInfo> {
        // With the adapter the manager runs the shell's detection rules (ready, busy, turn end).
        let mut cfg =
            SpawnConfig::with_adapter(Arc::new(ShellAdapter::from_env())).cwd(&req.workdir);
        if let Some(name) = &req.name {
            cfg = cfg.name(name.clone());
        }
        let info = manager.spawn(cfg)?;
        let task = req.task.trim();
        if !task.is_empty() {
            // The outcome is visible on the session itself (its screen, its status).
            drop(crate::send_when_ready(
                manager,
                info.id.clone(),
                task.to_owned(),
                crate::TaskTiming::default(),
            ));
        }
        Ok(info)
    }
}

impl Launcher for ShellLauncher {
    fn agents(&self) -> Vec<AgentChoice> {
        vec![Self::choice()]
    }

    fn launch(&self, manager: &Arc<PtyManager>, req: &SpawnRequest) -> Result<SessionInfo> {
        match req.agent.as_str() {
            "shell" => Self::spawn_shell(manager, req),
            other => Err(Error::UnknownAgent(other.to_owned())),
        }
    }
}
