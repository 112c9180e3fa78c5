//! The counters that back timers off and decide when to give up: RFC 6298
//! §5.5 consecutive retransmission timeouts (RFC 1122 §4.2.3.5 gives up
//! after too many), RFC 1122 §4.2.2.17 persist back-off, and RFC 1122
//! §4.2.3.6 unanswered keepalive probes.

use std::time::Duration;

/// Zero-window probes back off up to 2^this times the RTO (then `max_rto`).
const MAX_PERSIST_BACKOFF: u32 = 16;

/// Back-off and give-up counters.
///
/// # Invariants
///
/// - `retransmits` counts timeouts since the peer last acknowledged new
///   data; it is 0 after any progress.
/// - `persist <= MAX_PERSIST_BACKOFF`, so the persist interval never
///   overflows; it too is 0 after progress or once the window opens.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    retransmits: u32,
    persist: u32,
    keepalives: u32,
}

impl Backoff {
    /// Consecutive retransmission timeouts without progress.
    pub(super) fn retransmits(&self) -> u32 {
        self.retransmits
    }

    /// The peer acknowledged new data: every back-off starts over.
    pub(super) fn progress(&mut self) {
        self.retransmits = 0;
        self.persist = 0;
    }

    /// A retransmission timeout; returns whether this exceeds `limit`
    /// (time to give up).
    pub(super) fn retransmit_timeout(&mut self, limit: u32) -> bool {
        self.retransmits += 1;
        self.retransmits > limit
    }

    /// The persist timer fired: the next interval doubles.
    pub(super) fn persist_fired(&mut self) {
        self.persist = (self.persist + 1).min(MAX_PERSIST_BACKOFF);
    }

    /// The peer's window is open: persist starts over.
    pub(super) fn window_open(&mut self) {
        self.persist = 0;
    }

    /// RTO times 2^backoff, capped at `max_rto` (RFC 1122 §4.2.2.17:
    /// exponential back-off, never give up while the peer answers).
    pub(super) fn persist_interval(&self, rto: Duration, max_rto: Duration) -> Duration {
        let factor = 1u32 << self.persist.min(MAX_PERSIST_BACKOFF);
        rto.saturating_mul(factor).min(max_rto)
    }

    /// The peer was heard from: unanswered keepalives start over.
    pub(super) fn heard(&mut self) {
        self.keepalives = 0;
    }

    /// Unanswered keepalive probes so far.
    pub(super) fn keepalives(&self) -> u32 {
        self.keepalives
    }

    pub(super) fn keepalive_sent(&mut self) {
        self.keepalives += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persist_interval_doubles_and_is_capped() {
        let ms = Duration::from_millis;
        let mut b = Backoff::default();
        assert_eq!(b.persist_interval(ms(200), ms(60_000)), ms(200));
        b.persist_fired();
        b.persist_fired();
        assert_eq!(b.persist_interval(ms(200), ms(60_000)), ms(800));
        for _ in 0..100 {
            b.persist_fired();
        }
        assert_eq!(b.persist_interval(ms(200), ms(60_000)), ms(60_000));
        b.window_open();
        assert_eq!(b.persist_interval(ms(200), ms(60_000)), ms(200));
    }

    #[test]
    fn gives_up_after_the_limit_unless_progress() {
        let mut b = Backoff::default();
        assert!(!b.retransmit_timeout(2));
        assert!(!b.retransmit_timeout(2));
        b.progress();
        assert_eq!(b.retransmits(), 0);
        assert!(!b.retransmit_timeout(2));
        assert!(!b.retransmit_timeout(2));
        assert!(b.retransmit_timeout(2));
    }

    #[test]
    fn keepalives_count_until_heard() {
        let mut b = Backoff::default();
        b.keepalive_sent();
        b.keepalive_sent();
        assert_eq!(b.keepalives(), 2);
        b.heard();
        assert_eq!(b.keepalives(), 0);
    }
}
