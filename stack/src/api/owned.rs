//! What a socket of either API owns, and the calls on it that never
//! wait: a connection ([`Conn`]), a listener ([`Listening`]), a bound
//! UDP port ([`Bound`]). Each gives its runtime socket back when dropped,
//! so the blocking and the async types differ only in how they wait
//! ([`attempt`](super::attempt)) and in their signatures.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::MAX_ACCEPT_BACKLOG;
use crate::runtime::socket::{self, Listener, TcpSocket};
use crate::runtime::Stack;
use crate::tcp::connection::info::TcpInfo;
use crate::tcp::error::ConnError;
use crate::tcp::state::State;

use super::{conn_error, open_error};

/// A TCP connection held by the API; released when dropped (FIN, or RST
/// with received data left unread).
pub(super) struct Conn {
    pub(super) stack: Stack,
    pub(super) sock: Arc<TcpSocket>,
    /// `take_error` has reported the connection's error.
    error_taken: AtomicBool,
}

impl Conn {
    pub(super) fn new(stack: &Stack, sock: Arc<TcpSocket>) -> Conn {
        Conn {
            stack: stack.clone(),
            sock,
            error_taken: AtomicBool::new(false),
        }
    }

    /// Puts a new connection to `remote` in the table and sends its SYN.
    pub(super) fn open(stack: &Stack, remote: SocketAddr) -> io::Result<Conn> {
        let sock = stack.inner.connect(remote).map_err(open_error)?;
        Ok(Conn::new(stack, sock))
    }

    pub(super) fn local_addr(&self) -> SocketAddr {
        self.sock.tuple.local
    }

    pub(super) fn peer_addr(&self) -> SocketAddr {
        self.sock.tuple.remote
    }

    pub(super) fn state(&self) -> State {
        self.sock.state.lock().conn.state()
    }

    /// The connection's `TCP_INFO`, now.
    pub(super) fn info(&self) -> TcpInfo {
        let now = self.stack.inner.now();
        self.sock.state.lock().conn.info(now)
    }

    /// The connection's error the first time it is asked for, as reading
    /// `SO_ERROR` clears it.
    pub(super) fn take_error(&self) -> Option<io::Error> {
        let e = self.sock.state.lock().conn.error()?;
        if self.error_taken.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(conn_error(e))
    }

    pub(super) fn set_nodelay(&self, nodelay: bool) {
        self.sock.state.lock().conn.set_nodelay(nodelay);
    }

    pub(super) fn nodelay(&self) -> bool {
        self.sock.state.lock().conn.nodelay()
    }

    /// Resets the connection at once (RST, queues discarded), as `close`
    /// with `SO_LINGER` 0 does.
    pub(super) fn abort(&self) {
        let mut st = self.sock.state.lock();
        if !st.conn.is_closed() {
            st.conn.abort_with(ConnError::Aborted);
        }
        self.stack.inner.finish_activity(&self.sock, st);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.stack.inner.release_tcp(&self.sock);
    }
}

/// A listening socket held by the API; dropping it stops listening and
/// resets the connections nobody accepted, as Linux does.
pub(super) struct Listening {
    pub(super) stack: Stack,
    pub(super) listener: Arc<Listener>,
}

impl Listening {
    /// Listens on `local` (one of the stack's addresses, or a family's
    /// unspecified address) with an accept queue of `backlog`
    /// connections (`Config::accept_backlog` when `None`; at least 1 and
    /// at most [`MAX_ACCEPT_BACKLOG`]).
    ///
    /// # Errors
    ///
    /// `AddrInUse`, `AddrNotAvailable` (see `TcpListener::bind`).
    pub(super) fn bind(
        stack: &Stack,
        local: SocketAddr,
        backlog: Option<usize>,
    ) -> io::Result<Listening> {
        let backlog = backlog.map(|n| n.clamp(1, MAX_ACCEPT_BACKLOG));
        let listener = stack.inner.listen(local, backlog).map_err(open_error)?;
        Ok(Listening {
            stack: stack.clone(),
            listener,
        })
    }

    pub(super) fn local_addr(&self) -> SocketAddr {
        self.listener.key.socket_addr()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stack.inner.unlisten(&self.listener);
    }
}

/// A UDP port held by the API; unbound when dropped.
pub(super) struct Bound {
    pub(super) stack: Stack,
    pub(super) sock: Arc<socket::UdpSocket>,
}

impl Bound {
    /// Binds `local`; port 0 picks a free ephemeral port.
    ///
    /// # Errors
    ///
    /// `AddrInUse`, `AddrNotAvailable` (see `UdpSocket::bind`).
    pub(super) fn bind(stack: &Stack, local: SocketAddr) -> io::Result<Bound> {
        let sock = stack.inner.bind_udp(local).map_err(open_error)?;
        Ok(Bound {
            stack: stack.clone(),
            sock,
        })
    }

    pub(super) fn local_addr(&self) -> SocketAddr {
        self.sock.key.socket_addr()
    }

    /// Sets the peer: from now on the runtime answers a datagram from
    /// anyone else with a port unreachable.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `peer` is of the other family than the socket,
    /// or its port is 0.
    pub(super) fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        let local = self.local_addr();
        if peer.is_ipv4() != local.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot connect a socket bound to {local} to {peer}"),
            ));
        }
        if peer.port() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot connect to port 0 of {}", peer.ip()),
            ));
        }
        self.sock.queue.lock().peer = Some(peer);
        Ok(())
    }

    /// The peer `connect` set.
    ///
    /// # Errors
    ///
    /// `NotConnected` before `connect`, as `std`'s.
    pub(super) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.queue.lock().peer.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the UDP socket is not connected",
            )
        })
    }

    /// Sends one datagram to `to` (from `from`, on a wildcard socket); it
    /// never waits.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for what the runtime refuses (too long, the other
    /// family, `from` not the stack's).
    pub(super) fn send(
        &self,
        buf: &[u8],
        to: SocketAddr,
        from: Option<IpAddr>,
    ) -> io::Result<usize> {
        self.stack
            .inner
            .send_datagram(&self.sock, buf, to, from)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(buf.len())
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        self.stack.inner.unbind_udp(&self.sock);
    }
}
