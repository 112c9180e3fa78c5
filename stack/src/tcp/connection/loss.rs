//! Loss recovery state: the SACK scoreboard (RFC 6675), the fast-recovery
//! episode (RFC 5681 §3.2, RFC 6582, RFC 6675 §5), and RACK-TLP's state
//! (RFC 8985: [`Rack`] for lost retransmissions, [`Tlp`] for the tail loss
//! probe). The decisions that also need the send space, congestion
//! control, the RTT and the timers live in `Connection`'s `recovery.rs`
//! and `rack.rs`, which call these methods.

use crate::tcp::sack::{Scoreboard, DUP_THRESH};
use crate::wire::SeqNumber;

mod rack;
mod tlp;

pub(super) use rack::Rack;
pub(super) use tlp::{ProbeAck, Tlp};

/// Loss detection and recovery.
///
/// # Invariants
///
/// - A recovery episode starts only when none is running and SND.UNA has
///   passed the last RecoveryPoint (RFC 6582 §3.2 step 2, RFC 6675 §5);
///   it sets `recover` to SND.MAX, owes one retransmission at SND.UNA and
///   forgets any RACK records and tail loss probe of the last episode.
/// - Outside recovery RACK holds no records (`Rack::reset` on every
///   boundary) and `recover` only moves forward with SND.MAX.
pub(super) struct LossRecovery {
    /// What the peer SACKed above SND.UNA (RFC 6675), bounded by
    /// `sack::MAX_RANGES`; empty unless SACK was negotiated.
    pub(super) scoreboard: Scoreboard,
    pub(super) rack: Rack,
    pub(super) tlp: Tlp,
    dup_acks: u32,
    /// In fast recovery: RFC 6675 SACK-based if SACK was negotiated,
    /// RFC 6582 NewReno otherwise.
    in_recovery: bool,
    /// RFC 6582 "recover" / RFC 6675 RecoveryPoint: SND.MAX when loss
    /// recovery (or the last RTO) began.
    recover: SeqNumber,
    /// Retransmit the segment at SND.UNA on the next poll (fast retransmit
    /// or a partial ACK).
    rtx_owed: bool,
}

impl LossRecovery {
    pub(super) fn new(iss: SeqNumber) -> LossRecovery {
        LossRecovery {
            scoreboard: Scoreboard::new(iss),
            rack: Rack::new(),
            tlp: Tlp::default(),
            dup_acks: 0,
            in_recovery: false,
            recover: iss,
            rtx_owed: false,
        }
    }

    pub(super) fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    pub(super) fn dup_acks(&self) -> u32 {
        self.dup_acks
    }

    /// RFC 5681 §3.2 / RFC 6675 §5: counts a duplicate ACK. Returns whether
    /// it may start recovery: DupThresh reached or `lost` (IsLost(SND.UNA)
    /// with SACK), no episode running, and SND.UNA at or past the last
    /// RecoveryPoint.
    pub(super) fn dup_ack(&mut self, una: SeqNumber, lost: bool) -> bool {
        self.dup_acks = self.dup_acks.saturating_add(1);
        self.may_start(una) && (self.dup_acks as usize >= DUP_THRESH || lost)
    }

    /// No episode running and SND.UNA past the last RecoveryPoint.
    pub(super) fn may_start(&self, una: SeqNumber) -> bool {
        !self.in_recovery && una >= self.recover
    }

    /// RFC 6675 §5 step (4) / RFC 6582 §3.2 step 2: a new episode up to
    /// RecoveryPoint = `snd_max`, owing a retransmission of SND.UNA.
    pub(super) fn start(&mut self, una: SeqNumber, snd_max: SeqNumber, sack: bool) {
        self.in_recovery = true;
        // RFC 8985 §7.4: no probe outstanding across a new episode.
        self.rack.reset();
        self.tlp.cancel();
        self.recover = snd_max;
        self.rtx_owed = true;
        if sack {
            self.scoreboard.clear_retransmitted(una);
        }
    }

    /// New data acknowledged up to `ack` (already SND.UNA). During
    /// recovery, a full ACK ends the episode (RFC 6675 §5 / RFC 6582 §3.2
    /// step 3); a partial one without SACK owes the next hole at once and
    /// counts as one segment that left the network. Returns whether this
    /// was a partial ACK that owes a retransmission.
    pub(super) fn new_ack(&mut self, ack: SeqNumber, sack: bool) -> bool {
        if !self.in_recovery {
            self.dup_acks = 0;
            return false;
        }
        if ack >= self.recover {
            self.in_recovery = false;
            self.dup_acks = 0;
            self.rack.reset();
            false
        } else if !sack {
            self.rtx_owed = true;
            self.dup_acks = 1;
            true
        } else {
            // With SACK a partial ACK needs nothing here: `pipe` and
            // NextSeg (RFC 6675 §5 step (C)) decide what goes next.
            false
        }
    }

    /// RFC 6298 §5.4-5.6 / RFC 6675 §5.1: the retransmission timer
    /// expired. Recovery ends with RecoveryPoint = `snd_max`, nothing
    /// counts as retransmitted any more; `forget_sacks` (a second timeout
    /// in a row) drops the SACKed ranges too, in case the peer reneged.
    pub(super) fn timeout(&mut self, una: SeqNumber, snd_max: SeqNumber, forget_sacks: bool) {
        if forget_sacks {
            self.scoreboard.clear(una);
        } else {
            self.scoreboard.clear_retransmitted(una);
        }
        self.in_recovery = false;
        self.dup_acks = 0;
        self.recover = snd_max;
        self.rtx_owed = false;
        self.rack.reset();
        self.tlp.cancel();
    }

    /// Takes the retransmission owed at SND.UNA, if any.
    pub(super) fn take_rtx(&mut self) -> bool {
        std::mem::take(&mut self.rtx_owed)
    }

    /// The peer's window closed: what was sent waits for the persist
    /// timer, not a retransmission.
    pub(super) fn cancel_rtx(&mut self) {
        self.rtx_owed = false;
    }

    /// TIME-WAIT or CLOSED: nothing is retransmitted or probed any more.
    pub(super) fn stop(&mut self) {
        self.rtx_owed = false;
        self.tlp.cancel_owed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn third_duplicate_starts_recovery_once_per_recovery_point() {
        let mut l = LossRecovery::new(SeqNumber(1000));
        let una = SeqNumber(1000);
        assert!(!l.dup_ack(una, false));
        assert!(!l.dup_ack(una, false));
        assert!(l.dup_ack(una, false));
        l.start(una, SeqNumber(5000), false);
        assert!(l.in_recovery() && l.take_rtx() && !l.take_rtx());
        // More duplicates during recovery start nothing.
        assert!(!l.dup_ack(una, true));
        // A partial ACK without SACK owes the next hole.
        assert!(l.new_ack(SeqNumber(2000), false));
        assert!(l.take_rtx());
        assert_eq!(l.dup_acks(), 1);
        // The full ACK ends it.
        assert!(!l.new_ack(SeqNumber(5000), false));
        assert!(!l.in_recovery());
        assert_eq!(l.dup_acks(), 0);
    }

    #[test]
    fn no_new_episode_below_the_last_recovery_point() {
        let mut l = LossRecovery::new(SeqNumber(u32::MAX - 100)); // wraps
        l.timeout(SeqNumber(u32::MAX - 100), SeqNumber(400), false);
        assert!(!l.in_recovery());
        for _ in 0..5 {
            assert!(!l.dup_ack(SeqNumber(300), true));
        }
        assert!(l.dup_ack(SeqNumber(400), true));
    }

    #[test]
    fn sack_loss_starts_recovery_before_three_duplicates() {
        let mut l = LossRecovery::new(SeqNumber(0));
        assert!(l.dup_ack(SeqNumber(0), true));
        l.start(SeqNumber(0), SeqNumber(100), true);
        // A partial ACK with SACK owes nothing by itself.
        assert!(!l.new_ack(SeqNumber(50), true));
        assert!(l.take_rtx(), "only the retransmission that started it");
        assert!(!l.take_rtx());
        l.timeout(SeqNumber(50), SeqNumber(100), true);
        assert!(!l.in_recovery() && !l.take_rtx());
    }
}
