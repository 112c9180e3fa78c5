//! Passive open completed by a SYN cookie (RFC 4987 §3.6): the one
//! constructor that needs the connection's insides, kept apart so the
//! listener (`tcp::listener`) builds connections through public calls only.

use std::net::SocketAddr;

use super::Connection;
use crate::tcp::config::TcpConfig;
use crate::time::Instant;
use crate::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;

impl Connection {
    /// Passive open from the ACK that returned a valid SYN cookie: the
    /// listener answered the SYN statelessly with a SYN-ACK whose ISN is
    /// the cookie, so that SYN-ACK is already on the wire and is not sent
    /// again. `ack` is the handshake's final ACK (`SEG.SEQ - 1` is the
    /// peer's ISN, `SEG.ACK - 1` ours) and `peer_mss` the MSS the cookie
    /// kept; no other option of the SYN survives a cookie. `ack` is then
    /// processed as in SYN-RECEIVED, which moves the connection to
    /// ESTABLISHED (and takes any data it carries).
    ///
    /// The stateless SYN-ACK's send time is unknown, so it gives no RTT
    /// sample (RFC 6298 §3: only segments whose send time is known are
    /// timed).
    pub fn accept_cookie(
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        ack: &TcpRepr<'_>,
        peer_mss: u16,
        config: &TcpConfig,
    ) -> Connection {
        let syn = TcpRepr {
            src_port: ack.src_port,
            dst_port: ack.dst_port,
            seq: ack.seq - 1,
            ack: SeqNumber(0),
            flags: TcpFlags::SYN,
            window: ack.window,
            urgent: 0,
            options: TcpOptions {
                mss: Some(peer_mss),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        let mut conn = Connection::accept(now, local, remote, &syn, ack.ack - 1, config);
        // Our SYN occupies ISS: it was sent, as the cookie.
        let syn_end = conn.snd.iss() + 1;
        conn.snd.sent_to(syn_end);
        conn.handle_segment(now, ack);
        conn
    }
}
