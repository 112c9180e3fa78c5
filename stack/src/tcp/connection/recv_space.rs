//! The receive sequence space (RFC 9293 §3.3.1): what the peer sent us,
//! the window we advertised, and the bytes waiting for the application.
//!
//! ```text
//!        IRS        RCV.NXT                  RCV.ADV (RCV.NXT + RCV.WND)
//!  ───────┼────────────┼─────────────────────────────┼─────────────
//!   (SYN)    received    may arrive (out-of-order      beyond what we
//!            in order    ranges kept by the buffer)    advertised
//! ```

use super::distance;
use crate::tcp::memory::MemoryBudget;
use crate::tcp::recv_buf::RecvBuffer;
use crate::wire::tcp::{SackBlock, TcpOptions};
use crate::wire::SeqNumber;

/// The receive side of the connection.
///
/// # Invariants
///
/// - Once synchronized, `nxt <= adv` and `adv - nxt` never exceeds the
///   buffer's free space: the right edge we advertised never moves left
///   (RFC 9293 §3.8.6.2.2), and we never advertise room we do not have.
/// - `nxt` advances only by bytes the buffer made contiguous, plus one
///   for the peer's FIN once everything before it arrived (`fin_rcvd`).
pub(super) struct RecvSpace {
    buf: RecvBuffer,
    /// The configured receive buffer (the window's upper bound).
    capacity: usize,
    /// Receiver SWS avoidance threshold: min(buffer/2, MSS), at least 1.
    sws_threshold: usize,
    irs: SeqNumber,
    nxt: SeqNumber,
    /// The right edge of the window we advertised.
    adv: SeqNumber,
    /// Shift applied to the window we advertise (RFC 7323 §2.3).
    wscale: u8,
    /// The peer's FIN has been received and is in sequence.
    fin_rcvd: bool,
    /// A FIN that arrived ahead of missing data: its sequence number.
    pending_fin: Option<SeqNumber>,
    /// Start of the most recent out-of-order segment: its SACK block goes
    /// first (RFC 2018 §4).
    last_ooo: Option<SeqNumber>,
}

/// What storing a segment's payload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stored {
    /// The whole payload was inside the window (a FIN after it is too).
    pub(super) fits: bool,
    /// New bytes stored (after trimming what we had and what did not fit).
    pub(super) len: usize,
    /// Where they start, in bytes after RCV.NXT: above 0 is out of order.
    pub(super) offset: usize,
    /// How far RCV.NXT moved: above `len` when a hole was filled.
    pub(super) advanced: usize,
}

impl RecvSpace {
    pub(super) fn new(
        capacity: usize,
        max_ooo_ranges: usize,
        mss: u16,
        memory: MemoryBudget,
    ) -> RecvSpace {
        RecvSpace {
            buf: RecvBuffer::with_memory(capacity, max_ooo_ranges, memory),
            capacity,
            sws_threshold: (capacity / 2).min(usize::from(mss)).max(1),
            irs: SeqNumber(0),
            nxt: SeqNumber(0),
            adv: SeqNumber(0),
            wscale: 0,
            fin_rcvd: false,
            pending_fin: None,
            last_ooo: None,
        }
    }

    pub(super) fn buf(&self) -> &RecvBuffer {
        &self.buf
    }

    pub(super) fn buf_mut(&mut self) -> &mut RecvBuffer {
        &mut self.buf
    }

    pub(super) fn irs(&self) -> SeqNumber {
        self.irs
    }

    pub(super) fn nxt(&self) -> SeqNumber {
        self.nxt
    }

    pub(super) fn wscale(&self) -> u8 {
        self.wscale
    }

    pub(super) fn set_wscale(&mut self, shift: u8) {
        self.wscale = shift;
    }

    pub(super) fn fin_rcvd(&self) -> bool {
        self.fin_rcvd
    }

    /// The peer's SYN at `seq`: IRS, RCV.NXT after it, and the window our
    /// SYN offers (unscaled, RFC 7323 §2.2).
    pub(super) fn peer_syn(&mut self, seq: SeqNumber) {
        self.irs = seq;
        self.nxt = seq + 1;
        self.adv = self.nxt + self.syn_window();
    }

    /// The window we put in a SYN: unscaled, so at most 65535.
    pub(super) fn syn_window(&self) -> usize {
        self.buf.window().min(0xffff)
    }

    /// RCV.WND as last advertised.
    pub(super) fn window(&self) -> usize {
        distance(self.nxt, self.adv)
    }

    /// RFC 9293 §3.10.7.4's acceptability test of a segment at `seq`
    /// occupying `len` sequence numbers, against `rcv_wnd`.
    pub(super) fn acceptable(&self, seq: SeqNumber, len: usize, rcv_wnd: usize) -> bool {
        let end = self.nxt + rcv_wnd;
        match (len, rcv_wnd) {
            (0, 0) => seq == self.nxt,
            (0, _) => seq.in_window(self.nxt, end),
            (_, 0) => false,
            (_, _) => seq.in_window(self.nxt, end) || (seq + (len - 1)).in_window(self.nxt, end),
        }
    }

    /// Stores the part of a non-empty payload at `seq` that is new and
    /// inside `rcv_wnd` (RFC 9293 §3.10.7.4 seventh step: duplicates and
    /// what lies beyond the window are trimmed).
    pub(super) fn store(&mut self, seq: SeqNumber, payload: &[u8], rcv_wnd: usize) -> Stored {
        let mut data = payload;
        let mut start = seq;
        // Trim what we already have (a duplicate or overlapping prefix).
        if start < self.nxt {
            let skip = distance(start, self.nxt);
            data = data.get(skip..).unwrap_or(&[]);
            start = self.nxt;
        }
        let offset = distance(self.nxt, start);
        // A FIN already seen ends the sequence space (RFC 9293 §3.10.7.4,
        // eighth step): bytes past it are trimmed like bytes past the
        // window, or RCV.NXT would jump over the FIN and end-of-file
        // would never be delivered.
        let limit = match self.pending_fin {
            Some(fin) => rcv_wnd.min(distance(self.nxt, fin)),
            None => rcv_wnd,
        };
        let room = limit.saturating_sub(offset);
        let mut fits = data.len() <= room;
        if !fits {
            data = data.get(..room).unwrap_or(&[]);
        }
        if data.is_empty() {
            return Stored {
                fits,
                len: 0,
                offset,
                advanced: 0,
            };
        }
        let written = self.buf.write(offset, data);
        // Bytes the buffer refused (its range bound, the memory budget)
        // count as not received: a FIN after them is not in sequence.
        fits &= written.kept == data.len();
        self.nxt += written.advanced;
        if offset > 0 && written.kept > 0 {
            self.last_ooo = Some(start);
        }
        Stored {
            fits,
            len: written.kept,
            offset,
            advanced: written.advanced,
        }
    }

    /// The peer's FIN, in window, at `fin_seq`: remembered until the data
    /// before it has arrived.
    /// A FIN below out-of-order data already held contradicts that data;
    /// it is ignored (the peer retransmits a true FIN).
    pub(super) fn fin_arrived(&mut self, fin_seq: SeqNumber) {
        if fin_seq < self.nxt || self.pending_fin.is_some() {
            return;
        }
        let held_end = self.buf.ooo_ranges().map(|(_, end)| end).max();
        if held_end.is_some_and(|end| end > distance(self.nxt, fin_seq)) {
            return;
        }
        self.pending_fin = Some(fin_seq);
    }

    /// Takes a pending FIN once it is at RCV.NXT: RCV.NXT moves past it.
    /// Returns whether it did.
    pub(super) fn take_fin(&mut self) -> bool {
        let Some(fin_seq) = self.pending_fin else {
            return false;
        };
        if fin_seq != self.nxt || self.fin_rcvd {
            return false;
        }
        self.pending_fin = None;
        self.fin_rcvd = true;
        self.nxt += 1;
        true
    }

    /// Reads in-order data for the application.
    pub(super) fn read(&mut self, out: &mut [u8]) -> usize {
        self.buf.read(out)
    }

    /// Drops every byte held (abort).
    pub(super) fn discard(&mut self) {
        self.buf.clear();
    }

    /// The right edge the free space allows, within what the window field
    /// can carry with our shift and what the memory budget can back.
    fn edge(&self) -> (SeqNumber, usize) {
        let max_adv = 0xffff_usize << self.wscale;
        (self.nxt + self.buf.advertisable().min(max_adv), max_adv)
    }

    /// Receiver SWS avoidance (RFC 9293 §3.8.6.2.2): the right edge moves
    /// only by at least min(buffer/2, MSS); it never moves left. Returns
    /// the window field, scaled.
    pub(super) fn advertise(&mut self) -> u16 {
        let (edge, _) = self.edge();
        if self.adv < self.nxt
            || (edge > self.adv && distance(self.adv, edge) >= self.sws_threshold)
        {
            self.adv = edge;
        }
        let wnd = self.window() >> self.wscale;
        wnd.min(0xffff) as u16
    }

    /// After the reader freed space: worth telling the peer if the edge
    /// can move by the SWS threshold and the peer may be short of window
    /// (less than half the buffer advertised).
    pub(super) fn window_update_due(&self) -> bool {
        let (edge, max_adv) = self.edge();
        edge > self.adv
            && distance(self.adv, edge) >= self.sws_threshold
            && self.window() < self.capacity.min(max_adv) / 2
    }

    /// SACK blocks for our out-of-order data, at most `max` of them,
    /// pushed onto `options`: the block holding the most recent arrival
    /// first, then the others in sequence order (RFC 2018 §4).
    pub(super) fn push_sack_blocks(&self, options: &mut TcpOptions, max: usize) {
        let block = |(start, end): (usize, usize)| SackBlock {
            left: self.nxt + start,
            right: self.nxt + end,
        };
        let recent = self.last_ooo.and_then(|at| {
            self.buf
                .ooo_ranges()
                .map(block)
                .find(|b| at.in_window(b.left, b.right))
        });
        if let Some(first) = recent {
            options.push_sack(first);
        }
        for b in self.buf.ooo_ranges().map(block) {
            if usize::from(options.sack_len) >= max {
                break;
            }
            if Some(b) != recent {
                options.push_sack(b);
            }
        }
    }

    /// Asserts the invariants (property tests); `synced` once RCV.NXT is
    /// known.
    #[cfg(test)]
    pub(super) fn check(&self, synced: bool) {
        assert!(self.buf.len() <= self.capacity);
        if synced {
            assert!(self.adv >= self.nxt);
            assert!(self.window() <= self.buf.window());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4000-byte buffer, MSS 1000, the peer's SYN at `irs`.
    fn space(irs: u32) -> RecvSpace {
        let mut r = RecvSpace::new(4000, 4, 1000, MemoryBudget::unlimited());
        r.peer_syn(SeqNumber(irs));
        r
    }

    #[test]
    fn window_never_shrinks_and_moves_by_the_sws_threshold() {
        let mut r = space(u32::MAX - 10); // data crosses 2^32
        assert_eq!(r.advertise(), 4000);
        let first = r.nxt();
        let s = r.store(first, &[1; 3000], r.window());
        assert_eq!((s.fits, s.len, s.offset, s.advanced), (true, 3000, 0, 3000));
        // The buffer is full to 1000 free: the edge stays where it was.
        assert_eq!(r.advertise(), 1000);
        assert_eq!(r.read(&mut [0; 500]), 500);
        // 500 freed is below min(2000, 1000): no move, no update owed.
        assert!(!r.window_update_due());
        assert_eq!(r.advertise(), 1000);
        assert_eq!(r.read(&mut [0; 600]), 600);
        assert!(r.window_update_due());
        assert_eq!(r.advertise(), 2100);
        r.check(true);
    }

    #[test]
    fn store_trims_duplicates_and_what_is_beyond_the_window() {
        let mut r = space(100);
        let nxt = r.nxt();
        r.store(nxt, &[1; 100], 4000);
        // 50 old bytes and 50 new.
        let s = r.store(nxt + 50, &[2; 100], r.buf().window());
        assert_eq!((s.len, s.offset, s.advanced, s.fits), (50, 0, 50, true));
        // Out of order, cut at the window.
        let s = r.store(r.nxt() + 100, &[3; 200], 150);
        assert_eq!((s.len, s.offset, s.advanced, s.fits), (50, 100, 0, false));
        // A pure duplicate stores nothing.
        let s = r.store(nxt, &[1; 10], 4000);
        assert_eq!(s.len, 0);
        assert!(s.fits);
    }

    #[test]
    fn fin_waits_for_the_data_before_it() {
        let mut r = space(0);
        let nxt = r.nxt();
        r.fin_arrived(nxt + 10);
        assert!(!r.take_fin());
        r.store(nxt, &[0; 10], 4000);
        assert!(r.take_fin());
        assert!(r.fin_rcvd());
        assert_eq!(r.nxt(), nxt + 11);
        assert!(!r.take_fin());
        r.check(true);
    }

    #[test]
    fn most_recent_sack_block_goes_first() {
        let mut r = space(0);
        let nxt = r.nxt();
        r.store(nxt + 100, &[0; 10], 4000);
        r.store(nxt + 300, &[0; 10], 4000);
        r.store(nxt + 200, &[0; 10], 4000);
        let mut o = TcpOptions::default();
        r.push_sack_blocks(&mut o, 4);
        let lefts: Vec<u32> = o.sack_blocks().iter().map(|b| b.left.0).collect();
        assert_eq!(lefts, [201, 101, 301]);
        let mut o = TcpOptions::default();
        r.push_sack_blocks(&mut o, 2);
        assert_eq!(o.sack_blocks().len(), 2);
    }

    #[test]
    fn zero_window_accepts_only_an_empty_segment_at_rcv_nxt() {
        let r = space(0);
        let nxt = r.nxt();
        assert!(r.acceptable(nxt, 0, 0));
        assert!(!r.acceptable(nxt + 1, 0, 0));
        assert!(!r.acceptable(nxt, 1, 0));
        assert!(r.acceptable(nxt - 5, 10, 100));
        assert!(!r.acceptable(nxt - 10, 10, 100));
        assert!(!r.acceptable(nxt + 100, 1, 100));
    }
}
