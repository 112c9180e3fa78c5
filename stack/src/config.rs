//! One place for every address, size and limit the stack uses.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::tcp::config::TcpConfig;

/// The stack's configuration. Every field has a documented default; the
/// bounds here are what keeps memory finite whatever arrives.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address the stack owns. Default 10.0.0.2 (the demo's contract).
    pub addr: Ipv4Addr,
    /// The largest IPv4 packet sent or received. Default 1500.
    pub mtu: usize,
    /// TTL of packets we originate (RFC 1122 §3.2.1.7). Default 64.
    pub ttl: u8,
    /// TCP connection settings: buffers, timers, options.
    pub tcp: TcpConfig,
    /// Packets read from the device per batch before sockets are serviced.
    /// Default 64. DoS warning: one batch holds `rx_batch * mtu` bytes.
    pub rx_batch: usize,
    /// Segments one TCP socket may queue within a batch; more are dropped
    /// and counted for that socket only (`drop_queue_full`). Default 64.
    pub socket_queue_depth: usize,
    /// Datagrams a UDP socket holds before dropping new ones. Default 256.
    /// DoS warning: up to `udp_queue_depth * 65507` bytes per socket.
    pub udp_queue_depth: usize,
    /// Connections a listener holds between SYN and `accept` (SYN-RECEIVED
    /// plus established but not yet accepted). Default 128, like Linux's
    /// `somaxconn`. SYNs beyond it are answered with SYN cookies when
    /// `syn_cookies` is on, else dropped and counted (`drop_backlog_full`).
    ///
    /// DoS warning: a listener holds at most `accept_backlog` connections
    /// made from SYNs (each may grow its buffers up to `tcp.send_buffer +
    /// tcp.recv_buffer` as data flows; a half-open one holds none), plus at most
    /// `accept_backlog` more completed by a valid cookie while its accept
    /// queue has room: `2 * accept_backlog` in all. A SYN flood beyond the
    /// backlog allocates nothing.
    pub accept_backlog: usize,
    /// Answer SYNs statelessly with SYN cookies (RFC 4987 §3.6) when a
    /// listener's backlog is full, so spoofed SYNs cannot lock real clients
    /// out. Default true, like Linux's `tcp_syncookies = 1`. Connections
    /// opened by cookie lose window scaling, SACK and timestamps (see
    /// `tcp::syncookie`).
    pub syn_cookies: bool,
    /// TCP connections in the table at once. Default 65,536.
    pub max_connections: usize,
    /// How long a connection the application has dropped may take to
    /// finish closing before it is reset: an orphan in FIN-WAIT-2 whose
    /// peer never sends its FIN, or one stuck behind a zero window, would
    /// otherwise hold its buffers forever. Default 60 s, like Linux's
    /// `tcp_fin_timeout`.
    pub orphan_timeout: Duration,
    /// ICMP error messages sent per second (RFC 1122 §3.2.2 and RFC 1812
    /// §4.3.2.8 ask for a limit). Default 100, with an equal burst.
    pub icmp_errors_per_sec: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: Ipv4Addr::new(10, 0, 0, 2),
            mtu: 1500,
            ttl: 64,
            tcp: TcpConfig::default(),
            rx_batch: 64,
            socket_queue_depth: 64,
            udp_queue_depth: 256,
            accept_backlog: 128,
            syn_cookies: true,
            max_connections: 65_536,
            orphan_timeout: Duration::from_secs(60),
            icmp_errors_per_sec: 100,
        }
    }
}

impl Config {
    /// The default configuration for `addr`.
    pub fn with_addr(addr: Ipv4Addr) -> Config {
        Config {
            addr,
            ..Config::default()
        }
    }
}
