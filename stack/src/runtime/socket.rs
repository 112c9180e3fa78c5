//! The runtime's sockets: each protocol state behind its own lock, with a
//! condition variable that wakes the user threads blocked on it and a
//! [`Wakers`] set that wakes the async tasks waiting on it. Whoever
//! changes a socket's state calls its `notify`, which signals both.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::Waker;

use parking_lot::{Condvar, Mutex};

use crate::table::{FourTuple, ListenKey};
use crate::tcp;
use crate::tcp::connection::Connection;
use crate::tcp::state::State;
use crate::time::Instant;

/// What the socket table stores.
#[derive(Clone)]
pub(crate) enum Entry {
    Tcp(Arc<TcpSocket>),
    Listener(Arc<Listener>),
    Udp(Arc<UdpSocket>),
}

/// One TCP connection.
///
/// `repr(C)` with `rx_mark` first: the mark then sits in the cache line of
/// the `Arc`'s reference count just before it, and the RX thread, which
/// reads the mark for every segment and bumps the count on a socket's
/// first segment of a batch, misses once per socket rather than twice.
#[repr(C)]
pub(crate) struct TcpSocket {
    /// The RX thread's bookkeeping for the current batch: the batch number
    /// in the high 32 bits and the socket's slot in the low 32, so finding
    /// a socket's queue takes no map.
    pub(crate) rx_mark: AtomicU64,
    pub(crate) tuple: FourTuple,
    pub(crate) state: Mutex<TcpState>,
    /// Signalled whenever the connection may have become readable,
    /// writable, established or closed.
    pub(crate) cond: Condvar,
    /// The async tasks waiting on the same events as `cond`'s threads.
    pub(crate) wakers: Wakers,
    /// Set when handling this connection panicked on a stack thread; the
    /// supervisor then resets it (`runtime::supervise`).
    pub(crate) poisoned: AtomicBool,
}

pub(crate) struct TcpState {
    pub(crate) conn: Connection,
    /// The listener of a passively opened connection until it is handed
    /// to that listener's accept queue.
    pub(crate) listener: Option<Weak<Listener>>,
    /// The deadline this socket has in the timer heap, if any.
    pub(crate) armed: Option<Instant>,
    /// Removed from the table (CLOSED).
    pub(crate) removed: bool,
    /// Counted among the retired connections (TIME-WAIT or orphaned, see
    /// `runtime::retired`).
    pub(crate) retired: bool,
    /// `shutdown(Read)` was called: reads return end-of-file.
    pub(crate) read_shut: bool,
    /// Set when the application drops its last handle: the connection is
    /// reset if it has not closed by then (`Config::orphan_timeout`).
    pub(crate) orphan_deadline: Option<Instant>,
    /// The state last reported to the log, so each change is logged once.
    pub(crate) logged_state: State,
}

impl TcpSocket {
    pub(crate) fn new(conn: Connection, listener: Option<Weak<Listener>>) -> TcpSocket {
        TcpSocket {
            tuple: FourTuple {
                local: conn.local(),
                remote: conn.remote(),
            },
            state: Mutex::new(TcpState {
                logged_state: conn.state(),
                conn,
                listener,
                armed: None,
                removed: false,
                retired: false,
                read_shut: false,
                orphan_deadline: None,
            }),
            cond: Condvar::new(),
            wakers: Wakers::new(),
            rx_mark: AtomicU64::new(u64::MAX),
            poisoned: AtomicBool::new(false),
        }
    }

    /// Wakes every thread and task waiting on the connection: it may have
    /// become readable, writable, established or closed.
    pub(crate) fn notify(&self) {
        self.cond.notify_all();
        self.wakers.wake_all();
    }
}

/// A TCP listener: the sans-IO [`tcp::listener::Listener`] (decisions,
/// backlog, cookies) and the accept queue of established connections that
/// `accept` waits on.
pub(crate) struct Listener {
    pub(crate) key: ListenKey,
    pub(crate) state: Mutex<ListenState>,
    /// Signalled when a connection joins the queue or the listener closes.
    pub(crate) cond: Condvar,
    /// The async tasks waiting in `accept`.
    pub(crate) wakers: Wakers,
}

pub(crate) struct ListenState {
    pub(crate) tcp: tcp::listener::Listener,
    /// Established connections waiting for `accept`; `tcp.queued()` is its
    /// length, kept so by the methods below.
    ready: VecDeque<Arc<TcpSocket>>,
}

impl Listener {
    pub(crate) fn new(key: ListenKey, tcp: tcp::listener::Listener) -> Listener {
        Listener {
            key,
            state: Mutex::new(ListenState {
                tcp,
                ready: VecDeque::new(),
            }),
            cond: Condvar::new(),
            wakers: Wakers::new(),
        }
    }

    /// A connection joined the accept queue: one blocked thread takes it,
    /// and every waiting task looks (a task's waker may be stale, so
    /// waking one could wake nobody).
    pub(crate) fn notify_one(&self) {
        self.cond.notify_one();
        self.wakers.wake_all();
    }

    /// The listener closed: every waiter returns.
    pub(crate) fn notify_all(&self) {
        self.cond.notify_all();
        self.wakers.wake_all();
    }
}

impl ListenState {
    /// Moves one of this listener's half-open connections, now
    /// established, into the accept queue.
    pub(crate) fn push_ready(&mut self, sock: Arc<TcpSocket>) {
        self.tcp.established();
        self.ready.push_back(sock);
    }

    /// Takes the oldest established connection off the accept queue.
    pub(crate) fn pop_ready(&mut self) -> Option<Arc<TcpSocket>> {
        let sock = self.ready.pop_front()?;
        self.tcp.accepted();
        Some(sock)
    }
}

/// A UDP socket and its bounded queue of received datagrams.
pub(crate) struct UdpSocket {
    pub(crate) key: ListenKey,
    pub(crate) queue: Mutex<UdpQueue>,
    pub(crate) cond: Condvar,
    /// The async tasks waiting in `recv_from`.
    pub(crate) wakers: Wakers,
}

/// A datagram waiting to be read.
pub(crate) struct Datagram {
    /// The sender.
    pub(crate) from: SocketAddr,
    /// The address and port it was sent to: ours, or with
    /// `Config::any_address` whichever address the sender dialled.
    pub(crate) to: SocketAddr,
    pub(crate) data: Vec<u8>,
}

pub(crate) struct UdpQueue {
    pub(crate) datagrams: VecDeque<Datagram>,
    pub(crate) depth: usize,
    /// The peer of a connected socket: only its datagrams are queued.
    pub(crate) peer: Option<SocketAddr>,
}

impl UdpSocket {
    pub(crate) fn new(key: ListenKey, depth: usize) -> UdpSocket {
        UdpSocket {
            key,
            queue: Mutex::new(UdpQueue {
                datagrams: VecDeque::new(),
                depth,
                peer: None,
            }),
            cond: Condvar::new(),
            wakers: Wakers::new(),
        }
    }

    /// A datagram arrived: one blocked thread takes it, and every waiting
    /// task looks.
    pub(crate) fn notify_one(&self) {
        self.cond.notify_one();
        self.wakers.wake_all();
    }

    /// The stack shut down: every waiter returns.
    pub(crate) fn notify_all(&self) {
        self.cond.notify_all();
        self.wakers.wake_all();
    }
}

/// The wakers of the async tasks waiting on one socket: the async twin of
/// its condition variable, woken wherever the condition variable is
/// signalled, so blocking and async users share one runtime.
///
/// A task registers its waker *while holding the socket's state lock*,
/// after finding it not ready; whoever makes it ready changes the state
/// under that lock and then calls [`wake_all`](Self::wake_all), so either
/// the task saw the change or the wake sees the waker. Every waker is
/// woken (and the set emptied) on every event, as `notify_all` wakes every
/// thread: a task polled again re-registers if it must still wait. A
/// waker left by a dropped future is dropped at the next event, so the
/// set holds at most one waker per task that waited since then.
///
/// Costs a socket nothing while no task waits: the event path reads one
/// flag.
pub(crate) struct Wakers {
    /// Whether `list` may be non-empty: lets `wake_all` skip the lock.
    armed: AtomicBool,
    list: Mutex<Vec<Waker>>,
}

impl Wakers {
    pub(crate) const fn new() -> Wakers {
        Wakers {
            armed: AtomicBool::new(false),
            list: Mutex::new(Vec::new()),
        }
    }

    /// Adds `waker` (once: a task polled twice is woken once).
    // Only the async API (feature `tokio`) waits with wakers.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn register(&self, waker: &Waker) {
        let mut list = self.list.lock();
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
        // SeqCst pairs with the swap in `wake_all`: a wake that follows
        // this registration sees the flag set.
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Wakes and forgets every registered waker.
    pub(crate) fn wake_all(&self) {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return;
        }
        let wakers = std::mem::take(&mut *self.list.lock());
        // Woken outside the lock: a waker may run code that registers.
        for w in wakers {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wakes.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (Arc::clone(&count), Waker::from(count))
    }

    #[test]
    fn wakers_wake_each_registered_task_once_per_event() {
        let wakers = Wakers::new();
        let (a, wa) = counting();
        let (b, wb) = counting();
        wakers.register(&wa);
        // The same task polled again is kept once.
        wakers.register(&wa.clone());
        wakers.register(&wb);
        wakers.wake_all();
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        // Woken wakers are forgotten: a task must register again.
        wakers.wake_all();
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        assert!(wakers.list.lock().is_empty());
        wakers.register(&wb);
        wakers.wake_all();
        assert_eq!(b.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn wakers_unarmed_costs_no_lock() {
        let wakers = Wakers::new();
        // Held elsewhere: an unarmed wake must not try to take it.
        let _held = wakers.list.lock();
        wakers.wake_all();
    }
}
