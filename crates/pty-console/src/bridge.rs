//! The console bridge: per-session snapshots, the output and status streams, and control, over a
//! [`PtyManager`] (BEHAVIOR.md §9).
//!
//! One pump thread reads the manager's event channel and fans each event out, as JSON, to the
//! clients watching that session (bounded queues; a client that misses an event is resynced). Each
//! client's output comes from its own [`PtyManager::attach`], whose first bytes paint the current
//! screen and whose chunks follow with nothing missing or doubled; when the manager reports that
//! the client lagged, the client is started again from a fresh attachment (see [`crate::feed`]).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use pty_manager::{
    AuditRecord, AuditSource, BlockingPromptInfo, OutputChunk, PtyManager, QueueReceiver, RuleSpec,
    SessionEvent, SessionInfo, SessionStatus, events::now_ms,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::feed::{FeedLimits, FeedQueue, Next, WireFrame};
use crate::launcher::{AgentChoice, Launcher, SpawnRequest};
use crate::{Error, Result};

/// Raw output kept per session for the snapshot's `raw` field (BEHAVIOR.md §9 `max_buffered_bytes`).
pub const MAX_BUFFERED_BYTES: usize = 100_000;
/// Status messages one client may have queued before it misses some and is resynced.
pub const STATUS_QUEUE: usize = 256;
/// Audit records a snapshot carries (BEHAVIOR.md §9: the last 20).
pub const SNAPSHOT_AUDIT: usize = 20;
/// Answers given by people kept per session (the manager keeps 200 automatic ones).
const HUMAN_AUDIT: usize = 200;
/// Output chunks and status messages handled in one [`ClientFeed::poll`] before frames go out.
const DRAIN_BATCH: usize = 512;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A status subscriber: the bounded sender and a flag raised when a message did not fit.
struct StatusSub {
    tx: SyncSender<String>,
    missed: Arc<AtomicBool>,
}

/// The longest stop grace a control message may ask for (the default is 5 s).
pub(crate) const MAX_STOP_GRACE_MS: u64 = 60_000;

#[derive(Default)]
struct Hub {
    /// Clients per session id.
    subs: HashMap<String, Vec<StatusSub>>,
    /// When each session entered its current status, ms since the Unix epoch.
    since: HashMap<String, u64>,
    /// The prompt each blocked session waits on, from its last unanswered `blocking_prompt`.
    waiting: HashMap<String, BlockingPromptInfo>,
    /// Prompts people answered through the console, per session, oldest first.
    human: HashMap<String, VecDeque<AuditRecord>>,
}

impl Hub {
    /// Queues `text` for every client of session `id`; a client whose queue is full is marked
    /// for a resync.
    fn broadcast(&mut self, id: &str, text: &str) {
        let Some(subs) = self.subs.get_mut(id) else {
            return;
        };
        subs.retain(|s| match s.tx.try_send(text.to_owned()) {
            Ok(()) => true,
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                s.missed.store(true, Ordering::Relaxed);
                true
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => false,
        });
    }

    /// Forgets the per-session state of sessions `known` says the manager no longer has (removed,
    /// not merely stopped: a stopped session's tile keeps its status time and answers until the
    /// manager forgets it). Without this a long-running console grew by an entry per session ever
    /// started.
    fn prune(&mut self, known: impl Fn(&str) -> bool) {
        self.since.retain(|id, _| known(id));
        self.waiting.retain(|id, _| known(id));
        self.human.retain(|id, _| known(id));
    }

    /// Tracks the waiting prompt from the manager's events.
    fn track_prompt(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::BlockingPrompt {
                session,
                info,
                auto_responded: false,
            } => {
                self.waiting.insert(session.id.clone(), info.clone());
            }
            SessionEvent::StatusChanged { session, to, .. } if *to != SessionStatus::Blocked => {
                self.waiting.remove(&session.id);
            }
            SessionEvent::Stopped { session, .. } => {
                self.waiting.remove(&session.id);
            }
            _ => {}
        }
    }
}

/// The bridge between one [`PtyManager`] and the people watching it.
pub struct Console {
    manager: Arc<PtyManager>,
    launcher: Arc<dyn Launcher>,
    hub: Arc<Mutex<Hub>>,
    limits: FeedLimits,
    default_workdir: Mutex<Option<PathBuf>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One session as the console shows it (`snapshot()` in BEHAVIOR.md §9).
#[derive(Debug, Clone)]
pub struct SessionSnapshot {
    /// The handle.
    pub session: SessionInfo,
    /// When the session entered its current status, ms since the Unix epoch.
    pub status_since_ms: u64,
    /// The visible screen as text rows.
    pub lines: Vec<String>,
    /// Width and height.
    pub cols: u16,
    /// Height in rows.
    pub rows: u16,
    /// Cursor `(row, col)`.
    pub cursor: (u16, u16),
    /// Whether the alternate screen is active.
    pub alternate_screen: bool,
    /// Bytes that reproduce the screen and its modes in a fresh terminal.
    pub formatted: Vec<u8>,
    /// The newest raw output, at most [`MAX_BUFFERED_BYTES`].
    pub raw: Vec<u8>,
    /// The prompt waiting for a person (with its rule id and suggested response), if any.
    pub prompt_info: Option<BlockingPromptInfo>,
    /// The last [`SNAPSHOT_AUDIT`] answers given to this session's prompts, oldest first: the
    /// manager's automatic ones and those people gave through the console (`supervisor:human`).
    pub audit: Vec<AuditRecord>,
    /// The session's runtime auto-response rules, in matching order.
    pub rules: Vec<RuleSpec>,
}

impl SessionSnapshot {
    /// The JSON form (`formatted` and `raw` as text; bytes that are not UTF-8 become U+FFFD).
    pub fn to_json(&self) -> Value {
        json!({
            "type": "snapshot",
            "session": self.session,
            "statusSince": self.status_since_ms,
            "screen": {
                "cols": self.cols,
                "rows": self.rows,
                "text": self.lines.join("\n"),
                "cursor": [self.cursor.0, self.cursor.1],
                "alternateScreen": self.alternate_screen,
                "formatted": String::from_utf8_lossy(&self.formatted),
            },
            "prompt": self.session.prompt,
            "promptInfo": self.prompt_info,
            "audit": self.audit,
            "rules": self.rules,
            "raw": String::from_utf8_lossy(&self.raw),
            "bufferedLen": self.raw.len(),
        })
    }
}

/// A control request (BEHAVIOR.md §9 "Control"), as clients send it: `{"type": "keys", "keys":
/// ["ctrl+c"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Control {
    /// Bytes typed into the terminal (a browser terminal's keystrokes). Automatic terminal
    /// reports (cursor position, device attributes) are dropped: the manager answers those itself.
    Input {
        /// The text typed.
        data: String,
    },
    /// A turn: the text, then Enter (BEHAVIOR.md §2.3).
    Send {
        /// The message.
        text: String,
    },
    /// Keys by name (BEHAVIOR.md §3.1), validated before anything is written.
    Keys {
        /// Key names.
        keys: Vec<String>,
    },
    /// Text pasted without Enter.
    Paste {
        /// The text.
        text: String,
        /// Bracketed when the program enabled paste mode (default true).
        #[serde(default = "yes")]
        bracketed: bool,
    },
    /// Resize the terminal.
    Resize {
        /// Columns (1–1000).
        cols: u16,
        /// Rows (1–1000).
        rows: u16,
    },
    /// Choose option `index` (0-based) of a menu on screen.
    Select {
        /// The option.
        index: usize,
    },
    /// Stop the session (TERM, then KILL after the grace), or kill it at once with `force`.
    Stop {
        /// Kill at once.
        #[serde(default)]
        force: bool,
        /// Grace before KILL in ms (default 5000).
        #[serde(default, rename = "graceMs")]
        grace_ms: Option<u64>,
    },
    /// Answer the waiting prompt with its suggested response, only if it is still the prompt the
    /// client saw (its text, and its rule id when given); otherwise [`Error::StalePrompt`].
    Approve {
        /// The prompt text the client saw (`promptInfo.prompt` / the `blocking_prompt` event's).
        prompt: String,
        /// The rule id the client saw, checked when given.
        #[serde(default, rename = "ruleId")]
        rule_id: Option<String>,
    },
    /// Refuse the waiting prompt (see [`decline_for`]), under the same check as `Approve`.
    Deny {
        /// The prompt text the client saw.
        prompt: String,
        /// The rule id the client saw, checked when given.
        #[serde(default, rename = "ruleId")]
        rule_id: Option<String>,
    },
    /// Add (or replace, by id) a session auto-response rule (BEHAVIOR.md §4.3): a `prompt` rule in
    /// the manifest's rule form.
    AddRule {
        /// The rule.
        rule: Value,
    },
    /// Remove an auto-response rule by id.
    RemoveRule {
        /// The rule id.
        id: String,
    },
    /// Remove every auto-response rule of the session.
    ClearRules,
}

fn yes() -> bool {
    true
}

/// Whether `data` is only automatic terminal reports that a browser terminal sends by itself in
/// reply to queries in the output (cursor position `ESC[r;cR`, device attributes `ESC[?…c` /
/// `ESC[>…c`, mode reports `ESC[?…$y`, colour reports `ESC]1x;…`, DCS replies `ESC P…ESC\`).
/// The manager already answers the one query that matters (BEHAVIOR.md §2.2), so these are dropped.
/// A key that encodes like a report (Shift+F3 is `ESC[1;2R`) is dropped too; that is the price.
pub fn is_terminal_report(data: &[u8]) -> bool {
    let mut rest = data;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        match report_len(rest) {
            Some(n) => rest = &rest[n..],
            None => return false,
        }
    }
    true
}

/// Length of the report at the start of `s`, if one is there.
fn report_len(s: &[u8]) -> Option<usize> {
    match s {
        [0x1b, b'[', body @ ..] => {
            let mut i = 0;
            if matches!(body.first(), Some(b'?' | b'>' | b'=')) {
                i += 1;
            }
            while body
                .get(i)
                .is_some_and(|b| b.is_ascii_digit() || *b == b';')
            {
                i += 1;
            }
            if body.get(i) == Some(&b'$') && body.get(i + 1) == Some(&b'y') {
                return Some(2 + i + 2);
            }
            match body.get(i) {
                Some(b'R') if i > 0 => Some(2 + i + 1),
                Some(b'c') if i > 0 => Some(2 + i + 1),
                Some(b'n') if i > 0 => Some(2 + i + 1),
                _ => None,
            }
        }
        [0x1b, b']', b'1', b'0' | b'1', b';', ..] => {
            // OSC 10/11 reply, ended by BEL or ST.
            let end = s.iter().position(|b| *b == 0x07).map(|p| p + 1);
            let st = s.windows(2).position(|w| w == b"\x1b\\").map(|p| p + 2);
            end.into_iter().chain(st).min()
        }
        [0x1b, b'P', ..] => s.windows(2).position(|w| w == b"\x1b\\").map(|p| p + 2),
        _ => None,
    }
}

impl Console {
    /// A console over `manager`, starting sessions with `launcher`. Starts the pump thread, which
    /// ends when the manager shuts down.
    pub fn new(manager: Arc<PtyManager>, launcher: Arc<dyn Launcher>) -> Result<Arc<Self>> {
        Self::with_limits(manager, launcher, FeedLimits::default())
    }

    /// As [`Console::new`], with other per-client caps.
    pub fn with_limits(
        manager: Arc<PtyManager>,
        launcher: Arc<dyn Launcher>,
        limits: FeedLimits,
    ) -> Result<Arc<Self>> {
        let hub = Arc::new(Mutex::new(Hub::default()));
        let events = manager.events();
        let pump_hub = hub.clone();
        // Weak: the pump must not keep the manager (whose event senders end the pump) alive.
        let pump_manager = Arc::downgrade(&manager);
        std::thread::Builder::new()
            .name("console-pump".to_owned())
            .spawn(move || pump(events, &pump_hub, &pump_manager))
            .map_err(|e| Error::io("starting the console pump thread", e))?;
        Ok(Arc::new(Console {
            manager,
            launcher,
            hub,
            limits,
            default_workdir: Mutex::new(None),
        }))
    }

    /// The manager behind the console.
    pub fn manager(&self) -> &Arc<PtyManager> {
        &self.manager
    }

    /// Sets the directory the spawn form proposes.
    pub fn set_default_workdir(&self, dir: PathBuf) {
        *lock(&self.default_workdir) = Some(dir);
    }

    /// The directory the spawn form proposes, if set.
    pub fn default_workdir(&self) -> Option<PathBuf> {
        lock(&self.default_workdir).clone()
    }

    /// The agents the spawn form offers.
    pub fn agents(&self) -> Vec<AgentChoice> {
        self.launcher.agents()
    }

    /// Starts a session from the spawn form.
    pub fn spawn(&self, req: &SpawnRequest) -> Result<SessionInfo> {
        req.validate()?;
        let info = self.launcher.launch(&self.manager, req)?;
        lock(&self.hub)
            .since
            .entry(info.id.clone())
            .or_insert(info.started_at_ms);
        Ok(info)
    }

    fn status_since(&self, info: &SessionInfo) -> u64 {
        lock(&self.hub)
            .since
            .get(&info.id)
            .copied()
            .unwrap_or(info.started_at_ms)
    }

    /// Drops the per-session state of sessions the manager no longer has (see [`Hub::prune`]).
    fn prune(&self) {
        let manager = &self.manager;
        lock(&self.hub).prune(|id| manager.get(id).is_ok());
    }

    /// Per-session entries the console holds: `[status times, waiting prompts, people's answers]`.
    /// For tests of the pruning: each stays at most the number of sessions the manager has.
    #[doc(hidden)]
    pub fn tracked_sessions(&self) -> [usize; 3] {
        let hub = lock(&self.hub);
        [hub.since.len(), hub.waiting.len(), hub.human.len()]
    }

    /// Every live session, oldest first, with when it entered its status.
    pub fn sessions(&self) -> Vec<(SessionInfo, u64)> {
        self.prune();
        self.manager
            .list(None, None)
            .into_iter()
            .map(|s| {
                let since = self.status_since(&s);
                (s, since)
            })
            .collect()
    }

    /// The snapshot of one session, live or stopped.
    pub fn snapshot(&self, id: &str) -> Result<SessionSnapshot> {
        let attachment = self.manager.attach(id)?;
        // Only the paint bytes are needed here; dropping the receiver unsubscribes.
        drop(attachment.output);
        self.snapshot_with(id, attachment.initial)
    }

    fn snapshot_with(&self, id: &str, formatted: Vec<u8>) -> Result<SessionSnapshot> {
        let session = self.manager.get(id)?;
        let screen = self.manager.snapshot(id)?;
        let mut raw = self.manager.raw_output(id)?;
        if raw.len() > MAX_BUFFERED_BYTES {
            raw.drain(..raw.len() - MAX_BUFFERED_BYTES);
        }
        let (prompt_info, human) = {
            let hub = lock(&self.hub);
            let waiting = (session.status == SessionStatus::Blocked)
                .then(|| hub.waiting.get(id).cloned())
                .flatten();
            let human: Vec<AuditRecord> = hub
                .human
                .get(id)
                .map(|h| h.iter().cloned().collect())
                .unwrap_or_default();
            (waiting, human)
        };
        // Sessions spawned without an adapter have no detection, hence no rules or audit.
        let mut audit = self.manager.audit(id).unwrap_or_default();
        audit.extend(human);
        audit.sort_by_key(|r| r.at_ms);
        if audit.len() > SNAPSHOT_AUDIT {
            audit.drain(..audit.len() - SNAPSHOT_AUDIT);
        }
        let rules = self.manager.rules(id).unwrap_or_default();
        Ok(SessionSnapshot {
            status_since_ms: self.status_since(&session),
            prompt_info,
            audit,
            rules,
            session,
            lines: screen.lines,
            cols: screen.cols,
            rows: screen.rows,
            cursor: screen.cursor,
            alternate_screen: screen.alternate_screen,
            formatted,
            raw,
        })
    }

    /// Applies a control request to session `id`.
    pub fn control(&self, id: &str, control: Control) -> Result<()> {
        let m = &self.manager;
        match control {
            Control::Input { data } => {
                if !is_terminal_report(data.as_bytes()) {
                    m.write_raw(id, data.as_bytes())?;
                }
            }
            Control::Send { text } => {
                m.send(id, &text)?;
            }
            Control::Keys { keys } => m.send_keys(id, &keys)?,
            Control::Paste { text, bracketed } => m.paste(id, &text, bracketed)?,
            Control::Resize { cols, rows } => {
                if !(1..=1000).contains(&cols) || !(1..=1000).contains(&rows) {
                    return Err(Error::BadRequest(format!(
                        "terminal size {cols}x{rows} outside 1..=1000"
                    )));
                }
                m.resize(id, cols, rows)?;
            }
            Control::Select { index } => m.select_menu_option(id, index)?,
            Control::Stop { force: true, .. } => {
                m.kill(id)?;
            }
            Control::Stop { grace_ms, .. } => {
                // A stop returns once the program is reaped, holding the caller's connection
                // meanwhile: a program that ignores SIGTERM holds it for the whole grace.
                if grace_ms.is_some_and(|g| g > MAX_STOP_GRACE_MS) {
                    return Err(Error::BadRequest(format!(
                        "graceMs over {MAX_STOP_GRACE_MS} (use force to kill at once)"
                    )));
                }
                m.stop(id, grace_ms.map(Duration::from_millis))?;
            }
            Control::Approve { prompt, rule_id } => {
                self.answer(id, Decision::Approve, &prompt, rule_id.as_deref())?;
            }
            Control::Deny { prompt, rule_id } => {
                self.answer(id, Decision::Deny, &prompt, rule_id.as_deref())?;
            }
            Control::AddRule { rule } => {
                let spec: RuleSpec = serde_json::from_value(rule)
                    .map_err(|e| Error::BadRequest(format!("rule spec: {e}")))?;
                m.add_rule(id, spec)?;
            }
            Control::RemoveRule { id: rule_id } => {
                if !m.remove_rule(id, &rule_id)? {
                    return Err(Error::RuleNotFound(rule_id));
                }
            }
            Control::ClearRules => m.clear_rules(id)?,
        }
        Ok(())
    }

    /// The prompt session `id` waits on, if it is the one the client saw.
    fn current_prompt(
        &self,
        id: &str,
        seen: &str,
        seen_rule: Option<&str>,
    ) -> Result<(SessionInfo, BlockingPromptInfo)> {
        let session = self.manager.get(id)?;
        let stale = |why: &str| Err(Error::StalePrompt(format!("session {id}: {why}")));
        if session.status != SessionStatus::Blocked {
            return stale(&format!("no prompt is waiting (status {})", session.status));
        }
        let Some(info) = lock(&self.hub).waiting.get(id).cloned() else {
            return stale("no prompt is waiting");
        };
        // The manager's own view decides when the pump has not yet seen a newer prompt.
        if session
            .prompt
            .as_deref()
            .is_some_and(|p| collapse(p) != collapse(&info.prompt))
        {
            return stale("the prompt on screen changed; look again");
        }
        if collapse(seen) != collapse(&info.prompt) {
            return stale("the waiting prompt is not the one shown to you; look again");
        }
        if let Some(rule) = seen_rule
            && info.rule_id.as_deref() != Some(rule)
        {
            return stale(&format!(
                "the waiting prompt is from rule {:?}, not {rule:?}",
                info.rule_id.as_deref().unwrap_or("classifier")
            ));
        }
        Ok((session, info))
    }

    /// Approves or declines the waiting prompt for a person, records it and tells the watchers.
    fn answer(
        &self,
        id: &str,
        decision: Decision,
        seen: &str,
        seen_rule: Option<&str>,
    ) -> Result<AuditRecord> {
        let (session, info) = self.current_prompt(id, seen, seen_rule)?;
        let reply = match decision {
            Decision::Approve => {
                let Some(suggested) = info.suggested_response.as_deref() else {
                    return Err(Error::StalePrompt(format!(
                        "session {id}: the waiting prompt has no suggested response; answer it in \
                         the terminal"
                    )));
                };
                Reply::parse(suggested)?
            }
            Decision::Deny => decline_for(&info),
        };
        match &reply {
            Reply::Keys(keys) => self.manager.send_keys(id, keys)?,
            Reply::Text(text) => {
                self.manager.send(id, text)?;
            }
        }
        // Known prompts are consumed once answered; a repeated click must not answer the next one.
        lock(&self.hub).waiting.remove(id);
        let record = AuditRecord {
            at_ms: now_ms(),
            session_id: id.to_owned(),
            turn: session.turn,
            rule_id: "supervisor:human".to_owned(),
            source: AuditSource::Supervisor,
            prompt_type: info.prompt_type,
            prompt_excerpt: excerpt(&info.prompt, 200),
            sent: reply.describe(),
        };
        let event = json!({
            "type": "status",
            "kind": "human_response",
            "event": {
                "event": "human_response",
                "session": session,
                "decision": decision.as_str(),
                "by": "console",
                "promptRuleId": info.rule_id,
                "record": record,
            },
        })
        .to_string();
        let mut hub = lock(&self.hub);
        let ring = hub.human.entry(id.to_owned()).or_default();
        ring.push_back(record.clone());
        if ring.len() > HUMAN_AUDIT {
            ring.pop_front();
        }
        hub.broadcast(id, &event);
        Ok(record)
    }

    /// Opens a live feed of session `id` for one client: a snapshot, then output and status in
    /// order, resynced from a fresh snapshot whenever the client falls behind.
    pub fn open_feed(self: &Arc<Self>, id: &str) -> Result<ClientFeed> {
        // Fails early for an unknown id.
        self.manager.get(id)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(STATUS_QUEUE);
        let missed = Arc::new(AtomicBool::new(false));
        lock(&self.hub)
            .subs
            .entry(id.to_owned())
            .or_default()
            .push(StatusSub {
                tx,
                missed: missed.clone(),
            });
        let (notice_tx, notices) = std::sync::mpsc::channel();
        Ok(ClientFeed {
            console: self.clone(),
            id: id.to_owned(),
            queue: FeedQueue::new(self.limits),
            output: None,
            status: rx,
            missed,
            notice_tx,
            notices,
        })
    }
}

/// The pump: every manager event, as JSON, to the clients of its session. It also keeps the
/// per-session state bounded: each start or stop prunes the sessions the manager has forgotten,
/// and an event that arrives after its session was removed leaves nothing behind.
fn pump(events: QueueReceiver<SessionEvent>, hub: &Mutex<Hub>, manager: &Weak<PtyManager>) {
    for event in events.iter() {
        let id = event.session_id().to_owned();
        let Some(manager) = manager.upgrade() else {
            return;
        };
        let known = |id: &str| manager.get(id).is_ok();
        let mut hub = lock(hub);
        if let SessionEvent::Started { .. } | SessionEvent::Stopped { .. } = &event {
            hub.prune(known);
        }
        if known(&id) {
            if let SessionEvent::StatusChanged { .. } | SessionEvent::Started { .. } = &event {
                hub.since.insert(id.clone(), now_ms());
            }
            hub.track_prompt(&event);
        }
        if hub.subs.contains_key(&id) {
            let text = status_json(&event).to_string();
            hub.broadcast(&id, &text);
        }
    }
}

/// `{"type": "status", "kind": "status_changed", "event": {…}}` (BEHAVIOR.md §9 status stream).
pub fn status_json(event: &SessionEvent) -> Value {
    let name = event.name();
    let kind = name.strip_prefix("session_").unwrap_or(name);
    json!({ "type": "status", "kind": kind, "event": event })
}

/// One client's view of one session (see [`Console::open_feed`]).
pub struct ClientFeed {
    console: Arc<Console>,
    id: String,
    queue: FeedQueue,
    output: Option<QueueReceiver<OutputChunk>>,
    status: Receiver<String>,
    missed: Arc<AtomicBool>,
    notice_tx: Sender<String>,
    notices: Receiver<String>,
}

impl Drop for ClientFeed {
    /// Unregisters the feed's status queue at once (the pump would otherwise only notice at the
    /// session's next event).
    fn drop(&mut self) {
        let mut hub = lock(&self.console.hub);
        if let Some(subs) = hub.subs.get_mut(&self.id) {
            subs.retain(|s| !Arc::ptr_eq(&s.missed, &self.missed));
            if subs.is_empty() {
                hub.subs.remove(&self.id);
            }
        }
    }
}

impl std::fmt::Debug for ClientFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFeed")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ClientFeed {
    /// The session watched.
    pub fn session_id(&self) -> &str {
        &self.id
    }

    /// A sender of messages to this client (e.g. errors of its control requests), delivered in
    /// order with the stream.
    pub fn notices(&self) -> Sender<String> {
        self.notice_tx.clone()
    }

    /// Resyncs done for this client so far.
    pub fn resyncs(&self) -> u64 {
        self.queue.resyncs()
    }

    /// Status queues registered for this session (one per open feed), for tests and metrics.
    pub fn watchers(&self) -> usize {
        lock(&self.console.hub)
            .subs
            .get(&self.id)
            .map_or(0, Vec::len)
    }

    /// Waits up to `wait` for something to send and returns the frames, in order (empty when
    /// nothing came). The first call returns the snapshot.
    pub fn poll(&mut self, wait: Duration) -> Result<Vec<WireFrame>> {
        if let Next::Resync = self.queue.pop_batch() {
            self.resync()?;
            return self.take();
        }
        // Block on the output stream (the busiest source), or on status once output has ended.
        let first = match &self.output {
            Some(rx) => match rx.recv_timeout(wait) {
                Ok(chunk) => Some(chunk),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    self.output = None;
                    None
                }
            },
            None => {
                match self.status.recv_timeout(wait) {
                    Ok(text) => self.queue.push_status(text),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
                }
                None
            }
        };
        if let Some(chunk) = first {
            self.apply(chunk);
        }
        self.drain();
        self.take()
    }

    fn take(&mut self) -> Result<Vec<WireFrame>> {
        match self.queue.pop_batch() {
            Next::Send(frames) => Ok(frames),
            Next::Idle => Ok(Vec::new()),
            Next::Resync => {
                self.resync()?;
                self.take_after_resync()
            }
        }
    }

    fn take_after_resync(&mut self) -> Result<Vec<WireFrame>> {
        match self.queue.pop_batch() {
            Next::Send(frames) => Ok(frames),
            _ => Ok(Vec::new()),
        }
    }

    fn apply(&mut self, chunk: OutputChunk) {
        match chunk {
            OutputChunk::Data(bytes) => self.queue.push_output(&bytes),
            OutputChunk::Lagged { .. } => self.queue.lagged(),
        }
    }

    fn drain(&mut self) {
        for _ in 0..DRAIN_BATCH {
            let mut any = false;
            if let Some(rx) = &self.output {
                match rx.try_recv() {
                    Ok(chunk) => {
                        any = true;
                        self.apply(chunk);
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => self.output = None,
                }
            }
            if let Ok(text) = self.status.try_recv() {
                any = true;
                self.queue.push_status(text);
            }
            if let Ok(text) = self.notices.try_recv() {
                any = true;
                self.queue.push_status(text);
            }
            if !any {
                break;
            }
        }
        if self.missed.swap(false, Ordering::Relaxed) {
            self.queue.lagged();
        }
    }

    /// Starts again from a fresh attachment: its paint bytes and the snapshot JSON go first.
    fn resync(&mut self) -> Result<()> {
        // Status messages queued before the snapshot are older than it.
        while self.status.try_recv().is_ok() {}
        self.missed.store(false, Ordering::Relaxed);
        let attachment = self.console.manager.attach(&self.id)?;
        let snap = self.console.snapshot_with(&self.id, Vec::new())?;
        let mut json = snap.to_json();
        // The paint bytes travel as the binary frame after this message, not inside it.
        if let Some(screen) = json.get_mut("screen").and_then(Value::as_object_mut) {
            screen.remove("formatted");
        }
        if let Some(obj) = json.as_object_mut() {
            obj.remove("raw");
        }
        self.output = Some(attachment.output);
        self.queue.begin(json.to_string(), attachment.initial);
        Ok(())
    }
}

/// A person's answer to a waiting prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Approve,
    Deny,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }
}

/// What gets typed into a waiting prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Key names, sent with the manager's key path.
    Keys(Vec<String>),
    /// A line, typed then Enter (the manager's text path).
    Text(String),
}

impl Reply {
    /// Reads a `suggested_response`: `keys:down,enter` (a rule's keys), `text:y` (a rule's text),
    /// or a classifier's plain one-line answer.
    pub fn parse(suggested: &str) -> Result<Reply> {
        if let Some(keys) = suggested.strip_prefix("keys:") {
            let keys: Vec<String> = keys
                .split(',')
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect();
            if keys.is_empty() {
                return Err(Error::BadRequest(format!(
                    "suggested response {suggested:?} names no keys"
                )));
            }
            return Ok(Reply::Keys(keys));
        }
        let text = suggested.strip_prefix("text:").unwrap_or(suggested);
        if text.chars().any(char::is_control) || text.chars().count() > 200 {
            return Err(Error::BadRequest(format!(
                "suggested response {suggested:?} is not one short line"
            )));
        }
        Ok(Reply::Text(text.to_owned()))
    }

    /// The audit form: `keys:escape`, `text:y`.
    pub fn describe(&self) -> String {
        match self {
            Reply::Keys(k) => format!("keys:{}", k.join(",")),
            Reply::Text(t) => format!("text:{t}"),
        }
    }
}

/// How a person declines a prompt. A menu (the rule answers with keys, or options were read
/// from its rows) is dismissed with Escape, which every menu-driven CLI treats as "no / cancel"
/// without choosing an option; a text prompt gets `n` then Enter, the refusal of `(y/n)`
/// questions. Nothing else is guessed: a prompt whose answer is free text is better refused in
/// the terminal itself.
pub fn decline_for(info: &BlockingPromptInfo) -> Reply {
    let menu = !info.options.is_empty()
        || info
            .suggested_response
            .as_deref()
            .is_some_and(|s| s.starts_with("keys:"));
    if menu {
        Reply::Keys(vec!["escape".to_owned()])
    } else {
        Reply::Text("n".to_owned())
    }
}

/// Whitespace runs to one space, trimmed (the prompt rows re-wrap between reads).
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` chars of `text`, whitespace collapsed.
fn excerpt(text: &str, max: usize) -> String {
    collapse(text).chars().take(max).collect()
}

/// Where a new session's working directory must be: an existing directory.
pub(crate) fn check_workdir(path: &std::path::Path) -> Result<PathBuf> {
    if !path.is_absolute() {
        return Err(Error::BadRequest(format!(
            "workdir must be an absolute path: {}",
            path.display()
        )));
    }
    if !path.is_dir() {
        return Err(Error::BadRequest(format!(
            "workdir is not a directory: {}",
            path.display()
        )));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_reports_are_recognised() {
        let reports: &[&[u8]] = &[
            b"\x1b[12;40R",
            b"\x1b[?1;2c",
            b"\x1b[>0;276;0c",
            b"\x1b[0n",
            b"\x1b[?2004;1$y",
            b"\x1b]11;rgb:0000/0000/0000\x07",
            b"\x1b]10;rgb:ffff/ffff/ffff\x1b\\",
            b"\x1bP>|xterm.js(6.0.0)\x1b\\",
            b"\x1b[12;40R\x1b[?1;2c",
        ];
        for r in reports {
            assert!(is_terminal_report(r), "{r:?}");
        }
        let typed: &[&[u8]] = &[
            b"",
            b"echo hi\r",
            b"\x1b[A",
            b"\x1b",
            b"\x03",
            b"\x1b[12;40Rx",
            b"\x1b[c",
            b"\x1b]0;title\x07",
        ];
        for t in typed {
            assert!(!is_terminal_report(t), "{t:?}");
        }
    }

    #[test]
    fn suggested_responses_become_keys_or_a_line() {
        let ok: &[(&str, Reply)] = &[
            ("text:y", Reply::Text("y".into())),
            (
                "keys:down, enter",
                Reply::Keys(vec!["down".into(), "enter".into()]),
            ),
            ("yes please", Reply::Text("yes please".into())),
        ];
        for (s, want) in ok {
            assert_eq!(&Reply::parse(s).unwrap(), want, "{s}");
            assert!(Reply::parse(s).unwrap().describe().contains(':'));
        }
        for bad in ["keys:", "keys: , ", "text:y\nrm -rf /", "a\x1b[A"] {
            assert!(Reply::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deny_escapes_menus_and_answers_n_to_text_prompts() {
        let info = |options: &[&str], suggested: Option<&str>| BlockingPromptInfo {
            prompt_type: pty_manager::PromptType::Permission,
            kind: None,
            prompt: "Proceed?".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            can_auto_respond: false,
            suggested_response: suggested.map(str::to_owned),
            instructions: None,
            url: None,
            rule_id: Some("r".into()),
        };
        let escape = Reply::Keys(vec!["escape".into()]);
        let n = Reply::Text("n".into());
        let cases = [
            (info(&["1. Yes", "2. No"], Some("keys:enter")), &escape),
            (info(&["1. Yes", "2. No"], None), &escape),
            (info(&[], Some("keys:enter")), &escape),
            (info(&[], Some("text:y")), &n),
            (info(&[], None), &n),
        ];
        for (i, want) in &cases {
            assert_eq!(&decline_for(i), *want, "{i:?}");
        }
    }

    #[test]
    fn control_messages_parse_from_client_json() {
        let cases: &[(&str, Control)] = &[
            (
                r#"{"type":"input","data":"ls\r"}"#,
                Control::Input {
                    data: "ls\r".into(),
                },
            ),
            (
                r#"{"type":"keys","keys":["ctrl+c"]}"#,
                Control::Keys {
                    keys: vec!["ctrl+c".into()],
                },
            ),
            (
                r#"{"type":"paste","text":"a"}"#,
                Control::Paste {
                    text: "a".into(),
                    bracketed: true,
                },
            ),
            (
                r#"{"type":"resize","cols":80,"rows":24}"#,
                Control::Resize { cols: 80, rows: 24 },
            ),
            (
                r#"{"type":"stop","graceMs":100}"#,
                Control::Stop {
                    force: false,
                    grace_ms: Some(100),
                },
            ),
            (
                r#"{"type":"approve","prompt":"Allow? (y/n)","ruleId":"t.ask"}"#,
                Control::Approve {
                    prompt: "Allow? (y/n)".into(),
                    rule_id: Some("t.ask".into()),
                },
            ),
            (r#"{"type":"clear_rules"}"#, Control::ClearRules),
        ];
        for (text, want) in cases {
            let got: Control = serde_json::from_str(text).unwrap();
            assert_eq!(&got, want, "{text}");
        }
        for bad in [
            r#"{"type":"rm"}"#,
            r#"{"type":"approve"}"#,
            r#"{"type":"resize","cols":-1,"rows":2}"#,
            "[]",
        ] {
            assert!(serde_json::from_str::<Control>(bad).is_err(), "{bad}");
        }
    }
}
