//! The TCP receive path, state machine only: one in-order 1460-byte data
//! segment arriving on an ESTABLISHED connection.
//!
//! Each iteration does what the runtime does per data segment once the
//! segment has been demultiplexed: `handle_segment`, the application's
//! `recv` (which keeps the window open), and the `poll_transmit` pass that
//! emits the (delayed, every second segment) ACK. No device, no clock, no
//! threads: time is a fake `stack::time::Instant`.

// Benchmark setup: a failure aborts the run, which is what we want.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use stack::tcp::{Connection, TcpConfig};
use stack::time::Instant;
use stack::wire::tcp::{TcpFlags, TcpOptions, TcpRepr, Timestamps};
use stack::wire::SeqNumber;

const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 50000);
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
const CLIENT_ISS: SeqNumber = SeqNumber(1_000_000);
const SERVER_ISS: SeqNumber = SeqNumber(2_000_000);
const PAYLOAD: usize = 1460;

/// Drives a three-way handshake by hand and returns the server side in
/// ESTABLISHED (the client is only needed for the handshake).
fn established(now: Instant, config: &TcpConfig) -> Connection {
    let mut cbuf = vec![0u8; 2048];
    let mut sbuf = vec![0u8; 2048];
    let mut client = Connection::connect(now, CLIENT, SERVER, CLIENT_ISS, config);
    let syn = client.poll_transmit(now, &mut cbuf).unwrap();
    let mut server = Connection::accept(now, SERVER, CLIENT, &syn, SERVER_ISS, config);
    let syn_ack = server.poll_transmit(now, &mut sbuf).unwrap();
    client.handle_segment(now, &syn_ack);
    assert!(client.is_established());
    let ack = client.poll_transmit(now, &mut cbuf).unwrap();
    server.handle_segment(now, &ack);
    assert!(server.is_established());
    while server.poll_transmit(now, &mut sbuf).is_some() {}
    server
}

fn bench_rx(c: &mut Criterion) {
    // Timestamps and SACK on, as with a Linux peer.
    let config = TcpConfig::default();
    let mut now = Instant::from_millis(1);
    let mut server = established(now, &config);
    assert!(server.timestamps_enabled());

    let payload: Vec<u8> = (0..PAYLOAD as u32).map(|i| (i % 251) as u8).collect();
    let mut out = vec![0u8; PAYLOAD];
    let mut tx = vec![0u8; 2048];
    let mut seq = CLIENT_ISS + 1usize;
    let mut tsval: u32 = 1;

    let mut group = c.benchmark_group("tcp");
    group.throughput(Throughput::Bytes(PAYLOAD as u64));
    group.bench_function("rx_in_order_1460_established", |b| {
        b.iter(|| {
            let seg = TcpRepr {
                src_port: CLIENT.port(),
                dst_port: SERVER.port(),
                seq,
                ack: SERVER_ISS + 1usize,
                flags: TcpFlags::ACK | TcpFlags::PSH,
                window: 0xffff,
                urgent: 0,
                options: TcpOptions {
                    timestamps: Some(Timestamps { tsval, tsecr: 1 }),
                    ..TcpOptions::default()
                },
                payload: &payload,
            };
            server.handle_segment(now, black_box(&seg));
            let n = server.recv(&mut out).unwrap();
            let mut acks = 0u32;
            while let Some(ack) = server.poll_transmit(now, &mut tx) {
                black_box(ack.ack);
                acks += 1;
            }
            seq += PAYLOAD;
            tsval = tsval.wrapping_add(1);
            now += Duration::from_micros(1);
            black_box((n, acks))
        })
    });
    group.finish();
    // Every segment was in order and read out: nothing may be left over.
    assert_eq!(server.recv_queue(), 0);
    assert!(server.is_established());
}

criterion_group!(benches, bench_rx);
criterion_main!(benches);
