//! The connection's timers in one enum-indexed table (STYLE §2.3): each
//! timer is a deadline or nothing, and the earliest one is what
//! `Connection::poll_timeout` reports.

use crate::time::Instant;

/// The timers a connection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// RFC 6298: retransmit the oldest unacknowledged segment.
    Retransmit = 0,
    /// RFC 9293 §3.8.6.1: probe a zero window.
    Persist = 1,
    /// RFC 9293 §3.8.6.3 / RFC 1122 §4.2.3.2: send the ACK we held back.
    DelayedAck = 2,
    /// RFC 9293 §3.10.8: 2*MSL in TIME-WAIT, then CLOSED.
    TimeWait = 3,
    /// RFC 1122 §4.2.3.6: probe an idle peer.
    Keepalive = 4,
    /// RFC 8985 §7.2: no ACK for a probe timeout (PTO) with data
    /// outstanding: send a tail loss probe.
    LossProbe = 5,
    /// RFC 8985 §6.2 step 5: a retransmission that later deliveries
    /// overtook is deemed lost once the reordering window has passed.
    Reorder = 6,
}

impl Timer {
    /// Every timer, in table order.
    pub const ALL: [Timer; COUNT] = [
        Timer::Retransmit,
        Timer::Persist,
        Timer::DelayedAck,
        Timer::TimeWait,
        Timer::Keepalive,
        Timer::LossProbe,
        Timer::Reorder,
    ];
}

/// How many timers there are.
const COUNT: usize = 7;

/// One optional deadline per [`Timer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerTable {
    data: [Option<Instant>; COUNT],
}

impl TimerTable {
    /// Arms (or re-arms) `timer` to fire at `at`.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.data[timer as usize] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.data[timer as usize] = None;
    }

    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.data = [None; COUNT];
    }

    /// The deadline of `timer`, if armed.
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.data[timer as usize]
    }

    pub fn is_armed(&self, timer: Timer) -> bool {
        self.data[timer as usize].is_some()
    }

    /// Whether `timer` is armed and due at `now`.
    pub fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.data[timer as usize].is_some_and(|at| at <= now)
    }

    /// The earliest armed deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_timeout_is_the_earliest_armed() {
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::TimeWait, Instant::from_millis(60_000));
        t.set(Timer::DelayedAck, Instant::from_millis(40));
        assert_eq!(t.next_timeout(), Some(Instant::from_millis(40)));
        assert!(t.is_expired(Timer::DelayedAck, Instant::from_millis(40)));
        assert!(!t.is_expired(Timer::DelayedAck, Instant::from_millis(39)));
        t.stop(Timer::DelayedAck);
        assert_eq!(t.next_timeout(), Some(Instant::from_millis(60_000)));
        t.stop_all();
        assert!(!t.is_armed(Timer::TimeWait));
    }
}
