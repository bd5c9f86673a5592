//! An injectable clock, so the state machine and its timers are tested with no sleeps.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to.
///
/// ```
/// use pty_manager::{Clock, FakeClock};
/// use std::time::Duration;
/// let c = FakeClock::new();
/// let t0 = c.now();
/// c.advance(Duration::from_millis(250));
/// assert_eq!(c.now() - t0, Duration::from_millis(250));
/// ```
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<Instant>,
}

impl FakeClock {
    /// A fake clock starting at the real current instant.
    pub fn new() -> Self {
        FakeClock {
            now: Mutex::new(Instant::now()),
        }
    }

    /// Move time forward.
    pub fn advance(&self, by: Duration) {
        let mut n = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *n += by;
    }

    /// Move time forward by `ms` milliseconds and return the new instant.
    pub fn advance_ms(&self, ms: u64) -> Instant {
        self.advance(Duration::from_millis(ms));
        self.now()
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}
