//! The runtime: the threads that move packets between the device and the
//! sockets, and the shared state they work on.
//!
//! - The **RX thread** ([`rx`]) reads packets from the device in batches,
//!   validates each, answers ICMP and closed ports itself, and hands every
//!   TCP segment to its socket's queue for the batch. After the batch it
//!   services each socket that got segments once: drain its queue into the
//!   connection, then transmit what the connection owes (one cumulative
//!   ACK for the whole batch).
//! - The **timer thread** ([`timers`]) sleeps until the earliest deadline
//!   a connection asked for and calls `handle_timeout` on it.
//! - **User threads** (the API) lock a socket, send or receive, and
//!   transmit directly: a TUN write is safe from any thread.
//!
//! A **driven** stack ([`Stack::driven`]) has neither thread: whoever
//! drives it calls [`Stack::poll`] (one non-blocking RX pass, then every
//! timer due) and reads [`Stack::poll_at`] for when to call it next, with
//! time from an injected clock. Two driven stacks over a
//! [`crate::device::mem::MemPair`], one `ManualClock` and seeded keys run
//! a whole conversation in simulated time, reproducibly.
//!
//! Lock order: a socket's lock may be held while taking the table's write
//! lock, the timer heap's lock or a listener's lock; never the reverse.
//! The RX thread holds the table's read lock only while looking up.

pub(crate) mod rx;
pub(crate) mod socket;
pub(crate) mod timers;
pub(crate) mod tx;

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::device::{Device, PacketBatch};
use crate::icmp::RateLimiter;
use crate::stats::{bump, Stats};
use crate::table::ports::PortAllocator;
use crate::table::SocketTable;
use crate::tcp::isn::IsnGenerator;
use crate::tcp::secret::seeded_key;
use crate::tcp::syncookie::SynCookies;
use crate::time::{Clock, Instant, SystemClock};
use socket::{Entry, TcpSocket, TcpState};

/// A running stack: the device, the socket table and the threads that
/// drive them. Cheap to clone; every clone is the same stack.
///
/// The threads stop when [`Stack::shutdown`] is called. Dropping every
/// clone without calling it leaves them running until the process exits.
#[derive(Clone)]
pub struct Stack {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) device: Box<dyn Device>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) table: RwLock<SocketTable<Entry>>,
    pub(crate) stats: Stats,
    pub(crate) isn: IsnGenerator,
    pub(crate) timers: timers::Timers,
    pub(crate) icmp_limit: Mutex<RateLimiter>,
    pub(crate) shutdown: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// A driven stack's RX state, used by `poll`; `None` when threads
    /// drive the stack.
    driven: Option<Mutex<Driven>>,
}

/// What the RX thread keeps on its stack, kept here for `poll` instead.
struct Driven {
    rx: rx::Rx,
    batch: PacketBatch,
}

impl Stack {
    /// Starts a stack on `device` with `config`: spawns the RX and timer
    /// threads.
    ///
    /// # Errors
    ///
    /// When a thread cannot be spawned.
    pub fn new<D: Device + 'static>(device: D, config: Config) -> io::Result<Stack> {
        let clock = SystemClock::new();
        let inner = Arc::new(Inner {
            table: RwLock::new(SocketTable::new(config.max_connections)),
            icmp_limit: Mutex::new(RateLimiter::new(config.icmp_errors_per_sec, Instant::ZERO)),
            config,
            device: Box::new(device),
            // A copy: `SystemClock` is `Copy`, so the timer thread's copy
            // below has the same epoch and converts these deadlines.
            clock: Arc::new(clock),
            stats: Stats::default(),
            isn: IsnGenerator::new(),
            timers: timers::Timers::default(),
            shutdown: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            driven: None,
        });
        let rx = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("stack-rx".into())
                .spawn(move || rx::run(&inner, SynCookies::new()))?
        };
        let timer = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("stack-timers".into())
                .spawn(move || timers::run(&inner, &clock))?
        };
        inner.threads.lock().extend([rx, timer]);
        Ok(Stack { inner })
    }

    /// A stack on `device` with `config` that no thread drives: time comes
    /// from `clock`, and nothing happens until the caller calls
    /// [`poll`](Self::poll). Every key the stack would draw at random (ISNs,
    /// SYN cookies, ephemeral ports) is derived from `seed` instead, so
    /// the same seed, clock readings and calls give the same packets.
    ///
    /// For simulations and tests: a seed is no secret, so ISNs and cookies
    /// of a driven stack are predictable. A single thread that drives the
    /// stack uses non-blocking sockets (`set_nonblocking`,
    /// [`TcpStream::connect_nonblocking`](crate::TcpStream::connect_nonblocking));
    /// a blocking call waits for another thread to poll, and its timeout
    /// (`set_read_timeout`, `connect_timeout`) counts real time.
    ///
    /// # Errors
    ///
    /// None today; the result matches [`Stack::new`].
    pub fn driven<D: Device + 'static>(
        device: D,
        config: Config,
        clock: Arc<dyn Clock>,
        seed: u64,
    ) -> io::Result<Stack> {
        let ports = PortAllocator::with_key(seeded_key(seed, b"ephemeral ports"));
        let driven = Driven {
            rx: rx::Rx::new(
                config.rx_batch,
                SynCookies::with_key(seeded_key(seed, b"syn cookies")),
            ),
            batch: PacketBatch::new(config.rx_batch, config.mtu),
        };
        let inner = Arc::new(Inner {
            table: RwLock::new(SocketTable::with_ports(config.max_connections, ports)),
            icmp_limit: Mutex::new(RateLimiter::new(config.icmp_errors_per_sec, clock.now())),
            config,
            device: Box::new(device),
            clock,
            stats: Stats::default(),
            isn: IsnGenerator::with_key(seeded_key(seed, b"initial sequence numbers")),
            timers: timers::Timers::default(),
            shutdown: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            driven: Some(Mutex::new(driven)),
        });
        Ok(Stack { inner })
    }

    /// Drives a [`driven`](Self::driven) stack one step without blocking:
    /// receives one batch of what the device has ready and processes it
    /// (as the RX thread would), then fires every timer due at the
    /// clock's `now`. Returns how many packets and timers it handled; 0
    /// means there was nothing to do until [`poll_at`](Self::poll_at) or
    /// until a packet arrives.
    ///
    /// # Errors
    ///
    /// `Unsupported` on a stack that threads drive ([`Stack::new`]); an
    /// I/O error from the device.
    pub fn poll(&self) -> io::Result<usize> {
        let Some(driven) = &self.inner.driven else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "poll drives only a stack made by Stack::driven",
            ));
        };
        let mut driven = driven.lock();
        let Driven { rx, batch } = &mut *driven;
        let received = rx::receive(&self.inner, rx, batch, Duration::ZERO)?;
        let fired = timers::fire_due(&self.inner, self.inner.now());
        Ok(received + fired)
    }

    /// When the earliest timer is due: the latest time by which a driven
    /// stack must be polled again if no packet arrives first. `None`
    /// when no timer is armed. It may be early (a deadline that moved
    /// later is found out when it fires), never late.
    pub fn poll_at(&self) -> Option<Instant> {
        self.inner.timers.next()
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
    /// the threads. Calls after the first do nothing.
    pub fn shutdown(&self) {
        if self.inner.shutdown.swap(true, Ordering::SeqCst) {
            return;
        }
        let sockets: Vec<Entry> = self.inner.table.read().iter().cloned().collect();
        for entry in sockets {
            match entry {
                Entry::Tcp(sock) => {
                    let mut st = sock.state.lock();
                    if !st.conn.is_closed() {
                        st.conn.abort();
                    }
                    self.inner.after_activity(&sock, &mut st);
                }
                Entry::Listener(l) => {
                    l.state.lock().closed = true;
                    l.cond.notify_all();
                }
                Entry::Udp(u) => {
                    u.cond.notify_all();
                }
            }
        }
        self.inner.timers.wake();
        let threads = std::mem::take(&mut *self.inner.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }

    /// Whether [`Stack::shutdown`] has been called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shutdown.load(Ordering::SeqCst)
    }
}

impl Inner {
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
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
        ls.pending = ls.pending.saturating_sub(1);
        if st.conn.is_closed() {
            return;
        }
        if ls.closed {
            drop(ls);
            st.conn.abort();
            tx::transmit_tcp(self, &mut st.conn, self.now());
            return;
        }
        ls.ready.push_back(Arc::clone(sock));
        drop(ls);
        listener.cond.notify_one();
    }
}
