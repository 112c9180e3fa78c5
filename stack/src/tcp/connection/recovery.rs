//! Loss recovery: when to start it (RFC 5681 §3.2, RFC 6675 §5), what
//! each ACK does during it, and what it sends. With SACK negotiated this is
//! RFC 6675 (scoreboard, `pipe`, NextSeg); without, RFC 6582 NewReno (one
//! hole per partial ACK). Congestion control hears of it once per episode
//! (`on_congestion_event`); during recovery cwnd stays at ssthresh and
//! `on_ack` is not called. The episode's state is `loss::LossRecovery`.

use super::{distance, Connection, Planned};
use crate::tcp::timer::Timer;
use crate::time::Instant;
use crate::wire::tcp::{SackBlock, TcpFlags};
use crate::wire::SeqNumber;

impl Connection {
    /// Feeds one segment's SACK blocks to the scoreboard. `ack` is the
    /// segment's (already validated) SEG.ACK. Returns whether they carried
    /// new information (RFC 6675 §2), which makes the ACK a duplicate.
    pub(super) fn update_scoreboard(&mut self, ack: SeqNumber, blocks: &[SackBlock]) -> bool {
        if !self.opts.sack() {
            return false;
        }
        let una = ack.max(self.snd.una());
        self.loss.scoreboard.update(una, self.snd.max(), blocks)
    }

    /// RFC 5681 §3.2 / RFC 6675 §5: a duplicate ACK. The third (DupThresh)
    /// or, with SACK, IsLost(SND.UNA) starts recovery, unless one is
    /// running or SND.UNA has not passed the last RecoveryPoint (RFC 6582
    /// §3.2 step 2, RFC 6675 §5 "MUST NOT be initiated until...").
    pub(super) fn on_dup_ack(&mut self, now: Instant) {
        self.stats.dup_acks += 1;
        let una = self.snd.una();
        let lost = self.opts.sack() && self.loss.scoreboard.is_lost(una, self.payload_mss(), una);
        if self.loss.dup_ack(una, lost) {
            self.enter_recovery(now);
        }
    }

    /// RFC 6675 §5 step (4) / RFC 6582 §3.2 step 2: RecoveryPoint =
    /// SND.MAX, one congestion event, retransmit SND.UNA's segment at once.
    pub(super) fn enter_recovery(&mut self, now: Instant) {
        self.loss
            .start(self.snd.una(), self.snd.max(), self.opts.sack());
        self.timers.stop(Timer::Reorder);
        // FlightSize (RFC 5681 §3.1, equation 4).
        self.cc.on_congestion_event(now, self.snd.outstanding());
        // Karn's rule (RFC 6298 §3): the timed segment may be resent.
        self.rtt.forget();
        self.stats.fast_retransmits += 1;
        if self.opts.sack() {
            self.stats.sack_recoveries += 1;
        }
    }

    /// RFC 6675 §4 SetPipe during SACK recovery.
    pub(super) fn pipe(&self) -> usize {
        self.loss
            .scoreboard
            .pipe(self.snd.una(), self.snd.max(), self.payload_mss())
    }

    fn sack_recovery(&self) -> bool {
        self.loss.in_recovery() && self.opts.sack()
    }

    /// min(peer window left, congestion window left).
    ///
    /// In SACK recovery (RFC 6675 §5 step (C)) the congestion window left
    /// is cwnd - pipe, and only if at least one SMSS. Otherwise each
    /// duplicate ACK stands for a segment that left the network: in
    /// NewReno recovery this is RFC 6582 §3.2 step 3's inflation, and
    /// before recovery RFC 3042's limited transmit (the first two
    /// duplicates each let one new segment out, so a small window still
    /// produces three duplicates).
    pub(super) fn usable_window(&self) -> usize {
        let by_peer = self.snd.peer_room();
        if self.loss.tlp.sending() {
            // RFC 8985 §7.3: a probe of new data needs only the peer's
            // window.
            return by_peer;
        }
        if self.sack_recovery() {
            let room = self.cc.window().saturating_sub(self.pipe());
            if room < self.payload_mss() {
                return 0;
            }
            return by_peer.min(room);
        }
        let left_network = self.loss.dup_acks() as usize * self.payload_mss();
        let pipe = self.snd.flight().saturating_sub(left_network);
        by_peer.min(self.cc.window().saturating_sub(pipe))
    }

    /// RFC 6675 §4 NextSeg() rules 1 and 3 during SACK recovery, gated by
    /// cwnd - pipe >= SMSS: the first lost hole above HighRxt; or, when no
    /// new data can go (rule 2 fails), the first unSACKed hole above
    /// HighRxt. Rule 4 (rescue retransmission) is not done: a lost tail is
    /// the tail loss probe's (`rack.rs`, RFC 8985 §7), else the RTO's.
    pub(super) fn sack_retransmit(&mut self, buf: &mut [u8]) -> Option<Planned> {
        if !self.sack_recovery() {
            return None;
        }
        let mss = self.payload_mss();
        if self.cc.window().saturating_sub(self.pipe()) < mss {
            return None;
        }
        let una = self.snd.una();
        let hole = match self.loss.scoreboard.next_hole(una, mss, true) {
            Some(hole) => Some(hole),
            None => {
                let new_data_can_go = self.snd.unsent() > 0 && self.snd.peer_room() > 0;
                if new_data_can_go {
                    return None;
                }
                self.loss.scoreboard.next_hole(una, mss, false)
            }
        };
        let (start, end) = hole?;
        let offset = distance(una, start);
        let avail = self.snd.buf().len().saturating_sub(offset);
        let len = distance(start, end).min(mss).min(avail).min(buf.len());
        let n = self.snd.buf().read_at(offset, buf.get_mut(..len)?);
        if n == 0 {
            return None;
        }
        self.loss.scoreboard.mark_retransmitted(start + n);
        self.stats.segs_retransmitted += 1;
        self.stats.bytes_retransmitted += n as u64;
        Some((start, TcpFlags::ACK, n))
    }
}
