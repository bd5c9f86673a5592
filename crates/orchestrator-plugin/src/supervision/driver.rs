//! Executes a [`Supervisor`]'s effects against a runtime.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{Effect, Event, Level, Probe, Supervisor, TaskSpec};
use crate::model::ModelSize;
use crate::runtime::{Runtime, RuntimeExt};

type Listener = Box<dyn Fn(&Value) + Send + Sync>;

/// Broadcast events a stream subscriber may have queued; a subscriber that falls this far behind
/// is dropped (its stream ends and the client reconnects for a fresh snapshot).
pub const STREAM_QUEUE: usize = 1024;

#[derive(Default)]
struct StreamSet {
    next_id: u64,
    senders: Vec<(u64, std::sync::mpsc::SyncSender<Value>)>,
}

/// A live subscription to a coordinator's broadcast events (one per SSE client). Dropping it
/// unsubscribes.
pub struct EventSubscription {
    id: u64,
    rx: std::sync::mpsc::Receiver<Value>,
    set: Arc<Mutex<StreamSet>>,
}

impl std::fmt::Debug for EventSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSubscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl EventSubscription {
    /// The next event, waiting at most `wait`. `Err(Disconnected)` means the subscription was
    /// dropped by the coordinator (it fell [`STREAM_QUEUE`] events behind).
    pub fn recv_timeout(
        &self,
        wait: std::time::Duration,
    ) -> Result<Value, std::sync::mpsc::RecvTimeoutError> {
        self.rx.recv_timeout(wait)
    }
}

impl Drop for EventSubscription {
    fn drop(&mut self) {
        lock(&self.set).senders.retain(|(id, _)| *id != self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the PTY service tells supervision: new supervised sessions, their events, and periodic
/// probes for the idle watchdog.
pub trait Observer: Send + Sync {
    /// A supervised session was spawned.
    fn registered(&self, spec: TaskSpec);
    /// Something happened to a session.
    fn event(&self, event: Event);
    /// Time passed; `probes` describe every session.
    fn tick(&self, probes: &[Probe]);
}

enum Msg {
    Registered(TaskSpec),
    Event(Event),
    Tick(Vec<Probe>),
}

/// An [`Observer`] that hands everything to a coordinator on its own thread, so model calls and
/// stops never hold up the thread that reads session events.
pub struct QueuedObserver {
    tx: std::sync::Mutex<std::sync::mpsc::Sender<Msg>>,
}

impl std::fmt::Debug for QueuedObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedObserver").finish_non_exhaustive()
    }
}

impl QueuedObserver {
    /// Starts the worker thread for `coordinator`; it ends when the observer is dropped.
    pub fn start(coordinator: Arc<Coordinator>) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        std::thread::Builder::new()
            .name("coordinator".into())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        Msg::Registered(spec) => coordinator.register(spec),
                        Msg::Event(e) => coordinator.on_event(e),
                        Msg::Tick(p) => coordinator.tick(&p),
                    }
                }
            })?;
        Ok(QueuedObserver {
            tx: std::sync::Mutex::new(tx),
        })
    }

    fn send(&self, m: Msg) {
        let _ = self.tx.lock().unwrap_or_else(|p| p.into_inner()).send(m);
    }
}

impl Observer for QueuedObserver {
    fn registered(&self, spec: TaskSpec) {
        self.send(Msg::Registered(spec));
    }
    fn event(&self, event: Event) {
        self.send(Msg::Event(event));
    }
    fn tick(&self, probes: &[Probe]) {
        self.send(Msg::Tick(probes.to_vec()));
    }
}

impl Observer for Coordinator {
    fn registered(&self, spec: TaskSpec) {
        self.register(spec);
    }
    fn event(&self, event: Event) {
        self.on_event(event);
    }
    fn tick(&self, probes: &[Probe]) {
        Coordinator::tick(self, probes);
    }
}

/// The coordinator: one [`Supervisor`] behind a lock, executing its effects through the runtime
/// (model calls, PTY input, chat replies) and handing broadcasts to listeners (SSE).
pub struct Coordinator {
    runtime: Arc<dyn Runtime>,
    state: Mutex<Supervisor>,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
    listeners: Mutex<Vec<Listener>>,
    streams: Arc<Mutex<StreamSet>>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").finish_non_exhaustive()
    }
}

impl Coordinator {
    /// A coordinator at `level`, reading time from `clock` (ms).
    pub fn new(
        runtime: Arc<dyn Runtime>,
        level: Level,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Self {
        Coordinator {
            runtime,
            state: Mutex::new(Supervisor::new(level)),
            clock: Box::new(clock),
            listeners: Mutex::new(Vec::new()),
            streams: Arc::new(Mutex::new(StreamSet::default())),
        }
    }

    /// Subscribes a stream (an SSE client) to broadcast events, unless `max` streams are open
    /// already. Events are queued per subscriber (at most [`STREAM_QUEUE`]).
    pub fn open_stream(&self, max: usize) -> Option<EventSubscription> {
        let mut set = lock(&self.streams);
        if set.senders.len() >= max {
            return None;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(STREAM_QUEUE);
        set.next_id += 1;
        let id = set.next_id;
        set.senders.push((id, tx));
        Some(EventSubscription {
            id,
            rx,
            set: self.streams.clone(),
        })
    }

    /// How many stream subscriptions are open.
    pub fn stream_count(&self) -> usize {
        lock(&self.streams).senders.len()
    }

    /// Pauses supervision while a person chats with the agents: events are buffered, in order,
    /// until [`Coordinator::resume`] or until [`super::PAUSE_MS`] have passed (checked at the next
    /// event or tick). Broadcasts `coordinator_paused`.
    pub fn pause(&self) {
        self.with(|s, now| ((), s.pause(now)))
    }

    /// Ends a pause: broadcasts `coordinator_resumed`, then handles the buffered events in the
    /// order they came. Does nothing when not paused.
    pub fn resume(&self) {
        self.with(|s, now| ((), s.resume(now)))
    }

    /// Whether supervision is paused now.
    pub fn is_paused(&self) -> bool {
        self.with(|s, now| (s.is_paused(now), Vec::new()))
    }

    /// Adds a listener for broadcast events.
    pub fn subscribe(&self, f: impl Fn(&Value) + Send + Sync + 'static) {
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(f));
    }

    /// Runs `f` on the supervisor and executes what it returns.
    pub fn with<T>(&self, f: impl FnOnce(&mut Supervisor, u64) -> (T, Vec<Effect>)) -> T {
        let now = (self.clock)();
        let (t, effects) = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut s, now)
        };
        self.execute(effects);
        t
    }

    /// Registers a task.
    pub fn register(&self, spec: TaskSpec) {
        self.with(|s, now| ((), s.register(now, spec)))
    }

    /// Feeds an event.
    pub fn on_event(&self, event: Event) {
        self.with(|s, now| ((), s.on_event(now, event)))
    }

    /// Runs the timers and the idle watchdog over `probes`.
    pub fn tick(&self, probes: &[Probe]) {
        self.with(|s, now| ((), s.tick(now, probes)))
    }

    /// The supervision level.
    pub fn level(&self) -> Level {
        self.with(|s, _| (s.level(), Vec::new()))
    }

    /// Sets the supervision level.
    pub fn set_level(&self, level: Level) {
        self.with(|s, _| ((), s.set_level(level)))
    }

    fn execute(&self, effects: Vec<Effect>) {
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        while let Some(e) = queue.pop_front() {
            match e {
                Effect::AskModel {
                    session_id, prompt, ..
                } => {
                    let answer = self
                        .runtime
                        .use_model(ModelSize::Small, &prompt)
                        .map_err(|e| e.to_string());
                    let now = (self.clock)();
                    let more = self
                        .state
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .on_model_answer(now, &session_id, answer);
                    queue.extend(more);
                }
                Effect::SendText { session_id, text } => {
                    if let Some(pty) = self.runtime.pty()
                        && let Err(e) = pty.send_to_session(&session_id, &text)
                    {
                        self.runtime.reply(&format!("Failed to send to agent: {e}"));
                    }
                }
                Effect::SendKeys { session_id, keys } => {
                    if let Some(pty) = self.runtime.pty()
                        && let Err(e) = pty.send_keys(&session_id, &keys)
                    {
                        self.runtime.reply(&format!("Failed to send to agent: {e}"));
                    }
                }
                Effect::Stop { session_id, force } => {
                    if let Some(pty) = self.runtime.pty() {
                        // A session that already exited is what we wanted.
                        let _ = pty.stop_session(&session_id, force);
                    }
                }
                Effect::MarkCompleted { session_id } => {
                    if let Some(pty) = self.runtime.pty() {
                        pty.mark_completed(&session_id);
                    }
                }
                Effect::Chat(text) => self.runtime.reply(&text),
                Effect::Broadcast(v) => {
                    for l in self
                        .listeners
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                    {
                        l(&v);
                    }
                    // A stream that is gone or too far behind is dropped here; its reader sees
                    // the disconnect and ends.
                    lock(&self.streams)
                        .senders
                        .retain(|(_, tx)| tx.try_send(v.clone()).is_ok());
                }
            }
        }
    }
}
