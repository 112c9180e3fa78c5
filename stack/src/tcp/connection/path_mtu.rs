//! Path MTU discovery's part in a connection (RFC 1191 §6.4, RFC 8201
//! §5.4): a router said a segment was too big, so the send MSS comes down
//! and what is in flight is sent again in segments that fit.

use super::Connection;
use crate::wire::SeqNumber;

impl Connection {
    /// Whether an ICMP error quoting a segment that started at `seq` may
    /// be about this connection: the segment must be one we sent and the
    /// peer has not acknowledged, SND.UNA <= `seq` < SND.NXT (RFC 5927
    /// §4.1), so an attacker who does not see the traffic cannot guess
    /// one and shrink our segments. (SND.MAX: after a go-back, data past
    /// SND.NXT is still in flight.)
    pub fn quotes_in_flight(&self, seq: SeqNumber) -> bool {
        let (una, max) = (self.snd.una(), self.snd.max());
        una <= seq && seq < max
    }

    /// The path to the peer takes segments of at most `mss` bytes of TCP
    /// options and payload (the path MTU less the IP and TCP fixed
    /// headers). When that lowers the send MSS, congestion control counts
    /// in the new size and everything unacknowledged is sent again from
    /// SND.UNA in segments that fit: the segment that was too big was
    /// dropped, and waiting for the RTO would stall the connection for a
    /// second (RFC 1191 §6.4 and RFC 8201 §5.4 ask for a prompt
    /// retransmission). This is no congestion signal: neither the window
    /// nor the RTO backs off, and the RTT sample in progress is dropped
    /// (Karn). Returns whether the MSS went down.
    pub fn cap_path_mss(&mut self, mss: usize) -> bool {
        if !self.opts.cap_path(mss) {
            return false;
        }
        self.cc.set_mss(self.payload_mss());
        if !self.snd.all_acked() {
            self.loss.timeout(self.snd.una(), self.snd.max(), false);
            self.rtt.forget();
            self.snd.go_back();
        }
        true
    }
}
