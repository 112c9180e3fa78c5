//! The replies owed: what inputs decided and the next `poll_transmit`
//! sends. Inputs never emit (see `Connection`'s method taxonomy); they
//! record here an ACK (now or delayed), a RST, a challenge ACK under its
//! rate limit, a zero-window probe or a keepalive probe.

use std::time::Duration;

use crate::time::Instant;
use crate::wire::SeqNumber;

/// What acknowledgment we owe the peer. Ordered: `Now` beats `Delayed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum AckOwed {
    None,
    /// In-order data arrived; the delayed-ACK timer runs (RFC 1122 §4.2.3.2).
    Delayed,
    /// The next `poll_transmit` sends an ACK, alone or on data.
    Now,
}

/// A RST that the next `poll_transmit` emits, before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RstOwed {
    pub(super) seq: SeqNumber,
    /// `Some` for `<CTL=RST,ACK>`.
    pub(super) ack: Option<SeqNumber>,
}

/// The replies owed to the peer.
///
/// # Invariants
///
/// - An ACK owed only grows (`None` < `Delayed` < `Now`) until one is
///   sent ([`Owed::sent_ack`]) or the connection closes.
/// - `unacked_bytes` counts in-order data since our last ACK and is below
///   two full-sized segments while the ACK is only delayed: reaching two
///   always makes it `Now` (RFC 1122 §4.2.3.2, RFC 5681 §4.2).
/// - At most `challenge_limit` challenge ACKs are owed per one-second
///   window (RFC 5961 §7).
pub(super) struct Owed {
    ack: AckOwed,
    unacked_bytes: usize,
    rst: Option<RstOwed>,
    /// Start of the current challenge-ACK window and how many were sent in
    /// it.
    challenge_window: Option<Instant>,
    challenge_count: u32,
    challenge_limit: u32,
    /// A zero-window probe (RFC 9293 §3.8.6.1): the persist timer fired.
    probe: bool,
    /// A keepalive probe (RFC 1122 §4.2.3.6).
    keepalive: bool,
}

impl Owed {
    /// Nothing owed; at most `challenge_acks_per_sec` challenge ACKs.
    pub(super) fn new(challenge_acks_per_sec: u32) -> Owed {
        Owed {
            ack: AckOwed::None,
            unacked_bytes: 0,
            rst: None,
            challenge_window: None,
            challenge_count: 0,
            challenge_limit: challenge_acks_per_sec,
            probe: false,
            keepalive: false,
        }
    }

    pub(super) fn ack(&self) -> AckOwed {
        self.ack
    }

    /// The next `poll_transmit` acknowledges.
    pub(super) fn ack_now(&mut self) {
        self.ack = AckOwed::Now;
    }

    /// `bytes` of in-order data arrived; `full_segment` is the payload of
    /// a full-sized segment from the peer. Without delayed ACKs
    /// (`delayed` false) it is acknowledged at once. With them, RFC 1122
    /// §4.2.3.2 (and RFC 5681 §4.2) want an ACK for at least every second
    /// full-sized segment: counting bytes rather than segments, the ACK is
    /// owed at once when two full segments' worth is unacknowledged. A
    /// run of small segments waits for the timer, and a super-segment
    /// (many full segments merged by the sender's offload) is acknowledged
    /// at once, as it would have been had it arrived split.
    pub(super) fn in_order_data(&mut self, bytes: usize, delayed: bool, full_segment: usize) {
        if !delayed {
            self.ack = AckOwed::Now;
            return;
        }
        self.unacked_bytes = self.unacked_bytes.saturating_add(bytes);
        if self.unacked_bytes >= full_segment.max(1).saturating_mul(2) {
            self.ack = AckOwed::Now;
        } else if self.ack < AckOwed::Delayed {
            self.ack = AckOwed::Delayed;
        }
    }

    /// An ACK went out (alone or on data).
    pub(super) fn sent_ack(&mut self) {
        self.ack = AckOwed::None;
        self.unacked_bytes = 0;
    }

    /// RFC 5961 §3.2, §4.2, §5.2 challenge ACK, at most the limit per
    /// one-second window (§7). Returns whether it is owed (else it is
    /// suppressed).
    pub(super) fn challenge_ack(&mut self, now: Instant) -> bool {
        let window_over = self
            .challenge_window
            .is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(1));
        if window_over {
            self.challenge_window = Some(now);
            self.challenge_count = 0;
        }
        if self.challenge_count < self.challenge_limit {
            self.challenge_count += 1;
            self.ack = AckOwed::Now;
            true
        } else {
            false
        }
    }

    pub(super) fn rst(&mut self, seq: SeqNumber, ack: Option<SeqNumber>) {
        self.rst = Some(RstOwed { seq, ack });
    }

    pub(super) fn take_rst(&mut self) -> Option<RstOwed> {
        self.rst.take()
    }

    pub(super) fn rst_pending(&self) -> bool {
        self.rst.is_some()
    }

    pub(super) fn probe(&mut self) {
        self.probe = true;
    }

    pub(super) fn take_probe(&mut self) -> bool {
        std::mem::take(&mut self.probe)
    }

    pub(super) fn keepalive(&mut self) {
        self.keepalive = true;
    }

    pub(super) fn take_keepalive(&mut self) -> bool {
        std::mem::take(&mut self.keepalive)
    }

    /// TIME-WAIT: no probes any more (an ACK may still be owed).
    pub(super) fn cancel_probes(&mut self) {
        self.probe = false;
        self.keepalive = false;
    }

    /// CLOSED: nothing but a RST is sent any more.
    pub(super) fn closed(&mut self) {
        self.ack = AckOwed::None;
        self.cancel_probes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: u64) -> Instant {
        Instant::from_millis(t)
    }

    #[test]
    fn challenge_acks_are_limited_per_one_second_window() {
        let mut o = Owed::new(2);
        assert!(o.challenge_ack(ms(1000)));
        assert_eq!(o.ack(), AckOwed::Now);
        o.sent_ack();
        assert!(o.challenge_ack(ms(1500)));
        o.sent_ack();
        assert!(!o.challenge_ack(ms(1999)));
        assert_eq!(o.ack(), AckOwed::None, "a suppressed one owes nothing");
        // The window started at 1000: at 2000 a new one starts.
        assert!(o.challenge_ack(ms(2000)));
        assert!(o.challenge_ack(ms(2999)));
        assert!(!o.challenge_ack(ms(2999)));
    }

    #[test]
    fn zero_limit_suppresses_every_challenge_ack() {
        let mut o = Owed::new(0);
        assert!(!o.challenge_ack(ms(0)));
        assert!(!o.challenge_ack(ms(5000)));
        assert_eq!(o.ack(), AckOwed::None);
    }

    /// A full-sized segment in these tests.
    const FULL: usize = 1448;

    #[test]
    fn every_second_full_sized_segment_is_acked_at_once() {
        let mut o = Owed::new(1);
        o.in_order_data(FULL, true, FULL);
        assert_eq!(o.ack(), AckOwed::Delayed);
        o.in_order_data(FULL, true, FULL);
        assert_eq!(o.ack(), AckOwed::Now);
        o.sent_ack();
        o.in_order_data(FULL, true, FULL);
        assert_eq!(o.ack(), AckOwed::Delayed);
        // `Now` is never lowered back to `Delayed`.
        o.ack_now();
        o.sent_ack();
        o.ack_now();
        o.in_order_data(FULL, true, FULL);
        assert_eq!(o.ack(), AckOwed::Now);
        o.sent_ack();
        o.in_order_data(1, false, FULL);
        assert_eq!(o.ack(), AckOwed::Now);
    }

    #[test]
    fn ack_is_owed_at_two_full_segments_of_bytes_not_before() {
        let mut o = Owed::new(1);
        // Small segments add up: one byte short of two full segments
        // still waits for the timer, the byte that completes them does
        // not.
        for _ in 0..7 {
            o.in_order_data(400, true, FULL);
        }
        o.in_order_data(2 * FULL - 7 * 400 - 1, true, FULL);
        assert_eq!(o.ack(), AckOwed::Delayed);
        o.in_order_data(1, true, FULL);
        assert_eq!(o.ack(), AckOwed::Now);
        // The count starts again after the ACK.
        o.sent_ack();
        o.in_order_data(FULL + 1, true, FULL);
        assert_eq!(o.ack(), AckOwed::Delayed);
    }

    #[test]
    fn super_segment_is_acked_at_once() {
        let mut o = Owed::new(1);
        // 64 KiB merged by the sender's segmentation offload: as many
        // full segments as arrived split, so no delay.
        o.in_order_data(65_483, true, FULL);
        assert_eq!(o.ack(), AckOwed::Now);
        // Even a zero full-segment size cannot make every byte wait.
        o.sent_ack();
        o.in_order_data(1, true, 0);
        assert_eq!(o.ack(), AckOwed::Delayed);
        o.in_order_data(1, true, 0);
        assert_eq!(o.ack(), AckOwed::Now);
    }

    #[test]
    fn closing_keeps_only_the_rst() {
        let mut o = Owed::new(1);
        o.ack_now();
        o.probe();
        o.keepalive();
        o.rst(SeqNumber(5), None);
        o.closed();
        assert_eq!(o.ack(), AckOwed::None);
        assert!(!o.take_probe() && !o.take_keepalive());
        assert!(o.rst_pending());
        assert_eq!(o.take_rst().map(|r| r.seq), Some(SeqNumber(5)));
        assert!(!o.rst_pending());
    }
}
