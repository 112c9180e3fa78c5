//! Tests for the connection state machine, grouped by state as RFC 9293
//! §3.10 is. Segments are built from `const` templates (`..ACK_TEMPL`),
//! connections from fixtures (`established()`), and `send!`/`recv!`/
//! `recv_nothing!` drive them at explicit simulated times.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use super::{Connection, State, TcpConfig};
use crate::time::Instant;
use crate::wire::tcp::{SackBlock, TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;

mod close;
mod fuzz;
mod handshake;
mod keepalive;
mod memory;
mod options;
mod path_mtu;
mod rack;
mod reopen;
mod reset;
mod retransmit;
mod sack;
mod sim;
mod transfer;
mod tso;
mod window;

pub(super) const LOCAL: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80));
pub(super) const REMOTE: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 49152));
/// Our initial sequence number.
pub(super) const LOCAL_ISS: u32 = 10_000;
/// The peer's initial sequence number.
pub(super) const REMOTE_ISS: u32 = 50_000;
/// Our first data byte, and the peer's.
pub(super) const L: u32 = LOCAL_ISS + 1;
pub(super) const R: u32 = REMOTE_ISS + 1;
/// The receive buffer in `cfg()`: fits an unscaled window.
pub(super) const RECV_BUF: usize = 64_000;

pub(super) const NO_OPTIONS: TcpOptions = TcpOptions {
    mss: None,
    window_scale: None,
    sack_permitted: false,
    timestamps: None,
    sack: [SackBlock {
        left: SeqNumber(0),
        right: SeqNumber(0),
    }; 4],
    sack_len: 0,
};

/// A segment from the peer: ACK, full window, no options.
pub(super) const ACK_TEMPL: TcpRepr<'static> = TcpRepr {
    src_port: 49152,
    dst_port: 80,
    seq: SeqNumber(R),
    ack: SeqNumber(L),
    flags: TcpFlags::ACK,
    window: 0xffff,
    urgent: 0,
    options: NO_OPTIONS,
    payload: &[],
};

/// The peer's SYN, with an MSS option.
pub(super) const SYN_TEMPL: TcpRepr<'static> = TcpRepr {
    seq: SeqNumber(REMOTE_ISS),
    ack: SeqNumber(0),
    flags: TcpFlags::SYN,
    options: TcpOptions {
        mss: Some(1460),
        ..NO_OPTIONS
    },
    ..ACK_TEMPL
};

pub(super) const SYN: TcpFlags = TcpFlags::SYN;
pub(super) const ACK: TcpFlags = TcpFlags::ACK;
pub(super) const FIN: TcpFlags = TcpFlags::FIN;
pub(super) const RST: TcpFlags = TcpFlags::RST;
pub(super) const PSH: TcpFlags = TcpFlags::PSH;

/// A peer segment: `flags`, `seq`, `ack` on top of `ACK_TEMPL`.
pub(super) fn seg(flags: TcpFlags, seq: u32, ack: u32) -> TcpRepr<'static> {
    TcpRepr {
        flags,
        seq: SeqNumber(seq),
        ack: SeqNumber(ack),
        ..ACK_TEMPL
    }
}

/// A data segment from the peer.
pub(super) fn data(seq: u32, ack: u32, payload: &'static [u8]) -> TcpRepr<'static> {
    TcpRepr {
        payload,
        ..seg(ACK | PSH, seq, ack)
    }
}

/// Plain settings for state-machine tests: no options, immediate ACKs,
/// Nagle off, a buffer whose window fits 16 bits, 1 s MSL.
pub(super) fn cfg() -> TcpConfig {
    TcpConfig {
        send_buffer: 64_000,
        recv_buffer: RECV_BUF,
        window_scaling: false,
        sack: false,
        timestamps: false,
        delayed_ack: None,
        nodelay: true,
        msl: Duration::from_secs(1),
        ..TcpConfig::default()
    }
}

/// The peer's ACK of `ack` with SACK blocks `[l, r)` (absolute).
pub(super) fn sack_ack(ack: u32, blocks: &[(u32, u32)]) -> TcpRepr<'static> {
    let mut options = NO_OPTIONS;
    for &(l, r) in blocks {
        options.push_sack(SackBlock {
            left: SeqNumber(l),
            right: SeqNumber(r),
        });
    }
    TcpRepr {
        options,
        ..seg(ACK, R, ack)
    }
}

pub(super) fn ms(t: u64) -> Instant {
    Instant::from_millis(t)
}

/// An emitted segment, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Out {
    pub(super) flags: TcpFlags,
    pub(super) seq: u32,
    pub(super) ack: u32,
    pub(super) window: u16,
    pub(super) options: TcpOptions,
    pub(super) payload: Vec<u8>,
}

#[track_caller]
pub(super) fn poll(c: &mut Connection, t: u64) -> Option<Out> {
    let mut buf = vec![0u8; 2000];
    let repr = c.poll_transmit(ms(t), &mut buf)?;
    assert_eq!(repr.src_port, LOCAL.port());
    assert_eq!(repr.dst_port, REMOTE.port());
    Some(Out {
        flags: repr.flags,
        seq: repr.seq.0,
        ack: if repr.flags.ack() { repr.ack.0 } else { 0 },
        window: repr.window,
        options: repr.options,
        payload: repr.payload.to_vec(),
    })
}

/// Feeds a segment at a time (ms).
macro_rules! send {
    ($c:expr, time $t:expr, $seg:expr) => {
        $c.handle_segment($crate::time::Instant::from_millis($t), &$seg)
    };
}

/// Expects the next emitted segment to have these flags (exactly), seq
/// and ack; returns it for further checks.
macro_rules! recv {
    ($c:expr, time $t:expr, $flags:expr, seq $seq:expr, ack $ack:expr) => {{
        let out = $crate::tcp::tests::poll(&mut $c, $t).expect("expected a segment");
        assert_eq!(
            (out.flags, out.seq, out.ack),
            ($flags, $seq, $ack),
            "got {:?}",
            out
        );
        out
    }};
}

/// Expects nothing to be emitted.
macro_rules! recv_nothing {
    ($c:expr, time $t:expr) => {{
        let out = $crate::tcp::tests::poll(&mut $c, $t);
        assert_eq!(out, None);
    }};
}

pub(super) use {recv, recv_nothing, send};

/// The runtime keeps connections behind a mutex shared across threads.
#[test]
fn connection_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Connection>();
}

// ---- Fixtures ----------------------------------------------------------

/// SYN-SENT with our SYN already emitted at t=0.
pub(super) fn syn_sent_with(config: &TcpConfig) -> Connection {
    let mut c = Connection::connect(ms(0), LOCAL, REMOTE, SeqNumber(LOCAL_ISS), config);
    recv!(c, time 0, SYN, seq LOCAL_ISS, ack 0);
    c
}

pub(super) fn syn_sent() -> Connection {
    syn_sent_with(&cfg())
}

/// SYN-RECEIVED from the template SYN, SYN-ACK emitted at t=0.
pub(super) fn syn_received_with(config: &TcpConfig, syn: &TcpRepr<'_>) -> Connection {
    let mut c = Connection::accept(ms(0), LOCAL, REMOTE, syn, SeqNumber(LOCAL_ISS), config);
    assert_eq!(c.state(), State::SynReceived);
    recv!(c, time 0, SYN | ACK, seq LOCAL_ISS, ack R);
    c
}

pub(super) fn syn_received() -> Connection {
    syn_received_with(&cfg(), &SYN_TEMPL)
}

/// ESTABLISHED by passive open; the handshake ACK arrived at t=0 (an RTT
/// sample of 0: the RTO is `min_rto`, 200 ms).
pub(super) fn established_with(config: &TcpConfig) -> Connection {
    let mut c = syn_received_with(config, &SYN_TEMPL);
    send!(c, time 0, seg(ACK, R, L));
    assert_eq!(c.state(), State::Established);
    recv_nothing!(c, time 0);
    c
}

pub(super) fn established() -> Connection {
    established_with(&cfg())
}

/// FIN-WAIT-1: we closed, our FIN (seq L) is out.
pub(super) fn fin_wait_1() -> Connection {
    let mut c = established();
    c.close();
    assert_eq!(c.state(), State::FinWait1);
    recv!(c, time 0, FIN | ACK, seq L, ack R);
    c
}

/// FIN-WAIT-2: our FIN is acknowledged.
pub(super) fn fin_wait_2() -> Connection {
    let mut c = fin_wait_1();
    send!(c, time 0, seg(ACK, R, L + 1));
    assert_eq!(c.state(), State::FinWait2);
    recv_nothing!(c, time 0);
    c
}

/// CLOSE-WAIT: the peer's FIN (seq R) arrived and was acknowledged.
pub(super) fn close_wait() -> Connection {
    let mut c = established();
    send!(c, time 0, seg(FIN | ACK, R, L));
    assert_eq!(c.state(), State::CloseWait);
    recv!(c, time 0, ACK, seq L, ack R + 1);
    c
}

/// LAST-ACK: we closed after the peer; our FIN (seq L) is out.
pub(super) fn last_ack() -> Connection {
    let mut c = close_wait();
    c.close();
    assert_eq!(c.state(), State::LastAck);
    recv!(c, time 0, FIN | ACK, seq L, ack R + 1);
    c
}

/// CLOSING: both FINs crossed; ours is not yet acknowledged.
pub(super) fn closing() -> Connection {
    let mut c = fin_wait_1();
    send!(c, time 0, seg(FIN | ACK, R, L));
    assert_eq!(c.state(), State::Closing);
    recv!(c, time 0, ACK, seq L + 1, ack R + 1);
    c
}

/// TIME-WAIT entered at t=0 (expires at 2 s with `cfg()`).
pub(super) fn time_wait() -> Connection {
    let mut c = fin_wait_2();
    send!(c, time 0, seg(FIN | ACK, R, L + 1));
    assert_eq!(c.state(), State::TimeWait);
    recv!(c, time 0, ACK, seq L + 1, ack R + 1);
    c
}

/// Drains every emitted segment at time `t`.
pub(super) fn drain(c: &mut Connection, t: u64) -> Vec<Out> {
    let mut v = Vec::new();
    while let Some(o) = poll(c, t) {
        v.push(o);
        assert!(v.len() < 1000, "poll_transmit never stops");
    }
    v
}
