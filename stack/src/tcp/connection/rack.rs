//! Time-based loss detection from RFC 8985 (RACK-TLP), on top of RFC
//! 6675 SACK recovery: lost retransmissions found by the "a later
//! transmission was delivered and enough time has passed" rule (§6.2),
//! and the Tail Loss Probe (§7) that draws an ACK when a flight's tail
//! was lost and nothing else would.
//!
//! The state is `loss::Rack` and `loss::Tlp`; this file connects them to
//! the send space, congestion control, the RTT and the timers.

use super::loss::{ProbeAck, Tlp};
use super::{distance, Connection, Planned};
use crate::tcp::state::State;
use crate::tcp::timer::Timer;
use crate::time::Instant;
use crate::wire::tcp::TcpFlags;
use crate::wire::SeqNumber;

impl Connection {
    // ---- Lost retransmissions (RFC 8985 §6) -------------------------------

    /// Remembers that `[seq, seq + n)` was retransmitted at `now` in SACK
    /// recovery.
    pub(super) fn rack_sent(&mut self, now: Instant, seq: SeqNumber, n: usize) {
        if !self.config.rack || !self.loss.in_recovery() || !self.opts.sack() || n == 0 {
            return;
        }
        self.loss.rack.sent(now, seq, n, self.snd.max());
    }

    /// Forgets the episode's retransmissions (recovery began or ended, or
    /// an RTO took over).
    pub(super) fn rack_reset(&mut self) {
        self.loss.rack.reset();
        self.timers.stop(Timer::Reorder);
    }

    /// RFC 8985 §6.2 (see `Rack::detect`); those overtaken but not yet old
    /// enough arm the reorder timer (§6.2 step 5).
    pub(super) fn rack_detect(&mut self, now: Instant) {
        if !self.config.rack || !self.loss.in_recovery() || !self.opts.sack() {
            self.rack_reset();
            return;
        }
        let Some(srtt) = self.rtt.srtt() else {
            return;
        };
        let una = self.snd.una();
        let found = self.loss.rack.detect(now, una, &self.loss.scoreboard, srtt);
        if found.newly_lost > 0 {
            self.stats.lost_retransmits_detected += found.newly_lost;
        }
        if found.first_loss {
            // RFC 8985 §3.4: a lost retransmission is a congestion signal
            // the congestion control must answer, and RFC 5681 §4.3 says
            // such a loss lowers cwnd and ssthresh twice: a second
            // reduction, once per recovery episode. Like the fast
            // retransmit that starts an episode (RFC 6675 §5 step (4.3)),
            // the first lost retransmission found goes out at once,
            // outside cwnd - pipe.
            self.cc.on_congestion_event(now, self.cc.window());
        }
        match found.deadline {
            Some(at) => self.timers.set(Timer::Reorder, at),
            None => self.timers.stop(Timer::Reorder),
        }
    }

    /// Sends the oldest retransmission deemed lost again, before any new
    /// hole (RFC 8985 §6.3: lost segments are retransmitted by the usual
    /// recovery, here in place of NextSeg, within cwnd - pipe).
    pub(super) fn rack_retransmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Planned> {
        if !self.loss.in_recovery() || !self.opts.sack() || !self.loss.rack.has_lost() {
            return None;
        }
        let mss = self.payload_mss();
        let pipe = self
            .pipe()
            .saturating_sub(self.loss.rack.lost_bytes(self.snd.una()));
        if !self.loss.rack.urgent() && self.cc.window().saturating_sub(pipe) < mss {
            return None;
        }
        let (start, mut end) = self.loss.rack.take_lost()?;
        let start = start.max(self.snd.una());
        if let Some(sacked) = self.loss.scoreboard.next_sacked(start) {
            end = end.min(sacked);
        }
        let offset = distance(self.snd.una(), start);
        let avail = self.snd.buf().len().saturating_sub(offset);
        let len = distance(start, end).min(mss).min(avail).min(buf.len());
        let n = self.snd.buf().read_at(offset, buf.get_mut(..len)?);
        if n == 0 {
            return None;
        }
        self.stats.segs_retransmitted += 1;
        self.stats.bytes_retransmitted += n as u64;
        self.rack_sent(now, start, n);
        Some((start, TcpFlags::ACK, n))
    }

    // ---- Tail Loss Probe (RFC 8985 §7) ------------------------------------

    /// RFC 8985 §7.2: a probe may be scheduled with SACK on, data
    /// outstanding, no recovery (fast or RTO) running and no probe
    /// outstanding; and only in states that send data without a FIN.
    fn tlp_eligible(&self) -> bool {
        self.config.tail_loss_probe
            && self.opts.sack()
            && self.snd.syn_acked()
            && matches!(self.state, State::Established | State::CloseWait)
            && !self.loss.in_recovery()
            && self.backoff.retransmits() == 0
            && !self.loss.tlp.outstanding()
            && self.snd.nxt() == self.snd.max()
            && self.snd.una() < self.snd.max()
            && self.snd.wnd() > 0
            && self.rtt.srtt().is_some()
    }

    /// Arms or stops the probe timer (from `update_timers`). RFC 8985
    /// §7.2: the PTO runs only if it would fire before the RTO.
    pub(super) fn tlp_update_timer(&mut self, now: Instant) {
        if !self.tlp_eligible() {
            self.timers.stop(Timer::LossProbe);
            return;
        }
        if self.timers.is_armed(Timer::LossProbe) {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else {
            return;
        };
        let at = now + Tlp::pto(srtt, self.snd.flight(), self.payload_mss());
        if self
            .timers
            .deadline(Timer::Retransmit)
            .is_some_and(|rto| rto <= at)
        {
            return;
        }
        self.timers.set(Timer::LossProbe, at);
    }

    /// The probe timer fired: owe a probe if one is still allowed.
    pub(super) fn on_loss_probe_timeout(&mut self) {
        if self.tlp_eligible() {
            self.loss.tlp.owe();
        }
    }

    /// RFC 8985 §7.3: the probe is a new segment if one is queued and the
    /// peer's window takes it (the congestion window does not apply),
    /// else the last segment sent. Afterwards the RTO is armed afresh.
    pub(super) fn loss_probe(&mut self, now: Instant, buf: &mut [u8]) -> Option<Planned> {
        if !self.tlp_eligible() {
            return None;
        }
        let mut planned = None;
        if self.snd.unsent() > 0 {
            self.loss.tlp.set_sending(true);
            planned = self.new_data(now, buf);
            self.loss.tlp.set_sending(false);
        }
        if planned.is_none() {
            planned = self.retransmit_last(buf);
        }
        let (seq, _, n) = planned?;
        self.loss.tlp.sent(seq, seq + n);
        self.stats.tlp_probes += 1;
        self.timers.stop(Timer::LossProbe);
        self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        planned
    }

    /// The last full (or shorter) segment below SND.MAX, sent again.
    fn retransmit_last(&mut self, buf: &mut [u8]) -> Option<Planned> {
        let data = self.snd.outstanding().min(self.snd.buf().len());
        let len = data.min(self.payload_mss()).min(buf.len());
        if len == 0 {
            return None;
        }
        let offset = data - len;
        let n = self.snd.buf().read_at(offset, buf.get_mut(..len)?);
        if n == 0 {
            return None;
        }
        let seq = self.snd.una() + offset;
        // Karn's rule (RFC 6298 §3): the timed segment may be this one.
        self.rtt.forget_from(seq);
        self.stats.segs_retransmitted += 1;
        self.stats.bytes_retransmitted += n as u64;
        Some((seq, TcpFlags::ACK, n))
    }

    /// An ACK arrived (`ack` already applied) while a probe is out. RFC
    /// 8985 §7.4: if the probe was SACKed above unSACKed data, that data
    /// is deemed lost (§6.2): fast recovery starts at once.
    pub(super) fn tlp_on_ack(&mut self, now: Instant) {
        let una = self.snd.una();
        let high_sacked = self.loss.scoreboard.high_sacked();
        if let ProbeAck::HoleBelow(start) = self.loss.tlp.on_ack(una, high_sacked) {
            if self.loss.may_start(una) {
                self.loss.scoreboard.mark_lost_below(start);
                self.enter_recovery(now);
            }
        }
    }
}
