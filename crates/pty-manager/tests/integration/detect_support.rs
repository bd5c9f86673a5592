//! Shared harness of the detection tests: a synthetic agent manifest, a fake clock and a driver
//! that feeds screens to the state machine and fires its timers in order. No PTY, no sleeps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pty_manager::{
    Action, Adapter, DeclarativeAdapter, DetectionEvent, Response, ScreenSnapshot, SessionConfig,
    SessionMachine, SessionStatus, StallContext,
};

/// A toy agent that exercises every signal. Timings are the BEHAVIOR.md defaults.
pub const TOY: &str = r#"
schema: 1
type: toy
name: Toy agent
command: toy
input_style: tui
ready_settle_ms: 300
task_complete_settle_ms: 1500
prompt_box: ['^─+$', '^> ?$']
install: { note: "unknown top-level keys are allowed" }
rules:
  - { id: toy.ready, signal: ready, pattern: '^> ?$', region: bottom(2) }
  - { id: toy.busy, signal: busy, pattern: 'esc to interrupt' }
  - { id: toy.done, signal: task_complete, pattern: '^Worked for \d+s', region: bottom(4) }
  - id: toy.trust
    signal: prompt
    type: project_select
    kind: trust_folder
    pattern: 'Trust this folder\?'
    response: { keys: [enter] }
    once: true
    safe: true
  - id: toy.update
    signal: prompt
    type: update
    kind: update
    pattern: 'Update available'
    response: { keys: [down, enter] }
  - id: toy.write
    signal: prompt
    type: permission
    kind: file_create
    category: file_write
    pattern: 'Create \S+\?'
    response: { keys: [enter] }
    safe: true
  - id: toy.question
    signal: prompt
    type: config
    kind: other
    pattern: 'Continue\? \[y/n\]'
    response: { text: "y" }
    safe: true
  - id: toy.login
    signal: login
    region: screen
    method: device_code
    pattern: 'Sign in with a device code'
    url: '(https://\S+)'
  - { id: toy.tool, signal: tool_running, pattern: 'Running \w+', tool: 'Running (\w+)' }
  - { id: toy.bye, signal: exit_hint, pattern: 'Goodbye' }
  - { id: toy.limit, signal: usage_limit, pattern: 'Usage limit reached' }
"#;

/// The toy adapter.
pub fn toy() -> DeclarativeAdapter {
    DeclarativeAdapter::from_yaml(TOY).expect("toy manifest")
}

/// Drives one state machine with a fake clock.
pub struct Driver {
    pub now: Instant,
    pub m: SessionMachine,
    pub events: Vec<DetectionEvent>,
    pub writes: Vec<(String, Response)>,
    pub classify: Vec<StallContext>,
}

impl Driver {
    /// A started toy session with default config.
    pub fn toy() -> Self {
        Self::with(|_| {})
    }

    /// A started toy session; `tweak` adjusts the config first.
    pub fn with(tweak: impl FnOnce(&mut SessionConfig)) -> Self {
        let a = toy();
        Self::for_adapter(&a, tweak)
    }

    /// A started session of any adapter.
    pub fn for_adapter(a: &dyn Adapter, tweak: impl FnOnce(&mut SessionConfig)) -> Self {
        let now = Instant::now();
        let mut cfg = SessionConfig::for_adapter(a);
        tweak(&mut cfg);
        let m = SessionMachine::new(now, cfg, a.detector().clone());
        let mut d = Driver {
            now,
            m,
            events: Vec::new(),
            writes: Vec::new(),
            classify: Vec::new(),
        };
        let acts = d.m.started(now);
        d.absorb(acts);
        d
    }

    pub fn absorb(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Emit(e) => self.events.push(e),
                Action::Respond { response, rule_id } => self.writes.push((rule_id, response)),
                Action::Classify(c) => self.classify.push(c),
            }
        }
    }

    /// Show this screen (plain text rows; cursor after the last row).
    pub fn screen(&mut self, text: &str) {
        self.snapshot(ScreenSnapshot::from_text(text, 120, 40));
    }

    /// Show this snapshot.
    pub fn snapshot(&mut self, snap: ScreenSnapshot) {
        let acts = self.m.observe_screen(self.now, Arc::new(snap));
        self.absorb(acts);
    }

    /// Let `ms` pass, firing every timer that falls due, in order.
    pub fn wait(&mut self, ms: u64) {
        let target = self.now + Duration::from_millis(ms);
        while let Some(d) = self.m.next_deadline() {
            if d > target {
                break;
            }
            self.now = self.now.max(d);
            let acts = self.m.tick(self.now);
            self.absorb(acts);
        }
        self.now = target;
    }

    pub fn send(&mut self, task: &str) {
        let acts = self.m.send(self.now, "s1", task).expect("send");
        self.absorb(acts);
    }

    pub fn status(&self) -> SessionStatus {
        self.m.status()
    }

    /// Status transitions seen so far, as `from>to`.
    pub fn transitions(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                DetectionEvent::SessionStatusChanged { from, to } => Some(format!("{from}>{to}")),
                _ => None,
            })
            .collect()
    }

    /// Names of events other than status changes.
    pub fn names(&self) -> Vec<&'static str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                DetectionEvent::SessionStatusChanged { .. } => None,
                DetectionEvent::SessionStarted => Some("session_started"),
                DetectionEvent::SessionReady => Some("session_ready"),
                DetectionEvent::BlockingPrompt {
                    auto_responded: true,
                    ..
                } => Some("blocking_prompt(auto)"),
                DetectionEvent::BlockingPrompt { .. } => Some("blocking_prompt"),
                DetectionEvent::AutoResponse(_) => Some("auto_response"),
                DetectionEvent::LoginRequired { .. } => Some("login_required"),
                DetectionEvent::AuthRequired { .. } => Some("auth_required"),
                DetectionEvent::TaskComplete { .. } => Some("task_complete"),
                DetectionEvent::ToolRunning { .. } => Some("tool_running"),
                DetectionEvent::StallDetected { .. } => Some("stall_detected"),
                DetectionEvent::SessionError { .. } => Some("session_error"),
                DetectionEvent::SessionStopped { .. } => Some("session_stopped"),
            })
            .collect()
    }

    pub fn clear(&mut self) {
        self.events.clear();
        self.writes.clear();
        self.classify.clear();
    }

    pub fn count(&self, name: &str) -> usize {
        self.names().iter().filter(|n| **n == name).count()
    }

    /// A ready toy session (banner + prompt, settled), events cleared.
    pub fn ready_toy() -> Self {
        let mut d = Self::toy();
        d.screen(READY);
        d.wait(400);
        assert_eq!(d.status(), SessionStatus::Ready);
        d.clear();
        d
    }
}

pub const READY: &str = "Toy agent v1\n────────\n> ";
