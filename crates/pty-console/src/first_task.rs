//! A task given at spawn, typed only once the session is ready (BEHAVIOR.md §2.1 "post-ready task
//! delay" and "ready timeout", §2.3).
//!
//! Text written into a terminal before the program reads it is echoed by the terminal itself and
//! then again by the program's line editor when it starts: a shell showed its first command
//! twice, and agent CLIs may drop or garble what arrives while they draw their first screen.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use pty_manager::{PtyManager, SessionEvent, SessionStatus};

use crate::Result;

/// When a task given at spawn is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskTiming {
    /// Pause after the session first reads as `ready` (per agent; 300 ms for the shell and
    /// agents without their own value).
    pub post_ready: Duration,
    /// A session still `starting` after this long gets its task anyway (30 s). A `blocked` or
    /// `authenticating` session never does: the task waits for `ready`.
    pub ready_timeout: Duration,
    /// How often the status is looked at while waiting.
    pub poll: Duration,
}

impl Default for TaskTiming {
    fn default() -> Self {
        Self {
            post_ready: Duration::from_millis(300),
            ready_timeout: Duration::from_secs(30),
            poll: Duration::from_millis(20),
        }
    }
}

/// What became of a task given at spawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Sent after the session read as `ready`; the manager's message id.
    AfterReady(String),
    /// Sent to a session still `starting` when the ready timeout passed; the message id.
    AfterTimeout(String),
    /// The session stopped (or was removed, or its manager was dropped) before it was ready;
    /// nothing was sent.
    SessionEnded,
}

/// Waits until session `id` is ready, then sends `task` as a turn (BEHAVIOR.md §2.3). Blocks the
/// calling thread: run it on one of its own (see [`send_when_ready`]). The manager is held weakly
/// while waiting, so a task waiting on a session that never gets ready does not keep the manager
/// (and its sessions) alive.
///
/// After the post-ready pause the status is looked at again: a session that became `blocked` or
/// `authenticating` meanwhile waits for `ready` again (the task would answer its prompt); one that
/// turned `busy` on its own (a banner, an update check) is sent to, as the plugin always did.
pub fn wait_ready_and_send(
    manager: &Weak<PtyManager>,
    id: &str,
    task: &str,
    timing: TaskTiming,
) -> Result<Delivery> {
    let started = Instant::now();
    let status = || {
        manager
            .upgrade()
            .and_then(|m| m.get(id).ok().map(|s| s.status))
    };
    let send = |make: fn(String) -> Delivery| match manager.upgrade() {
        Some(m) => Ok(make(m.send(id, task)?)),
        None => Ok(Delivery::SessionEnded),
    };
    // The session's `ready` events as well as its status: a `ready` that turned `busy` again
    // between two looks still counts (the event-driven delivery this replaces never missed one).
    let Some(events) = manager.upgrade().map(|m| m.events()) else {
        return Ok(Delivery::SessionEnded);
    };
    let mut saw_ready = false;
    loop {
        // A `ready` seen as an event counts once, and only if nothing but work followed it.
        let seen = std::mem::take(&mut saw_ready);
        match status() {
            None => return Ok(Delivery::SessionEnded),
            Some(s) if !s.is_live() => return Ok(Delivery::SessionEnded),
            Some(s) if s == SessionStatus::Ready || (seen && s == SessionStatus::Busy) => {
                std::thread::sleep(timing.post_ready);
                match status() {
                    Some(SessionStatus::Ready | SessionStatus::Busy) => {
                        return send(Delivery::AfterReady);
                    }
                    // Blocked, authenticating, or gone: the loop decides.
                    _ => continue,
                }
            }
            Some(SessionStatus::Starting) if started.elapsed() >= timing.ready_timeout => {
                return send(Delivery::AfterTimeout);
            }
            Some(_) => {
                // Waits up to one poll interval, woken early by this session's `ready`.
                let deadline = Instant::now() + timing.poll;
                while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                    match events.recv_timeout(left) {
                        Ok(SessionEvent::Ready { session }) if session.id == id => {
                            saw_ready = true;
                            break;
                        }
                        Ok(_) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                            // The manager is gone; the next look says so.
                            std::thread::sleep(left);
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// [`wait_ready_and_send`] on a thread of its own; the handle gives the outcome.
pub fn send_when_ready(
    manager: &Arc<PtyManager>,
    id: String,
    task: String,
    timing: TaskTiming,
) -> std::thread::JoinHandle<Result<Delivery>> {
    let manager = Arc::downgrade(manager);
    std::thread::spawn(move || wait_ready_and_send(&manager, &id, &task, timing))
}
