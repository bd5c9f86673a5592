//! On-time deadline wake-ups for the reactor.
//!
//! mio hands poll timeouts to `epoll_wait` in whole milliseconds, rounded up, so a deadline whose
//! timeout is computed while the reactor is busy (another session's output, a command) fires up
//! to 1 ms late, and a 100 ms settle becomes 100-101 ms. On Linux a timerfd, armed for the
//! earliest deadline with nanosecond resolution and registered in the poll, wakes the reactor on
//! time instead. It is re-armed only when the earliest deadline changes, and never when there is
//! none, so an idle manager makes no extra system call and sleeps as before. Where no timerfd can
//! be had, the millisecond poll timeout is the timer, as it was.

use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::os::fd::{AsFd, AsRawFd};

#[cfg(any(target_os = "linux", target_os = "android"))]
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// The poll token of the deadline timer (below the waker's `usize::MAX`; session tokens are small).
pub(super) const TIMER: Token = Token(usize::MAX - 1);

/// Slack of the poll timeout kept as a safety net behind an armed timerfd: should the timerfd
/// never fire, the deadline is still met within this plus mio's rounding.
const BACKSTOP: Duration = Duration::from_millis(1);

/// The reactor's one deadline timer.
pub(super) struct DeadlineTimer {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fd: Option<TimerFd>,
    /// The deadline the timerfd is armed for, until it fires or is re-armed.
    armed: Option<Instant>,
}

impl DeadlineTimer {
    /// A timerfd registered in `registry` under [`TIMER`]; without one (creation or
    /// registration failed, or not Linux) [`DeadlineTimer::timeout`] falls back to poll timeouts.
    pub(super) fn new(registry: &Registry) -> Self {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // CLOCK_MONOTONIC is the clock `Instant` reads on Linux.
            let fd = TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )
            .ok()
            .filter(|fd| {
                let raw = fd.as_fd().as_raw_fd();
                registry
                    .register(&mut SourceFd(&raw), TIMER, Interest::READABLE)
                    .is_ok()
            });
            DeadlineTimer { fd, armed: None }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = registry;
            DeadlineTimer { armed: None }
        }
    }

    /// The poll timeout for waiting until `next` (the earliest deadline), arming the timerfd for
    /// it when that deadline changed. `None` waits for an event (the timerfd is one).
    pub(super) fn timeout(&mut self, next: Option<Instant>, now: Instant) -> Option<Duration> {
        let at = next?;
        let left = at.saturating_duration_since(now);
        if left.is_zero() {
            return Some(Duration::ZERO);
        }
        if self.arm(at, left) {
            Some(left + BACKSTOP)
        } else {
            Some(left)
        }
    }

    /// Arms the timerfd to fire `left` from now (for the deadline `at`); whether it is armed.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn arm(&mut self, at: Instant, left: Duration) -> bool {
        let Some(fd) = &self.fd else {
            return false;
        };
        if self.armed == Some(at) {
            return true;
        }
        // Relative to a `now` read before this call, so it never fires before `at`.
        let ok = fd
            .set(Expiration::OneShot(left.into()), TimerSetTimeFlags::empty())
            .is_ok();
        self.armed = ok.then_some(at);
        ok
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn arm(&mut self, _at: Instant, _left: Duration) -> bool {
        false
    }

    /// The timerfd fired: consume its expiration count (it stays readable otherwise).
    pub(super) fn fired(&mut self) {
        self.armed = None;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(fd) = &self.fd {
            let mut count = [0u8; 8];
            // Non-blocking: nothing to read (already consumed) is `EAGAIN`, which is fine.
            let _ = nix::unistd::read(fd, &mut count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    /// Waits in the poll as the reactor does; returns whether the timer token was seen.
    fn wait(poll: &mut Poll, timer: &mut DeadlineTimer, at: Instant) -> bool {
        let mut events = Events::with_capacity(8);
        let mut seen = false;
        while Instant::now() < at {
            let timeout = timer.timeout(Some(at), Instant::now());
            poll.poll(&mut events, timeout).unwrap();
            for ev in events.iter() {
                if ev.token() == TIMER {
                    timer.fired();
                    seen = true;
                }
            }
        }
        seen
    }

    #[test]
    fn wakes_the_poll_for_a_deadline_and_again_for_the_next() {
        let mut poll = Poll::new().unwrap();
        let mut timer = DeadlineTimer::new(poll.registry());
        for _ in 0..2 {
            let at = Instant::now() + Duration::from_millis(3);
            let seen = wait(&mut poll, &mut timer, at);
            assert!(Instant::now() >= at);
            #[cfg(target_os = "linux")]
            assert!(seen, "the timerfd woke the poll");
            let _ = seen;
        }
    }

    #[test]
    fn no_deadline_means_no_timeout_and_a_due_one_means_zero() {
        let poll = Poll::new().unwrap();
        let mut timer = DeadlineTimer::new(poll.registry());
        let now = Instant::now();
        assert_eq!(timer.timeout(None, now), None);
        assert_eq!(timer.timeout(Some(now), now), Some(Duration::ZERO));
        let later = now + Duration::from_secs(10);
        let t = timer.timeout(Some(later), now).unwrap();
        assert!(t >= Duration::from_secs(10));
    }
}
