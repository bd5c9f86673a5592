//! The reactor: one thread per manager owning every master fd, pidfd and timer.
//!
//! It sleeps in `mio::Poll` until a fd is ready, a command arrives (through the waker) or the
//! next timer is due, so an idle manager never wakes up. Readable masters are read until
//! `WouldBlock`; each chunk goes to the screen model, the raw ring and the subscribers. After a
//! batch, [`Reactor::detect_pass`] runs once per session whose screen changed: that is where the
//! detection engine plugs in.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};

use crate::queue::QueueSender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::events::{ExitInfo, Message, MessageKind, SessionInfo, SessionMetrics, now_ms};
use crate::manager::{OutputChunk, SpawnConfig};
use crate::pty::{self, Child, Spawned};
use crate::ring::RawRing;
use crate::{Error, Result, Screen, SessionEvent, SessionStatus, keys};

const WAKER: Token = Token(usize::MAX);
/// Read buffer; one chunk handed downstream is at most this big. Large, so that under a flood
/// the screen's fast path (see `Screen::process`) parses only a small share of each batch.
const READ_BUF: usize = 256 * 1024;
/// While the screen defers a flood (see `Screen::feed`), it is given output between reads, not
/// once per full buffer, but only when the reader has caught up with the kernel: the last read
/// came back short of the line discipline's full 4 KiB buffer ([`TTY_FULL_READ`]), so the kernel
/// most likely had nothing more queued and the screen's work delays no read. After a full read more
/// output is usually queued behind it, and the reader reads on (each read lets the kernel move the
/// next 4 KiB, and a reader that falls behind makes the program block on a full terminal, after
/// which the scheduler tends to put the program on the reader's CPU); it feeds anyway once at
/// least [`FEED_BEHIND`] bytes wait (after the fifth full read, ~20 KiB), so no pause is longer
/// than the screen's work on that much (~15 µs of skim on coloured output). The ring and the
/// subscribers still get full buffers (smaller chunks cost each subscriber a wake-up per chunk),
/// and output the screen parses at once keeps them too (its fast path needs them).
///
/// Measured against a raw reader in the same rounds (gen.py, 100 MB a run, both builds in
/// rotating order), median ratio to the raw reader: ANSI direct 0.963 against 0.873 for feeding
/// after every 4 KiB read (32 rounds), 0.983 against 0.953 (24 rounds, a slower hour); plain
/// direct, busy + stall ANSI and plain unchanged (1.037/1.052, 0.900/0.902, 1.003/1.015, 10-16
/// rounds); the prompt latency unchanged (p50 0.21-0.23 ms). Fixed steps of 8, 16 and 32 KiB
/// also beat 4 KiB that day (0.96-1.04), where an earlier day's 20-40 MB runs had found 4 KiB
/// better than 32 KiB (0.91-0.94 against 0.86-0.90): the caught-up test decides, with the byte
/// counts as bounds. What costs is when the work runs more than how much of it there is: with
/// the screen left out the ratio was ~1.0; a busy-wait of 0.8-1.0 ns a byte in its place (the
/// skim and copies take ~0.75) cost as much as the screen's work (0.88-0.94), and a skim made
/// twice as costly no more than the shipped one. In an ANSI flood 78-96% of the reads return
/// exactly 4 095 bytes, 1-16% more, 2-6% less.
const FEED_DEFERRED: usize = 4 * 1024;
/// While reads keep coming back full, a deferring screen is fed once at least this much output
/// waits (the test runs before each read, so up to one read more; see [`FEED_DEFERRED`]).
const FEED_BEHIND: usize = 16 * 1024;
/// A read of at least this many bytes emptied a full line-discipline buffer (Linux's `n_tty`
/// holds 4 096 bytes, of which a read gets at most 4 095 at a time unless the kernel refilled it
/// during the read); more output is probably queued behind it. A system with smaller terminal
/// buffers never reaches it and feeds every [`FEED_DEFERRED`] bytes.
const TTY_FULL_READ: usize = 4095;
/// Bytes read from one session before others get a turn (fairness under a flood).
const READ_BUDGET: usize = 1 << 20;
/// After the program exited, how long to wait for the rest of the output while another process
/// still holds the terminal open.
const EXIT_DRAIN: Duration = Duration::from_millis(100);
/// Exit check period where no pidfd is available.
const REAP_TICK: Duration = Duration::from_millis(100);
/// Between keys of one `send_keys` (BEHAVIOR.md §2.1 `key_stagger_ms`).
const KEY_STAGGER: Duration = Duration::from_millis(50);
/// Submit verification window after Enter, and the gap between retries (BEHAVIOR.md §2.3).
const SUBMIT_CHECK: Duration = Duration::from_millis(1000);
const SUBMIT_RETRY: Duration = Duration::from_millis(500);
/// Enter presses in all (the first plus two retries).
const SUBMIT_ATTEMPTS: u32 = 3;
/// Output the screen deferred during a flood is parsed once the program has been quiet this
/// long (see `Screen::feed`); until then detection reads a view of the visible rows (a quiet
/// session gets its pass after 2 ms whatever this is), and whoever reads the whole screen
/// flushes first. A catch-up parses up to a screenful plus the scrollback (~5 ms for 1 040
/// coloured lines): at 2 ms, a flood's short pauses (a producer descheduled) paid it several
/// times per 50 MB only to defer again at once; the deferred buffer stays small meanwhile
/// (the skipped part is dropped as the flood goes on).
const CATCH_UP: Duration = Duration::from_millis(50);
/// Texts longer than this are pasted rather than typed.
const PASTE_OVER: usize = 200;

pub(crate) type Reply<T> = SyncSender<Result<T>>;

mod detect_glue;
mod timer;
pub(crate) use detect_glue::{Detect, DetectOp, DetectReply};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// State shared between the handle and the reactor.
#[derive(Default)]
pub(crate) struct Shared {
    /// Every known session, live and stopped (tombstones), by id.
    pub table: Mutex<HashMap<String, Arc<Mutex<SessionState>>>>,
    pub event_subs: Mutex<Vec<QueueSender<SessionEvent>>>,
}

impl Shared {
    pub(crate) fn emit(&self, event: SessionEvent) {
        let mut subs = lock(&self.event_subs);
        subs.retain(|tx| {
            !matches!(
                tx.try_send(event.clone(), 0),
                Err(TrySendError::Disconnected(_))
            )
        });
    }
}

/// An output subscriber and what it missed.
pub(crate) struct Subscriber {
    tx: QueueSender<OutputChunk>,
    dropped_chunks: u64,
    dropped_bytes: u64,
    /// Leading bytes of the next chunk this subscriber already has in its initial screen.
    skip: usize,
}

impl Subscriber {
    /// A subscriber whose initial screen holds the first `skip` bytes of the next chunk (see
    /// `SessionState::fed_ahead`).
    pub(crate) fn new(tx: QueueSender<OutputChunk>, skip: usize) -> Self {
        Subscriber {
            tx,
            dropped_chunks: 0,
            dropped_bytes: 0,
            skip,
        }
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        self.tx.is_disconnected()
    }
}

/// The part of a session the handle can read: guarded by one mutex, held briefly by the reactor
/// once per chunk.
pub(crate) struct SessionState {
    pub info: SessionInfo,
    pub screen: Screen,
    pub ring: RawRing,
    pub subscribers: Vec<Subscriber>,
    /// Bytes the screen has that the ring and subscribers do not have yet: under a flood the
    /// screen is fed between reads (see `FEED_DEFERRED`) and the rest gets whole buffers, so a
    /// subscriber attaching in between must skip them in its first chunk.
    pub fed_ahead: usize,
    pub metrics: SessionMetrics,
    pub msg_seq: u64,
}

impl SessionState {
    pub(crate) fn new(info: SessionInfo, cfg: &SpawnConfig) -> Self {
        SessionState {
            info,
            screen: Screen::with_scrollback(cfg.cols, cfg.rows, cfg.scrollback),
            ring: RawRing::new(cfg.ring_bytes),
            subscribers: Vec::new(),
            fed_ahead: 0,
            metrics: SessionMetrics::default(),
            msg_seq: 0,
        }
    }

    /// Sets the status; returns the `StatusChanged` event when it changed.
    fn set_status(&mut self, to: SessionStatus) -> Option<SessionEvent> {
        let from = self.info.status;
        if from == to {
            return None;
        }
        self.info.status = to;
        Some(SessionEvent::StatusChanged {
            session: self.info.clone(),
            from,
            to,
        })
    }

    fn next_message(&mut self, kind: MessageKind, content: String) -> Message {
        self.msg_seq += 1;
        Message {
            id: format!("{}-msg-{}", self.info.id, self.msg_seq),
            session_id: self.info.id.clone(),
            direction: "inbound",
            kind,
            content,
            timestamp_ms: now_ms(),
        }
    }
}

/// A verified submit in progress (BEHAVIOR.md §2.3 step 4).
struct Submit {
    message_id: String,
    /// Text whose presence on the cursor row means Enter did not take.
    probe: String,
    attempts: u32,
}

/// A `send` whose text waits for the previous send's Enter (see `Reactor::send`).
struct HeldSend {
    bytes: Vec<u8>,
    delay: Duration,
    turn: u64,
    /// `None` for an automatic answer (its Enter is not a task's, so no submit check).
    submit: Option<Submit>,
}

/// The reactor's side of a session: fds, child, queues, timers' bookkeeping.
pub(crate) struct Live {
    id: String,
    serial: u64,
    state: Arc<Mutex<SessionState>>,
    master: File,
    pidfd: Option<OwnedFd>,
    child: Child,
    min_enter_delay: Duration,
    menu_marker: Option<String>,
    outq: VecDeque<u8>,
    want_write: bool,
    /// The program exited (pidfd readable); not yet reaped.
    exited: bool,
    /// The master reported end of file / hang-up.
    eof: bool,
    reaped: bool,
    stopping: bool,
    stop_waiters: Vec<Reply<SessionInfo>>,
    keys: VecDeque<String>,
    /// The turn of the pending key-stagger timer. A timer of an earlier turn is dropped when it
    /// falls due (a `send` or a new turn clears the keys), so only one of this turn means keys
    /// are being typed; a plain flag stayed set when its timer was dropped, and every later key
    /// was queued and never typed.
    keys_timer: Option<u64>,
    submit: Option<Submit>,
    /// The turn whose text is on the terminal still waiting for its Enter (see `send`).
    enter_for: Option<u64>,
    /// The pending Enter belongs to an automatic answer, not a `send`.
    enter_answer: bool,
    /// Later sends waiting for that Enter: their framed text, Enter delay, turn and submit.
    held: VecDeque<HeldSend>,
    turn: u64,
    dirty: bool,
    /// When output last arrived, and whether a `CatchUp` timer is armed.
    last_output: Instant,
    catch_up: bool,
    /// The screen was deferring after the last output it got (it is then fed sooner).
    deferring: bool,
    /// The detection engine's state machine, when the session has an adapter.
    detect: Option<Detect>,
}

impl Live {
    /// Whether keys of this turn are being typed (their stagger timer is pending).
    fn typing_keys(&self) -> bool {
        self.keys_timer == Some(self.turn)
    }

    pub(crate) fn new(
        id: String,
        state: Arc<Mutex<SessionState>>,
        spawned: Spawned,
        cfg: &SpawnConfig,
    ) -> Self {
        Live {
            id,
            serial: 0,
            state,
            master: spawned.master,
            pidfd: spawned.pidfd,
            child: spawned.child,
            min_enter_delay: cfg.min_enter_delay,
            menu_marker: cfg.menu_marker.clone(),
            outq: VecDeque::new(),
            want_write: false,
            exited: false,
            eof: false,
            reaped: false,
            stopping: false,
            stop_waiters: Vec::new(),
            keys: VecDeque::new(),
            keys_timer: None,
            submit: None,
            enter_for: None,
            enter_answer: false,
            held: VecDeque::new(),
            turn: 0,
            dirty: false,
            last_output: Instant::now(),
            catch_up: false,
            deferring: false,
            detect: cfg
                .adapter
                .as_ref()
                .and_then(|a| Detect::new(a.as_ref(), &cfg.detection)),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the group and the session with `signal`. Only while unreaped (see `pty::kill_group`).
    fn kill_all(&self, signal: libc::c_int) {
        if !self.reaped {
            pty::kill_group(self.pid(), signal);
            pty::kill_session(self.pid(), signal);
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // Whatever path drops a session (shutdown, a failed registration, a panic unwinding the
        // reactor), nothing it started outlives it.
        if !self.reaped {
            self.kill_all(libc::SIGKILL);
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

/// Commands from the handle.
pub(crate) enum Command {
    Register(Box<Live>),
    WriteRaw {
        id: String,
        bytes: Vec<u8>,
        reply: Reply<()>,
    },
    Paste {
        id: String,
        text: String,
        bracketed: bool,
        reply: Reply<()>,
    },
    Send {
        id: String,
        text: String,
        reply: Reply<String>,
    },
    Keys {
        id: String,
        names: Vec<String>,
        reply: Reply<()>,
    },
    Menu {
        id: String,
        index: usize,
        reply: Reply<()>,
    },
    Resize {
        id: String,
        cols: u16,
        rows: u16,
        reply: Reply<()>,
    },
    Stop {
        id: String,
        grace: Duration,
        force: bool,
        reply: Reply<SessionInfo>,
    },
    /// A detection-engine request (runtime rules, audit, hooks, classifier), see `detect_glue`.
    Detect {
        id: String,
        op: Box<DetectOp>,
        reply: Reply<DetectReply>,
    },
    Shutdown,
}

/// What a timer does when it fires. Turn-guarded kinds are dropped if the session's turn moved on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// Enter after the text of a `send` or of a TUI's automatic answer. Guarded by the turn of
    /// that text (`Live::enter_for`) rather than the current turn: a later `send` must not cancel
    /// it (see `Reactor::send`).
    Enter,
    /// Check that Enter took.
    SubmitCheck,
    /// Next key of a `send_keys`.
    KeyStagger,
    /// Grace of `stop` is over: `SIGKILL`.
    StopKill,
    /// The program exited; stop waiting for more output.
    ExitDrain,
    /// No pidfd: check for exit.
    ReapTick,
    /// Parse the output the screen deferred once the program has been quiet for `CATCH_UP`.
    CatchUp,
    /// The detection engine's timers (settle, debounce, stall; numbered by `detect_glue`). Not
    /// turn-guarded here: the state machine guards its own timers by turn.
    Detection(u16),
}

impl TimerKind {
    fn turn_guarded(self) -> bool {
        matches!(self, TimerKind::SubmitCheck | TimerKind::KeyStagger)
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    seq: u64,
    slot: usize,
    serial: u64,
    turn: u64,
    kind: TimerKind,
}

pub(crate) struct Reactor {
    poll: Poll,
    shared: Arc<Shared>,
    rx: Receiver<Command>,
    slots: Vec<Option<Live>>,
    free: Vec<usize>,
    by_id: HashMap<String, usize>,
    timers: BinaryHeap<Reverse<Timer>>,
    seq: u64,
    serials: u64,
    buf: Vec<u8>,
    /// Sessions whose read budget ran out with data left (edge-triggered: read again next turn).
    carry: Vec<usize>,
    /// Sessions with new output since the last detection pass.
    dirty: Vec<usize>,
    shutting_down: bool,
    /// The stall classifier, with the command channel and waker its threads answer through.
    classifier: Option<detect_glue::ClassifierLink>,
}

fn master_token(slot: usize) -> Token {
    Token(slot << 1)
}
fn pidfd_token(slot: usize) -> Token {
    Token((slot << 1) | 1)
}

impl Reactor {
    pub(crate) fn new(
        shared: Arc<Shared>,
        rx: Receiver<Command>,
    ) -> io::Result<(Self, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok((
            Reactor {
                poll,
                shared,
                rx,
                slots: Vec::new(),
                free: Vec::new(),
                by_id: HashMap::new(),
                timers: BinaryHeap::new(),
                seq: 0,
                serials: 0,
                buf: vec![0; READ_BUF],
                carry: Vec::new(),
                dirty: Vec::new(),
                shutting_down: false,
                classifier: None,
            },
            waker,
        ))
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut timer = timer::DeadlineTimer::new(self.poll.registry());
        while !self.shutting_down {
            let timeout = if self.carry.is_empty() {
                let next = self.timers.peek().map(|Reverse(t)| t.at);
                timer.timeout(next, Instant::now())
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // A broken poll cannot recover; dropping the sessions kills them.
                break;
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.commands(),
                    timer::TIMER => timer.fired(),
                    Token(t) => {
                        let slot = t >> 1;
                        if t & 1 == 1 {
                            self.child_exited(slot);
                        } else {
                            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                                self.read(slot);
                            }
                            if ev.is_writable() {
                                self.flush(slot);
                            }
                        }
                    }
                }
            }
            for slot in std::mem::take(&mut self.carry) {
                self.read(slot);
            }
            self.fire_timers();
            self.after_batch();
        }
        self.kill_everything();
    }

    fn live(&mut self, slot: usize) -> Option<&mut Live> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    fn slot_of(&self, id: &str) -> Result<usize> {
        if let Some(&slot) = self.by_id.get(id) {
            return Ok(slot);
        }
        // Known but finished, or unknown.
        if lock(&self.shared.table).contains_key(id) {
            Err(Error::SessionNotRunning(id.to_owned()))
        } else {
            Err(Error::SessionNotFound(id.to_owned()))
        }
    }

    /// The slot of a session that still accepts input.
    fn input_slot(&mut self, id: &str) -> Result<usize> {
        let slot = self.slot_of(id)?;
        let live = self
            .live(slot)
            .ok_or_else(|| Error::SessionNotFound(id.to_owned()))?;
        if live.stopping || live.exited || live.eof {
            return Err(Error::SessionNotRunning(id.to_owned()));
        }
        Ok(slot)
    }

    fn schedule(&mut self, slot: usize, after: Duration, kind: TimerKind) {
        let Some(turn) = self
            .slots
            .get(slot)
            .and_then(Option::as_ref)
            .map(|l| l.turn)
        else {
            return;
        };
        self.schedule_for(slot, after, kind, turn);
    }

    /// `schedule` for a given turn (an Enter belongs to the turn of its text, which may be older
    /// than the session's current turn while later sends are held).
    fn schedule_for(&mut self, slot: usize, after: Duration, kind: TimerKind, turn: u64) {
        let Some(live) = self.slots.get(slot).and_then(Option::as_ref) else {
            return;
        };
        self.seq += 1;
        // Durations come from callers (a stop grace, an Enter delay): a huge one waits a year,
        // instead of overflowing the `Instant` and panicking this thread.
        let after = after.min(Duration::from_millis(crate::session::MAX_TIMING_MS));
        let timer = Timer {
            at: Instant::now() + after,
            seq: self.seq,
            slot,
            serial: live.serial,
            turn,
            kind,
        };
        self.timers.push(Reverse(timer));
    }

    // ---- commands -------------------------------------------------------------------------

    fn commands(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(cmd) => self.command(cmd),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.shutting_down = true;
                    return;
                }
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Register(live) => self.register(*live),
            Command::WriteRaw { id, bytes, reply } => {
                let r = self.input_slot(&id).map(|slot| {
                    self.queue_write(slot, &bytes);
                    self.detect_input(slot);
                });
                let _ = reply.send(r);
            }
            Command::Paste {
                id,
                text,
                bracketed,
                reply,
            } => {
                let _ = reply.send(self.paste(&id, &text, bracketed));
            }
            Command::Send { id, text, reply } => {
                let _ = reply.send(self.send(&id, &text));
            }
            Command::Keys { id, names, reply } => {
                let _ = reply.send(self.keys(&id, names));
            }
            Command::Menu { id, index, reply } => {
                let r = self.menu_keys(&id, index).and_then(|k| self.keys(&id, k));
                let _ = reply.send(r);
            }
            Command::Resize {
                id,
                cols,
                rows,
                reply,
            } => {
                let _ = reply.send(self.resize(&id, cols, rows));
            }
            Command::Stop {
                id,
                grace,
                force,
                reply,
            } => self.stop(&id, grace, force, reply),
            Command::Detect { id, op, reply } => {
                let _ = reply.send(self.detect_command(&id, *op));
            }
            Command::Shutdown => self.shutting_down = true,
        }
    }

    fn register(&mut self, mut live: Live) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        self.serials += 1;
        live.serial = self.serials;
        let registry = self.poll.registry();
        let fd = live.master.as_raw_fd();
        if let Err(e) =
            registry.register(&mut SourceFd(&fd), master_token(slot), Interest::READABLE)
        {
            self.fail(live, slot, format!("registering the pty master: {e}"));
            return;
        }
        let mut tick = false;
        if let Some(pidfd) = &live.pidfd {
            let pfd = pidfd.as_raw_fd();
            if registry
                .register(&mut SourceFd(&pfd), pidfd_token(slot), Interest::READABLE)
                .is_err()
            {
                tick = true;
            }
        } else {
            tick = true;
        }
        let events = {
            let mut st = lock(&live.state);
            let changed = SessionEvent::StatusChanged {
                session: st.info.clone(),
                from: SessionStatus::Pending,
                to: SessionStatus::Starting,
            };
            vec![
                changed,
                SessionEvent::Started {
                    session: st.info.clone(),
                },
            ]
            .into_iter()
            .chain(st.set_status(SessionStatus::Starting))
            .collect::<Vec<_>>()
        };
        self.by_id.insert(live.id.clone(), slot);
        self.slots[slot] = Some(live);
        for e in events {
            self.shared.emit(e);
        }
        if tick {
            self.schedule(slot, REAP_TICK, TimerKind::ReapTick);
        }
        self.detect_started(slot);
        // Output may already be waiting (edge-triggered registration after the child started).
        self.read(slot);
    }

    /// A session whose PTY failed while it lived: status `error`, its group killed, then reaped
    /// like any other exit.
    fn fail(&mut self, live: Live, slot: usize, error: String) {
        let session = {
            let mut st = lock(&live.state);
            let ev = st.set_status(SessionStatus::Error);
            st.subscribers.clear();
            if let Some(ev) = ev {
                self.shared.emit(ev);
            }
            st.info.clone()
        };
        self.shared.emit(SessionEvent::Error { session, error });
        self.free.push(slot);
        drop(live); // kills and reaps
    }

    fn queue_write(&mut self, slot: usize, bytes: &[u8]) {
        if let Some(live) = self.live(slot) {
            live.outq.extend(bytes);
        }
        self.flush(slot);
    }

    fn flush(&mut self, slot: usize) {
        let Some(live) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let mut written = 0u64;
        while !live.outq.is_empty() {
            let (front, _) = live.outq.as_slices();
            match (&live.master).write(front) {
                Ok(0) => break,
                Ok(n) => {
                    live.outq.drain(..n);
                    written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // The terminal is gone (the program exited); input has nowhere to go.
                    live.outq.clear();
                    break;
                }
            }
        }
        if written > 0 {
            let mut st = lock(&live.state);
            st.metrics.bytes_in += written;
            st.metrics.last_activity_ms = now_ms();
            st.info.last_activity_ms = st.metrics.last_activity_ms;
        }
        let want = !live.outq.is_empty();
        if want != live.want_write && !live.eof {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let fd = live.master.as_raw_fd();
            if self
                .poll
                .registry()
                .reregister(&mut SourceFd(&fd), master_token(slot), interest)
                .is_ok()
            {
                live.want_write = want;
            }
        }
    }

    fn paste(&mut self, id: &str, text: &str, bracketed: bool) -> Result<()> {
        let slot = self.input_slot(id)?;
        let live = self.live(slot).expect("slot checked");
        let paste_mode = bracketed && lock(&live.state).screen.bracketed_paste();
        let bytes = frame_text(text, paste_mode);
        let ev = {
            let mut st = lock(&live.state);
            SessionEvent::Message {
                message: st.next_message(MessageKind::Paste, text.to_owned()),
            }
        };
        self.queue_write(slot, &bytes);
        self.shared.emit(ev);
        self.detect_input(slot);
        Ok(())
    }

    fn send(&mut self, id: &str, raw: &str) -> Result<String> {
        let slot = self.input_slot(id)?;
        let text = format_input(raw);
        let live = self.live(slot).expect("slot checked");
        live.turn += 1;
        live.keys.clear();
        let turn = live.turn;
        let mut events = Vec::new();
        let (bytes, message_id) = {
            let mut st = lock(&live.state);
            let paste = (text.contains('\n') || text.chars().count() > PASTE_OVER)
                && st.screen.bracketed_paste();
            let bytes = frame_text(&text, paste);
            st.screen.mark_turn_start();
            st.info.turn = turn;
            // With detection, its state machine decides (`detect_send`): a session blocked on a
            // prompt stays blocked until the prompt leaves the screen.
            if live.detect.is_none() {
                events.extend(st.set_status(SessionStatus::Busy));
            }
            let msg = st.next_message(MessageKind::Task, text.clone());
            let id = msg.id.clone();
            events.push(SessionEvent::Message { message: msg });
            (bytes, id)
        };
        let submit = Submit {
            message_id: message_id.clone(),
            probe: submit_probe(&text),
            attempts: 0,
        };
        let delay = enter_delay(live.min_enter_delay, text.len());
        if live.enter_for.is_some() {
            // The previous send's text is on the terminal and its Enter has not been written yet.
            // Cancelling that Enter (as other turn timers are cancelled) would leave the text in
            // the input line for this text to be appended to: two messages merged into one.
            // Writing it at once instead would break the Enter delay TUIs need (Codex and
            // Gemini fold an Enter that follows typing too fast into the text, and this text
            // would then join it). So this text waits: the pending Enter fires at its time, then
            // this text is written and gets its own Enter delay. Each text is written exactly
            // once; only the last of such a burst gets the verified-submit retries, because a
            // retry Enter for an earlier message would land in a later message's text.
            live.submit = None;
            live.held.push_back(HeldSend {
                bytes,
                delay,
                turn,
                submit: Some(submit),
            });
        } else {
            live.submit = Some(submit);
            live.enter_for = Some(turn);
            live.enter_answer = false;
            self.queue_write(slot, &bytes);
            self.schedule_for(slot, delay, TimerKind::Enter, turn);
        }
        for e in events {
            self.shared.emit(e);
        }
        self.detect_send(slot, &text);
        Ok(message_id)
    }

    fn keys(&mut self, id: &str, names: Vec<String>) -> Result<()> {
        let slot = self.input_slot(id)?;
        let live = self.live(slot).expect("slot checked");
        let ev = {
            let mut st = lock(&live.state);
            SessionEvent::Message {
                message: st.next_message(MessageKind::Keys, names.join(",")),
            }
        };
        live.keys.extend(names);
        let idle = !live.typing_keys();
        self.shared.emit(ev);
        if idle {
            // First key at once, the rest on the stagger timer.
            self.next_key(slot);
        }
        self.detect_input(slot);
        Ok(())
    }

    fn next_key(&mut self, slot: usize) {
        let Some(live) = self.live(slot) else { return };
        live.keys_timer = None;
        let Some(name) = live.keys.pop_front() else {
            return;
        };
        let app_cursor = lock(&live.state).screen.application_cursor();
        let more = !live.keys.is_empty();
        // Validated when queued; encoding cannot fail here. A one-character key comes only from
        // a rule's response (validated at rule load) and is typed as that character.
        if crate::rules::is_char_key(&name) {
            self.queue_write(slot, name.as_bytes());
        } else if let Ok(bytes) = keys::encode_key(&name, app_cursor) {
            self.queue_write(slot, &bytes);
        }
        if more {
            if let Some(live) = self.live(slot) {
                live.keys_timer = Some(live.turn);
            }
            self.schedule(slot, KEY_STAGGER, TimerKind::KeyStagger);
        }
    }

    /// Key names that move a menu's highlight to option `index` and press Enter.
    fn menu_keys(&mut self, id: &str, index: usize) -> Result<Vec<String>> {
        let slot = self.input_slot(id)?;
        let live = self.live(slot).expect("slot checked");
        let lines = {
            let mut st = lock(&live.state);
            st.screen.flush();
            st.screen.lines()
        };
        let current = live
            .menu_marker
            .as_deref()
            .and_then(|m| highlighted_option(&lines, m));
        let mut out = Vec::new();
        match current {
            Some(cur) if cur > index => {
                out.extend(std::iter::repeat_n("up".to_owned(), cur - index))
            }
            Some(cur) => out.extend(std::iter::repeat_n("down".to_owned(), index - cur)),
            None => out.extend(std::iter::repeat_n("down".to_owned(), index)),
        }
        out.push("enter".to_owned());
        Ok(out)
    }

    fn resize(&mut self, id: &str, cols: u16, rows: u16) -> Result<()> {
        let slot = self.input_slot(id)?;
        let live = self.live(slot).expect("slot checked");
        pty::set_size(live.master.as_raw_fd(), cols, rows).map_err(|source| Error::Io {
            context: format!("resizing session {id} to {cols}x{rows}"),
            source,
        })?;
        lock(&live.state).screen.resize(cols, rows);
        live.dirty = true;
        self.dirty.push(slot);
        Ok(())
    }

    fn stop(&mut self, id: &str, grace: Duration, force: bool, reply: Reply<SessionInfo>) {
        let slot = match self.by_id.get(id) {
            Some(&slot) => slot,
            None => {
                // Already finished: answer at once, signal nothing.
                let state = lock(&self.shared.table).get(id).cloned();
                let r = match state {
                    Some(s) => Ok(lock(&s).info.clone()),
                    None => Err(Error::SessionNotFound(id.to_owned())),
                };
                let _ = reply.send(r);
                return;
            }
        };
        let Some(live) = self.live(slot) else { return };
        live.stop_waiters.push(reply);
        if live.exited {
            // Finishing already; the waiter is answered when it is reaped.
            if force {
                live.kill_all(libc::SIGKILL);
            }
            return;
        }
        let first = !live.stopping;
        live.stopping = true;
        live.keys.clear();
        live.submit = None;
        if force {
            live.kill_all(libc::SIGKILL);
        } else if first {
            // SIGHUP too: interactive shells ignore SIGTERM but leave on a hang-up, as when a
            // terminal window closes.
            pty::kill_group(live.pid(), libc::SIGTERM);
            pty::kill_group(live.pid(), libc::SIGHUP);
        }
        let ev = lock(&live.state).set_status(SessionStatus::Stopping);
        if let Some(ev) = ev {
            self.shared.emit(ev);
        }
        if first && !force {
            self.schedule(slot, grace, TimerKind::StopKill);
        }
    }

    // ---- I/O ------------------------------------------------------------------------------

    fn read(&mut self, slot: usize) {
        let mut buf = std::mem::take(&mut self.buf);
        let mut catch_up = false;
        let mut lag_events = Vec::new();
        let mut eof = false;
        let mut failure = None;
        let mut any = false;
        {
            let Some(live) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                self.buf = buf;
                return;
            };
            if live.eof {
                self.buf = buf;
                return;
            }
            let mut budget = READ_BUDGET;
            // `buf[..fed]` went to the screen already (see `FEED_DEFERRED`), `buf[..filled]`
            // is read; `caught_up`: the last read came back short of `TTY_FULL_READ`.
            let (mut filled, mut fed, mut caught_up) = (0, 0, false);
            loop {
                let waiting = filled - fed;
                if filled == buf.len() {
                    deliver(live, &buf[..filled], fed, &mut lag_events);
                    (filled, fed) = (0, 0);
                } else if live.deferring
                    && waiting >= FEED_DEFERRED
                    && (caught_up || waiting >= FEED_BEHIND)
                {
                    live.deferring = feed_screen(live, &buf[fed..filled]);
                    fed = filled;
                }
                match (&live.master).read(&mut buf[filled..]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        any = true;
                        caught_up = n < TTY_FULL_READ;
                        filled += n;
                        budget = budget.saturating_sub(n);
                        if budget == 0 {
                            self.carry.push(slot);
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // EIO: every slave fd is closed and the buffer is empty.
                    Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                        eof = true;
                        break;
                    }
                    Err(e) => {
                        eof = true;
                        failure = Some(e);
                        break;
                    }
                }
            }
            if filled > 0 {
                deliver(live, &buf[..filled], fed, &mut lag_events);
            }
            // The screen may defer parsing while output floods in (`Screen::feed`; detection
            // passes read a cheap view of the visible rows meanwhile): parse it once the
            // program has been quiet for `CATCH_UP`.
            if any {
                live.last_output = Instant::now();
                if !live.catch_up && lock(&live.state).screen.needs_flush() {
                    live.catch_up = true;
                    catch_up = true;
                }
            }
            if any {
                if let Some(d) = live.detect.as_mut() {
                    d.machine.output_arrived();
                }
                if !live.dirty {
                    live.dirty = true;
                    self.dirty.push(slot);
                }
            }
            if eof {
                live.eof = true;
                let fd = live.master.as_raw_fd();
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            }
        }
        self.buf = buf;
        if catch_up {
            self.schedule(slot, CATCH_UP, TimerKind::CatchUp);
        }
        for e in lag_events {
            self.shared.emit(e);
        }
        if let Some(err) = failure {
            // BEHAVIOR.md §1.3 #20: a PTY error while the program lives is fatal to the session.
            if let Some(live) = self.live(slot)
                && !live.exited
            {
                {
                    live.kill_all(libc::SIGKILL);
                    let session = {
                        let mut st = lock(&live.state);
                        let ev = st.set_status(SessionStatus::Error);
                        let info = st.info.clone();
                        drop(st);
                        if let Some(ev) = ev {
                            self.shared.emit(ev);
                        }
                        info
                    };
                    self.shared.emit(SessionEvent::Error {
                        session,
                        error: format!("reading the pty failed: {err}"),
                    });
                }
            }
        }
        if eof && self.live(slot).is_some_and(|l| l.exited) {
            self.finalize(slot);
        }
    }

    fn child_exited(&mut self, slot: usize) {
        let Some(live) = self.live(slot) else { return };
        if live.exited {
            return;
        }
        live.exited = true;
        live.keys.clear();
        live.submit = None;
        if live.stopping {
            // The leader is a zombie now, so its pid (= group and session id) is still reserved:
            // safe to kill what is left of the group and session before reaping.
            live.kill_all(libc::SIGKILL);
        }
        if let Some(pidfd) = &live.pidfd {
            let fd = pidfd.as_raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
        // Drain what is already there; finish at end of file (which the master may have
        // reported before the pidfd, in the same poll), or after a short wait when another
        // process still holds the terminal.
        self.read(slot);
        match self.live(slot) {
            Some(live) if live.eof => self.finalize(slot),
            Some(_) => self.schedule(slot, EXIT_DRAIN, TimerKind::ExitDrain),
            None => {}
        }
    }

    /// Reaps the program, records how it ended and moves the session to the tombstones.
    fn finalize(&mut self, slot: usize) {
        let Some(mut live) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.by_id.remove(&live.id);
        self.free.push(slot);
        if !live.eof {
            let fd = live.master.as_raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
        if live.stopping {
            live.kill_all(libc::SIGKILL);
        }
        let status = live.child.wait();
        live.reaped = true;
        let exit = match status {
            Ok(s) => ExitInfo {
                code: s.code(),
                signal: s.signal(),
            },
            Err(_) => ExitInfo {
                code: None,
                signal: None,
            },
        };
        let (changed, info, was_error) = {
            let mut st = lock(&live.state);
            st.info.exit = Some(exit);
            let was_error = st.info.status == SessionStatus::Error;
            let changed = if was_error {
                None
            } else {
                st.set_status(SessionStatus::Stopped)
            };
            // Closing the subscribers' channels ends their streams after the last byte; one that
            // lagged is told what it missed first, even if its queue is full.
            for sub in st.subscribers.drain(..) {
                if sub.dropped_chunks > 0 {
                    let notice = OutputChunk::Lagged {
                        dropped_chunks: sub.dropped_chunks,
                        dropped_bytes: sub.dropped_bytes,
                    };
                    let _ = sub.tx.force_send(notice, 0);
                }
            }
            (changed, st.info.clone(), was_error)
        };
        if let Some(ev) = changed {
            self.shared.emit(ev);
        }
        if !was_error {
            self.shared.emit(SessionEvent::Stopped {
                reason: exit.reason(),
                code: exit.code,
                signal: exit.signal,
                session: info.clone(),
            });
        }
        for w in live.stop_waiters.drain(..) {
            let _ = w.send(Ok(info.clone()));
        }
        // `live` drops here: the master closes (hang-up for anything left on the terminal).
    }

    // ---- timers ---------------------------------------------------------------------------

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while self.timers.peek().is_some_and(|Reverse(t)| t.at <= now) {
            let Some(Reverse(t)) = self.timers.pop() else {
                break;
            };
            let Some(live) = self.live(t.slot) else {
                continue;
            };
            if live.serial != t.serial {
                continue;
            }
            if t.kind.turn_guarded() && (t.turn != live.turn || live.stopping || live.exited) {
                continue;
            }
            match t.kind {
                TimerKind::Enter => {
                    if live.enter_for != Some(t.turn) || live.stopping || live.exited {
                        continue;
                    }
                    live.enter_for = None;
                    let answer = std::mem::take(&mut live.enter_answer);
                    self.queue_write(t.slot, b"\r");
                    let Some(live) = self.live(t.slot) else {
                        continue;
                    };
                    if let Some(next) = live.held.pop_front() {
                        // A later send (or answer) waited for this Enter: its text now, its
                        // Enter later.
                        live.enter_for = Some(next.turn);
                        live.enter_answer = next.submit.is_none();
                        if let Some(submit) = next.submit {
                            // Only the last send of a burst gets the submit retries.
                            let last = live.held.iter().all(|h| h.submit.is_none());
                            live.submit = last.then_some(submit);
                        }
                        self.queue_write(t.slot, &next.bytes);
                        self.schedule_for(t.slot, next.delay, TimerKind::Enter, next.turn);
                    } else if !answer {
                        if let Some(s) = live.submit.as_mut() {
                            s.attempts = 1;
                        }
                        self.schedule(t.slot, SUBMIT_CHECK, TimerKind::SubmitCheck);
                    }
                }
                TimerKind::CatchUp => {
                    let quiet = live.last_output + CATCH_UP;
                    if quiet > now {
                        self.schedule(t.slot, quiet - now, TimerKind::CatchUp);
                        continue;
                    }
                    live.catch_up = false;
                    let stale = {
                        let mut st = lock(&live.state);
                        let stale = !st.screen.visible_current();
                        st.screen.flush();
                        stale
                    };
                    // Detection has not read this output yet: it gets a pass.
                    if stale && !live.dirty {
                        live.dirty = true;
                        self.dirty.push(t.slot);
                    }
                }
                TimerKind::SubmitCheck => self.check_submit(t.slot),
                TimerKind::KeyStagger => self.next_key(t.slot),
                TimerKind::StopKill => live.kill_all(libc::SIGKILL),
                TimerKind::ExitDrain => {
                    self.read(t.slot);
                    self.finalize(t.slot);
                }
                TimerKind::ReapTick => {
                    if live.exited {
                        continue;
                    }
                    if pty::has_exited(live.pid()) {
                        self.child_exited(t.slot);
                    } else {
                        self.schedule(t.slot, REAP_TICK, TimerKind::ReapTick);
                    }
                }
                TimerKind::Detection(n) => self.detect_timer(t.slot, n),
            }
        }
    }

    /// Verified submit (BEHAVIOR.md §2.3 step 4). HOOK for the detection engine: a `busy` or
    /// `prompt` signal since Enter also counts as submitted; today only the composer is checked
    /// (the text or a `[Pasted text #N …]` placeholder still on the cursor row means Enter did not
    /// take).
    fn submit_taken(&mut self, slot: usize) -> bool {
        let Some(live) = self.live(slot) else {
            return true;
        };
        let Some(submit) = &live.submit else {
            return true;
        };
        if submit.probe.is_empty() {
            return true;
        }
        // A busy or prompt signal since the task went in also means it was taken.
        if live.detect.as_ref().is_some_and(Detect::took_input) {
            return true;
        }
        let mut st = lock(&live.state);
        st.screen.flush();
        let row = st.screen.row_text(st.screen.cursor().0);
        !(row.contains(&submit.probe) || row.contains("[Pasted text #"))
    }

    fn check_submit(&mut self, slot: usize) {
        if self.submit_taken(slot) {
            if let Some(live) = self.live(slot) {
                live.submit = None;
            }
            return;
        }
        let Some(live) = self.live(slot) else { return };
        let Some(submit) = live.submit.as_mut() else {
            return;
        };
        if submit.attempts < SUBMIT_ATTEMPTS {
            submit.attempts += 1;
            self.queue_write(slot, b"\r");
            self.schedule(slot, SUBMIT_RETRY, TimerKind::SubmitCheck);
        } else {
            let submit = live.submit.take().expect("checked above");
            let session = lock(&live.state).info.clone();
            self.shared.emit(SessionEvent::SubmitFailed {
                session,
                message_id: submit.message_id,
                attempts: submit.attempts,
            });
        }
    }

    // ---- after a batch --------------------------------------------------------------------

    fn after_batch(&mut self) {
        for slot in std::mem::take(&mut self.dirty) {
            if let Some(live) = self.live(slot) {
                live.dirty = false;
                self.detect_pass(slot);
            }
        }
    }

    /// Runs once per session whose screen changed in the last batch of reads: flushes the query
    /// replies the screen produced, then asks for a detection pass (`detect_run`, which puts it
    /// off while a flood has spent the session's pass credit, see `PASS_SHARE`).
    fn detect_pass(&mut self, slot: usize) {
        if self.live(slot).is_some_and(|l| !l.outq.is_empty()) {
            self.flush(slot);
        }
        self.detect_run(slot);
    }

    fn kill_everything(&mut self) {
        let slots: Vec<usize> = (0..self.slots.len())
            .filter(|&s| self.slots[s].is_some())
            .collect();
        for &slot in &slots {
            if let Some(live) = self.live(slot) {
                live.stopping = true;
                live.kill_all(libc::SIGKILL);
            }
        }
        for slot in slots {
            self.finalize(slot);
        }
    }
}

/// Hands output to the screen; notes whether the screen is deferring (see `FEED_DEFERRED`).
fn feed_screen(live: &mut Live, data: &[u8]) -> bool {
    let mut st = lock(&live.state);
    st.fed_ahead += data.len();
    feed_locked(&mut st, &mut live.outq, data)
}

fn feed_locked(st: &mut SessionState, outq: &mut VecDeque<u8>, data: &[u8]) -> bool {
    st.screen.feed(data);
    if st.screen.has_replies() {
        outq.extend(st.screen.take_replies());
    }
    st.screen.deferred() > 0
}

/// Hands one chunk of output to the screen (all but its first `fed` bytes, which it has), the
/// ring and the subscribers.
fn deliver(live: &mut Live, data: &[u8], fed: usize, lag_events: &mut Vec<SessionEvent>) {
    let mut guard = lock(&live.state);
    let st: &mut SessionState = &mut guard;
    live.deferring = feed_locked(st, &mut live.outq, &data[fed..]);
    st.fed_ahead = 0;
    st.ring.push(data);
    st.subscribers.retain(|s| !s.is_disconnected());
    let now = now_ms();
    st.metrics.bytes_out += data.len() as u64;
    st.metrics.last_activity_ms = now;
    st.info.last_activity_ms = now;
    if st.subscribers.is_empty() {
        return;
    }
    let chunk: Arc<[u8]> = Arc::from(data);
    let mut dropped_now = 0;
    let id = &live.id;
    st.subscribers.retain_mut(|sub| {
        if sub.dropped_chunks > 0 {
            let notice = OutputChunk::Lagged {
                dropped_chunks: sub.dropped_chunks,
                dropped_bytes: sub.dropped_bytes,
            };
            match sub.tx.try_send(notice, 0) {
                Ok(()) => {
                    lag_events.push(SessionEvent::OutputLagged {
                        id: id.clone(),
                        dropped_chunks: sub.dropped_chunks,
                        dropped_bytes: sub.dropped_bytes,
                    });
                    sub.dropped_chunks = 0;
                    sub.dropped_bytes = 0;
                }
                Err(TrySendError::Full(_)) => {
                    sub.dropped_chunks += 1;
                    sub.dropped_bytes += data.len() as u64;
                    dropped_now += 1;
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        // A subscriber that attached while the screen was ahead has those bytes already.
        let skip = std::mem::take(&mut sub.skip).min(data.len());
        let piece = match skip {
            0 => chunk.clone(),
            _ if skip == data.len() => return true,
            _ => Arc::from(&data[skip..]),
        };
        let len = piece.len();
        match sub.tx.try_send(OutputChunk::Data(piece), len) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                sub.dropped_chunks += 1;
                sub.dropped_bytes += len as u64;
                dropped_now += 1;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    });
    st.metrics.lagged_chunks += dropped_now;
}

/// BEHAVIOR.md §2.1 `enter_delay`: `max(min, min(50 + 25·ceil(len/1000), 400))` ms.
pub(crate) fn enter_delay(min: Duration, len: usize) -> Duration {
    let grow = 50 + 25 * len.div_ceil(1000) as u64;
    min.max(Duration::from_millis(grow.min(400)))
}

/// The text as written: bracketed (`ESC[200~` … `ESC[201~`, inner end markers removed) when
/// `paste_mode`, else typed with `\n` as `\r`.
pub(crate) fn frame_text(text: &str, paste_mode: bool) -> Vec<u8> {
    if paste_mode {
        let inner = text.replace("\x1b[201~", "");
        let mut out = Vec::with_capacity(inner.len() + 12);
        out.extend_from_slice(b"\x1b[200~");
        out.extend_from_slice(inner.as_bytes());
        out.extend_from_slice(b"\x1b[201~");
        out
    } else {
        text.replace('\n', "\r").into_bytes()
    }
}

/// BEHAVIOR.md §2.3 step 1: strip ANSI sequences (also JSON-escaped `\u001b[…`) and control
/// characters except `\n` and `\t`; trim.
pub(crate) fn format_input(text: &str) -> String {
    let text = text.replace("\\u001b", "\x1b").replace("\\u001B", "\x1b");
    let plain = crate::ring::strip_controls(text.as_bytes());
    plain.trim().to_owned()
}

/// What must be gone from the cursor row once Enter took: the end of the text's last line.
fn submit_probe(text: &str) -> String {
    let last = text.lines().last().unwrap_or("").trim();
    let chars: Vec<char> = last.chars().collect();
    chars[chars.len().saturating_sub(24)..].iter().collect()
}

/// The 0-based index of the highlighted option: the row starting with `marker`, numbered
/// (`❯ 2. Yes`) or counted among the option rows above it at the same indent.
fn highlighted_option(lines: &[String], marker: &str) -> Option<usize> {
    let (row, line) = lines
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| l.trim_start().starts_with(marker))?;
    let after = line.trim_start()[marker.len()..].trim_start();
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    if !digits.is_empty() && after[digits.len()..].starts_with(['.', ')']) {
        return digits.parse::<usize>().ok()?.checked_sub(1);
    }
    // Unnumbered: option rows above share the text column of the highlighted one.
    let col = line.chars().count() - after.chars().count();
    let mut above = 0;
    for l in lines[..row].iter().rev() {
        let indent = l.chars().count() - l.trim_start().chars().count();
        if l.trim().is_empty() || indent != col {
            break;
        }
        above += 1;
    }
    Some(above)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_delay_grows_with_length_to_a_cap() {
        let min = Duration::from_millis(50);
        let ms = |len| enter_delay(min, len).as_millis();
        assert_eq!(ms(0), 50);
        assert_eq!(ms(1), 75);
        assert_eq!(ms(1000), 75);
        assert_eq!(ms(1001), 100);
        assert_eq!(ms(100_000), 400);
        assert_eq!(enter_delay(Duration::from_millis(500), 10).as_millis(), 500);
    }

    #[test]
    fn framing() {
        assert_eq!(frame_text("a\nb", false), b"a\rb");
        assert_eq!(
            frame_text("a\x1b[201~b", true),
            b"\x1b[200~ab\x1b[201~".to_vec()
        );
    }

    #[test]
    fn input_is_cleaned() {
        assert_eq!(
            format_input("  \x1b[31mred\x1b[0m\x07 text\n\tx  "),
            "red text\n\tx"
        );
        assert_eq!(format_input("\\u001b[1mbold\\u001b[0m"), "bold");
        assert_eq!(format_input("a\r\nb"), "a\nb");
    }

    #[test]
    fn menu_highlight() {
        let numbered: Vec<String> = ["Pick one", " 1. Yes", "❯ 2. No", " 3. Maybe"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(highlighted_option(&numbered, "❯"), Some(1));
        let plain: Vec<String> = ["Theme", "  Dark", "  Light", "› Auto"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(highlighted_option(&plain, "›"), Some(2));
        assert_eq!(highlighted_option(&plain, "❯"), None);
    }

    #[test]
    fn probe_is_the_end_of_the_last_line() {
        assert_eq!(submit_probe("hello"), "hello");
        assert_eq!(submit_probe("first\nsecond line"), "second line");
        assert_eq!(submit_probe(&"x".repeat(100)).len(), 24);
    }
}
