//! The RX thread: read a batch, demultiplex, then service each socket once.
//!
//! For every packet of a batch, [`Rx::demux`] validates the IPv4 header
//! and the transport header (the single drop site: each `wire::Error` is
//! counted by reason), then finds its owner and hands it over: it answers
//! at once (ICMP echo, RST for a closed port, ICMP port unreachable), puts
//! a UDP datagram onto its socket's queue, gives a segment for a listener
//! to the sans-IO `tcp::listener::Listener` and carries out its decision,
//! or appends a connection's segment index to its queue for this batch. A
//! socket's queue is bounded by `socket_queue_depth`: a flood at one
//! connection fills only that queue. After the batch each socket
//! with a non-empty queue is locked once, its segments handed to the
//! connection in arrival order, and whatever the connection owes is sent:
//! a batch of data segments costs one cumulative ACK.
//!
//! Counters of replies are bumped before the reply is sent, so a peer that
//! has seen the reply also sees the count.
//!
//! # Batched lookup
//!
//! A TCP segment is validated as it is met, but looked up with the rest of
//! its batch ([`Rx::lookup_pending`]): under one read lock of the table,
//! a chunk of segments is hashed, then probed, then each found socket is
//! touched, and only then queued. Each step's loop body is short and
//! independent of the one before it, so the processor overlaps the cache
//! misses of several segments (the table's control bytes, its bucket, the
//! socket) where one segment at a time would wait for each in turn: this
//! is what keeps the demultiplexing cost flat when the table has outgrown
//! the caches (DPDK's bulk hash lookup does the same with explicit
//! prefetches). A segment that finds no connection, or is a SYN, takes the
//! slow path afterwards, in arrival order: its listener, a TIME-WAIT
//! reopening, or a RST.
//!
//! # Fragments
//!
//! An IPv4 fragment addressed to us goes to the reassembler (`reasm`).
//! The datagram it completes is handled exactly as an unfragmented packet
//! (its transport checksum always verified in software), with one
//! difference for TCP: it is not in the batch, so it cannot wait in its
//! connection's queue by index; it is handed to the connection at once,
//! ahead of segments queued earlier in the batch (TCP takes reordering in
//! its stride, and a peer that fragments TCP is rare: it has our MSS).
//!
//! # Offloads
//!
//! Batch buffers hold [`Device::max_packet`] bytes each, so an offload
//! TUN device can hand over the kernel's TCP super-segments (up to 64 KiB)
//! unsplit; each is taken as one segment (RFC 9293 bounds a segment by
//! the window, not by the MSS) and counted in `rx_gso_segments`. The
//! IPv4 header checksum is always verified; the TCP and UDP checksums only
//! when the packet's [`RxMeta`] says they must be (`must_verify`): a
//! packet the kernel verified, or never checksummed because it never left
//! the host, is counted in `rx_csum_offloaded` instead.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::device::{Device, PacketBatch, RxMeta};
use crate::icmp;
use crate::stats::bump;
use crate::table::{FourTuple, TcpLookup};
use crate::tcp::connection::Connection;
use crate::tcp::listener::{ListenAction, ListenDrop, ResetCause};
use crate::tcp::reset::rst_for_closed;
use crate::time::Instant;
use crate::wire::icmp::IcmpRepr;
use crate::wire::ipv4::{self, Ipv4Repr};
use crate::wire::ipv6::{Ipv6Payload, Ipv6Repr};
use crate::wire::tcp::{self, TcpRepr};
use crate::wire::udp::{self, UdpRepr};
use crate::wire::SeqNumber;

use super::socket::{Datagram, Entry, Listener, TcpSocket};
use super::supervise::{self, PoisonOnUnwind};
use super::{reasm, tx, Inner};

/// How long one device read waits before the thread checks for shutdown.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Segments looked up together: enough to keep several cache misses in
/// flight, few enough that the chunk's found sockets stay in L1.
const LOOKUP_CHUNK: usize = 16;

pub(crate) fn run(inner: &Inner) {
    let mut rx = Rx::new(inner.config.rx_batch);
    let mut batch = new_batch(inner.config.rx_batch, &*inner.device);
    let mut last_error = None;
    while !inner.shutdown.load(Ordering::SeqCst) {
        let pass = supervise::catch(inner, "stack-rx", || {
            receive(inner, &mut rx, &mut batch, POLL_INTERVAL)
        });
        match pass {
            Some(Ok(_)) => {}
            None => {
                rx.recover();
                supervise::reset_poisoned(inner);
            }
            Some(Err(e)) => {
                // Log once per distinct error, then back off so a broken
                // device cannot spin the thread.
                if last_error.as_ref() != Some(&e.kind()) {
                    tracing::error!("device read failed: {e}");
                    last_error = Some(e.kind());
                }
                std::thread::sleep(POLL_INTERVAL);
            }
        }
    }
}

/// A batch of `rx_batch` buffers, each large enough for the largest
/// packet `device` returns (a super-segment on an offload TUN device).
///
/// DoS warning: that is `rx_batch * device.max_packet()` bytes, 4 MiB for
/// the default 64 buffers on an offload TUN device.
pub(crate) fn new_batch(rx_batch: usize, device: &dyn Device) -> PacketBatch {
    PacketBatch::new(rx_batch, device.max_packet())
}

/// One RX pass, shared by the RX thread and a driven stack's `poll`:
/// waits up to `timeout` for a batch and processes it. Returns the number
/// of packets received.
pub(crate) fn receive(
    inner: &Inner,
    rx: &mut Rx,
    batch: &mut PacketBatch,
    timeout: Duration,
) -> io::Result<usize> {
    let n = inner.device.recv_batch(batch, timeout)?;
    if n > 0 {
        rx.process(inner, batch);
    }
    Ok(n)
}

/// The RX thread's per-batch state, reused across batches so the steady
/// state allocates nothing.
pub(crate) struct Rx {
    /// Sockets with segments in this batch, in order of first arrival.
    ready: Vec<Arc<TcpSocket>>,
    /// `queues[i]`: indices into the batch of `ready[i]`'s segments.
    queues: Vec<Vec<u16>>,
    batch_no: u32,
    queue_depth: usize,
    /// This batch's valid TCP segments, in arrival order, waiting for
    /// their lookup.
    pending: Vec<Pending>,
    /// Those of `pending` that found no connection, or are SYNs.
    slow: Vec<Pending>,
}

/// A validated TCP segment of the batch and its four-tuple.
#[derive(Clone, Copy)]
struct Pending {
    index: u16,
    syn: bool,
    tuple: FourTuple,
    hash: u64,
}

impl Rx {
    pub(crate) fn new(batch: usize) -> Rx {
        Rx {
            ready: Vec::with_capacity(batch),
            queues: Vec::new(),
            batch_no: 0,
            queue_depth: 1,
            pending: Vec::with_capacity(batch),
            slow: Vec::new(),
        }
    }

    /// Demultiplexes a whole batch, then services the sockets it touched.
    pub(crate) fn process(&mut self, inner: &Inner, batch: &PacketBatch) {
        let now = inner.now();
        self.begin_batch(inner);
        self.demux_batch(inner, now, batch);
        self.service(inner, now, batch);
        inner.reclaimer.run(inner, now);
    }

    /// Validates every packet of the batch and sends it on its way (the
    /// benchmark in `benches/benches/table.rs` runs this through
    /// [`super::__bench`]).
    pub(crate) fn demux_batch(&mut self, inner: &Inner, now: Instant, batch: &PacketBatch) {
        for (i, (packet, meta)) in batch.iter_with_meta().enumerate() {
            self.demux(inner, now, i, packet, meta);
        }
        self.lookup_pending(inner, now, batch);
    }

    /// Starts a batch: sockets marked in earlier batches no longer match.
    pub(crate) fn begin_batch(&mut self, inner: &Inner) {
        self.batch_no = self.batch_no.wrapping_add(1);
        self.queue_depth = inner.config.socket_queue_depth.max(1);
    }

    /// Validates packet `index` of the batch, received with `meta`, and
    /// sends it on its way; a TCP segment waits for
    /// [`lookup_pending`](Self::lookup_pending).
    fn demux(&mut self, inner: &Inner, now: Instant, index: usize, packet: &[u8], meta: RxMeta) {
        bump(&inner.stats.ip_rx);
        if packet.first().map(|b| b >> 4) == Some(6) {
            return super::rx6::demux(self, inner, now, index, packet, meta);
        }
        let (ip, frag, payload) = match Ipv4Repr::parse_fragment(packet) {
            Ok(parsed) => parsed,
            Err(e) => return inner.stats.count_drop(e),
        };
        if !inner.answers_for(ip.dst) {
            return bump(&inner.stats.drop_not_ours);
        }
        if ip.src == inner.config.addr || ip.src == ip.dst {
            // Our own address as the source (a "Land" SYN): a reply would
            // come back to us. Only a misbehaving peer sends this.
            return bump(&inner.stats.drop_bad_address);
        }
        let Some(frag) = frag else {
            return self.dispatch(inner, now, Some(index), &ip, payload, packet, meta);
        };
        let Some(whole) = reasm::on_fragment(inner, now, &ip, frag, packet, payload) else {
            return;
        };
        // The header was rebuilt from a valid one; parse it all the same.
        let (ip, payload) = match Ipv4Repr::parse(&whole) {
            Ok(parsed) => parsed,
            Err(e) => return inner.stats.count_drop(e),
        };
        self.dispatch(inner, now, None, &ip, payload, &whole, RxMeta::default());
    }

    /// Hands a whole datagram (`packet`, parsed into `ip` and `payload`)
    /// to its protocol. `index` is its place in the batch; `None` for a
    /// reassembled datagram, which is not in the batch.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        inner: &Inner,
        now: Instant,
        index: Option<usize>,
        ip: &Ipv4Repr,
        payload: &[u8],
        packet: &[u8],
        meta: RxMeta,
    ) {
        let ip = *ip;
        match ip.protocol {
            tcp::PROTOCOL => {
                let (src, dst) = (ip.src.into(), ip.dst.into());
                self.demux_tcp(inner, now, index, src, dst, payload, meta);
            }
            udp::PROTOCOL => {
                let no_socket = || send_icmp_error(inner, now, &ip, icmp::port_unreachable(packet));
                demux_udp(
                    inner,
                    ip.src.into(),
                    ip.dst.into(),
                    payload,
                    meta,
                    no_socket,
                );
            }
            ipv4::PROTOCOL_ICMP => handle_icmp(inner, now, &ip, payload),
            _ => {
                bump(&inner.stats.drop_unsupported);
                send_icmp_error(inner, now, &ip, icmp::protocol_unreachable(packet));
            }
        }
    }

    /// Validates a TCP segment (`payload`, from `src` to `dst`) and queues
    /// it for [`lookup_pending`](Self::lookup_pending); a reassembled one
    /// (`index` `None`) is looked up and handled at once. Either family.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn demux_tcp(
        &mut self,
        inner: &Inner,
        now: Instant,
        index: Option<usize>,
        src: IpAddr,
        dst: IpAddr,
        payload: &[u8],
        meta: RxMeta,
    ) {
        // RFC 9293 §3.1: the checksum is verified, unless the device
        // vouches for it (see the module docs).
        let verify = transport_checksum(inner, meta);
        let seg = match TcpRepr::parse(src, dst, payload, verify) {
            Ok(seg) => seg,
            Err(e) => return inner.stats.count_drop(e),
        };
        bump(&inner.stats.tcp_rx);
        if meta.gso_size.is_some() {
            bump(&inner.stats.rx_gso_segments);
        }
        let tuple = FourTuple {
            local: SocketAddr::new(dst, seg.dst_port),
            remote: SocketAddr::new(src, seg.src_port),
        };
        let Some(index) = index else {
            // Reassembled: not in the batch, so looked up and handled
            // now (see "Fragments" above).
            return self.demux_slow(inner, now, None, tuple, &seg);
        };
        // invariant: batch indices fit a u16 (see `enqueue`).
        self.pending.push(Pending {
            index: index as u16,
            syn: seg.flags.syn(),
            tuple,
            hash: 0,
        });
    }

    /// Looks up the batch's TCP segments together (see the module
    /// documentation) and queues each on its connection; the rest take
    /// [`demux_slow`](Self::demux_slow), in arrival order.
    fn lookup_pending(&mut self, inner: &Inner, now: Instant, batch: &PacketBatch) {
        let mut pending = std::mem::take(&mut self.pending);
        {
            let table = inner.table.read();
            for chunk in pending.chunks_mut(LOOKUP_CHUNK) {
                for p in chunk.iter_mut() {
                    p.hash = table.tuple_hash(&p.tuple);
                }
                let mut found: [Option<&Arc<TcpSocket>>; LOOKUP_CHUNK] = [None; LOOKUP_CHUNK];
                // Loads whose values are not needed: they start fetching
                // each found socket's line for `slot_for` below while the
                // next probes run. Folded together and kept once, so no
                // instruction waits for any one of them.
                let mut touched = 0;
                for (p, f) in chunk.iter().zip(found.iter_mut()) {
                    if let Some(Entry::Tcp(sock)) = table.connection_hashed(p.hash, &p.tuple) {
                        touched ^= sock.rx_mark.load(Ordering::Relaxed);
                        *f = (!p.syn).then_some(sock);
                    }
                }
                std::hint::black_box(touched);
                for (p, f) in chunk.iter().zip(found) {
                    match f {
                        Some(sock) => {
                            let slot = self.slot_for(sock);
                            self.enqueue(inner, slot, usize::from(p.index));
                        }
                        None => self.slow.push(*p),
                    }
                }
            }
        }
        pending.clear();
        self.pending = pending;
        let mut slow = std::mem::take(&mut self.slow);
        for p in &slow {
            let seg = batch.get(usize::from(p.index)).and_then(reparse_tcp);
            if let Some(seg) = seg {
                self.demux_slow(inner, now, Some(usize::from(p.index)), p.tuple, &seg);
            }
        }
        slow.clear();
        self.slow = slow;
    }

    /// A segment that found no connection in the batched lookup, or a SYN:
    /// looked up again on its own, as the table may have changed since
    /// (an earlier SYN of the batch made its connection). Also a
    /// reassembled segment (`index` `None`), which goes straight to its
    /// connection rather than into its queue.
    fn demux_slow(
        &mut self,
        inner: &Inner,
        now: Instant,
        index: Option<usize>,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
    ) {
        let FourTuple { local, remote } = tuple;
        let table = inner.table.read();
        match table.lookup_tcp(local, remote) {
            TcpLookup::Connection(Entry::Tcp(sock)) if seg.flags.syn() => {
                // A SYN for a four-tuple we hold: in TIME-WAIT it may
                // open a new incarnation. Rare, so the lock is taken
                // here rather than on every segment.
                let sock = Arc::clone(sock);
                drop(table);
                match syn_fate(inner, &sock, seg) {
                    SynFate::Reopens(iss) => {
                        self.syn_to_listener(inner, now, local, remote, seg, Some(iss))
                    }
                    SynFate::Gone => self.syn_to_listener(inner, now, local, remote, seg, None),
                    SynFate::Stays => match index {
                        Some(index) => {
                            let slot = self.slot_for(&sock);
                            self.enqueue(inner, slot, index);
                        }
                        None => handle_now(inner, now, &sock, seg),
                    },
                }
            }
            TcpLookup::Connection(Entry::Tcp(sock)) => match index {
                Some(index) => {
                    // Only the socket's first segment of the batch clones
                    // its handle; later ones find its slot by the mark.
                    let slot = self.slot_for(sock);
                    drop(table);
                    self.enqueue(inner, slot, index);
                }
                None => {
                    let sock = Arc::clone(sock);
                    drop(table);
                    handle_now(inner, now, &sock, seg);
                }
            },
            TcpLookup::Listener(Entry::Listener(listener)) => {
                let listener = Arc::clone(listener);
                drop(table);
                self.on_listener(inner, now, &listener, local, remote, seg);
            }
            _ => {
                drop(table);
                // RFC 9293 §3.10.7.1: no socket: answer with a RST, but
                // never a RST to a RST.
                if let Some(rst) = rst_for_closed(seg) {
                    send_rst(inner, now, local.ip(), remote.ip(), &rst);
                }
            }
        }
    }

    /// A SYN whose four-tuple's connection has just gone goes to the
    /// listener as a fresh SYN: with the ISS the old connection dictates
    /// when it ended TIME-WAIT (`iss`). With no listener it is answered as
    /// any segment for no socket.
    fn syn_to_listener(
        &mut self,
        inner: &Inner,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpRepr<'_>,
        iss: Option<SeqNumber>,
    ) {
        let table = inner.table.read();
        match table.lookup_tcp(local, remote) {
            TcpLookup::Listener(Entry::Listener(listener)) => {
                let listener = Arc::clone(listener);
                drop(table);
                let mut ls = listener.state.lock();
                let action = match iss {
                    Some(iss) => ls.tcp.handle_reopening_syn(now, local, remote, seg, iss),
                    None => ls.tcp.handle_segment(now, local, remote, seg),
                };
                drop(ls);
                self.carry_out(inner, now, &listener, local, remote, action);
            }
            // Another connection took the four-tuple meanwhile: the SYN is
            // dropped and its retransmission finds that one.
            TcpLookup::Connection(_) => {}
            _ => {
                drop(table);
                if let Some(rst) = rst_for_closed(seg) {
                    send_rst(inner, now, local.ip(), remote.ip(), &rst);
                }
            }
        }
    }

    /// The socket's slot in this batch's ready list, adding it if it has
    /// none yet.
    fn slot_for(&mut self, sock: &Arc<TcpSocket>) -> usize {
        let mark = sock.rx_mark.load(Ordering::Relaxed);
        if (mark >> 32) as u32 == self.batch_no {
            return (mark & 0xffff_ffff) as usize;
        }
        let slot = self.ready.len();
        sock.rx_mark.store(
            (u64::from(self.batch_no) << 32) | slot as u64,
            Ordering::Relaxed,
        );
        self.ready.push(Arc::clone(sock));
        if self.queues.len() <= slot {
            self.queues.push(Vec::with_capacity(self.queue_depth));
        }
        slot
    }

    /// Appends segment `index` to the queue of the socket in `slot`.
    fn enqueue(&mut self, inner: &Inner, slot: usize, index: usize) {
        let Some(queue) = self.queues.get_mut(slot) else {
            return;
        };
        if queue.len() >= self.queue_depth {
            return bump(&inner.stats.drop_queue_full);
        }
        // invariant: batch indices are below the batch capacity, which
        // `Config::validate` bounds by `MAX_RX_BATCH` (65,536), so every
        // index fits a u16.
        queue.push(index as u16);
    }

    /// A segment for a listener: the sans-IO listener decides (passive
    /// open, SYN cookies, RST; `tcp::listener`), and this carries it out:
    /// store the connection, send the reply, or count the drop.
    fn on_listener(
        &mut self,
        inner: &Inner,
        now: Instant,
        listener: &Arc<Listener>,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpRepr<'_>,
    ) {
        let action = listener
            .state
            .lock()
            .tcp
            .handle_segment(now, local, remote, seg);
        self.carry_out(inner, now, listener, local, remote, action);
    }

    /// Carries out a listener's decision.
    fn carry_out(
        &mut self,
        inner: &Inner,
        now: Instant,
        listener: &Arc<Listener>,
        local: SocketAddr,
        remote: SocketAddr,
        action: ListenAction,
    ) {
        match action {
            ListenAction::Open(conn) => self.insert_passive(inner, listener, conn),
            ListenAction::OpenByCookie(conn) => {
                bump(&inner.stats.syn_cookies_ok);
                self.insert_passive(inner, listener, conn);
            }
            ListenAction::SendCookie(syn_ack) => {
                bump(&inner.stats.syn_cookies_sent);
                tx::send_tcp(inner, local.ip(), remote.ip(), &syn_ack);
            }
            ListenAction::Reset(rst, cause) => {
                if cause == ResetCause::BadCookie {
                    bump(&inner.stats.syn_cookies_bad);
                }
                send_rst(inner, now, local.ip(), remote.ip(), &rst);
            }
            ListenAction::Drop(ListenDrop::BacklogFull | ListenDrop::AcceptQueueFull) => {
                bump(&inner.stats.drop_backlog_full);
            }
            ListenAction::Drop(ListenDrop::Rst | ListenDrop::NotSyn | ListenDrop::Closed) => {}
        }
    }

    /// Puts a passively opened connection into the table (its listener
    /// counts it as half-open) and services it after the batch: that sends
    /// its SYN-ACK, or hands it to the accept queue when it is already
    /// established.
    fn insert_passive(&mut self, inner: &Inner, listener: &Arc<Listener>, mut conn: Connection) {
        super::too_big::cap_new(inner, &mut conn, inner.now());
        conn.set_max_segment_payload(tx::max_segment_payload(inner, conn.local().ip()));
        let sock = Arc::new(TcpSocket::new(conn, Some(Arc::downgrade(listener))));
        let inserted = inner.retired.make_room(inner)
            && inner
                .table
                .write()
                .insert_connection(sock.tuple, Entry::Tcp(Arc::clone(&sock)))
                .is_ok();
        if !inserted {
            listener.state.lock().tcp.half_open_gone();
            return bump(&inner.stats.drop_table_full);
        }
        bump(&inner.stats.tcp_passive_opens);
        self.enqueue_empty(sock);
    }

    /// Marks `sock` ready with no segments: it is serviced after the
    /// batch (which sends a new connection's SYN-ACK).
    fn enqueue_empty(&mut self, sock: Arc<TcpSocket>) {
        self.slot_for(&sock);
    }

    /// Forgets the batch's queued segments without servicing the sockets:
    /// After a panic in the middle of a batch: forgets the batch. The
    /// batch number is kept, so no socket's mark from before matches a
    /// later batch's slot.
    pub(crate) fn recover(&mut self) {
        for queue in &mut self.queues {
            queue.clear();
        }
        self.ready.clear();
    }

    /// for the benchmark, which measures demultiplexing alone.
    pub(crate) fn discard_batch(&mut self) {
        for queue in self.queues.iter_mut().take(self.ready.len()) {
            queue.clear();
        }
        self.ready.clear();
    }

    /// Hands each ready socket its segments, then lets it transmit.
    fn service(&mut self, inner: &Inner, now: Instant, batch: &PacketBatch) {
        for (sock, queue) in self.ready.drain(..).zip(self.queues.iter_mut()) {
            let _poison = PoisonOnUnwind(&sock);
            let mut st = sock.state.lock();
            for &index in queue.iter() {
                let Some(seg) = batch.get(usize::from(index)).and_then(reparse_tcp) else {
                    continue;
                };
                st.conn.handle_segment(now, &seg);
            }
            queue.clear();
            // Its segments are written after its lock is released, so the
            // application is not kept waiting behind the device; still
            // under the poison guard, so a panicking device write resets
            // the connection it hit.
            inner.finish_activity(&sock, st);
        }
    }
}

/// A segment that is not in the batch (reassembled from fragments) goes
/// to its connection at once, and what the connection owes is sent as
/// after a batch.
fn handle_now(inner: &Inner, now: Instant, sock: &Arc<TcpSocket>, seg: &TcpRepr<'_>) {
    let _poison = PoisonOnUnwind(sock);
    let mut st = sock.state.lock();
    st.conn.handle_segment(now, seg);
    inner.finish_activity(sock, st);
}

/// What a SYN for a four-tuple in the table does.
enum SynFate {
    /// It ended TIME-WAIT (RFC 6191): a new connection starting at this
    /// ISS.
    Reopens(SeqNumber),
    /// The connection left the table after the lookup (its TIME-WAIT
    /// ended or was evicted): the SYN is for the listener.
    Gone,
    /// The connection takes it (and answers as RFC 9293 says).
    Stays,
}

/// Decides a SYN's [`SynFate`]. When it reopens `sock`'s four-tuple, the
/// old connection is ended and taken out of the table here.
fn syn_fate(inner: &Inner, sock: &Arc<TcpSocket>, seg: &TcpRepr<'_>) -> SynFate {
    let mut st = sock.state.lock();
    if st.removed {
        return SynFate::Gone;
    }
    let Some(iss) = st.conn.reopen_iss(seg) else {
        return SynFate::Stays;
    };
    st.conn.end_time_wait();
    inner.forget(sock, &mut st);
    bump(&inner.stats.tcp_time_wait_reopened);
    drop(st);
    sock.notify();
    SynFate::Reopens(iss)
}

/// Whether the TCP or UDP checksum of a packet received with `meta` must
/// be verified in software; counts the packets it need not be for.
pub(super) fn transport_checksum(inner: &Inner, meta: RxMeta) -> bool {
    let verify = meta.checksum.must_verify();
    if !verify {
        bump(&inner.stats.rx_csum_offloaded);
    }
    verify
}

/// Parses a packet of either family that already passed validation in
/// `demux`, without checking its checksums again.
fn reparse_tcp(packet: &[u8]) -> Option<TcpRepr<'_>> {
    match packet.first()? >> 4 {
        4 => {
            let (ip, payload) = Ipv4Repr::parse(packet).ok()?;
            TcpRepr::parse(ip.src, ip.dst, payload, false).ok()
        }
        6 => match Ipv6Repr::parse(packet).ok()? {
            (ip, Ipv6Payload::Upper(payload)) => {
                TcpRepr::parse(ip.src, ip.dst, payload, false).ok()
            }
            _ => None,
        },
        _ => None,
    }
}

/// Delivers a UDP datagram (`payload`, from `src` to `dst`, either
/// family) to its socket's queue, or calls `no_socket` (which sends the
/// family's port unreachable) when no socket has its port.
pub(super) fn demux_udp(
    inner: &Inner,
    src: IpAddr,
    dst: IpAddr,
    payload: &[u8],
    meta: RxMeta,
    no_socket: impl FnOnce(),
) {
    // RFC 8200 §8.1: over IPv6 a zero checksum is not "none" but wrong.
    if dst.is_ipv6() && payload.get(6..8) == Some(&[0, 0]) {
        return inner.stats.count_drop(crate::wire::Error::BadChecksum);
    }
    // RFC 768 (RFC 1122 §4.1.3.4): verified unless the device vouches for
    // it.
    let verify = transport_checksum(inner, meta);
    let dgram = match UdpRepr::parse(src, dst, payload, verify) {
        Ok(d) => d,
        Err(e) => return inner.stats.count_drop(e),
    };
    let local = SocketAddr::new(dst, dgram.dst_port);
    let socket = inner.table.read().lookup_udp(local).cloned();
    let Some(Entry::Udp(sock)) = socket else {
        // RFC 1122 §4.1.3.1 (RFC 4443 §3.1 for IPv6): a datagram for a
        // port with no listener SHOULD get ICMP port unreachable.
        return no_socket();
    };
    let from = SocketAddr::new(src, dgram.src_port);
    let mut q = sock.queue.lock();
    if q.peer.is_some_and(|peer| peer != from) {
        // A connected socket takes its peer's datagrams only; to anyone
        // else the port is closed, as on Linux.
        drop(q);
        return no_socket();
    }
    if q.datagrams.len() >= q.depth {
        return bump(&inner.stats.drop_queue_full);
    }
    q.datagrams.push_back(Datagram {
        from,
        to: local,
        data: dgram.payload.to_vec(),
    });
    drop(q);
    bump(&inner.stats.udp_rx);
    sock.notify_one();
}

fn handle_icmp(inner: &Inner, now: Instant, ip: &Ipv4Repr, payload: &[u8]) {
    let msg = match IcmpRepr::parse(payload) {
        Ok(m) => m,
        Err(e) => return inner.stats.count_drop(e),
    };
    if let IcmpRepr::FragNeeded {
        next_hop_mtu,
        original,
    } = msg
    {
        return super::too_big::on_frag_needed(inner, now, next_hop_mtu, original);
    }
    match icmp::echo_reply(&msg) {
        Some(reply) => {
            bump(&inner.stats.icmp_echo);
            tx::send_icmp(inner, ip.dst, ip.src, &reply);
        }
        None => bump(&inner.stats.icmp_other),
    }
}

/// A RST for a segment no connection owns, under `Config::rsts_per_sec`.
fn send_rst(inner: &Inner, now: Instant, src: IpAddr, dst: IpAddr, rst: &TcpRepr<'_>) {
    if inner.rst_allowed(now) {
        tx::send_tcp(inner, src, dst, rst);
    }
}

fn send_icmp_error(inner: &Inner, now: Instant, ip: &Ipv4Repr, msg: IcmpRepr<'_>) {
    if inner.icmp_error_allowed(now, &inner.stats.icmp_unreachable_tx) {
        tx::send_icmp(inner, ip.dst, ip.src, &msg);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::config::Config;
    use crate::device::mem::{MemDevice, MemPair};
    use crate::device::RxChecksum;
    use crate::wire::tcp::{TcpFlags, TcpOptions};
    use crate::wire::SeqNumber;

    const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    /// A segment from the peer's port 40000 to our `port`.
    fn segment(port: u16, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
        segment_from(PEER, port, flags, payload)
    }

    /// A segment from `src` port 40000 to our `port`.
    fn segment_from(src: Ipv4Addr, port: u16, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
        let seg = TcpRepr {
            src_port: 40000,
            dst_port: port,
            seq: SeqNumber(1),
            ack: SeqNumber(0),
            flags,
            window: 1000,
            urgent: 0,
            options: TcpOptions::default(),
            payload,
        };
        packet_of(src, &seg)
    }

    /// `seg` from `src` to us in an IPv4 packet.
    fn packet_of(src: Ipv4Addr, seg: &TcpRepr<'_>) -> Vec<u8> {
        let ip = Ipv4Repr {
            src,
            dst: US,
            protocol: tcp::PROTOCOL,
            ttl: 64,
            payload_len: seg.buffer_len(),
        };
        let mut p = vec![0u8; ip.buffer_len()];
        seg.emit(src, US, &mut p[ipv4::HEADER_LEN..])
            .unwrap_or_else(|e| panic!("{e}"));
        ip.emit(&mut p).unwrap_or_else(|e| panic!("{e}"));
        p
    }

    /// The TCP checksum field as a kernel leaves it with `NEEDS_CSUM`:
    /// not the checksum of the segment.
    fn with_partial_checksum(mut p: Vec<u8>) -> Vec<u8> {
        p[ipv4::HEADER_LEN + 16] ^= 0x5a;
        p
    }

    const PARTIAL: RxMeta = RxMeta {
        checksum: RxChecksum::Partial,
        gso_size: None,
    };

    /// Runs one batch of `packets` through a fresh stack state listening
    /// on port 80; returns its counters and how many packets it sent.
    fn run(packets: &[(Vec<u8>, RxMeta)]) -> (Vec<(&'static str, u64)>, usize) {
        run_with(Config::with_addr(US), packets)
    }

    fn run_with(
        config: Config,
        packets: &[(Vec<u8>, RxMeta)],
    ) -> (Vec<(&'static str, u64)>, usize) {
        let (ours, peer) = MemPair::new(64, 1500);
        let inner = Inner::threadless(Box::new(ours), config);
        let _listener = inner
            .listen(SocketAddr::from((US, 80)), None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut batch = PacketBatch::new(packets.len(), ipv4::MAX_PACKET_LEN);
        for (p, meta) in packets {
            let pushed = batch.push_with_meta(|buf| {
                buf[..p.len()].copy_from_slice(p);
                Ok::<_, ()>(Some((p.len(), *meta)))
            });
            assert_eq!(pushed, Ok(true));
        }
        let mut rx = Rx::new(packets.len());
        rx.process(&inner, &batch);
        (inner.stats.snapshot(), peer.pending())
    }

    fn count(stats: &[(&'static str, u64)], name: &str) -> u64 {
        stats
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| panic!("no counter {name}"), |(_, v)| *v)
    }

    #[test]
    fn land_syn_from_our_own_address_is_dropped_and_counted() {
        let land = segment_from(US, 80, TcpFlags::SYN, &[]);
        let (stats, sent) = run(&[(land, RxMeta::default())]);
        assert_eq!(count(&stats, "drop_bad_address"), 1);
        assert_eq!(count(&stats, "tcp_passive_opens"), 0);
        assert_eq!(sent, 0);
    }

    #[test]
    fn rsts_to_closed_ports_are_rate_limited() {
        let config = Config {
            rsts_per_sec: 5,
            ..Config::with_addr(US)
        };
        let syns: Vec<_> = (0..20)
            .map(|_| (segment(81, TcpFlags::SYN, &[]), RxMeta::default()))
            .collect();
        let (stats, sent) = run_with(config, &syns);
        assert_eq!(count(&stats, "tcp_rst_tx"), 5);
        assert_eq!(count(&stats, "tcp_rst_rate_limited"), 15);
        assert_eq!(sent, 5);
    }

    #[test]
    fn partial_checksum_is_taken_unverified_and_counted() {
        let syn = with_partial_checksum(segment(80, TcpFlags::SYN, &[]));
        let (stats, sent) = run(&[(syn, PARTIAL)]);
        assert_eq!(sent, 1, "the SYN-ACK");
        assert_eq!(count(&stats, "rx_csum_offloaded"), 1);
        assert_eq!(count(&stats, "drop_bad_checksum"), 0);
    }

    #[test]
    fn unverified_checksum_is_still_verified() {
        let syn = with_partial_checksum(segment(80, TcpFlags::SYN, &[]));
        let (stats, sent) = run(&[(syn, RxMeta::default())]);
        assert_eq!(sent, 0);
        assert_eq!(count(&stats, "drop_bad_checksum"), 1);
        assert_eq!(count(&stats, "rx_csum_offloaded"), 0);
    }

    #[test]
    fn ip_header_checksum_is_verified_whatever_the_device_says() {
        let mut syn = segment(80, TcpFlags::SYN, &[]);
        syn[10] ^= 0x01;
        let (stats, sent) = run(&[(syn, PARTIAL)]);
        assert_eq!(sent, 0);
        assert_eq!(count(&stats, "drop_bad_checksum"), 1);
    }

    #[test]
    fn super_segment_beyond_the_mtu_is_one_segment() {
        // 60,000 payload bytes in one packet (a kernel's GSO packet) to a
        // closed port: taken whole as one segment, answered with one RST.
        let big = with_partial_checksum(segment(81, TcpFlags::ACK, &[7; 60_000]));
        assert!(big.len() > 1500);
        let meta = RxMeta {
            gso_size: Some(1448),
            ..PARTIAL
        };
        let (stats, sent) = run(&[(big, meta)]);
        assert_eq!(count(&stats, "tcp_rx"), 1);
        assert_eq!(count(&stats, "rx_gso_segments"), 1);
        assert_eq!(count(&stats, "tcp_rst_tx"), 1);
        assert_eq!(sent, 1);
    }

    // ---- fragments -----------------------------------------------------

    /// `packet` cut into IPv4 fragments of `unit` payload bytes (a
    /// multiple of 8), identification `id`.
    fn fragments(packet: &[u8], unit: usize, id: u16) -> Vec<Vec<u8>> {
        let (ip, payload) = Ipv4Repr::parse(packet).unwrap_or_else(|e| panic!("{e}"));
        payload
            .chunks(unit)
            .enumerate()
            .map(|(i, part)| {
                let frag = Ipv4Repr {
                    payload_len: part.len(),
                    ..ip
                };
                let mut p = vec![0u8; frag.buffer_len()];
                let more = (i + 1) * unit < payload.len();
                frag.emit_fragment(&mut p, id, i * unit, more)
                    .unwrap_or_else(|e| panic!("{e}"));
                p[ipv4::HEADER_LEN..].copy_from_slice(part);
                p
            })
            .collect()
    }

    fn udp_packet(port: u16, payload: &[u8]) -> Vec<u8> {
        let dgram = UdpRepr {
            src_port: 40000,
            dst_port: port,
            payload,
        };
        let ip = Ipv4Repr {
            src: PEER,
            dst: US,
            protocol: udp::PROTOCOL,
            ttl: 64,
            payload_len: dgram.buffer_len(),
        };
        let mut p = vec![0u8; ip.buffer_len()];
        dgram
            .emit(PEER, US, &mut p[ipv4::HEADER_LEN..])
            .unwrap_or_else(|e| panic!("{e}"));
        ip.emit(&mut p).unwrap_or_else(|e| panic!("{e}"));
        p
    }

    fn echo_request(data: &[u8]) -> Vec<u8> {
        let msg = IcmpRepr::EchoRequest {
            ident: 9,
            seq_no: 1,
            data,
        };
        let ip = Ipv4Repr {
            src: PEER,
            dst: US,
            protocol: ipv4::PROTOCOL_ICMP,
            ttl: 64,
            payload_len: msg.buffer_len(),
        };
        let mut p = vec![0u8; ip.buffer_len()];
        msg.emit(&mut p[ipv4::HEADER_LEN..])
            .unwrap_or_else(|e| panic!("{e}"));
        ip.emit(&mut p).unwrap_or_else(|e| panic!("{e}"));
        p
    }

    fn batch_of(packets: &[Vec<u8>]) -> PacketBatch {
        let mut batch = PacketBatch::new(packets.len().max(1), ipv4::MAX_PACKET_LEN);
        for p in packets {
            let pushed = batch.push_with_meta(|buf| {
                buf[..p.len()].copy_from_slice(p);
                Ok::<_, ()>(Some((p.len(), RxMeta::default())))
            });
            assert_eq!(pushed, Ok(true));
        }
        batch
    }

    /// Everything the stack sent, oldest first.
    fn sent_by_us(peer: &MemDevice) -> Vec<Vec<u8>> {
        let mut batch = PacketBatch::new(64, ipv4::MAX_PACKET_LEN);
        let mut out = Vec::new();
        while peer.recv_batch(&mut batch, Duration::ZERO).unwrap_or(0) > 0 {
            out.extend(batch.iter_with_meta().map(|(p, _)| p.to_vec()));
        }
        out
    }

    #[test]
    fn udp_datagram_in_fragments_out_of_order_is_delivered_whole() {
        let (ours, _peer) = MemPair::new(64, 1500);
        let inner = Inner::threadless(Box::new(ours), Config::with_addr(US));
        let sock = inner
            .bind_udp(SocketAddr::from((US, 7)))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let data: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
        let mut frags = fragments(&udp_packet(7, &data), 1480, 77);
        assert_eq!(frags.len(), 3);
        frags.swap(0, 2);
        // A duplicate of the middle fragment is ignored.
        frags.insert(1, frags[1].clone());
        let mut rx = Rx::new(frags.len());
        rx.process(&inner, &batch_of(&frags));
        let q = sock.queue.lock();
        assert_eq!(q.datagrams.len(), 1);
        assert_eq!(q.datagrams[0].data, data);
        drop(q);
        assert_eq!(inner.stats.get("ip_frag_received"), Some(4));
        assert_eq!(inner.stats.get("ip_reassembled"), Some(1));
        assert_eq!(inner.stats.get("udp_rx"), Some(1));
        assert_eq!(inner.reasm.usage(), (0, 0));
    }

    #[test]
    fn large_ping_is_reassembled_and_answered_in_fragments() {
        let (ours, peer) = MemPair::new(64, 1500);
        let inner = Inner::threadless(Box::new(ours), Config::with_addr(US));
        let data: Vec<u8> = (0..4000u32).map(|i| (i % 7) as u8).collect();
        let frags = fragments(&echo_request(&data), 1480, 5);
        let mut rx = Rx::new(frags.len());
        rx.process(&inner, &batch_of(&frags));
        assert_eq!(inner.stats.get("icmp_echo"), Some(1));
        let sent = sent_by_us(&peer);
        assert_eq!(sent.len(), 3, "4008 bytes of ICMP in 1480-byte fragments");
        // Reassembled by our own reassembler, the reply is the request's
        // data under type 0.
        let (check, _peer2) = MemPair::new(4, 1500);
        let other = Inner::threadless(Box::new(check), Config::with_addr(PEER));
        let mut whole = None;
        for p in &sent {
            let (ip, frag, payload) = Ipv4Repr::parse_fragment(p).unwrap();
            assert!(p.len() <= 1500);
            assert_eq!(p[6] & 0x40, 0, "DF is clear on fragments");
            let frag = frag.expect("a fragment");
            if let Some(w) = reasm::on_fragment(&other, Instant::ZERO, &ip, frag, p, payload) {
                whole = Some(w);
            }
        }
        let whole = whole.expect("the reply reassembles");
        let (_, payload) = Ipv4Repr::parse(&whole).unwrap();
        assert_eq!(
            IcmpRepr::parse(payload),
            Ok(IcmpRepr::EchoReply {
                ident: 9,
                seq_no: 1,
                data: &data
            })
        );
    }

    #[test]
    fn fragmented_syn_opens_and_fragmented_data_reaches_the_connection() {
        let (ours, peer) = MemPair::new(64, 1500);
        let inner = Inner::threadless(Box::new(ours), Config::with_addr(US));
        let _listener = inner
            .listen(SocketAddr::from((US, 80)), None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        // The SYN's 20-byte TCP header in 8-byte fragments: even the
        // header is split.
        let syn = segment(80, TcpFlags::SYN, &[]);
        let mut rx = Rx::new(8);
        rx.process(&inner, &batch_of(&fragments(&syn, 8, 1)));
        assert_eq!(inner.stats.get("tcp_passive_opens"), Some(1));
        let replies = sent_by_us(&peer);
        assert_eq!(replies.len(), 1, "the SYN-ACK");
        let (ip, payload) = Ipv4Repr::parse(&replies[0]).unwrap();
        let syn_ack = TcpRepr::parse(ip.src, ip.dst, payload, true).unwrap();
        assert!(syn_ack.flags.syn() && syn_ack.flags.ack());

        // The handshake's ACK carries 16 bytes, in two fragments.
        let ack = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: SeqNumber(2),
            ack: syn_ack.seq + 1,
            flags: TcpFlags::ACK,
            window: 1000,
            urgent: 0,
            options: TcpOptions::default(),
            payload: b"sixteen bytes!!!",
        };
        let p = packet_of(PEER, &ack);
        rx.process(&inner, &batch_of(&fragments(&p, 24, 2)));
        assert_eq!(inner.stats.get("ip_reassembled"), Some(2));
        let conn = inner
            .entries()
            .into_iter()
            .find_map(|e| match e {
                Entry::Tcp(sock) => Some(sock),
                _ => None,
            })
            .expect("the connection");
        let st = conn.state.lock();
        assert!(st.conn.is_established());
        assert_eq!(st.conn.recv_queue(), 16);
    }

    #[test]
    fn fragments_are_dropped_and_counted_when_reassembly_is_off() {
        let config = Config {
            reassembly_max_datagrams: 0,
            ..Config::with_addr(US)
        };
        let frags: Vec<_> = fragments(&udp_packet(7, &[1; 3000]), 1480, 3)
            .into_iter()
            .map(|p| (p, RxMeta::default()))
            .collect();
        let (stats, sent) = run_with(config, &frags);
        assert_eq!(count(&stats, "drop_fragmented"), 3);
        assert_eq!(count(&stats, "ip_frag_received"), 0);
        assert_eq!(sent, 0);
    }

    #[test]
    fn batch_buffers_hold_the_largest_packet_the_device_returns() {
        let (ours, _peer) = MemPair::new(1, 9000);
        assert_eq!(new_batch(4, &ours).buf_len(), ours.max_packet());
    }
}
