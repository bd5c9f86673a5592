//! The detection engine inside the reactor: after each batch of reads one pass per dirty session
//! (snapshot → [`SessionMachine`] → actions), the machine's timers on the reactor's deadline heap,
//! and its actions executed here (status changes, events, allowed answers).
//!
//! The core reactor owns the lifecycle statuses (`starting` at spawn, `busy` on `send`,
//! `stopping`, `stopped`, `error`); the state machine owns the detected ones. Once the core has
//! moved a session to `stopping`, `stopped` or `error`, detection stops acting on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::mpsc::{Sender, sync_channel};

use super::{Command, Reactor, SessionState, TimerKind, lock};
use crate::Result;
use crate::adapter::Adapter;
use crate::autorespond::AuditRecord;
use crate::error::Error;
use crate::events::SessionEvent;
use crate::rules::{InputStyle, Region, Response, RuleSpec, Signal};
use crate::session::{Action, DetectionEvent, DetectionOptions, HookEvent, SessionMachine};
use crate::stall::{Classification, StallClassifier, StallContext};
use crate::status::SessionStatus;

/// A request to a session's detection engine, sent through the reactor's command channel.
pub(crate) enum DetectOp {
    AddRule(RuleSpec),
    RemoveRule(String),
    SetRules(Vec<RuleSpec>),
    Rules,
    ClearRules,
    Audit,
    Hook(HookEvent),
    /// The classifier answered a [`StallContext`] of this session.
    Classified(StallContext, Option<Classification>),
    /// Install the manager-wide classifier, with what its threads need to answer back.
    SetClassifier(Arc<dyn StallClassifier>, Sender<Command>, Arc<mio::Waker>),
}

/// The classifier and the way back into the reactor.
pub(crate) type ClassifierLink = (Arc<dyn StallClassifier>, Sender<Command>, Arc<mio::Waker>);

/// The answer to a [`DetectOp`].
pub(crate) enum DetectReply {
    Done,
    Removed(bool),
    Rules(Vec<RuleSpec>),
    Audit(Vec<AuditRecord>),
}

/// Timer numbers of [`TimerKind::Detection`].
const TICK: u16 = 0;
/// Re-run a pass deferred by an open synchronized update.
const PASS: u16 = 1;
/// How soon a pass deferred by a synchronized update is retried.
const PASS_RETRY: Duration = Duration::from_millis(25);
/// Detection passes of one session may take at most 1/`PASS_SHARE` of the wall time: each pass
/// spends its cost from a credit that grows at that rate, up to `PASS_BURST`; a batch that
/// arrives while the credit is spent is read by a pass once it is earned back. This bounds
/// detection cost by time, not by output volume (a flood of one-line writes would otherwise cost
/// one pass per line), while sporadic output (a prompt right after its task's echo) is read at
/// once: a fixed 0.5 ms gap between passes made such a prompt wait for the gap.
///
/// The share is a hundredth: during a flood a pass every 10–20 ms (a pass over a 120x40 view
/// costs ~0.1–0.2 ms; one that also builds the scrollback for a rule on the tail ~2 ms, so every
/// ~200 ms) keeps the status current, and passes cost the reader time it needs (a fifth
/// made a shell session's ANSI flood run at ~0.5x a raw reader instead of ~0.7x; a twentieth
/// still took ~1.1 ms of reactor time per MB of it). A pass costs the reader more than the time
/// it is charged (the view's grid and rows go through the cache the reader uses): on plain
/// output, passes almost off (a 4000th) saved 1.1 ms of CPU per MB against a fortieth, and a
/// hundredth saved 0.95 ms (busy + stall, 12 alternating rounds each: 0.98 against 0.92 of the
/// raw reader's speed); on ANSI output a hundredth measured the same as a fortieth. A session
/// quiet for `QUIET_PASS` gets its pass whatever the credit, so a prompt after a long flood
/// waits at most that long.
///
/// The credit holds up to `PASS_BURST`, earned back in 1 s of wall time: the passes over a
/// burst of output after a quiet spell (a tool's log, then its permission prompt) run at once. A
/// 2 ms cap was spent within a 256 KiB burst, and the prompt after it waited for `QUIET_PASS`
/// (about one prompt in five answered after 2.0-2.6 ms instead of ~0.5 ms). Since the screen
/// defers floods, such a burst takes ~5 passes of ~70 µs: over 20 bursts the credit never fell
/// under 9.4 ms. A long flood is still held to the share: the burst is spent in its first
/// milliseconds.
const PASS_SHARE: u32 = 100;
const PASS_BURST: Duration = Duration::from_millis(10);
const QUIET_PASS: Duration = Duration::from_millis(2);

/// Per-session detection state kept by the reactor.
pub(crate) struct Detect {
    pub(super) machine: SessionMachine,
    /// The earliest detection tick already queued on the heap.
    armed: Option<Instant>,
    input_style: InputStyle,
    enter_delay: Duration,
    /// Whether any rule reads rows that scrolled off (else passes read only the visible screen).
    needs_scrolled: bool,
    /// Pass time available (negative: owed), as of `credit_at` (see `PASS_SHARE`).
    credit_ns: i64,
    credit_at: Instant,
    /// A pass is queued for when the credit is earned back.
    pass_queued: bool,
}

impl Detect {
    /// Detection for a session of this adapter. `None` if the session rules do not compile (the
    /// manager validates them before spawning, so this does not happen in practice).
    pub(crate) fn new(adapter: &dyn Adapter, options: &DetectionOptions) -> Option<Self> {
        let now = Instant::now();
        let mut machine =
            SessionMachine::new(now, options.config_for(adapter), adapter.detector().clone());
        if !options.rules.is_empty() {
            machine.set_rules(options.rules.clone()).ok()?;
        }
        let needs_scrolled = adapter
            .detector()
            .rules()
            .rules()
            .iter()
            .any(|r| matches!(r.spec.region, Region::Tail(_) | Region::Markers));
        Some(Detect {
            machine,
            armed: None,
            input_style: adapter.input_style(),
            enter_delay: Duration::from_millis(adapter.min_enter_delay_ms()),
            needs_scrolled,
            credit_ns: PASS_BURST.as_nanos() as i64,
            credit_at: now,
            pass_queued: false,
        })
    }

    /// Whether the screen shows that input was taken (a busy or prompt signal in the last pass).
    pub(crate) fn took_input(&self) -> bool {
        self.machine
            .last_observation()
            .is_some_and(|o| o.has(Signal::Busy) || !o.prompts.is_empty())
    }
}

/// Detection acts only while the core still considers the session live and not stopping.
fn core_allows(state: &SessionState) -> bool {
    !matches!(
        state.info.status,
        SessionStatus::Stopping | SessionStatus::Stopped | SessionStatus::Error
    )
}

impl Reactor {
    /// Runtime rules, audit, hooks and classifier answers (BEHAVIOR.md §4.3, §4.5, §5.2, §7.9).
    pub(super) fn detect_command(&mut self, id: &str, op: DetectOp) -> Result<DetectReply> {
        if let DetectOp::SetClassifier(c, tx, waker) = op {
            self.classifier = Some((c, tx, waker));
            return Ok(DetectReply::Done);
        }
        let slot = self.slot_of(id)?;
        let now = Instant::now();
        let live = self
            .live(slot)
            .ok_or_else(|| Error::SessionNotFound(id.to_owned()))?;
        let d = live
            .detect
            .as_mut()
            .ok_or_else(|| Error::NoDetection(id.to_owned()))?;
        let m = &mut d.machine;
        let (reply, actions) = match op {
            DetectOp::AddRule(r) => (m.add_rule(r).map(|_| DetectReply::Done)?, vec![]),
            DetectOp::RemoveRule(rid) => (DetectReply::Removed(m.remove_rule(&rid)), vec![]),
            DetectOp::SetRules(rules) => (m.set_rules(rules).map(|_| DetectReply::Done)?, vec![]),
            DetectOp::Rules => (DetectReply::Rules(m.rules()), vec![]),
            DetectOp::ClearRules => {
                m.clear_rules();
                (DetectReply::Done, vec![])
            }
            DetectOp::Audit => {
                let mut records: Vec<AuditRecord> = m.audit().cloned().collect();
                for r in &mut records {
                    r.session_id = id.to_owned();
                }
                (DetectReply::Audit(records), vec![])
            }
            DetectOp::Hook(event) => (DetectReply::Done, m.hook(now, event)),
            DetectOp::Classified(ctx, answer) => {
                (DetectReply::Done, m.classified(now, &ctx, answer))
            }
            DetectOp::SetClassifier(..) => unreachable!("handled above"),
        };
        if !core_allows(&lock(&live.state)) {
            return Ok(reply);
        }
        self.detect_apply(slot, actions);
        self.detect_arm(slot);
        Ok(reply)
    }

    /// Ask the classifier off the reactor thread; its answer comes back as a command.
    fn detect_classify(&mut self, slot: usize, mut ctx: StallContext) {
        let Some((classifier, tx, waker)) = self.classifier.clone() else {
            return; // no classifier: no answer, which counts as `still_working`
        };
        let Some(live) = self.live(slot) else { return };
        ctx.session_id = live.id.clone();
        let id = live.id.clone();
        let spawned = std::thread::Builder::new()
            .name("pty-classifier".to_owned())
            .spawn(move || {
                let answer = classifier.classify(&ctx);
                let (reply, _rx) = sync_channel(1);
                let op = Box::new(DetectOp::Classified(ctx, answer));
                if tx.send(Command::Detect { id, op, reply }).is_ok() {
                    let _ = waker.wake();
                }
            });
        drop(spawned);
    }

    /// The child runs: the machine leaves `pending` (the core already announced `starting`).
    pub(super) fn detect_started(&mut self, slot: usize) {
        let Some(d) = self.live(slot).and_then(|l| l.detect.as_mut()) else {
            return;
        };
        let _ = d.machine.started(Instant::now());
        self.detect_arm(slot);
    }

    /// One detection pass over the session's current screen.
    pub(super) fn detect_run(&mut self, slot: usize) {
        let now = Instant::now();
        let Some(live) = self.live(slot) else { return };
        let Some(d) = live.detect.as_mut() else {
            return;
        };
        let earned =
            now.saturating_duration_since(d.credit_at).as_nanos() as i64 / PASS_SHARE as i64;
        d.credit_ns = (d.credit_ns + earned).min(PASS_BURST.as_nanos() as i64);
        d.credit_at = now;
        // A session that has been quiet for `QUIET_PASS` is not flooding: its pass runs whatever
        // the credit (the screen it shows now is what the program waits on, e.g. a prompt).
        let quiet_at = live.last_output + QUIET_PASS;
        if d.credit_ns < 0 && now < quiet_at {
            if !d.pass_queued {
                d.pass_queued = true;
                let wait = Duration::from_nanos((-d.credit_ns) as u64 * u64::from(PASS_SHARE));
                self.schedule(slot, wait.min(quiet_at - now), TimerKind::Detection(PASS));
            }
            return;
        }
        let snap = {
            let mut guard = lock(&live.state);
            let st: &mut SessionState = &mut guard;
            if !core_allows(st) {
                return;
            }
            // Mid-flood the screen defers output (`Screen::feed`): a pass reads the visible
            // rows through a cheap view, or everything parsed when a rule reads the tail.
            if d.needs_scrolled {
                st.screen.flush();
                st.screen.snapshot()
            } else {
                st.screen.refresh_visible();
                st.screen.visible_snapshot()
            }
        };
        let actions = d.machine.observe_screen(now, Arc::new(snap));
        let deferred = d.machine.pass_deferred();
        d.credit_ns -= now.elapsed().as_nanos() as i64;
        self.detect_apply(slot, actions);
        if deferred {
            self.schedule(slot, PASS_RETRY, TimerKind::Detection(PASS));
        }
        self.detect_arm(slot);
    }

    /// A detection timer fired.
    pub(super) fn detect_timer(&mut self, slot: usize, which: u16) {
        match which {
            PASS => {
                if let Some(d) = self.live(slot).and_then(|l| l.detect.as_mut()) {
                    d.pass_queued = false;
                }
                self.detect_run(slot)
            }
            _ => {
                let now = Instant::now();
                let Some(live) = self.live(slot) else { return };
                let Some(d) = live.detect.as_mut() else {
                    return;
                };
                if d.armed.is_some_and(|a| a <= now) {
                    d.armed = None;
                }
                if !core_allows(&lock(&live.state)) {
                    return;
                }
                // A tool the program started in the foreground (its own process group) counts as
                // running work for the stall timer.
                let leader = live.child.id() as i32;
                let foreground = nix::unistd::tcgetpgrp(&live.master)
                    .is_ok_and(|pg| pg.as_raw() > 0 && pg.as_raw() != leader);
                d.machine.set_foreground_child(foreground);
                let actions = d.machine.tick(now);
                self.detect_apply(slot, actions);
                self.detect_arm(slot);
            }
        }
    }

    /// A task was sent (the core already moved the session to `busy` and counted the turn).
    pub(super) fn detect_send(&mut self, slot: usize, text: &str) {
        let now = Instant::now();
        let Some(live) = self.live(slot) else { return };
        let id = live.id.clone();
        let Some(d) = live.detect.as_mut() else {
            return;
        };
        if let Ok(actions) = d.machine.send(now, &id, text) {
            // The core moved the session to `busy`; while a login screen waits the machine keeps
            // it `authenticating` (the text answers the login), so take the machine's word.
            let to = d.machine.status();
            let ev = {
                let mut st = lock(&live.state);
                if core_allows(&st) {
                    st.set_status(to)
                } else {
                    None
                }
            };
            if let Some(ev) = ev {
                self.shared.emit(ev);
            }
            self.detect_apply(slot, actions);
        }
        self.detect_arm(slot);
    }

    /// Keys, a paste or raw bytes were written: restarts the stall timer.
    pub(super) fn detect_input(&mut self, slot: usize) {
        let Some(d) = self.live(slot).and_then(|l| l.detect.as_mut()) else {
            return;
        };
        d.machine.keys_sent(Instant::now());
        self.detect_arm(slot);
    }

    /// Queue a tick for the machine's next deadline unless an earlier one is queued already.
    fn detect_arm(&mut self, slot: usize) {
        let now = Instant::now();
        let Some(d) = self.live(slot).and_then(|l| l.detect.as_mut()) else {
            return;
        };
        let Some(next) = d.machine.next_deadline() else {
            return;
        };
        if d.armed.is_some_and(|a| a <= next) {
            return;
        }
        d.armed = Some(next);
        self.schedule(
            slot,
            next.saturating_duration_since(now),
            TimerKind::Detection(TICK),
        );
    }

    /// Execute the machine's actions.
    fn detect_apply(&mut self, slot: usize, actions: Vec<Action>) {
        // Flags first, so a handle read right after a status event already carries them.
        self.detect_sync(slot);
        for action in actions {
            match action {
                Action::Emit(event) => self.detect_emit(slot, event),
                Action::Respond { response, .. } => self.detect_respond(slot, response),
                Action::Classify(ctx) => self.detect_classify(slot, ctx),
            }
        }
    }

    /// Copy the machine's flags and turn into the handle.
    fn detect_sync(&mut self, slot: usize) {
        let Some(live) = self.live(slot) else { return };
        let Some(d) = live.detect.as_ref() else {
            return;
        };
        let m = &d.machine;
        let mut st = lock(&live.state);
        st.info.stalled = m.stalled();
        st.info.loading = m.loading();
        st.info.tool = m.tool().map(str::to_owned);
        st.info.prompt = m.prompt().map(str::to_owned);
        if m.turn() > live.turn {
            // The machine started a turn by itself (console typing, a turn-start hook).
            live.turn = m.turn();
            st.info.turn = live.turn;
            st.screen.mark_turn_start();
        }
    }

    fn detect_emit(&mut self, slot: usize, event: DetectionEvent) {
        let Some(live) = self.live(slot) else { return };
        let mut st = lock(&live.state);
        if !core_allows(&st) {
            return;
        }
        let ev = match event {
            // The core announces these itself.
            DetectionEvent::SessionStarted | DetectionEvent::SessionStopped { .. } => None,
            DetectionEvent::SessionStatusChanged { to, .. } => st.set_status(to),
            DetectionEvent::SessionReady => Some(SessionEvent::Ready {
                session: st.info.clone(),
            }),
            DetectionEvent::BlockingPrompt {
                info,
                auto_responded,
            } => Some(SessionEvent::BlockingPrompt {
                session: st.info.clone(),
                info,
                auto_responded,
            }),
            DetectionEvent::AutoResponse(mut record) => {
                record.session_id = st.info.id.clone();
                Some(SessionEvent::AutoResponse {
                    session: st.info.clone(),
                    record,
                })
            }
            DetectionEvent::LoginRequired { instructions, url } => {
                Some(SessionEvent::LoginRequired {
                    session: st.info.clone(),
                    instructions,
                    url,
                })
            }
            DetectionEvent::AuthRequired {
                method,
                url,
                device_code,
                instructions,
                prompt_snippet,
            } => Some(SessionEvent::AuthRequired {
                session: st.info.clone(),
                method,
                url,
                device_code,
                instructions,
                prompt_snippet,
            }),
            DetectionEvent::TaskComplete {
                turn,
                source,
                turn_output,
                error,
                duration_ms,
            } => {
                let turn_output = match live.detect.as_ref() {
                    // Passes read only the visible rows; the turn's output needs the scrolled
                    // ones too, read once here.
                    Some(d) if !d.needs_scrolled => {
                        st.screen.flush();
                        let snap = st.screen.snapshot();
                        d.machine.detector().turn_output(&snap)
                    }
                    _ => turn_output,
                };
                Some(SessionEvent::TaskComplete {
                    session: st.info.clone(),
                    turn,
                    source,
                    turn_output,
                    error,
                    duration_ms,
                })
            }
            DetectionEvent::ToolRunning {
                tool_name,
                description,
            } => Some(SessionEvent::ToolRunning {
                session: st.info.clone(),
                tool_name,
                description,
            }),
            DetectionEvent::StallDetected {
                recent_output,
                stalled_for_ms,
                emission,
            } => Some(SessionEvent::StallDetected {
                session: st.info.clone(),
                recent_output,
                stalled_for_ms,
                emission,
            }),
            DetectionEvent::SessionError { error } => Some(SessionEvent::Error {
                session: st.info.clone(),
                error,
            }),
        };
        drop(st);
        if let Some(ev) = ev {
            self.shared.emit(ev);
        }
    }

    /// Write an allowed answer: text then Enter as its own write (at once for line-oriented
    /// programs, after the Enter delay for TUIs), or keys 50 ms apart. Text shares the sends'
    /// Enter queue: it waits behind a task whose Enter is pending, and a task sent during its
    /// Enter delay waits for it, so an answer and a task never merge into one input.
    fn detect_respond(&mut self, slot: usize, response: Response) {
        let Some(live) = self.live(slot) else { return };
        if live.stopping || live.exited {
            return;
        }
        let (style, delay) = match &live.detect {
            Some(d) => (d.input_style, d.enter_delay),
            None => return,
        };
        match response {
            Response::Text(text) => {
                let delay = match style {
                    InputStyle::Text => Duration::ZERO,
                    InputStyle::Tui => delay,
                };
                let turn = live.turn;
                if live.enter_for.is_some() {
                    // A task's text is on the input line waiting for its Enter: the answer
                    // follows that Enter instead of landing inside the task.
                    live.held.push_back(super::HeldSend {
                        bytes: text.into_bytes(),
                        delay,
                        turn,
                        submit: None,
                    });
                } else if delay.is_zero() {
                    self.queue_write(slot, text.as_bytes());
                    self.queue_write(slot, b"\r");
                } else {
                    // Its Enter goes the way a task's does, so a `send` meanwhile waits for it
                    // instead of being typed between the answer and its Enter.
                    live.enter_for = Some(turn);
                    live.enter_answer = true;
                    self.queue_write(slot, text.as_bytes());
                    self.schedule_for(slot, delay, TimerKind::Enter, turn);
                }
            }
            Response::Keys(keys) => {
                let Some(live) = self.live(slot) else { return };
                live.keys.extend(keys);
                if !live.typing_keys() {
                    self.next_key(slot);
                }
            }
        }
    }
}
