//! Workspace and credential events, delivered in order to every handler, redacted.

use std::sync::{Arc, Mutex};

use crate::redact::Redactor;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// Provisioning started.
    Provisioning,
    /// A credential was granted to a workspace.
    CredentialGranted,
    /// A worktree was added to a parent workspace.
    WorktreeAdded,
    /// The workspace is ready.
    Ready,
    /// Something failed (the message is redacted).
    Error,
    /// Finalize started.
    Finalizing,
    /// A commit was made (`data.sha`).
    Committed,
    /// The branch was pushed (`data.branch`).
    Pushed,
    /// A pull request was opened (`data.prNumber`, `data.prUrl`).
    PrCreated,
    /// A worktree was removed (`data.parentWorkspaceId`).
    WorktreeRemoved,
    /// A credential was revoked.
    CredentialRevoked,
    /// The workspace directory was removed.
    CleanedUp,
}

impl EventKind {
    /// The wire name, e.g. `workspace:ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "workspace:provisioning",
            Self::CredentialGranted => "credential:granted",
            Self::WorktreeAdded => "worktree:added",
            Self::Ready => "workspace:ready",
            Self::Error => "workspace:error",
            Self::Finalizing => "workspace:finalizing",
            Self::Committed => "workspace:committed",
            Self::Pushed => "workspace:pushed",
            Self::PrCreated => "pr:created",
            Self::WorktreeRemoved => "worktree:removed",
            Self::CredentialRevoked => "credential:revoked",
            Self::CleanedUp => "workspace:cleaned_up",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The workspace concerned (empty for credential events without one).
    pub workspace_id: String,
    /// The credential concerned, if any.
    pub credential_id: Option<String>,
    /// The execution the workspace belongs to, if any.
    pub execution_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Event-specific data (already redacted).
    pub data: serde_json::Value,
    /// The error message for `workspace:error` (already redacted).
    pub error: Option<String>,
}

impl Event {
    /// The event as JSON in the documented wire shape.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "type": self.kind.as_str(),
            "workspaceId": self.workspace_id,
            "credentialId": self.credential_id,
            "executionId": self.execution_id,
            "timestamp": self.timestamp,
            "data": self.data,
            "error": self.error,
        })
    }
}

/// A handler; an `Err` is reported on the log and does not stop later handlers.
pub type EventHandler = Box<dyn Fn(&Event) -> Result<(), String> + Send + Sync>;

/// A log sink for warnings (fetch failed, label not applied); lines are redacted.
pub type LogHandler = Box<dyn Fn(&str) + Send + Sync>;

/// Delivers events and log lines, redacting both.
#[derive(Clone, Default)]
pub struct EventBus {
    handlers: Arc<Mutex<Vec<Arc<EventHandler>>>>,
    loggers: Arc<Mutex<Vec<Arc<LogHandler>>>>,
    redactor: Redactor,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus").finish_non_exhaustive()
    }
}

impl EventBus {
    /// A bus that redacts with `redactor`.
    pub fn new(redactor: Redactor) -> Self {
        Self {
            redactor,
            ..Self::default()
        }
    }

    /// Adds a handler; handlers run in the order they were added.
    pub fn subscribe(&self, handler: EventHandler) {
        self.handlers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(handler));
    }

    /// Adds a log sink.
    pub fn on_log(&self, handler: LogHandler) {
        self.loggers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(handler));
    }

    /// A channel receiving every event from now on.
    pub fn channel(&self) -> std::sync::mpsc::Receiver<Event> {
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Mutex::new(tx);
        self.subscribe(Box::new(move |e| {
            tx.lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(e.clone())
                .map_err(|_| "receiver dropped".to_owned())
        }));
        rx
    }

    /// Redacts and delivers `event`.
    ///
    /// Handlers run without any lock held, so a handler may call back into the service (which
    /// emits further events) or subscribe more handlers.
    pub fn emit(&self, mut event: Event) {
        self.redactor.redact_json(&mut event.data);
        event.error = event.error.map(|e| self.redactor.redact(&e));
        let handlers = self
            .handlers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for h in handlers.iter() {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(&event)));
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => self.log(&format!(
                    "event handler for {} failed: {e}",
                    event.kind.as_str()
                )),
                Err(_) => self.log(&format!(
                    "event handler for {} panicked",
                    event.kind.as_str()
                )),
            }
        }
    }

    /// Redacts and writes one log line to every sink.
    pub fn log(&self, line: &str) {
        let line = self.redactor.redact(line);
        let loggers = self
            .loggers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for l in loggers.iter() {
            l(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handler_may_emit_and_subscribe_without_deadlock() {
        let bus = EventBus::default();
        let inner = bus.clone();
        let rx = bus.channel();
        bus.subscribe(Box::new(move |e| {
            if e.kind == EventKind::Ready {
                inner.subscribe(Box::new(|_| Ok(())));
                let mut next = e.clone();
                next.kind = EventKind::CleanedUp;
                inner.emit(next);
            }
            Ok(())
        }));
        bus.emit(Event {
            kind: EventKind::Ready,
            workspace_id: "w".into(),
            credential_id: None,
            execution_id: None,
            timestamp: 0,
            data: serde_json::Value::Null,
            error: None,
        });
        let kinds: Vec<_> = rx.try_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Ready, EventKind::CleanedUp]);
    }

    #[test]
    fn failing_handler_does_not_stop_the_rest_and_everything_is_redacted() {
        let r = Redactor::new();
        r.add("sekrit-token");
        let bus = EventBus::new(r);
        let logs = Arc::new(Mutex::new(Vec::<String>::new()));
        let l2 = logs.clone();
        bus.on_log(Box::new(move |l| l2.lock().unwrap().push(l.to_owned())));
        bus.subscribe(Box::new(|_| Err("boom sekrit-token".into())));
        bus.subscribe(Box::new(|_| panic!("second")));
        let rx = bus.channel();
        bus.emit(Event {
            kind: EventKind::Error,
            workspace_id: "w".into(),
            credential_id: None,
            execution_id: None,
            timestamp: 1,
            data: serde_json::json!({"m": "x sekrit-token"}),
            error: Some("bad sekrit-token".into()),
        });
        let e = rx.try_recv().unwrap();
        assert_eq!(e.error.as_deref(), Some("bad [redacted]"));
        assert_eq!(e.data["m"], "x [redacted]");
        let logs = logs.lock().unwrap();
        assert_eq!(logs.len(), 2);
        assert!(logs.iter().all(|l| !l.contains("sekrit")));
    }
}
