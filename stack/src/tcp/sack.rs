//! The sender's SACK scoreboard (RFC 2018, RFC 6675 §2-§4): which sequence
//! space above SND.UNA the peer reported holding, what is deemed lost, how
//! much is still in the network (`pipe`), and which hole to resend next.
//!
//! Sequence space is kept as sorted, disjoint, non-adjacent half-open ranges
//! `[left, right)`, at most [`MAX_RANGES`] of them. Every query walks that
//! short list, so the cost per ACK is O(MAX_RANGES) whatever the window.
//!
//! Instead of a "retransmitted" bit per segment we keep RFC 6675's HighRxt:
//! everything unSACKed below it has been retransmitted in this recovery.
//! Clearing the marks after an RTO (RFC 6675 §5.1) is resetting HighRxt to
//! SND.UNA.

use crate::wire::tcp::SackBlock;
use crate::wire::SeqNumber;

/// Bound on SACKed ranges remembered (32 ranges, 256 bytes). A peer can
/// report any number of separate islands over time; when a new one would
/// exceed the bound, the range farthest from SND.UNA is forgotten. That is
/// safe: SACK is advisory (RFC 2018 §8), forgotten data is at worst sent
/// again, and the ranges nearest SND.UNA are the ones loss detection needs.
pub const MAX_RANGES: usize = 32;

/// RFC 6675 §2 DupThresh.
pub const DUP_THRESH: usize = 3;

/// The scoreboard. All positions are absolute sequence numbers; callers
/// pass SND.UNA and SND.MAX so the board never holds anything outside them.
#[derive(Debug, Clone)]
pub struct Scoreboard {
    /// Sorted, disjoint, non-adjacent; every range lies in (SND.UNA,
    /// SND.MAX].
    ranges: Vec<(SeqNumber, SeqNumber)>,
    /// RFC 6675 HighRxt: the end of the highest retransmission in this
    /// recovery (or after the last RTO).
    high_rxt: SeqNumber,
    /// Everything unSACKed below this is lost whatever the counts say:
    /// RFC 8985 §6's time-based verdict (set when a tail loss probe is
    /// SACKed above holes sent long enough before it).
    lost_below: SeqNumber,
}

impl Scoreboard {
    pub fn new(start: SeqNumber) -> Scoreboard {
        Scoreboard {
            ranges: Vec::with_capacity(MAX_RANGES),
            high_rxt: start,
            lost_below: start,
        }
    }

    /// The SACKed ranges, lowest first.
    pub fn ranges(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Forgets everything (RFC 2018 §8: the receiver may have reneged).
    pub fn clear(&mut self, snd_una: SeqNumber) {
        self.ranges.clear();
        self.high_rxt = snd_una;
        self.lost_below = snd_una;
    }

    /// RFC 6675 §5.1: after an RTO nothing counts as retransmitted any more.
    pub fn clear_retransmitted(&mut self, snd_una: SeqNumber) {
        self.high_rxt = snd_una;
    }

    pub fn high_rxt(&self) -> SeqNumber {
        self.high_rxt
    }

    /// Deems every unSACKed sequence number below `seq` lost (RFC 8985
    /// §6.2), on top of RFC 6675's count-based IsLost.
    pub fn mark_lost_below(&mut self, seq: SeqNumber) {
        self.lost_below = self.lost_below.max(seq);
    }

    /// Whether all of `[start, end)` has been SACKed.
    pub fn is_sacked(&self, start: SeqNumber, end: SeqNumber) -> bool {
        start >= end || self.sacked_end(start).is_some_and(|r| r >= end)
    }

    /// Records that `[seq, end)` was retransmitted.
    pub fn mark_retransmitted(&mut self, end: SeqNumber) {
        self.high_rxt = self.high_rxt.max(end);
    }

    /// The highest SACKed sequence number (end of the top range), RFC 6675
    /// HighSACK (plus one).
    pub fn high_sacked(&self) -> Option<SeqNumber> {
        self.ranges.last().map(|&(_, r)| r)
    }

    /// Takes the cumulative ACK and the blocks of one segment. Blocks are
    /// used only if they lie in [SND.UNA, SND.MAX] and are not empty: a
    /// D-SACK block (RFC 2883) below SND.UNA, or anything the peer cannot
    /// have received, is ignored. Returns whether any sequence number was
    /// newly SACKed (RFC 6675 §2 "new SACK information").
    pub fn update(&mut self, snd_una: SeqNumber, snd_max: SeqNumber, blocks: &[SackBlock]) -> bool {
        self.advance(snd_una);
        let mut news = false;
        for b in blocks {
            if b.left >= snd_una && b.left < b.right && b.right <= snd_max {
                news |= self.insert(b.left, b.right);
            }
        }
        news
    }

    /// Drops what SND.UNA passed. Returns true if SND.UNA now lies inside a
    /// range, i.e. the peer acknowledged cumulatively up into data it had
    /// SACKed without covering it: its earlier reports cannot be trusted
    /// (reneging, RFC 2018 §8; Linux's `tcp_check_sack_reneging`) and the
    /// caller should clear the board.
    pub fn advance(&mut self, snd_una: SeqNumber) -> bool {
        let gone = self
            .ranges
            .iter()
            .take_while(|&&(_, r)| r <= snd_una)
            .count();
        self.ranges.drain(..gone);
        self.high_rxt = self.high_rxt.max(snd_una);
        self.ranges.first().is_some_and(|&(l, _)| l < snd_una)
    }

    /// Adds `[left, right)`, merging with overlapping or adjacent ranges.
    /// Returns whether anything was new.
    fn insert(&mut self, left: SeqNumber, right: SeqNumber) -> bool {
        // First range whose end reaches `left` (could merge or lie above).
        let i = self.ranges.iter().take_while(|&&(_, r)| r < left).count();
        // Ranges [i, j) touch [left, right).
        let j = i + self.ranges[i..]
            .iter()
            .take_while(|&&(l, _)| l <= right)
            .count();
        if j > i {
            let (l0, _) = self.ranges[i];
            let (_, r1) = self.ranges[j - 1];
            if j == i + 1 && l0 <= left && right <= r1 {
                return false; // already known
            }
            let merged = (l0.min(left), r1.max(right));
            self.ranges.drain(i + 1..j);
            self.ranges[i] = merged;
            return true;
        }
        if self.ranges.len() >= MAX_RANGES {
            if i == self.ranges.len() {
                return false; // the new range would be the one forgotten
            }
            self.ranges.pop();
        }
        self.ranges.insert(i, (left, right));
        true
    }

    /// SACKed bytes in total.
    pub fn sacked_bytes(&self) -> usize {
        self.ranges.iter().map(|&(l, r)| span(l, r)).sum()
    }

    /// Whether `seq` has been SACKed; if so, the end of its range.
    pub fn sacked_end(&self, seq: SeqNumber) -> Option<SeqNumber> {
        self.ranges
            .iter()
            .find(|&&(l, r)| l <= seq && seq < r)
            .map(|&(_, r)| r)
    }

    /// The start of the first SACKed range above `seq`, if any.
    pub fn next_sacked(&self, seq: SeqNumber) -> Option<SeqNumber> {
        self.ranges.iter().map(|&(l, _)| l).find(|&l| l > seq)
    }

    /// RFC 6675 §4 IsLost, as an edge: every unSACKed sequence number below
    /// the returned one is lost, none at or above it is. A hole is lost once
    /// DupThresh discontiguous SACKed ranges lie above it, or more than
    /// (DupThresh - 1) * SMSS SACKed bytes do. Both counts only grow as the
    /// sequence number falls, so the lost region is a prefix.
    /// `mark_lost_below` moves the edge up further (RFC 8985).
    pub fn lost_edge(&self, snd_una: SeqNumber, mss: usize) -> SeqNumber {
        let byte_thresh = (DUP_THRESH - 1) * mss;
        let mut bytes = 0usize;
        let mut edge = snd_una;
        for (n, &(l, r)) in self.ranges.iter().rev().enumerate() {
            bytes += span(l, r);
            if n + 1 >= DUP_THRESH || bytes > byte_thresh {
                edge = l;
                break;
            }
        }
        edge.max(self.lost_below)
    }

    /// RFC 6675 §4 IsLost(seq) for an unSACKed `seq`.
    pub fn is_lost(&self, snd_una: SeqNumber, mss: usize, seq: SeqNumber) -> bool {
        seq < self.lost_edge(snd_una, mss)
    }

    /// RFC 6675 §4 SetPipe: octets in [SND.UNA, SND.MAX) that are neither
    /// SACKed nor lost, plus the unSACKed octets retransmitted (below
    /// HighRxt), which may count twice as the RFC says.
    pub fn pipe(&self, snd_una: SeqNumber, snd_max: SeqNumber, mss: usize) -> usize {
        let lost = self.lost_edge(snd_una, mss).max(snd_una).min(snd_max);
        let rxt = self.high_rxt.max(snd_una).min(snd_max);
        let unsacked = |to: SeqNumber| span(snd_una, to) - self.sacked_below(to);
        let in_network = unsacked(snd_max) - unsacked(lost);
        in_network + unsacked(rxt)
    }

    /// SACKed bytes below `seq`.
    fn sacked_below(&self, seq: SeqNumber) -> usize {
        self.ranges
            .iter()
            .take_while(|&&(l, _)| l < seq)
            .map(|&(l, r)| span(l, r.min(seq)))
            .sum()
    }

    /// RFC 6675 §4 NextSeg() rules 1 and 3: the first unSACKed hole at or
    /// above HighRxt and below HighSACK, as `(start, end of the hole)`;
    /// with `lost_only`, only if IsLost. `None` when there is none.
    pub fn next_hole(
        &self,
        snd_una: SeqNumber,
        mss: usize,
        lost_only: bool,
    ) -> Option<(SeqNumber, SeqNumber)> {
        let mut seq = self.high_rxt.max(snd_una);
        if let Some(end) = self.sacked_end(seq) {
            seq = end;
        }
        let end = self.next_sacked(seq)?; // a hole lies below a range
        if lost_only && !self.is_lost(snd_una, mss, seq) {
            return None;
        }
        Some((seq, end))
    }
}

/// `to - from` in bytes, 0 when `to` is behind.
fn span(from: SeqNumber, to: SeqNumber) -> usize {
    usize::try_from(to - from).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 100;

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn b(l: u32, r: u32) -> SackBlock {
        SackBlock {
            left: s(l),
            right: s(r),
        }
    }

    fn board() -> Scoreboard {
        Scoreboard::new(s(1000))
    }

    fn ranges(sb: &Scoreboard) -> Vec<(u32, u32)> {
        sb.ranges().iter().map(|&(l, r)| (l.0, r.0)).collect()
    }

    #[test]
    fn merges_overlapping_and_adjacent_blocks() {
        let mut sb = board();
        assert!(sb.update(s(1000), s(5000), &[b(1200, 1300)]));
        assert!(sb.update(s(1000), s(5000), &[b(1500, 1600)]));
        assert!(sb.update(s(1000), s(5000), &[b(1300, 1400)]));
        assert_eq!(ranges(&sb), [(1200, 1400), (1500, 1600)]);
        // One block bridging both.
        assert!(sb.update(s(1000), s(5000), &[b(1350, 1550)]));
        assert_eq!(ranges(&sb), [(1200, 1600)]);
        // Already known: no news.
        assert!(!sb.update(s(1000), s(5000), &[b(1300, 1500)]));
        assert_eq!(sb.sacked_bytes(), 400);
    }

    #[test]
    fn ignores_blocks_outside_the_window_and_dsack() {
        let mut sb = board();
        // D-SACK below SND.UNA, beyond SND.MAX, empty, inverted.
        let blocks = [b(900, 1000), b(4900, 5100), b(1200, 1200), b(1300, 1200)];
        assert!(!sb.update(s(1000), s(5000), &blocks));
        assert!(sb.is_empty());
        // Straddling SND.UNA is below it on the left: ignored too.
        assert!(!sb.update(s(1000), s(5000), &[b(990, 1100)]));
        assert!(sb.is_empty());
    }

    #[test]
    fn cumulative_ack_prunes_and_detects_reneging() {
        let mut sb = board();
        sb.update(s(1000), s(5000), &[b(1200, 1300), b(1500, 1600)]);
        assert!(!sb.advance(s(1300)));
        assert_eq!(ranges(&sb), [(1500, 1600)]);
        // SND.UNA inside a SACKed range: the peer reneged.
        assert!(sb.advance(s(1550)));
    }

    #[test]
    fn number_of_ranges_is_bounded() {
        let mut sb = board();
        for i in 0..100u32 {
            let l = 1100 + i * 200;
            sb.update(s(1000), s(100_000), &[b(l, l + 100)]);
            assert!(sb.ranges().len() <= MAX_RANGES);
        }
        assert_eq!(sb.ranges().len(), MAX_RANGES);
        // The lowest ranges are kept; a new low one evicts the highest.
        assert_eq!(sb.ranges()[0], (s(1100), s(1200)));
        assert!(sb.update(s(1000), s(100_000), &[b(1010, 1020)]));
        assert_eq!(sb.ranges().len(), MAX_RANGES);
        assert_eq!(sb.ranges()[0], (s(1010), s(1020)));
        // A new range above all kept ones is not stored.
        assert!(!sb.update(s(1000), s(100_000), &[b(90_000, 90_100)]));
    }

    #[test]
    fn is_lost_by_ranges_or_bytes() {
        let mut sb = board();
        // Two small islands above 1000: not lost yet (2 ranges, 20 bytes).
        sb.update(s(1000), s(9000), &[b(1100, 1110), b(1200, 1210)]);
        assert!(!sb.is_lost(s(1000), MSS, s(1000)));
        // A third: DupThresh discontiguous ranges above 1000.
        sb.update(s(1000), s(9000), &[b(1300, 1310)]);
        assert!(sb.is_lost(s(1000), MSS, s(1000)));
        assert!(sb.is_lost(s(1000), MSS, s(1050)));
        // Between the first and second island only two lie above.
        assert!(!sb.is_lost(s(1000), MSS, s(1150)));

        // By bytes: one range of more than 2 * SMSS above.
        let mut sb = board();
        sb.update(s(1000), s(9000), &[b(2000, 2200)]);
        assert!(!sb.is_lost(s(1000), MSS, s(1000)), "exactly 2*SMSS");
        sb.update(s(1000), s(9000), &[b(2200, 2201)]);
        assert!(sb.is_lost(s(1000), MSS, s(1000)));
        assert!(!sb.is_lost(s(1000), MSS, s(2300)));
    }

    #[test]
    fn pipe_counts_unsacked_not_lost_and_retransmitted() {
        let mut sb = board();
        // 1000..2000 outstanding; 1300..1600 SACKed (3 * MSS): 1000..1300
        // is lost, 1600..2000 is in the network.
        sb.update(s(1000), s(2000), &[b(1300, 1600)]);
        assert_eq!(sb.pipe(s(1000), s(2000), MSS), 400);
        // Retransmitting 1000..1100 puts it back in the network.
        sb.mark_retransmitted(s(1100));
        assert_eq!(sb.pipe(s(1000), s(2000), MSS), 500);
        // After an RTO nothing counts as retransmitted.
        sb.clear_retransmitted(s(1000));
        assert_eq!(sb.pipe(s(1000), s(2000), MSS), 400);
        // Without SACK information pipe is the whole flight.
        let sb = board();
        assert_eq!(sb.pipe(s(1000), s(2000), MSS), 1000);
    }

    #[test]
    fn next_hole_walks_holes_above_high_rxt() {
        let mut sb = board();
        sb.update(
            s(1000),
            s(3000),
            &[b(1100, 1200), b(1300, 1400), b(1500, 1900)],
        );
        assert_eq!(sb.next_hole(s(1000), MSS, true), Some((s(1000), s(1100))));
        sb.mark_retransmitted(s(1100));
        assert_eq!(sb.next_hole(s(1000), MSS, true), Some((s(1200), s(1300))));
        sb.mark_retransmitted(s(1300));
        assert_eq!(sb.next_hole(s(1000), MSS, true), Some((s(1400), s(1500))));
        sb.mark_retransmitted(s(1500));
        // Above HighSACK there is no hole (rule 1 and 3 stop there).
        assert_eq!(sb.next_hole(s(1000), MSS, false), None);
    }

    #[test]
    fn mark_lost_below_extends_is_lost_and_pipe() {
        let mut sb = board();
        // One SACKed segment above two holes: not lost by RFC 6675 counts.
        sb.update(s(1000), s(1300), &[b(1200, 1300)]);
        assert!(!sb.is_lost(s(1000), MSS, s(1000)));
        assert_eq!(sb.pipe(s(1000), s(1300), MSS), 200);
        // RFC 8985's verdict: all unSACKed below 1200 is lost.
        sb.mark_lost_below(s(1200));
        assert!(sb.is_lost(s(1000), MSS, s(1100)));
        assert_eq!(sb.pipe(s(1000), s(1300), MSS), 0);
        assert_eq!(sb.next_hole(s(1000), MSS, true), Some((s(1000), s(1200))));
        assert!(sb.is_sacked(s(1200), s(1300)));
        assert!(!sb.is_sacked(s(1100), s(1300)));
        sb.clear(s(1000));
        assert!(!sb.is_lost(s(1000), MSS, s(1000)));
    }

    #[test]
    fn next_hole_rule_3_takes_holes_not_yet_lost() {
        let mut sb = board();
        sb.update(s(1000), s(3000), &[b(1100, 1150)]);
        assert_eq!(sb.next_hole(s(1000), MSS, true), None);
        assert_eq!(sb.next_hole(s(1000), MSS, false), Some((s(1000), s(1100))));
    }
}
