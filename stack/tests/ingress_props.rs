//! The whole receive path under arbitrary and mutated packets, in CI: the
//! bounded stand-in for the `stack/fuzz` targets, which need cargo-fuzz.
//!
//! One stack runs over a `MemPair` with a TCP listener (port 80, small
//! backlog) and a UDP socket (port 7, small queue). A seeded proptest
//! (256 cases) sends batches of packets: valid SYN, ACK with data, UDP and
//! ICMP echo packets from random sources, mutated (bytes flipped or set,
//! truncated, extended, with or without checksums repaired), or plain
//! random bytes. After each case the socket table and every queue must be
//! within the configured bounds; after the run the RX thread must still
//! answer a ping and a UDP echo.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, RngAlgorithm, TestRng, TestRunner};

use stack::device::mem::{MemDevice, MemPair};
use stack::device::{Device, PacketBatch};
use stack::table::Protocol;
use stack::wire::icmp::IcmpRepr;
use stack::wire::ipv4::{self, Ipv4Repr};
use stack::wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr};
use stack::wire::udp::{self, UdpRepr};
use stack::wire::{checksum, SeqNumber};
use stack::{Config, Stack, TcpListener, UdpSocket};

const STACK: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const BACKLOG: usize = 8;
const UDP_DEPTH: usize = 16;
const CASES: u32 = 256;
const SEED: [u8; 32] = *b"ingress-props-seed-0123456789abc";

fn ip_packet(src: Ipv4Addr, protocol: u8, transport: &[u8]) -> Vec<u8> {
    let ip = Ipv4Repr {
        src,
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

fn tcp_packet(src: Ipv4Addr, sport: u16, seq: u32, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
    let seg = TcpRepr {
        src_port: sport,
        dst_port: 80,
        seq: SeqNumber(seq),
        ack: SeqNumber(seq.rotate_left(7)),
        flags,
        window: 64240,
        urgent: 0,
        options: TcpOptions {
            mss: flags.syn().then_some(1460),
            window_scale: flags.syn().then_some(7),
            sack_permitted: flags.syn(),
            ..TcpOptions::default()
        },
        payload,
    };
    let mut b = vec![0u8; seg.buffer_len()];
    seg.emit(src, STACK, &mut b).unwrap();
    ip_packet(src, tcp::PROTOCOL, &b)
}

fn udp_packet(src: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let d = UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload,
    };
    let mut b = vec![0u8; d.buffer_len()];
    d.emit(src, STACK, &mut b).unwrap();
    ip_packet(src, udp::PROTOCOL, &b)
}

fn icmp_echo(src: Ipv4Addr, ident: u16, data: &[u8]) -> Vec<u8> {
    let m = IcmpRepr::EchoRequest {
        ident,
        seq_no: 1,
        data,
    };
    let mut b = vec![0u8; m.buffer_len()];
    m.emit(&mut b).unwrap();
    ip_packet(src, ipv4::PROTOCOL_ICMP, &b)
}

/// Recomputes the IPv4 header checksum and, when the header and length
/// allow, the TCP/UDP/ICMP checksum, so a mutation reaches the checks
/// behind them.
fn repair(p: &mut [u8]) {
    if p.len() < ipv4::HEADER_LEN {
        return;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    if ihl < ipv4::HEADER_LEN || p.len() < ihl {
        return;
    }
    p[10] = 0;
    p[11] = 0;
    let sum = checksum::checksum(&p[..ihl]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let protocol = p[9];
    let body = &mut p[ihl..];
    let at = match protocol {
        tcp::PROTOCOL => 16,
        udp::PROTOCOL => 6,
        ipv4::PROTOCOL_ICMP => 2,
        _ => return,
    };
    if body.len() < at + 2 {
        return;
    }
    body[at] = 0;
    body[at + 1] = 0;
    let sum = if protocol == ipv4::PROTOCOL_ICMP {
        checksum::checksum(body)
    } else {
        checksum::finish(checksum::combine(&[
            checksum::pseudo_header(src, dst, protocol, body.len() as u32),
            checksum::sum(body),
        ]))
    };
    body[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Extend(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Input {
    /// A valid packet of kind `kind` from `src`, mutated, checksums
    /// repaired or not.
    Mutated {
        kind: u8,
        src: [u8; 4],
        port: u16,
        seq: u32,
        mutations: Vec<Mutation>,
        repair: bool,
    },
    Random(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..80usize, any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (0..80usize, any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (0..80usize).prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..40).prop_map(Mutation::Extend),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => (
            0..5u8,
            any::<[u8; 4]>(),
            1024..u16::MAX,
            any::<u32>(),
            proptest::collection::vec(mutation(), 0..4),
            any::<bool>(),
        )
            .prop_map(|(kind, src, port, seq, mutations, repair)| Input::Mutated {
                kind,
                src,
                port,
                seq,
                mutations,
                repair,
            }),
        1 => proptest::collection::vec(any::<u8>(), 0..120).prop_map(Input::Random),
    ]
}

impl Input {
    fn bytes(&self) -> Vec<u8> {
        let Input::Mutated {
            kind,
            src,
            port,
            seq,
            mutations,
            repair: fix,
        } = self
        else {
            let Input::Random(b) = self else {
                unreachable!()
            };
            return b.clone();
        };
        // Sources in 10/8 mostly, so SYNs reach the listener and open
        // connections; the mutations reach the rest.
        let src = Ipv4Addr::new(10, src[1], src[2], src[3].max(3));
        let mut p = match kind {
            0 => tcp_packet(src, *port, *seq, TcpFlags::SYN, &[]),
            1 => tcp_packet(
                src,
                *port,
                *seq,
                TcpFlags::ACK | TcpFlags::PSH,
                b"GET / HTTP/1.1\r\n\r\n",
            ),
            2 => udp_packet(src, *port, 7, b"datagram"),
            3 => icmp_echo(src, *port, &[0x10; 24]),
            _ => tcp_packet(src, *port, *seq, TcpFlags::RST | TcpFlags::ACK, &[]),
        };
        for m in mutations {
            match m {
                Mutation::Flip(i, b) => {
                    let n = p.len();
                    if let Some(x) = p.get_mut(i % n.max(1)) {
                        *x ^= b;
                    }
                }
                Mutation::Set(i, b) => {
                    let n = p.len();
                    if let Some(x) = p.get_mut(i % n.max(1)) {
                        *x = *b;
                    }
                }
                Mutation::Truncate(n) => p.truncate(*n),
                Mutation::Extend(more) => p.extend_from_slice(more),
            }
        }
        if *fix {
            repair(&mut p);
        }
        p
    }
}

struct Harness {
    stack: Stack,
    peer: MemDevice,
    _listener: TcpListener,
    udp: UdpSocket,
}

impl Harness {
    fn new() -> Harness {
        let (ours, peer) = MemPair::new(1024, 1500);
        let mut config = Config::with_addr(STACK);
        config.accept_backlog = BACKLOG;
        config.udp_queue_depth = UDP_DEPTH;
        config.tcp.msl = Duration::from_millis(200);
        let stack = Stack::new(ours, config).unwrap();
        let listener = TcpListener::bind(&stack, (stack.addr(), 80)).unwrap();
        let udp = UdpSocket::bind(&stack, (stack.addr(), 7)).unwrap();
        Harness {
            stack,
            peer,
            _listener: listener,
            udp,
        }
    }

    fn counter(&self, name: &str) -> u64 {
        self.stack.stats().get(name).unwrap()
    }

    /// Waits until the RX thread has read everything sent so far.
    fn sync(&self) {
        let until = Instant::now() + Duration::from_secs(5);
        while self.counter("ip_rx") < self.peer.sent() {
            assert!(Instant::now() < until, "the RX thread stopped reading");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Every packet the stack sent since the last call.
    fn drain(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut batch = PacketBatch::new(64, 1500);
        while self.peer.recv_batch(&mut batch, Duration::ZERO).unwrap() > 0 {
            out.extend(batch.iter().map(<[u8]>::to_vec));
        }
        out
    }

    /// The table and every queue within the configured bounds.
    fn assert_bounded(&self) {
        let sockets = self.stack.sockets();
        let conns = sockets.iter().filter(|s| s.remote.is_some()).count();
        // A backlog of SYN-RECEIVED connections plus at most a backlog
        // more completed by cookie: see `Config::accept_backlog`.
        assert!(conns <= 2 * BACKLOG, "{conns} connections");
        for s in &sockets {
            match (s.protocol, s.remote) {
                (Protocol::Udp, _) => assert!(s.recv_queue <= UDP_DEPTH, "{s:?}"),
                (Protocol::Tcp, None) => {
                    assert!(s.recv_queue <= BACKLOG, "{s:?}");
                    assert!(s.send_queue <= BACKLOG, "{s:?}");
                }
                (Protocol::Tcp, Some(_)) => {
                    assert!(s.recv_queue <= self.stack.config().tcp.recv_buffer, "{s:?}")
                }
            }
        }
    }
}

#[test]
fn arbitrary_and_mutated_packets_keep_the_stack_bounded_and_alive() {
    let h = Harness::new();
    let config = PropConfig {
        cases: CASES,
        failure_persistence: None,
        ..PropConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED));
    let result = runner.run(&proptest::collection::vec(input(), 1..16), |inputs| {
        for i in &inputs {
            let _ = h.peer.send(&i.bytes());
        }
        h.sync();
        h.drain();
        h.assert_bounded();
        Ok(())
    });
    result.unwrap();

    let snapshot: Vec<_> = h
        .stack
        .stats()
        .snapshot()
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .collect();
    eprintln!("after {CASES} cases: {snapshot:?}");
    // The mutations reached more than the first check.
    for reason in [
        "drop_bad_checksum",
        "drop_truncated",
        "tcp_passive_opens",
        "udp_rx",
    ] {
        assert!(h.counter(reason) > 0, "{reason} never moved");
    }

    // The RX thread is alive: a ping is answered ...
    let pinger = Ipv4Addr::new(10, 0, 0, 1);
    h.drain();
    h.peer.send(&icmp_echo(pinger, 0xbeef, b"alive?")).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    let mut answered = false;
    while !answered && Instant::now() < until {
        answered = h.drain().iter().any(|p| {
            Ipv4Repr::parse(p).is_ok_and(|(ip, payload)| {
                ip.dst == pinger
                    && matches!(
                        IcmpRepr::parse(payload),
                        Ok(IcmpRepr::EchoReply { ident: 0xbeef, .. })
                    )
            })
        });
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(answered, "no echo reply after the run");

    // ... and a UDP datagram reaches its socket and its answer gets out.
    h.udp
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 1500];
    while h.udp.recv_from(&mut buf).is_ok() {}
    h.udp
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    h.peer
        .send(&udp_packet(pinger, 5353, 7, b"still here"))
        .unwrap();
    let (n, from) = h.udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still here");
    assert_eq!(from, SocketAddr::from((pinger, 5353)));
    h.udp.send_to(&buf[..n], from).unwrap();
    let back = h.drain().into_iter().any(|p| {
        Ipv4Repr::parse(&p).is_ok_and(|(ip, payload)| {
            ip.dst == pinger
                && UdpRepr::parse(ip.src, ip.dst, payload, true)
                    .is_ok_and(|d| d.payload == b"still here")
        })
    });
    assert!(back, "the UDP echo did not come out");
    h.assert_bounded();
    h.stack.shutdown();
}
