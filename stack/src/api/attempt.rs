//! One attempt at each socket operation that may have to wait: read,
//! write, connect, accept, receive a datagram. The blocking and the async
//! API differ only in how they wait (a condition variable, a waker), so
//! the attempt itself, with its runtime calls and its error mapping, is
//! written once here.
//!
//! Each attempt takes the socket's lock guard and either finishes
//! ([`Step::Ready`]) or hands the guard back ([`Step::Wait`]) so the
//! caller can wait without a window in which a wake-up is lost. Given a
//! waker, an attempt that must wait registers it under the lock before
//! its last check, so a task is woken by any event after the check.
//!
//! Data leaves a socket only in an attempt that returns `Ready`: a caller
//! that gives up while waiting (a timed-out thread, a dropped future)
//! loses nothing.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Waker;

use parking_lot::MutexGuard;

use crate::runtime::socket::{Datagram, ListenState, Listener, TcpSocket, TcpState, UdpQueue};
use crate::runtime::Stack;
use crate::stats::bump;
use crate::tcp::error::{RecvError, SendError};

use super::{conn_error, shut_down};

/// How an attempt ended.
pub(crate) enum Step<G, T> {
    /// Done, with this result.
    Ready(io::Result<T>),
    /// Not yet: wait on the socket (the guard is still held).
    Wait(G),
}

/// Whether a read takes the bytes it copies out.
#[derive(Clone, Copy)]
pub(crate) enum ReadMode {
    /// `read`: the bytes leave the receive buffer.
    Take,
    /// `peek` (`MSG_PEEK`): the bytes stay for the next peek or read.
    Peek,
}

/// Reads what the connection holds into `buf` (not empty), taking the
/// bytes or leaving them as `mode` says.
///
/// End-of-file (0) after the peer's FIN or our `shutdown(Read)`; the
/// connection's error once it failed.
pub(crate) fn read<'a>(
    stack: &Stack,
    sock: &Arc<TcpSocket>,
    mut st: MutexGuard<'a, TcpState>,
    buf: &mut [u8],
    mode: ReadMode,
    waker: Option<&Waker>,
) -> Step<MutexGuard<'a, TcpState>, usize> {
    if st.read_shut {
        return Step::Ready(Ok(0));
    }
    let got = match mode {
        ReadMode::Take => st.conn.recv(buf),
        ReadMode::Peek => st.conn.peek(buf),
    };
    match got {
        Ok(0) => {}
        Ok(n) if matches!(mode, ReadMode::Peek) => return Step::Ready(Ok(n)),
        Ok(n) => {
            // Reading freed buffer space: the connection may owe the peer
            // a window update.
            stack.inner.finish_activity(sock, st);
            return Step::Ready(Ok(n));
        }
        Err(RecvError::Finished) | Err(RecvError::InvalidState) => return Step::Ready(Ok(0)),
        Err(RecvError::Conn(e)) => return Step::Ready(Err(conn_error(e))),
    }
    wait(stack, &sock.wakers, st, waker)
}

/// Queues what fits of `bufs`, in order, on the connection: a vectored
/// write is one lock and one transmit for all its slices. Empty slices
/// are skipped; with nothing to queue at all, `Ready(Ok(0))`.
///
/// `BrokenPipe` after our FIN; the connection's error once it failed (an
/// error after some bytes were queued comes with the next call).
pub(crate) fn write<'a>(
    stack: &Stack,
    sock: &Arc<TcpSocket>,
    mut st: MutexGuard<'a, TcpState>,
    bufs: &[IoSlice<'_>],
    waker: Option<&Waker>,
) -> Step<MutexGuard<'a, TcpState>, usize> {
    let mut queued = 0;
    for buf in bufs.iter().filter(|b| !b.is_empty()) {
        match st.conn.send(buf) {
            Ok(n) => {
                queued += n;
                if n < buf.len() {
                    break;
                }
            }
            Err(_) if queued > 0 => break,
            Err(SendError::InvalidState) => {
                return Step::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the connection's write side is closed",
                )))
            }
            Err(SendError::Conn(e)) => return Step::Ready(Err(conn_error(e))),
        }
    }
    if queued > 0 {
        stack.inner.finish_activity(sock, st);
        return Step::Ready(Ok(queued));
    }
    if bufs.iter().all(|b| b.is_empty()) {
        return Step::Ready(Ok(0));
    }
    wait(stack, &sock.wakers, st, waker)
}

/// Whether an active open has completed: `Ready(Ok)` once established,
/// the connection's error (refused, timed out) if it failed.
pub(crate) fn connected<'a>(
    stack: &Stack,
    sock: &TcpSocket,
    st: MutexGuard<'a, TcpState>,
    waker: Option<&Waker>,
) -> Step<MutexGuard<'a, TcpState>, ()> {
    if let Some(e) = st.conn.error() {
        return Step::Ready(Err(conn_error(e)));
    }
    if st.conn.is_established() {
        return Step::Ready(Ok(()));
    }
    wait(stack, &sock.wakers, st, waker)
}

/// Takes the oldest established connection off `listener`'s accept queue.
///
/// `NotConnected` once the listener or the stack is closed.
pub(crate) fn accept<'a>(
    stack: &Stack,
    listener: &Listener,
    mut ls: MutexGuard<'a, ListenState>,
    waker: Option<&Waker>,
) -> Step<MutexGuard<'a, ListenState>, Arc<TcpSocket>> {
    if let Some(sock) = ls.pop_ready() {
        drop(ls);
        bump(&stack.inner.stats.tcp_accepted);
        return Step::Ready(Ok(sock));
    }
    if ls.tcp.is_closed() {
        return Step::Ready(Err(shut_down()));
    }
    wait(stack, &listener.wakers, ls, waker)
}

/// Takes the oldest datagram off a UDP socket's queue.
pub(crate) fn recv_datagram<'a>(
    stack: &Stack,
    sock: &crate::runtime::socket::UdpSocket,
    mut q: MutexGuard<'a, UdpQueue>,
    waker: Option<&Waker>,
) -> Step<MutexGuard<'a, UdpQueue>, Datagram> {
    if let Some(d) = q.datagrams.pop_front() {
        return Step::Ready(Ok(d));
    }
    wait(stack, &sock.wakers, q, waker)
}

/// Copies `d` into `buf`, truncating as `std` does; its length there,
/// its sender and the address it was sent to.
pub(crate) fn copy_datagram(d: &Datagram, buf: &mut [u8]) -> (usize, SocketAddr, SocketAddr) {
    let n = d.data.len().min(buf.len());
    buf[..n].copy_from_slice(&d.data[..n]);
    (n, d.from, d.to)
}

/// The end of an attempt that found nothing: registers `waker`, then
/// fails if the stack is shut down (checked after registering: the
/// shutdown sets its flag before it wakes the sockets, not always under
/// their locks).
fn wait<G, T>(
    stack: &Stack,
    wakers: &crate::runtime::socket::Wakers,
    guard: G,
    waker: Option<&Waker>,
) -> Step<G, T> {
    if let Some(w) = waker {
        wakers.register(w);
    }
    if stack.is_shut_down() {
        return Step::Ready(Err(shut_down()));
    }
    Step::Wait(guard)
}
