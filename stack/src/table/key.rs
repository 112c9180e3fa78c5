//! The keys sockets are found by.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, SocketAddrV4};

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
/// port, so each gets its own tuple and its own connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FourTuple {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
}

/// The address as one integer: ip in the high 32 bits, port below.
fn packed(addr: SocketAddrV4) -> u64 {
    (u64::from(u32::from(*addr.ip())) << 16) | u64::from(addr.port())
}

/// Hashes the twelve bytes in two writes rather than the six a derived
/// `Hash` makes: the hasher's per-write cost is most of a lookup's hash
/// time on the demultiplexing hot path.
impl Hash for FourTuple {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(packed(self.local));
        state.write_u64(packed(self.remote));
    }
}

impl fmt::Display for FourTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <-> {}", self.local, self.remote)
    }
}

/// (local ip, local port): where a listener or a UDP socket waits.
/// `addr` may be `0.0.0.0`, the wildcard that matches any local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenKey {
    pub addr: Ipv4Addr,
    pub port: u16,
}

impl ListenKey {
    pub const fn new(addr: Ipv4Addr, port: u16) -> ListenKey {
        ListenKey { addr, port }
    }

    /// The wildcard key for the same port.
    pub const fn wildcard(self) -> ListenKey {
        ListenKey {
            addr: Ipv4Addr::UNSPECIFIED,
            port: self.port,
        }
    }
}

/// One write, as for [`FourTuple`].
impl Hash for ListenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(packed(SocketAddrV4::new(self.addr, self.port)));
    }
}

impl From<SocketAddrV4> for ListenKey {
    fn from(a: SocketAddrV4) -> ListenKey {
        ListenKey::new(*a.ip(), a.port())
    }
}

impl fmt::Display for ListenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.addr, self.port)
    }
}
