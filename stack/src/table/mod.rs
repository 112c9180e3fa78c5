//! The socket table: who owns an arriving segment or datagram.
//!
//! TCP connections are keyed by their [`FourTuple`]; TCP listeners and UDP
//! sockets by a [`ListenKey`] (local ip, local port), where the ip may be
//! the wildcard `0.0.0.0`. A TCP lookup tries, in order (RFC 9293 §3.10.7:
//! a segment belongs to a connection if one exists, else to a listener):
//!
//! 1. the exact four-tuple (an established or opening connection);
//! 2. the listener on (local ip, local port);
//! 3. the wildcard listener on (0.0.0.0, local port);
//!
//! and otherwise reports [`TcpLookup::None`], which the runtime answers with
//! a RST. Each step is one hash-map probe: lookup is O(1) and allocates
//! nothing, whatever the number of sockets (see `benches/benches/table.rs`).
//!
//! Every map's hash has a random key: every key contains values the peer
//! chooses (its address and port), and a predictable hash would let a peer
//! force collisions and turn each probe into a list walk. The listeners'
//! and UDP maps keep std's SipHash; the connections' map, probed for every
//! segment, a cheaper keyed hash computed apart from the probe, so the RX
//! thread can look up a whole batch with its cache misses overlapped
//! ([`SocketTable::tuple_hash`], [`SocketTable::connection_hashed`]; see
//! `connections.rs`).
//!
//! The table is generic over what it stores so it can be tested and
//! benchmarked alone; the runtime stores its socket handles in it. It does
//! no locking of its own.

mod connections;
mod key;
pub mod ports;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use connections::Connections;
pub use key::{endpoint, FourTuple, ListenKey, Protocol};
use ports::PortAllocator;

/// Where a TCP segment goes.
#[derive(Debug, PartialEq, Eq)]
pub enum TcpLookup<'a, T> {
    /// An existing connection with exactly this four-tuple.
    Connection(&'a T),
    /// No connection; a listener on the local address and port.
    Listener(&'a T),
    /// Nobody: the segment gets a RST (RFC 9293 §3.10.7.1).
    None,
}

/// Why a socket could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindError {
    /// Another socket already has this address (EADDRINUSE).
    AddrInUse,
    /// All 16,384 ephemeral ports are in use.
    NoEphemeralPorts,
    /// The table holds its configured maximum of connections.
    TableFull,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BindError::AddrInUse => "address already in use",
            BindError::NoEphemeralPorts => "no free ephemeral port (49152-65535 all in use)",
            BindError::TableFull => "connection limit reached",
        })
    }
}

impl std::error::Error for BindError {}

/// The socket table. See the module documentation.
#[derive(Debug)]
pub struct SocketTable<T> {
    connections: Connections<T>,
    listeners: HashMap<ListenKey, T>,
    udp: HashMap<ListenKey, T>,
    /// How many connections use each local port, so an ephemeral port is
    /// never handed out while any socket holds it.
    conn_ports: HashMap<u16, u32>,
    ports: PortAllocator,
    max_connections: usize,
}

impl<T> SocketTable<T> {
    /// An empty table that holds at most `max_connections` TCP
    /// connections (listeners and UDP sockets are not counted).
    pub fn new(max_connections: usize) -> SocketTable<T> {
        SocketTable::with_ports(max_connections, PortAllocator::new())
    }

    /// [`new`](Self::new), choosing ephemeral ports with `ports` (a keyed
    /// allocator makes the choice reproducible).
    pub fn with_ports(max_connections: usize, ports: PortAllocator) -> SocketTable<T> {
        SocketTable {
            connections: Connections::new(),
            listeners: HashMap::new(),
            udp: HashMap::new(),
            conn_ports: HashMap::new(),
            ports,
            max_connections,
        }
    }

    /// Finds the owner of a TCP segment addressed to `local` from `remote`.
    #[inline]
    pub fn lookup_tcp(&self, local: SocketAddr, remote: SocketAddr) -> TcpLookup<'_, T> {
        if let Some(c) = self.connections.get(&FourTuple { local, remote }) {
            return TcpLookup::Connection(c);
        }
        self.lookup_listener(local)
    }

    /// The listener a segment to `local` goes to when no connection has
    /// its four-tuple.
    #[inline]
    pub fn lookup_listener(&self, local: SocketAddr) -> TcpLookup<'_, T> {
        match lookup_bound(&self.listeners, local) {
            Some(l) => TcpLookup::Listener(l),
            None => TcpLookup::None,
        }
    }

    /// The hash of `tuple` that [`connection_hashed`](Self::connection_hashed)
    /// takes: a batch is hashed first, then probed.
    #[inline]
    pub fn tuple_hash(&self, tuple: &FourTuple) -> u64 {
        self.connections.hash(tuple)
    }

    /// The connection with exactly this four-tuple, whose
    /// [`tuple_hash`](Self::tuple_hash) is `hash`.
    #[inline]
    pub fn connection_hashed(&self, hash: u64, tuple: &FourTuple) -> Option<&T> {
        self.connections.get_hashed(hash, tuple)
    }

    /// Finds the UDP socket bound to `local` or to its wildcard.
    #[inline]
    pub fn lookup_udp(&self, local: SocketAddr) -> Option<&T> {
        lookup_bound(&self.udp, local)
    }

    /// The connection with exactly this four-tuple.
    pub fn connection(&self, tuple: &FourTuple) -> Option<&T> {
        self.connections.get(tuple)
    }

    /// Adds a connection.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if the four-tuple is taken, `TableFull` at the limit.
    pub fn insert_connection(&mut self, tuple: FourTuple, socket: T) -> Result<(), BindError> {
        if self.connections.get(&tuple).is_some() {
            return Err(BindError::AddrInUse);
        }
        if self.connections.len() >= self.max_connections {
            return Err(BindError::TableFull);
        }
        self.connections.insert_new(tuple, socket);
        *self.conn_ports.entry(tuple.local.port()).or_insert(0) += 1;
        Ok(())
    }

    /// Picks a free ephemeral port on `local_ip` for a connection to
    /// `remote` and adds the connection made by `make(tuple)`.
    ///
    /// # Errors
    ///
    /// `NoEphemeralPorts` when every port in 49152-65535 is in use,
    /// `TableFull` at the connection limit.
    pub fn insert_ephemeral(
        &mut self,
        local_ip: IpAddr,
        remote: SocketAddr,
        make: impl FnOnce(FourTuple) -> T,
    ) -> Result<FourTuple, BindError> {
        if self.connections.len() >= self.max_connections {
            return Err(BindError::TableFull);
        }
        let (conn_ports, listeners, udp) = (&self.conn_ports, &self.listeners, &self.udp);
        let port = self
            .ports
            .allocate(remote, |p| {
                conn_ports.contains_key(&p)
                    || lookup_bound(listeners, SocketAddr::new(local_ip, p)).is_some()
                    || lookup_bound(udp, SocketAddr::new(local_ip, p)).is_some()
            })
            .ok_or(BindError::NoEphemeralPorts)?;
        let tuple = FourTuple {
            local: SocketAddr::new(local_ip, port),
            remote,
        };
        self.insert_connection(tuple, make(tuple))?;
        Ok(tuple)
    }

    /// Removes a connection, freeing its local port.
    pub fn remove_connection(&mut self, tuple: &FourTuple) -> Option<T> {
        let removed = self.connections.remove(tuple)?;
        if let Some(n) = self.conn_ports.get_mut(&tuple.local.port()) {
            *n -= 1;
            if *n == 0 {
                self.conn_ports.remove(&tuple.local.port());
            }
        }
        Some(removed)
    }

    /// Adds a TCP listener.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if a listener holds the same key.
    pub fn bind_listener(&mut self, key: ListenKey, socket: T) -> Result<(), BindError> {
        bind(&mut self.listeners, key, socket)
    }

    pub fn remove_listener(&mut self, key: &ListenKey) -> Option<T> {
        self.listeners.remove(key)
    }

    /// Adds a UDP socket.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if a UDP socket holds the same key.
    pub fn bind_udp(&mut self, key: ListenKey, socket: T) -> Result<(), BindError> {
        bind(&mut self.udp, key, socket)
    }

    /// Binds a UDP socket to a free ephemeral port on `local_ip`.
    ///
    /// # Errors
    ///
    /// `NoEphemeralPorts` when none is free.
    pub fn bind_udp_ephemeral(
        &mut self,
        local_ip: IpAddr,
        make: impl FnOnce(ListenKey) -> T,
    ) -> Result<ListenKey, BindError> {
        let udp = &self.udp;
        let unspecified = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let port = self
            .ports
            .allocate(unspecified, |p| {
                lookup_bound(udp, SocketAddr::new(local_ip, p)).is_some()
            })
            .ok_or(BindError::NoEphemeralPorts)?;
        let key = ListenKey::new(local_ip, port);
        self.bind_udp(key, make(key))?;
        Ok(key)
    }

    pub fn remove_udp(&mut self, key: &ListenKey) -> Option<T> {
        self.udp.remove(key)
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Every socket, for a snapshot or a shutdown: connections by
    /// four-tuple, then listeners, then UDP sockets by address. The order
    /// is fixed, not the maps' (which follows their random hash keys), so
    /// what is done to each in turn (a shutdown's resets) is reproducible.
    /// Sorting allocates: this is for rare, whole-table work, not the hot
    /// path.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        let mut connections: Vec<(&FourTuple, &T)> = self.connections.iter().collect();
        connections.sort_unstable_by_key(|(k, _)| (k.local, k.remote));
        let (listeners, udp) = (sorted_bound(&self.listeners), sorted_bound(&self.udp));
        connections
            .into_iter()
            .map(|(_, t)| t)
            .chain(listeners.into_iter().chain(udp).map(|(_, t)| t))
    }
}

/// The sockets of `map` by address.
fn sorted_bound<T>(map: &HashMap<ListenKey, T>) -> Vec<(ListenKey, &T)> {
    let mut v: Vec<(ListenKey, &T)> = map.iter().map(|(k, t)| (*k, t)).collect();
    v.sort_unstable_by_key(|(k, _)| (k.addr, k.port));
    v
}

/// The socket bound to `local`, else to the wildcard address on its port.
#[inline]
fn lookup_bound<T>(map: &HashMap<ListenKey, T>, local: SocketAddr) -> Option<&T> {
    if map.is_empty() {
        return None;
    }
    let key = ListenKey::from(local);
    map.get(&key).or_else(|| map.get(&key.wildcard()))
}

fn bind<T>(map: &mut HashMap<ListenKey, T>, key: ListenKey, socket: T) -> Result<(), BindError> {
    if map.contains_key(&key) {
        return Err(BindError::AddrInUse);
    }
    map.insert(key, socket);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    fn local(port: u16) -> SocketAddr {
        SocketAddr::new(US.into(), port)
    }
    fn remote(port: u16) -> SocketAddr {
        SocketAddr::new(PEER.into(), port)
    }

    #[test]
    fn iteration_order_does_not_depend_on_hash_keys_or_insertion() {
        let ports = [50007, 50001, 50003, 50009, 50002];
        let fill = |order: &[u16]| {
            let mut t = SocketTable::new(10);
            for &p in order {
                let tuple = FourTuple {
                    local: local(80),
                    remote: remote(p),
                };
                t.insert_connection(tuple, p).unwrap();
                t.bind_udp(ListenKey::new(US, p), p + 1).unwrap();
            }
            t.bind_listener(ListenKey::new(US, 80), 80).unwrap();
            t.iter().copied().collect::<Vec<_>>()
        };
        let mut reversed = ports;
        reversed.reverse();
        let sorted = fill(&ports);
        assert_eq!(fill(&reversed), sorted);
        assert_eq!(
            sorted,
            vec![50001, 50002, 50003, 50007, 50009, 80, 50002, 50003, 50004, 50008, 50010]
        );
    }

    #[test]
    fn exact_match_beats_listener() {
        let mut t = SocketTable::new(10);
        t.bind_listener(ListenKey::new(US, 80), "listener").unwrap();
        t.insert_connection(
            FourTuple {
                local: local(80),
                remote: remote(50000),
            },
            "conn",
        )
        .unwrap();
        assert_eq!(
            t.lookup_tcp(local(80), remote(50000)),
            TcpLookup::Connection(&"conn")
        );
        assert_eq!(
            t.lookup_tcp(local(80), remote(50001)),
            TcpLookup::Listener(&"listener")
        );
    }

    #[test]
    fn listener_fallback_specific_then_wildcard() {
        let mut t = SocketTable::new(10);
        t.bind_listener(ListenKey::new(Ipv4Addr::UNSPECIFIED, 80), "any")
            .unwrap();
        assert_eq!(
            t.lookup_tcp(local(80), remote(1)),
            TcpLookup::Listener(&"any")
        );
        t.bind_listener(ListenKey::new(US, 80), "specific").unwrap();
        assert_eq!(
            t.lookup_tcp(local(80), remote(1)),
            TcpLookup::Listener(&"specific")
        );
        assert_eq!(t.lookup_tcp(local(81), remote(1)), TcpLookup::None);
    }

    #[test]
    fn duplicate_binds_are_refused() {
        let mut t = SocketTable::new(10);
        t.bind_listener(ListenKey::new(US, 80), 1).unwrap();
        assert_eq!(
            t.bind_listener(ListenKey::new(US, 80), 2),
            Err(BindError::AddrInUse)
        );
        t.bind_udp(ListenKey::new(US, 7), 3).unwrap();
        assert_eq!(
            t.bind_udp(ListenKey::new(US, 7), 4),
            Err(BindError::AddrInUse)
        );
        // TCP and UDP port spaces are separate.
        t.bind_listener(ListenKey::new(US, 7), 5).unwrap();
        assert_eq!(t.lookup_udp(local(7)), Some(&3));
        let tuple = FourTuple {
            local: local(80),
            remote: remote(9),
        };
        t.insert_connection(tuple, 6).unwrap();
        assert_eq!(t.insert_connection(tuple, 7), Err(BindError::AddrInUse));
    }

    #[test]
    fn ephemeral_allocation_avoids_collisions() {
        let mut t = SocketTable::new(100_000);
        // Occupy some ports the allocator might pick: a listener, a UDP
        // socket and a connection on ports in the dynamic range.
        t.bind_listener(ListenKey::new(US, 50000), 0u32).unwrap();
        t.bind_udp(ListenKey::new(US, 50001), 0).unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..16_382u32 {
            let tuple = t.insert_ephemeral(US.into(), remote(80), |_| i).unwrap();
            let p = tuple.local.port();
            assert!(p >= 49152);
            assert!(p != 50000 && p != 50001, "collided with a bound port");
            assert!(seen.insert(p), "port {p} reused while in use");
        }
        assert_eq!(
            t.insert_ephemeral(US.into(), remote(80), |_| 0),
            Err(BindError::NoEphemeralPorts)
        );
        // Freeing one makes exactly that one available again.
        let some = *seen.iter().next().unwrap();
        t.remove_connection(&FourTuple {
            local: local(some),
            remote: remote(80),
        })
        .unwrap();
        let tuple = t.insert_ephemeral(US.into(), remote(80), |_| 0).unwrap();
        assert_eq!(tuple.local.port(), some);
    }

    #[test]
    fn connection_limit_is_enforced() {
        let mut t = SocketTable::new(1);
        t.insert_ephemeral(US.into(), remote(80), |_| ()).unwrap();
        assert_eq!(
            t.insert_ephemeral(US.into(), remote(80), |_| ()),
            Err(BindError::TableFull)
        );
    }

    #[test]
    fn udp_lookup_and_wildcard() {
        let mut t = SocketTable::new(1);
        assert_eq!(t.lookup_udp(local(7)), None);
        t.bind_udp(ListenKey::new(Ipv4Addr::UNSPECIFIED, 7), "echo")
            .unwrap();
        assert_eq!(t.lookup_udp(local(7)), Some(&"echo"));
        let key = t.bind_udp_ephemeral(US.into(), |_| "client").unwrap();
        assert!(key.port >= 49152);
        assert_eq!(
            t.lookup_udp(SocketAddr::new(US.into(), key.port)),
            Some(&"client")
        );
        assert_eq!(t.iter().count(), 2);
    }

    #[test]
    fn families_are_apart_and_have_their_own_wildcards() {
        use std::net::Ipv6Addr;
        let us6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
        let peer6 = SocketAddr::from((Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1), 5000));
        let mut t = SocketTable::new(10);
        // One port, both families: two keys, no conflict.
        t.bind_listener(ListenKey::new(US, 80), "v4").unwrap();
        t.bind_listener(ListenKey::new(Ipv6Addr::UNSPECIFIED, 80), "any6")
            .unwrap();
        assert_eq!(
            t.lookup_tcp(SocketAddr::from((us6, 80)), peer6),
            TcpLookup::Listener(&"any6")
        );
        assert_eq!(
            t.lookup_tcp(local(80), remote(1)),
            TcpLookup::Listener(&"v4")
        );
        // `[::]` does not take IPv4, nor `0.0.0.0` IPv6.
        t.bind_udp(ListenKey::new(Ipv6Addr::UNSPECIFIED, 7), "udp6")
            .unwrap();
        assert_eq!(t.lookup_udp(local(7)), None);
        t.bind_udp(ListenKey::new(Ipv4Addr::UNSPECIFIED, 9), "udp4")
            .unwrap();
        assert_eq!(t.lookup_udp(SocketAddr::from((us6, 9))), None);
        // An IPv6 connection beats its listener, as IPv4's do.
        let tuple = FourTuple {
            local: SocketAddr::from((us6, 80)),
            remote: peer6,
        };
        t.insert_connection(tuple, "conn6").unwrap();
        assert_eq!(
            t.lookup_tcp(tuple.local, peer6),
            TcpLookup::Connection(&"conn6")
        );
        let eph = t.insert_ephemeral(us6.into(), peer6, |_| "out6").unwrap();
        assert!(eph.local.is_ipv6() && eph.local.port() >= 49152);
    }
}
