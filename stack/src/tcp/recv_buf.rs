//! The receive buffer: a bounded byte ring holding in-order data the
//! application has not read yet, followed by out-of-order data placed at its
//! offset beyond RCV.NXT (RFC 9293 §3.10.7.4 reassembly; RFC 9293 §3.8.6 the
//! receive window).
//!
//! The ring's storage grows as data arrives, up to the capacity (see
//! [`super::ring`]). Ring layout, starting at the read position:
//!
//! ```text
//! | readable (len) | hole | out-of-order | hole | ... |  up to capacity
//!                  ^ RCV.NXT = offset 0 for write_at
//! ```
//!
//! DoS warning: memory is bounded by `capacity` (data beyond the window is
//! discarded) and the bookkeeping by the [`Assembler`]'s range bound; a peer
//! that fragments its data into more holes than that loses the excess
//! out-of-order segments, never in-order ones.

use super::assembler::{Assembler, DEFAULT_MAX_RANGES};
use super::ring::Ring;

/// A fixed-capacity reassembly ring for incoming bytes.
#[derive(Debug)]
pub struct RecvBuffer {
    /// The bytes; position 0 is the first readable byte.
    ring: Ring,
    /// Contiguous readable bytes from position 0.
    len: usize,
    /// Out-of-order ranges, relative to RCV.NXT (= `head + len`).
    assembler: Assembler,
}

impl RecvBuffer {
    /// A buffer of `capacity` bytes that tracks at most
    /// [`DEFAULT_MAX_RANGES`] out-of-order ranges.
    pub fn new(capacity: usize) -> RecvBuffer {
        RecvBuffer::with_max_ranges(capacity, DEFAULT_MAX_RANGES)
    }

    /// A buffer of `capacity` bytes that tracks at most `max_ranges`
    /// out-of-order ranges.
    pub fn with_max_ranges(capacity: usize, max_ranges: usize) -> RecvBuffer {
        RecvBuffer {
            ring: Ring::new(capacity),
            len: 0,
            assembler: Assembler::new(max_ranges),
        }
    }

    /// The most bytes the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Contiguous bytes ready for the application.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How far beyond RCV.NXT the peer may send: `capacity - len`. This is
    /// the receive window before any silly-window avoidance (RFC 9293
    /// §3.8.6.2.2), which is the connection's job.
    pub fn window(&self) -> usize {
        self.capacity() - self.len
    }

    /// Stores `data`, which starts `offset` bytes after RCV.NXT (0 = the next
    /// expected byte). The caller trims any prefix that lies before RCV.NXT.
    ///
    /// Only the part inside `[0, window())` is kept. Overlapping and
    /// duplicate data are fine. Out-of-order data is dropped (the call
    /// returns 0) when the assembler's range bound is reached; data at
    /// offset 0 is always accepted.
    ///
    /// Returns how many bytes became contiguous: the caller advances RCV.NXT
    /// by exactly that much.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let window = self.window();
        if offset >= window || data.is_empty() {
            return 0;
        }
        let n = data.len().min(window - offset);
        let data = &data[..n];
        if offset > 0 {
            // Record first: if the bound refuses it, nothing is stored.
            if self.assembler.add(offset, n).is_err() {
                return 0;
            }
            self.copy_in(self.len + offset, data);
            return 0;
        }
        self.copy_in(self.len, data);
        // The new bytes may close the hole before held out-of-order ranges.
        self.assembler.shift(n);
        let advanced = n + self.assembler.remove_front();
        self.len += advanced;
        advanced
    }

    /// Copies readable bytes into `buf` and removes them; returns the count.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = self.peek(buf);
        self.skip(n)
    }

    /// Copies readable bytes into `buf` without removing them.
    pub fn peek(&self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.len);
        if n == 0 {
            return 0;
        }
        self.ring.read(0, &mut buf[..n]);
        n
    }

    /// Removes up to `n` readable bytes without copying; returns the count.
    pub fn skip(&mut self, n: usize) -> usize {
        let n = n.min(self.len);
        if n == 0 {
            return 0;
        }
        // Out-of-order data stays put: its ring position is relative to
        // head + len, which this does not change.
        self.ring.advance(n);
        self.len -= n;
        n
    }

    /// Out-of-order ranges `(start, end)` relative to RCV.NXT, ascending:
    /// the material for SACK blocks (RFC 2018 §4).
    pub fn ooo_ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.assembler.ranges()
    }

    /// Out-of-order bytes held.
    pub fn ooo_bytes(&self) -> usize {
        self.assembler.bytes()
    }

    /// Discards everything, readable and out-of-order.
    pub fn clear(&mut self) {
        self.ring.reset();
        self.len = 0;
        self.assembler.clear();
    }

    /// Writes `data` at distance `pos` from `head`, wrapping. The caller
    /// guarantees `pos + data.len() <= capacity`.
    fn copy_in(&mut self, pos: usize, data: &[u8]) {
        self.ring.write(pos, data);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, VecDeque};

    use proptest::prelude::*;

    use super::*;

    fn read_all(b: &mut RecvBuffer) -> Vec<u8> {
        let mut out = vec![0; b.len()];
        assert_eq!(b.read(&mut out), out.len());
        out
    }

    #[test]
    fn in_order_write_and_read() {
        let mut b = RecvBuffer::new(8);
        assert_eq!(b.write_at(0, b"abc"), 3);
        assert_eq!(b.window(), 5);
        assert_eq!(b.write_at(0, b"defghijk"), 5);
        assert_eq!(b.window(), 0);
        assert_eq!(b.write_at(0, b"z"), 0);
        assert_eq!(read_all(&mut b), b"abcdefgh");
        assert_eq!(b.window(), 8);
    }

    #[test]
    fn reassembles_out_of_order() {
        let mut b = RecvBuffer::new(16);
        assert_eq!(b.write_at(6, b"ghi"), 0);
        assert_eq!(b.write_at(3, b"def"), 0);
        assert_eq!(b.ooo_ranges().collect::<Vec<_>>(), [(3, 9)]);
        assert_eq!(b.ooo_bytes(), 6);
        assert_eq!(b.len(), 0);
        assert_eq!(b.write_at(0, b"abc"), 9);
        assert_eq!(b.ooo_bytes(), 0);
        assert_eq!(read_all(&mut b), b"abcdefghi");
    }

    #[test]
    fn overlapping_in_order_data_absorbs_held_range() {
        let mut b = RecvBuffer::new(16);
        b.write_at(2, b"cdef");
        b.write_at(10, b"kl");
        // Covers 0..4, overlapping the held 2..6.
        assert_eq!(b.write_at(0, b"abcd"), 6);
        assert_eq!(b.ooo_ranges().collect::<Vec<_>>(), [(4, 6)]);
        assert_eq!(read_all(&mut b), b"abcdef");
        // Offsets stay relative to RCV.NXT after reading.
        assert_eq!(b.write_at(0, b"ghij"), 6);
        assert_eq!(read_all(&mut b), b"ghijkl");
    }

    #[test]
    fn trims_to_window() {
        let mut b = RecvBuffer::new(8);
        b.write_at(0, b"abcd");
        // Window is 4: offsets 0..4 beyond RCV.NXT.
        assert_eq!(b.write_at(2, b"XYZ"), 0); // only "XY" fits (2..4)
        assert_eq!(b.ooo_ranges().collect::<Vec<_>>(), [(2, 4)]);
        assert_eq!(b.write_at(4, b"Q"), 0);
        assert_eq!(b.write_at(100, b"Q"), 0);
        assert_eq!(b.ooo_bytes(), 2);
    }

    #[test]
    fn full_assembler_drops_ooo_but_accepts_in_order() {
        let mut b = RecvBuffer::with_max_ranges(32, 2);
        b.write_at(4, b"e");
        b.write_at(8, b"i");
        assert_eq!(b.write_at(12, b"m"), 0);
        assert_eq!(b.ooo_bytes(), 2);
        // Merging into an existing range still works.
        b.write_at(5, b"f");
        assert_eq!(b.ooo_bytes(), 3);
        assert_eq!(b.write_at(0, b"abcd"), 6);
        assert_eq!(read_all(&mut b), b"abcdef");
    }

    #[test]
    fn wraps_many_times_past_capacity() {
        let mut b = RecvBuffer::new(10);
        let stream: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut nxt = 0;
        let mut out = Vec::new();
        let mut round = 0;
        while out.len() < stream.len() {
            round += 1;
            // Send a later chunk first, then the in-order one.
            let later = (nxt + 3).min(stream.len());
            let later_end = (later + 4).min(stream.len());
            b.write_at(later - nxt, &stream[later..later_end]);
            let end = (nxt + 3).min(stream.len());
            nxt += b.write_at(0, &stream[nxt..end]);
            let mut buf = [0u8; 10];
            let n = b.read(&mut buf[..(round % 7) + 1]);
            out.extend_from_slice(&buf[..n]);
            assert!(round < 100_000);
        }
        assert_eq!(out, stream);
    }

    #[test]
    fn zero_capacity_is_inert() {
        let mut b = RecvBuffer::new(0);
        assert_eq!(b.window(), 0);
        assert_eq!(b.write_at(0, b"abc"), 0);
        assert_eq!(b.read(&mut [0; 4]), 0);
    }

    fn byte_at(pos: usize) -> u8 {
        (pos.wrapping_mul(7).wrapping_add(pos >> 8) % 256) as u8
    }

    fn segment(start: usize, len: usize) -> Vec<u8> {
        (start..start + len).map(byte_at).collect()
    }

    proptest! {
        /// Against a model: a set of received absolute positions and a
        /// queue of readable bytes.
        #[test]
        fn matches_model(
            cap in 1usize..64,
            ops in proptest::collection::vec((any::<bool>(), 0usize..80, 0usize..40), 0..200),
        ) {
            let mut b = RecvBuffer::with_max_ranges(cap, cap + 1);
            let mut nxt = 0usize;
            let mut held: BTreeSet<usize> = BTreeSet::new();
            let mut readable: VecDeque<u8> = VecDeque::new();
            for (is_write, x, y) in ops {
                if is_write {
                    let (offset, len) = (x, y);
                    let got = b.write_at(offset, &segment(nxt + offset, len));
                    let window = cap - readable.len();
                    for p in offset..(offset + len).min(window) {
                        held.insert(nxt + p);
                    }
                    let mut advanced = 0;
                    while held.remove(&nxt) {
                        readable.push_back(byte_at(nxt));
                        nxt += 1;
                        advanced += 1;
                    }
                    prop_assert_eq!(got, advanced);
                } else {
                    let mut buf = vec![0u8; y];
                    let n = b.read(&mut buf);
                    let expect: Vec<u8> = readable.drain(..y.min(readable.len())).collect();
                    prop_assert_eq!(&buf[..n], &expect[..]);
                }
                prop_assert_eq!(b.len(), readable.len());
                prop_assert_eq!(b.window(), cap - readable.len());
                prop_assert_eq!(b.ooo_bytes(), held.len());
                let from_ranges: BTreeSet<usize> =
                    b.ooo_ranges().flat_map(|(s, e)| s..e).map(|p| p + nxt).collect();
                prop_assert_eq!(&from_ranges, &held);
            }
        }

        /// With a tiny range bound some segments are dropped, but whatever
        /// is delivered is exactly the stream, in order.
        #[test]
        fn delivers_exact_stream_under_range_pressure(
            cap in 1usize..64,
            max_ranges in 0usize..3,
            ops in proptest::collection::vec((any::<bool>(), 0usize..80, 0usize..40), 0..200),
        ) {
            let mut b = RecvBuffer::with_max_ranges(cap, max_ranges);
            let mut nxt = 0usize;
            let mut out = Vec::new();
            for (is_write, x, y) in ops {
                if is_write {
                    nxt += b.write_at(x, &segment(nxt + x, y));
                } else {
                    let mut buf = vec![0u8; y];
                    let n = b.read(&mut buf);
                    out.extend_from_slice(&buf[..n]);
                }
                prop_assert!(b.len() <= cap);
                prop_assert!(b.ooo_ranges().count() <= max_ranges);
            }
            let mut rest = vec![0u8; b.len()];
            b.read(&mut rest);
            out.extend_from_slice(&rest);
            prop_assert_eq!(out.len(), nxt);
            prop_assert_eq!(out, segment(0, nxt));
        }
    }
}
