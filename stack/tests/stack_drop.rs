//! Dropping the last handle of a `Stack` shuts it down, as dropping a
//! `std::net` socket closes it: open connections are reset, the threads
//! end and the device is released. Sockets keep their stack alive.
//!
//! The peer is the other end of a `MemPair`, driven by hand, so what the
//! stack sent is observed packet by packet; "the threads ended" is
//! observed as the stack's end of the link being gone (the threads hold
//! the device), never by sleeping.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use stack::device::mem::{MemDevice, MemPair};
use stack::device::{Device, PacketBatch};
use stack::wire::ipv4::{self, Ipv4Repr};
use stack::wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr};
use stack::wire::udp::{self, UdpRepr};
use stack::wire::SeqNumber;
use stack::{Config, Stack, TcpListener, UdpSocket};

const STACK: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);
const PEER_PORT: u16 = 40_000;

fn ip_packet(protocol: u8, transport: &[u8]) -> Vec<u8> {
    let ip = Ipv4Repr {
        src: PEER,
        dst: STACK,
        protocol,
        ttl: 64,
        payload_len: transport.len(),
    };
    let mut p = vec![0u8; ip.buffer_len()];
    ip.emit(&mut p).unwrap();
    p[ipv4::HEADER_LEN..].copy_from_slice(transport);
    p
}

fn tcp_packet(seq: SeqNumber, ack: SeqNumber, flags: TcpFlags) -> Vec<u8> {
    let seg = TcpRepr {
        src_port: PEER_PORT,
        dst_port: 80,
        seq,
        ack,
        flags,
        window: 64_000,
        urgent: 0,
        options: TcpOptions::default(),
        payload: &[],
    };
    let mut b = vec![0u8; seg.buffer_len()];
    seg.emit(PEER, STACK, &mut b).unwrap();
    ip_packet(tcp::PROTOCOL, &b)
}

fn udp_packet(dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let d = UdpRepr {
        src_port: PEER_PORT,
        dst_port,
        payload,
    };
    let mut b = vec![0u8; d.buffer_len()];
    d.emit(PEER, STACK, &mut b).unwrap();
    ip_packet(udp::PROTOCOL, &b)
}

/// The flags, sequence and acknowledgment numbers of the TCP segments in
/// what the peer received within `wait`, stopping early at the first
/// segment `until` accepts.
fn tcp_received(
    peer: &MemDevice,
    wait: Duration,
    until: impl Fn(TcpFlags) -> bool,
) -> Vec<(TcpFlags, SeqNumber, SeqNumber)> {
    let deadline = Instant::now() + wait;
    let mut batch = PacketBatch::new(16, 1500);
    let mut out = Vec::new();
    while Instant::now() < deadline {
        peer.recv_batch(&mut batch, Duration::from_millis(20))
            .unwrap();
        for packet in batch.iter() {
            let (ip, payload) = Ipv4Repr::parse(packet).unwrap();
            if ip.protocol != tcp::PROTOCOL {
                continue;
            }
            let seg = TcpRepr::parse(ip.src, ip.dst, payload, true).unwrap();
            assert_eq!((seg.src_port, seg.dst_port), (80, PEER_PORT));
            out.push((seg.flags, seg.seq, seg.ack));
            if until(seg.flags) {
                return out;
            }
        }
    }
    out
}

/// Whether the stack's end of the link is gone: a packet sent to it is
/// dropped rather than delivered. The stack's threads hold the device, so
/// this is true only once they have ended and the stack is freed.
fn link_released(peer: &MemDevice) -> bool {
    let (sent, dropped) = (peer.sent(), peer.dropped());
    peer.send(&udp_packet(9, b"anyone?")).unwrap();
    peer.sent() == sent && peer.dropped() == dropped + 1
}

fn start() -> (Stack, MemDevice) {
    let (ours, peer) = MemPair::new(64, 1500);
    let stack = Stack::new(ours, Config::with_addr(STACK)).unwrap();
    (stack, peer)
}

#[test]
fn dropping_the_last_handle_resets_connections_and_ends_the_threads() {
    let (stack, peer) = start();
    let listener = TcpListener::bind(&stack, (stack.addr(), 80)).unwrap();
    listener.set_accept_timeout(Some(Duration::from_secs(5)));

    // Handshake by hand: SYN, SYN-ACK, ACK.
    let isn = SeqNumber(1000);
    peer.send(&tcp_packet(isn, SeqNumber(0), TcpFlags::SYN))
        .unwrap();
    let got = tcp_received(&peer, Duration::from_secs(5), |f| f.syn());
    let &(flags, their_isn, ack) = got.last().unwrap();
    assert!(flags.syn() && flags.ack(), "{got:?}");
    assert_eq!(ack, isn + 1);
    peer.send(&tcp_packet(isn + 1, their_isn + 1, TcpFlags::ACK))
        .unwrap();
    let (stream, from) = listener.accept().unwrap();
    assert_eq!(from, SocketAddr::from((PEER, PEER_PORT)));

    // The application keeps the stream but drops the stack handle: the
    // stream keeps the stack alive and the connection open.
    drop(stack);
    assert!(!link_released(&peer), "a socket must keep its stack alive");
    let no_rst = tcp_received(&peer, Duration::from_millis(100), |f| f.rst());
    assert!(no_rst.iter().all(|(f, ..)| !f.rst()), "{no_rst:?}");

    // Dropping the stream closes it gracefully (FIN, nothing was unread);
    // dropping the listener then releases the last handle: the orphaned
    // connection is reset and the threads end, with no `shutdown()`.
    drop(stream);
    drop(listener);
    let got = tcp_received(&peer, Duration::from_secs(5), |f| f.rst());
    assert!(got.iter().any(|(f, ..)| f.fin()), "no FIN: {got:?}");
    let &(flags, seq, _) = got.last().unwrap();
    assert!(flags.rst(), "no RST after the last handle went: {got:?}");
    // The RST is at SND.NXT: after our SYN and our FIN.
    assert_eq!(seq, their_isn + 2);
    assert!(
        link_released(&peer),
        "the stack's threads still hold the device"
    );
}

#[test]
fn a_udp_socket_keeps_the_stack_running_until_it_is_dropped() {
    let (stack, peer) = start();
    let udp = UdpSocket::bind(&stack, (stack.addr(), 7)).unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    drop(stack);

    // The RX thread still runs: it delivers a datagram.
    peer.send(&udp_packet(7, b"still there")).unwrap();
    let mut buf = [0u8; 32];
    let (n, from) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still there");
    assert_eq!(from, SocketAddr::from((PEER, PEER_PORT)));
    assert!(!link_released(&peer));

    drop(udp);
    assert!(link_released(&peer));
}

#[test]
fn a_clone_keeps_the_stack_and_shutdown_still_stops_it() {
    let (stack, peer) = start();
    let clone = stack.clone();
    drop(stack);
    assert!(!link_released(&peer), "a clone is the same stack");
    assert!(!clone.is_shut_down());
    clone.shutdown();
    assert!(clone.is_shut_down());
    // Shut down but still held: counters stay readable, calls fail.
    let e = UdpSocket::bind(&clone, (clone.addr(), 7))
        .and_then(|u| u.recv_from(&mut [0u8; 4]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotConnected);
    assert!(clone.stats().get("ip_rx").is_some());
    drop(clone);
    assert!(link_released(&peer));
}

#[test]
fn an_invalid_config_is_refused_naming_the_field() {
    let (ours, _peer) = MemPair::new(4, 1500);
    let mut config = Config::with_addr(STACK);
    config.rx_batch = 70_000;
    let e = Stack::new(ours, config).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        e.to_string(),
        "Config::rx_batch = 70000 is too large: at most 65536 packets per batch"
    );
}
