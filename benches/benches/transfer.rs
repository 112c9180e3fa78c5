//! An in-process bulk transfer between two stacks joined by the in-memory
//! device pair (no faults): the speed of the stack itself, every layer
//! from `TcpStream::write` to `TcpStream::read`, without system calls.
//!
//! One connection is set up once; each iteration moves 64 MiB from a
//! writer thread on stack A to the reader (the bench thread) on stack B.
//! Both stacks' runtime threads run too, so on a 2-core machine the four
//! busy threads share two cores: the figure is a whole-system one.

// Benchmark setup: a failure aborts the run, which is what we want.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use stack::device::mem::MemPair;
use stack::{Config, Stack, TcpListener, TcpStream};

const A: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const PORT: u16 = 9000;
/// Bytes moved per iteration.
const LEN: usize = 64 * 1024 * 1024;
/// Size of each `write` and `read` call.
const CHUNK: usize = 64 * 1024;
/// Packets each direction of the memory link holds, like a TX ring.
const LINK_DEPTH: usize = 1024;
const MTU: usize = 1500;

fn bench_transfer(c: &mut Criterion) {
    let (da, db) = MemPair::new(LINK_DEPTH, MTU);
    let a = Stack::new(da, Config::with_addr(A)).unwrap();
    let b = Stack::new(db, Config::with_addr(B)).unwrap();
    let listener = TcpListener::bind(&b, (b.addr(), PORT)).unwrap();
    let accepter = thread::spawn(move || listener.accept().unwrap().0);
    let writer = TcpStream::connect(&a, SocketAddrV4::new(B, PORT)).unwrap();
    let mut reader = accepter.join().unwrap();

    let chunk = vec![0x5au8; CHUNK];
    let mut buf = vec![0u8; CHUNK];
    let mut group = c.benchmark_group("transfer");
    group.throughput(Throughput::Bytes(LEN as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("mem_pair_64MiB", |bench| {
        bench.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut w = writer.try_clone().unwrap();
                let chunk = chunk.clone();
                let sender = thread::spawn(move || {
                    for _ in 0..LEN / CHUNK {
                        w.write_all(&chunk).unwrap();
                    }
                });
                let mut got = 0;
                while got < LEN {
                    let n = reader.read(&mut buf).unwrap();
                    assert!(n > 0, "connection closed after {got} bytes");
                    got += n;
                }
                assert_eq!(got, LEN);
                sender.join().unwrap();
            }
            start.elapsed()
        })
    });
    group.finish();
    drop(writer);
    drop(reader);
    a.shutdown();
    b.shutdown();
}

criterion_group!(benches, bench_transfer);
criterion_main!(benches);
