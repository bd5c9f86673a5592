//! Supervision (BEHAVIOR.md §10.4): what happens with every blocked prompt, finished turn and
//! idle session of a coding task.
//!
//! [`Supervisor`] is a plain value: it is fed events and model answers with the current time and
//! returns [`Effect`]s (ask the model, type, press keys, stop, post a chat line, broadcast an
//! event). It does no I/O and reads no clock, so its tests need no sleeps and no PTY;
//! [`Coordinator`] executes the effects against a [`crate::Runtime`].

pub mod classifier;
mod driver;
pub mod guard;
mod prompts;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::model::{Decision, DecisionAction, parse_contract};

pub use driver::{Coordinator, EventSubscription, Observer, QueuedObserver, STREAM_QUEUE};

/// Consecutive rule-answered prompts after which the next prompt goes to a person.
pub const MAX_AUTO_RESPONSES: u32 = 10;
/// Turn-complete events this soon after our own input wait until it has passed.
pub const TURN_COMPLETE_QUIET_MS: u64 = 15_000;
/// Events of sessions not registered yet are held this long.
pub const UNREGISTERED_HOLD_MS: u64 = 2_000;
/// `pause()` lasts this long unless resumed.
pub const PAUSE_MS: u64 = 30_000;
/// A `task_complete` this soon after `stopped` revives the task.
pub const REVIVE_WINDOW_MS: u64 = 90_000;
/// How often the idle watchdog looks.
pub const IDLE_SCAN_MS: u64 = 60_000;
/// Idle time before the watchdog asks the model.
pub const IDLE_THRESHOLD_MS: u64 = 5 * 60_000;
/// The watchdog check that stops the session.
pub const IDLE_STOP_CHECK: u32 = 4;

/// How much a person is involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    /// The model decides and its decision is executed.
    #[default]
    Autonomous,
    /// The model suggests; a person approves over the API or dashboard.
    Confirm,
    /// Nothing is answered; a person is told.
    Notify,
}

impl Level {
    /// Parses `autonomous`, `confirm` or `notify`.
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "autonomous" => Some(Level::Autonomous),
            "confirm" => Some(Level::Confirm),
            "notify" => Some(Level::Notify),
            _ => None,
        }
    }
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Autonomous => "autonomous",
            Level::Confirm => "confirm",
            Level::Notify => "notify",
        }
    }
}

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Running.
    Active,
    /// Finished its objectives.
    Completed,
    /// Failed.
    Error,
    /// Stopped before completing.
    Stopped,
}

impl TaskStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Active => "active",
            TaskStatus::Completed => "completed",
            TaskStatus::Error => "error",
            TaskStatus::Stopped => "stopped",
        }
    }
}

/// One audited decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    /// When (ms).
    pub timestamp: u64,
    /// What it was about: `blocked`, `turn_complete`, `idle`.
    pub event: String,
    /// The prompt or an excerpt.
    pub prompt_text: String,
    /// `respond`, `escalate`, `ignore`, `complete`, `auto_resolved`, `stopped`.
    pub decision: String,
    /// What was typed.
    pub response: Option<String>,
    /// Why.
    pub reasoning: String,
}

impl DecisionRecord {
    /// JSON in upstream's shape.
    pub fn to_json(&self) -> Value {
        json!({"timestamp": self.timestamp, "event": self.event, "promptText": self.prompt_text,
               "decision": self.decision, "response": self.response, "reasoning": self.reasoning})
    }
}

/// What a task starts with.
#[derive(Debug, Clone, Default)]
pub struct TaskSpec {
    /// The session.
    pub session_id: String,
    /// Human label.
    pub label: String,
    /// The task text.
    pub task: String,
    /// The workspace directory.
    pub workdir: PathBuf,
    /// The repository, if any.
    pub repo: Option<String>,
}

/// A task under supervision.
#[derive(Debug, Clone)]
pub struct Task {
    /// What it was started with.
    pub spec: TaskSpec,
    /// Where it is.
    pub status: TaskStatus,
    /// Every decision, oldest first.
    pub decisions: Vec<DecisionRecord>,
    /// Rule-answered prompts in a row.
    pub auto_resolved_count: u32,
    /// Idle checks so far.
    pub idle_check_count: u32,
    /// When we last typed into the session.
    pub last_input_sent_at: Option<u64>,
    /// The summary posted on completion.
    pub completion_summary: Option<String>,
    stopped_at: Option<u64>,
    in_flight: Option<Pending>,
    buffered: VecDeque<Event>,
    confirmation: Option<(Pending, Decision)>,
    seen_shared: usize,
    last_scan_at: u64,
    last_output_key: Option<u64>,
    last_activity_at: u64,
}

/// A model question waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// What the question is about.
    pub kind: AskKind,
    /// The prompt text (blocked) or turn output (turn complete).
    pub subject: String,
}

/// Kinds of model questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskKind {
    /// A blocked prompt no rule answered.
    Blocked,
    /// A finished turn.
    TurnComplete,
    /// An idle session.
    Idle,
}

impl AskKind {
    fn event(self) -> &'static str {
        match self {
            AskKind::Blocked => "blocked",
            AskKind::TurnComplete => "turn_complete",
            AskKind::Idle => "idle",
        }
    }
}

/// What happened to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A prompt waits. `auto_responded`: a rule already answered it.
    Blocked {
        /// Session.
        session_id: String,
        /// The prompt text.
        prompt: String,
        /// Whether a rule answered it.
        auto_responded: bool,
        /// Recent screen text.
        recent_output: String,
    },
    /// The agent finished a turn.
    TurnComplete {
        /// Session.
        session_id: String,
        /// The turn's output.
        turn_output: String,
    },
    /// The session exited.
    Stopped {
        /// Session.
        session_id: String,
    },
    /// The session failed.
    Error {
        /// Session.
        session_id: String,
        /// What failed.
        message: String,
    },
    /// Something observers of the coordinator's stream should see but nothing decides on:
    /// `ready`, `tool_running`, `login_required`, `message` (one of [`PASS_THROUGH`]).
    Notice {
        /// Session.
        session_id: String,
        /// The broadcast event's `type`.
        kind: &'static str,
        /// Its other fields.
        data: Value,
    },
}

/// Session events the coordinator passes through to its stream unchanged (BEHAVIOR.md §10.4).
pub const PASS_THROUGH: [&str; 4] = ["ready", "tool_running", "login_required", "message"];

impl Event {
    fn session(&self) -> &str {
        match self {
            Event::Blocked { session_id, .. }
            | Event::TurnComplete { session_id, .. }
            | Event::Stopped { session_id }
            | Event::Error { session_id, .. }
            | Event::Notice { session_id, .. } => session_id,
        }
    }
}

/// What the supervisor wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Ask the model; feed the answer back with [`Supervisor::on_model_answer`].
    AskModel {
        /// Session.
        session_id: String,
        /// What about.
        kind: AskKind,
        /// The full prompt.
        prompt: String,
    },
    /// Type one turn.
    SendText {
        /// Session.
        session_id: String,
        /// Text.
        text: String,
    },
    /// Press keys.
    SendKeys {
        /// Session.
        session_id: String,
        /// Key names.
        keys: Vec<String>,
    },
    /// Stop the session.
    Stop {
        /// Session.
        session_id: String,
        /// Kill without grace.
        force: bool,
    },
    /// The task is complete (the session's plain status becomes `completed`).
    MarkCompleted {
        /// Session.
        session_id: String,
    },
    /// Post a chat line.
    Chat(String),
    /// Broadcast a coordinator event (SSE / WebSocket).
    Broadcast(Value),
}

/// What the watchdog learns about one session at a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Session.
    pub session_id: String,
    /// Whether the PTY still exists.
    pub alive: bool,
    /// A hash of the visible output; a change means progress.
    pub output_key: u64,
    /// Last output or input (ms).
    pub last_activity_at: u64,
}

/// The supervision state of all tasks.
#[derive(Debug, Default)]
pub struct Supervisor {
    level: Level,
    tasks: BTreeMap<String, Task>,
    held: Vec<(u64, Event)>,
    paused_until: Option<u64>,
    paused: Vec<Event>,
    shared: Vec<(String, String)>,
    swarm_announced: bool,
}

fn ev(kind: &str, session: &str, extra: Value) -> Effect {
    let mut v = json!({"type": kind, "sessionId": session});
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    Effect::Broadcast(v)
}

impl Supervisor {
    /// A supervisor at this level.
    pub fn new(level: Level) -> Self {
        Supervisor {
            level,
            ..Supervisor::default()
        }
    }

    /// The level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Changes the level.
    pub fn set_level(&mut self, level: Level) -> Vec<Effect> {
        self.level = level;
        vec![Effect::Broadcast(
            json!({"type": "supervision_changed", "level": level.as_str()}),
        )]
    }

    /// A task by session id.
    pub fn task(&self, session_id: &str) -> Option<&Task> {
        self.tasks.get(session_id)
    }

    /// Every task.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    /// Pending confirmations: (session, prompt, suggested action).
    pub fn pending(&self) -> Vec<(String, String, String)> {
        self.tasks
            .values()
            .filter_map(|t| {
                t.confirmation.as_ref().map(|(p, d)| {
                    (
                        t.spec.session_id.clone(),
                        p.subject.clone(),
                        d.action.as_str().to_string(),
                    )
                })
            })
            .collect()
    }

    /// The SSE `snapshot` event.
    pub fn snapshot(&self) -> Value {
        json!({"type": "snapshot", "tasks": self.tasks.values().map(task_json).collect::<Vec<_>>(),
               "supervisionLevel": self.level.as_str(), "pendingCount": self.pending().len()})
    }

    /// Registers a task; held events of its session are replayed.
    pub fn register(&mut self, now: u64, spec: TaskSpec) -> Vec<Effect> {
        let id = spec.session_id.clone();
        let label = spec.label.clone();
        self.swarm_announced = false;
        self.tasks.insert(
            id.clone(),
            Task {
                spec,
                status: TaskStatus::Active,
                decisions: Vec::new(),
                auto_resolved_count: 0,
                idle_check_count: 0,
                last_input_sent_at: None,
                completion_summary: None,
                stopped_at: None,
                in_flight: None,
                buffered: VecDeque::new(),
                confirmation: None,
                seen_shared: self.shared.len(),
                last_scan_at: now,
                last_output_key: None,
                last_activity_at: now,
            },
        );
        let mut out = vec![ev("task_registered", &id, json!({"label": label}))];
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, e)| e.session() == id);
        self.held = rest;
        for (_, e) in mine {
            out.extend(self.on_event(now, e));
        }
        out
    }

    /// Buffers events while a person is chatting; resumes by itself after 30 s.
    pub fn pause(&mut self, now: u64) -> Vec<Effect> {
        self.paused_until = Some(now + PAUSE_MS);
        vec![Effect::Broadcast(json!({"type": "coordinator_paused"}))]
    }

    /// Whether events are being buffered by a pause that has not expired at `now`.
    pub fn is_paused(&self, now: u64) -> bool {
        self.paused_until.is_some_and(|u| now < u)
    }

    /// Ends a pause and handles what was buffered.
    pub fn resume(&mut self, now: u64) -> Vec<Effect> {
        if self.paused_until.take().is_none() {
            return Vec::new();
        }
        let mut out = vec![Effect::Broadcast(json!({"type": "coordinator_resumed"}))];
        for e in std::mem::take(&mut self.paused) {
            out.extend(self.on_event(now, e));
        }
        out
    }

    /// Notes that we typed into a session (for the 15 s quiet window).
    pub fn record_input(&mut self, now: u64, session_id: &str) {
        if let Some(t) = self.tasks.get_mut(session_id) {
            t.last_input_sent_at = Some(now);
            t.last_activity_at = now;
        }
    }

    /// Feeds one session event.
    pub fn on_event(&mut self, now: u64, event: Event) -> Vec<Effect> {
        if let Some(until) = self.paused_until {
            if now < until {
                self.paused.push(event);
                return Vec::new();
            }
            let mut out = self.resume(now);
            out.extend(self.on_event(now, event));
            return out;
        }
        let id = event.session().to_string();
        if let Event::Notice { kind, data, .. } = event {
            // Only tasks under supervision are shown; nothing is decided.
            if self.tasks.contains_key(&id) && PASS_THROUGH.contains(&kind) {
                return vec![ev(kind, &id, data)];
            }
            return Vec::new();
        }
        let Some(task) = self.tasks.get_mut(&id) else {
            self.held.push((now, event));
            return Vec::new();
        };
        task.last_activity_at = now;
        match event {
            Event::Blocked {
                prompt,
                auto_responded: true,
                ..
            } => self.on_auto_resolved(now, &id, prompt),
            Event::Blocked {
                prompt,
                recent_output,
                ..
            } => self.on_blocked(now, &id, prompt, recent_output),
            Event::TurnComplete { turn_output, .. } => self.on_turn_complete(now, &id, turn_output),
            Event::Stopped { .. } => {
                let mut out = Vec::new();
                if task.status == TaskStatus::Active {
                    task.status = TaskStatus::Stopped;
                    task.stopped_at = Some(now);
                    out.push(ev("stopped", &id, json!({})));
                }
                out.extend(self.swarm_check());
                out
            }
            Event::Notice { .. } => Vec::new(),
            Event::Error { message, .. } => {
                task.status = TaskStatus::Error;
                let label = task.spec.label.clone();
                let mut out = vec![
                    ev("error", &id, json!({"error": message})),
                    Effect::Chat(format!("\"{label}\" hit an error: {message}")),
                ];
                out.extend(self.swarm_check());
                out
            }
        }
    }

    fn on_auto_resolved(&mut self, now: u64, id: &str, prompt: String) -> Vec<Effect> {
        let task = self.tasks.get_mut(id).expect("checked by caller");
        let label = task.spec.label.clone();
        if let Some(path) = guard::outside_path(&prompt, &task.spec.workdir) {
            task.status = TaskStatus::Error;
            record(
                task,
                now,
                "blocked",
                &prompt,
                "stopped",
                None,
                &format!("rule approved access to {path} outside the workspace"),
            );
            let excerpt: String = prompt.chars().take(150).collect();
            let mut out = vec![
                Effect::Chat(format!(
                    "[{label}] WARNING: Auto-approved access to path outside workspace ({}). Prompt: \"{excerpt}\". Stopping session for safety.",
                    task.spec.workdir.display()
                )),
                Effect::Stop {
                    session_id: id.into(),
                    force: true,
                },
                ev(
                    "error",
                    id,
                    json!({"error": "auto-approved out-of-workspace access"}),
                ),
            ];
            out.extend(self.swarm_check());
            return out;
        }
        task.auto_resolved_count += 1;
        record(
            task,
            now,
            "blocked",
            &prompt,
            "auto_resolved",
            None,
            "answered by a rule",
        );
        vec![ev(
            "blocked_auto_resolved",
            id,
            json!({"prompt": prompt, "count": task.auto_resolved_count}),
        )]
    }

    fn on_blocked(&mut self, now: u64, id: &str, prompt: String, recent: String) -> Vec<Effect> {
        let level = self.level;
        let shared = self.shared.clone();
        let task = self.tasks.get_mut(id).expect("checked by caller");
        if task.status != TaskStatus::Active {
            return Vec::new();
        }
        let label = task.spec.label.clone();
        if let Some(p) = &task.in_flight {
            let key = |s: &str| s.chars().take(200).collect::<String>();
            let dup = key(&p.subject) == key(&prompt)
                || task.buffered.iter().any(
                    |e| matches!(e, Event::Blocked { prompt: q, .. } if key(q) == key(&prompt)),
                );
            if dup {
                return Vec::new();
            }
            task.buffered.push_back(Event::Blocked {
                session_id: id.into(),
                prompt,
                auto_responded: false,
                recent_output: recent,
            });
            return vec![ev("blocked_buffered", id, json!({}))];
        }
        let mut out = vec![ev("blocked", id, json!({"prompt": prompt}))];
        if task.auto_resolved_count >= MAX_AUTO_RESPONSES {
            let chat = format!(
                "[{label}] Needs your attention: {MAX_AUTO_RESPONSES} prompts in a row were answered automatically; this one waits for you: \"{}\"",
                prompt.trim()
            );
            let why = "too many automatic answers in a row";
            escalate_blocked(
                &mut out,
                task,
                now,
                id,
                &prompt,
                "max_auto_responses_exceeded",
                why,
                chat,
            );
            return out;
        }
        if level == Level::Notify {
            let chat = format!(
                "[{label}] Needs your attention: waiting for input: \"{}\"",
                prompt.trim()
            );
            let why = "supervision level is notify";
            escalate_blocked(&mut out, task, now, id, &prompt, "notify", why, chat);
            return out;
        }
        let text = prompts::blocked(task, &prompt, &recent, &shared);
        out.push(ask(task, id, AskKind::Blocked, prompt, text));
        out
    }

    fn on_turn_complete(&mut self, now: u64, id: &str, output: String) -> Vec<Effect> {
        let level = self.level;
        let shared = self.shared.clone();
        let task = self.tasks.get_mut(id).expect("checked by caller");
        if task.status == TaskStatus::Stopped
            && task
                .stopped_at
                .is_some_and(|t| now.saturating_sub(t) <= REVIVE_WINDOW_MS)
        {
            task.status = TaskStatus::Active;
            task.stopped_at = None;
        }
        if task.status != TaskStatus::Active {
            return Vec::new();
        }
        let early = task
            .last_input_sent_at
            .is_some_and(|t| now.saturating_sub(t) < TURN_COMPLETE_QUIET_MS);
        if early || task.in_flight.is_some() {
            task.buffered
                .retain(|e| !matches!(e, Event::TurnComplete { .. }));
            task.buffered.push_back(Event::TurnComplete {
                session_id: id.into(),
                turn_output: output,
            });
            return vec![ev("turn_complete_buffered", id, json!({}))];
        }
        let label = task.spec.label.clone();
        let mut out = vec![ev("turn_complete", id, json!({}))];
        if level == Level::Notify {
            record(
                task,
                now,
                "turn_complete",
                "",
                "escalate",
                None,
                "supervision level is notify",
            );
            out.push(Effect::Chat(format!(
                "[{label}] Turn finished — needs your attention: supervision is set to notify"
            )));
            return out;
        }
        let text = prompts::turn(task, &output, &shared);
        out.push(ask(task, id, AskKind::TurnComplete, output, text));
        out
    }

    /// Feeds the model's answer (or its failure) to the question asked for `session_id`.
    pub fn on_model_answer(
        &mut self,
        now: u64,
        session_id: &str,
        answer: Result<String, String>,
    ) -> Vec<Effect> {
        let level = self.level;
        let Some(task) = self.tasks.get_mut(session_id) else {
            return Vec::new();
        };
        let Some(pending) = task.in_flight.take() else {
            return Vec::new();
        };
        let label = task.spec.label.clone();
        let parsed = answer
            .map_err(|e| e.to_string())
            .and_then(|a| parse_contract::<Decision>(&a).map_err(|e| e.to_string()));
        let mut out = Vec::new();
        match parsed {
            Err(reason) => {
                record(
                    task,
                    now,
                    pending.kind.event(),
                    &pending.subject,
                    "escalate",
                    None,
                    &format!("no valid model answer: {reason}"),
                );
                match pending.kind {
                    AskKind::Blocked => {
                        out.push(ev(
                            "escalation",
                            session_id,
                            json!({"reason": "invalid_llm_response", "prompt": pending.subject}),
                        ));
                        out.push(Effect::Chat(format!(
                            "[{label}] Needs your attention: the supervisor could not decide about \"{}\"",
                            pending.subject.trim()
                        )));
                    }
                    AskKind::TurnComplete => {
                        out.push(ev(
                            "escalation",
                            session_id,
                            json!({"reason": "invalid_llm_response"}),
                        ));
                        out.push(Effect::Chat(format!(
                            "[{label}] Turn finished — needs your attention: the supervisor could not assess the turn"
                        )));
                    }
                    AskKind::Idle => {
                        let mins = now.saturating_sub(task.last_activity_at) / 60_000;
                        out.push(Effect::Chat(format!(
                            "[{label}] Session idle for {mins}m — couldn't determine status. Needs your attention."
                        )));
                    }
                }
            }
            Ok(decision) => {
                task.auto_resolved_count = 0;
                if pending.kind == AskKind::TurnComplete {
                    out.push(ev(
                        "turn_assessment",
                        session_id,
                        json!({"decision": decision.action.as_str(), "reasoning": decision.reasoning}),
                    ));
                }
                if level == Level::Confirm
                    && pending.kind != AskKind::Idle
                    && decision.action != DecisionAction::Ignore
                {
                    out.push(ev("pending_confirmation", session_id, json!({
                        "prompt": pending.subject, "suggested": decision.action.as_str(),
                        "response": decision.response, "keys": decision.keys, "reasoning": decision.reasoning})));
                    task.confirmation = Some((pending, decision));
                    return out;
                }
                out.extend(self.execute(now, session_id, pending, decision));
            }
        }
        out.extend(self.next_buffered(now, session_id));
        out
    }

    /// A person's answer to a pending confirmation: run the suggestion, an override, or drop it.
    /// `None` if nothing is pending for the session.
    pub fn confirm(
        &mut self,
        now: u64,
        session_id: &str,
        approved: bool,
        override_decision: Option<Decision>,
    ) -> Option<Vec<Effect>> {
        self.confirm_seen(now, session_id, None, approved, override_decision)
            .ok()
            .flatten()
    }

    /// [`Supervisor::confirm`] for a person who saw prompt `seen`: `Err(current)` when the
    /// pending confirmation is for another prompt now (a newer one replaced it), and nothing is
    /// decided; an answer must never go to a prompt the person did not see.
    pub fn confirm_seen(
        &mut self,
        now: u64,
        session_id: &str,
        seen: Option<&str>,
        approved: bool,
        override_decision: Option<Decision>,
    ) -> Result<Option<Vec<Effect>>, String> {
        let Some(task) = self.tasks.get_mut(session_id) else {
            return Ok(None);
        };
        if let (Some(seen), Some((pending, _))) = (seen, &task.confirmation)
            && pending.subject != seen
        {
            return Err(pending.subject.clone());
        }
        let Some((pending, suggested)) = task.confirmation.take() else {
            return Ok(None);
        };
        let mut out = Vec::new();
        if approved {
            out.push(ev("confirmation_approved", session_id, json!({})));
            let d = override_decision.unwrap_or(suggested);
            out.extend(self.execute(now, session_id, pending, d));
        } else {
            record(
                task,
                now,
                pending.kind.event(),
                &pending.subject,
                "ignore",
                None,
                "rejected by a person",
            );
            out.push(ev("confirmation_rejected", session_id, json!({})));
        }
        out.extend(self.next_buffered(now, session_id));
        Ok(Some(out))
    }

    fn execute(&mut self, now: u64, id: &str, pending: Pending, mut d: Decision) -> Vec<Effect> {
        let shared_len = self.shared.len();
        let others: Vec<(String, String)> = self.shared.clone();
        let task = self.tasks.get_mut(id).expect("caller checked");
        let label = task.spec.label.clone();
        let mut out = vec![ev(
            "coordination_decision",
            id,
            json!({
            "event": pending.kind.event(), "decision": d.action.as_str(), "reasoning": d.reasoning}),
        )];
        if let Some(k) = &d.key_decision {
            self.shared.push((label.clone(), k.clone()));
        }
        let task = self.tasks.get_mut(id).expect("caller checked");
        match d.action {
            DecisionAction::Respond => {
                if pending.kind == AskKind::Blocked
                    && guard::outside_path(&pending.subject, &task.spec.workdir).is_some()
                    && guard::approves(d.response.as_deref(), d.keys.as_deref())
                {
                    let wd = task.spec.workdir.display().to_string();
                    d.keys = None;
                    d.response = Some(format!(
                        "No — that path is outside your workspace. Use {wd} instead. Create any files or directories you need there."
                    ));
                    out.push(Effect::Chat(format!(
                        "[{label}] Declined out-of-scope access and redirected to workspace ({wd}). If you intended broader access, send the agent an override."
                    )));
                }
                if let Some(keys) = d.keys.clone() {
                    record(
                        task,
                        now,
                        pending.kind.event(),
                        &pending.subject,
                        "respond",
                        Some(format!("keys:{}", keys.join(","))),
                        &d.reasoning,
                    );
                    out.push(Effect::SendKeys {
                        session_id: id.into(),
                        keys,
                    });
                } else if let Some(mut text) = d.response.clone() {
                    // Longer answers carry what other agents decided since this one last heard.
                    let unseen: Vec<String> = others[task.seen_shared.min(others.len())..]
                        .iter()
                        .filter(|(l, _)| *l != label)
                        .map(|(l, k)| format!("[{l}] {k}"))
                        .collect();
                    if text.chars().count() > 20 && !unseen.is_empty() {
                        text.push_str(&format!(
                            "\n\n(Context from other agents: {})",
                            unseen.join("; ")
                        ));
                        task.seen_shared = shared_len;
                    }
                    record(
                        task,
                        now,
                        pending.kind.event(),
                        &pending.subject,
                        "respond",
                        Some(text.clone()),
                        &d.reasoning,
                    );
                    out.push(Effect::SendText {
                        session_id: id.into(),
                        text,
                    });
                }
                task.last_input_sent_at = Some(now);
                if pending.kind == AskKind::Idle {
                    task.idle_check_count = 0;
                }
            }
            DecisionAction::Complete => {
                task.status = TaskStatus::Completed;
                let summary = completion_summary(&pending.subject);
                task.completion_summary = Some(summary.clone());
                record(
                    task,
                    now,
                    pending.kind.event(),
                    &pending.subject,
                    "complete",
                    None,
                    &d.reasoning,
                );
                let tail = if summary.is_empty() {
                    String::new()
                } else {
                    format!("\n\n{summary}")
                };
                out.push(Effect::MarkCompleted {
                    session_id: id.into(),
                });
                out.push(Effect::Stop {
                    session_id: id.into(),
                    force: false,
                });
                out.push(ev("task_complete", id, json!({"summary": summary})));
                out.push(Effect::Chat(format!("Finished \"{label}\".{tail}")));
                out.extend(self.swarm_check());
            }
            DecisionAction::Escalate => {
                record(
                    task,
                    now,
                    pending.kind.event(),
                    &pending.subject,
                    "escalate",
                    None,
                    &d.reasoning,
                );
                out.push(ev(
                    "escalation",
                    id,
                    json!({"reason": "model", "reasoning": d.reasoning}),
                ));
                out.push(Effect::Chat(match pending.kind {
                    AskKind::Blocked => format!("[{label}] Needs your attention: {}", d.reasoning),
                    AskKind::TurnComplete => format!(
                        "[{label}] Turn finished — needs your attention: {}",
                        d.reasoning
                    ),
                    AskKind::Idle => {
                        let mins = now.saturating_sub(task.last_activity_at) / 60_000;
                        format!(
                            "[{label}] Idle for {mins}m — needs your attention: {}",
                            d.reasoning
                        )
                    }
                }));
            }
            DecisionAction::Ignore => {
                record(
                    task,
                    now,
                    pending.kind.event(),
                    &pending.subject,
                    "ignore",
                    None,
                    &d.reasoning,
                );
            }
        }
        if pending.kind == AskKind::Idle {
            out.push(ev(
                "idle_check_decision",
                id,
                json!({"decision": d.action.as_str()}),
            ));
        }
        out
    }

    fn next_buffered(&mut self, now: u64, id: &str) -> Vec<Effect> {
        let Some(task) = self.tasks.get_mut(id) else {
            return Vec::new();
        };
        if task.in_flight.is_some() || task.confirmation.is_some() {
            return Vec::new();
        }
        // A turn-complete still inside the quiet window stays buffered for `tick`.
        let quiet = task
            .last_input_sent_at
            .is_some_and(|t| now.saturating_sub(t) < TURN_COMPLETE_QUIET_MS);
        let pos = task
            .buffered
            .iter()
            .position(|e| !(quiet && matches!(e, Event::TurnComplete { .. })));
        match pos.and_then(|p| task.buffered.remove(p)) {
            Some(e) => self.on_event(now, e),
            None => Vec::new(),
        }
    }

    /// Time passes: releases held and buffered events and runs the idle watchdog over `probes`
    /// (one per registered session the PTY service still knows; a missing one counts as gone).
    pub fn tick(&mut self, now: u64, probes: &[Probe]) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.paused_until.is_some_and(|u| now >= u) {
            out.extend(self.resume(now));
        }
        self.held
            .retain(|(at, _)| now.saturating_sub(*at) < UNREGISTERED_HOLD_MS);
        let ids: Vec<String> = self.tasks.keys().cloned().collect();
        for id in ids {
            out.extend(self.next_buffered(now, &id));
            out.extend(self.watch(now, &id, probes.iter().find(|p| p.session_id == id)));
        }
        out
    }

    fn watch(&mut self, now: u64, id: &str, probe: Option<&Probe>) -> Vec<Effect> {
        let shared = self.shared.clone();
        let task = self.tasks.get_mut(id).expect("listed");
        if task.status != TaskStatus::Active || now.saturating_sub(task.last_scan_at) < IDLE_SCAN_MS
        {
            return Vec::new();
        }
        task.last_scan_at = now;
        let label = task.spec.label.clone();
        let Some(probe) = probe.filter(|p| p.alive) else {
            task.status = TaskStatus::Stopped;
            task.stopped_at = Some(now);
            record(task, now, "idle", "", "stopped", None, "session lost");
            let mut out = vec![Effect::Chat(format!(
                "[{label}] Session lost — the agent process is no longer running (likely killed during a restart)."
            ))];
            out.extend(self.swarm_check());
            return out;
        };
        task.last_activity_at = task.last_activity_at.max(probe.last_activity_at);
        let changed = task.last_output_key != Some(probe.output_key);
        task.last_output_key = Some(probe.output_key);
        let idle_for = now.saturating_sub(task.last_activity_at);
        if changed
            || idle_for < IDLE_THRESHOLD_MS
            || task.in_flight.is_some()
            || task.confirmation.is_some()
        {
            if changed {
                task.idle_check_count = 0;
            }
            return Vec::new();
        }
        task.idle_check_count += 1;
        let mins = idle_for / 60_000;
        if task.idle_check_count >= IDLE_STOP_CHECK {
            task.status = TaskStatus::Stopped;
            task.stopped_at = Some(now);
            record(
                task,
                now,
                "idle",
                "",
                "stopped",
                None,
                "idle with no progress",
            );
            let mut out = vec![
                Effect::Stop {
                    session_id: id.into(),
                    force: false,
                },
                Effect::Chat(format!(
                    "[{label}] Session stopped — idle for {mins} minutes with no progress."
                )),
            ];
            out.extend(self.swarm_check());
            return out;
        }
        let text = prompts::idle(task, mins, &shared);
        vec![ask(task, id, AskKind::Idle, String::new(), text)]
    }

    fn swarm_check(&mut self) -> Vec<Effect> {
        if self.swarm_announced || self.tasks.is_empty() {
            return Vec::new();
        }
        if self.tasks.values().any(|t| t.status == TaskStatus::Active) {
            return Vec::new();
        }
        self.swarm_announced = true;
        let count = |s: TaskStatus| self.tasks.values().filter(|t| t.status == s).count();
        let (c, s, e) = (
            count(TaskStatus::Completed),
            count(TaskStatus::Stopped),
            count(TaskStatus::Error),
        );
        let n = self.tasks.len();
        vec![
            Effect::Broadcast(
                json!({"type": "swarm_complete", "total": n, "completed": c, "stopped": s, "errored": e}),
            ),
            Effect::Chat(format!(
                "All {n} coding agents finished ({c} completed, {s} stopped, {e} errored). Review their work when you're ready."
            )),
        ]
    }
}

/// Asks the model `prompt` about `subject` for session `id`, marking the question in flight so that
/// the session has one decision at a time and the answer is matched to what was asked.
fn ask(task: &mut Task, id: &str, kind: AskKind, subject: String, prompt: String) -> Effect {
    task.in_flight = Some(Pending { kind, subject });
    Effect::AskModel {
        session_id: id.into(),
        kind,
        prompt,
    }
}

/// Escalates a blocked prompt without asking the model: records the decision, emits `escalation`
/// with `reason`, and tells the person with `chat`.
#[allow(clippy::too_many_arguments)]
fn escalate_blocked(
    out: &mut Vec<Effect>,
    task: &mut Task,
    now: u64,
    id: &str,
    prompt: &str,
    reason: &str,
    reasoning: &str,
    chat: String,
) {
    record(task, now, "blocked", prompt, "escalate", None, reasoning);
    out.push(ev(
        "escalation",
        id,
        json!({"reason": reason, "prompt": prompt}),
    ));
    out.push(Effect::Chat(chat));
}

fn record(
    task: &mut Task,
    now: u64,
    event: &str,
    prompt: &str,
    decision: &str,
    response: Option<String>,
    reasoning: &str,
) {
    task.decisions.push(DecisionRecord {
        timestamp: now,
        event: event.into(),
        prompt_text: prompt.chars().take(500).collect(),
        decision: decision.into(),
        response,
        reasoning: reasoning.into(),
    });
}

/// JSON of a task for the API.
pub fn task_json(t: &Task) -> Value {
    json!({
        "sessionId": t.spec.session_id, "label": t.spec.label, "task": t.spec.task,
        "workdir": t.spec.workdir.display().to_string(), "repo": t.spec.repo,
        "status": t.status.as_str(), "autoResolvedCount": t.auto_resolved_count,
        "idleCheckCount": t.idle_check_count, "lastInputSentAt": t.last_input_sent_at,
        "completionSummary": t.completion_summary,
        "decisions": t.decisions.iter().map(DecisionRecord::to_json).collect::<Vec<_>>(),
    })
}

/// PR URLs, "Created pull request #N", commit shas and the diffstat from the last 50 lines.
pub fn completion_summary(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let tail = &lines[lines.len().saturating_sub(50)..];
    let mut keep: Vec<String> = Vec::new();
    for l in tail {
        let t = l.trim();
        let pr_url = t.contains("/pull/") && t.contains("http");
        let created = t.contains("Created pull request #");
        let commit = t.starts_with('[')
            && t.contains(']')
            && t.split_whitespace().nth(1).is_some_and(|w| {
                let w = w.trim_end_matches(']');
                (7..=40).contains(&w.len()) && w.chars().all(|c| c.is_ascii_hexdigit())
            });
        let diffstat = t.contains("file changed") || t.contains("files changed");
        if (pr_url || created || commit || diffstat) && !keep.iter().any(|k| k == t) {
            keep.push(t.to_string());
        }
    }
    keep.join("\n")
}

#[cfg(test)]
mod tests;
