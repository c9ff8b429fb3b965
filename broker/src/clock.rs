//! Time, injectable: code that expires things (group sessions, rebalance deadlines, retention; later ISR lag
//! and broker sessions) reads a [`Clock`] instead of the system, so tests can move time without sleeping.
//! A leaf: imports nothing else of the crate.

use std::{
    sync::Mutex,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Monotonic time, for deadlines.
    fn now(&self) -> Instant;
    /// Wall-clock milliseconds since the Unix epoch, for timestamps that are stored or sent.
    fn wall_ms(&self) -> i64;
}

/// The system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall_ms(&self) -> i64 {
        now_ms()
    }
}

/// Wall-clock milliseconds since the Unix epoch from the system (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A clock that moves only when told to. Starts at the system's current time.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    start_wall_ms: i64,
    elapsed: Mutex<Duration>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            start_wall_ms: now_ms(),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn wall_ms(&self) -> i64 {
        self.start_wall_ms + i64::try_from(self.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_both_clocks_together() {
        let clock = ManualClock::default();
        let (t0, w0) = (clock.now(), clock.wall_ms());
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - t0, Duration::from_millis(1500));
        assert_eq!(clock.wall_ms() - w0, 1500);
    }
}
