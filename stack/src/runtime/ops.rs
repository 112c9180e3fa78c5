//! What the API asks of the runtime, in sockets: open a connection, listen,
//! bind a UDP port, send a datagram, let go of a socket.
//!
//! The API (`api/`) speaks only through these calls and the sockets they
//! return; it never builds a connection, picks an ISN or knows a header
//! size. Addresses are std's `SocketAddr`, IPv4 or IPv6: a socket is of
//! one family, the family of the address it was bound or connected to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::stats::bump;
use crate::table::{BindError, ListenKey};
use crate::tcp::connection::Connection;
use crate::tcp::listener::{self, ListenConfig};
use crate::wire::udp::UdpRepr;
use crate::wire::{ipv4, ipv6, udp};

use super::socket::{Entry, Listener, TcpSocket, UdpSocket};
use super::{too_big, tx, Inner};

/// Why a socket could not be opened or bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The socket table refused: the port is taken, no ephemeral port is
    /// free, or the table is full.
    Bind(BindError),
    /// The local address is not one this stack owns.
    NotOurAddress(SocketAddr),
    /// A connection to an IPv6 address, and the stack has none
    /// (`Config::addr6`) to send from.
    NoIpv6Address(SocketAddr),
    /// The stack was shut down.
    ShutDown,
}

impl From<BindError> for OpenError {
    fn from(e: BindError) -> OpenError {
        OpenError::Bind(e)
    }
}

/// Why a datagram was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendToError {
    /// It does not fit in one IP datagram, even fragmented: `len` bytes
    /// given, at most `max` fit (65,507 over IPv4, 65,527 over IPv6).
    TooLong { len: usize, max: usize },
    /// The destination is of the other family than the socket (an IPv4
    /// socket cannot reach an IPv6 address, nor the other way round).
    WrongFamily(SocketAddr),
    /// The source asked for is not an address the stack answers for.
    NotOurAddress(IpAddr),
}

impl fmt::Display for SendToError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendToError::TooLong { len, max } => write!(
                f,
                "datagram of {len} bytes exceeds the {max} that fit in an IP datagram"
            ),
            SendToError::NotOurAddress(ip) => write!(
                f,
                "{ip} is not an address this stack answers for (see Config::any_address)"
            ),
            SendToError::WrongFamily(to) => write!(
                f,
                "{to} is of the other address family than this socket: bind one of its family"
            ),
        }
    }
}

impl Inner {
    /// Active open to `remote` from this stack's address of its family
    /// and an ephemeral port the table picks: the connection is stored in
    /// SYN-SENT and its SYN sent. The caller waits on the socket for the
    /// outcome.
    pub(crate) fn connect(&self, remote: SocketAddr) -> Result<Arc<TcpSocket>, OpenError> {
        if self.is_shut_down() {
            return Err(OpenError::ShutDown);
        }
        let remote = crate::table::endpoint(remote);
        let local_ip = self
            .source_for(remote.ip())
            .ok_or(OpenError::NoIpv6Address(remote))?;
        if !self.retired.make_room(self) {
            return Err(OpenError::Bind(BindError::TableFull));
        }
        let now = self.now();
        let mut made = None;
        self.table
            .write()
            .insert_ephemeral(local_ip, remote, |tuple| {
                let iss = self.isn.isn(now, tuple.local, tuple.remote);
                let mut conn = Connection::connect(now, tuple.local, remote, iss, &self.config.tcp);
                conn.set_max_segment_payload(tx::max_segment_payload(self, local_ip));
                too_big::cap_new(self, &mut conn, now);
                let sock = Arc::new(TcpSocket::new(conn, None));
                made = Some(Arc::clone(&sock));
                Entry::Tcp(sock)
            })?;
        // invariant: `insert_ephemeral` calls the closure exactly once when
        // it returns Ok.
        let Some(sock) = made else {
            return Err(OpenError::Bind(BindError::TableFull));
        };
        bump(&self.stats.tcp_active_opens);
        self.finish_activity(&sock, sock.state.lock());
        Ok(sock)
    }

    /// Listens on `local`: SYNs to it open connections into the returned
    /// listener's accept queue, at most `backlog` at once
    /// (`Config::accept_backlog` when `None`).
    pub(crate) fn listen(
        &self,
        local: SocketAddr,
        backlog: Option<usize>,
    ) -> Result<Arc<Listener>, OpenError> {
        let key = self.local_key(local)?;
        let tcp = listener::Listener::new(
            ListenConfig {
                backlog: backlog.unwrap_or(self.config.accept_backlog),
                syn_cookies: self.config.syn_cookies,
                tcp: self.config.tcp.clone(),
            },
            self.isn.clone(),
            self.cookies.clone(),
        );
        let listener = Arc::new(Listener::new(key, tcp));
        self.table
            .write()
            .bind_listener(key, Entry::Listener(Arc::clone(&listener)))?;
        Ok(listener)
    }

    /// Stops listening: removes the listener from the table, wakes its
    /// waiters and resets the connections nobody accepted (as Linux does).
    pub(crate) fn unlisten(&self, listener: &Listener) {
        self.table.write().remove_listener(&listener.key);
        let orphans: Vec<Arc<TcpSocket>> = {
            let mut ls = listener.state.lock();
            ls.tcp.close();
            std::iter::from_fn(|| ls.pop_ready()).collect()
        };
        listener.notify_all();
        for sock in orphans {
            let mut st = sock.state.lock();
            st.conn.abort();
            self.finish_activity(&sock, st);
        }
    }

    /// The application let go of its last handle to a connection: close it
    /// gracefully (FIN), or reset it if received data was left unread, as
    /// Linux does (RFC 9293 §3.10.4 allows either; a RST tells the peer
    /// its data was lost). The stack finishes the close, within
    /// `Config::orphan_timeout`.
    pub(crate) fn release_tcp(&self, sock: &Arc<TcpSocket>) {
        let mut st = sock.state.lock();
        if st.conn.recv_queue() > 0 {
            st.conn.abort();
        } else {
            st.conn.close();
        }
        st.orphan_deadline = Some(self.now() + self.config.orphan_timeout);
        self.finish_activity(sock, st);
    }

    /// Binds a UDP socket to `local` (our address, or its family's
    /// wildcard); port 0 picks a free ephemeral port.
    pub(crate) fn bind_udp(&self, local: SocketAddr) -> Result<Arc<UdpSocket>, OpenError> {
        let key = self.local_key(local)?;
        let depth = self.config.udp_queue_depth;
        let mut table = self.table.write();
        if key.port != 0 {
            let sock = Arc::new(UdpSocket::new(key, depth));
            table.bind_udp(key, Entry::Udp(Arc::clone(&sock)))?;
            return Ok(sock);
        }
        let mut made = None;
        table.bind_udp_ephemeral(key.addr, |key| {
            let sock = Arc::new(UdpSocket::new(key, depth));
            made = Some(Arc::clone(&sock));
            Entry::Udp(sock)
        })?;
        // invariant: as in `connect`, the closure ran once on Ok.
        made.ok_or(OpenError::Bind(BindError::TableFull))
    }

    /// Unbinds a UDP socket; datagrams to its port get ICMP port
    /// unreachable from now on.
    pub(crate) fn unbind_udp(&self, sock: &UdpSocket) {
        self.table.write().remove_udp(&sock.key);
    }

    /// The largest datagram payload `send_datagram` takes to an address of
    /// `to`'s family: what fits in one IP datagram behind the IP and UDP
    /// headers, 65,507 bytes over IPv4 (the total length counts the
    /// header) and 65,527 over IPv6 (the payload length does not). A
    /// datagram longer than the MTU leaves in fragments.
    pub(crate) fn max_datagram(&self, to: IpAddr) -> usize {
        match to {
            IpAddr::V4(_) => ipv4::MAX_PACKET_LEN - ipv4::HEADER_LEN - udp::HEADER_LEN,
            IpAddr::V6(_) => ipv6::MAX_PAYLOAD_LEN - udp::HEADER_LEN,
        }
    }

    /// Sends `payload` as one datagram from `from`'s address to `to`, in
    /// fragments when it is longer than the MTU. A socket bound to the
    /// wildcard sends from `source` when given (an address the stack
    /// answers for, such as the one a datagram was sent to), else from the
    /// stack's address of its family.
    pub(crate) fn send_datagram(
        &self,
        from: &UdpSocket,
        payload: &[u8],
        to: SocketAddr,
        source: Option<IpAddr>,
    ) -> Result<(), SendToError> {
        let src = match (from.key.addr, source) {
            (bound, _) if !bound.is_unspecified() => bound,
            (_, Some(ip)) if self.answers_for_ip(ip) => ip,
            (_, Some(ip)) => return Err(SendToError::NotOurAddress(ip)),
            (bound, None) => self.source_for(bound).ok_or(SendToError::WrongFamily(to))?,
        };
        if src.is_ipv4() != to.is_ipv4() {
            return Err(SendToError::WrongFamily(to));
        }
        let max = self.max_datagram(to.ip());
        if payload.len() > max {
            return Err(SendToError::TooLong {
                len: payload.len(),
                max,
            });
        }
        let dgram = UdpRepr {
            src_port: from.key.port,
            dst_port: to.port(),
            payload,
        };
        tx::send_udp(self, src, to.ip(), &dgram);
        Ok(())
    }

    /// Every socket in the table at this moment (for a snapshot, or to
    /// visit them all without holding the table's lock).
    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.table.read().iter().cloned().collect()
    }

    /// Whether a packet to `dst` is ours: our address, or with
    /// `Config::any_address` any unicast address routed to us.
    pub(crate) fn answers_for(&self, dst: Ipv4Addr) -> bool {
        dst == self.config.addr
            || (self.config.any_address
                && !(dst.is_unspecified()
                    || dst.is_broadcast()
                    || dst.is_multicast()
                    || dst.is_loopback()))
    }

    /// [`answers_for`](Self::answers_for) over IPv6: our `Config::addr6`,
    /// or with `Config::any_address` any unicast address routed to us. A
    /// stack without `addr6` answers for no IPv6 address.
    pub(crate) fn answers_for6(&self, dst: Ipv6Addr) -> bool {
        match self.config.addr6 {
            None => false,
            Some(ours) => {
                dst == ours
                    || (self.config.any_address
                        && !(dst.is_unspecified() || dst.is_multicast() || dst.is_loopback()))
            }
        }
    }

    /// [`answers_for`](Self::answers_for) or
    /// [`answers_for6`](Self::answers_for6) by `ip`'s family.
    pub(crate) fn answers_for_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.answers_for(ip),
            IpAddr::V6(ip) => self.answers_for6(ip),
        }
    }

    /// The address we send from to reach an address of `to`'s family:
    /// `Config::addr`, or `Config::addr6` (`None` when unset).
    pub(crate) fn source_for(&self, to: IpAddr) -> Option<IpAddr> {
        match to {
            IpAddr::V4(_) => Some(IpAddr::V4(self.config.addr)),
            IpAddr::V6(_) => self.config.addr6.map(IpAddr::V6),
        }
    }

    /// The table key of a local address: this stack's address of its
    /// family, or that family's wildcard, which waits for every address
    /// the stack answers for (with `Config::any_address`, any address
    /// routed into the device).
    fn local_key(&self, local: SocketAddr) -> Result<ListenKey, OpenError> {
        let ip = local.ip();
        if !ip.is_unspecified() && self.source_for(ip) != Some(ip) {
            return Err(OpenError::NotOurAddress(local));
        }
        Ok(ListenKey::new(ip, local.port()))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::config::Config;
    use crate::device::mem::{MemDevice, MemPair};

    const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// A stack's state with no threads, and the other end of its link.
    fn inner() -> (Inner, MemDevice) {
        let (ours, peer) = MemPair::new(16, 1500);
        (
            Inner::threadless(Box::new(ours), Config::with_addr(US)),
            peer,
        )
    }

    fn ours(port: u16) -> SocketAddr {
        SocketAddr::from((US, port))
    }

    #[test]
    fn local_addresses_must_be_ours() {
        let (inner, _peer) = inner();
        let elsewhere = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 3), 80));
        assert_eq!(
            inner.listen(elsewhere, None).err(),
            Some(OpenError::NotOurAddress(elsewhere))
        );
        assert_eq!(
            inner.bind_udp(elsewhere).err(),
            Some(OpenError::NotOurAddress(elsewhere))
        );
    }

    #[test]
    fn listeners_and_udp_may_wait_on_the_wildcard() {
        let (inner, peer) = inner();
        let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 80));
        let listener = inner.listen(any, None).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(listener.key, ListenKey::new(Ipv4Addr::UNSPECIFIED, 80));
        // Our own address beside it is another key, as in std.
        assert!(inner.listen(ours(80), None).is_ok());
        // A wildcard UDP socket sends from our address of the family.
        let udp = inner.bind_udp(any).unwrap_or_else(|e| panic!("{e:?}"));
        let to = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 9));
        assert_eq!(inner.send_datagram(&udp, b"hi", to, None), Ok(()));
        let mut batch = crate::device::PacketBatch::new(4, 1500);
        let n = crate::device::Device::recv_batch(&peer, &mut batch, std::time::Duration::ZERO);
        assert_eq!(n.ok(), Some(1));
        let sent = batch.get(0).unwrap_or(&[]);
        let (ip, _) = ipv4::Ipv4Repr::parse(sent).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ip.src, US);
    }

    #[test]
    fn families_must_match_and_ipv6_needs_an_address() {
        let (inner, _peer) = inner();
        let v6 = SocketAddr::from((Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1), 80));
        assert_eq!(inner.connect(v6).err(), Some(OpenError::NoIpv6Address(v6)));
        let here6 = SocketAddr::from((Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2), 80));
        assert_eq!(
            inner.listen(here6, None).err(),
            Some(OpenError::NotOurAddress(here6))
        );
        let udp = inner.bind_udp(ours(7)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            inner.send_datagram(&udp, b"x", v6, None),
            Err(SendToError::WrongFamily(v6))
        );
        // With an IPv6 address: over IPv6 the UDP limit is 65,527 bytes.
        let (ours6, _peer) = MemPair::new(4, 1500);
        let config = Config {
            addr6: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            ..Config::with_addr(US)
        };
        let inner6 = Inner::threadless(Box::new(ours6), config);
        assert!(inner6.listen(here6, None).is_ok());
        assert_eq!(inner6.max_datagram(v6.ip()), 65_527);
        let sock = inner6.connect(v6).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(sock.tuple.local.ip(), here6.ip());
    }

    #[test]
    fn any_address_answers_for_unicast_destinations_only() {
        let (inner, _peer) = inner();
        let other = Ipv4Addr::new(10, 99, 1, 2);
        assert!(inner.answers_for(US));
        assert!(!inner.answers_for(other), "off by default");
        let (ours, _peer) = MemPair::new(4, 1500);
        let config = Config {
            any_address: true,
            ..Config::with_addr(US)
        };
        let any = Inner::threadless(Box::new(ours), config);
        assert!(any.answers_for(other) && any.answers_for(US));
        for not in [
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(224, 0, 0, 1),
            Ipv4Addr::LOCALHOST,
        ] {
            assert!(!any.answers_for(not), "{not}");
        }
    }

    #[test]
    fn binds_conflict_per_protocol_and_port_zero_is_ephemeral() {
        let (inner, _peer) = inner();
        let listener = inner
            .listen(ours(80), None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            inner.listen(ours(80), None).err(),
            Some(OpenError::Bind(BindError::AddrInUse))
        );
        // UDP has its own ports.
        let udp = inner.bind_udp(ours(80)).unwrap_or_else(|e| panic!("{e:?}"));
        let eph = inner.bind_udp(ours(0)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_ne!(eph.key.port, 0);
        assert_ne!(eph.key.port, udp.key.port);
        // Letting go frees the port.
        inner.unlisten(&listener);
        inner.unbind_udp(&udp);
        assert!(inner.listen(ours(80), None).is_ok());
        assert!(inner.bind_udp(ours(80)).is_ok());
    }

    #[test]
    fn a_datagram_must_fit_an_ipv4_datagram_and_leaves_in_fragments() {
        let (inner, peer) = inner();
        let udp = inner.bind_udp(ours(7)).unwrap_or_else(|e| panic!("{e:?}"));
        let to = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 9));
        // 65,535 - 20 (IPv4) - 8 (UDP).
        assert_eq!(inner.max_datagram(to.ip()), 65_507);
        let big = vec![0u8; 65_508];
        let e = inner.send_datagram(&udp, &big, to, None).unwrap_err();
        assert_eq!(
            e,
            SendToError::TooLong {
                len: 65_508,
                max: 65_507
            }
        );
        assert_eq!(
            e.to_string(),
            "datagram of 65508 bytes exceeds the 65507 that fit in an IP datagram"
        );
        assert_eq!(peer.pending(), 0);
        // 1472 bytes fill one packet of the 1500-byte MTU: sent whole.
        assert_eq!(inner.send_datagram(&udp, &big[..1472], to, None), Ok(()));
        assert_eq!(peer.pending(), 1);
        // One more byte takes two fragments: 1480 bytes of IP payload,
        // then 1.
        assert_eq!(inner.send_datagram(&udp, &big[..1473], to, None), Ok(()));
        assert_eq!(peer.pending(), 3);
        assert_eq!(inner.stats.ip_frag_tx.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn connect_sends_a_syn_and_refuses_once_shut_down() {
        let (inner, peer) = inner();
        let remote = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 80));
        let sock = inner.connect(remote).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(sock.tuple.remote, remote);
        assert_eq!(sock.tuple.local.ip(), US);
        assert_eq!(peer.pending(), 1, "the SYN");
        inner.shutdown.store(true, Ordering::SeqCst);
        assert_eq!(inner.connect(remote).err(), Some(OpenError::ShutDown));
    }
}
