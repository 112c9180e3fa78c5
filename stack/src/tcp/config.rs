//! Per-connection tunables and their defaults, with the reason for each.

use std::net::IpAddr;
use std::time::Duration;

use super::congestion::Algorithm;
use super::memory::MemoryBudget;
use super::rtt_histogram::RttHistogram;

/// How a connection behaves. `Default` gives Linux-like values.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// The MSS we advertise on our SYN and the cap on what we send, over
    /// IPv4: 1460 is an MTU of 1500 minus 20 bytes of IPv4 and 20 of TCP
    /// header. Over IPv6 it is 20 less, for the longer IP header (see
    /// [`for_address`](Self::for_address)).
    pub mss: u16,
    /// Send buffer bytes: what `send` accepts before it would block.
    /// DoS warning: each connection holds up to this much memory.
    pub send_buffer: usize,
    /// Receive buffer bytes: the most we ever advertise, and the bound on
    /// in-order plus out-of-order data held for the reader.
    pub recv_buffer: usize,
    /// Offer window scaling (RFC 7323 §2); used only if both SYNs carry it.
    pub window_scaling: bool,
    /// Offer SACK-permitted (RFC 2018). We generate SACK blocks for our
    /// out-of-order data, and as a sender recover from loss with the
    /// peer's blocks (RFC 6675 scoreboard, `tcp::sack`); without SACK,
    /// recovery is NewReno (RFC 6582).
    pub sack: bool,
    /// Offer timestamps (RFC 7323 §3-5): RTT samples from TSecr and PAWS.
    pub timestamps: bool,
    /// RTO before any RTT sample (RFC 6298 §2.1: 1 s).
    pub initial_rto: Duration,
    /// Lower bound on the RTO. RFC 6298 §2.4 says 1 s; Linux uses 200 ms
    /// and so do we, because a 1 s floor cripples recovery on fast paths.
    pub min_rto: Duration,
    /// Upper bound on the RTO (RFC 6298 §2.5 allows >= 60 s).
    pub max_rto: Duration,
    /// Consecutive retransmission timeouts of one segment before the
    /// connection fails with `ConnError::TimedOut` (RFC 1122 §4.2.3.5 R2).
    pub max_retransmits: u32,
    /// Retransmissions of a SYN before giving up (Linux `tcp_syn_retries`).
    pub syn_retries: u32,
    /// Maximum segment lifetime: TIME-WAIT lasts 2*MSL (RFC 9293 §3.10.8).
    pub msl: Duration,
    /// Delay ACKs of in-order data by at most this much, acknowledging at
    /// least every second full-sized segment (RFC 1122 §4.2.3.2, RFC 9293
    /// §3.8.6.3). `None` acknowledges at once.
    pub delayed_ack: Option<Duration>,
    /// Disable Nagle's algorithm (RFC 9293 §3.7.4). Default false, like
    /// a kernel socket without `TCP_NODELAY`.
    pub nodelay: bool,
    /// Congestion control algorithm (RFC 5681 / RFC 9438). CUBIC by
    /// default: it finished 10 MiB sooner on five of the six simulated
    /// links measured (table in `congestion.rs`).
    pub congestion: Algorithm,
    /// Idle time before keepalive probes (RFC 1122 §4.2.3.6); off when
    /// `None`, as the RFC requires by default. Probes repeat at this
    /// interval; [`KEEPALIVE_PROBES`] unanswered ones fail the connection.
    pub keepalive: Option<Duration>,
    /// Bound on separate out-of-order ranges held (each costs bookkeeping).
    pub max_ooo_ranges: usize,
    /// RFC 5961 §7: challenge ACKs (and ACKs for unacceptable ACK fields,
    /// §5.2, and for out-of-window segments without data) sent per second
    /// per connection; the rest are dropped silently and counted. Linux limits per socket by time instead
    /// (`tcp_invalid_ratelimit`, 500 ms); 10 per second keeps an off-path
    /// attacker from turning us into an ACK reflector while a real peer
    /// out of sync still gets answers.
    pub challenge_acks_per_sec: u32,
    /// RFC 8985 §7 Tail Loss Probe (needs SACK): when no ACK comes for a
    /// probe timeout (2*SRTT, at least 10 ms) with data outstanding, send
    /// one segment to draw an ACK whose SACK information starts fast
    /// recovery, instead of waiting for the RTO (200 ms at least, which
    /// on a sub-millisecond path idles the link for thousands of RTTs).
    pub tail_loss_probe: bool,
    /// RFC 8985 §6 time-based detection of lost retransmissions during
    /// SACK recovery: a retransmission overtaken by later deliveries and
    /// older than SRTT plus a reordering window is sent again. RFC 6675
    /// alone cannot see such a loss and waits for the RTO.
    pub rack: bool,
    /// The pool the receive side's storage is charged to (see
    /// `tcp::memory`). The default is a pool of its own without a limit;
    /// a `Stack` puts here the one pool of `Config::memory_budget` bytes
    /// that all its connections share.
    pub memory: MemoryBudget,
    /// Where every RTT sample is counted besides the estimator (see
    /// `tcp::rtt_histogram`). The default is a histogram of its own; a
    /// `Stack` puts here the one that all its connections share and its
    /// metrics report.
    pub rtt_histogram: RttHistogram,
}

/// Unanswered keepalive probes before `ConnError::TimedOut` (Linux default).
pub const KEEPALIVE_PROBES: u32 = 9;

/// RFC 9293 §3.7.1: the send MSS when the peer's SYN carries no MSS option.
pub const DEFAULT_PEER_MSS: u16 = 536;

/// How much longer the IPv6 fixed header is than IPv4's (40 bytes against
/// 20): what an IPv6 connection's MSS gives up on the same link.
const IPV6_EXTRA_HEADER: u16 = 20;

impl TcpConfig {
    /// The configuration of a connection whose local address is `local`:
    /// for IPv6, `mss` shrunk by the longer IP header, so a full segment
    /// still fills one packet (RFC 9293 §3.7.1: the MSS is the MTU less the
    /// fixed IP and TCP headers; RFC 8200 §8.3).
    #[must_use]
    pub fn for_address(&self, local: IpAddr) -> TcpConfig {
        TcpConfig {
            mss: self.mss_for(local),
            ..self.clone()
        }
    }

    /// The MSS we advertise on a connection from `local`.
    pub fn mss_for(&self, local: IpAddr) -> u16 {
        match local {
            IpAddr::V4(_) => self.mss,
            IpAddr::V6(_) => self
                .mss
                .saturating_sub(IPV6_EXTRA_HEADER)
                .max(crate::config::MIN_MSS),
        }
    }
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            send_buffer: 1 << 20,
            recv_buffer: 1 << 20,
            window_scaling: true,
            sack: true,
            timestamps: true,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            max_retransmits: 12,
            syn_retries: 6,
            msl: Duration::from_secs(30),
            delayed_ack: Some(Duration::from_millis(40)),
            nodelay: false,
            congestion: Algorithm::Cubic,
            keepalive: None,
            max_ooo_ranges: 32,
            challenge_acks_per_sec: 10,
            tail_loss_probe: true,
            rack: true,
            memory: MemoryBudget::unlimited(),
            rtt_histogram: RttHistogram::new(),
        }
    }
}
