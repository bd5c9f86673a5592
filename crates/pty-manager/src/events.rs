//! What a manager reports: the session handle and the one typed event enum (BEHAVIOR.md §1.4).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::SessionStatus;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How a process ended: an exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExitInfo {
    /// Exit code when it exited normally.
    pub code: Option<i32>,
    /// Signal number when a signal killed it.
    pub signal: Option<i32>,
}

impl ExitInfo {
    /// `normal exit`, `exit code N` or `signal SIGTERM` (BEHAVIOR.md §1.4 `session_stopped`).
    pub fn reason(&self) -> String {
        match (self.code, self.signal) {
            (_, Some(sig)) => format!("signal {}", signal_name(sig)),
            (Some(0), None) => "normal exit".to_owned(),
            (Some(code), None) => format!("exit code {code}"),
            (None, None) => "unknown exit".to_owned(),
        }
    }
}

/// `SIGTERM` for 15 and so on; `SIG<n>` for numbers without a name here.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGBUS => "SIGBUS",
        _ => return format!("SIG{sig}"),
    };
    name.to_owned()
}

/// A session as callers see it (BEHAVIOR.md §1.1 "Handle"). A copy: it does not change after it
/// was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Session id.
    pub id: String,
    /// Display name given at spawn (defaults to the id).
    pub name: String,
    /// Adapter type (`shell`, `claude`, …).
    pub agent_type: String,
    /// Current status.
    pub status: SessionStatus,
    /// Process id of the program (the leader of its process group and session).
    pub pid: Option<u32>,
    /// Working directory.
    pub workdir: PathBuf,
    /// When the program was started, ms since the Unix epoch.
    pub started_at_ms: u64,
    /// Last output or input, ms since the Unix epoch.
    pub last_activity_ms: u64,
    /// Turn counter: +1 for each `send`.
    pub turn: u64,
    /// No meaningful change for the stall timeout while busy (set by detection).
    pub stalled: bool,
    /// A busy signal is visible (set by detection).
    pub loading: bool,
    /// The tool the agent reports running, if any (set by detection).
    pub tool: Option<String>,
    /// The waiting prompt's text while `blocked` (set by detection).
    pub prompt: Option<String>,
    /// How the process ended, once it did.
    pub exit: Option<ExitInfo>,
}

/// Counters of one session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SessionMetrics {
    /// Process id.
    pub pid: Option<u32>,
    /// Start time, ms since the Unix epoch.
    pub started_at_ms: u64,
    /// Last output or input, ms since the Unix epoch.
    pub last_activity_ms: u64,
    /// Bytes written to the program (its input).
    pub bytes_in: u64,
    /// Bytes read from the program (its output).
    pub bytes_out: u64,
    /// Output chunks dropped for slow subscribers.
    pub lagged_chunks: u64,
}

/// Kind of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A turn sent with `send`.
    Task,
    /// Keys sent with `send_keys` or `select_menu_option`.
    Keys,
    /// Text pasted with `paste`.
    Paste,
}

/// Input given to a session (BEHAVIOR.md §1.4 `message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `<session>-msg-<n>`.
    pub id: String,
    /// Session id.
    pub session_id: String,
    /// Always `inbound`: agent output is never re-emitted as messages.
    pub direction: &'static str,
    /// What kind of input.
    pub kind: MessageKind,
    /// The text, or the key names joined with `,`.
    pub content: String,
    /// ms since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Everything a manager reports, read from [`crate::PtyManager::events`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum SessionEvent {
    /// The program runs (status `starting`).
    #[serde(rename = "session_started")]
    Started {
        /// The handle.
        session: SessionInfo,
    },
    /// The status changed.
    #[serde(rename = "session_status_changed")]
    StatusChanged {
        /// The handle (with the new status).
        session: SessionInfo,
        /// Previous status.
        from: SessionStatus,
        /// New status.
        to: SessionStatus,
    },
    /// A subscriber was too slow; chunks were dropped for it (the reactor never waits).
    #[serde(rename = "output_lagged")]
    OutputLagged {
        /// Session id.
        id: String,
        /// Chunks dropped since the last notice.
        dropped_chunks: u64,
        /// Bytes in those chunks.
        dropped_bytes: u64,
    },
    /// The program was reaped and its output drained (status `stopped`).
    #[serde(rename = "session_stopped")]
    Stopped {
        /// The final handle.
        session: SessionInfo,
        /// `normal exit`, `exit code N`, `signal SIGTERM`, …
        reason: String,
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal number, if a signal killed it.
        signal: Option<i32>,
    },
    /// The PTY failed while the program lived (status `error`, its group is killed).
    #[serde(rename = "session_error")]
    Error {
        /// The handle.
        session: SessionInfo,
        /// What failed.
        error: String,
    },
    /// Input was given to the session.
    #[serde(rename = "message")]
    Message {
        /// The message.
        message: Message,
    },
    /// The session reached its input prompt (`starting`/`authenticating` → `ready`).
    #[serde(rename = "session_ready")]
    Ready {
        /// The handle.
        session: SessionInfo,
    },
    /// A prompt was seen: answered by a rule (`auto_responded`) or waiting (`blocked`).
    #[serde(rename = "blocking_prompt")]
    BlockingPrompt {
        /// The handle.
        session: SessionInfo,
        /// What was seen.
        info: crate::BlockingPromptInfo,
        /// Whether a rule answered it.
        auto_responded: bool,
    },
    /// An automatic input was written (BEHAVIOR.md §4.5).
    #[serde(rename = "auto_response")]
    AutoResponse {
        /// The handle.
        session: SessionInfo,
        /// The audit record.
        record: crate::AuditRecord,
    },
    /// A login screen (short form).
    #[serde(rename = "login_required")]
    LoginRequired {
        /// The handle.
        session: SessionInfo,
        /// The matched rows.
        instructions: String,
        /// Login URL, if found.
        url: Option<String>,
    },
    /// A login screen (full form).
    #[serde(rename = "auth_required")]
    AuthRequired {
        /// The handle.
        session: SessionInfo,
        /// How to authenticate.
        method: crate::LoginMethod,
        /// Login URL, if found.
        url: Option<String>,
        /// Device code, if found.
        device_code: Option<String>,
        /// The matched rows.
        instructions: String,
        /// Last 280 chars of screen text, whitespace collapsed.
        prompt_snippet: String,
    },
    /// A turn ended.
    #[serde(rename = "task_complete")]
    TaskComplete {
        /// The handle.
        session: SessionInfo,
        /// The turn that ended.
        turn: u64,
        /// How the end was known.
        source: crate::CompletionSource,
        /// Rows scrolled off this turn + final rows minus the prompt box, ≤ 64 KiB.
        turn_output: String,
        /// The agent's failure text, if a failure ended the turn.
        error: Option<String>,
        /// Turn duration.
        duration_ms: u64,
    },
    /// The running tool changed.
    #[serde(rename = "tool_running")]
    ToolRunning {
        /// The handle.
        session: SessionInfo,
        /// Tool name.
        tool_name: String,
        /// Matched rows, when read from the screen.
        description: Option<String>,
    },
    /// Nothing meaningful changed for the stall timeout while busy (BEHAVIOR.md §5).
    #[serde(rename = "stall_detected")]
    StallDetected {
        /// The handle.
        session: SessionInfo,
        /// Recent screen text.
        recent_output: String,
        /// How long nothing meaningful changed.
        stalled_for_ms: u64,
        /// 1..=5 within one episode.
        emission: u32,
    },
    /// Enter did not take after the retries of a verified submit (BEHAVIOR.md §2.3).
    #[serde(rename = "submit_failed")]
    SubmitFailed {
        /// The handle.
        session: SessionInfo,
        /// The message whose submit failed.
        message_id: String,
        /// Enter presses tried.
        attempts: u32,
    },
}

impl SessionEvent {
    /// The event's wire name (`session_started`, …).
    pub fn name(&self) -> &'static str {
        match self {
            SessionEvent::Started { .. } => "session_started",
            SessionEvent::StatusChanged { .. } => "session_status_changed",
            SessionEvent::OutputLagged { .. } => "output_lagged",
            SessionEvent::Stopped { .. } => "session_stopped",
            SessionEvent::Error { .. } => "session_error",
            SessionEvent::Message { .. } => "message",
            SessionEvent::SubmitFailed { .. } => "submit_failed",
            SessionEvent::Ready { .. } => "session_ready",
            SessionEvent::BlockingPrompt { .. } => "blocking_prompt",
            SessionEvent::AutoResponse { .. } => "auto_response",
            SessionEvent::LoginRequired { .. } => "login_required",
            SessionEvent::AuthRequired { .. } => "auth_required",
            SessionEvent::TaskComplete { .. } => "task_complete",
            SessionEvent::ToolRunning { .. } => "tool_running",
            SessionEvent::StallDetected { .. } => "stall_detected",
        }
    }

    /// The session the event is about.
    pub fn session_id(&self) -> &str {
        match self {
            SessionEvent::Started { session }
            | SessionEvent::StatusChanged { session, .. }
            | SessionEvent::Stopped { session, .. }
            | SessionEvent::Error { session, .. }
            | SessionEvent::SubmitFailed { session, .. }
            | SessionEvent::Ready { session }
            | SessionEvent::BlockingPrompt { session, .. }
            | SessionEvent::AutoResponse { session, .. }
            | SessionEvent::LoginRequired { session, .. }
            | SessionEvent::AuthRequired { session, .. }
            | SessionEvent::TaskComplete { session, .. }
            | SessionEvent::ToolRunning { session, .. }
            | SessionEvent::StallDetected { session, .. } => &session.id,
            SessionEvent::OutputLagged { id, .. } => id,
            SessionEvent::Message { message } => &message.session_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reasons() {
        let r = |code, signal| ExitInfo { code, signal }.reason();
        assert_eq!(r(Some(0), None), "normal exit");
        assert_eq!(r(Some(3), None), "exit code 3");
        assert_eq!(r(None, Some(libc::SIGTERM)), "signal SIGTERM");
        assert_eq!(r(None, Some(64)), "signal SIG64");
    }
}
