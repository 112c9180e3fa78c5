//! One place for every address, size and limit the stack uses, and the
//! rules a configuration must satisfy ([`Config::validate`], checked by
//! `Stack::new`).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::tcp::config::TcpConfig;

/// The stack's configuration. Every field has a documented default; the
/// bounds here are what keeps memory finite whatever arrives.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address the stack owns. Default 10.0.0.2 (the demo's contract).
    pub addr: Ipv4Addr,
    /// The stack's IPv6 address, if it has one (the demo's default is
    /// fd00::2): TCP and UDP sockets of either family share the socket
    /// table, and this address answers echo requests (`ping -6`) and
    /// Packet Too Big (`runtime::rx6`). `None`: IPv6 packets are dropped
    /// as `drop_bad_version`. Needs an `mtu` of at least 1280 (RFC 8200
    /// §5). Default `None`.
    pub addr6: Option<Ipv6Addr>,
    /// Answer for every address routed into the device, not only `addr`
    /// and `addr6` (what a VPN or tun2socks-style tool needs). A TCP
    /// listener bound to `0.0.0.0:P` or `[::]:P` then accepts connections
    /// to any destination of its family on port P, and each connection's
    /// `local_addr()` is the address that was dialled; a UDP socket on the
    /// wildcard receives datagrams to any address, tells which
    /// (`UdpSocket::recv_from_to`) and replies from it
    /// (`UdpSocket::send_from_to`); echo requests to any address are
    /// answered from it, and segments for closed ports refused from it.
    /// Broadcast, multicast, loopback and unspecified destinations are
    /// still not ours; IPv6 needs `addr6` set. Default false.
    pub any_address: bool,
    /// The largest IP packet sent or received, either family (the path
    /// MTU to a destination may be less: `pmtu`). Default 1500.
    pub mtu: usize,
    /// TTL of packets we originate (RFC 1122 §3.2.1.7). Default 64.
    pub ttl: u8,
    /// TCP connection settings: buffers, timers, options.
    pub tcp: TcpConfig,
    /// Packets read from the device per batch before sockets are serviced.
    /// Default 64; at most [`MAX_RX_BATCH`]. DoS warning: one batch holds
    /// `rx_batch * mtu` bytes.
    pub rx_batch: usize,
    /// Segments one TCP socket may queue within a batch; more are dropped
    /// and counted for that socket only (`drop_queue_full`). Default 64.
    pub socket_queue_depth: usize,
    /// Datagrams a UDP socket holds before dropping new ones. Default 256.
    /// DoS warning: up to `udp_queue_depth * 65507` bytes per socket.
    pub udp_queue_depth: usize,
    /// Connections a listener holds between SYN and `accept` (SYN-RECEIVED
    /// plus established but not yet accepted), unless it was bound with a
    /// backlog of its own (`TcpListener::bind_with_backlog`). Default 128,
    /// the backlog std's and tokio's `TcpListener::bind` ask of the kernel;
    /// at most [`MAX_ACCEPT_BACKLOG`]. SYNs beyond it are answered with SYN
    /// cookies when `syn_cookies` is on, else dropped and counted
    /// (`drop_backlog_full`).
    /// While `accept_backlog` established connections wait for `accept`,
    /// SYNs are dropped and counted even with cookies on, as Linux does:
    /// the client retries its SYN, but not the ACK that would redeem a
    /// cookie (see `tcp::listener`).
    ///
    /// DoS warning: a listener holds at most `accept_backlog` connections
    /// made from SYNs (each may grow its buffers up to `tcp.send_buffer +
    /// tcp.recv_buffer` as data flows; a half-open one holds none), and
    /// connections completed by a valid cookie while it holds fewer than
    /// `2 * accept_backlog` in all. A SYN flood beyond the backlog
    /// allocates nothing.
    pub accept_backlog: usize,
    /// Answer SYNs statelessly with SYN cookies (RFC 4987 §3.6) when a
    /// listener's backlog is full, so spoofed SYNs cannot lock real clients
    /// out. Default true, like Linux's `tcp_syncookies = 1`. Connections
    /// opened by cookie lose window scaling, SACK and timestamps (see
    /// `tcp::syncookie`).
    pub syn_cookies: bool,
    /// Live TCP connections in the table at once (not counting retired
    /// ones, below); at the limit new ones are refused
    /// (`drop_table_full`). Default 65,536.
    pub max_connections: usize,
    /// Retired TCP connections kept besides: those in TIME-WAIT and those
    /// the application dropped that are still closing (orphans). Past
    /// this the oldest goes first (TIME-WAIT ends silently, an orphan is
    /// reset; `tcp_time_wait_evicted`, `tcp_orphans_evicted`), so peers
    /// that close fast cannot fill the table for live connections, as
    /// Linux's `tcp_max_tw_buckets`. The table holds at most
    /// `max_connections + max_retired` connections. At least 1. Default
    /// 16,384.
    pub max_retired: usize,
    /// How long a connection the application has dropped may take to
    /// finish closing before it is reset: an orphan in FIN-WAIT-2 whose
    /// peer never sends its FIN, or one stuck behind a zero window, would
    /// otherwise hold its buffers forever. Default 60 s, like Linux's
    /// `tcp_fin_timeout`.
    pub orphan_timeout: Duration,
    /// ICMP error messages sent per second (RFC 1122 §3.2.2 and RFC 1812
    /// §4.3.2.8 ask for a limit). Default 100, with an equal burst.
    pub icmp_errors_per_sec: u32,
    /// RSTs sent per second for segments that no connection owns (closed
    /// ports, stray ACKs to a listener), with an equal burst; the rest are
    /// dropped and counted (`tcp_rst_rate_limited`). A port scan or a
    /// spoofed flood then cannot turn the stack into a RST source, as
    /// Linux's ICMP rate limit does for its errors. Default 1,000.
    pub rsts_per_sec: u32,
    /// Panics on the stack's RX and timer threads that are caught, logged
    /// and counted (`thread_panics`) while the threads go on, each costing
    /// only the batch and the connection it hit (reset). The one that
    /// reaches this number shuts the stack down, so every waiting call
    /// fails rather than a broken stack limping on. At least 1. Default 16.
    pub max_thread_panics: u32,
    /// Datagrams under fragment reassembly at once, IPv4 (RFC 791) and
    /// IPv6 (RFC 8200 §4.5) together (`crate::reassembly`). Past it the oldest incomplete one is dropped
    /// (`ip_reasm_evicted`), so fragments that never complete cannot lock
    /// out real fragmented traffic. 0 turns reassembly off: every fragment
    /// is dropped and counted (`drop_fragmented`). Default 64.
    pub reassembly_max_datagrams: usize,
    /// Bytes charged to the datagrams under reassembly (their buffers and
    /// bookkeeping; a datagram in 1480-byte fragments is charged about its
    /// length). Past it the oldest goes, as for `reassembly_max_datagrams`.
    /// At least [`MIN_REASSEMBLY_BYTES`], so the largest datagram of
    /// either family fits.
    /// Default 1 MiB.
    ///
    /// A cap within [`memory_budget`](Self::memory_budget), not beside
    /// it: the same bytes are charged to the budget, shared with TCP's
    /// receive storage. When the budget refuses them the oldest datagram
    /// goes too, and a fragment that still finds no room is dropped
    /// (`ip_reasm_memory_drops`). This cap keeps fragments, which need
    /// never complete, from taking more of the budget than it.
    ///
    /// DoS warning: this, plus the reassembled datagram being delivered,
    /// is all the memory fragments can take.
    pub reassembly_max_bytes: usize,
    /// How long a datagram's fragments have to arrive, from the first one
    /// to reach us (RFC 791's reassembly timer; RFC 1122 §3.3.2 suggests
    /// 60 s to 120 s, Linux uses 30 s). On expiry the fragments are
    /// dropped (`ip_reasm_timeout`) and, when the first fragment was among
    /// them, ICMP Time Exceeded is sent (`icmp_time_exceeded_tx`). Default
    /// 30 s. IPv4 only: IPv6 fragments have the fixed
    /// [`REASSEMBLY_TIMEOUT_V6`].
    pub reassembly_timeout: Duration,
    /// Bytes of receive storage all TCP connections together may hold:
    /// in-order data waiting for readers and out-of-order data waiting
    /// for its hole, charged by the storage it occupies (rings, and 4 KiB
    /// chunks for out-of-order data; see `tcp::memory`). When a charge
    /// would pass it, out-of-order data is pruned first, then drained
    /// rings give their storage back (`tcp_ooo_pruned`,
    /// `tcp_rings_shrunk`), and what still does not fit is dropped
    /// (`tcp_memory_drops`) while the windows we advertise close instead
    /// of promising room. One connection is bounded besides by its
    /// window (`tcp.recv_buffer`). At least [`MIN_MEMORY_BUDGET`] (64
    /// KiB); a budget below one window limits what that window can carry.
    /// Fragments under reassembly are charged here too, up to
    /// `reassembly_max_bytes` of it (`ip_reasm_memory_drops` counts those
    /// it had no room for); a budget below [`MIN_REASSEMBLY_BYTES`], or
    /// one TCP holds nearly all of, cannot reassemble the largest
    /// datagrams. Default 256 MiB.
    ///
    /// DoS warning: send buffers are not charged here; the application
    /// fills them, up to `tcp.send_buffer` per connection.
    pub memory_budget: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: Ipv4Addr::new(10, 0, 0, 2),
            addr6: None,
            any_address: false,
            mtu: 1500,
            ttl: 64,
            tcp: TcpConfig::default(),
            rx_batch: 64,
            socket_queue_depth: 64,
            udp_queue_depth: 256,
            accept_backlog: 128,
            syn_cookies: true,
            max_connections: 65_536,
            max_retired: 16_384,
            orphan_timeout: Duration::from_secs(60),
            icmp_errors_per_sec: 100,
            rsts_per_sec: 1000,
            max_thread_panics: 16,
            reassembly_max_datagrams: 64,
            reassembly_max_bytes: 1 << 20,
            reassembly_timeout: Duration::from_secs(30),
            memory_budget: 256 << 20,
        }
    }
}

/// The least `Config::reassembly_max_bytes` when reassembly is on: what
/// the largest datagram can be charged, in the smallest fragments (see
/// `crate::reassembly::datagram_charge`). The largest is an IPv6 one (a
/// 65,535-byte payload behind the fixed and fragment headers), longer
/// than the largest IPv4 datagram (65,535 bytes in all).
pub const MIN_REASSEMBLY_BYTES: usize =
    crate::reassembly::datagram_charge(crate::wire::ipv6::MAX_REASSEMBLED_LEN);

/// How long an IPv6 datagram's fragments have to arrive, from the first
/// one to reach us: RFC 8200 §4.5 fixes it ("within 60 seconds of the
/// reception of the first-arriving fragment"), so it is not configurable.
/// On expiry the fragments are dropped (`ip_reasm_timeout`) and, when the
/// first fragment was among them, ICMPv6 Time Exceeded code 1 is sent
/// (`icmp_time_exceeded_tx`).
pub const REASSEMBLY_TIMEOUT_V6: Duration = Duration::from_secs(60);

/// The longest `Config::reassembly_timeout`: RFC 1122 §3.3.2 names 60 s
/// to 120 s as the range of a reasonable timeout; a longer one only holds
/// memory for fragments that will not come.
pub const MAX_REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(120);

/// The largest accept backlog, of `Config::accept_backlog` or of one
/// listener (`TcpListener::bind_with_backlog`, which clamps to it). Each
/// queued connection may hold buffers until it is accepted, and SYN
/// cookies take over only once the backlog is full, so an unbounded
/// backlog would be no bound at all. Linux caps `listen(2)` the same way,
/// at `net.core.somaxconn` (4096 by default).
pub const MAX_ACCEPT_BACKLOG: usize = 65_535;

/// The most packets one RX batch may hold: the RX thread keeps a
/// segment's index in its batch as a `u16`.
pub const MAX_RX_BATCH: usize = 1 << 16;

/// The smallest MTU of an IPv4 link (RFC 791: "Every internet module must
/// be able to forward a datagram of 68 octets without further
/// fragmentation").
pub const MIN_MTU: usize = 68;

/// The largest IPv4 packet: the total length field has 16 bits (RFC 791).
pub const MAX_MTU: usize = 0xffff;

/// IPv4 and TCP headers without options: what the MTU holds besides a
/// segment of `tcp.mss` bytes (RFC 9293 §3.7.1).
const TCP_IPV4_HEADERS: usize = 40;

/// The smallest MSS we advertise: the connection never sends segments
/// smaller than 64 bytes whatever the peer announces, so a smaller MSS of
/// ours could not be honoured by our own sender either.
pub const MIN_MSS: u16 = 64;

/// RFC 7323 §2.3: with the largest shift (14) a window of at most 2^30
/// bytes can be advertised; a larger receive buffer could never be used.
pub const MAX_RECV_BUFFER: usize = 1 << 30;

/// The smallest [`Config::memory_budget`]: one window of 64 KiB, the
/// largest a window field carries unscaled.
pub const MIN_MEMORY_BUDGET: usize = 64 << 10;

/// RFC 1122 §4.2.3.2: an ACK "MUST NOT be excessively delayed; in
/// particular, the delay MUST be less than 0.5 seconds".
pub const MAX_DELAYED_ACK: Duration = Duration::from_millis(500);

impl Config {
    /// The default configuration for `addr`.
    pub fn with_addr(addr: Ipv4Addr) -> Config {
        Config {
            addr,
            ..Config::default()
        }
    }

    /// This configuration with `mtu`, and the MSS we advertise following
    /// it (MTU less the IPv4 and TCP headers, RFC 9293 §3.7.1), so a full
    /// segment fills one packet.
    #[must_use]
    pub fn with_mtu(mut self, mtu: usize) -> Config {
        self.mtu = mtu;
        let mss = mtu.saturating_sub(TCP_IPV4_HEADERS);
        self.tcp.mss = u16::try_from(mss).unwrap_or(u16::MAX);
        self
    }

    /// Checks every field (and those of `tcp`) against the rules the
    /// stack relies on. `Stack::new` calls it; a stack never runs with a
    /// configuration that fails it.
    ///
    /// # Errors
    ///
    /// The first field that breaks a rule, with its value and the rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let addr = self.addr;
        if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
            return Err(ConfigError::new(
                "addr",
                addr,
                "is not a unicast address: the stack must own a host address (RFC 1122 §3.2.1.3)",
            ));
        }
        if let Some(addr6) = self.addr6 {
            if addr6.is_unspecified() || addr6.is_multicast() || addr6.is_loopback() {
                return Err(ConfigError::new(
                    "addr6",
                    addr6,
                    "is not a unicast address: the stack must own a host address (RFC 4291 §2.5)",
                ));
            }
            if self.mtu < crate::wire::ipv6::MIN_MTU {
                return Err(ConfigError::new(
                    "mtu",
                    self.mtu,
                    "is too small for IPv6 (addr6 is set): every IPv6 link carries 1280 bytes (RFC 8200 §5)",
                ));
            }
        }
        if self.mtu < MIN_MTU {
            return Err(ConfigError::new(
                "mtu",
                self.mtu,
                format!("is too small: an IPv4 link carries at least {MIN_MTU} bytes (RFC 791)"),
            ));
        }
        if self.mtu > MAX_MTU {
            return Err(ConfigError::new(
                "mtu",
                self.mtu,
                format!("is too large: an IPv4 packet has at most {MAX_MTU} bytes (RFC 791)"),
            ));
        }
        if self.max_thread_panics == 0 {
            return Err(ConfigError::new(
                "max_thread_panics",
                self.max_thread_panics,
                "is zero: at least the first panic must shut the stack down",
            ));
        }
        if self.ttl == 0 {
            return Err(ConfigError::new(
                "ttl",
                self.ttl,
                "is zero: a host must not send a datagram with a TTL of 0 (RFC 1122 §3.2.1.7)",
            ));
        }
        if self.rx_batch == 0 {
            return Err(ConfigError::new(
                "rx_batch",
                self.rx_batch,
                "is zero: a batch holds at least 1 packet",
            ));
        }
        if self.rx_batch > MAX_RX_BATCH {
            return Err(ConfigError::new(
                "rx_batch",
                self.rx_batch,
                format!("is too large: at most {MAX_RX_BATCH} packets per batch"),
            ));
        }
        at_least_one("socket_queue_depth", self.socket_queue_depth, "segments")?;
        at_least_one("udp_queue_depth", self.udp_queue_depth, "datagrams")?;
        at_least_one("accept_backlog", self.accept_backlog, "connections")?;
        if self.accept_backlog > MAX_ACCEPT_BACKLOG {
            return Err(ConfigError::new(
                "accept_backlog",
                self.accept_backlog,
                format!("is too large: at most {MAX_ACCEPT_BACKLOG} connections"),
            ));
        }
        at_least_one("max_connections", self.max_connections, "connections")?;
        at_least_one("max_retired", self.max_retired, "connections")?;
        if self.memory_budget < MIN_MEMORY_BUDGET {
            return Err(ConfigError::new(
                "memory_budget",
                self.memory_budget,
                format!(
                    "is too small: at least {MIN_MEMORY_BUDGET} bytes, so a connection can hold \
                     a window's worth of data (RFC 9293 §3.8.6)"
                ),
            ));
        }
        if self.orphan_timeout.is_zero() {
            return Err(ConfigError::new(
                "orphan_timeout",
                format_args!("{:?}", self.orphan_timeout),
                "is zero: a dropped connection would be reset before it could close",
            ));
        }
        self.validate_reassembly()?;
        self.validate_tcp()
    }

    fn validate_reassembly(&self) -> Result<(), ConfigError> {
        if self.reassembly_max_datagrams == 0 {
            // Reassembly is off: the other two do not matter.
            return Ok(());
        }
        if self.reassembly_max_bytes < MIN_REASSEMBLY_BYTES {
            return Err(ConfigError::new(
                "reassembly_max_bytes",
                self.reassembly_max_bytes,
                format!(
                    "is too small: at least {MIN_REASSEMBLY_BYTES} bytes, so the largest \
                     datagram (an IPv6 payload of 65,535 bytes) can be reassembled (or set reassembly_max_datagrams = 0 to turn \
                     reassembly off)"
                ),
            ));
        }
        let timeout = self.reassembly_timeout;
        if timeout.is_zero() {
            return Err(ConfigError::new(
                "reassembly_timeout",
                format_args!("{timeout:?}"),
                "is zero: fragments would expire before the next one could arrive",
            ));
        }
        if timeout > MAX_REASSEMBLY_TIMEOUT {
            return Err(ConfigError::new(
                "reassembly_timeout",
                format_args!("{timeout:?}"),
                format!(
                    "is too long: at most {MAX_REASSEMBLY_TIMEOUT:?} (RFC 1122 §3.3.2 \
                     suggests 60 s to 120 s)"
                ),
            ));
        }
        Ok(())
    }

    fn validate_tcp(&self) -> Result<(), ConfigError> {
        let tcp = &self.tcp;
        if tcp.mss < MIN_MSS {
            return Err(ConfigError::new(
                "tcp.mss",
                tcp.mss,
                format!("is too small: at least {MIN_MSS} bytes"),
            ));
        }
        let fits = self.mtu.saturating_sub(TCP_IPV4_HEADERS);
        if usize::from(tcp.mss) > fits {
            return Err(ConfigError::new(
                "tcp.mss",
                tcp.mss,
                format!(
                    "is too large for Config::mtu = {}: a segment of at most {fits} bytes \
                     fits behind the 40 bytes of IPv4 and TCP headers (RFC 9293 §3.7.1)",
                    self.mtu
                ),
            ));
        }
        at_least_one("tcp.send_buffer", tcp.send_buffer, "bytes")?;
        at_least_one("tcp.recv_buffer", tcp.recv_buffer, "bytes")?;
        if tcp.recv_buffer > MAX_RECV_BUFFER {
            return Err(ConfigError::new(
                "tcp.recv_buffer",
                tcp.recv_buffer,
                format!(
                    "is too large: at most {MAX_RECV_BUFFER} bytes can be advertised (RFC 7323 §2.3)"
                ),
            ));
        }
        for (field, value) in [
            ("tcp.initial_rto", tcp.initial_rto),
            ("tcp.min_rto", tcp.min_rto),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(
                    field,
                    format_args!("{value:?}"),
                    "is zero: a retransmission timer must not expire at once (RFC 6298 §2)",
                ));
            }
        }
        if tcp.min_rto > tcp.max_rto {
            return Err(ConfigError::new(
                "tcp.min_rto",
                format_args!("{:?}", tcp.min_rto),
                format!(
                    "is above Config::tcp.max_rto = {:?}: the bounds of the RTO are reversed",
                    tcp.max_rto
                ),
            ));
        }
        if let Some(delay) = tcp.delayed_ack {
            if delay >= MAX_DELAYED_ACK {
                return Err(ConfigError::new(
                    "tcp.delayed_ack",
                    format_args!("{delay:?}"),
                    "is too long: an ACK must be delayed less than 500 ms (RFC 1122 §4.2.3.2)",
                ));
            }
        }
        if tcp.keepalive.is_some_and(|idle| idle.is_zero()) {
            return Err(ConfigError::new(
                "tcp.keepalive",
                "Some(0ns)",
                "is zero: keepalive probes need an idle time (use None to turn them off)",
            ));
        }
        Ok(())
    }
}

fn at_least_one(field: &'static str, value: usize, unit: &str) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(
            field,
            value,
            format!("is zero: at least 1 of {unit}"),
        ));
    }
    Ok(())
}

/// A [`Config`] field that breaks a rule: which field, its value, and why.
/// Converts into an `io::Error` of kind `InvalidInput` with the same text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    value: String,
    reason: String,
}

impl ConfigError {
    fn new(
        field: &'static str,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// The field's path below `Config`, e.g. `"rx_batch"` or `"tcp.mss"`.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Config::{} = {} {}", self.field, self.value, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for io::Error {
    fn from(e: ConfigError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `change` to the default configuration and returns the
    /// error's field and message.
    #[track_caller]
    fn rejected(change: impl FnOnce(&mut Config)) -> (&'static str, String) {
        let mut c = Config::default();
        change(&mut c);
        let e = c.validate().expect_err("the change should be rejected");
        (e.field(), e.to_string())
    }

    #[track_caller]
    fn accepted(change: impl FnOnce(&mut Config)) {
        let mut c = Config::default();
        change(&mut c);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn default_is_valid() {
        accepted(|_| {});
        assert_eq!(
            Config::with_addr(Ipv4Addr::new(10, 9, 0, 2)).validate(),
            Ok(())
        );
    }

    #[test]
    fn addr_must_be_unicast() {
        for bad in [
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(224, 0, 0, 1),
        ] {
            assert_eq!(rejected(|c| c.addr = bad).0, "addr");
        }
        accepted(|c| c.addr = Ipv4Addr::new(127, 0, 0, 2));
    }

    #[test]
    fn mtu_bounds_are_ipv4s() {
        let (field, msg) = rejected(|c| {
            c.mtu = 67;
            c.tcp.mss = MIN_MSS;
        });
        assert_eq!(field, "mtu");
        assert!(msg.starts_with("Config::mtu = 67 is too small"), "{msg}");
        assert_eq!(rejected(|c| c.mtu = 65_536).0, "mtu");
        // The smallest MTU that carries our smallest segment.
        accepted(|c| {
            c.mtu = usize::from(MIN_MSS) + 40;
            c.tcp.mss = MIN_MSS;
        });
        accepted(|c| c.mtu = 65_535);
    }

    #[test]
    fn ttl_must_not_be_zero() {
        assert_eq!(rejected(|c| c.ttl = 0).0, "ttl");
        accepted(|c| c.ttl = 1);
    }

    #[test]
    fn rx_batch_fits_a_u16_index() {
        let (field, msg) = rejected(|c| c.rx_batch = 70_000);
        assert_eq!(field, "rx_batch");
        assert_eq!(
            msg,
            "Config::rx_batch = 70000 is too large: at most 65536 packets per batch"
        );
        assert_eq!(rejected(|c| c.rx_batch = MAX_RX_BATCH + 1).0, "rx_batch");
        assert_eq!(rejected(|c| c.rx_batch = 0).0, "rx_batch");
        accepted(|c| c.rx_batch = MAX_RX_BATCH);
        accepted(|c| c.rx_batch = 1);
    }

    #[test]
    fn accept_backlog_is_bounded() {
        let (field, msg) = rejected(|c| c.accept_backlog = MAX_ACCEPT_BACKLOG + 1);
        assert_eq!(field, "accept_backlog");
        assert_eq!(
            msg,
            "Config::accept_backlog = 65536 is too large: at most 65535 connections"
        );
        accepted(|c| c.accept_backlog = MAX_ACCEPT_BACKLOG);
    }

    #[test]
    fn queues_and_limits_hold_at_least_one() {
        assert_eq!(
            rejected(|c| c.socket_queue_depth = 0).0,
            "socket_queue_depth"
        );
        assert_eq!(rejected(|c| c.udp_queue_depth = 0).0, "udp_queue_depth");
        assert_eq!(rejected(|c| c.accept_backlog = 0).0, "accept_backlog");
        assert_eq!(rejected(|c| c.max_retired = 0).0, "max_retired");
        assert_eq!(rejected(|c| c.max_connections = 0).0, "max_connections");
        accepted(|c| {
            c.socket_queue_depth = 1;
            c.udp_queue_depth = 1;
            c.accept_backlog = 1;
            c.max_connections = 1;
        });
    }

    #[test]
    fn memory_budget_holds_a_window() {
        let (field, msg) = rejected(|c| c.memory_budget = MIN_MEMORY_BUDGET - 1);
        assert_eq!(field, "memory_budget");
        assert_eq!(
            msg,
            "Config::memory_budget = 65535 is too small: at least 65536 bytes, so a \
             connection can hold a window's worth of data (RFC 9293 §3.8.6)"
        );
        assert_eq!(rejected(|c| c.memory_budget = 0).0, "memory_budget");
        accepted(|c| c.memory_budget = MIN_MEMORY_BUDGET);
        accepted(|c| c.memory_budget = usize::MAX);
    }

    #[test]
    fn orphan_timeout_must_not_be_zero() {
        assert_eq!(
            rejected(|c| c.orphan_timeout = Duration::ZERO).0,
            "orphan_timeout"
        );
        accepted(|c| c.orphan_timeout = Duration::from_millis(1));
    }

    #[test]
    fn reassembly_bounds_must_let_the_largest_datagram_through() {
        let (field, msg) = rejected(|c| c.reassembly_max_bytes = 65_535);
        assert_eq!(field, "reassembly_max_bytes");
        assert!(msg.contains("IPv6 payload of 65,535 bytes"), "{msg}");
        accepted(|c| c.reassembly_max_bytes = MIN_REASSEMBLY_BYTES);
        // The largest IPv4 datagram's charge is not enough: an IPv6 one is
        // longer.
        let v4 = crate::reassembly::datagram_charge(crate::wire::ipv4::MAX_PACKET_LEN);
        assert_eq!(
            rejected(|c| c.reassembly_max_bytes = v4).0,
            "reassembly_max_bytes"
        );
        assert!(MIN_REASSEMBLY_BYTES <= Config::default().reassembly_max_bytes);
        let (field, msg) = rejected(|c| c.reassembly_timeout = Duration::ZERO);
        assert_eq!(field, "reassembly_timeout");
        assert!(
            msg.starts_with("Config::reassembly_timeout = 0ns is zero"),
            "{msg}"
        );
        let (field, msg) = rejected(|c| c.reassembly_timeout = Duration::from_secs(121));
        assert_eq!(field, "reassembly_timeout");
        assert!(msg.contains("at most 120s"), "{msg}");
        accepted(|c| c.reassembly_timeout = Duration::from_secs(120));
        // Off: the other bounds are not looked at.
        accepted(|c| {
            c.reassembly_max_datagrams = 0;
            c.reassembly_max_bytes = 0;
            c.reassembly_timeout = Duration::ZERO;
        });
    }

    #[test]
    fn mss_fits_the_mtu() {
        let (field, msg) = rejected(|c| c.mtu = 1280);
        assert_eq!(field, "tcp.mss");
        assert!(msg.contains("at most 1240 bytes"), "{msg}");
        accepted(|c| {
            c.mtu = 1280;
            c.tcp.mss = 1240;
        });
        assert_eq!(rejected(|c| c.tcp.mss = MIN_MSS - 1).0, "tcp.mss");
        assert_eq!(rejected(|c| c.tcp.mss = 0).0, "tcp.mss");
    }

    #[test]
    fn buffers_are_nonempty_and_advertisable() {
        assert_eq!(rejected(|c| c.tcp.send_buffer = 0).0, "tcp.send_buffer");
        assert_eq!(rejected(|c| c.tcp.recv_buffer = 0).0, "tcp.recv_buffer");
        assert_eq!(
            rejected(|c| c.tcp.recv_buffer = MAX_RECV_BUFFER + 1).0,
            "tcp.recv_buffer"
        );
        accepted(|c| c.tcp.recv_buffer = MAX_RECV_BUFFER);
    }

    #[test]
    fn rto_bounds_are_positive_and_ordered() {
        assert_eq!(
            rejected(|c| c.tcp.initial_rto = Duration::ZERO).0,
            "tcp.initial_rto"
        );
        assert_eq!(
            rejected(|c| c.tcp.min_rto = Duration::ZERO).0,
            "tcp.min_rto"
        );
        let (field, msg) = rejected(|c| c.tcp.max_rto = Duration::from_millis(100));
        assert_eq!(field, "tcp.min_rto");
        assert!(msg.contains("max_rto = 100ms"), "{msg}");
        accepted(|c| c.tcp.max_rto = c.tcp.min_rto);
    }

    #[test]
    fn delayed_ack_is_below_half_a_second() {
        assert_eq!(
            rejected(|c| c.tcp.delayed_ack = Some(MAX_DELAYED_ACK)).0,
            "tcp.delayed_ack"
        );
        accepted(|c| c.tcp.delayed_ack = Some(Duration::from_millis(499)));
        accepted(|c| c.tcp.delayed_ack = None);
    }

    #[test]
    fn keepalive_needs_an_idle_time() {
        assert_eq!(
            rejected(|c| c.tcp.keepalive = Some(Duration::ZERO)).0,
            "tcp.keepalive"
        );
        accepted(|c| c.tcp.keepalive = Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_error_is_invalid_input_with_the_message() {
        let c = Config {
            rx_batch: 70_000,
            ..Config::default()
        };
        let e: io::Error = c.validate().unwrap_err().into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().starts_with("Config::rx_batch = 70000"), "{e}");
    }

    #[test]
    fn with_mtu_moves_the_mss_with_it() {
        let c = Config::default().with_mtu(1400);
        assert_eq!((c.mtu, c.tcp.mss), (1400, 1360));
        assert!(c.validate().is_ok());
        let jumbo = Config::default().with_mtu(9000);
        assert_eq!(jumbo.tcp.mss, 8960);
        assert!(jumbo.validate().is_ok());
    }
}
