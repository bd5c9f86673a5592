//! The status of a session, as in BEHAVIOR.md §1.1.

use std::fmt;

/// Where a session is in its life. Flags that do not change the status (stalled, loading, the
/// running tool, the waiting prompt) live beside it in the session handle.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Accepted by `spawn`, not started yet (transient).
    Pending,
    /// The process runs; the program has not reached its input prompt yet.
    Starting,
    /// A login, API-key or device-code screen waits.
    Authenticating,
    /// Idle at its input prompt.
    Ready,
    /// Working on a turn.
    Busy,
    /// A prompt waits for an answer that was not given automatically.
    Blocked,
    /// A stop was requested.
    Stopping,
    /// Exited and reaped (terminal).
    Stopped,
    /// The PTY failed while the process lived (terminal; its group is killed).
    Error,
}

impl SessionStatus {
    /// Every status, in declaration order (for zero-filled counts).
    pub const ALL: [SessionStatus; 9] = [
        SessionStatus::Pending,
        SessionStatus::Starting,
        SessionStatus::Authenticating,
        SessionStatus::Ready,
        SessionStatus::Busy,
        SessionStatus::Blocked,
        SessionStatus::Stopping,
        SessionStatus::Stopped,
        SessionStatus::Error,
    ];

    /// The lower-case name used in events, JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Pending => "pending",
            SessionStatus::Starting => "starting",
            SessionStatus::Authenticating => "authenticating",
            SessionStatus::Ready => "ready",
            SessionStatus::Busy => "busy",
            SessionStatus::Blocked => "blocked",
            SessionStatus::Stopping => "stopping",
            SessionStatus::Stopped => "stopped",
            SessionStatus::Error => "error",
        }
    }

    /// Whether the process may still run (not `stopped` or `error`).
    pub fn is_live(self) -> bool {
        !matches!(self, SessionStatus::Stopped | SessionStatus::Error)
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
