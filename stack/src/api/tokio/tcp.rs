//! Async `TcpListener` and `TcpStream`.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::api::attempt::{self, ReadMode, Step};
use crate::api::owned::{Conn, Listening};
use crate::runtime::Stack;
use crate::tcp::connection::info::TcpInfo;
use crate::tcp::state::State;

/// A TCP socket waiting for connections, like `tokio::net::TcpListener`.
///
/// Connections complete the handshake in the stack and wait in a bounded
/// queue (`Config::accept_backlog`) until [`accept`](Self::accept) takes
/// them. Dropping the listener resets the connections nobody accepted.
pub struct TcpListener {
    listening: Listening,
}

impl TcpListener {
    /// Listens on `local`, as the blocking
    /// [`TcpListener::bind`](crate::TcpListener::bind) does (one of the
    /// stack's addresses, or `0.0.0.0` / `[::]`). It never waits, so it
    /// is not `async`.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if a listener already holds the address and port;
    /// `AddrNotAvailable` for an address that is not the stack's.
    pub fn bind(stack: &Stack, local: impl Into<SocketAddr>) -> io::Result<TcpListener> {
        Ok(TcpListener {
            listening: Listening::bind(stack, local.into(), None)?,
        })
    }

    /// [`bind`](Self::bind) with an accept queue of `backlog` connections,
    /// as the blocking
    /// [`TcpListener::bind_with_backlog`](crate::TcpListener::bind_with_backlog)
    /// (and tokio's `TcpSocket::listen`) set it.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub fn bind_with_backlog(
        stack: &Stack,
        local: impl Into<SocketAddr>,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        Ok(TcpListener {
            listening: Listening::bind(stack, local.into(), Some(backlog))?,
        })
    }

    /// The address and port listened on.
    ///
    /// # Errors
    ///
    /// Never; the signature matches tokio's.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.listening.local_addr())
    }

    /// Waits for an established connection and returns it with the peer's
    /// address. Cancellation-safe: a connection is taken off the queue
    /// only when this returns it.
    ///
    /// # Errors
    ///
    /// `NotConnected` once the stack is shut down.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// The poll behind [`accept`](Self::accept).
    ///
    /// # Errors
    ///
    /// As `accept`.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let Listening { stack, listener } = &self.listening;
        let ls = listener.state.lock();
        match attempt::accept(stack, listener, ls, Some(cx.waker())) {
            Step::Ready(r) => Poll::Ready(r.map(|sock| {
                let peer = sock.tuple.remote;
                (TcpStream::new(Conn::new(stack, sock)), peer)
            })),
            Step::Wait(_) => Poll::Pending,
        }
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.listening.local_addr())
            .finish()
    }
}

/// A TCP connection, like `tokio::net::TcpStream`: `AsyncRead` and
/// `AsyncWrite`, [`split`](Self::split) and
/// [`into_split`](Self::into_split).
///
/// `poll_shutdown` sends a FIN once queued data is out (the peer reads
/// end-of-file and may still send). Dropping the stream (every half of
/// it) closes the connection gracefully, or resets it if received data
/// was left unread, as the blocking stream does.
pub struct TcpStream {
    conn: Arc<Conn>,
}

impl TcpStream {
    /// Every half of a stream shares the `Conn`; the connection is
    /// released when the last one goes.
    fn new(conn: Conn) -> TcpStream {
        TcpStream {
            conn: Arc::new(conn),
        }
    }

    /// Opens a connection to `remote` (IPv4 or IPv6) from the stack's
    /// address of its family and an ephemeral port, and waits for the
    /// handshake. The SYN goes out when the future is first polled;
    /// dropping the future before the handshake completes abandons the
    /// connection. It gives up after
    /// `TcpConfig::syn_retries` retransmissions; wrap it in
    /// `tokio::time::timeout` for a shorter deadline.
    ///
    /// # Errors
    ///
    /// `ConnectionRefused` on a RST, `TimedOut` when the SYN goes
    /// unanswered, `AddrNotAvailable` when no ephemeral port is free or
    /// the stack has no address of `remote`'s family.
    pub async fn connect(stack: &Stack, remote: impl Into<SocketAddr>) -> io::Result<TcpStream> {
        let stream = TcpStream::new(Conn::open(stack, remote.into())?);
        poll_fn(|cx| stream.conn.poll_connected(cx)).await?;
        Ok(stream)
    }

    /// Our end of the connection: with a wildcard listener, the address
    /// the peer dialled.
    ///
    /// # Errors
    ///
    /// Never; the signature matches tokio's.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.conn.local_addr())
    }

    /// The peer's end of the connection.
    ///
    /// # Errors
    ///
    /// Never; the signature matches tokio's.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.conn.peer_addr())
    }

    /// The connection's RFC 9293 state.
    pub fn state(&self) -> State {
        self.conn.state()
    }

    /// The connection's transport state, as Linux's `TCP_INFO` reports it
    /// (see the blocking [`info`](crate::TcpStream::info)).
    pub fn info(&self) -> TcpInfo {
        self.conn.info()
    }

    /// The connection's error, the first time it is asked for: `Some`
    /// once the connection was refused, reset, timed out or aborted, then
    /// `None`, as reading `SO_ERROR` clears it (see the blocking
    /// [`take_error`](crate::TcpStream::take_error)).
    ///
    /// # Errors
    ///
    /// Never; the signature matches tokio's.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.conn.take_error())
    }

    /// Waits for data like a read but leaves it in the receive buffer, so
    /// the next `peek` or read sees it again (`MSG_PEEK`); `Ok(0)` is
    /// end-of-file. Cancellation-safe: it takes nothing.
    ///
    /// # Errors
    ///
    /// As a read: the connection's error (`ConnectionReset`, ...),
    /// `NotConnected` once the stack is shut down.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.conn.poll_recv(cx, buf, ReadMode::Peek)).await
    }

    /// Resets the connection at once: the peer gets a RST, bytes not yet
    /// sent or read are discarded, and every call on the connection (on
    /// any half) fails with `ConnectionAborted` (see the blocking
    /// [`abort`](crate::TcpStream::abort)). Tokio's sockets do this with
    /// `set_zero_linger` and a drop.
    pub fn abort(&self) {
        self.conn.abort();
    }

    /// Disables (`true`) or enables Nagle's algorithm, like `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// Never; the signature matches tokio's.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.conn.set_nodelay(nodelay);
        Ok(())
    }

    /// Whether Nagle's algorithm is off.
    ///
    /// # Errors
    ///
    /// Never; the signature matches tokio's.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.conn.nodelay())
    }

    /// Borrowed read and write halves, for reading and writing at once
    /// in one task (e.g. `tokio::io::copy(&mut rd, &mut wr)`).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (
            ReadHalf { conn: &self.conn },
            WriteHalf { conn: &self.conn },
        )
    }

    /// Owned read and write halves, for reading and writing from
    /// different tasks. Dropping the write half sends a FIN, as tokio's
    /// does; the connection is released when both halves are gone.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let read = OwnedReadHalf {
            conn: Arc::clone(&self.conn),
        };
        (read, OwnedWriteHalf { conn: self.conn })
    }
}

impl Conn {
    fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let st = self.sock.state.lock();
        match attempt::connected(&self.stack, &self.sock, st, Some(cx.waker())) {
            Step::Ready(r) => Poll::Ready(r),
            Step::Wait(_) => Poll::Pending,
        }
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = ready!(self.poll_recv(cx, buf.initialize_unfilled(), ReadMode::Take))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    /// A read or a peek into `buf`.
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        mode: ReadMode,
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let st = self.sock.state.lock();
        match attempt::read(&self.stack, &self.sock, st, buf, mode, Some(cx.waker())) {
            Step::Ready(r) => Poll::Ready(r),
            Step::Wait(_) => Poll::Pending,
        }
    }

    /// Queues what fits of `bufs`, in order, under one lock.
    fn poll_write(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let st = self.sock.state.lock();
        match attempt::write(&self.stack, &self.sock, st, bufs, Some(cx.waker())) {
            Step::Ready(r) => Poll::Ready(r),
            Step::Wait(_) => Poll::Pending,
        }
    }

    /// Sends a FIN once queued data is out (RFC 9293 §3.10.4 CLOSE).
    fn shutdown_write(&self) {
        let mut st = self.sock.state.lock();
        st.conn.close();
        self.stack.inner.finish_activity(&self.sock, st);
    }
}

/// Implements `AsyncRead` and `AsyncWrite` for a type with a `conn`.
macro_rules! async_io {
    (read: $($t:ty),*) => {$(
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.conn.poll_read(cx, buf)
            }
        }
    )*};
    (write: $($t:ty),*) => {$(
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.conn.poll_write(cx, &[IoSlice::new(buf)])
            }

            /// hyper writes a response's head and body chunks as one
            /// vectored write rather than copying them together first.
            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.conn.poll_write(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            /// Data written is already queued on the connection: nothing
            /// to flush.
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            /// Sends a FIN once queued data is out; reading goes on.
            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.conn.shutdown_write();
                Poll::Ready(Ok(()))
            }
        }
    )*};
}

async_io!(read: TcpStream, ReadHalf<'_>, OwnedReadHalf);
async_io!(write: TcpStream, WriteHalf<'_>, OwnedWriteHalf);

/// The read half of a [`TcpStream::split`].
pub struct ReadHalf<'a> {
    conn: &'a Arc<Conn>,
}

/// The write half of a [`TcpStream::split`].
pub struct WriteHalf<'a> {
    conn: &'a Arc<Conn>,
}

/// The read half of a [`TcpStream::into_split`].
pub struct OwnedReadHalf {
    conn: Arc<Conn>,
}

/// The write half of a [`TcpStream::into_split`]; dropping it sends a
/// FIN.
pub struct OwnedWriteHalf {
    conn: Arc<Conn>,
}

impl OwnedReadHalf {
    /// The peer's end of the connection.
    ///
    /// # Errors
    ///
    /// Never; the signature matches tokio's.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.conn.peer_addr())
    }

    /// Our end of the connection.
    ///
    /// # Errors
    ///
    /// Never; the signature matches tokio's.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.conn.local_addr())
    }
}

impl OwnedWriteHalf {
    /// The peer's end of the connection.
    ///
    /// # Errors
    ///
    /// Never; the signature matches tokio's.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.conn.peer_addr())
    }

    /// Our end of the connection.
    ///
    /// # Errors
    ///
    /// Never; the signature matches tokio's.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.conn.local_addr())
    }
}

impl Drop for OwnedWriteHalf {
    /// Sends a FIN, as tokio's `OwnedWriteHalf` does: the peer reads
    /// end-of-file, and the read half goes on reading.
    fn drop(&mut self) {
        self.conn.shutdown_write();
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.conn.sock.tuple.local)
            .field("peer", &self.conn.sock.tuple.remote)
            .finish()
    }
}
