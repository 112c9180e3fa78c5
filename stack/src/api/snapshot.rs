//! A snapshot of the socket table, for display (`/sockets`), and the
//! count of its sockets by state, for metrics.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::runtime::socket::Entry;
use crate::runtime::Stack;
use crate::table::Protocol;
use crate::tcp::connection::info::TcpInfo;

/// One socket as seen at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketInfo {
    pub protocol: Protocol,
    pub local: SocketAddr,
    /// The peer of a connection; `None` for listeners and UDP sockets.
    pub remote: Option<SocketAddr>,
    /// RFC 9293 state name for TCP ("ESTABLISHED", "LISTEN"); "BOUND" for
    /// UDP.
    pub state: String,
    /// Bytes (TCP connection), connections (listener: waiting for
    /// accept) or datagrams (UDP) waiting to be read.
    pub recv_queue: usize,
    /// Bytes not yet acknowledged by the peer (TCP connection); listeners
    /// report their half-open connections here, UDP 0.
    pub send_queue: usize,
    /// A TCP connection's transport state (RTT, congestion window, ...);
    /// `None` for listeners and UDP sockets.
    pub tcp: Option<TcpInfo>,
}

impl Stack {
    /// Every socket in the table, sorted by protocol, local then remote
    /// address.
    pub fn sockets(&self) -> Vec<SocketInfo> {
        let now = self.inner.now();
        let mut out: Vec<SocketInfo> = self
            .inner
            .entries()
            .into_iter()
            .map(|entry| match entry {
                Entry::Tcp(sock) => {
                    let st = sock.state.lock();
                    SocketInfo {
                        protocol: Protocol::Tcp,
                        local: sock.tuple.local,
                        remote: Some(sock.tuple.remote),
                        state: st.conn.state().to_string(),
                        recv_queue: st.conn.recv_queue(),
                        send_queue: st.conn.send_queue(),
                        tcp: Some(st.conn.info(now)),
                    }
                }
                Entry::Listener(l) => {
                    let ls = l.state.lock();
                    SocketInfo {
                        protocol: Protocol::Tcp,
                        local: l.key.socket_addr(),
                        remote: None,
                        state: "LISTEN".to_string(),
                        recv_queue: ls.tcp.queued(),
                        send_queue: ls.tcp.half_open(),
                        tcp: None,
                    }
                }
                Entry::Udp(u) => SocketInfo {
                    protocol: Protocol::Udp,
                    local: u.key.socket_addr(),
                    remote: None,
                    state: "BOUND".to_string(),
                    recv_queue: u.queue.lock().datagrams.len(),
                    send_queue: 0,
                    tcp: None,
                },
            })
            .collect();
        out.sort_by_key(|s| (s.protocol.as_str(), s.local, s.remote));
        out
    }

    /// How many sockets the table holds of each protocol and state (the
    /// names of [`SocketInfo`]), sorted: what [`sockets`](Self::sockets)
    /// would count, without the addresses and TCP info of each.
    pub fn socket_counts(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        let mut counts = BTreeMap::new();
        for entry in self.inner.entries() {
            let key = match entry {
                Entry::Tcp(sock) => (Protocol::Tcp, sock.state.lock().conn.state().as_str()),
                Entry::Listener(_) => (Protocol::Tcp, "LISTEN"),
                Entry::Udp(_) => (Protocol::Udp, "BOUND"),
            };
            *counts.entry((key.0.as_str(), key.1)).or_default() += 1;
        }
        counts
    }
}
