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
//! A **driven** stack ([`Stack::driven`]) has neither thread: whoever
//! drives it calls [`Stack::poll`] (one non-blocking RX pass, then every
//! timer due) and reads [`Stack::poll_at`] for when to call it next, with
//! time from an injected clock. Two driven stacks over a
//! [`crate::device::mem::MemPair`], one `ManualClock` and seeded keys run
//! a whole conversation in simulated time, reproducibly.
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
pub(crate) mod reasm;
pub(crate) mod reclaim;
pub(crate) mod retired;
pub(crate) mod rx;
mod rx6;
pub(crate) mod socket;
pub(crate) mod supervise;
pub(crate) mod timers;
pub(crate) mod too_big;
pub(crate) mod tx;
pub(crate) mod txq;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard, RwLock};

use crate::config::Config;
use crate::device::{Device, PacketBatch};
use crate::icmp::RateLimiter;
use crate::pmtu::PathMtu;
use crate::stats::{bump, Stats};
use crate::table::ports::PortAllocator;
use crate::table::SocketTable;
use crate::tcp::isn::IsnGenerator;
use crate::tcp::memory::MemoryBudget;
use crate::tcp::rtt_histogram::RttHistogram;
use crate::tcp::secret::{seeded_key, SecretKey};
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
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) table: RwLock<SocketTable<Entry>>,
    pub(crate) stats: Stats,
    /// The ISN key (RFC 6528), shared by active opens and every listener.
    pub(crate) isn: IsnGenerator,
    /// The SYN-cookie key (RFC 4987), shared by every listener.
    pub(crate) cookies: SynCookies,
    pub(crate) timers: timers::Timers,
    /// TCP segments built under a socket's lock, written after it.
    pub(crate) txq: txq::TxQueue,
    /// TIME-WAIT and orphaned connections, on their own cap.
    pub(crate) retired: retired::Retired,
    /// Sweeps connections for memory when the budget refused a charge.
    pub(crate) reclaimer: reclaim::Reclaimer,
    /// ICMP and ICMPv6 errors (`Config::icmp_errors_per_sec`); through
    /// [`Inner::icmp_error_allowed`].
    pub(crate) icmp_limit: Mutex<RateLimiter>,
    /// RSTs for segments no connection owns (`Config::rsts_per_sec`);
    /// through [`Inner::rst_allowed`].
    pub(crate) rst_limit: Mutex<RateLimiter>,
    /// Arriving fragments under reassembly (`reasm`).
    pub(crate) reasm: reasm::Reasm,
    /// What Packet Too Big and Fragmentation Needed taught us, per
    /// destination (`too_big`); through [`Inner::path_mtu`].
    pub(crate) pmtu: Mutex<PathMtu>,
    /// The count of datagrams we fragmented: the next one's IPv4
    /// identification (its low 16 bits), and hashed for IPv6's (see
    /// [`Inner::next_ip6_id`]). One counter for all destinations from a random start
    /// (RFC 6864 §4.2 asks only that it not repeat within a datagram's
    /// lifetime per source, destination and protocol).
    pub(crate) ip_id: AtomicU32,
    /// Keys the IPv6 fragment identifications (RFC 7739).
    ip6_id: SecretKey,
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
    /// `InvalidInput` when `config` breaks a rule of [`Config::validate`]
    /// (the message names the field); any error from spawning a thread.
    pub fn new<D: Device + 'static>(device: D, config: Config) -> io::Result<Stack> {
        config.validate()?;
        let clock = SystemClock::new();
        // The timer thread keeps a copy of `clock` (it is `Copy`, same
        // epoch) to turn deadlines into std instants for its waits.
        let inner = Arc::new(Inner::new(
            Box::new(device),
            config,
            Arc::new(clock),
            Keys::random(),
            None,
        ));
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
                .spawn(move || timers::run(&inner, &clock))?
        };
        inner.threads.lock().extend([rx, timer]);
        Ok(Stack {
            _owner: Arc::new(Owner {
                inner: Arc::clone(&inner),
            }),
            inner,
        })
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
        config.validate()?;
        let driven = Driven {
            rx: rx::Rx::new(config.rx_batch),
            batch: rx::new_batch(config.rx_batch, &device),
        };
        let inner = Arc::new(Inner::new(
            Box::new(device),
            config,
            clock,
            Keys::seeded(seed),
            Some(Mutex::new(driven)),
        ));
        Ok(Stack {
            _owner: Arc::new(Owner {
                inner: Arc::clone(&inner),
            }),
            inner,
        })
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

    /// The IPv4 address this stack owns.
    pub fn addr(&self) -> Ipv4Addr {
        self.inner.config.addr
    }

    /// The IPv6 address this stack owns, if it has one (`Config::addr6`).
    pub fn addr6(&self) -> Option<Ipv6Addr> {
        self.inner.config.addr6
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

/// The keys a stack would otherwise draw at random.
struct Keys {
    isn: IsnGenerator,
    cookies: SynCookies,
    ports: PortAllocator,
    ip_id: u16,
    /// The key that makes IPv6 fragment identifications unpredictable.
    ip6_id: SecretKey,
}

impl Keys {
    fn random() -> Keys {
        Keys {
            isn: IsnGenerator::new(),
            cookies: SynCookies::new(),
            ports: PortAllocator::new(),
            ip_id: SecretKey::random().hash(b"ip identification") as u16,
            ip6_id: SecretKey::random(),
        }
    }

    /// Derived from `seed`: reproducible, and so no secret.
    fn seeded(seed: u64) -> Keys {
        Keys {
            isn: IsnGenerator::with_key(seeded_key(seed, b"initial sequence numbers")),
            cookies: SynCookies::with_key(seeded_key(seed, b"syn cookies")),
            ports: PortAllocator::with_key(seeded_key(seed, b"ephemeral ports")),
            ip_id: SecretKey::from_bytes(seeded_key(seed, b"ip identification")).hash(&[]) as u16,
            ip6_id: SecretKey::from_bytes(seeded_key(seed, b"ipv6 fragment identification")),
        }
    }
}

impl Inner {
    /// Whether an ICMP or ICMPv6 error may go now, under
    /// `Config::icmp_errors_per_sec` (RFC 1812 §4.3.2.8, RFC 4443 §2.4
    /// (f)): counts it in `sent` if so, in `icmp_rate_limited` if not.
    pub(crate) fn icmp_error_allowed(&self, now: Instant, sent: &AtomicU64) -> bool {
        let allowed = self.icmp_limit.lock().allow(now);
        bump(if allowed {
            sent
        } else {
            &self.stats.icmp_rate_limited
        });
        allowed
    }

    /// Whether a RST for a segment no connection owns may go now, under
    /// `Config::rsts_per_sec`: counts it in `tcp_rst_tx` or
    /// `tcp_rst_rate_limited`.
    pub(crate) fn rst_allowed(&self, now: Instant) -> bool {
        let allowed = self.rst_limit.lock().allow(now);
        bump(if allowed {
            &self.stats.tcp_rst_tx
        } else {
            &self.stats.tcp_rst_rate_limited
        });
        allowed
    }

    /// State with a system clock and random keys that no thread drives:
    /// for the demux benchmark and unit tests, which call the RX path
    /// directly.
    pub(crate) fn threadless(device: Box<dyn Device>, config: Config) -> Inner {
        let clock = Arc::new(SystemClock::new());
        Inner::new(device, config, clock, Keys::random(), None)
    }

    /// The shared state of a stack on `device`, with no threads yet.
    /// `config` was validated.
    fn new(
        device: Box<dyn Device>,
        config: Config,
        clock: Arc<dyn Clock>,
        keys: Keys,
        driven: Option<Mutex<Driven>>,
    ) -> Inner {
        // One pool for every connection's receive storage, and one
        // histogram for every connection's RTT samples.
        let mut config = config;
        let memory = MemoryBudget::new(config.memory_budget);
        config.tcp.memory = memory.clone();
        let rtt = RttHistogram::new();
        config.tcp.rtt_histogram = rtt.clone();
        Inner {
            // Live connections are held to `max_connections` by
            // `Retired::make_room`; the table bounds them all.
            table: RwLock::new(SocketTable::with_ports(
                config.max_connections.saturating_add(config.max_retired),
                keys.ports,
            )),
            icmp_limit: Mutex::new(RateLimiter::new(config.icmp_errors_per_sec, clock.now())),
            rst_limit: Mutex::new(RateLimiter::new(config.rsts_per_sec, clock.now())),
            reasm: reasm::Reasm::new(&config),
            pmtu: Mutex::new(PathMtu::new()),
            ip_id: AtomicU32::new(u32::from(keys.ip_id)),
            ip6_id: keys.ip6_id,
            config,
            device,
            clock,
            stats: Stats::new(memory, rtt),
            isn: keys.isn,
            cookies: keys.cookies,
            timers: timers::Timers::default(),
            txq: txq::TxQueue::default(),
            retired: retired::Retired::default(),
            reclaimer: reclaim::Reclaimer::default(),
            shutdown: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            driven,
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The largest packet that reaches `dst`: the MTU, or less where a
    /// Packet Too Big or Fragmentation Needed said so (see `too_big`).
    pub(crate) fn path_mtu(&self, dst: IpAddr, now: Instant) -> usize {
        let link = self.config.mtu;
        let cache = self.pmtu.lock();
        if cache.is_empty() {
            return link;
        }
        cache.mtu(dst, now, link)
    }

    /// The identification for the next datagram we fragment.
    pub(crate) fn next_ip_id(&self) -> u16 {
        // Wraps at 2^16 by design (the field has 16 bits).
        self.ip_id.fetch_add(1, Ordering::Relaxed) as u16
    }

    /// The identification for the next IPv6 packet we fragment to `dst`
    /// (RFC 8200 §4.5: 32 bits, different from any other recent
    /// fragmented packet between the same addresses). RFC 7739 §5 asks
    /// that an off-path host not be able to predict it, since one that
    /// can may forge fragments into our datagrams: the stack's counter
    /// plus a keyed hash of the destination (RFC 7739 §5.3's scheme, with
    /// one counter), so to one destination the values never repeat within
    /// 2^32 packets, and what one destination sees says nothing about
    /// another's.
    pub(crate) fn next_ip6_id(&self, dst: Ipv6Addr) -> u32 {
        let n = self.ip_id.fetch_add(1, Ordering::Relaxed);
        // Truncation intended: the identification has 32 bits.
        let offset = self.ip6_id.hash(&dst.octets()) as u32;
        offset.wrapping_add(n)
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
                    self.finish_activity(&sock, st);
                }
                Entry::Listener(l) => {
                    l.state.lock().tcp.close();
                    l.notify_all();
                }
                Entry::Udp(u) => {
                    u.notify_all();
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

    /// Takes a closed connection out of the table (once).
    pub(crate) fn forget(&self, sock: &TcpSocket, st: &mut TcpState) {
        if !st.removed {
            st.removed = true;
            self.table.write().remove_connection(&sock.tuple);
            self.retired.removed(st);
            bump(&self.stats.tcp_closed);
        }
    }

    /// [`after_activity`](Self::after_activity), then releases the
    /// socket's lock and writes out the segments it queued: how an
    /// operation on a connection ends.
    pub(crate) fn finish_activity(&self, sock: &Arc<TcpSocket>, mut st: MutexGuard<'_, TcpState>) {
        self.after_activity(sock, &mut st);
        drop(st);
        tx::flush(self);
        self.retired.trim(self);
    }

    /// After anything happened to a connection: log a change of state,
    /// transmit what it owes,
    /// hand it to its listener once established, remove it from the table
    /// once closed, keep its timer armed, and wake its waiters.
    pub(crate) fn after_activity(&self, sock: &Arc<TcpSocket>, st: &mut TcpState) {
        let now = self.now();
        tx::transmit_tcp(self, &mut st.conn, now);
        log_state_change(sock, st);

        if st.conn.is_established() || st.conn.is_closed() {
            if let Some(weak) = st.listener.take() {
                self.hand_to_listener(sock, st, weak.upgrade());
            }
        }
        if st.conn.is_closed() {
            self.forget(sock, st);
        } else {
            self.retired.note(sock, st);
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
        sock.notify();
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
        listener.notify_one();
    }
}

/// Logs (at debug level, with the 4-tuple as fields, so `RUST_LOG=debug`
/// output can be read connection by connection) each change of a
/// connection's state.
fn log_state_change(sock: &TcpSocket, st: &mut TcpState) {
    let state = st.conn.state();
    if state != st.logged_state {
        tracing::debug!(
            local = %sock.tuple.local,
            remote = %sock.tuple.remote,
            from = %st.logged_state,
            to = %state,
            "tcp state"
        );
        st.logged_state = state;
    }
}
