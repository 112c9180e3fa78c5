//! The runtime: the threads that move packets between the device and the
//! sockets, and the shared state they work on. Protocol decisions are not
//! made here: connections (`tcp::Connection`) and listeners
//! (`tcp::listener::Listener`) are sans-IO, and the runtime feeds them
//! segments and time, stores what they open and sends what they owe.
//!
//! - The **RX thread** (`rx`) reads packets from the device in batches,
//!   validates each, answers ICMP and closed ports itself, and hands every
//!   TCP segment to its owner: a connection's queue for the batch, or the
//!   listener, whose decision (open, reply, drop) it carries out. After
//!   the batch it services each socket that got segments once: drain its
//!   queue into the connection, then transmit what the connection owes
//!   (one cumulative ACK for the whole batch).
//! - The **timer thread** (`timers`) sleeps until the earliest deadline
//!   a connection asked for and calls `handle_timeout` on it.
//! - **User threads** (the API) reach the runtime through `ops` (open,
//!   listen, bind, send a datagram, release) and the sockets it returns
//!   (`socket`): lock a socket, send or receive, and transmit directly,
//!   since a TUN write is safe from any thread.
//!
//! # Ownership
//!
//! `Inner` is the shared state; the threads hold it. User-facing handles
//! (every `Stack` clone, and through theirs every socket) also hold an
//! `Owner`, which the threads never do: when the last handle goes, its
//! drop shuts the stack down (resets connections, joins the threads), and
//! the device is released with the last `Inner`.
//!
//! # Lock order
//!
//! A socket's lock may be held while taking the table's write lock, the
//! timer heap's lock or a listener's lock; never the reverse. A listener's
//! lock is never held while taking the table's lock or a socket's: the RX
//! thread asks the listener, releases it, then stores the connection. The
//! RX thread holds the table's read lock only while looking up.

#[doc(hidden)]
pub mod __bench;
pub(crate) mod ops;
pub(crate) mod rx;
pub(crate) mod socket;
pub(crate) mod timers;
pub(crate) mod tx;

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::device::Device;
use crate::icmp::RateLimiter;
use crate::stats::{bump, Stats};
use crate::table::SocketTable;
use crate::tcp::isn::IsnGenerator;
use crate::tcp::syncookie::SynCookies;
use crate::time::{Clock, Instant, SystemClock};
use socket::{Entry, TcpSocket, TcpState};

/// A running stack: the device, the socket table and the threads that
/// drive them. Cheap to clone; every clone is the same stack.
///
/// The threads stop when [`Stack::shutdown`] is called, or when the last
/// handle goes: the last clone of the `Stack` and the last socket made
/// from it (a socket keeps its stack alive, as a `std::net` socket keeps
/// its file descriptor). Either way open connections are reset and the
/// device is released.
#[derive(Clone)]
pub struct Stack {
    pub(crate) inner: Arc<Inner>,
    /// Held by user-facing handles only, never by the stack's own threads
    /// (they hold `inner`): when the last handle is dropped, [`Owner`]'s
    /// drop shuts the stack down.
    _owner: Arc<Owner>,
}

/// Shuts the stack down when the last user-facing handle is dropped.
struct Owner {
    inner: Arc<Inner>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.inner.shutdown();
    }
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) device: Box<dyn Device>,
    pub(crate) clock: SystemClock,
    pub(crate) table: RwLock<SocketTable<Entry>>,
    pub(crate) stats: Stats,
    /// The ISN key (RFC 6528), shared by active opens and every listener.
    pub(crate) isn: IsnGenerator,
    /// The SYN-cookie key (RFC 4987), shared by every listener.
    pub(crate) cookies: SynCookies,
    pub(crate) timers: timers::Timers,
    pub(crate) icmp_limit: Mutex<RateLimiter>,
    pub(crate) shutdown: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Stack {
    /// Starts a stack on `device` with `config`: spawns the RX and timer
    /// threads.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `config` breaks a rule of [`Config::validate`]
    /// (the message names the field); any error from spawning a thread.
    pub fn new<D: Device + 'static>(device: D, config: Config) -> io::Result<Stack> {
        config.validate()?;
        let inner = Arc::new(Inner::new(Box::new(device), config));
        let rx = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("stack-rx".into())
                .spawn(move || rx::run(&inner))?
        };
        let timer = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("stack-timers".into())
                .spawn(move || timers::run(&inner))?
        };
        inner.threads.lock().extend([rx, timer]);
        Ok(Stack {
            _owner: Arc::new(Owner {
                inner: Arc::clone(&inner),
            }),
            inner,
        })
    }

    /// The address this stack owns.
    pub fn addr(&self) -> Ipv4Addr {
        self.inner.config.addr
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The stack's counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Stops the stack: resets every open TCP connection (the peer sees a
    /// RST rather than a silent end), wakes every blocked call, and joins
    /// the threads. Calls after the first do nothing. Dropping the last
    /// handle does the same.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Whether [`Stack::shutdown`] has been called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.is_shut_down()
    }
}

impl Inner {
    /// The shared state of a stack on `device`, with no threads yet.
    /// `config` was validated.
    fn new(device: Box<dyn Device>, config: Config) -> Inner {
        let clock = SystemClock::new();
        Inner {
            table: RwLock::new(SocketTable::new(config.max_connections)),
            icmp_limit: Mutex::new(RateLimiter::new(config.icmp_errors_per_sec, Instant::ZERO)),
            config,
            device,
            clock,
            stats: Stats::default(),
            isn: IsnGenerator::new(),
            cookies: SynCookies::new(),
            timers: timers::Timers::default(),
            shutdown: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// See [`Stack::shutdown`].
    fn shutdown(&self) {
        if self.shutdown.swap(true, Ordering::SeqCst) {
            return;
        }
        for entry in self.entries() {
            match entry {
                Entry::Tcp(sock) => {
                    let mut st = sock.state.lock();
                    if !st.conn.is_closed() {
                        st.conn.abort();
                    }
                    self.after_activity(&sock, &mut st);
                }
                Entry::Listener(l) => {
                    l.state.lock().tcp.close();
                    l.cond.notify_all();
                }
                Entry::Udp(u) => {
                    u.cond.notify_all();
                }
            }
        }
        self.timers.wake();
        let threads = std::mem::take(&mut *self.threads.lock());
        let me = std::thread::current().id();
        for t in threads {
            // A stack thread never holds a user handle, so it cannot run
            // the last handle's drop; the check only keeps a future
            // change from deadlocking here.
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }

    /// After anything happened to a connection: transmit what it owes,
    /// hand it to its listener once established, remove it from the table
    /// once closed, keep its timer armed, and wake its waiters.
    pub(crate) fn after_activity(&self, sock: &Arc<TcpSocket>, st: &mut TcpState) {
        let now = self.now();
        tx::transmit_tcp(self, &mut st.conn, now);

        if st.conn.is_established() || st.conn.is_closed() {
            if let Some(weak) = st.listener.take() {
                self.hand_to_listener(sock, st, weak.upgrade());
            }
        }
        if st.conn.is_closed() && !st.removed {
            st.removed = true;
            self.table.write().remove_connection(&sock.tuple);
            bump(&self.stats.tcp_closed);
        }
        let orphan = st.orphan_deadline.filter(|_| !st.conn.is_closed());
        let next = match (st.conn.poll_timeout(), orphan) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(at) = next {
            if st.armed.is_none_or(|armed| at < armed || armed <= now) {
                st.armed = Some(at);
                self.timers.schedule(at, Arc::downgrade(sock));
            }
        }
        sock.cond.notify_all();
    }

    fn hand_to_listener(
        &self,
        sock: &Arc<TcpSocket>,
        st: &mut TcpState,
        listener: Option<Arc<socket::Listener>>,
    ) {
        let Some(listener) = listener else {
            // The listener is gone: nobody will accept this connection.
            if !st.conn.is_closed() {
                st.conn.abort();
                tx::transmit_tcp(self, &mut st.conn, self.now());
            }
            return;
        };
        let mut ls = listener.state.lock();
        if st.conn.is_closed() {
            ls.tcp.half_open_gone();
            return;
        }
        if ls.tcp.is_closed() {
            ls.tcp.half_open_gone();
            drop(ls);
            st.conn.abort();
            tx::transmit_tcp(self, &mut st.conn, self.now());
            return;
        }
        ls.push_ready(Arc::clone(sock));
        drop(ls);
        listener.cond.notify_one();
    }
}
