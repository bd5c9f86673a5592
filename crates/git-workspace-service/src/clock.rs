//! Time as a dependency, so TTLs, token expiry and the device-flow poll loop are tested without
//! sleeping.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time and a way to wait.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Waits `d` (a fake clock advances instead).
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock that only moves when told to (or when something sleeps on it); records every sleep.
#[derive(Debug, Default)]
pub struct FakeClock {
    now: std::sync::Mutex<(u64, Vec<Duration>)>,
}

impl FakeClock {
    /// A fake clock at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            now: std::sync::Mutex::new((now_ms, Vec::new())),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        self.now.lock().unwrap_or_else(|e| e.into_inner()).0 += d.as_millis() as u64;
    }

    /// Every duration slept so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.now.lock().unwrap_or_else(|e| e.into_inner()).1.clone()
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.now.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn sleep(&self, d: Duration) {
        let mut g = self.now.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += d.as_millis() as u64;
        g.1.push(d);
    }
}
