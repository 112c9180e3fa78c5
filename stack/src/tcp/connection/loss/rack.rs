//! RFC 8985 §6 state: the holes retransmitted in the current SACK recovery
//! episode with their send times, and which of them are deemed lost.
//! Send times are kept for these alone ([`MAX_RXT_RECORDS`]), not for
//! every segment: only what RFC 6675 cannot see is done here.

use std::time::Duration;

use crate::tcp::connection::distance;
use crate::tcp::sack::Scoreboard;
use crate::time::Instant;
use crate::wire::SeqNumber;

/// Bound on retransmissions remembered per recovery episode (16 records,
/// about 0.5 KiB). When full, the oldest is forgotten: its loss, if it is
/// lost, is left to the RTO as before.
pub(crate) const MAX_RXT_RECORDS: usize = 16;

/// RFC 8985 §6.2 reordering window floor (RACK.reo_wnd): a quarter of
/// SRTT, but never under 1 ms, the timestamp clock's tick.
const MIN_REORDER_WINDOW: Duration = Duration::from_millis(1);

/// One hole retransmitted during the current recovery.
#[derive(Debug, Clone, Copy)]
struct RxtRecord {
    start: SeqNumber,
    end: SeqNumber,
    sent_at: Instant,
    /// SND.MAX when it was sent: any SACK above this is data sent after.
    snd_max_at: SeqNumber,
    /// Deemed lost and waiting to be sent again.
    lost: bool,
}

/// What one detection pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::tcp::connection) struct Detection {
    /// Retransmissions newly deemed lost.
    pub(in crate::tcp::connection) newly_lost: u64,
    /// This is the episode's first lost retransmission: cwnd must be
    /// lowered (once per episode) and it goes out at once.
    pub(in crate::tcp::connection) first_loss: bool,
    /// When the earliest overtaken, not yet old enough record is due: the
    /// reorder timer (RFC 8985 §6.2 step 5).
    pub(in crate::tcp::connection) deadline: Option<Instant>,
}

/// Lost-retransmission detection for one recovery episode.
///
/// # Invariants
///
/// - At most [`MAX_RXT_RECORDS`] records, oldest first.
/// - After [`Rack::detect`] no record is delivered (cumulatively ACKed or
///   SACKed): those are dropped.
/// - `lost_now` implies `loss_reduced`: the urgent resend follows the
///   one congestion response of the episode.
pub(in crate::tcp::connection) struct Rack {
    log: Vec<RxtRecord>,
    /// A lost retransmission already lowered cwnd in this episode.
    loss_reduced: bool,
    /// That first lost retransmission is still to be resent, at once.
    lost_now: bool,
}

impl Rack {
    pub(in crate::tcp::connection) fn new() -> Rack {
        Rack {
            log: Vec::with_capacity(MAX_RXT_RECORDS),
            loss_reduced: false,
            lost_now: false,
        }
    }

    /// Forgets the episode's retransmissions (recovery began or ended, or
    /// an RTO took over).
    pub(in crate::tcp::connection) fn reset(&mut self) {
        self.log.clear();
        self.loss_reduced = false;
        self.lost_now = false;
    }

    /// Remembers that `[seq, seq + n)` was retransmitted at `now`, with
    /// SND.MAX at `snd_max`.
    pub(in crate::tcp::connection) fn sent(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        n: usize,
        snd_max: SeqNumber,
    ) {
        if self.log.len() >= MAX_RXT_RECORDS {
            self.log.remove(0);
        }
        self.log.push(RxtRecord {
            start: seq,
            end: seq + n,
            sent_at: now,
            snd_max_at: snd_max,
            lost: false,
        });
    }

    /// RFC 8985 §6.2: a retransmission is lost when a transmission sent
    /// after it has been delivered (SACKed or cumulatively acknowledged)
    /// and at least SRTT + reo_wnd has passed since it was sent.
    pub(in crate::tcp::connection) fn detect(
        &mut self,
        now: Instant,
        una: SeqNumber,
        scoreboard: &Scoreboard,
        srtt: Duration,
    ) -> Detection {
        let wait = srtt + (srtt / 4).max(MIN_REORDER_WINDOW);
        let delivered_high = scoreboard.high_sacked().unwrap_or(una).max(una);
        let delivered =
            |r: &RxtRecord| r.end <= una || scoreboard.is_sacked(r.start.max(una), r.end);
        let mut later_delivered = false;
        let mut deadline: Option<Instant> = None;
        let mut newly_lost = 0u64;
        // Newest first: a record is overtaken by any later one delivered.
        for rec in self.log.iter_mut().rev() {
            if delivered(rec) {
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
        self.log.retain(|r| !delivered(r));
        let first_loss = newly_lost > 0 && !self.loss_reduced;
        if first_loss {
            self.loss_reduced = true;
            self.lost_now = true;
        }
        Detection {
            newly_lost,
            first_loss,
            deadline,
        }
    }

    /// Bytes of retransmissions deemed lost and not yet sent again: RFC
    /// 6675's `pipe` still counts them as in the network.
    pub(in crate::tcp::connection) fn lost_bytes(&self, una: SeqNumber) -> usize {
        self.log
            .iter()
            .filter(|r| r.lost)
            .map(|r| distance(r.start.max(una), r.end))
            .sum()
    }

    /// Some retransmission is deemed lost.
    pub(in crate::tcp::connection) fn has_lost(&self) -> bool {
        self.log.iter().any(|r| r.lost)
    }

    /// The first lost retransmission goes out at once, outside cwnd - pipe.
    pub(in crate::tcp::connection) fn urgent(&self) -> bool {
        self.lost_now
    }

    /// Takes the oldest lost retransmission, `[start, end)`, to be sent
    /// again.
    pub(in crate::tcp::connection) fn take_lost(&mut self) -> Option<(SeqNumber, SeqNumber)> {
        let i = self.log.iter().position(|r| r.lost)?;
        self.lost_now = false;
        let rec = self.log.remove(i);
        Some((rec.start, rec.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::SackBlock;

    fn ms(t: u64) -> Instant {
        Instant::from_millis(t)
    }

    fn sacked(una: u32, max: u32, blocks: &[(u32, u32)]) -> Scoreboard {
        let mut sb = Scoreboard::new(SeqNumber(una));
        let blocks: Vec<SackBlock> = blocks
            .iter()
            .map(|&(l, r)| SackBlock {
                left: SeqNumber(l),
                right: SeqNumber(r),
            })
            .collect();
        sb.update(SeqNumber(una), SeqNumber(max), &blocks);
        sb
    }

    const SRTT: Duration = Duration::from_millis(40);

    #[test]
    fn overtaken_retransmission_is_lost_after_srtt_plus_reo_wnd() {
        let mut r = Rack::new();
        r.sent(ms(0), SeqNumber(1000), 100, SeqNumber(5000));
        // New data above SND.MAX-at-send (5000) was SACKed: overtaken.
        let sb = sacked(1000, 6000, &[(5000, 5100)]);
        let d = r.detect(ms(10), SeqNumber(1000), &sb, SRTT);
        assert_eq!((d.newly_lost, d.first_loss), (0, false));
        assert_eq!(d.deadline, Some(ms(50)), "SRTT + SRTT/4");
        assert!(!r.has_lost());
        let d = r.detect(ms(50), SeqNumber(1000), &sb, SRTT);
        assert_eq!((d.newly_lost, d.first_loss, d.deadline), (1, true, None));
        assert_eq!(r.lost_bytes(SeqNumber(1050)), 50);
        assert!(r.urgent());
        assert_eq!(r.take_lost(), Some((SeqNumber(1000), SeqNumber(1100))));
        assert!(!r.urgent() && !r.has_lost());
    }

    #[test]
    fn one_congestion_response_per_episode() {
        let mut r = Rack::new();
        r.sent(ms(0), SeqNumber(1000), 100, SeqNumber(5000));
        r.sent(ms(0), SeqNumber(2000), 100, SeqNumber(5000));
        let sb = sacked(1000, 6000, &[(5000, 5100)]);
        let d = r.detect(ms(100), SeqNumber(1000), &sb, SRTT);
        assert_eq!((d.newly_lost, d.first_loss), (2, true));
        r.sent(ms(100), SeqNumber(3000), 100, SeqNumber(6000));
        let sb = sacked(1000, 7000, &[(5000, 5100), (6000, 6100)]);
        let d = r.detect(ms(200), SeqNumber(1000), &sb, SRTT);
        assert_eq!((d.newly_lost, d.first_loss), (1, false));
        r.reset();
        assert!(!r.has_lost() && !r.urgent());
    }

    #[test]
    fn not_overtaken_or_delivered_is_not_lost() {
        let mut r = Rack::new();
        r.sent(ms(0), SeqNumber(1000), 100, SeqNumber(5000));
        r.sent(ms(0), SeqNumber(2000), 100, SeqNumber(5000));
        // Nothing above 5000 delivered: nothing overtaken, no timer.
        let sb = sacked(1000, 5000, &[(3000, 3100)]);
        let d = r.detect(ms(1000), SeqNumber(1000), &sb, SRTT);
        assert_eq!((d.newly_lost, d.deadline), (0, None));
        // The later one delivered overtakes the earlier; it is dropped.
        let sb = sacked(1000, 5000, &[(2000, 2100)]);
        let d = r.detect(ms(1000), SeqNumber(1000), &sb, SRTT);
        assert_eq!(d.newly_lost, 1);
        assert_eq!(r.take_lost(), Some((SeqNumber(1000), SeqNumber(1100))));
        assert_eq!(r.take_lost(), None);
    }

    #[test]
    fn log_is_bounded_oldest_forgotten() {
        let mut r = Rack::new();
        for i in 0..(MAX_RXT_RECORDS as u32 + 4) {
            r.sent(ms(0), SeqNumber(1000 + i * 100), 100, SeqNumber(9000));
        }
        assert_eq!(r.log.len(), MAX_RXT_RECORDS);
        assert_eq!(r.log[0].start, SeqNumber(1400));
    }
}
