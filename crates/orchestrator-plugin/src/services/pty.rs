//! `PTY_SERVICE`: agent sessions in pseudo-terminals.

use std::path::PathBuf;

pub use pty_manager::SessionStatus;
use serde::Serialize;

use crate::Result;
use crate::settings::Secret;

/// What a spawn asks for.
#[derive(Debug, Clone, Default)]
pub struct SpawnRequest {
    /// Canonical agent type (`claude`, `codex`, `gemini`, `aider`, `pi`, `opencode`, `hermes`,
    /// `shell`); resolve aliases with [`crate::agent_types::resolve_agent_type`] first.
    pub agent_type: String,
    /// A human name for the session (`label`).
    pub name: Option<String>,
    /// Where the agent runs.
    pub workdir: PathBuf,
    /// The first task, delivered once the agent is ready.
    pub initial_task: Option<String>,
    /// Written to the agent's memory file (overwrites).
    pub memory_content: Option<String>,
    /// Approval preset; `None` = the configured default.
    pub approval_preset: Option<String>,
    /// Extra environment (API keys mapped per agent).
    pub credentials: Vec<(String, Secret)>,
    /// The model the agent should use (`PARALLAX_<AGENT>_MODEL_POWERFUL`, else `_FAST`).
    pub model: Option<String>,
    /// Whether a supervisor answers prompts (the adapter's own auto-responses are then skipped).
    pub supervised: bool,
}

/// The status a chat user reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlainStatus {
    /// Starting, idle or working.
    Running,
    /// Waiting for a person (a prompt or a login).
    Blocked,
    /// Stopped after its task was completed.
    Completed,
    /// The PTY or the agent failed.
    Error,
    /// Stopped for any other reason.
    Stopped,
}

impl PlainStatus {
    /// The lower-case word.
    pub fn as_str(self) -> &'static str {
        match self {
            PlainStatus::Running => "running",
            PlainStatus::Blocked => "blocked",
            PlainStatus::Completed => "completed",
            PlainStatus::Error => "error",
            PlainStatus::Stopped => "stopped",
        }
    }

    /// From the detailed status and whether the task was completed.
    pub fn of(status: SessionStatus, completed: bool) -> Self {
        match status {
            SessionStatus::Blocked | SessionStatus::Authenticating => PlainStatus::Blocked,
            SessionStatus::Error => PlainStatus::Error,
            SessionStatus::Stopped | SessionStatus::Stopping if completed => PlainStatus::Completed,
            SessionStatus::Stopped => PlainStatus::Stopped,
            _ => PlainStatus::Running,
        }
    }
}

/// One session as the plugin reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Session id.
    pub id: String,
    /// Human name (label).
    pub name: String,
    /// Canonical agent type.
    pub agent_type: String,
    /// Detailed status (BEHAVIOR.md §1.1).
    pub status: SessionStatus,
    /// Whether the agent finished its task (set by supervision or a `task_complete` before exit).
    pub completed: bool,
    /// Where it runs.
    pub workdir: PathBuf,
    /// Start time, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Last output or input, ms since the Unix epoch.
    pub last_activity_ms: u64,
    /// The waiting prompt while `blocked` (or the login instructions while `authenticating`).
    pub prompt: Option<String>,
    /// The error message when `error`.
    pub error: Option<String>,
}

impl SessionInfo {
    /// The status a chat user reads.
    pub fn plain_status(&self) -> PlainStatus {
        PlainStatus::of(self.status, self.completed)
    }

    /// JSON for the HTTP API and action data (upstream's camelCase names).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "sessionId": self.id,
            "name": self.name,
            "agentType": self.agent_type,
            "status": self.status.as_str(),
            "plainStatus": self.plain_status().as_str(),
            "workdir": self.workdir.display().to_string(),
            "createdAt": self.created_at_ms,
            "lastActivity": self.last_activity_ms,
            "prompt": self.prompt,
            "error": self.error,
        })
    }
}

/// Agent sessions. Implementations are thread-safe handles.
pub trait PtyService: Send + Sync {
    /// Starts a session. Errors: [`crate::Error::AgentNotInstalled`] (with the install command),
    /// [`crate::Error::SessionLimit`], [`crate::Error::UnknownAgentType`], others as
    /// [`crate::Error::Service`].
    fn spawn_session(&self, req: SpawnRequest) -> Result<SessionInfo>;
    /// Sends one turn of text (typed, then Enter).
    fn send_to_session(&self, id: &str, input: &str) -> Result<()>;
    /// Presses keys by name (BEHAVIOR.md §3.1); an unknown name fails and nothing is written.
    fn send_keys(&self, id: &str, keys: &[String]) -> Result<()>;
    /// One session, `None` if unknown.
    fn get_session(&self, id: &str) -> Option<SessionInfo>;
    /// Every session the service knows, including stopped ones not yet removed.
    fn list_sessions(&self) -> Vec<SessionInfo>;
    /// Stops a session (graceful unless `force`).
    fn stop_session(&self, id: &str, force: bool) -> Result<()>;
    /// Marks a session's task completed (supervision), so its plain status reads `completed`.
    fn mark_completed(&self, id: &str);
    /// The last `lines` rendered lines of a session's screen and scrollback.
    fn output_lines(&self, id: &str, lines: usize) -> Result<Vec<String>> {
        let _ = (id, lines);
        Err(crate::Error::NotImplemented("session output".into()))
    }
    /// The raw output tail a session keeps.
    fn raw_output(&self, id: &str) -> Result<Vec<u8>> {
        let _ = id;
        Err(crate::Error::NotImplemented("raw session output".into()))
    }
    /// A hook report an agent POSTed (BEHAVIOR.md §10.5): checks the session's hook token, feeds
    /// the event to the session and returns the HTTP status and JSON reply.
    fn hook(&self, session_id: &str, token: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let _ = (token, body);
        if self.get_session(session_id).is_none() {
            return (
                200,
                serde_json::json!({"status": "ignored", "reason": "session_not_found"}),
            );
        }
        (401, serde_json::json!({"error": "Invalid hook token"}))
    }
    /// The audit records of automatic input (BEHAVIOR.md §4.5).
    fn audit(&self, id: &str) -> Result<Vec<serde_json::Value>> {
        let _ = id;
        Err(crate::Error::NotImplemented(
            "the audit log of automatic input".into(),
        ))
    }
    /// Stalls detected in a session so far (for the per-type metrics; 0 when not tracked).
    fn stall_count(&self, id: &str) -> u64 {
        let _ = id;
        0
    }
    /// Canonical agent types whose CLI is installed, in preference order (for `ranked`
    /// selection). The default says nothing is known, and `ranked` then falls back to the
    /// default type.
    fn installed_agents(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_status_table() {
        use SessionStatus::*;
        let table = [
            (Pending, false, PlainStatus::Running),
            (Starting, false, PlainStatus::Running),
            (Ready, false, PlainStatus::Running),
            (Busy, false, PlainStatus::Running),
            (Blocked, false, PlainStatus::Blocked),
            (Authenticating, false, PlainStatus::Blocked),
            (Stopping, false, PlainStatus::Running),
            (Stopped, false, PlainStatus::Stopped),
            (Stopped, true, PlainStatus::Completed),
            (Error, true, PlainStatus::Error),
        ];
        for (s, c, want) in table {
            assert_eq!(PlainStatus::of(s, c), want, "{s:?} completed={c}");
        }
    }
}
