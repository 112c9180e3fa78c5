//! The headline benchmark: demultiplexing an arriving TCP segment to its
//! socket's queue, with 1 to 100,000 sockets in the table.
//!
//! Each iteration does what the RX thread does per segment once the
//! headers are parsed: take the table's read lock, look up the four-tuple
//! (then the listener, then the wildcard listener), clone the socket
//! handle and push the segment's batch index onto that socket's bounded
//! queue. Three cases: (a) an established connection, (b) a SYN that falls
//! back to the listener, (c) a miss, which the runtime answers with a RST.
//! A flat line from 1 to 100,000 is the O(1) claim.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parking_lot::{Mutex, RwLock};

use stack::table::{FourTuple, ListenKey, SocketTable, TcpLookup};

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const QUEUE_DEPTH: usize = 64;

/// Stands in for the runtime's socket: a bounded queue of batch indices.
struct Socket {
    queue: Mutex<Vec<u16>>,
}

impl Socket {
    fn new() -> Arc<Socket> {
        Arc::new(Socket {
            queue: Mutex::new(Vec::with_capacity(QUEUE_DEPTH)),
        })
    }

    fn push(&self, index: u16) -> bool {
        let mut q = self.queue.lock();
        if q.len() >= QUEUE_DEPTH {
            q.clear(); // the runtime drains after each batch
        }
        q.push(index);
        true
    }
}

/// A table with `n` established connections from distinct clients to
/// port 80, and a listener on port 80.
fn table(n: usize) -> (RwLock<SocketTable<Arc<Socket>>>, Vec<FourTuple>) {
    let mut t = SocketTable::new(n + 1);
    t.bind_listener(ListenKey::new(US, 80), Socket::new())
        .unwrap();
    let mut tuples = Vec::with_capacity(n);
    for i in 0..n {
        let remote = SocketAddrV4::new(
            Ipv4Addr::new(10, 1, (i >> 16) as u8, (i >> 8) as u8),
            (i & 0xff) as u16 + 1024,
        );
        let tuple = FourTuple {
            local: SocketAddrV4::new(US, 80),
            remote,
        };
        t.insert_connection(tuple, Socket::new()).unwrap();
        tuples.push(tuple);
    }
    (RwLock::new(t), tuples)
}

/// One segment's demux: lookup and hand-off. Returns whether it was
/// delivered (false: the RST case).
#[inline]
fn demux(
    table: &RwLock<SocketTable<Arc<Socket>>>,
    local: SocketAddrV4,
    remote: SocketAddrV4,
) -> bool {
    let t = table.read();
    let sock = match t.lookup_tcp(local, remote) {
        TcpLookup::Connection(s) | TcpLookup::Listener(s) => Arc::clone(s),
        TcpLookup::None => return false,
    };
    drop(t);
    sock.push(7)
}

fn bench_demux(c: &mut Criterion) {
    let mut group = c.benchmark_group("demux");
    group.throughput(Throughput::Elements(1));
    for n in [1usize, 100, 10_000, 100_000] {
        let (table, tuples) = table(n);
        // Probe many different connections so caches see a realistic mix.
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("established", n), &n, |b, _| {
            b.iter(|| {
                let t = tuples[i % tuples.len()];
                i = i.wrapping_add(7919);
                black_box(demux(&table, t.local, t.remote))
            })
        });
        let syn_from = SocketAddrV4::new(Ipv4Addr::new(10, 200, 0, 1), 40000);
        group.bench_with_input(BenchmarkId::new("listener_syn", n), &n, |b, _| {
            b.iter(|| black_box(demux(&table, SocketAddrV4::new(US, 80), syn_from)))
        });
        group.bench_with_input(BenchmarkId::new("miss_rst", n), &n, |b, _| {
            b.iter(|| black_box(demux(&table, SocketAddrV4::new(US, 81), syn_from)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_demux);
criterion_main!(benches);
