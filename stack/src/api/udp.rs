//! `UdpSocket` over the stack.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::runtime::Stack;

use super::attempt;
use super::blocking::wait_or_block;
use super::deadline;
use super::owned::Bound;

/// A UDP socket, like `std::net::UdpSocket`.
///
/// Received datagrams wait in a bounded queue (`Config::udp_queue_depth`);
/// when it is full, new ones are dropped and counted (`drop_queue_full`),
/// as a kernel socket's receive buffer would.
///
/// After [`connect`](Self::connect), [`send`](Self::send) goes to the
/// peer and only the peer's datagrams are received, as on Linux.
pub struct UdpSocket {
    bound: Bound,
    read_timeout: Mutex<Option<Duration>>,
    nonblocking: AtomicBool,
}

impl UdpSocket {
    /// Binds `local`, as `std::net::UdpSocket::bind` does: one of the
    /// stack's addresses, or the unspecified address of a family
    /// (`0.0.0.0`, `[::]`) for datagrams to any address of that family the
    /// stack answers for; replies then leave from the stack's address of
    /// the family. Port 0 picks a free ephemeral port.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if another UDP socket holds the address and port;
    /// `AddrNotAvailable` for an address that is not the stack's.
    pub fn bind(stack: &Stack, local: impl Into<SocketAddr>) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            bound: Bound::bind(stack, local.into())?,
            read_timeout: Mutex::new(None),
            nonblocking: AtomicBool::new(false),
        })
    }

    /// The address and port bound.
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.bound.local_addr())
    }

    /// Sets the peer, as `std`'s `connect` does: [`send`](Self::send) goes
    /// to `peer`, and from now on a datagram from any other address or
    /// port is not queued but answered with a port unreachable, as Linux
    /// treats a connected socket's port as closed to everyone else.
    /// Datagrams queued before stay to be read, as on Linux. Nothing is
    /// sent. Connecting again replaces the peer;
    /// [`send_to`](Self::send_to) still reaches anyone.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `peer` is of the other family than the socket,
    /// or its port is 0.
    pub fn connect(&self, peer: impl Into<SocketAddr>) -> io::Result<()> {
        self.bound.connect(peer.into())
    }

    /// The peer set by [`connect`](Self::connect).
    ///
    /// # Errors
    ///
    /// `NotConnected` before `connect`, as `std`'s.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.bound.peer_addr()
    }

    /// Sends one datagram to the peer set by [`connect`](Self::connect),
    /// as [`send_to`](Self::send_to) would.
    ///
    /// # Errors
    ///
    /// `NotConnected` before `connect`; otherwise as `send_to`.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.bound.send(buf, self.bound.peer_addr()?, None)
    }

    /// Waits for a datagram and copies it into `buf` (truncating), as
    /// [`recv_from`](Self::recv_from) does without saying the sender: on
    /// a connected socket, that is the peer.
    ///
    /// # Errors
    ///
    /// `WouldBlock` after the read timeout or in non-blocking mode.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_from_to(buf).map(|(n, _, _)| n)
    }

    /// Sends one datagram to `to`: in one packet when it fits the MTU,
    /// else in fragments (IPv4 fragments, or IPv6 ones behind a fragment
    /// header; the peer reassembles them).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `buf` is longer than the most an IP datagram
    /// carries behind its IP and UDP headers (65,507 bytes over IPv4,
    /// 65,527 over IPv6), or `to` is of the other family than the socket.
    pub fn send_to(&self, buf: &[u8], to: impl Into<SocketAddr>) -> io::Result<usize> {
        self.bound.send(buf, to.into(), None)
    }

    /// [`send_to`](Self::send_to) from the address `from`, for a socket
    /// bound to the wildcard: in any-address mode, a reply should leave
    /// from the address its request was sent to (which
    /// [`recv_from_to`](Self::recv_from_to) tells), as Linux's
    /// `IP_PKTINFO` allows. A socket bound to one address sends from it
    /// whatever `from` says.
    ///
    /// # Errors
    ///
    /// As `send_to`; `InvalidInput` too when `from` is not an address the
    /// stack answers for.
    pub fn send_from_to(
        &self,
        buf: &[u8],
        from: IpAddr,
        to: impl Into<SocketAddr>,
    ) -> io::Result<usize> {
        self.bound.send(buf, to.into(), Some(from))
    }

    /// Waits for a datagram, copies it into `buf` (truncating, as `std`
    /// does) and returns its length and sender.
    ///
    /// # Errors
    ///
    /// `WouldBlock` after the read timeout.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_from_to(buf).map(|(n, from, _)| (n, from))
    }

    /// [`recv_from`](Self::recv_from), also returning the address and port
    /// the datagram was sent to: on a socket bound to the wildcard in
    /// any-address mode, whichever address the sender dialled (Linux's
    /// `IP_PKTINFO`). Reply from it with [`send_from_to`](Self::send_from_to).
    ///
    /// # Errors
    ///
    /// `WouldBlock` after the read timeout.
    pub fn recv_from_to(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, SocketAddr)> {
        let until = deadline(*self.read_timeout.lock());
        let Bound { stack, sock } = &self.bound;
        let q = sock.queue.lock();
        let d = wait_or_block("recv_from", &sock.cond, q, until, &self.nonblocking, |q| {
            attempt::recv_datagram(stack, sock, q, None)
        })?;
        Ok(attempt::copy_datagram(&d, buf))
    }

    /// `None` blocks forever (the default).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        *self.read_timeout.lock() = timeout;
        Ok(())
    }

    /// In non-blocking mode `recv_from` returns `WouldBlock` at once when
    /// no datagram is queued, as `std`'s does.
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }
}
