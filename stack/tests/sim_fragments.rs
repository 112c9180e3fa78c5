//! IPv4 fragmentation and reassembly through whole driven stacks, in
//! simulated time: our own fragments reassembled by a stack on the other
//! end, a flood of fragments that never complete, the reassembly
//! timeout with its ICMP Time Exceeded (RFC 792, RFC 1122 §3.3.2), and
//! fragments within a memory budget that TCP holds most of.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod sim;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use stack::device::fault::FaultConfig;
use stack::device::mem::{MemDevice, MemPair};
use stack::device::{Device, PacketBatch};
use stack::time::{Clock, Instant, ManualClock};
use stack::wire::icmp::IcmpRepr;
use stack::wire::ipv4::{self, Ipv4Repr};
use stack::wire::udp::{self, UdpRepr};
use stack::{Config, Stack, TcpListener, TcpStream, UdpSocket};

const A: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

fn pattern(len: usize, salt: usize) -> Vec<u8> {
    (0..len).map(|i| ((i + salt) % 251) as u8).collect()
}

/// Polls `stacks` until none has anything left to do.
fn settle(stacks: &[&Stack]) {
    for _ in 0..10_000 {
        let mut work = 0;
        for s in stacks {
            work += s.poll().unwrap();
        }
        if work == 0 {
            return;
        }
    }
    panic!("the stacks never settled");
}

fn counter(stack: &Stack, name: &str) -> u64 {
    stack.stats().get(name).unwrap()
}

/// A UDP datagram from `src:40000` to `dst:port`, as one IPv4 packet
/// (possibly longer than any MTU).
fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
    let dgram = UdpRepr {
        src_port: 40000,
        dst_port: port,
        payload,
    };
    let ip = Ipv4Repr {
        src,
        dst,
        protocol: udp::PROTOCOL,
        ttl: 64,
        payload_len: dgram.buffer_len(),
    };
    let mut p = vec![0u8; ip.buffer_len()];
    dgram.emit(src, dst, &mut p[ipv4::HEADER_LEN..]).unwrap();
    ip.emit(&mut p).unwrap();
    p
}

/// The IPv4 fragments of `packet`, `unit` payload bytes each.
fn fragments(packet: &[u8], unit: usize, id: u16) -> Vec<Vec<u8>> {
    let (ip, payload) = Ipv4Repr::parse(packet).unwrap();
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
            frag.emit_fragment(&mut p, id, i * unit, more).unwrap();
            p[ipv4::HEADER_LEN..].copy_from_slice(part);
            p
        })
        .collect()
}

/// Everything `dev` has received, oldest first.
fn drain(dev: &MemDevice) -> Vec<Vec<u8>> {
    let mut batch = PacketBatch::new(64, ipv4::MAX_PACKET_LEN);
    let mut out = Vec::new();
    while dev.recv_batch(&mut batch, Duration::ZERO).unwrap() > 0 {
        out.extend(batch.iter_with_meta().map(|(p, _)| p.to_vec()));
    }
    out
}

/// A driven stack at `B` with the far end of its link, for playing the
/// peer packet by packet.
fn stack_and_peer(config: Config) -> (Stack, MemDevice, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Instant::ZERO));
    let (ours, peer) = MemPair::new(4096, 1500);
    let stack = Stack::driven(ours, config, Arc::clone(&clock) as Arc<dyn Clock>, 7).unwrap();
    (stack, peer, clock)
}

#[test]
fn udp_echo_of_4000_bytes_goes_through_fragments_both_ways() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Instant::ZERO));
    let (a_dev, b_dev) = MemPair::new(256, 1500);
    let a = Stack::driven(a_dev, Config::with_addr(A), Arc::clone(&clock), 1).unwrap();
    let b = Stack::driven(b_dev, Config::with_addr(B), Arc::clone(&clock), 2).unwrap();
    let client = UdpSocket::bind(&a, (a.addr(), 0)).unwrap();
    let echo = UdpSocket::bind(&b, (b.addr(), 7)).unwrap();
    client.set_nonblocking(true).unwrap();
    echo.set_nonblocking(true).unwrap();

    let sent = pattern(4000, 3);
    client.send_to(&sent, SocketAddrV4::new(B, 7)).unwrap();
    settle(&[&a, &b]);
    let mut buf = vec![0u8; 65_536];
    let (n, from) = echo.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &sent[..]);
    echo.send_to(&buf[..n], from).unwrap();
    settle(&[&a, &b]);
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(from, SocketAddr::from((B, 7)));
    assert_eq!(&buf[..n], &sent[..]);

    // 4008 bytes of UDP in 1480-byte fragments: three each way.
    for s in [&a, &b] {
        assert_eq!(counter(s, "ip_frag_tx"), 3);
        assert_eq!(counter(s, "ip_frag_received"), 3);
        assert_eq!(counter(s, "ip_reassembled"), 1);
    }
}

#[test]
fn the_largest_udp_datagram_goes_through_and_one_byte_more_is_refused() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Instant::ZERO));
    let (a_dev, b_dev) = MemPair::new(256, 1500);
    let a = Stack::driven(a_dev, Config::with_addr(A), Arc::clone(&clock), 1).unwrap();
    let b = Stack::driven(b_dev, Config::with_addr(B), Arc::clone(&clock), 2).unwrap();
    let client = UdpSocket::bind(&a, (a.addr(), 0)).unwrap();
    let sink = UdpSocket::bind(&b, (b.addr(), 9)).unwrap();
    sink.set_nonblocking(true).unwrap();
    let sent = pattern(65_507, 0);
    let to = SocketAddrV4::new(B, 9);
    assert_eq!(client.send_to(&sent, to).unwrap(), 65_507);
    let e = client.send_to(&pattern(65_508, 0), to).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    settle(&[&a, &b]);
    let mut buf = vec![0u8; 70_000];
    let (n, _) = sink.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &sent[..]);
}

#[test]
fn a_flood_of_first_fragments_does_not_lock_out_a_real_datagram() {
    let (stack, peer, _clock) = stack_and_peer(Config::with_addr(B));
    let sock = UdpSocket::bind(&stack, (stack.addr(), 7)).unwrap();
    sock.set_nonblocking(true).unwrap();

    // 1000 datagrams that never complete: only their first fragment.
    let junk = udp_packet(A, B, 7, &pattern(3000, 1));
    for id in 0..1000u16 {
        peer.send(&fragments(&junk, 1480, id)[0]).unwrap();
    }
    settle(&[&stack]);
    assert_eq!(counter(&stack, "ip_frag_received"), 1000);
    assert_eq!(counter(&stack, "ip_reasm_evicted"), 1000 - 64);

    // A real one, right after: it completes.
    let real = pattern(4000, 9);
    for f in fragments(&udp_packet(A, B, 7, &real), 1480, 5000) {
        peer.send(&f).unwrap();
    }
    settle(&[&stack]);
    let mut buf = vec![0u8; 65_536];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &real[..]);
    assert_eq!(counter(&stack, "ip_reassembled"), 1);
    assert_eq!(counter(&stack, "udp_rx"), 1);
}

#[test]
fn timeout_sends_time_exceeded_only_when_the_first_fragment_came() {
    let (stack, peer, clock) = stack_and_peer(Config::with_addr(B));
    let packet = udp_packet(A, B, 7, &pattern(3000, 0));
    // Datagram 1: its first fragment only. Datagram 2: its last only.
    let first = fragments(&packet, 1480, 1).swap_remove(0);
    let last = fragments(&packet, 1480, 2).pop().unwrap();
    clock.set(Instant::from_millis(1000));
    peer.send(&first).unwrap();
    peer.send(&last).unwrap();
    settle(&[&stack]);
    assert_eq!(stack.poll_at(), Some(Instant::from_millis(31_000)));

    clock.set(Instant::from_millis(30_999));
    settle(&[&stack]);
    assert_eq!(counter(&stack, "ip_reasm_timeout"), 0);
    assert!(drain(&peer).is_empty());

    clock.set(Instant::from_millis(31_000));
    settle(&[&stack]);
    assert_eq!(counter(&stack, "ip_reasm_timeout"), 2);
    assert_eq!(counter(&stack, "icmp_time_exceeded_tx"), 1);
    let sent = drain(&peer);
    assert_eq!(sent.len(), 1);
    let (ip, payload) = Ipv4Repr::parse(&sent[0]).unwrap();
    assert_eq!((ip.src, ip.dst), (B, A));
    // RFC 792: type 11, code 1, quoting the first fragment's header and
    // the first 8 bytes of its data (the UDP header).
    assert_eq!(
        IcmpRepr::parse(payload).unwrap(),
        IcmpRepr::TimeExceeded {
            code: 1,
            original: &first[..28]
        }
    );
    assert_eq!(stack.poll_at(), None);
}

#[test]
fn time_exceeded_is_rate_limited_like_the_other_icmp_errors() {
    let config = Config {
        icmp_errors_per_sec: 3,
        ..Config::with_addr(B)
    };
    let (stack, peer, clock) = stack_and_peer(config);
    let packet = udp_packet(A, B, 7, &pattern(3000, 0));
    for id in 0..10 {
        peer.send(&fragments(&packet, 1480, id)[0]).unwrap();
    }
    settle(&[&stack]);
    clock.advance(Duration::from_secs(30));
    settle(&[&stack]);
    assert_eq!(counter(&stack, "ip_reasm_timeout"), 10);
    assert_eq!(counter(&stack, "icmp_time_exceeded_tx"), 3);
    assert_eq!(counter(&stack, "icmp_rate_limited"), 7);
    assert_eq!(drain(&peer).len(), 3);
}

#[test]
fn overlapping_fragments_drop_the_datagram() {
    let (stack, peer, _clock) = stack_and_peer(Config::with_addr(B));
    let sock = UdpSocket::bind(&stack, (stack.addr(), 7)).unwrap();
    sock.set_nonblocking(true).unwrap();
    let packet = udp_packet(A, B, 7, &pattern(3000, 0));
    let frags = fragments(&packet, 1480, 1);
    // Bytes 1472..2944, cut differently: it overlaps both neighbours.
    let odd = fragments(&packet, 1472, 1).swap_remove(1);
    for f in [&frags[1], &odd, &frags[0], &frags[2]] {
        peer.send(f).unwrap();
    }
    settle(&[&stack]);
    assert_eq!(counter(&stack, "ip_reasm_overlap_dropped"), 1);
    assert_eq!(counter(&stack, "ip_reassembled"), 0);
    assert!(sock.recv_from(&mut [0u8; 4096]).is_err());
}

/// B's memory budget below: TCP's receive storage and the fragments
/// under reassembly together, well under `reassembly_max_bytes` (1 MiB).
const SMALL_BUDGET: usize = 512 << 10;

#[test]
fn fragments_stay_within_a_memory_budget_that_tcp_holds_most_of() {
    let mut cb = Config::with_addr(B);
    cb.memory_budget = SMALL_BUDGET;
    // One window short of the budget by 32 KiB: what fragments may have.
    cb.tcp.recv_buffer = SMALL_BUDGET - (32 << 10);
    let mut sim = sim::Sim::new(5, FaultConfig::default(), Config::with_addr(A), cb);
    let memory = |sim: &sim::Sim| counter(&sim.b.stack, "memory_in_use") as usize;
    let udp = UdpSocket::bind(&sim.b.stack, (B, 7)).unwrap();
    udp.set_nonblocking(true).unwrap();

    // A sends B 1 MiB on a connection whose reader is away: B's ring
    // holds what the budget lets it, and the window closes on the rest.
    let listener = TcpListener::bind(&sim.b.stack, (B, 9000)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let client = TcpStream::connect_nonblocking(&sim.a.stack, sim::on_b(9000)).unwrap();
    let len = 1 << 20;
    let mut sender = sim::Pump::new(client, sim::stream_bytes(1, len));
    let server = sim.accept(100_000, &listener);
    let until = sim.now() + Duration::from_secs(5);
    sim.drive_bounded(1_000_000, |sim| {
        if sim.now() >= until {
            sim::Flow::Done
        } else if sender.pump(sim.now()) {
            sim::Flow::Busy
        } else {
            sim::Flow::Sleep(until)
        }
    });
    let tcp_held = memory(&sim);
    eprintln!("TCP holds {tcp_held} of {SMALL_BUDGET}");
    assert!(tcp_held > SMALL_BUDGET / 2, "{tcp_held}");
    assert!(tcp_held <= SMALL_BUDGET, "{tcp_held}");

    // 200 datagrams that never complete, their first fragments only:
    // reassembly's own bounds (64 datagrams, 1 MiB) would hold 64 of
    // them, more than the budget has left; the budget makes the oldest
    // give way first.
    let junk = udp_packet(A, B, 7, &pattern(3000, 1));
    let mut peak = 0;
    for id in 0..200u16 {
        sim.a.link.send(&fragments(&junk, 1480, id)[0]).unwrap();
        while sim.poll() > 0 {}
        peak = peak.max(memory(&sim));
    }
    let held = memory(&sim) - tcp_held;
    let evicted = counter(&sim.b.stack, "ip_reasm_evicted");
    eprintln!("flood: peak {peak}, fragments hold {held}, evicted {evicted}");
    assert!(peak <= SMALL_BUDGET, "peak {peak} over the budget");
    assert!(held > 0 && held <= SMALL_BUDGET - tcp_held, "{held}");
    assert_eq!(counter(&sim.b.stack, "ip_frag_received"), 200);
    assert!(
        evicted > 200 - 64,
        "{evicted}: the count bound alone evicted"
    );
    assert_eq!(counter(&sim.b.stack, "ip_reasm_memory_drops"), 0);

    // At their timeout the fragments give back all they held.
    let until = sim.now() + Duration::from_secs(31);
    sim.drive_bounded(1_000_000, |sim| {
        if sim.now() >= until {
            sim::Flow::Done
        } else {
            sim::Flow::Sleep(until)
        }
    });
    assert_eq!(counter(&sim.b.stack, "ip_reasm_timeout"), 200 - evicted);
    assert_eq!(memory(&sim), tcp_held);

    // A few datagrams again, then the last fragment of a 60,000-byte one:
    // its buffer does not fit what TCP left even with the others gone,
    // so they give way and it is dropped, and nothing stays charged.
    for id in 300..305u16 {
        sim.a.link.send(&fragments(&junk, 1480, id)[0]).unwrap();
    }
    let big = udp_packet(A, B, 7, &pattern(60_000, 2));
    sim.a
        .link
        .send(&fragments(&big, 1480, 400).pop().unwrap())
        .unwrap();
    while sim.poll() > 0 {}
    assert_eq!(counter(&sim.b.stack, "ip_reasm_memory_drops"), 1);
    assert_eq!(counter(&sim.b.stack, "ip_reasm_evicted"), evicted + 5);
    assert_eq!(memory(&sim), tcp_held);
    // Fragments made room among themselves: TCP was not made to give
    // anything up for them.
    assert_eq!(counter(&sim.b.stack, "tcp_ooo_pruned"), 0);
    assert_eq!(counter(&sim.b.stack, "tcp_rings_shrunk"), 0);

    // The reader comes back and drains the connection.
    let mut reader = sim::Pump::new(server, Vec::new());
    sim.drive_bounded(1_000_000, |sim| {
        let busy = sender.pump(sim.now()) | reader.pump(sim.now());
        if reader.got.len() == len {
            sim::Flow::Done
        } else if busy {
            sim::Flow::Busy
        } else {
            sim::Flow::Idle
        }
    });
    assert!(reader.got == sim::stream_bytes(1, len));

    // A real datagram now completes within the budget.
    let real = pattern(4000, 9);
    for f in fragments(&udp_packet(A, B, 7, &real), 1480, 5000) {
        sim.a.link.send(&f).unwrap();
    }
    while sim.poll() > 0 {}
    let mut buf = vec![0u8; 65_536];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &real[..]);
    assert!(memory(&sim) <= SMALL_BUDGET);
}
