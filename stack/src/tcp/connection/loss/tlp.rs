//! RFC 8985 §7 Tail Loss Probe state: whether a probe is owed, which one
//! is outstanding, and the probe timeout (PTO).

use std::time::Duration;

use crate::wire::SeqNumber;

/// RFC 8985 §7.2 leaves timer granularity to the implementation; Linux
/// floors the PTO at 2 jiffies. 10 ms keeps a probe from firing ahead of
/// an ACK merely scheduled late, and is still 20 times below `min_rto`.
const MIN_PTO: Duration = Duration::from_millis(10);

/// RFC 8985 §7.2 WCDelAckT: with one segment in flight its ACK may be
/// delayed by the receiver, so the PTO waits this much longer.
const WORST_CASE_DELAYED_ACK: Duration = Duration::from_millis(200);

/// The tail loss probe.
///
/// # Invariants
///
/// - At most one probe is outstanding (`probe`); none is scheduled while
///   one is (RFC 8985 §7.2).
/// - `sending` is true only while a probe of new data is being built.
#[derive(Debug, Default)]
pub(in crate::tcp::connection) struct Tlp {
    /// The probe timer fired; the next poll sends a probe.
    owed: bool,
    /// The outstanding probe, `[start, end)`.
    probe: Option<(SeqNumber, SeqNumber)>,
    /// A probe of new data is being built: only the peer's window limits.
    sending: bool,
}

/// What an ACK showed about the outstanding probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::tcp::connection) enum ProbeAck {
    /// No probe outstanding, or this ACK says nothing about it.
    Nothing,
    /// The probe was acknowledged or SACKed: its episode is over.
    Delivered,
    /// The probe starting at this sequence number was SACKed above
    /// unacknowledged data, which RFC 8985 §6.2 deems lost.
    HoleBelow(SeqNumber),
}

impl Tlp {
    /// RFC 8985 §7.2 PTO: 2*SRTT (at least [`MIN_PTO`]), plus WCDelAckT
    /// when at most one full segment is in flight.
    pub(in crate::tcp::connection) fn pto(srtt: Duration, flight: usize, mss: usize) -> Duration {
        let mut pto = (srtt * 2).max(MIN_PTO);
        if flight <= mss {
            pto += WORST_CASE_DELAYED_ACK;
        }
        pto
    }

    pub(in crate::tcp::connection) fn outstanding(&self) -> bool {
        self.probe.is_some()
    }

    /// The probe timer fired and a probe is still allowed.
    pub(in crate::tcp::connection) fn owe(&mut self) {
        self.owed = true;
    }

    pub(in crate::tcp::connection) fn take_owed(&mut self) -> bool {
        std::mem::take(&mut self.owed)
    }

    /// No probe owed any more (TIME-WAIT, CLOSED).
    pub(in crate::tcp::connection) fn cancel_owed(&mut self) {
        self.owed = false;
    }

    /// A new episode or an RTO: neither an owed nor an outstanding probe.
    pub(in crate::tcp::connection) fn cancel(&mut self) {
        self.owed = false;
        self.probe = None;
    }

    pub(in crate::tcp::connection) fn sending(&self) -> bool {
        self.sending
    }

    /// Brackets building a probe of new data (RFC 8985 §7.3: only the
    /// peer's window limits it).
    pub(in crate::tcp::connection) fn set_sending(&mut self, sending: bool) {
        self.sending = sending;
    }

    /// The probe `[start, end)` went out.
    pub(in crate::tcp::connection) fn sent(&mut self, start: SeqNumber, end: SeqNumber) {
        self.probe = Some((start, end));
    }

    /// An ACK arrived (SND.UNA already `una`), with the scoreboard's
    /// highest SACKed sequence number. RFC 8985 §7.4: the probe's episode
    /// ends once it is acknowledged. If it was SACKed above unSACKed data
    /// instead, that data was sent at least a PTO (>= SRTT + reo_wnd)
    /// before the probe.
    pub(in crate::tcp::connection) fn on_ack(
        &mut self,
        una: SeqNumber,
        high_sacked: Option<SeqNumber>,
    ) -> ProbeAck {
        let Some((start, end)) = self.probe else {
            return ProbeAck::Nothing;
        };
        if una >= end {
            self.probe = None;
            return ProbeAck::Delivered;
        }
        if !high_sacked.is_some_and(|h| h > start) {
            return ProbeAck::Nothing;
        }
        self.probe = None;
        // SND.UNA is never SACKed: below the probe lies at least one hole.
        if una < start {
            ProbeAck::HoleBelow(start)
        } else {
            ProbeAck::Delivered
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pto_is_two_srtt_floored_plus_delayed_ack_for_one_segment() {
        let ms = Duration::from_millis;
        assert_eq!(Tlp::pto(ms(50), 3000, 1000), ms(100));
        assert_eq!(Tlp::pto(ms(1), 3000, 1000), ms(10));
        assert_eq!(Tlp::pto(ms(50), 1000, 1000), ms(300));
    }

    #[test]
    fn probe_acked_or_sacked() {
        let mut t = Tlp::default();
        assert_eq!(t.on_ack(SeqNumber(0), None), ProbeAck::Nothing);
        t.sent(SeqNumber(4000), SeqNumber(5000));
        assert!(t.outstanding());
        assert_eq!(t.on_ack(SeqNumber(3000), None), ProbeAck::Nothing);
        assert_eq!(
            t.on_ack(SeqNumber(3000), Some(SeqNumber(4000))),
            ProbeAck::Nothing
        );
        assert_eq!(
            t.on_ack(SeqNumber(3000), Some(SeqNumber(5000))),
            ProbeAck::HoleBelow(SeqNumber(4000))
        );
        assert!(!t.outstanding());
        t.sent(SeqNumber(4000), SeqNumber(5000));
        assert_eq!(t.on_ack(SeqNumber(5000), None), ProbeAck::Delivered);
        assert!(!t.outstanding());
    }

    #[test]
    fn cancel_forgets_owed_and_outstanding() {
        let mut t = Tlp::default();
        t.owe();
        t.sent(SeqNumber(1), SeqNumber(2));
        t.cancel_owed();
        assert!(!t.take_owed() && t.outstanding());
        t.owe();
        t.cancel();
        assert!(!t.take_owed() && !t.outstanding());
    }
}
