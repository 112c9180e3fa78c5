//! Parsing and building packets: IPv4+TCP parse and validate (both
//! checksums), the Internet checksum over 1500 bytes, and building a full
//! data segment.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use stack::wire::checksum;
use stack::wire::ipv4::{self, Ipv4Repr};
use stack::wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use stack::wire::SeqNumber;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn segment(payload: &[u8]) -> TcpRepr<'_> {
    TcpRepr {
        src_port: 50000,
        dst_port: 80,
        seq: SeqNumber(1_000_000),
        ack: SeqNumber(2_000_000),
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 65535,
        urgent: 0,
        options: TcpOptions {
            timestamps: Some(Timestamps { tsval: 1, tsecr: 2 }),
            ..TcpOptions::default()
        },
        payload,
    }
}

/// Writes a full IPv4+TCP packet into `buf` and returns its length.
fn build(buf: &mut [u8], payload: &[u8]) -> usize {
    let seg = segment(payload);
    let n = seg.emit(SRC, DST, &mut buf[ipv4::HEADER_LEN..]).unwrap();
    let ip = Ipv4Repr {
        src: SRC,
        dst: DST,
        protocol: tcp::PROTOCOL,
        ttl: 64,
        payload_len: n,
    };
    ip.emit(buf).unwrap();
    ip.buffer_len()
}

fn bench_wire(c: &mut Criterion) {
    let payload: Vec<u8> = (0..1448u32).map(|i| (i % 251) as u8).collect();
    let mut packet = vec![0u8; 1500];
    let len = build(&mut packet, &payload);
    let packet = &packet[..len];

    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("parse_ipv4_tcp_1500", |b| {
        b.iter(|| {
            let (ip, body) = Ipv4Repr::parse(black_box(packet)).unwrap();
            let seg = TcpRepr::parse(ip.src, ip.dst, body, true).unwrap();
            black_box(seg.seq)
        })
    });
    let mut out = vec![0u8; 1500];
    group.bench_function("build_tcp_segment_1500", |b| {
        b.iter(|| black_box(build(&mut out, black_box(&payload))))
    });
    let data = vec![0xa5u8; 1500];
    group.throughput(Throughput::Bytes(1500));
    group.bench_function("checksum_1500", |b| {
        b.iter(|| black_box(checksum::checksum(black_box(&data))))
    });
    group.finish();
}

criterion_group!(benches, bench_wire);
criterion_main!(benches);
