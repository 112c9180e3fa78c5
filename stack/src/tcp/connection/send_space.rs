//! The send sequence space (RFC 9293 §3.3.1): what we sent, what the peer
//! acknowledged, the window it offered, and the bytes behind them.
//!
//! ```text
//!        ISS      SND.UNA        SND.NXT         SND.MAX     SND.UNA+SND.WND
//!  ───────┼──────────┼──────────────┼───────────────┼───────────────┼────
//!   (SYN)   acked     sent, unacked   sent before a   may be sent
//!                     (the flight)    timeout moved
//!                                     SND.NXT back
//! ```

use super::distance;
use crate::tcp::send_buf::SendBuffer;
use crate::wire::SeqNumber;

/// The send side of the connection.
///
/// # Invariants
///
/// - `una <= nxt <= max` in sequence order; every method keeps it.
/// - Once our SYN is acknowledged (`syn_acked`), `una` is the sequence
///   number of the send buffer's first byte, so the bytes `[una, max)` are
///   in the buffer, plus at most our FIN.
/// - `max_wnd >= wnd`: the largest window the peer ever offered.
/// - `probe_end`, when set, lies beyond `una`: an ACK up to it is
///   acceptable although it may pass `max`.
pub(super) struct SendSpace {
    buf: SendBuffer,
    iss: SeqNumber,
    una: SeqNumber,
    /// The next sequence number to send. After a timeout it goes back to
    /// SND.UNA (go-back-N); `max` remembers the highest ever sent.
    nxt: SeqNumber,
    max: SeqNumber,
    /// The end of an outstanding zero-window probe byte, which lies
    /// beyond SND.MAX without being part of the stream sent so far.
    probe_end: Option<SeqNumber>,
    /// The peer's window in bytes (already scaled).
    wnd: usize,
    wl1: SeqNumber,
    wl2: SeqNumber,
    /// Largest window the peer ever offered (sender SWS, RFC 1122
    /// §4.2.3.4; RFC 5961 §5.2's MAX.SND.WND).
    max_wnd: usize,
    /// Shift applied to the peer's window field (RFC 7323 §2.3).
    wscale: u8,
    /// Our SYN has been acknowledged.
    syn_acked: bool,
    /// Our FIN has been acknowledged.
    fin_acked: bool,
}

impl SendSpace {
    pub(super) fn new(iss: SeqNumber, capacity: usize) -> SendSpace {
        SendSpace {
            buf: SendBuffer::new(capacity),
            iss,
            una: iss,
            nxt: iss,
            max: iss,
            probe_end: None,
            wnd: 0,
            wl1: SeqNumber(0),
            wl2: iss,
            max_wnd: 0,
            wscale: 0,
            syn_acked: false,
            fin_acked: false,
        }
    }

    pub(super) fn buf_mut(&mut self) -> &mut SendBuffer {
        &mut self.buf
    }

    pub(super) fn buf(&self) -> &SendBuffer {
        &self.buf
    }

    pub(super) fn iss(&self) -> SeqNumber {
        self.iss
    }

    pub(super) fn una(&self) -> SeqNumber {
        self.una
    }

    pub(super) fn nxt(&self) -> SeqNumber {
        self.nxt
    }

    pub(super) fn max(&self) -> SeqNumber {
        self.max
    }

    pub(super) fn wnd(&self) -> usize {
        self.wnd
    }

    pub(super) fn max_wnd(&self) -> usize {
        self.max_wnd
    }

    pub(super) fn wscale(&self) -> u8 {
        self.wscale
    }

    pub(super) fn set_wscale(&mut self, shift: u8) {
        self.wscale = shift;
    }

    /// A window field from the peer, scaled (never in a SYN).
    pub(super) fn scaled(&self, window: u16) -> usize {
        usize::from(window) << self.wscale
    }

    pub(super) fn syn_acked(&self) -> bool {
        self.syn_acked
    }

    pub(super) fn fin_acked(&self) -> bool {
        self.fin_acked
    }

    // ---- Derived quantities ----------------------------------------------

    /// Sequence space sent and not yet acknowledged, counting from SND.NXT.
    pub(super) fn flight(&self) -> usize {
        distance(self.una, self.nxt)
    }

    /// Sequence space ever sent and not yet acknowledged (to SND.MAX):
    /// RFC 5681's FlightSize.
    pub(super) fn outstanding(&self) -> usize {
        distance(self.una, self.max)
    }

    /// Nothing sent is unacknowledged, even past a timeout's go-back.
    pub(super) fn all_acked(&self) -> bool {
        self.nxt == self.una && self.max == self.una
    }

    /// Queued bytes not yet sent (beyond SND.NXT).
    pub(super) fn unsent(&self) -> usize {
        if !self.syn_acked {
            return self.buf.len();
        }
        self.buf.len().saturating_sub(self.flight())
    }

    /// What the peer's window still takes beyond SND.NXT.
    pub(super) fn peer_room(&self) -> usize {
        distance(self.nxt, self.una + self.wnd)
    }

    /// The highest acceptable SEG.ACK: SND.MAX, or a probe byte past it.
    pub(super) fn ack_limit(&self) -> SeqNumber {
        match self.probe_end {
            Some(end) if end > self.max => end,
            _ => self.max,
        }
    }

    /// RFC 5961 §5.2: an ACK is acceptable only within SND.UNA -
    /// MAX.SND.WND =< SEG.ACK =< the ack limit.
    pub(super) fn ack_in_range(&self, ack: SeqNumber) -> bool {
        let floor = self.una - self.max_wnd.min(i32::MAX as usize);
        ack >= floor && ack <= self.ack_limit()
    }

    /// RFC 9293 §3.10.7.3/4: an ACK of something new, SND.UNA < SEG.ACK
    /// =< the ack limit.
    pub(super) fn acks_new(&self, ack: SeqNumber) -> bool {
        ack > self.una && ack <= self.ack_limit()
    }

    // ---- The application's bytes -----------------------------------------

    /// Queues bytes; returns how many fitted.
    pub(super) fn queue(&mut self, data: &[u8]) -> usize {
        self.buf.write(data)
    }

    /// Drops every queued byte (abort, failure).
    pub(super) fn discard(&mut self) {
        self.buf.clear();
    }

    // ---- Sending -----------------------------------------------------------

    /// Sequence space up to `end` went out: SND.NXT moves there and
    /// SND.MAX follows.
    pub(super) fn sent_to(&mut self, end: SeqNumber) {
        self.nxt = end;
        self.max = self.max.max(end);
    }

    /// A retransmission from SND.UNA ended at `end`: SND.NXT never moves
    /// back because of it.
    pub(super) fn resent_to(&mut self, end: SeqNumber) {
        if self.nxt < end {
            self.nxt = end;
            self.max = self.max.max(end);
        }
    }

    /// The go-back-N resend skips to `end` (already SACKed), never past
    /// SND.MAX.
    pub(super) fn skip_to(&mut self, end: SeqNumber) {
        if self.nxt < self.max {
            self.nxt = end.min(self.max).max(self.nxt);
        }
    }

    /// After a timeout: resend from SND.UNA.
    pub(super) fn go_back(&mut self) {
        self.nxt = self.una;
    }

    /// Before our SYN is acknowledged: send the SYN again.
    pub(super) fn resend_syn(&mut self) {
        self.nxt = self.iss;
    }

    /// A zero-window probe byte ending at `end` went out.
    pub(super) fn probe_sent(&mut self, end: SeqNumber) {
        self.probe_end = Some(end);
    }

    // ---- Acknowledgments ---------------------------------------------------

    /// Takes an ACK of new data (`acks_new(ack)` holds): frees the
    /// acknowledged bytes and moves SND.UNA (and SND.NXT, SND.MAX with it
    /// when a probe byte was taken). `fin_sent` says our FIN is the byte
    /// after the queue. Returns the data bytes acknowledged.
    pub(super) fn take_ack(&mut self, ack: SeqNumber, fin_sent: bool) -> usize {
        let mut acked = distance(self.una, ack);
        if !self.syn_acked && acked > 0 {
            self.syn_acked = true;
            acked -= 1;
        }
        let data = acked.min(self.buf.len());
        self.buf.consume(data);
        if acked > data && fin_sent {
            self.fin_acked = true;
        }
        self.una = ack;
        if self.nxt < ack {
            self.nxt = ack;
        }
        if self.max < ack {
            // The peer took a zero-window probe byte.
            self.max = ack;
        }
        if self.probe_end.is_some_and(|end| end <= ack) {
            self.probe_end = None;
        }
        data
    }

    /// The window of the peer's SYN (never scaled, RFC 7323 §2.2), with
    /// SEG.SEQ as SND.WL1.
    pub(super) fn peer_syn(&mut self, seq: SeqNumber, window: usize) {
        self.wnd = window;
        self.max_wnd = window;
        self.wl1 = seq;
    }

    /// SND.WL2 from the ACK of a SYN-ACK we received.
    pub(super) fn set_wl2(&mut self, ack: SeqNumber) {
        self.wl2 = ack;
    }

    /// Takes the peer's window unconditionally (the ACK that completes a
    /// passive open).
    pub(super) fn set_window(&mut self, seq: SeqNumber, ack: SeqNumber, wnd: usize) {
        self.wnd = wnd;
        self.max_wnd = self.max_wnd.max(wnd);
        self.wl1 = seq;
        self.wl2 = ack;
    }

    /// RFC 9293 §3.10.7.4 fifth step: take the window only from a segment
    /// no older than the last one it was taken from (SND.WL1 < SEG.SEQ, or
    /// equal and SND.WL2 =< SEG.ACK), and only if SEG.ACK is not behind.
    pub(super) fn update_window(&mut self, seq: SeqNumber, ack: SeqNumber, wnd: usize) {
        if ack >= self.una && (self.wl1 < seq || (self.wl1 == seq && self.wl2 <= ack)) {
            self.set_window(seq, ack, wnd);
        }
    }

    /// Asserts the invariants (property tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        assert!(self.una <= self.nxt);
        assert!(self.nxt <= self.max);
        assert!(self.wnd <= self.max_wnd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A space whose SYN is acknowledged, with `queued` bytes in the
    /// buffer and the first data byte at `first`.
    fn synced(first: u32, queued: usize) -> SendSpace {
        let iss = SeqNumber(first.wrapping_sub(1));
        let mut s = SendSpace::new(iss, 10_000);
        s.sent_to(iss + 1);
        assert_eq!(s.take_ack(iss + 1, false), 0);
        assert!(s.syn_acked());
        assert_eq!(s.queue(&vec![7u8; queued]), queued);
        s
    }

    #[test]
    fn flight_and_unsent_across_wraparound() {
        let first = u32::MAX - 99;
        let mut s = synced(first, 1000);
        assert_eq!((s.flight(), s.unsent()), (0, 1000));
        s.sent_to(SeqNumber(first) + 600); // crosses 2^32
        assert_eq!(s.nxt(), SeqNumber(500));
        assert_eq!((s.flight(), s.outstanding(), s.unsent()), (600, 600, 400));
        assert_eq!(s.take_ack(SeqNumber(first) + 300, false), 300);
        assert_eq!((s.flight(), s.unsent(), s.buf().len()), (300, 400, 700));
        s.check();
    }

    #[test]
    fn go_back_keeps_max_and_resend_never_moves_nxt_back() {
        let mut s = synced(1000, 3000);
        s.sent_to(SeqNumber(4000));
        s.go_back();
        assert_eq!((s.nxt(), s.max()), (SeqNumber(1000), SeqNumber(4000)));
        assert_eq!(s.outstanding(), 3000);
        assert_eq!(s.flight(), 0);
        s.resent_to(SeqNumber(2000));
        assert_eq!(s.nxt(), SeqNumber(2000));
        s.resent_to(SeqNumber(1500));
        assert_eq!(s.nxt(), SeqNumber(2000));
        s.skip_to(SeqNumber(9000));
        assert_eq!(s.nxt(), s.max());
        s.check();
    }

    #[test]
    fn ack_range_allows_a_probe_byte_and_max_wnd_behind() {
        let mut s = synced(1000, 10);
        s.peer_syn(SeqNumber(5), 100);
        s.sent_to(SeqNumber(1005));
        assert!(s.acks_new(SeqNumber(1005)));
        assert!(!s.acks_new(SeqNumber(1006)));
        assert!(!s.acks_new(SeqNumber(1000)));
        assert!(s.ack_in_range(SeqNumber(900)));
        assert!(!s.ack_in_range(SeqNumber(899)));
        assert!(!s.ack_in_range(SeqNumber(1006)));
        s.probe_sent(SeqNumber(1006));
        assert_eq!(s.ack_limit(), SeqNumber(1006));
        assert_eq!(s.take_ack(SeqNumber(1006), false), 6);
        // The probe byte was taken: SND.MAX follows and the probe is over.
        assert_eq!(
            (s.nxt(), s.max(), s.ack_limit()),
            (s.una(), s.una(), s.una())
        );
    }

    #[test]
    fn fin_is_acked_only_past_the_data_when_sent() {
        let mut s = synced(1000, 10);
        s.sent_to(SeqNumber(1011)); // 10 bytes and our FIN
        assert_eq!(s.take_ack(SeqNumber(1010), true), 10);
        assert!(!s.fin_acked());
        assert_eq!(s.take_ack(SeqNumber(1011), true), 0);
        assert!(s.fin_acked());
    }

    #[test]
    fn window_is_taken_only_from_newer_segments() {
        let mut s = synced(1000, 10);
        s.peer_syn(SeqNumber(500), 1000);
        s.update_window(SeqNumber(600), SeqNumber(1000), 2000);
        assert_eq!((s.wnd(), s.max_wnd()), (2000, 2000));
        // An older segment (SEG.SEQ < SND.WL1) is ignored.
        s.update_window(SeqNumber(550), SeqNumber(1000), 10);
        assert_eq!(s.wnd(), 2000);
        // Same SEG.SEQ, same SEG.ACK: taken, and may shrink.
        s.update_window(SeqNumber(600), SeqNumber(1000), 500);
        assert_eq!((s.wnd(), s.max_wnd()), (500, 2000));
        assert_eq!(s.peer_room(), 500);
        s.check();
    }
}
