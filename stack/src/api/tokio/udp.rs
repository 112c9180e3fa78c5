//! Async `UdpSocket`.

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};

use ::tokio::io::ReadBuf;

use crate::api::attempt::{self, Step};
use crate::api::owned::Bound;
use crate::runtime::Stack;

/// A UDP socket, like `tokio::net::UdpSocket`; several tasks may share
/// it (`Arc<UdpSocket>`), each awaiting its own `recv_from`. After
/// [`connect`](Self::connect), [`send`](Self::send) goes to the peer and
/// only the peer's datagrams are received.
///
/// Received datagrams wait in a bounded queue (`Config::udp_queue_depth`);
/// when it is full, new ones are dropped and counted (`drop_queue_full`).
pub struct UdpSocket {
    bound: Bound,
}

impl UdpSocket {
    /// Binds `local`, as the blocking
    /// [`UdpSocket::bind`](crate::UdpSocket::bind) does; port 0 picks a
    /// free ephemeral port. It never waits, so it is not `async`.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if another UDP socket holds the address and port;
    /// `AddrNotAvailable` for an address that is not the stack's.
    pub fn bind(stack: &Stack, local: impl Into<SocketAddr>) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            bound: Bound::bind(stack, local.into())?,
        })
    }

    /// The address and port bound.
    ///
    /// # Errors
    ///
    /// Never; the signature matches tokio's.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.bound.local_addr())
    }

    /// Sets the peer, as the blocking
    /// [`connect`](crate::UdpSocket::connect) does: [`send`](Self::send)
    /// goes to `peer`, and from now on a datagram from anyone else is
    /// answered with a port unreachable instead of queued. Nothing is sent
    /// and it never waits; it is `async` as tokio's is.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `peer` is of the other family than the socket,
    /// or its port is 0.
    pub async fn connect(&self, peer: impl Into<SocketAddr>) -> io::Result<()> {
        self.bound.connect(peer.into())
    }

    /// The peer set by [`connect`](Self::connect).
    ///
    /// # Errors
    ///
    /// `NotConnected` before `connect`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.bound.peer_addr()
    }

    /// Sends one datagram to the peer set by [`connect`](Self::connect),
    /// as [`send_to`](Self::send_to) would.
    ///
    /// # Errors
    ///
    /// `NotConnected` before `connect`; otherwise as `send_to`.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.bound.send(buf, self.bound.peer_addr()?, None)
    }

    /// Waits for a datagram and copies it into `buf` (truncating), as
    /// [`recv_from`](Self::recv_from) does without saying the sender: on
    /// a connected socket, that is the peer. Cancellation-safe.
    ///
    /// # Errors
    ///
    /// `NotConnected` once the stack is shut down.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let (n, _, _) = self.recv_from_to(buf).await?;
        Ok(n)
    }

    /// Sends one datagram to `to` (fragmented when it exceeds the MTU). A
    /// datagram is handed to the device at once, so this never waits.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a datagram longer than an IP datagram carries,
    /// or `to` of the other family than the socket.
    pub async fn send_to(&self, buf: &[u8], to: impl Into<SocketAddr>) -> io::Result<usize> {
        self.bound.send(buf, to.into(), None)
    }

    /// [`send_to`](Self::send_to) from the address `from`, for a socket
    /// bound to the wildcard (see the blocking
    /// [`send_from_to`](crate::UdpSocket::send_from_to)).
    ///
    /// # Errors
    ///
    /// As `send_to`; `InvalidInput` too when `from` is not the stack's.
    pub async fn send_from_to(
        &self,
        buf: &[u8],
        from: IpAddr,
        to: impl Into<SocketAddr>,
    ) -> io::Result<usize> {
        self.bound.send(buf, to.into(), Some(from))
    }

    /// Waits for a datagram, copies it into `buf` (truncating) and returns
    /// its length and sender. Cancellation-safe: a datagram is taken off
    /// the queue only when this returns it.
    ///
    /// # Errors
    ///
    /// `NotConnected` once the stack is shut down.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, from, _) = self.recv_from_to(buf).await?;
        Ok((n, from))
    }

    /// [`recv_from`](Self::recv_from), also returning the address and port
    /// the datagram was sent to (see the blocking
    /// [`recv_from_to`](crate::UdpSocket::recv_from_to)).
    ///
    /// # Errors
    ///
    /// As `recv_from`.
    pub async fn recv_from_to(
        &self,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, SocketAddr)> {
        poll_fn(|cx| self.poll_recv(cx, buf)).await
    }

    /// The poll behind `recv_from`, in tokio's shape: the datagram is
    /// appended to `buf` (truncated to its room), and its sender returned.
    ///
    /// # Errors
    ///
    /// As `recv_from`.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        match self.poll_recv(cx, buf.initialize_unfilled()) {
            Poll::Ready(Ok((n, from, _))) => {
                buf.advance(n);
                Poll::Ready(Ok(from))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr, SocketAddr)>> {
        let Bound { stack, sock } = &self.bound;
        let q = sock.queue.lock();
        match attempt::recv_datagram(stack, sock, q, Some(cx.waker())) {
            Step::Ready(r) => Poll::Ready(r.map(|d| attempt::copy_datagram(&d, buf))),
            Step::Wait(_) => Poll::Pending,
        }
    }
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.bound.local_addr())
            .finish()
    }
}
