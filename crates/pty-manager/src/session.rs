//! The session state machine (BEHAVIOR.md §1.3, §2.1, §4, §5): a plain value fed
//! `(now, observation)` that returns actions. No I/O, no threads, no sleeps; the reactor executes
//! the actions and calls [`SessionMachine::tick`] at [`SessionMachine::next_deadline`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::adapter::Adapter;
use crate::autorespond::{
    AUDIT_CAPACITY, AuditRecord, AuditSource, AutoResponsePolicy, collapse_ws, decide, excerpt,
};
use crate::explain::{Detector, Observation, PromptHit};
use crate::rules::{LoginMethod, PromptType, Response, RuleSet, RuleSpec, Signal};
use crate::snapshot::ScreenSnapshot;
use crate::stall::{Classification, StallConfig, StallContext, redact_for_classifier};
use crate::status::SessionStatus;
use crate::{Error, Result};

/// Timings and policy of one session (BEHAVIOR.md §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Adapter type (for classifier context).
    pub agent_type: String,
    /// `ready` held on an unchanged screen this long → `ready`.
    pub ready_settle_ms: u64,
    /// A finished turn held this long → `task_complete`.
    pub task_complete_settle_ms: u64,
    /// Minimum gap between `blocking_prompt` events.
    pub prompt_debounce_ms: u64,
    /// A prompt that will be reported rather than answered is reported this long after it
    /// appears (if still shown), so its rows are complete. Answers are never delayed.
    pub prompt_report_delay_ms: u64,
    /// An answered prompt still shown this long later is reported unanswered.
    pub answered_recheck_ms: u64,
    /// A busy marker whose text has not changed for this long, next to a finished-turn or ready
    /// signal, is stale and no longer holds the session busy.
    pub stale_busy_ms: u64,
    /// Hooks that have been silent this long while busy no longer decide turn end alone.
    pub hook_stale_ms: u64,
    /// Longest a synchronized update may defer a detection pass.
    pub sync_update_max_ms: u64,
    /// Stall detection.
    pub stall: StallConfig,
    /// Auto-response policy.
    pub policy: AutoResponsePolicy,
    /// A plain shell: classifier suggestions are never typed.
    pub is_shell: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            agent_type: String::new(),
            ready_settle_ms: 100,
            task_complete_settle_ms: 1500,
            prompt_debounce_ms: 250,
            prompt_report_delay_ms: 30,
            answered_recheck_ms: 2000,
            stale_busy_ms: 3000,
            hook_stale_ms: 60_000,
            sync_update_max_ms: 200,
            stall: StallConfig::default(),
            policy: AutoResponsePolicy::default(),
            is_shell: false,
        }
    }
}

impl SessionConfig {
    /// Every timing cut to [`MAX_TIMING_MS`]: a longer one means "never", and must not overflow
    /// a deadline (`u64::MAX` as "off" did, on the reactor thread).
    fn bounded(mut self) -> Self {
        for ms in [
            &mut self.ready_settle_ms,
            &mut self.task_complete_settle_ms,
            &mut self.prompt_debounce_ms,
            &mut self.prompt_report_delay_ms,
            &mut self.answered_recheck_ms,
            &mut self.stale_busy_ms,
            &mut self.hook_stale_ms,
            &mut self.sync_update_max_ms,
            &mut self.stall.timeout_ms,
            &mut self.stall.max_backoff_ms,
            &mut self.stall.loading_cap_ms,
        ] {
            *ms = (*ms).min(MAX_TIMING_MS);
        }
        self
    }

    /// Defaults with the adapter's timings.
    pub fn for_adapter(adapter: &dyn Adapter) -> Self {
        SessionConfig {
            agent_type: adapter.agent_type().to_owned(),
            ready_settle_ms: adapter.ready_settle_ms(),
            task_complete_settle_ms: adapter.task_complete_settle_ms(),
            is_shell: adapter.is_shell(),
            ..Default::default()
        }
    }
}

/// Detection settings a caller gives per session at spawn (the adapter gives the rest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectionOptions {
    /// Stall detection (off by default in the manager).
    pub stall: StallConfig,
    /// Auto-response policy (preset categories, skip flag, classifier auto-respond).
    pub policy: AutoResponsePolicy,
    /// Session rules, evaluated before the adapter's (prompt rules only).
    pub rules: Vec<RuleSpec>,
    /// Override of the adapter's `ready_settle_ms`.
    pub ready_settle_ms: Option<u64>,
    /// Override of the adapter's `task_complete_settle_ms`.
    pub task_complete_settle_ms: Option<u64>,
}

impl DetectionOptions {
    /// Check the session rules (prompt rules that compile).
    pub fn validate(&self) -> Result<()> {
        for r in &self.rules {
            if r.signal != Signal::Prompt {
                return Err(Error::InvalidRule {
                    id: r.id.clone(),
                    reason: format!("session rules must be prompt rules, not {}", r.signal),
                });
            }
        }
        RuleSet::compile(&self.rules).map(|_| ())
    }

    /// The session config for this adapter with these options applied.
    pub fn config_for(&self, adapter: &dyn Adapter) -> SessionConfig {
        let mut c = SessionConfig::for_adapter(adapter);
        c.stall = self.stall;
        c.policy = self.policy.clone();
        if let Some(ms) = self.ready_settle_ms {
            c.ready_settle_ms = ms;
        }
        if let Some(ms) = self.task_complete_settle_ms {
            c.task_complete_settle_ms = ms;
        }
        c
    }
}

/// How a turn's end was known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionSource {
    /// The screen (settle, or the stall timer finding a finished turn).
    Screen,
    /// A hook event.
    Hook,
    /// The stall classifier.
    Classifier,
}

/// The `info` of a `blocking_prompt` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockingPromptInfo {
    /// Prompt type.
    #[serde(rename = "type")]
    pub prompt_type: PromptType,
    /// Fixture prompt kind, if the rule names one.
    pub kind: Option<String>,
    /// The prompt rows.
    pub prompt: String,
    /// Menu options read from the prompt rows (`1. Yes` …).
    pub options: Vec<String>,
    /// Whether a rule could answer it (safe, with a response, allowed by policy).
    pub can_auto_respond: bool,
    /// The rule's (or classifier's) answer, when not given automatically; never a secret rule's.
    pub suggested_response: Option<String>,
    /// The rule's description.
    pub instructions: Option<String>,
    /// A URL on the prompt rows, if any.
    pub url: Option<String>,
    /// The rule that matched (none for classifier prompts).
    pub rule_id: Option<String>,
}

/// Events the detection engine emits (BEHAVIOR.md §1.4); the manager adds the session handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DetectionEvent {
    /// The child was spawned.
    SessionStarted,
    /// Every status change.
    SessionStatusChanged {
        /// Old status.
        from: SessionStatus,
        /// New status.
        to: SessionStatus,
    },
    /// The session reached its input prompt.
    SessionReady,
    /// A prompt was seen (answered or not).
    BlockingPrompt {
        /// What was seen.
        info: BlockingPromptInfo,
        /// Whether it was answered automatically.
        auto_responded: bool,
    },
    /// An automatic input was written.
    AutoResponse(AuditRecord),
    /// A login screen (short form).
    LoginRequired {
        /// The matched rows.
        instructions: String,
        /// Login URL, if found.
        url: Option<String>,
    },
    /// A login screen (full form).
    AuthRequired {
        /// Method.
        method: LoginMethod,
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
    TaskComplete {
        /// The turn that ended.
        turn: u64,
        /// How it was known.
        source: CompletionSource,
        /// Rows scrolled off this turn + final rows minus the prompt box (≤ 64 KiB).
        turn_output: String,
        /// The agent's failure text, if a failure ended the turn.
        error: Option<String>,
        /// Turn duration.
        duration_ms: u64,
    },
    /// The running tool changed.
    ToolRunning {
        /// Tool name.
        tool_name: String,
        /// Matched rows, if from the screen.
        description: Option<String>,
    },
    /// Nothing meaningful changed for the stall timeout.
    StallDetected {
        /// Recent screen text.
        recent_output: String,
        /// How long nothing meaningful changed.
        stalled_for_ms: u64,
        /// 1..=max emissions in this episode.
        emission: u32,
    },
    /// A session-level error (classifier `error`, PTY failure).
    SessionError {
        /// What happened.
        error: String,
    },
    /// The child was reaped.
    SessionStopped {
        /// `normal exit`, `exit code N`, `signal SIGTERM` …
        reason: String,
        /// Exit code.
        code: Option<i32>,
        /// Signal number.
        signal: Option<i32>,
    },
}

/// The longest timing a session uses (a year); longer ones, up to `u64::MAX`, mean "never" and are
/// cut to this.
pub const MAX_TIMING_MS: u64 = 365 * 24 * 60 * 60 * 1000;

/// How long a classifier request is waited for (BEHAVIOR.md §2.1: 30 s = no answer).
const CLASSIFIER_TIMEOUT: Duration = Duration::from_secs(30);
/// What audit records and explanations show instead of a secret rule's answer.
pub(crate) const REDACTED: &str = "<redacted>";

/// A classifier request not answered yet, identified by what its context carries.
#[derive(Debug, Clone, Copy)]
struct ClassifyWait {
    turn: u64,
    screen_hash: u64,
    stalled_for_ms: u64,
    deadline: Instant,
}

impl ClassifyWait {
    fn matches(&self, ctx: &StallContext) -> bool {
        (self.turn, self.screen_hash, self.stalled_for_ms)
            == (ctx.turn, ctx.screen_hash, ctx.stalled_for_ms)
    }
}

/// What the executor (the reactor) must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write an answer: text then Enter as its own write, or keys 50 ms apart.
    Respond {
        /// What to write.
        response: Response,
        /// The rule (or `classifier`) that decided it.
        rule_id: String,
    },
    /// Emit an event to subscribers.
    Emit(DetectionEvent),
    /// Ask the stall classifier (off the reactor thread); feed the answer to
    /// [`SessionMachine::classified`].
    Classify(StallContext),
}

/// A hook event reported by the agent itself (BEHAVIOR.md §7.9, §10.5), already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEvent {
    /// A prompt was submitted (a turn starts).
    TurnStarted,
    /// A tool starts.
    ToolStarted {
        /// Tool name.
        name: String,
    },
    /// A tool finished.
    ToolFinished,
    /// A permission dialog was raised or handled (activity only; the screen decides prompts).
    Permission,
    /// The turn ended (Claude `Stop`/`StopFailure`/`TaskCompleted`/`idle_prompt`, Gemini
    /// `AfterAgent`, Codex OSC 7501 `done`).
    TurnEnded {
        /// Failure text (`StopFailure`).
        error: Option<String>,
    },
    /// The agent's session ended (never stops the session: only reaping does).
    SessionEnded,
    /// Any other activity.
    Activity,
}

#[derive(Debug, Clone, Copy)]
struct Settle {
    hash: u64,
    deadline: Instant,
    turn: u64,
}

#[derive(Debug, Clone, Copy)]
struct Handled {
    answered_at: Option<Instant>,
    reported: bool,
    /// When a pass first found it gone (reset when it shows again within the grace period).
    absent_since: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Stall {
    base_hash: u64,
    deadline: Option<Instant>,
    backoff_ms: u64,
    emissions: u32,
    last_change: Instant,
    paused: bool,
}

/// The session state machine.
#[derive(Debug)]
pub struct SessionMachine {
    cfg: SessionConfig,
    detector: Detector,
    status: SessionStatus,
    turn: u64,
    started: Instant,
    wall_start: SystemTime,
    turn_started: Instant,
    turn_start_hash: Option<u64>,
    task: String,
    interrupted: Option<SessionStatus>,
    input_during_block: bool,
    blocked_key: Option<String>,
    blocked_by_classifier: bool,
    last: Option<Observation>,
    ready_settle: Option<Settle>,
    task_settle: Option<Settle>,
    busy_marker: Option<(String, Instant)>,
    /// When a busy marker shown beside an idle signal becomes stale (re-evaluated then).
    stale_check: Option<Instant>,
    handled: HashMap<String, Handled>,
    last_prompt_emit: Option<Instant>,
    prompt_recheck: Option<Instant>,
    /// Classifier requests not answered yet, with when they stop counting (BEHAVIOR.md §2.1
    /// classifier timeout: 30 s = no answer).
    classify_waits: Vec<ClassifyWait>,
    /// Requests that got no answer in time.
    classifier_timeouts: u64,
    /// The OSC 7501 payload of the last observed screen (Codex reports its state there).
    last_osc7501: Option<String>,
    /// A prompt about to be reported: its key and when it was first seen.
    pending_report: Option<(String, Instant)>,
    answered_recheck: Option<Instant>,
    /// `once` rules that answered (see [`once_key`]).
    once_used: HashSet<String>,
    session_rules: Vec<RuleSpec>,
    session_set: Option<RuleSet>,
    login_key: Option<String>,
    tool: Option<String>,
    stall: Stall,
    stalled: bool,
    hooks_lead: bool,
    last_hook: Option<Instant>,
    sync_since: Option<Instant>,
    /// Output arrived (or a pass was deferred) that no pass has read yet: a recheck timer then
    /// leaves its decision to that pass instead of acting on an older screen.
    unread_output: bool,
    audit: VecDeque<AuditRecord>,
    /// A process group other than the program's holds the terminal (a tool it started).
    foreground_child: bool,
}

impl SessionMachine {
    /// A machine in `pending`, for a session of this adapter.
    pub fn new(now: Instant, cfg: SessionConfig, detector: Detector) -> Self {
        let cfg = cfg.bounded();
        SessionMachine {
            stall: Stall {
                base_hash: 0,
                deadline: None,
                backoff_ms: cfg.stall.timeout_ms,
                emissions: 0,
                last_change: now,
                paused: false,
            },
            cfg,
            detector,
            status: SessionStatus::Pending,
            turn: 0,
            started: now,
            wall_start: SystemTime::now(),
            turn_started: now,
            turn_start_hash: None,
            task: String::new(),
            interrupted: None,
            input_during_block: false,
            blocked_key: None,
            blocked_by_classifier: false,
            last: None,
            ready_settle: None,
            task_settle: None,
            busy_marker: None,
            stale_check: None,
            handled: HashMap::new(),
            last_prompt_emit: None,
            prompt_recheck: None,
            classify_waits: Vec::new(),
            classifier_timeouts: 0,
            last_osc7501: None,
            pending_report: None,
            answered_recheck: None,
            once_used: HashSet::new(),
            session_rules: Vec::new(),
            session_set: None,
            login_key: None,
            tool: None,
            stalled: false,
            hooks_lead: false,
            last_hook: None,
            sync_since: None,
            unread_output: false,
            audit: VecDeque::new(),
            foreground_child: false,
        }
    }

    /// A machine for this adapter with [`SessionConfig::for_adapter`] and its detector.
    pub fn for_adapter(now: Instant, adapter: &dyn Adapter) -> Self {
        Self::new(
            now,
            SessionConfig::for_adapter(adapter),
            adapter.detector().clone(),
        )
    }

    // ----- queries -----

    /// Current status.
    pub fn status(&self) -> SessionStatus {
        self.status
    }
    /// Current turn (0 before the first).
    pub fn turn(&self) -> u64 {
        self.turn
    }
    /// Whether a stall was reported and nothing meaningful changed since.
    pub fn stalled(&self) -> bool {
        self.stalled
    }
    /// Whether a busy signal is visible.
    pub fn loading(&self) -> bool {
        self.last.as_ref().is_some_and(|o| o.has(Signal::Busy))
    }
    /// The running tool, if known.
    pub fn tool(&self) -> Option<&str> {
        self.tool.as_deref()
    }
    /// The prompt the session is blocked on.
    pub fn prompt(&self) -> Option<&str> {
        if self.status != SessionStatus::Blocked {
            return None;
        }
        self.last
            .as_ref()
            .and_then(|o| o.prompts.first())
            .map(|p| p.text.as_str())
    }
    /// The config.
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }
    /// Mutable policy (preset, skip flag, classifier auto-respond).
    pub fn policy_mut(&mut self) -> &mut AutoResponsePolicy {
        &mut self.cfg.policy
    }
    /// The audit ring, oldest first.
    pub fn audit(&self) -> impl Iterator<Item = &AuditRecord> {
        self.audit.iter()
    }
    /// The last observation.
    pub fn last_observation(&self) -> Option<&Observation> {
        self.last.as_ref()
    }
    /// The detector.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// When [`tick`](Self::tick) must next be called (none = no timer armed).
    pub fn next_deadline(&self) -> Option<Instant> {
        let hook_stale = (self.status == SessionStatus::Busy)
            .then(|| self.hooks_stale_at())
            .flatten();
        [
            self.ready_settle.map(|s| s.deadline),
            self.task_settle.map(|s| s.deadline),
            self.prompt_recheck,
            self.answered_recheck,
            self.stale_check,
            self.stall.deadline,
            hook_stale,
            self.classify_waits.iter().map(|w| w.deadline).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- runtime rules (§4.3) -----

    /// Add a session rule (replaces one with the same id, else appends). Replacing forgets its
    /// `once` state.
    pub fn add_rule(&mut self, rule: RuleSpec) -> Result<()> {
        let mut rules = self.session_rules.clone();
        if let Some(r) = rules.iter_mut().find(|r| r.id == rule.id) {
            *r = rule.clone();
        } else {
            rules.push(rule.clone());
        }
        self.set_rules(rules)?;
        self.once_used.remove(&once_key(true, &rule.id));
        Ok(())
    }
    /// Remove a session rule; forgets its `once` state.
    pub fn remove_rule(&mut self, id: &str) -> bool {
        let before = self.session_rules.len();
        let rules: Vec<RuleSpec> = self
            .session_rules
            .iter()
            .filter(|r| r.id != id)
            .cloned()
            .collect();
        if rules.len() == before {
            return false;
        }
        self.once_used.remove(&once_key(true, id));
        self.set_rules(rules).is_ok()
    }
    /// Replace all session rules (all compile or none change).
    pub fn set_rules(&mut self, rules: Vec<RuleSpec>) -> Result<()> {
        for r in &rules {
            if r.signal != Signal::Prompt {
                return Err(Error::InvalidRule {
                    id: r.id.clone(),
                    reason: format!("session rules must be prompt rules, not {}", r.signal),
                });
            }
        }
        let set = RuleSet::compile(&rules)?;
        // Session rules keep insertion order: priority only orders adapter rules.
        let ordered: Vec<RuleSpec> = rules
            .iter()
            .map(|r| RuleSpec {
                priority: 0,
                ..r.clone()
            })
            .collect();
        let set = if set.is_empty() {
            None
        } else {
            Some(RuleSet::compile(&ordered)?)
        };
        for old in &self.session_rules {
            if !rules.iter().any(|r| r == old) {
                self.once_used.remove(&once_key(true, &old.id));
            }
        }
        self.session_rules = rules;
        self.session_set = set;
        Ok(())
    }
    /// A copy of the session rules.
    pub fn rules(&self) -> Vec<RuleSpec> {
        self.session_rules.clone()
    }
    /// Remove every session rule.
    pub fn clear_rules(&mut self) {
        for r in &self.session_rules {
            self.once_used.remove(&once_key(true, &r.id));
        }
        self.session_rules.clear();
        self.session_set = None;
    }

    // ----- lifecycle inputs -----

    /// The child was spawned: `pending` → `starting`.
    pub fn started(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.status == SessionStatus::Pending {
            out.push(Action::Emit(DetectionEvent::SessionStarted));
            self.set_status(now, SessionStatus::Starting, &mut out);
        }
        out
    }

    /// `stop()` was called: any live status → `stopping`; timers cancelled.
    pub fn stop_requested(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.status.is_live() && self.status != SessionStatus::Stopping {
            self.cancel_timers();
            self.set_status(now, SessionStatus::Stopping, &mut out);
        }
        out
    }

    /// The child was reaped and its output drained: `stopped` (the only way to get there).
    pub fn exited(&mut self, now: Instant, code: Option<i32>, signal: Option<i32>) -> Vec<Action> {
        let mut out = Vec::new();
        if self.status == SessionStatus::Stopped {
            return out;
        }
        self.cancel_timers();
        self.set_status(now, SessionStatus::Stopped, &mut out);
        out.push(Action::Emit(DetectionEvent::SessionStopped {
            reason: exit_reason(code, signal),
            code,
            signal,
        }));
        out
    }

    /// The PTY failed while the child lived: `error`.
    pub fn io_error(&mut self, now: Instant, error: &str) -> Vec<Action> {
        let mut out = Vec::new();
        if self.status.is_live() {
            self.cancel_timers();
            self.set_status(now, SessionStatus::Error, &mut out);
            out.push(Action::Emit(DetectionEvent::SessionError {
                error: error.to_owned(),
            }));
        }
        out
    }

    /// A task was sent (`send`): turn + 1, old timers cancelled, `busy` (authenticating stays).
    /// Errors with `session not running` when the session is stopping or gone; nothing changes.
    pub fn send(&mut self, now: Instant, session_id: &str, task: &str) -> Result<Vec<Action>> {
        use SessionStatus::*;
        if !matches!(
            self.status,
            Starting | Authenticating | Ready | Busy | Blocked
        ) {
            return Err(crate::Error::SessionNotRunning(session_id.to_owned()));
        }
        let mut out = Vec::new();
        self.new_turn(now);
        self.task = task.chars().take(500).collect();
        if self.status == Blocked && !self.blocked_by_classifier {
            // §1.3 #8: blocked until the prompt leaves the screen, then `busy` (the input went to
            // a turn). Text that does not dismiss the dialog leaves the session blocked on it.
            self.input_during_block = true;
        } else if self.status != Authenticating {
            self.blocked_key = None;
            self.blocked_by_classifier = false;
            self.set_status(now, Busy, &mut out);
        }
        self.restart_stall(now);
        Ok(out)
    }

    /// Keys (or a paste) were written by a person or the API: restarts the stall timer, erases
    /// nothing.
    pub fn keys_sent(&mut self, now: Instant) {
        // Keys answer the dialog; they do not start a turn, so a blocked session returns to the
        // status the prompt interrupted.
        self.restart_stall(now);
    }

    // ----- detection input -----

    /// One detection pass over a fresh snapshot (session rules first, then the adapter's).
    /// While a synchronized update is open (≤ `sync_update_max_ms`) the pass is skipped; the
    /// caller keeps the session dirty and tries again after the next batch or deadline.
    pub fn observe_screen(&mut self, now: Instant, snap: Arc<ScreenSnapshot>) -> Vec<Action> {
        if snap.synchronized_update {
            let since = *self.sync_since.get_or_insert(now);
            if now.duration_since(since) < Duration::from_millis(self.cfg.sync_update_max_ms) {
                self.unread_output = true;
                return Vec::new();
            }
        } else {
            self.sync_since = None;
        }
        self.unread_output = false;
        let osc = snap.osc7501.clone();
        let obs = self.detector.observe(snap, self.session_set.as_ref());
        let mut out = self.observe(now, obs);
        // Codex's OSC 7501 `state=done` is its turn-end hook (BEHAVIOR.md §1.3 #11): a payload
        // that changes to it while busy ends the turn at once, without the screen's settle.
        if osc != self.last_osc7501 {
            let done = osc
                .as_deref()
                .is_some_and(|p| p.split(';').any(|f| f.trim() == "state=done"));
            self.last_osc7501 = osc;
            // Completed directly rather than through `hook`: Codex reports no other hooks, so
            // the screen must stay in charge of the turns whose `done` is missed.
            if done && self.status == SessionStatus::Busy {
                self.complete_turn(now, CompletionSource::Hook, None, &mut out);
            }
        }
        out
    }

    /// The program wrote output that no pass has read yet (the caller runs one soon): until it
    /// does, a prompt recheck does not answer or report from the older screen.
    pub fn output_arrived(&mut self) {
        self.unread_output = true;
    }

    /// Whether a pass is being deferred by an open synchronized update.
    pub fn pass_deferred(&self) -> bool {
        self.sync_since.is_some()
    }

    /// Feed one observation.
    pub fn observe(&mut self, now: Instant, obs: Observation) -> Vec<Action> {
        use SessionStatus::*;
        let mut out = Vec::new();
        if !matches!(
            self.status,
            Starting | Authenticating | Ready | Busy | Blocked
        ) {
            return out;
        }
        // Tool changes.
        if obs.tool != self.tool {
            if let Some(name) = &obs.tool {
                out.push(Action::Emit(DetectionEvent::ToolRunning {
                    tool_name: name.clone(),
                    description: obs
                        .hits
                        .iter()
                        .find(|h| h.signal == Signal::ToolRunning)
                        .map(|h| h.text.clone()),
                }));
            }
            self.tool = obs.tool.clone();
        }
        // The busy marker's own text (spinner glyph, timer) tells a live marker from a stale one.
        match &obs.busy_text {
            Some(t) if self.busy_marker.as_ref().is_none_or(|(old, _)| old != t) => {
                self.busy_marker = Some((t.clone(), now));
            }
            Some(_) => {}
            None => self.busy_marker = None,
        }
        // Meaningful change.
        if obs.hash != self.stall.base_hash {
            self.stall.base_hash = obs.hash;
            self.stalled = false;
            if self.stall_armed_status() {
                self.restart_stall(now);
            }
            if self.blocked_by_classifier && self.status == Blocked {
                self.blocked_by_classifier = false;
                self.set_status(now, Busy, &mut out);
            }
        }
        // Login (§1.3 #5).
        if let Some(login) = &obs.login {
            if matches!(self.status, Starting | Ready | Busy | Blocked) {
                if self.status != Blocked {
                    self.interrupted = Some(self.status);
                }
                self.ready_settle = None;
                self.task_settle = None;
                self.set_status(now, Authenticating, &mut out);
            }
            let key = format!("{}|{:?}|{:?}", login.rule_id, login.url, login.device_code);
            if self.login_key.as_deref() != Some(&key) {
                self.login_key = Some(key);
                let snippet = obs.recent_text(10_000);
                let snippet = collapse_ws(&snippet);
                let n = snippet.chars().count();
                let snippet: String = snippet.chars().skip(n.saturating_sub(280)).collect();
                out.push(Action::Emit(DetectionEvent::AuthRequired {
                    method: login.method,
                    url: login.url.clone(),
                    device_code: login.device_code.clone(),
                    instructions: login.instructions.clone(),
                    prompt_snippet: snippet,
                }));
                out.push(Action::Emit(DetectionEvent::LoginRequired {
                    instructions: login.instructions.clone(),
                    url: login.url.clone(),
                }));
            }
        } else {
            self.login_key = None;
        }
        self.last = Some(obs);
        self.handle_prompts(now, &mut out);
        self.handle_activity(now, &mut out);
        out
    }

    /// Fire due timers (settles, prompt re-checks, hook staleness, stall).
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        use SessionStatus::*;
        let mut out = Vec::new();
        if let Some(s) = self.ready_settle
            && now >= s.deadline
        {
            self.ready_settle = None;
            if matches!(self.status, Starting | Authenticating)
                && s.turn == self.turn
                && self.last.as_ref().is_some_and(|o| {
                    o.hash == s.hash && self.idle_signal(now, o) && o.login.is_none()
                })
            {
                self.interrupted = None;
                self.set_status(now, Ready, &mut out);
                out.push(Action::Emit(DetectionEvent::SessionReady));
            }
        }
        if let Some(s) = self.task_settle
            && now >= s.deadline
        {
            self.task_settle = None;
            if self.status == Busy
                && s.turn == self.turn
                && self.last.as_ref().is_some_and(|o| {
                    o.hash == s.hash && self.idle_signal(now, o) && o.prompts.is_empty()
                })
            {
                self.complete_turn(now, CompletionSource::Screen, None, &mut out);
            }
        }
        let recheck_due = |t: Option<Instant>| t.is_some_and(|t| now >= t);
        if recheck_due(self.stale_check) {
            self.stale_check = None;
            self.handle_activity(now, &mut out);
        }
        if recheck_due(self.prompt_recheck) || recheck_due(self.answered_recheck) {
            if recheck_due(self.prompt_recheck) {
                self.prompt_recheck = None;
            }
            if recheck_due(self.answered_recheck) {
                self.answered_recheck = None;
            }
            // With newer output unread, the pass that reads it decides (it re-arms what is
            // still needed): a recheck must not type an answer into a dialog that has gone.
            if !self.unread_output {
                self.handle_prompts(now, &mut out);
                self.handle_activity(now, &mut out);
            }
        }
        if self.status == Busy && self.hooks_stale_at().is_some_and(|at| now >= at) {
            // Hooks went quiet: the screen decides turn end again (lost hook events). A
            // task-complete settle a pass already started (the pass saw the hooks stale first)
            // carries on; leaving `hooks_lead` set then kept this deadline in the past, and the
            // reactor spun on it until the settle ended.
            self.hooks_lead = false;
            self.handle_activity(now, &mut out);
        }
        if self.stall.deadline.is_some_and(|d| now >= d) {
            self.stall.deadline = None;
            self.fire_stall(now, &mut out);
        }
        // A classifier that has not answered in time is given up on: its thread is left to
        // finish on its own, the stall stays unclassified (= no answer: the backoff already
        // doubled when it fired) and a late answer is dropped.
        let before = self.classify_waits.len();
        self.classify_waits.retain(|w| now < w.deadline);
        self.classifier_timeouts += (before - self.classify_waits.len()) as u64;
        out
    }

    /// Classifier requests that got no answer within the classifier timeout (30 s); their
    /// stalls stayed unclassified and late answers were dropped.
    pub fn classifier_timeouts(&self) -> u64 {
        self.classifier_timeouts
    }

    /// A hook event from the agent (second signal; the screen stays the fallback).
    pub fn hook(&mut self, now: Instant, event: HookEvent) -> Vec<Action> {
        use SessionStatus::*;
        let mut out = Vec::new();
        if !matches!(
            self.status,
            Starting | Authenticating | Ready | Busy | Blocked
        ) {
            return out; // results after `stopped` are dropped
        }
        self.hooks_lead = true;
        self.last_hook = Some(now);
        self.restart_stall(now);
        match event {
            HookEvent::TurnStarted => {
                if self.status == Ready {
                    self.new_turn(now);
                    self.set_status(now, Busy, &mut out);
                    self.restart_stall(now);
                }
            }
            HookEvent::ToolStarted { name } => {
                if self.tool.as_deref() != Some(&name) {
                    out.push(Action::Emit(DetectionEvent::ToolRunning {
                        tool_name: name.clone(),
                        description: None,
                    }));
                    self.tool = Some(name);
                }
            }
            HookEvent::ToolFinished => self.tool = None,
            HookEvent::TurnEnded { error } => {
                if self.status == Busy {
                    self.complete_turn(now, CompletionSource::Hook, error, &mut out);
                }
            }
            HookEvent::Permission | HookEvent::SessionEnded | HookEvent::Activity => {}
        }
        out
    }

    /// The classifier's answer to a [`Action::Classify`] request. Dropped when the turn moved on
    /// or the session is no longer busy/authenticating.
    pub fn classified(
        &mut self,
        now: Instant,
        request: &StallContext,
        answer: Option<Classification>,
    ) -> Vec<Action> {
        use SessionStatus::*;
        let mut out = Vec::new();
        // Only an answer to a request still waited for counts (not one that timed out).
        let Some(i) = self.classify_waits.iter().position(|w| w.matches(request)) else {
            return out;
        };
        self.classify_waits.remove(i);
        if request.turn != self.turn || !matches!(self.status, Busy | Authenticating) {
            return out;
        }
        match answer {
            None | Some(Classification::StillWorking) => {} // backoff already doubled at fire
            Some(Classification::TaskComplete) => {
                if self.status == Busy {
                    self.complete_turn(now, CompletionSource::Classifier, None, &mut out);
                }
            }
            Some(Classification::Error { prompt }) => {
                out.push(Action::Emit(DetectionEvent::SessionError {
                    error: prompt.unwrap_or_else(|| "stall classified as error".to_owned()),
                }));
                self.stall.paused = true;
                self.stall.deadline = None;
            }
            Some(Classification::WaitingForInput {
                prompt,
                suggested_response,
            }) => {
                if self.status != Busy {
                    return out;
                }
                let parsed = suggested_response.as_deref().and_then(parse_suggestion);
                let permission_like = looks_like_permission(&prompt);
                let apply = self.cfg.policy.classifier_auto_respond
                    && !self.cfg.is_shell
                    && self.stall.base_hash == request.screen_hash
                    && parsed.is_some()
                    && (!permission_like || self.cfg.policy.approves("shell"));
                let info = BlockingPromptInfo {
                    prompt_type: PromptType::StallClassified,
                    kind: None,
                    prompt: prompt.clone(),
                    options: Vec::new(),
                    can_auto_respond: apply,
                    suggested_response: suggested_response.clone(),
                    instructions: None,
                    url: None,
                    rule_id: None,
                };
                match (apply, parsed) {
                    (true, Some(response)) => {
                        let record = self.audit_record(
                            now,
                            "classifier",
                            AuditSource::Classifier,
                            PromptType::StallClassified,
                            &prompt,
                            &response,
                            false,
                        );
                        out.push(Action::Respond {
                            response,
                            rule_id: "classifier".to_owned(),
                        });
                        out.push(Action::Emit(DetectionEvent::BlockingPrompt {
                            info,
                            auto_responded: true,
                        }));
                        out.push(Action::Emit(DetectionEvent::AutoResponse(record)));
                        self.restart_stall(now);
                    }
                    _ => {
                        self.interrupted = Some(Busy);
                        self.blocked_by_classifier = true;
                        self.set_status(now, Blocked, &mut out);
                        out.push(Action::Emit(DetectionEvent::BlockingPrompt {
                            info,
                            auto_responded: false,
                        }));
                    }
                }
            }
        }
        out
    }

    // ----- internals -----

    fn set_status(&mut self, now: Instant, to: SessionStatus, out: &mut Vec<Action>) {
        let from = self.status;
        if from == to {
            return;
        }
        self.status = to;
        out.push(Action::Emit(DetectionEvent::SessionStatusChanged {
            from,
            to,
        }));
        if self.stall_armed_status() {
            if !matches!(from, SessionStatus::Busy | SessionStatus::Authenticating) {
                self.restart_stall(now);
            }
        } else {
            self.stall.deadline = None;
        }
        if to != SessionStatus::Blocked {
            self.input_during_block = false;
        }
    }

    fn stall_armed_status(&self) -> bool {
        self.cfg.stall.enabled
            && matches!(
                self.status,
                SessionStatus::Busy | SessionStatus::Authenticating
            )
    }

    fn restart_stall(&mut self, now: Instant) {
        self.stall.backoff_ms = self.cfg.stall.timeout_ms;
        self.stall.emissions = 0;
        self.stall.last_change = now;
        self.stall.paused = false;
        self.stall.deadline = self
            .stall_armed_status()
            .then(|| now + Duration::from_millis(self.cfg.stall.timeout_ms));
    }

    fn cancel_timers(&mut self) {
        self.ready_settle = None;
        self.task_settle = None;
        self.prompt_recheck = None;
        self.answered_recheck = None;
        self.stale_check = None;
        self.stall.deadline = None;
    }

    fn new_turn(&mut self, now: Instant) {
        self.turn += 1;
        self.turn_started = now;
        self.turn_start_hash = self.last.as_ref().map(|o| o.hash);
        self.ready_settle = None;
        self.task_settle = None;
        self.prompt_recheck = None;
        self.answered_recheck = None;
        self.busy_marker = None;
    }

    /// Whether a busy signal still holds the session busy: visible, and not a stale marker (its
    /// text unchanged for `stale_busy_ms` while a ready/finished signal shows too).
    fn busy_live(&self, now: Instant, obs: &Observation) -> bool {
        if !obs.has(Signal::Busy) {
            return false;
        }
        let idle_too = obs.has(Signal::Ready) || obs.has(Signal::TaskComplete);
        let stale = idle_too
            && self.busy_marker.as_ref().is_some_and(|(_, since)| {
                now.duration_since(*since) >= Duration::from_millis(self.cfg.stale_busy_ms)
            });
        !stale
    }

    fn idle_signal(&self, now: Instant, obs: &Observation) -> bool {
        (obs.has(Signal::Ready) || obs.has(Signal::TaskComplete)) && !self.busy_live(now, obs)
    }

    fn handle_activity(&mut self, now: Instant, out: &mut Vec<Action>) {
        use SessionStatus::*;
        let Some(obs) = self.last.as_ref() else {
            return;
        };
        let idle = self.idle_signal(now, obs);
        let busy = self.busy_live(now, obs);
        // A busy marker beside an idle signal may turn stale: look again when it would.
        self.stale_check = match (&self.busy_marker, busy) {
            (Some((_, since)), true) if obs.has(Signal::Ready) || obs.has(Signal::TaskComplete) => {
                Some(*since + Duration::from_millis(self.cfg.stale_busy_ms))
            }
            _ => None,
        };
        let quiet = obs.prompts.is_empty() && obs.login.is_none();
        let hash = obs.hash;
        match self.status {
            Starting | Authenticating => {
                if idle && quiet {
                    self.arm_ready_settle(now, hash);
                } else {
                    self.ready_settle = None;
                }
            }
            Ready => {
                self.ready_settle = None;
                // Console typing started a turn (§1.3 #9). While hooks report, they decide
                // (§1.2): a spinner frame still drawn after a turn-end hook is not a new turn.
                if busy && quiet && !self.hooks_fresh(now) {
                    self.new_turn(now);
                    self.set_status(now, Busy, out);
                }
            }
            Busy => {
                let hooks_fresh = self.hooks_fresh(now);
                // Right after `send` the old idle screen may still show: wait for a change.
                let moved = self.turn_start_hash != Some(hash);
                if idle && quiet && moved && !hooks_fresh {
                    let deadline = now + Duration::from_millis(self.cfg.task_complete_settle_ms);
                    match self.task_settle {
                        Some(s) if s.hash == hash && s.turn == self.turn => {}
                        _ => {
                            self.task_settle = Some(Settle {
                                hash,
                                deadline,
                                turn: self.turn,
                            })
                        }
                    }
                } else {
                    self.task_settle = None;
                }
            }
            _ => {
                self.ready_settle = None;
                self.task_settle = None;
            }
        }
    }

    /// When the hooks, once they lead, count as gone quiet: `hook_stale_ms` after the last one.
    fn hooks_stale_at(&self) -> Option<Instant> {
        let last = self.last_hook.filter(|_| self.hooks_lead)?;
        Some(last + Duration::from_millis(self.cfg.hook_stale_ms))
    }

    /// Whether hooks have reported and have not gone quiet for `hook_stale_ms`.
    fn hooks_fresh(&self, now: Instant) -> bool {
        self.hooks_stale_at().is_some_and(|at| now < at)
    }

    fn arm_ready_settle(&mut self, now: Instant, hash: u64) {
        match self.ready_settle {
            Some(s) if s.hash == hash && s.turn == self.turn => {}
            _ => {
                self.ready_settle = Some(Settle {
                    hash,
                    deadline: now + Duration::from_millis(self.cfg.ready_settle_ms),
                    turn: self.turn,
                })
            }
        }
    }

    fn handle_prompts(&mut self, now: Instant, out: &mut Vec<Action>) {
        use SessionStatus::*;
        let Some(obs) = self.last.as_ref() else {
            return;
        };
        let keys: Vec<String> = obs.prompts.iter().map(prompt_key).collect();
        // A prompt is forgotten once it has been off the screen for a debounce period, so a
        // redraw that blanks it for a moment does not make it "new" (and answered twice).
        let grace = Duration::from_millis(self.cfg.prompt_debounce_ms);
        self.handled.retain(|k, h| {
            let gone_long = h
                .absent_since
                .is_some_and(|t| now.duration_since(t) >= grace);
            if gone_long {
                return false;
            }
            if keys.contains(k) {
                h.absent_since = None;
            } else if h.absent_since.is_none() {
                h.absent_since = Some(now);
            }
            true
        });
        // §1.3 #8: the prompt we are blocked on left the screen, for as long as a prompt takes to be
        // forgotten: a redraw that blanks it for a pass (erase, then repaint) keeps the session
        // blocked, where unblocking at once left it `ready` with the dialog shown (a reported
        // prompt is not reported again while remembered).
        let gone = match self.blocked_key.as_ref() {
            _ if self.status != Blocked || self.blocked_by_classifier => false,
            Some(k) if keys.contains(k) => false,
            Some(k) => match self.handled.get(k).and_then(|h| h.absent_since) {
                Some(since) if now.duration_since(since) < grace => {
                    let due = since + grace;
                    self.answered_recheck = Some(self.answered_recheck.map_or(due, |t| t.min(due)));
                    false
                }
                _ => true,
            },
            None => true,
        };
        if gone {
            let to = if self.input_during_block {
                Busy
            } else {
                self.interrupted.unwrap_or(Busy)
            };
            self.blocked_key = None;
            self.interrupted = None;
            let to = if to == Blocked { Busy } else { to };
            self.set_status(now, to, out);
        }
        let Some(obs) = self.last.as_ref() else {
            return;
        };
        let Some(p) = obs.prompts.first().cloned() else {
            self.prompt_recheck = None;
            self.pending_report = None;
            return;
        };
        let key = prompt_key(&p);
        if let Some(h) = self.handled.get(&key).copied() {
            if let Some(at) = h.answered_at
                && !h.reported
            {
                let due = at + Duration::from_millis(self.cfg.answered_recheck_ms);
                if now >= due {
                    // Answered but still shown 2 s later: report it unanswered (§4.2).
                    self.report(now, &p, &key, false, out);
                } else {
                    self.answered_recheck = Some(self.answered_recheck.map_or(due, |t| t.min(due)));
                }
            }
            return;
        }
        if let Some(last) = self.last_prompt_emit {
            let end = last + Duration::from_millis(self.cfg.prompt_debounce_ms);
            if now < end {
                // Inside the debounce: re-checked at its end, reported if still shown.
                self.prompt_recheck = Some(end);
                return;
            }
        }
        let once_used = self
            .once_used
            .contains(&once_key(p.session_rule, &p.rule_id));
        let decision = decide(&self.cfg.policy, &p, once_used);
        if decision.is_err() {
            // A prompt that will be reported (not answered) waits a moment for its rows to be
            // drawn completely, so the event carries the whole question, not a half-drawn row.
            let delay = Duration::from_millis(self.cfg.prompt_report_delay_ms);
            match &self.pending_report {
                Some((k, since)) if *k == key => {
                    if now < *since + delay {
                        self.prompt_recheck = Some(*since + delay);
                        return;
                    }
                }
                _ if delay.is_zero() => {}
                _ => {
                    self.pending_report = Some((key.clone(), now));
                    self.prompt_recheck = Some(now + delay);
                    return;
                }
            }
        }
        self.pending_report = None;
        self.prompt_recheck = None;
        self.last_prompt_emit = Some(now);
        match decision {
            Ok(response) => {
                if p.once {
                    self.once_used.insert(once_key(p.session_rule, &p.rule_id));
                }
                let source = if p.session_rule {
                    AuditSource::Session
                } else {
                    AuditSource::Adapter
                };
                let record = self.audit_record(
                    now,
                    &p.rule_id,
                    source,
                    p.prompt_type,
                    &p.text,
                    &response,
                    p.secret,
                );
                out.push(Action::Respond {
                    response: response.clone(),
                    rule_id: p.rule_id.clone(),
                });
                out.push(Action::Emit(DetectionEvent::BlockingPrompt {
                    info: prompt_info(&p, true, None),
                    auto_responded: true,
                }));
                out.push(Action::Emit(DetectionEvent::AutoResponse(record)));
                self.handled.insert(
                    key,
                    Handled {
                        answered_at: Some(now),
                        reported: false,
                        absent_since: None,
                    },
                );
                let due = now + Duration::from_millis(self.cfg.answered_recheck_ms);
                self.answered_recheck = Some(self.answered_recheck.map_or(due, |t| t.min(due)));
                self.restart_stall(now);
            }
            Err(_) => self.report(now, &p, &key, true, out),
        }
    }

    fn report(
        &mut self,
        now: Instant,
        p: &PromptHit,
        key: &str,
        fresh: bool,
        out: &mut Vec<Action>,
    ) {
        use SessionStatus::*;
        let _ = fresh;
        self.handled.insert(
            key.to_owned(),
            Handled {
                answered_at: None,
                reported: true,
                absent_since: None,
            },
        );
        if matches!(self.status, Starting | Ready | Busy) {
            self.interrupted = Some(self.status);
            self.ready_settle = None;
            self.task_settle = None;
            self.set_status(now, Blocked, out);
        }
        if self.status == Blocked {
            self.blocked_key = Some(key.to_owned());
        }
        // A secret answer (a password) never leaves in an event: no suggestion at all, so that
        // nothing downstream can type a placeholder into the prompt either.
        let suggested = match &p.response {
            Some(r) if !p.secret => Some(r.describe()),
            _ => None,
        };
        out.push(Action::Emit(DetectionEvent::BlockingPrompt {
            info: prompt_info(p, false, suggested),
            auto_responded: false,
        }));
    }

    #[allow(clippy::too_many_arguments)]
    fn audit_record(
        &mut self,
        now: Instant,
        rule_id: &str,
        source: AuditSource,
        prompt_type: PromptType,
        prompt: &str,
        response: &Response,
        secret: bool,
    ) -> AuditRecord {
        let wall = self.wall_start + now.duration_since(self.started);
        let record = AuditRecord {
            at_ms: wall
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            session_id: String::new(),
            turn: self.turn,
            rule_id: rule_id.to_owned(),
            source,
            prompt_type,
            prompt_excerpt: excerpt(prompt, 200),
            sent: if secret {
                REDACTED.to_owned()
            } else {
                response.describe()
            },
        };
        if self.audit.len() == AUDIT_CAPACITY {
            self.audit.pop_front();
        }
        self.audit.push_back(record.clone());
        record
    }

    fn complete_turn(
        &mut self,
        now: Instant,
        source: CompletionSource,
        error: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let (turn_output, screen_error) = match &self.last {
            Some(o) => (self.detector.turn_output(&o.snapshot), o.error_text.clone()),
            None => (String::new(), None),
        };
        let duration_ms = now.duration_since(self.turn_started).as_millis() as u64;
        self.task_settle = None;
        self.stalled = false;
        self.set_status(now, SessionStatus::Ready, out);
        out.push(Action::Emit(DetectionEvent::TaskComplete {
            turn: self.turn,
            source,
            turn_output,
            error: error.or(screen_error),
            duration_ms,
        }));
    }

    fn fire_stall(&mut self, now: Instant, out: &mut Vec<Action>) {
        use SessionStatus::*;
        if !self.stall_armed_status() || self.stall.paused {
            return;
        }
        let Some(obs) = self.last.clone() else {
            self.stall.deadline = Some(now + Duration::from_millis(self.stall.backoff_ms));
            return;
        };
        // §1.3 #12: a finished turn on screen completes it.
        // (A ready signal is a finished turn too, BEHAVIOR.md §1.3 #10: "task_complete, else ready".)
        if self.status == Busy
            && self.idle_signal(now, &obs)
            && obs.prompts.is_empty()
            && self.turn_start_hash != Some(obs.hash)
        {
            self.complete_turn(now, CompletionSource::Screen, None, out);
            return;
        }
        // A visible busy signal, a running tool or a usage-limit notice re-arms silently, up to
        // the loading cap.
        if obs.has(Signal::Busy)
            || self.tool.is_some()
            || self.foreground_child
            || obs.has(Signal::UsageLimit)
        {
            // Measured from the last meaningful change: how long the screen has been frozen.
            let since = self.stall.last_change;
            if now.duration_since(since) < Duration::from_millis(self.cfg.stall.loading_cap_ms) {
                self.stall.deadline = Some(now + Duration::from_millis(self.stall.backoff_ms));
                return;
            }
        }
        if self.stall.emissions >= self.cfg.stall.max_emissions {
            return; // silent until a meaningful change
        }
        self.stall.emissions += 1;
        self.stalled = true;
        let stalled_for_ms = now.duration_since(self.stall.last_change).as_millis() as u64;
        let recent = obs.recent_text(2000);
        out.push(Action::Emit(DetectionEvent::StallDetected {
            recent_output: recent.clone(),
            stalled_for_ms,
            emission: self.stall.emissions,
        }));
        let ctx = StallContext {
            session_id: String::new(),
            agent_type: self.cfg.agent_type.clone(),
            status: self.status,
            turn: self.turn,
            screen_hash: self.stall.base_hash,
            stalled_for_ms,
            task: self.task.clone(),
            recent_output: redact_for_classifier(&recent, 1500),
        };
        self.classify_waits.push(ClassifyWait {
            turn: ctx.turn,
            screen_hash: ctx.screen_hash,
            stalled_for_ms,
            deadline: now + CLASSIFIER_TIMEOUT,
        });
        out.push(Action::Classify(ctx));
        // No answer yet counts as `still_working`: the next check waits twice as long.
        self.stall.backoff_ms = (self.stall.backoff_ms * 2).min(self.cfg.stall.max_backoff_ms);
        self.stall.deadline = Some(now + Duration::from_millis(self.stall.backoff_ms));
    }

    /// Whether a process group other than the program's is in the terminal's foreground (the
    /// reactor reads it with `tcgetpgrp` before stall timers fire): it counts as a running tool,
    /// which keeps a stall silent up to the loading cap (BEHAVIOR.md §5.1).
    pub fn set_foreground_child(&mut self, running: bool) {
        self.foreground_child = running;
    }

    /// The current stall backoff (for tests and diagnostics).
    pub fn stall_backoff_ms(&self) -> u64 {
        self.stall.backoff_ms
    }
}

/// A prompt's identity: rule id + the matched text, whitespace collapsed (full length). The match
/// rather than its whole rows, so a row still being drawn does not make the same prompt "new".
fn prompt_key(p: &PromptHit) -> String {
    format!("{}\u{1f}{}", p.rule_id, collapse_ws(&p.matched))
}

fn prompt_info(p: &PromptHit, can_auto: bool, suggested: Option<String>) -> BlockingPromptInfo {
    BlockingPromptInfo {
        prompt_type: p.prompt_type,
        kind: p.kind.clone(),
        prompt: p.text.clone(),
        options: menu_options(&p.text),
        can_auto_respond: can_auto,
        suggested_response: suggested,
        instructions: p.description.clone(),
        url: p
            .text
            .split_whitespace()
            .find(|w| w.starts_with("https://") || w.starts_with("http://"))
            .map(str::to_owned),
        rule_id: Some(p.rule_id.clone()),
    }
}

/// The `once` state's key of a rule: session and adapter rules keep separate states, so that a
/// session rule with an adapter rule's id neither spends nor resets the adapter rule's.
fn once_key(session_rule: bool, id: &str) -> String {
    let side = if session_rule { "session" } else { "adapter" };
    format!("{side}:{id}")
}

/// `1. Yes  2. No` style options on the prompt rows.
fn menu_options(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start_matches(['❯', '›', '●', '→', '>', ' ']);
        // Split a row holding several options ("1. Yes  2. No") on runs of 2+ spaces.
        for part in line.split("  ").map(str::trim).filter(|s| !s.is_empty()) {
            let part = part.trim_start_matches(['❯', '›', '●', '→', ' ']);
            if let Some((n, rest)) = part.split_once(". ")
                && !n.is_empty()
                && n.len() <= 2
                && n.chars().all(|c| c.is_ascii_digit())
            {
                out.push(rest.trim().to_owned());
            }
        }
    }
    out
}

fn looks_like_permission(prompt: &str) -> bool {
    let p = prompt.to_lowercase();
    [
        "allow",
        "permission",
        "approve",
        "proceed",
        "run ",
        "execute",
        "delete",
        "trust",
    ]
    .iter()
    .any(|w| p.contains(w))
}

/// A classifier suggestion: `keys:a,b` (each a plausible key name) or one printable line ≤ 200
/// chars. Key names are validated again by the key table before anything is written.
fn parse_suggestion(s: &str) -> Option<Response> {
    if let Some(keys) = s.strip_prefix("keys:") {
        let keys: Vec<String> = keys
            .split(',')
            .map(|k| k.trim().to_lowercase())
            .filter(|k| !k.is_empty())
            .collect();
        let plausible = |k: &String| {
            k.len() <= 24
                && k.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, '+' | '[' | ']' | '\\' | '^' | '_' | '@')
                })
        };
        return (!keys.is_empty() && keys.iter().all(plausible)).then_some(Response::Keys(keys));
    }
    let line = s.trim();
    (!line.is_empty() && line.chars().count() <= 200 && !line.chars().any(|c| c.is_control()))
        .then(|| Response::Text(line.to_owned()))
}

fn exit_reason(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (_, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("signal {}", s.as_str()),
            Err(_) => format!("signal {sig}"),
        },
        (Some(0), None) => "normal exit".to_owned(),
        (Some(c), None) => format!("exit code {c}"),
        (None, None) => "normal exit".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_options_are_read() {
        assert_eq!(
            menu_options("❯ 1. Yes, I trust this folder\n  2. No, exit"),
            ["Yes, I trust this folder", "No, exit"]
        );
        assert_eq!(
            menu_options("› 1. Trust and continue  2. Back to Agent Command Center"),
            ["Trust and continue", "Back to Agent Command Center"]
        );
        assert!(menu_options("Create new file? (Y)es/(N)o [Yes]:").is_empty());
    }

    #[test]
    fn suggestions_are_validated() {
        assert_eq!(
            parse_suggestion("keys:down,enter"),
            Some(Response::Keys(vec!["down".into(), "enter".into()]))
        );
        assert_eq!(parse_suggestion("y"), Some(Response::Text("y".into())));
        assert_eq!(parse_suggestion("rm -rf /\nls"), None);
        assert_eq!(parse_suggestion(&"x".repeat(201)), None);
        assert_eq!(parse_suggestion("keys:; rm"), None);
    }

    #[test]
    fn exit_reasons() {
        assert_eq!(exit_reason(Some(0), None), "normal exit");
        assert_eq!(exit_reason(Some(3), None), "exit code 3");
        assert_eq!(exit_reason(None, Some(15)), "signal SIGTERM");
    }
}
