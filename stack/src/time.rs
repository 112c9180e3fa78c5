//! Time as a value. Nothing below `runtime/` reads a clock: the protocol
//! code takes `now: Instant` as an argument, so tests drive it with a
//! [`ManualClock`]. The runtime reads the [`Clock`] it is given: a
//! threaded stack ([`crate::Stack::new`]) the [`SystemClock`], a driven one
//! ([`crate::Stack::driven`]) any clock, and so do the fault injector and
//! the pcap writer, so a whole network of stacks can run in simulated
//! time.

use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point in time, in microseconds since an arbitrary epoch (the start of
/// the stack or of a test). Cheap to copy and to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    pub const ZERO: Instant = Instant { micros: 0 };

    pub const fn from_micros(micros: u64) -> Instant {
        Instant { micros }
    }

    pub const fn from_millis(millis: u64) -> Instant {
        Instant {
            micros: millis.saturating_mul(1000),
        }
    }

    pub const fn total_micros(self) -> u64 {
        self.micros
    }

    pub const fn total_millis(self) -> u64 {
        self.micros / 1000
    }

    /// The time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        let micros = u64::try_from(rhs.as_micros()).unwrap_or(u64::MAX);
        Instant {
            micros: self.micros.saturating_add(micros),
        }
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// A source of [`Instant`]s.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The wall clock, counted from when it was created.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: std::time::Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock {
            start: std::time::Instant::now(),
        }
    }

    /// The std instant that corresponds to `at`, for blocking waits.
    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        self.start + Duration::from_micros(at.total_micros())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        let micros = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        Instant::from_micros(micros)
    }
}

/// A clock that moves only when told to: simulated time for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    micros: std::sync::atomic::AtomicU64,
}

impl ManualClock {
    pub fn new(start: Instant) -> ManualClock {
        ManualClock {
            micros: std::sync::atomic::AtomicU64::new(start.total_micros()),
        }
    }

    pub fn advance(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.micros
            .fetch_add(micros, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn set(&self, at: Instant) {
        self.micros
            .store(at.total_micros(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.micros.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_millis(3), Instant::from_millis(8));
        assert_eq!(Instant::from_millis(2) - t, Duration::ZERO);
        assert_eq!(t - Instant::from_millis(2), Duration::from_millis(3));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Instant::ZERO);
        assert_eq!(clock.now(), Instant::ZERO);
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.now(), Instant::from_millis(250));
    }
}
