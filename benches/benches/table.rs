//! The headline benchmark: demultiplexing an arriving TCP segment to its
//! socket's queue, with 1 to 100,000 sockets in the table.
//!
//! Each iteration does what the RX thread does per segment once the
//! headers are parsed (`stack/src/runtime/rx.rs`): take the table's read
//! lock, look up the four-tuple (then the listener, then the wildcard
//! listener), find or give the socket its slot in this batch by its mark
//! (cloning its handle only on its first segment of the batch), and push
//! the segment's index onto that slot's bounded queue. Every 64 segments
//! the batch ends and the queues are drained, as after a device read.
//!
//! Cases: (a) an established connection, probed two ways: `established`
//! strides over all connections so every lookup is cold (the worst case
//! for caches), `established_burst` takes 16 segments per connection
//! before moving on, as a bulk flow's segments arrive; (b) a SYN that
//! falls back to the listener; (c) a miss, which the runtime answers with
//! a RST. The number of probes is the same at every size (O(1)); what
//! grows at 100,000 sockets is cache misses.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parking_lot::RwLock;

use stack::table::{FourTuple, ListenKey, SocketTable, TcpLookup};

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const BATCH: usize = 64;
const QUEUE_DEPTH: usize = 64;
const BURST: usize = 16;

/// Stands in for the runtime's socket: just its batch mark.
struct Socket {
    rx_mark: AtomicU64,
}

impl Socket {
    fn new() -> Arc<Socket> {
        Arc::new(Socket {
            rx_mark: AtomicU64::new(u64::MAX),
        })
    }
}

/// The RX thread's per-batch state, as in `runtime::rx::Rx`.
struct Batch {
    ready: Vec<Arc<Socket>>,
    queues: Vec<Vec<u16>>,
    batch_no: u32,
    in_batch: usize,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            ready: Vec::with_capacity(BATCH),
            queues: (0..BATCH)
                .map(|_| Vec::with_capacity(QUEUE_DEPTH))
                .collect(),
            batch_no: 0,
            in_batch: 0,
        }
    }

    fn slot_for(&mut self, sock: &Arc<Socket>) -> usize {
        let mark = sock.rx_mark.load(Ordering::Relaxed);
        if (mark >> 32) as u32 == self.batch_no {
            return (mark & 0xffff_ffff) as usize;
        }
        let slot = self.ready.len();
        sock.rx_mark.store(
            (u64::from(self.batch_no) << 32) | slot as u64,
            Ordering::Relaxed,
        );
        self.ready.push(Arc::clone(sock));
        slot
    }

    /// One segment: lookup and hand-off. Returns whether it was queued
    /// (false: the RST case).
    #[inline]
    fn demux(
        &mut self,
        table: &RwLock<SocketTable<Arc<Socket>>>,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> bool {
        let t = table.read();
        let slot = match t.lookup_tcp(local, remote) {
            TcpLookup::Connection(s) | TcpLookup::Listener(s) => self.slot_for(s),
            TcpLookup::None => return false,
        };
        drop(t);
        let queue = &mut self.queues[slot];
        let queued = queue.len() < QUEUE_DEPTH;
        if queued {
            queue.push(self.in_batch as u16);
        }
        self.in_batch += 1;
        if self.in_batch == BATCH {
            self.end();
        }
        queued
    }

    /// After the batch: the runtime services and empties every queue.
    fn end(&mut self) {
        for q in &mut self.queues[..self.ready.len()] {
            q.clear();
        }
        self.ready.clear();
        self.batch_no = self.batch_no.wrapping_add(1);
        self.in_batch = 0;
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

fn bench_demux(c: &mut Criterion) {
    let mut group = c.benchmark_group("demux");
    group.throughput(Throughput::Elements(1));
    for n in [1usize, 100, 10_000, 100_000] {
        let (table, tuples) = table(n);
        let mut batch = Batch::new();
        let mut i = 0usize;
        group.bench_with_input(BenchmarkId::new("established", n), &n, |b, _| {
            b.iter(|| {
                let t = tuples[i % tuples.len()];
                i = i.wrapping_add(7919);
                black_box(batch.demux(&table, t.local, t.remote))
            })
        });
        let mut k = 0usize;
        group.bench_with_input(BenchmarkId::new("established_burst", n), &n, |b, _| {
            b.iter(|| {
                let t = tuples[(k / BURST).wrapping_mul(7919) % tuples.len()];
                k = k.wrapping_add(1);
                black_box(batch.demux(&table, t.local, t.remote))
            })
        });
        let syn_from = SocketAddrV4::new(Ipv4Addr::new(10, 200, 0, 1), 40000);
        group.bench_with_input(BenchmarkId::new("listener_syn", n), &n, |b, _| {
            b.iter(|| black_box(batch.demux(&table, SocketAddrV4::new(US, 80), syn_from)))
        });
        group.bench_with_input(BenchmarkId::new("miss_rst", n), &n, |b, _| {
            b.iter(|| black_box(batch.demux(&table, SocketAddrV4::new(US, 81), syn_from)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_demux);
criterion_main!(benches);
