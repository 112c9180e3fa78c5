//! Time-based loss detection from RFC 8985 (RACK-TLP), on top of RFC
//! 6675 SACK recovery: lost retransmissions found by the "a later
//! transmission was delivered and enough time has passed" rule (§6.2),
//! and the Tail Loss Probe (§7) that draws an ACK when a flight's tail
//! was lost and nothing else would.
//!
//! Only what RFC 6675 cannot see is done here. Send times are kept for
//! the holes retransmitted in the current recovery episode alone
//! ([`MAX_RXT_RECORDS`] of them), not for every segment.

use std::time::Duration;

use super::{distance, Connection, Planned};
use crate::tcp::state::State;
use crate::tcp::timer::Timer;
use crate::time::Instant;
use crate::wire::tcp::TcpFlags;
use crate::wire::SeqNumber;

/// Bound on retransmissions remembered per recovery episode (16 records,
/// about 0.5 KiB). When full, the oldest is forgotten: its loss, if it is
/// lost, is left to the RTO as before.
pub(super) const MAX_RXT_RECORDS: usize = 16;

/// RFC 8985 §7.2 leaves timer granularity to the implementation; Linux
/// floors the PTO at 2 jiffies. 10 ms keeps a probe from firing ahead of
/// an ACK merely scheduled late, and is still 20 times below `min_rto`.
const MIN_PTO: Duration = Duration::from_millis(10);

/// RFC 8985 §7.2 WCDelAckT: with one segment in flight its ACK may be
/// delayed by the receiver, so the PTO waits this much longer.
const WORST_CASE_DELAYED_ACK: Duration = Duration::from_millis(200);

/// RFC 8985 §6.2 reordering window floor (RACK.reo_wnd): a quarter of
/// SRTT, but never under 1 ms, the timestamp clock's tick.
const MIN_REORDER_WINDOW: Duration = Duration::from_millis(1);

/// One hole retransmitted during the current recovery.
#[derive(Debug, Clone, Copy)]
pub(super) struct RxtRecord {
    start: SeqNumber,
    end: SeqNumber,
    sent_at: Instant,
    /// SND.MAX when it was sent: any SACK above this is data sent after.
    snd_max_at: SeqNumber,
    /// Deemed lost and waiting to be sent again.
    lost: bool,
}

impl Connection {
    // ---- Lost retransmissions (RFC 8985 §6) -------------------------------

    /// Remembers that `[seq, seq + n)` was retransmitted at `now` in SACK
    /// recovery.
    pub(super) fn rack_sent(&mut self, now: Instant, seq: SeqNumber, n: usize) {
        if !self.config.rack || !self.in_recovery || !self.opts.sack() || n == 0 {
            return;
        }
        if self.rxt_log.len() >= MAX_RXT_RECORDS {
            self.rxt_log.remove(0);
        }
        self.rxt_log.push(RxtRecord {
            start: seq,
            end: seq + n,
            sent_at: now,
            snd_max_at: self.snd.max(),
            lost: false,
        });
    }

    /// Forgets the episode's retransmissions (recovery began or ended, or
    /// an RTO took over).
    pub(super) fn rack_reset(&mut self) {
        self.rxt_log.clear();
        self.rxt_loss_reduced = false;
        self.rxt_lost_now = false;
        self.timers.stop(Timer::Reorder);
    }

    /// RFC 8985 §6.2: a retransmission is lost when a transmission sent
    /// after it has been delivered (SACKed or cumulatively acknowledged)
    /// and at least SRTT + reo_wnd has passed since it was sent. Those
    /// overtaken but not yet old enough arm the reorder timer (§6.2 step
    /// 5).
    pub(super) fn rack_detect(&mut self, now: Instant) {
        if !self.config.rack || !self.in_recovery || !self.opts.sack() {
            self.rack_reset();
            return;
        }
        let Some(srtt) = self.rtt.srtt() else {
            return;
        };
        let wait = srtt + (srtt / 4).max(MIN_REORDER_WINDOW);
        let una = self.snd.una();
        let delivered_high = self.scoreboard.high_sacked().unwrap_or(una).max(una);
        let mut later_delivered = false;
        let mut deadline: Option<Instant> = None;
        let mut newly_lost = 0u64;
        // Newest first: a record is overtaken by any later one delivered.
        for rec in self.rxt_log.iter_mut().rev() {
            let delivered =
                rec.end <= una || self.scoreboard.is_sacked(rec.start.max(una), rec.end);
            if delivered {
                later_delivered = true;
                continue;
            }
            if rec.lost {
                continue;
            }
            // Data first sent after this retransmission lies at or above
            // the SND.MAX it was sent at.
            let overtaken = later_delivered || delivered_high > rec.snd_max_at;
            if !overtaken {
                continue;
            }
            let at = rec.sent_at + wait;
            if now >= at {
                rec.lost = true;
                newly_lost += 1;
            } else {
                deadline = Some(deadline.map_or(at, |d| d.min(at)));
            }
        }
        self.rxt_log
            .retain(|r| !(r.end <= una || self.scoreboard.is_sacked(r.start.max(una), r.end)));
        if newly_lost > 0 {
            self.stats.lost_retransmits_detected += newly_lost;
            if !self.rxt_loss_reduced {
                // RFC 8985 §3.4: a lost retransmission is a congestion
                // signal the congestion control must answer, and RFC 5681
                // §4.3 says such a loss lowers cwnd and ssthresh twice: a
                // second reduction, once per recovery episode.
                // Like the fast retransmit that starts an episode (RFC
                // 6675 §5 step (4.3)), the first lost retransmission found
                // goes out at once, outside cwnd - pipe.
                self.rxt_loss_reduced = true;
                self.rxt_lost_now = true;
                self.cc.on_congestion_event(now, self.cc.window());
            }
        }
        match deadline {
            Some(at) => self.timers.set(Timer::Reorder, at),
            None => self.timers.stop(Timer::Reorder),
        }
    }

    /// Bytes of retransmissions deemed lost and not yet sent again: RFC
    /// 6675's `pipe` still counts them as in the network.
    fn rack_lost_bytes(&self) -> usize {
        self.rxt_log
            .iter()
            .filter(|r| r.lost)
            .map(|r| distance(r.start.max(self.snd.una()), r.end))
            .sum()
    }

    /// Sends the oldest retransmission deemed lost again, before any new
    /// hole (RFC 8985 §6.3: lost segments are retransmitted by the usual
    /// recovery, here in place of NextSeg, within cwnd - pipe).
    pub(super) fn rack_retransmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Planned> {
        if !self.in_recovery || !self.opts.sack() {
            return None;
        }
        let i = self.rxt_log.iter().position(|r| r.lost)?;
        let mss = self.payload_mss();
        let pipe = self.pipe().saturating_sub(self.rack_lost_bytes());
        if !self.rxt_lost_now && self.cc.window().saturating_sub(pipe) < mss {
            return None;
        }
        self.rxt_lost_now = false;
        let rec = *self.rxt_log.get(i)?;
        self.rxt_log.remove(i);
        let start = rec.start.max(self.snd.una());
        let mut end = rec.end;
        if let Some(sacked) = self.scoreboard.next_sacked(start) {
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
            && !self.in_recovery
            && self.retransmits == 0
            && self.tlp_probe.is_none()
            && self.snd.nxt() == self.snd.max()
            && self.snd.una() < self.snd.max()
            && self.snd.wnd() > 0
            && self.rtt.srtt().is_some()
    }

    /// RFC 8985 §7.2 PTO: 2*SRTT (at least [`MIN_PTO`]), plus WCDelAckT
    /// when a single segment is in flight.
    fn pto(&self) -> Option<Duration> {
        let srtt = self.rtt.srtt()?;
        let mut pto = (srtt * 2).max(MIN_PTO);
        if self.snd.flight() <= self.payload_mss() {
            pto += WORST_CASE_DELAYED_ACK;
        }
        Some(pto)
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
        let Some(pto) = self.pto() else {
            return;
        };
        let at = now + pto;
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
            self.tlp_owed = true;
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
            self.tlp_sending = true;
            planned = self.new_data(now, buf);
            self.tlp_sending = false;
        }
        if planned.is_none() {
            planned = self.retransmit_last(buf);
        }
        let (seq, _, n) = planned?;
        self.tlp_probe = Some((seq, seq + n));
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
        if self.rtt_probe.is_some_and(|(end, _)| end > seq) {
            self.rtt_probe = None;
        }
        self.stats.segs_retransmitted += 1;
        self.stats.bytes_retransmitted += n as u64;
        Some((seq, TcpFlags::ACK, n))
    }

    /// An ACK arrived (`ack` already applied) while a probe is out. RFC
    /// 8985 §7.4: the probe's episode ends once it is acknowledged. If it
    /// was SACKed above unSACKed data instead, that data was sent at
    /// least a PTO (>= SRTT + reo_wnd) before the probe, so §6.2 deems it
    /// lost: fast recovery starts at once.
    pub(super) fn tlp_on_ack(&mut self, now: Instant) {
        let Some((start, end)) = self.tlp_probe else {
            return;
        };
        if self.snd.una() >= end {
            self.tlp_probe = None;
            return;
        }
        let probe_delivered = self.scoreboard.high_sacked().is_some_and(|h| h > start);
        if !probe_delivered {
            return;
        }
        self.tlp_probe = None;
        // SND.UNA is never SACKed: below the probe lies at least one hole.
        let hole_below = self.snd.una() < start;
        if hole_below && !self.in_recovery && self.snd.una() >= self.recover {
            self.scoreboard.mark_lost_below(start);
            self.enter_recovery(now);
        }
    }
}
