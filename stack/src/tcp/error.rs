//! What can go wrong, per operation (STYLE §2.7), and the counters a
//! connection keeps.

use std::fmt;

/// Why a connection failed. Once set it never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnError {
    /// The peer answered our SYN with a RST (RFC 9293 §3.10.7.3).
    Refused,
    /// The peer reset an established connection (RFC 9293 §3.10.7.4).
    Reset,
    /// Retransmissions or keepalive probes went unanswered (RFC 1122
    /// §4.2.3.5 R2).
    TimedOut,
    /// This host reset the connection: the application aborted it
    /// (`TcpStream::abort`), or the stack gave it up after a fault while
    /// handling it.
    Aborted,
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnError::Refused => "connection refused",
            ConnError::Reset => "connection reset by peer",
            ConnError::TimedOut => "connection timed out",
            ConnError::Aborted => "connection aborted by this host",
        })
    }
}

impl std::error::Error for ConnError {}

/// Why `Connection::send` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendError {
    /// The write side is closed (after `close`, or the connection ended
    /// without an error).
    InvalidState,
    /// The connection failed.
    Conn(ConnError),
}

/// Why `Connection::recv` returned no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecvError {
    /// The peer sent FIN and every byte before it has been read.
    Finished,
    /// The connection was closed or aborted locally before a FIN arrived.
    InvalidState,
    /// The connection failed.
    Conn(ConnError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::InvalidState => f.write_str("write side closed"),
            SendError::Conn(e) => e.fmt(f),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Finished => f.write_str("peer finished sending"),
            RecvError::InvalidState => f.write_str("connection closed"),
            RecvError::Conn(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SendError {}
impl std::error::Error for RecvError {}

/// Counters for one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    pub segs_sent: u64,
    pub segs_received: u64,
    /// Payload bytes sent, retransmissions included.
    pub bytes_sent: u64,
    /// Payload bytes delivered in order to the receive buffer.
    pub bytes_received: u64,
    /// Payload bytes sent again (RTO, fast retransmit, probes of old data).
    pub bytes_retransmitted: u64,
    pub segs_retransmitted: u64,
    pub retransmit_timeouts: u64,
    /// Loss recoveries entered (RFC 5681 §3.2 fast retransmit), SACK-based
    /// or NewReno.
    pub fast_retransmits: u64,
    /// Of those, the ones run by RFC 6675 (SACK negotiated).
    pub sack_recoveries: u64,
    /// ACKs sent for RFC 5961 (in-window RST, SYN, unacceptable ACK).
    pub challenge_acks_sent: u64,
    /// Challenge ACKs not sent because of the RFC 5961 §7 rate limit.
    pub challenge_acks_suppressed: u64,
    pub dup_acks: u64,
    pub zero_window_probes: u64,
    pub keepalive_probes: u64,
    /// Segments that failed the acceptability test (RFC 9293 §3.10.7.4)
    /// or PAWS (RFC 7323 §5), each answered with an ACK.
    pub unacceptable: u64,
    pub rst_sent: u64,
    pub rst_received: u64,
    /// Tail loss probes sent (RFC 8985 §7).
    pub tlp_probes: u64,
    /// Retransmissions found lost by RFC 8985 §6's time-based rule and
    /// sent again without waiting for the RTO.
    pub lost_retransmits_detected: u64,
}
