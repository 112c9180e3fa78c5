//! Test-only invariant checks, used by the property tests after every
//! input and on every emitted segment.

use super::Connection;
use crate::tcp::state::State;
use crate::wire::tcp::TcpRepr;

impl Connection {
    /// Asserts the invariants every input must preserve (used by the
    /// property tests).
    pub(crate) fn check_invariants(&self) {
        self.snd.check();
        assert!(self.snd.buf().len() <= self.config.send_buffer);
        assert!(self.rcv.buf().len() <= self.config.recv_buffer);
        if self.snd.syn_acked() && !self.snd.fin_acked() && self.state != State::Closed {
            // Everything sent is in the buffer (plus at most our FIN).
            assert!(self.snd.flight() <= self.snd.buf().len() + 1, "{self:?}");
        }
        // Never shrink the window we advertised (RFC 9293 §3.8.6.2.2).
        self.rcv
            .check(self.state.is_synchronized() && self.state != State::Closed);
        if self.state == State::Closed {
            assert_eq!(self.timers.next_timeout(), None);
        }
    }

    /// Asserts that a segment `poll_transmit` just returned lies in our
    /// sequence space: from ISS up to SND.MAX (or the zero-window probe
    /// byte past it), and acknowledges exactly RCV.NXT. A RST is exempt: it
    /// may answer an unacceptable ACK with that ACK's number (RFC 9293
    /// §3.10.7.3).
    pub(crate) fn check_emitted(&self, seg: &TcpRepr<'_>) {
        if seg.flags.rst() {
            return;
        }
        let end = seg.seq + seg.seg_len();
        assert!(seg.seq >= self.snd.iss(), "{seg:?} {self:?}");
        assert!(end <= self.snd.ack_limit(), "{seg:?} {self:?}");
        if seg.flags.ack() {
            assert_eq!(seg.ack, self.rcv.nxt(), "{seg:?} {self:?}");
        }
    }
}
