//! One TCP connection: the RFC 9293 state machine with its buffers and
//! timers, sans-IO. Segments and time go in through `handle_*`, segments
//! and deadlines come out through `poll_*`; nothing here reads a clock,
//! touches a device or spawns a thread.
//!
//! The state is a composition of owned parts, each with its invariants
//! and tests (quinn-proto's `Connection` is the model): `SendSpace` and
//! `RecvSpace` (the two sequence spaces, RFC 9293 §3.3.1), `LossRecovery`
//! (SACK scoreboard, recovery episode, RACK and TLP), `Timing` (RTT and
//! Karn's rule), `Negotiated` (the SYNs' options), `Owed` (the replies the
//! next `poll_transmit` sends), plus congestion control and the timer
//! table. The `Connection` methods orchestrate them: inputs in
//! `connection/input.rs` (RFC 9293 §3.10.7, "SEGMENT ARRIVES"), outputs in
//! `connection/output.rs`, timeouts in `connection/timeouts.rs`, recovery
//! in `recovery.rs` and `rack.rs`. This file holds the struct, the
//! constructors, the application commands, the transitions and the
//! getters.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::config::TcpConfig;
use super::congestion::{new_controller, CongestionControl};
use super::error::{ConnError, ConnStats, RecvError, SendError};
use super::rtt::RttEstimator;
use super::state::State;
use super::timer::{Timer, TimerTable};
use crate::time::Instant;
use crate::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;

mod backoff;
#[cfg(test)]
mod checks;
mod delivery;
pub mod info;
mod input;
mod loss;
mod negotiated;
mod output;
mod owed;
mod passive;
mod path_mtu;
mod rack;
mod recovery;
mod recv_space;
mod reopen;
mod send_space;
mod timeouts;
mod timing;

use backoff::Backoff;
use loss::LossRecovery;
use negotiated::{window_shift, Negotiated};
use owed::{AckOwed, Owed};
use recv_space::RecvSpace;
use send_space::SendSpace;
use timing::Timing;

/// A data-bearing segment decided on: its sequence number, flags, and how
/// many payload bytes were written to the front of the caller's buffer.
type Planned = (SeqNumber, TcpFlags, usize);

/// A TCP connection (RFC 9293), sans-IO.
///
/// # Method taxonomy and call order
///
/// - Constructors: [`Connection::connect`] (active open, SYN-SENT) and
///   [`Connection::accept`] (passive open from a SYN, SYN-RECEIVED).
/// - Inputs: [`handle_segment`](Self::handle_segment) for every segment of
///   this four-tuple, [`handle_timeout`](Self::handle_timeout) when
///   [`poll_timeout`](Self::poll_timeout)'s instant has come. Inputs never
///   emit; they only record what is owed (an ACK, a RST, data).
/// - Application commands: [`send`](Self::send), [`recv`](Self::recv),
///   [`close`](Self::close), [`abort`](Self::abort).
/// - Outputs: after any input or command, call
///   [`poll_transmit`](Self::poll_transmit) until it returns `None`, then
///   [`poll_timeout`](Self::poll_timeout) for the next wakeup. One
///   `poll_transmit` pass after a batch of segments sends one cumulative ACK
///   (piggybacked on data when there is any).
/// - Getters: [`state`](Self::state), [`error`](Self::error),
///   [`can_recv`](Self::can_recv), [`can_send`](Self::can_send), ...
///
/// # Bounds
///
/// DoS warning: memory is at most `send_buffer` bytes of send ring,
/// `recv_buffer` of receive ring and the 4 KiB chunks holding out-of-order
/// bytes within the window, plus the bounded out-of-order bookkeeping
/// (`max_ooo_ranges`). The receive side is charged to `config.memory`, a
/// budget shared with the stack's other connections, and stores less when
/// the budget refuses (see `tcp::memory`).
pub struct Connection {
    config: TcpConfig,
    local: SocketAddr,
    remote: SocketAddr,
    state: State,
    error: Option<ConnError>,
    /// Reached ESTABLISHED at least once.
    established: bool,
    /// Created by `accept` (passive open).
    passive: bool,
    timers: TimerTable,
    stats: ConnStats,

    /// Send sequence space (RFC 9293 §3.3.1).
    snd: SendSpace,
    /// `close` was called in SYN-RECEIVED: FIN once ESTABLISHED.
    close_pending: bool,

    // Retransmission (RFC 6298) and congestion control (RFC 5681, 6582).
    /// The RTT estimator and the segment being timed (Karn's rule).
    rtt: Timing,
    /// Back-off and give-up counters (retransmissions, persist,
    /// keepalive).
    backoff: Backoff,
    cc: Box<dyn CongestionControl>,
    /// Loss detection and recovery: SACK scoreboard, the recovery
    /// episode, RACK and the tail loss probe.
    loss: LossRecovery,

    /// Receive sequence space (RFC 9293 §3.3.1).
    rcv: RecvSpace,
    /// The replies owed to the peer, for the next `poll_transmit`.
    owed: Owed,

    /// Options negotiated on the SYNs.
    opts: Negotiated,
    /// The most payload one new-data segment may carry when the device
    /// segments for us (TSO); 0 means one MSS. See
    /// [`set_max_segment_payload`](Self::set_max_segment_payload).
    max_segment_payload: usize,
    /// What `info()` reports as the delivery rate.
    delivery: delivery::DeliveryRate,
}

impl Connection {
    /// Active open: CLOSED -> SYN-SENT. The first `poll_transmit` emits the
    /// SYN.
    pub fn connect(
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        config: &TcpConfig,
    ) -> Connection {
        let config = &config.for_address(local.ip());
        let mut conn = Connection::new(now, local, remote, iss, config);
        conn.state = State::SynSent;
        conn.opts.offer(config);
        if config.window_scaling {
            conn.rcv.set_wscale(window_shift(config.recv_buffer));
        }
        conn
    }

    /// Passive open from a SYN that matched a listener: LISTEN ->
    /// SYN-RECEIVED. The first `poll_transmit` emits the SYN-ACK, offering
    /// only the options the SYN offered (RFC 7323 §1.3, RFC 2018 §2).
    ///
    /// The caller checked that `syn` has SYN and neither ACK nor RST (RFC
    /// 9293 §3.10.7.2); anything else is treated as that SYN anyway.
    pub fn accept(
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &TcpRepr<'_>,
        iss: SeqNumber,
        config: &TcpConfig,
    ) -> Connection {
        let config = &config.for_address(local.ip());
        let mut conn = Connection::new(now, local, remote, iss, config);
        conn.state = State::SynReceived;
        conn.passive = true;
        conn.take_peer_syn(syn);
        conn.stats.segs_received = 1;
        conn
    }

    /// Records the peer's SYN, in passive open and in SYN-SENT alike: its
    /// ISN, the options it offered (RFC 7323 §1.3, RFC 2018 §2), and its
    /// window, which in a SYN is never scaled (RFC 7323 §2.2). Our own SYN
    /// offered an unscaled window of `syn_window()` bytes.
    fn take_peer_syn(&mut self, syn: &TcpRepr<'_>) {
        self.rcv.peer_syn(syn.seq);
        self.opts.sent_ack(self.rcv.nxt());
        self.negotiate(&syn.options);
        self.snd.peer_syn(syn.seq, usize::from(syn.window));
    }

    fn new(
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        config: &TcpConfig,
    ) -> Connection {
        let _ = now;
        let opts = Negotiated::new(config);
        Connection {
            config: config.clone(),
            local,
            remote,
            state: State::Closed,
            error: None,
            established: false,
            passive: false,
            timers: TimerTable::default(),
            stats: ConnStats::default(),
            snd: SendSpace::new(iss, config.send_buffer),
            close_pending: false,
            rtt: Timing::new(RttEstimator::new(
                config.initial_rto,
                config.min_rto,
                config.max_rto,
            )),
            backoff: Backoff::default(),
            cc: new_controller(config.congestion, opts.send_mss()),
            loss: LossRecovery::new(iss),
            rcv: RecvSpace::new(
                config.recv_buffer,
                config.max_ooo_ranges,
                config.mss,
                config.memory.clone(),
            ),
            owed: Owed::new(config.challenge_acks_per_sec),
            opts,
            max_segment_payload: 0,
            delivery: delivery::DeliveryRate::default(),
        }
    }

    /// Applies the options of the peer's SYN (see `Negotiated::peer_syn`)
    /// and tells congestion control the MSS they leave.
    fn negotiate(&mut self, opts: &TcpOptions) {
        let (ours, peers) = self.opts.peer_syn(&self.config, opts);
        self.rcv.set_wscale(ours);
        self.snd.set_wscale(peers);
        self.cc.set_mss(self.payload_mss());
    }

    /// Payload bytes in a full-sized segment with our fixed options.
    fn payload_mss(&self) -> usize {
        self.opts.payload_mss()
    }

    // ---- Application commands -------------------------------------------

    /// Queues `data` for sending; returns how much was taken, `Ok(0)` when
    /// the send buffer is full (would block). Data queued before the
    /// handshake completes is sent once ESTABLISHED.
    ///
    /// # Errors
    ///
    /// `SendError::Conn` once the connection failed; `InvalidState` after
    /// `close` or once the write side is otherwise finished.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, SendError> {
        if let Some(e) = self.error {
            return Err(SendError::Conn(e));
        }
        if !self.state.can_queue_send() || self.close_pending {
            return Err(SendError::InvalidState);
        }
        Ok(self.snd.queue(data))
    }

    /// Reads received in-order data. `Ok(0)` with a non-empty `buf` means
    /// nothing yet (would block). Call `poll_transmit` afterwards: the
    /// freed space may owe the peer a window update.
    ///
    /// # Errors
    ///
    /// `Finished` once the peer's FIN has been read past; `Conn` when the
    /// connection failed (pending data is discarded, as Linux does on a
    /// reset); `InvalidState` when it was closed locally without a FIN.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        if let Some(e) = self.error {
            return Err(RecvError::Conn(e));
        }
        let n = self.rcv.read(buf);
        if n > 0 && self.rcv.fin_rcvd() && self.rcv.buf().is_empty() {
            // The peer's FIN is in and everything before it read: the
            // receive ring will never hold a byte again.
            self.rcv.buf_mut().shrink();
        }
        self.read_outcome(n, buf.is_empty())
    }

    /// What a read of `n` bytes (into an empty buffer when `empty`) tells
    /// the caller: the bytes, or, when there were none, whether more may
    /// come (`Ok(0)`), the peer's FIN was read past, or the connection was
    /// closed locally.
    fn read_outcome(&self, n: usize, empty: bool) -> Result<usize, RecvError> {
        if n > 0 || empty {
            return Ok(n);
        }
        if self.rcv.fin_rcvd() {
            return Err(RecvError::Finished);
        }
        if self.state == State::Closed {
            return Err(RecvError::InvalidState);
        }
        Ok(0)
    }

    /// Shuts down the write side: FIN after all queued data (ESTABLISHED ->
    /// FIN-WAIT-1, CLOSE-WAIT -> LAST-ACK; in SYN-RECEIVED the FIN waits
    /// for ESTABLISHED; in SYN-SENT the connection just closes, RFC 9293
    /// §3.10.4). Idempotent.
    pub fn close(&mut self) {
        match self.state {
            State::Closed | State::Listen | State::SynSent => self.enter_closed(),
            State::SynReceived => self.close_pending = true,
            State::Established => self.state = State::FinWait1,
            State::CloseWait => self.state = State::LastAck,
            _ => {}
        }
    }

    /// Aborts: the next `poll_transmit` sends `<SEQ=SND.MAX><CTL=RST>` (in
    /// the states where RFC 9293 §3.10.5 says so) and the connection is
    /// CLOSED. Queued data is discarded.
    pub fn abort(&mut self) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            // SND.NXT in the RFC; after a timeout ours may lag SND.MAX,
            // which is what the peer's window is measured from. But not
            // beyond the peer's window: after the peer shrank it (RFC
            // 9293 §3.8.6), a RST at SND.MAX would fall outside it, where
            // RFC 5961 §3.2 has it dropped. So min(SND.MAX, SND.UNA +
            // SND.WND), as Linux's tcp_acceptable_seq.
            let window_end = self.snd.una() + self.snd.wnd();
            self.owed.rst(self.snd.max().min(window_end), None);
        }
        self.enter_closed();
        self.snd.discard();
        self.rcv.discard();
    }

    /// [`abort`](Self::abort), and `error` recorded (unless the
    /// connection already failed) for the application's calls, waiting
    /// and later ones, to report.
    pub fn abort_with(&mut self, error: ConnError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
        self.abort();
    }

    /// Gives memory back to the budget under pressure: discards the
    /// out-of-order data held (always safe: the peer retransmits it, and
    /// SACK no longer reports it) and, if `rings` too, the storage of
    /// drained rings. Returns the out-of-order bytes discarded and whether
    /// a ring shrank. The runtime calls it on every connection when the
    /// budget refused a charge (see `tcp::memory`).
    pub fn reclaim_memory(&mut self, rings: bool) -> (usize, bool) {
        let pruned = self.rcv.buf_mut().prune_ooo();
        let shrunk = rings && self.shrink_rings();
        (pruned, shrunk)
    }

    // ---- Transitions ----------------------------------------------------

    fn enter_established(&mut self, now: Instant) {
        self.state = State::Established;
        self.established = true;
        if self.close_pending {
            self.close_pending = false;
            self.state = State::FinWait1;
        }
        if let Some(k) = self.config.keepalive {
            self.timers.set(Timer::Keepalive, now + k);
        }
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.timers.stop_all();
        self.timers
            .set(Timer::TimeWait, now + self.config.msl.saturating_mul(2));
        self.loss.stop();
        self.owed.cancel_probes();
        // Nothing more is sent or received in TIME-WAIT: give the rings'
        // storage back (the receive ring once the reader has drained it,
        // see `recv`). Thousands of connections may sit here.
        self.shrink_rings();
    }

    /// Gives the storage of drained rings back; returns whether any ring
    /// shrank (each one counted).
    fn shrink_rings(&mut self) -> bool {
        let mut shrunk = self.rcv.buf_mut().shrink();
        if self.snd.buf_mut().shrink() {
            self.rcv.buf().memory().count_shrunk();
            shrunk = true;
        }
        shrunk
    }

    fn enter_closed(&mut self) {
        self.state = State::Closed;
        self.timers.stop_all();
        self.owed.closed();
        self.loss.stop();
        self.close_pending = false;
    }

    /// The connection failed: record why (the first reason wins) and close.
    fn fail(&mut self, error: ConnError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
        self.snd.discard();
        self.enter_closed();
    }

    // ---- Derived quantities ----------------------------------------------

    /// Whether our FIN is wanted: the application closed the write side.
    fn fin_wanted(&self) -> bool {
        matches!(
            self.state,
            State::FinWait1 | State::Closing | State::LastAck
        ) && !self.snd.fin_acked()
    }

    // ---- Options ----------------------------------------------------------

    /// Turns Nagle's algorithm off (`true`) or back on (RFC 9293 §3.7.4),
    /// like `TCP_NODELAY`.
    pub fn set_nodelay(&mut self, nodelay: bool) {
        self.config.nodelay = nodelay;
    }

    pub fn nodelay(&self) -> bool {
        self.config.nodelay
    }

    /// Probes the peer after `idle` without traffic (RFC 1122 §4.2.3.6),
    /// like `SO_KEEPALIVE`; `None` stops probing.
    pub fn set_keepalive(&mut self, now: Instant, idle: Option<Duration>) {
        self.config.keepalive = idle;
        self.backoff.heard();
        match idle {
            Some(k) if matches!(self.state, State::Established | State::CloseWait) => {
                self.timers.set(Timer::Keepalive, now + k);
            }
            _ => self.timers.stop(Timer::Keepalive),
        }
    }

    pub fn keepalive(&self) -> Option<Duration> {
        self.config.keepalive
    }

    /// Lets one new-data segment carry up to `bytes` of payload, for a
    /// device that cuts it into MSS-sized packets itself (TCP segmentation
    /// offload; see `Device::send_tso`). Such a super-segment is a whole
    /// number of MSS units (a short last unit only where Nagle and sender
    /// SWS avoidance would send it by itself), within the congestion and
    /// peer windows, and stands for that many segments on the wire:
    /// congestion control, SACK, RACK-TLP and retransmissions all still
    /// work in MSS units, and every retransmission, probe and SYN is at
    /// most one MSS. 0 (the default), or anything below one MSS, means
    /// one MSS per segment.
    ///
    /// The runtime sets it from the device's `max_segment()` less the
    /// largest IPv4 and TCP headers.
    pub fn set_max_segment_payload(&mut self, bytes: usize) {
        self.max_segment_payload = bytes;
    }

    pub fn max_segment_payload(&self) -> usize {
        self.max_segment_payload
    }

    // ---- Getters ----------------------------------------------------------

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Bytes ready for `recv`.
    pub fn recv_queue(&self) -> usize {
        self.rcv.buf().len()
    }

    /// Bytes queued and not yet acknowledged.
    pub fn send_queue(&self) -> usize {
        self.snd.buf().len()
    }

    /// Room in the send buffer.
    pub fn send_free(&self) -> usize {
        self.snd.buf().free()
    }

    /// A blocked reader should wake: data ready, FIN received, error, or
    /// closed.
    pub fn can_recv(&self) -> bool {
        !self.rcv.buf().is_empty()
            || self.rcv.fin_rcvd()
            || self.error.is_some()
            || self.state == State::Closed
    }

    /// A blocked writer should wake: room in a state that takes data, or
    /// the write side is over (error, closed).
    pub fn can_send(&self) -> bool {
        let open = self.state.can_queue_send() && !self.close_pending;
        !open || self.snd.buf().free() > 0 || self.error.is_some()
    }

    /// Reached ESTABLISHED (or later) at least once.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// CLOSED with nothing left to send: the runtime may drop it. TIME-WAIT
    /// is not closed until it expires.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && !self.owed.rst_pending()
    }

    pub fn error(&self) -> Option<ConnError> {
        self.error
    }

    pub fn stats(&self) -> ConnStats {
        self.stats
    }

    /// The current retransmission timeout.
    pub fn rto(&self) -> Duration {
        self.rtt.rto()
    }

    /// The smoothed RTT, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.rtt.srtt()
    }

    /// The congestion window in bytes.
    pub fn cwnd(&self) -> usize {
        self.cc.window()
    }

    /// The peer's window in bytes, scaled.
    pub fn peer_window(&self) -> usize {
        self.snd.wnd()
    }

    /// The payload bytes in a full-sized segment we send.
    pub fn effective_mss(&self) -> usize {
        self.payload_mss()
    }

    /// (our shift, the peer's shift) when window scaling is in use.
    pub fn window_scale(&self) -> Option<(u8, u8)> {
        let (ours, peers) = (self.rcv.wscale(), self.snd.wscale());
        if ours == 0 && peers == 0 {
            None
        } else {
            Some((ours, peers))
        }
    }

    /// Whether SACK and timestamps were negotiated.
    pub fn sack_enabled(&self) -> bool {
        self.opts.sack() && self.state != State::SynSent
    }

    pub fn timestamps_enabled(&self) -> bool {
        self.opts.timestamps() && self.state != State::SynSent
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("state", &self.state)
            .field("error", &self.error)
            .field("snd_una", &self.snd.una())
            .field("snd_nxt", &self.snd.nxt())
            .field("snd_wnd", &self.snd.wnd())
            .field("rcv_nxt", &self.rcv.nxt())
            .field("send_queue", &self.snd.buf().len())
            .field("recv_queue", &self.rcv.buf().len())
            .field("cc", &self.cc.name())
            .finish_non_exhaustive()
    }
}

/// `to - from` in sequence space, 0 when `to` is behind.
fn distance(from: SeqNumber, to: SeqNumber) -> usize {
    usize::try_from(to - from).unwrap_or(0)
}
