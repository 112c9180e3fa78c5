//! The send buffer: a bounded byte ring holding what the application wrote
//! and the peer has not yet acknowledged (RFC 9293 §3.3.1, the region from
//! SND.UNA onwards, both sent-but-unacknowledged and not-yet-sent bytes).
//!
//! The ring's storage grows as data is written, up to the capacity (see
//! `super::ring`); `read_at` and `consume` never allocate. Offset 0 always names the byte at SND.UNA, so the
//! connection reads any segment's payload (first transmission or
//! retransmission) by its distance from SND.UNA.

/// A fixed-capacity ring buffer of outgoing bytes.
///
/// DoS warning: memory is bounded by `capacity`, fixed at construction; a
/// writer that outpaces the peer sees `write` return less than it offered.
use super::ring::Ring;

#[derive(Debug)]
pub struct SendBuffer {
    /// The bytes; position 0 is the oldest unacknowledged byte.
    ring: Ring,
    /// Bytes held, `<= capacity`.
    len: usize,
}

impl SendBuffer {
    /// A buffer that holds at most `capacity` bytes.
    pub fn new(capacity: usize) -> SendBuffer {
        SendBuffer {
            ring: Ring::new(capacity),
            len: 0,
        }
    }

    /// The most bytes the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Bytes held: unacknowledged plus unsent.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left for `write`.
    pub fn free(&self) -> usize {
        self.capacity() - self.len
    }

    /// Appends as much of `data` as fits and returns how much that was.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.ring.write(self.len, &data[..n]);
        self.len += n;
        n
    }

    /// Copies bytes starting `offset` bytes after the front (offset 0 is the
    /// oldest unacknowledged byte) into `buf`, across the wrap if needed.
    /// Returns how many were copied: `min(buf.len(), len - offset)`, or 0 if
    /// `offset >= len`.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> usize {
        if offset >= self.len {
            return 0;
        }
        let n = buf.len().min(self.len - offset);
        self.ring.read(offset, &mut buf[..n]);
        n
    }

    /// Drops `n` bytes from the front: the peer acknowledged them. More
    /// than `len` is clamped to `len`.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        if n == 0 {
            return;
        }
        self.ring.advance(n);
        self.len -= n;
        if self.len == 0 {
            // Keep writes contiguous when the buffer drains.
            self.ring.reset();
        }
    }

    /// Gives the ring's storage back when nothing is held (it is allocated
    /// again on the next write); returns whether it did.
    pub fn shrink(&mut self) -> bool {
        if self.len > 0 || self.ring.allocated() == 0 {
            return false;
        }
        self.ring.release();
        true
    }

    /// Discards everything (for an aborted connection).
    pub fn clear(&mut self) {
        self.ring.reset();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    fn contents(buf: &SendBuffer) -> Vec<u8> {
        let mut out = vec![0; buf.len()];
        assert_eq!(buf.read_at(0, &mut out), buf.len());
        out
    }

    #[test]
    fn write_truncates_at_capacity() {
        let mut b = SendBuffer::new(8);
        assert_eq!(b.write(b"hello"), 5);
        assert_eq!(b.write(b"world"), 3);
        assert_eq!(b.free(), 0);
        assert_eq!(b.write(b"x"), 0);
        assert_eq!(contents(&b), b"hellowor");
    }

    #[test]
    fn read_at_offsets_and_bounds() {
        let mut b = SendBuffer::new(16);
        b.write(b"abcdefgh");
        let mut out = [0u8; 4];
        assert_eq!(b.read_at(2, &mut out), 4);
        assert_eq!(&out, b"cdef");
        assert_eq!(b.read_at(6, &mut out), 2);
        assert_eq!(&out[..2], b"gh");
        assert_eq!(b.read_at(8, &mut out), 0);
        assert_eq!(b.read_at(100, &mut out), 0);
        assert_eq!(b.read_at(0, &mut []), 0);
    }

    #[test]
    fn consume_clamps() {
        let mut b = SendBuffer::new(4);
        b.write(b"abc");
        b.consume(10);
        assert!(b.is_empty());
        assert_eq!(b.free(), 4);
    }

    #[test]
    fn wraps_many_times_past_capacity() {
        let mut b = SendBuffer::new(7);
        let mut next_in: u8 = 0;
        let mut next_out: u8 = 0;
        for round in 0..500 {
            let want = (round % 5) + 1;
            let chunk: Vec<u8> = (0..want).map(|i| next_in.wrapping_add(i as u8)).collect();
            let n = b.write(&chunk);
            next_in = next_in.wrapping_add(n as u8);
            // Read across the wrap, then acknowledge part of it.
            let mut out = [0u8; 7];
            let got = b.read_at(0, &mut out);
            assert_eq!(got, b.len());
            for (i, byte) in out[..got].iter().enumerate() {
                assert_eq!(*byte, next_out.wrapping_add(i as u8));
            }
            let ack = (round % 3) + 1;
            let acked = ack.min(b.len());
            b.consume(ack);
            next_out = next_out.wrapping_add(acked as u8);
        }
    }

    #[test]
    fn read_at_across_wrap_with_offset() {
        let mut b = SendBuffer::new(6);
        b.write(b"abcd");
        b.consume(3); // head at index 3
        b.write(b"efghi"); // "d" + "efghi", wraps
        let mut out = [0u8; 6];
        assert_eq!(b.read_at(1, &mut out), 5);
        assert_eq!(&out[..5], b"efghi");
        assert_eq!(b.read_at(4, &mut out[..1]), 1);
        assert_eq!(out[0], b'h');
    }

    #[test]
    fn zero_capacity_is_inert() {
        let mut b = SendBuffer::new(0);
        assert_eq!(b.write(b"abc"), 0);
        assert_eq!(b.read_at(0, &mut [0; 4]), 0);
        b.consume(1);
        assert!(b.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(Vec<u8>),
        Consume(usize),
        ReadAt(usize, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Write),
            (0usize..50).prop_map(Op::Consume),
            (0usize..50, 0usize..50).prop_map(|(o, n)| Op::ReadAt(o, n)),
        ]
    }

    proptest! {
        #[test]
        fn matches_vecdeque_model(cap in 0usize..64, ops in proptest::collection::vec(op(), 0..200)) {
            let mut b = SendBuffer::new(cap);
            let mut model: VecDeque<u8> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Write(data) => {
                        let n = b.write(&data);
                        let expect = data.len().min(cap - model.len());
                        prop_assert_eq!(n, expect);
                        model.extend(&data[..n]);
                    }
                    Op::Consume(n) => {
                        b.consume(n);
                        let n = n.min(model.len());
                        model.drain(..n);
                    }
                    Op::ReadAt(offset, n) => {
                        let mut out = vec![0u8; n];
                        let got = b.read_at(offset, &mut out);
                        let expect: Vec<u8> = model.iter().skip(offset).take(n).copied().collect();
                        prop_assert_eq!(&out[..got], &expect[..]);
                    }
                }
                prop_assert_eq!(b.len(), model.len());
                prop_assert_eq!(b.free(), cap - model.len());
            }
        }
    }
}
