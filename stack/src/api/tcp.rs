//! `TcpListener` and `TcpStream` over the stack.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::runtime::Stack;
use crate::tcp::connection::info::TcpInfo;
use crate::tcp::state::State;

use super::attempt::{self, ReadMode};
use super::blocking::{wait_for, wait_or_block};
use super::deadline;
use super::owned::{Conn, Listening};

/// A TCP socket waiting for connections, like `std::net::TcpListener`.
///
/// Connections complete the handshake in the stack and wait in a bounded
/// queue (`Config::accept_backlog`) until [`accept`](Self::accept) takes
/// them. Dropping the listener resets the connections nobody accepted.
pub struct TcpListener {
    listening: Listening,
    timeout: Mutex<Option<Duration>>,
    nonblocking: AtomicBool,
}

impl TcpListener {
    /// Listens on `local`, as `std::net::TcpListener::bind` does: one of
    /// the stack's addresses (`Config::addr`, `Config::addr6`), or the
    /// unspecified address of a family (`0.0.0.0`, `[::]`) for every
    /// address of that family the stack answers for. With
    /// `Config::any_address` that is any address routed into the device,
    /// and each accepted stream's `local_addr()` tells which was dialled.
    /// `[::]` takes IPv6 only (as with `IPV6_V6ONLY`): listen on both
    /// wildcards for both families.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if a listener already holds the address and port;
    /// `AddrNotAvailable` for an address that is not the stack's.
    pub fn bind(stack: &Stack, local: impl Into<SocketAddr>) -> io::Result<TcpListener> {
        TcpListener::listen(stack, local.into(), None)
    }

    /// [`bind`](Self::bind) with an accept queue of `backlog` connections
    /// instead of `Config::accept_backlog`, as the `backlog` of
    /// `listen(2)` sets it: 0 counts as 1, and more than
    /// [`MAX_ACCEPT_BACKLOG`](crate::config::MAX_ACCEPT_BACKLOG) as that.
    /// A server that expects bursts of clients wants more than the
    /// default 128: while the queue is full of connections not yet
    /// accepted, new SYNs are dropped (SYN cookies stand in only for
    /// half-open ones) and wait for the client's retransmission, a second
    /// or more.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub fn bind_with_backlog(
        stack: &Stack,
        local: impl Into<SocketAddr>,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        TcpListener::listen(stack, local.into(), Some(backlog))
    }

    fn listen(stack: &Stack, local: SocketAddr, backlog: Option<usize>) -> io::Result<TcpListener> {
        Ok(TcpListener {
            listening: Listening::bind(stack, local, backlog)?,
            timeout: Mutex::new(None),
            nonblocking: AtomicBool::new(false),
        })
    }

    /// The address and port listened on.
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.listening.local_addr())
    }

    /// Makes `accept` give up after `timeout` (`None`: wait forever).
    pub fn set_accept_timeout(&self, timeout: Option<Duration>) {
        *self.timeout.lock() = timeout;
    }

    /// Waits for an established connection and returns it with the peer's
    /// address.
    ///
    /// # Errors
    ///
    /// `WouldBlock` after the accept timeout; `NotConnected` once the stack
    /// is shut down.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let until = deadline(*self.timeout.lock());
        let Listening { stack, listener } = &self.listening;
        let ls = listener.state.lock();
        let sock = wait_or_block(
            "accept",
            &listener.cond,
            ls,
            until,
            &self.nonblocking,
            |ls| attempt::accept(stack, listener, ls, None),
        )?;
        let peer = sock.tuple.remote;
        Ok((TcpStream::new(Conn::new(stack, sock)), peer))
    }

    /// An iterator over accepted connections, like `std`'s `incoming`.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::from_fn(move || Some(self.accept().map(|(s, _)| s)))
    }

    /// In non-blocking mode `accept` returns `WouldBlock` at once when no
    /// connection is ready, as `std`'s does.
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }
}

/// A TCP connection, like `std::net::TcpStream`: `Read` and `Write` (also
/// on `&TcpStream`), `shutdown`, timeouts, and `try_clone` for a second
/// handle (one thread reading while another writes).
///
/// Dropping the last handle closes the connection gracefully (FIN), or
/// resets it if received data was left unread, as Linux does (RFC 9293
/// §3.10.4 allows either; a RST tells the peer its data was lost).
pub struct TcpStream {
    handle: Arc<Handle>,
}

/// What every handle of a stream shares; the connection is released
/// when the last one goes.
struct Handle {
    conn: Conn,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
    /// Shared by every handle of the connection, like a file status flag.
    nonblocking: AtomicBool,
}

/// How long an active open waits by default: Linux's 6 SYN retries with
/// back-off take about two minutes; we give up sooner.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(75);

impl TcpStream {
    fn new(conn: Conn) -> TcpStream {
        TcpStream {
            handle: Arc::new(Handle {
                conn,
                read_timeout: Mutex::new(None),
                write_timeout: Mutex::new(None),
                nonblocking: AtomicBool::new(false),
            }),
        }
    }

    /// Opens a connection to `remote` (IPv4 or IPv6) from the stack's
    /// address of its family and an ephemeral port the socket table picks.
    ///
    /// # Errors
    ///
    /// `ConnectionRefused` on a RST, `TimedOut` when the SYN goes
    /// unanswered, `AddrNotAvailable` when no ephemeral port is free or
    /// the stack has no address of `remote`'s family.
    pub fn connect(stack: &Stack, remote: impl Into<SocketAddr>) -> io::Result<TcpStream> {
        TcpStream::connect_timeout(stack, remote, DEFAULT_CONNECT_TIMEOUT)
    }

    /// [`connect`](Self::connect), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// As `connect`; `TimedOut` after `timeout`.
    pub fn connect_timeout(
        stack: &Stack,
        remote: impl Into<SocketAddr>,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        let remote = remote.into();
        let inner = &stack.inner;
        let stream = TcpStream::new(Conn::open(stack, remote)?);
        let sock = &stream.handle.conn.sock;
        let until = deadline(Some(timeout));
        let st = sock.state.lock();
        let nonblocking = &stream.handle.nonblocking;
        match wait_for(&sock.cond, st, until, nonblocking, |st| {
            attempt::connected(stack, sock, st, None)
        }) {
            Ok(r) => r?,
            Err((mut st, _)) => {
                st.conn.abort();
                inner.finish_activity(sock, st);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {remote} timed out"),
                ));
            }
        }
        Ok(stream)
    }

    /// Starts an active open and returns at once, with the stream in
    /// non-blocking mode (as a non-blocking `connect(2)` that reports
    /// `EINPROGRESS`): reads and writes return `WouldBlock` until the
    /// handshake completes (writes are queued already, RFC 9293 §3.10.2),
    /// and an error (refused, timed out) surfaces on the next read or
    /// write. [`state`](Self::state) tells when it is established. For
    /// a single thread that drives a [`Stack::driven`] stack. Shutting
    /// down the write side before then abandons the connection: a close
    /// in SYN-SENT deletes it (RFC 9293 §3.10.4).
    ///
    /// # Errors
    ///
    /// `AddrNotAvailable` when no ephemeral port is free; `NotConnected`
    /// once the stack is shut down.
    pub fn connect_nonblocking(
        stack: &Stack,
        remote: impl Into<SocketAddr>,
    ) -> io::Result<TcpStream> {
        let stream = TcpStream::new(Conn::open(stack, remote.into())?);
        stream.set_nonblocking(true)?;
        Ok(stream)
    }

    /// Our end of the connection: with a wildcard listener, the address
    /// the peer dialled.
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.handle.conn.local_addr())
    }

    /// The peer's end of the connection.
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.handle.conn.peer_addr())
    }

    /// The connection's RFC 9293 state.
    pub fn state(&self) -> State {
        self.handle.conn.state()
    }

    /// The connection's transport state, as Linux's `TCP_INFO` reports it:
    /// RTT, RTO, congestion window, bytes in flight, retransmissions, an
    /// estimate of the delivery rate ([`TcpInfo`] says how each is
    /// counted).
    pub fn info(&self) -> TcpInfo {
        self.handle.conn.info()
    }

    /// The connection's error, the first time it is asked for: `Some`
    /// once the connection was refused, reset, timed out or aborted, then
    /// `None`, as reading `SO_ERROR` clears it. For a stream from
    /// [`connect_nonblocking`](Self::connect_nonblocking), what a
    /// non-blocking `connect(2)` leaves in `SO_ERROR`. Unlike Linux, the
    /// error is not consumed by reads and writes: they keep failing with
    /// it, and `take_error` still reports it once.
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.handle.conn.take_error())
    }

    /// Reads like `read` but leaves the bytes in the receive buffer, so
    /// the next `peek` or `read` sees them again (`recv` with
    /// `MSG_PEEK`). It blocks as `read` does, under the read timeout and
    /// the non-blocking flag; `Ok(0)` is end-of-file.
    ///
    /// # Errors
    ///
    /// As `read`: the connection's error (`ConnectionReset`, ...),
    /// `WouldBlock` after the read timeout or in non-blocking mode,
    /// `NotConnected` once the stack is shut down.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_inner(buf, ReadMode::Peek)
    }

    /// A second handle to the same connection.
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            handle: Arc::clone(&self.handle),
        })
    }

    /// `None` blocks forever (the default).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        *self.handle.read_timeout.lock() = timeout;
        Ok(())
    }

    /// `None` blocks forever (the default).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        *self.handle.write_timeout.lock() = timeout;
        Ok(())
    }

    pub fn read_timeout(&self) -> Option<Duration> {
        *self.handle.read_timeout.lock()
    }

    pub fn write_timeout(&self) -> Option<Duration> {
        *self.handle.write_timeout.lock()
    }

    /// Disables (`true`) or enables Nagle's algorithm, like `TCP_NODELAY`.
    /// By default small writes wait while earlier data is unacknowledged,
    /// so they can be sent together (RFC 9293 §3.7.4).
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.handle.conn.set_nodelay(nodelay);
        Ok(())
    }

    pub fn nodelay(&self) -> bool {
        self.handle.conn.nodelay()
    }

    /// Probes an idle peer after `idle` without traffic and resets the
    /// connection if it does not answer (RFC 1122 §4.2.3.6), like
    /// `SO_KEEPALIVE` with `TCP_KEEPIDLE`; `None` (the default) turns it
    /// off. Connections opened after setting `Config::tcp.keepalive` have
    /// it from the start.
    pub fn set_keepalive(&self, idle: Option<Duration>) {
        let h = &self.handle;
        let mut st = h.conn.sock.state.lock();
        let now = h.conn.stack.inner.now();
        st.conn.set_keepalive(now, idle);
        h.conn.stack.inner.finish_activity(&h.conn.sock, st);
    }

    pub fn keepalive(&self) -> Option<Duration> {
        self.handle.conn.sock.state.lock().conn.keepalive()
    }

    /// `Write` sends a FIN once queued data is out (the peer reads EOF and
    /// may still send); `Read` makes our reads return EOF; `Both` does both.
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let h = &self.handle;
        let mut st = h.conn.sock.state.lock();
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            st.read_shut = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            st.conn.close();
        }
        h.conn.stack.inner.finish_activity(&h.conn.sock, st);
        Ok(())
    }

    /// Resets the connection at once: the peer gets a RST, bytes not yet
    /// sent or read are discarded, and every call on the connection (on
    /// any handle, waiting ones too) fails with `ConnectionAborted`. What
    /// `close` with `SO_LINGER` 0 does for a kernel socket: for a server
    /// that gives up on a peer that will not read (RFC 9293 §3.10.5).
    pub fn abort(&self) {
        self.handle.conn.abort();
    }

    /// In non-blocking mode reads and writes that would wait return
    /// `WouldBlock` at once, as `std`'s do. It holds for every handle of
    /// the connection (`try_clone` shares it).
    ///
    /// # Errors
    ///
    /// Never; the signature matches `std`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.handle
            .nonblocking
            .store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// `read` or `peek`: waits for data, end-of-file or an error.
    fn recv_inner(&self, buf: &mut [u8], mode: ReadMode) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let what = match mode {
            ReadMode::Take => "read",
            ReadMode::Peek => "peek",
        };
        let h = &self.handle;
        let until = deadline(*h.read_timeout.lock());
        let st = h.conn.sock.state.lock();
        wait_or_block(what, &h.conn.sock.cond, st, until, &h.nonblocking, |st| {
            attempt::read(&h.conn.stack, &h.conn.sock, st, buf, mode, None)
        })
    }

    fn write_inner(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        let h = &self.handle;
        let until = deadline(*h.write_timeout.lock());
        let st = h.conn.sock.state.lock();
        wait_or_block(
            "write",
            &h.conn.sock.cond,
            st,
            until,
            &h.nonblocking,
            |st| attempt::write(&h.conn.stack, &h.conn.sock, st, bufs, None),
        )
    }
}

fn check_timeout(timeout: Option<Duration>) -> io::Result<()> {
    if timeout == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_inner(buf, ReadMode::Take)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_inner(buf, ReadMode::Take)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(&[IoSlice::new(buf)])
    }
    /// Queues the slices in order under one lock, and sends them
    /// together.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_inner(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(&[IoSlice::new(buf)])
    }
    /// Queues the slices in order under one lock, and sends them
    /// together.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_inner(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr())
            .field("peer", &self.peer_addr())
            .finish()
    }
}
