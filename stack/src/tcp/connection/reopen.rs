//! A new incarnation of a four-tuple still in TIME-WAIT (RFC 6191).
//!
//! The side that closes first holds the four-tuple in TIME-WAIT for 2*MSL.
//! A client that reuses its port sooner (sequential clients cycling
//! through ephemeral ports do) sends a SYN that TIME-WAIT would only ACK:
//! the client answers that ACK with a RST and tries again a second later,
//! so every reuse costs a second. RFC 6191 lets TIME-WAIT accept the SYN
//! when its timestamp, or failing that its sequence number, shows it is
//! newer than anything of the old incarnation, which is what Linux does
//! (`tcp_timewait_state_process`).

use super::Connection;
use crate::tcp::state::State;
use crate::wire::tcp::TcpRepr;
use crate::wire::SeqNumber;

/// How far above the old incarnation's highest sequence number the new
/// one's ISS starts: a full unscaled window, as Linux does, so no old
/// segment of ours can fall inside the new connection's first window
/// (RFC 1122 §4.2.2.13: "larger than the largest sequence number it used
/// on the previous connection incarnation").
const ISS_GAP: usize = 65_535 + 2;

impl Connection {
    /// Whether `seg`, a SYN for this four-tuple, may open a new
    /// incarnation: only in TIME-WAIT, and only under RFC 6191 §2's rules.
    /// Returns the ISS the new incarnation must use; `None` leaves the SYN
    /// to TIME-WAIT (which acknowledges it).
    #[must_use]
    pub fn reopen_iss(&self, seg: &TcpRepr<'_>) -> Option<SeqNumber> {
        let bare_syn = seg.flags.syn() && !seg.flags.ack() && !seg.flags.rst();
        if self.state != State::TimeWait || !bare_syn {
            return None;
        }
        let newer_seq = seg.seq > self.rcv.nxt();
        // Timestamps would be on for the new incarnation: both offer them.
        let new_ts = seg.options.timestamps.filter(|_| self.config.timestamps);
        let newer = match new_ts {
            Some(ts) if self.opts.timestamps() => {
                let ahead = ts.tsval.wrapping_sub(self.opts.ts_recent()) as i32;
                ahead > 0 || (ahead == 0 && newer_seq)
            }
            _ => newer_seq,
        };
        newer.then(|| self.snd.max() + ISS_GAP)
    }

    /// Ends TIME-WAIT for a new incarnation ([`reopen_iss`](Self::reopen_iss)):
    /// CLOSED without a word to the peer, whose new SYN takes its place.
    pub fn end_time_wait(&mut self) {
        if self.state == State::TimeWait {
            self.enter_closed();
        }
    }
}
