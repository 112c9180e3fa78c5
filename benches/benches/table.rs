//! The headline benchmark: demultiplexing an arriving TCP segment to its
//! socket's queue, with 1 to 100,000 connections in the table.
//!
//! Each iteration hands one packet to the RX thread's own demultiplexer
//! (`stack::__bench::Demux`, which runs `runtime::rx::Rx::demux_batch`),
//! which takes them 64 at a time, as a device read delivers them: IPv4
//! (or IPv6) and TCP validation with checksums, then under one read lock of the
//! table the batch's lookups (four-tuple, then listener, then wildcard
//! listener) hashed, probed and queued together, the socket's slot in
//! this batch by its mark (cloning its handle only on its first segment
//! of the batch) and the push onto its bounded queue. The batch's queues
//! are then discarded rather than handed to the connections, so TCP
//! itself is not measured. A figure is the batch's time divided by 64.
//!
//! Cases: (a) an established connection's bare ACK, probed two ways:
//! `established` strides over all connections so every lookup is cold
//! (the worst case for caches), `established_burst` takes 16 segments per
//! connection before moving on, as a bulk flow's segments arrive; (b) a
//! SYN that falls back to the listener, whose backlog is full, so it is
//! answered with a SYN cookie; (c) a miss, answered with a RST. Replies go
//! to a device that discards them. The number of probes is the same at
//! every size (O(1)); what grows at 100,000 connections is cache misses.
//!
//! The group `demux` runs every case over IPv4, `demux_v6` over IPv6 (the
//! same table, keyed by 16-byte addresses; the IPv6 header has no
//! checksum of its own but a longer pseudo-header).

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use stack::__bench::{self, Demux};
use stack::device::{Device, PacketBatch};
use stack::wire::tcp::TcpFlags;
use stack::Config;

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const US6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const BURST: usize = 16;

/// A link that swallows what the stack sends (RSTs, SYN-ACKs).
struct Sink;

impl Device for Sink {
    fn recv_batch(&self, batch: &mut PacketBatch, timeout: Duration) -> io::Result<usize> {
        batch.clear();
        std::thread::sleep(timeout);
        Ok(0)
    }
    fn send(&self, packet: &[u8]) -> io::Result<()> {
        black_box(packet);
        Ok(())
    }
    fn mtu(&self) -> usize {
        1500
    }
}

/// The address family a group runs over.
#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    /// The stack's address.
    fn us(self) -> IpAddr {
        match self {
            Family::V4 => US.into(),
            Family::V6 => US6.into(),
        }
    }

    /// A peer address from `a`, `b`, `c` and port `port`: 10.a.b.c, or
    /// fd00:1:a:b::c.
    fn peer(self, a: u8, b: u8, c: u8, port: u16) -> SocketAddr {
        let ip: IpAddr = match self {
            Family::V4 => Ipv4Addr::new(10, a, b, c).into(),
            Family::V6 => Ipv6Addr::new(0xfd00, 1, a.into(), b.into(), 0, 0, 0, c.into()).into(),
        };
        SocketAddr::new(ip, port)
    }

    /// A packet carrying a TCP segment from `from` to our `port`.
    fn packet(self, from: SocketAddr, port: u16, flags: TcpFlags) -> Vec<u8> {
        __bench::tcp_packet(from, self.us(), port, flags)
    }

    /// The address of client `i` (computed, not looked up, so the
    /// benchmark itself touches no cold memory to choose a packet's
    /// sender).
    fn client(self, i: usize) -> SocketAddr {
        self.peer(1, (i >> 16) as u8, (i >> 8) as u8, (i & 0xff) as u16 + 1024)
    }
}

/// A demultiplexer with `n` connections, from `client(0..n)` to port 80,
/// and a listener on port 80 whose backlog one half-open connection
/// fills.
fn setup(family: Family, n: usize) -> Demux {
    let config = Config {
        max_connections: n + 2,
        accept_backlog: 1,
        addr6: Some(US6),
        ..Config::with_addr(US)
    };
    let mut demux = Demux::new(Sink, config).unwrap();
    demux.listen(80).unwrap();
    for i in 0..n {
        demux.add_connection(80, family.client(i)).unwrap();
    }
    let filler = family.peer(201, 0, 1, 1);
    demux.demux(&family.packet(filler, 80, TcpFlags::SYN));
    demux
}

fn bench_family(c: &mut Criterion, group: &str, family: Family) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(1));
    for n in [1usize, 100, 10_000, 100_000] {
        let mut demux = setup(family, n);
        // Each ACK is this one readdressed from its client as it is
        // written into the batch (see `Demux::demux_from`).
        let ack = family.packet(family.client(0), 80, TcpFlags::ACK);
        let mut i = 0usize;
        group.bench_with_input(BenchmarkId::new("established", n), &n, |b, _| {
            b.iter(|| {
                let from = family.client(i % n);
                i = i.wrapping_add(7919);
                demux.demux_from(&ack, black_box(from));
            })
        });
        let mut k = 0usize;
        group.bench_with_input(BenchmarkId::new("established_burst", n), &n, |b, _| {
            b.iter(|| {
                let from = family.client((k / BURST).wrapping_mul(7919) % n);
                k = k.wrapping_add(1);
                demux.demux_from(&ack, black_box(from));
            })
        });
        let syn_from = family.peer(200, 0, 1, 40000);
        let syn = family.packet(syn_from, 80, TcpFlags::SYN);
        group.bench_with_input(BenchmarkId::new("listener_syn", n), &n, |b, _| {
            b.iter(|| demux.demux(black_box(&syn)))
        });
        let miss = family.packet(syn_from, 81, TcpFlags::SYN);
        group.bench_with_input(BenchmarkId::new("miss_rst", n), &n, |b, _| {
            b.iter(|| demux.demux(black_box(&miss)))
        });
        // The cases did what they are named for (one more of each, so this
        // holds when a filter skipped some).
        demux.demux(&syn);
        demux.demux(&miss);
        demux.end_batch();
        let stats = demux.stats();
        assert_eq!(stats.get("drop_queue_full"), Some(0));
        assert!(stats.get("syn_cookies_sent").unwrap() > 0);
        assert!(stats.get("tcp_rst_tx").unwrap() > 0);
    }
    group.finish();
}

fn bench_demux(c: &mut Criterion) {
    bench_family(c, "demux", Family::V4);
    bench_family(c, "demux_v6", Family::V6);
}

criterion_group!(benches, bench_demux);
criterion_main!(benches);
