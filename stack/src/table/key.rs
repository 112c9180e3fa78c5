//! The keys sockets are found by.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// (local ip, local port, remote ip, remote port): the name of one TCP
/// conversation. Two clients on the same host differ by their ephemeral
/// port, so each gets its own tuple and its own connection. Both ends are
/// of one family; an IPv6 end's flow label and scope are always zero here
/// (the table compares addresses and ports only: see [`endpoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FourTuple {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// `addr` as the table keeps it: IPv6 flow information and scope id
/// cleared, so two spellings of one endpoint are one key.
pub fn endpoint(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => addr,
        SocketAddr::V6(a) => SocketAddr::new(IpAddr::V6(*a.ip()), a.port()),
    }
}

/// Feeds `addr` to `state` in as few writes as it takes: an IPv4 address
/// and port as one integer (ip in the high 32 bits, port below), an IPv6
/// one as two. The hasher's per-write cost is most of a lookup's hash
/// time on the demultiplexing hot path, so a derived `Hash` (a write per
/// field) would cost several times as much.
#[inline]
fn write_endpoint<H: Hasher>(state: &mut H, ip: IpAddr, port: u16) {
    match ip {
        IpAddr::V4(ip) => state.write_u64((u64::from(u32::from(ip)) << 16) | u64::from(port)),
        IpAddr::V6(ip) => {
            state.write_u128(u128::from(ip));
            state.write_u16(port);
        }
    }
}

impl Hash for FourTuple {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        write_endpoint(state, self.local.ip(), self.local.port());
        write_endpoint(state, self.remote.ip(), self.remote.port());
    }
}

impl fmt::Display for FourTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <-> {}", self.local, self.remote)
    }
}

/// (local ip, local port): where a listener or a UDP socket waits.
/// `addr` may be the unspecified address of its family (`0.0.0.0` or
/// `::`), the wildcard that matches any local address of that family.
/// The families are apart: `[::]:P` takes IPv6 only, as a Linux socket
/// with `IPV6_V6ONLY` does, so IPv4 and IPv6 listeners on one port
/// coexist and each family's traffic has one owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListenKey {
    pub addr: IpAddr,
    pub port: u16,
}

impl ListenKey {
    pub fn new(addr: impl Into<IpAddr>, port: u16) -> ListenKey {
        ListenKey {
            addr: addr.into(),
            port,
        }
    }

    /// The wildcard key of the same family for the same port.
    pub const fn wildcard(self) -> ListenKey {
        let addr = match self.addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        ListenKey {
            addr,
            port: self.port,
        }
    }

    /// The key as a socket address.
    pub fn socket_addr(self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }
}

impl Hash for ListenKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        write_endpoint(state, self.addr, self.port);
    }
}

impl From<SocketAddr> for ListenKey {
    fn from(a: SocketAddr) -> ListenKey {
        ListenKey::new(a.ip(), a.port())
    }
}

impl fmt::Display for ListenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.socket_addr().fmt(f)
    }
}
