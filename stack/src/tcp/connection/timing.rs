//! Round-trip timing: the RFC 6298 estimator and the one segment being
//! timed, under Karn's rule (RFC 6298 §3: a retransmitted segment gives
//! no sample, since its ACK may answer either transmission). Echoed
//! timestamps (RFC 7323 §4.1) are the other source of samples; they come
//! from `Negotiated::rtt_sample`.
//!
//! The timed segment is preferred, as Linux prefers its own send times
//! to echoes: it is measured in microseconds, where an echo counts whole
//! milliseconds (our TSval ticks once a millisecond, RFC 7323 §5.4) and
//! so says 0 for every round trip on a fast link. While a segment is
//! timed, echoes are left out, so the estimator takes one exact sample
//! per round trip, the rate RFC 6298's gains are set for; an echo is the
//! sample when nothing can be timed, after a resend, which is when
//! RFC 7323 §4.1 makes it worth having.

use std::time::Duration;

use crate::tcp::rtt::RttEstimator;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// The RTT estimator and the timed segment.
///
/// # Invariants
///
/// - At most one segment is timed: `(the sequence number that acks it,
///   when it was sent)`.
/// - It was sent exactly once: whatever may resend it forgets it first
///   ([`Timing::forget`], [`Timing::forget_from`]).
pub(super) struct Timing {
    rtt: RttEstimator,
    probe: Option<(SeqNumber, Instant)>,
}

impl Timing {
    pub(super) fn new(rtt: RttEstimator) -> Timing {
        Timing { rtt, probe: None }
    }

    /// The current retransmission timeout.
    pub(super) fn rto(&self) -> Duration {
        self.rtt.rto()
    }

    /// The smoothed RTT, once measured.
    pub(super) fn srtt(&self) -> Option<Duration> {
        self.rtt.srtt()
    }

    /// The RTT variation (zero before the first sample).
    pub(super) fn rttvar(&self) -> Duration {
        self.rtt.rttvar()
    }

    /// RFC 6298 §5.5: the retransmission timer expired; back off. Nothing
    /// sent so far may be timed any more.
    pub(super) fn timeout(&mut self) {
        self.rtt.backoff();
        self.probe = None;
    }

    /// Times the segment whose ACK is `end`, sent at `now`, unless one is
    /// already timed.
    pub(super) fn time(&mut self, end: SeqNumber, now: Instant) {
        if self.probe.is_none() {
            self.probe = Some((end, now));
        }
    }

    /// Something below the timed segment's end may be resent: stop timing.
    pub(super) fn forget(&mut self) {
        self.probe = None;
    }

    /// A resend starts at `seq`: stop timing if it covers the timed
    /// segment's end.
    pub(super) fn forget_from(&mut self, seq: SeqNumber) {
        if self.probe.is_some_and(|(end, _)| end > seq) {
            self.probe = None;
        }
    }

    /// An ACK of new data up to `ack` arrived at `now`, with `echoed` the
    /// sample from its timestamp if any. The timed segment gives the
    /// sample if `ack` covers it; while it is not yet covered there is
    /// none; with nothing timed the echo is the sample (see the module
    /// docs). The estimator takes the sample, which is returned for
    /// congestion control.
    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        echoed: Option<Duration>,
    ) -> Option<Duration> {
        let sample = match self.probe {
            Some((end, sent)) if ack >= end => {
                self.probe = None;
                Some(now - sent)
            }
            Some(_) => None,
            None => echoed,
        };
        if let Some(rtt) = sample {
            self.rtt.sample(rtt);
        }
        sample
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: u64) -> Instant {
        Instant::from_millis(t)
    }

    fn timing() -> Timing {
        let d = Duration::from_millis;
        Timing::new(RttEstimator::new(d(1000), d(200), d(60_000)))
    }

    #[test]
    fn timed_segment_gives_one_sample_when_covered() {
        let mut t = timing();
        t.time(SeqNumber(1000), ms(100));
        t.time(SeqNumber(2000), ms(150)); // one at a time
        assert_eq!(t.on_ack(ms(130), SeqNumber(999), None), None);
        let got = t.on_ack(ms(180), SeqNumber(1500), None);
        assert_eq!(got, Some(Duration::from_millis(80)));
        assert_eq!(t.srtt(), Some(Duration::from_millis(80)));
        assert_eq!(t.on_ack(ms(300), SeqNumber(2000), None), None);
    }

    #[test]
    fn karn_resent_segments_are_not_timed() {
        let mut t = timing();
        t.time(SeqNumber(u32::MAX - 10), ms(0));
        // A resend from beyond its end leaves it timed; one below forgets.
        t.forget_from(SeqNumber(u32::MAX - 10));
        t.forget_from(SeqNumber(u32::MAX - 11));
        assert_eq!(t.on_ack(ms(50), SeqNumber(5), None), None);
        t.time(SeqNumber(100), ms(0));
        t.timeout();
        assert_eq!(t.on_ack(ms(50), SeqNumber(100), None), None);
        assert!(t.rto() >= Duration::from_millis(2000), "backed off");
    }

    #[test]
    fn the_timed_segment_wins_over_an_echo_and_echoes_wait_for_it() {
        let mut t = timing();
        let us = |n| Instant::from_micros(n);
        t.time(SeqNumber(100), us(0));
        // An echo (whole milliseconds: 0 here) while the segment is timed
        // is left out; the timed segment's microseconds are the sample.
        let zero = Some(Duration::ZERO);
        assert_eq!(t.on_ack(us(200), SeqNumber(50), zero), None);
        assert_eq!(
            t.on_ack(us(350), SeqNumber(100), zero),
            Some(Duration::from_micros(350))
        );
        assert_eq!(t.srtt(), Some(Duration::from_micros(350)));
        // Nothing timed (say, after a resend): the echo is the sample.
        let echoed = Some(Duration::from_millis(30));
        assert_eq!(t.on_ack(ms(60), SeqNumber(200), echoed), echoed);
    }
}
