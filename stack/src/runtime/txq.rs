//! The transmit queue: TCP segments are built under their socket's lock
//! but written to the device after it is released.
//!
//! A device write can be slow: on a TUN device the kernel runs its own TCP
//! receive inside `write(2)`, and with offloads one write carries 64 KiB.
//! Written under the socket's lock, it kept the RX thread waiting behind a
//! busy application writer (issue 11). So `transmit_tcp` builds segments
//! into this queue, and whoever released a lock calls [`TxQueue::flush`].
//!
//! Order: segments are queued in the order their socket's lock saw them
//! built, and the queue is written first in, first out by one writer at a
//! time, so each connection's segments leave in order. A thread that
//! finds another one writing leaves its segments to it (the writer drains
//! until the queue is empty, then looks once more after stepping down), so
//! no thread waits for the writer except when the queue is full.
//!
//! Memory: packets sit back to back in one buffer that keeps its size
//! between flushes (no allocation or zeroing in the steady state), at most
//! [`QUEUE_BYTES`] plus one packet; a producer that would pass that bound
//! writes the queue out itself first, under its lock, as before.

use parking_lot::Mutex;

/// The bytes of built packets the queue holds before a producer flushes
/// it itself: a few dozen 64 KiB super-segments.
pub(crate) const QUEUE_BYTES: usize = 2 << 20;

/// Packets laid back to back in `bytes[..used]`.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    used: usize,
    packets: Vec<Queued>,
}

/// One packet of a [`Batch`]: where it ends, and the MSS to cut it into
/// when it is a super-segment.
struct Queued {
    end: usize,
    tso_mss: Option<u16>,
}

/// A packet ready for the device.
pub(crate) struct Packet<'a> {
    pub(crate) bytes: &'a [u8],
    /// `Some(mss)`: a TCP super-segment for `Device::send_tso`.
    pub(crate) tso_mss: Option<u16>,
}

#[derive(Default)]
pub(crate) struct TxQueue {
    pending: Mutex<Batch>,
    /// The writer's batch; holding this lock is being the writer.
    writer: Mutex<Batch>,
}

impl TxQueue {
    /// Builds one packet of at most `limit` bytes with `build` (which
    /// returns its length, or `None` when nothing was built) and queues
    /// it. When the queue is full it is first written out with `write`.
    pub(crate) fn push(
        &self,
        limit: usize,
        tso_mss: Option<u16>,
        build: impl FnOnce(&mut [u8]) -> Option<usize>,
        write: impl FnMut(Packet<'_>),
    ) {
        if self.pending.lock().used + limit > QUEUE_BYTES {
            self.drain(write);
        }
        let mut batch = self.pending.lock();
        let start = batch.used;
        if batch.bytes.len() < start + limit {
            batch.bytes.resize(start + limit, 0);
        }
        if let Some(len) = build(&mut batch.bytes[start..start + limit]) {
            let end = start + len.min(limit);
            batch.used = end;
            batch.packets.push(Queued { end, tso_mss });
        }
    }

    /// Writes out what is queued, unless another thread is writing (it
    /// takes these packets too).
    pub(crate) fn flush(&self, mut write: impl FnMut(Packet<'_>)) {
        loop {
            let Some(mut mine) = self.writer.try_lock() else {
                return;
            };
            self.write_all(&mut mine, &mut write);
            drop(mine);
            // A producer may have queued between our last look and
            // stepping down, and seen us still writing.
            if self.pending.lock().packets.is_empty() {
                return;
            }
        }
    }

    /// Writes out what is queued, waiting for the current writer if there
    /// is one.
    fn drain(&self, mut write: impl FnMut(Packet<'_>)) {
        let mut mine = self.writer.lock();
        self.write_all(&mut mine, &mut write);
    }

    /// As the writer: swaps the pending batch for `mine` (empty) and
    /// writes it, until nothing is pending.
    fn write_all(&self, mine: &mut Batch, write: &mut impl FnMut(Packet<'_>)) {
        // What a write that panicked (a user's device may) left here is
        // dropped, not written again: TCP retransmits it.
        mine.packets.clear();
        mine.used = 0;
        loop {
            {
                let mut pending = self.pending.lock();
                if pending.packets.is_empty() {
                    return;
                }
                std::mem::swap(&mut *pending, mine);
            }
            let mut start = 0;
            for q in &mine.packets {
                write(Packet {
                    bytes: &mine.bytes[start..q.end],
                    tso_mss: q.tso_mss,
                });
                start = q.end;
            }
            mine.packets.clear();
            mine.used = 0;
        }
    }

    /// Whether anything waits to be written.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.pending.lock().packets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn collect(out: &mut Vec<(Vec<u8>, Option<u16>)>) -> impl FnMut(Packet<'_>) + '_ {
        |p| out.push((p.bytes.to_vec(), p.tso_mss))
    }

    fn fill(byte: u8, len: usize) -> impl FnOnce(&mut [u8]) -> Option<usize> {
        move |buf| {
            buf[..len].fill(byte);
            Some(len)
        }
    }

    #[test]
    fn packets_leave_in_order_with_their_lengths_and_mss() {
        let q = TxQueue::default();
        let mut out = Vec::new();
        q.push(1500, None, fill(1, 60), collect(&mut out));
        q.push(65535, Some(1448), fill(2, 40_000), collect(&mut out));
        q.push(1500, None, |_| None, collect(&mut out));
        q.push(1500, None, fill(3, 1500), collect(&mut out));
        assert!(out.is_empty(), "nothing written before the flush");
        q.flush(collect(&mut out));
        let got: Vec<_> = out.iter().map(|(b, m)| (b[0], b.len(), *m)).collect();
        assert_eq!(
            got,
            [(1, 60, None), (2, 40_000, Some(1448)), (3, 1500, None)]
        );
        assert!(out.iter().all(|(b, _)| b.iter().all(|&x| x == b[0])));
        assert!(q.is_empty());
        out.clear();
        q.flush(collect(&mut out));
        assert!(out.is_empty(), "a second flush writes nothing");
    }

    #[test]
    fn a_full_queue_is_written_out_by_the_producer() {
        let q = TxQueue::default();
        let mut out = Vec::new();
        let n = QUEUE_BYTES / 65535 + 2;
        for i in 0..n {
            q.push(65535, Some(1448), fill(i as u8, 65535), collect(&mut out));
        }
        assert!(!out.is_empty(), "the producer flushed past the bound");
        let held = q.pending.lock().bytes.len();
        assert!(
            held <= QUEUE_BYTES + 65535,
            "the buffer stays bounded: {held}"
        );
        q.flush(collect(&mut out));
        let order: Vec<u8> = out.iter().map(|(b, _)| b[0]).collect();
        assert_eq!(order, (0..n).map(|i| i as u8).collect::<Vec<_>>());
    }

    #[test]
    fn a_busy_writer_takes_what_others_queue() {
        let q = Arc::new(TxQueue::default());
        let writer = q.writer.lock();
        let mut out = Vec::new();
        q.push(100, None, fill(7, 100), collect(&mut out));
        q.flush(collect(&mut out));
        assert!(out.is_empty(), "another thread is writing: leave it to it");
        drop(writer);
        q.flush(collect(&mut out));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn packets_of_a_write_that_panicked_are_not_written_again() {
        let q = TxQueue::default();
        let mut out = Vec::new();
        q.push(100, None, fill(1, 100), collect(&mut out));
        q.push(100, None, fill(2, 100), collect(&mut out));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            q.flush(|_| panic!("device write panics"));
        }));
        assert!(result.is_err());
        q.push(100, None, fill(3, 100), collect(&mut out));
        q.flush(collect(&mut out));
        let got: Vec<u8> = out.iter().map(|(b, _)| b[0]).collect();
        assert_eq!(got, [3], "the panicked batch is dropped, the queue goes on");
    }

    #[test]
    fn concurrent_producers_keep_each_ones_order() {
        let q = Arc::new(TxQueue::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let (q, seen) = (q.clone(), seen.clone());
                std::thread::spawn(move || {
                    let record = |p: Packet<'_>| seen.lock().push((p.bytes[0], p.bytes[1]));
                    for i in 0..2000u16 {
                        let seq = (i % 256) as u8;
                        q.push(
                            64,
                            None,
                            |b| {
                                b[0] = t;
                                b[1] = seq;
                                Some(2)
                            },
                            record,
                        );
                        q.flush(record);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        q.flush(|p| seen.lock().push((p.bytes[0], p.bytes[1])));
        let seen = seen.lock();
        assert_eq!(seen.len(), 4 * 2000, "every packet written once");
        for t in 0..4u8 {
            let mine: Vec<u8> = seen.iter().filter(|p| p.0 == t).map(|p| p.1).collect();
            let want: Vec<u8> = (0..2000u16).map(|i| (i % 256) as u8).collect();
            assert_eq!(mine, want, "producer {t}'s packets in order");
        }
    }
}
