//! The receive buffer: a bounded byte ring holding in-order data the
//! application has not read yet, and out-of-order data held in fixed
//! chunks beyond RCV.NXT (RFC 9293 §3.10.7.4 reassembly; RFC 9293 §3.8.6
//! the receive window).
//!
//! ```text
//!  ring:    | readable (len) |               grows as in-order data arrives
//!                            ^ RCV.NXT = offset 0 for write_at
//!  chunks:                     [4 KiB]   [4 KiB]  ...  [4 KiB]
//!                              only those holding out-of-order bytes
//! ```
//!
//! The ring's storage grows as data arrives, up to the capacity (see
//! `super::ring`). Out-of-order data does not sit in the ring at its
//! offset: one byte at the far edge of a 1 MiB window would make the ring
//! allocate the whole megabyte. It goes to [`OOO_CHUNK`]-sized chunks,
//! keyed by stream position, so storage is proportional to the bytes held;
//! when a hole fills, the bytes that became contiguous are copied into the
//! ring and their chunks freed.
//!
//! Every byte of storage (ring and chunks) is charged to a
//! [`MemoryBudget`] shared by all connections before it is allocated. When
//! the budget refuses, out-of-order data is pruned first (this buffer's
//! own, beyond the arriving bytes: the data nearest RCV.NXT is the most
//! useful) and what still does not fit is not stored, exactly as if it had
//! been lost; the peer retransmits. Pruned ranges leave the assembler, so
//! SACK never claims them (RFC 2018 §8 allows a receiver to discard data
//! it has SACKed).
//!
//! DoS warning: memory is bounded by `capacity` of ring plus the chunks
//! covering the out-of-order bytes within the window (at most
//! `capacity / OOO_CHUNK + max_ranges` of them), all within the shared
//! budget; the bookkeeping is bounded by the [`Assembler`]'s range bound;
//! a peer that fragments its data into more holes than that loses the
//! excess out-of-order segments, never in-order ones.

use std::collections::BTreeMap;

use super::assembler::{Assembler, DEFAULT_MAX_RANGES};
use super::memory::MemoryBudget;
use super::ring::{Ring, MIN_STORAGE};

/// Bytes per out-of-order chunk: the storage one isolated out-of-order
/// byte costs.
pub const OOO_CHUNK: usize = 4096;

/// A bounded reassembly buffer for incoming bytes.
#[derive(Debug)]
pub struct RecvBuffer {
    /// The readable bytes; position 0 is the first one.
    ring: Ring,
    /// Contiguous readable bytes from position 0.
    len: usize,
    /// Out-of-order ranges, relative to RCV.NXT.
    assembler: Assembler,
    /// The stream position of RCV.NXT: bytes made contiguous so far.
    base: u64,
    /// Out-of-order bytes: chunk `k` holds stream positions
    /// `k * OOO_CHUNK ..`. Only chunks that hold a byte of an assembler
    /// range exist.
    chunks: BTreeMap<u64, Box<[u8]>>,
    /// Charged for the ring's storage and every chunk.
    memory: MemoryBudget,
}

/// What [`RecvBuffer::write`] did with the bytes offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Bytes stored, from the start of the data: fewer than offered when
    /// they went beyond the window, when the assembler's range bound or
    /// the memory budget refused them.
    pub kept: usize,
    /// How many bytes became contiguous: RCV.NXT advances by exactly this.
    pub advanced: usize,
}

impl RecvBuffer {
    /// A buffer of `capacity` bytes that tracks at most
    /// [`DEFAULT_MAX_RANGES`] out-of-order ranges, with a budget of its own
    /// and no limit.
    pub fn new(capacity: usize) -> RecvBuffer {
        RecvBuffer::with_max_ranges(capacity, DEFAULT_MAX_RANGES)
    }

    /// A buffer of `capacity` bytes that tracks at most `max_ranges`
    /// out-of-order ranges, with a budget of its own and no limit.
    pub fn with_max_ranges(capacity: usize, max_ranges: usize) -> RecvBuffer {
        RecvBuffer::with_memory(capacity, max_ranges, MemoryBudget::unlimited())
    }

    /// A buffer of `capacity` bytes that tracks at most `max_ranges`
    /// out-of-order ranges and charges its storage to `memory`.
    pub fn with_memory(capacity: usize, max_ranges: usize, memory: MemoryBudget) -> RecvBuffer {
        RecvBuffer {
            ring: Ring::new(capacity),
            len: 0,
            assembler: Assembler::new(max_ranges),
            base: 0,
            chunks: BTreeMap::new(),
            memory,
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
    /// §3.8.6.2.2), which is the connection's job, and before memory
    /// pressure ([`advertisable`](Self::advertisable)).
    pub fn window(&self) -> usize {
        self.capacity() - self.len
    }

    /// The window the memory can back: [`window`](Self::window), but no
    /// more than the ring's free storage plus what the budget has left.
    /// Under pressure it shrinks toward zero instead of promising room
    /// that would have to be allocated.
    pub fn advertisable(&self) -> usize {
        let free_storage = self.ring.allocated().saturating_sub(self.len);
        self.window()
            .min(free_storage.saturating_add(self.memory.available()))
    }

    /// Bytes of storage held (and charged): ring plus chunks.
    pub fn allocated(&self) -> usize {
        self.ring.allocated() + self.chunks.len() * OOO_CHUNK
    }

    /// The budget this buffer charges.
    pub fn memory(&self) -> &MemoryBudget {
        &self.memory
    }

    /// Stores `data`, which starts `offset` bytes after RCV.NXT (0 = the next
    /// expected byte), and returns how many bytes became contiguous: the
    /// caller advances RCV.NXT by exactly that much. See
    /// [`write`](Self::write).
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        self.write(offset, data).advanced
    }

    /// Stores `data`, which starts `offset` bytes after RCV.NXT (0 = the
    /// next expected byte). The caller trims any prefix that lies before
    /// RCV.NXT.
    ///
    /// Only the part inside `[0, window())` is kept. Overlapping and
    /// duplicate data are fine. Out-of-order data is dropped when the
    /// assembler's range bound is reached or the budget refuses its
    /// chunks; data at offset 0 is stored as far as the ring can grow
    /// within the budget (after pruning this buffer's out-of-order data).
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Written {
        let window = self.window();
        if offset >= window || data.is_empty() {
            return Written::default();
        }
        let n = data.len().min(window - offset);
        let data = &data[..n];
        if offset > 0 {
            let kept = self.write_ooo(offset, data);
            return Written { kept, advanced: 0 };
        }
        let room = self.grow(self.len + n, true).saturating_sub(self.len);
        let kept = n.min(room);
        if kept < n {
            self.memory.count_drop();
        }
        if kept == 0 {
            return Written::default();
        }
        self.ring.write(self.len, &data[..kept]);
        self.assembler.shift(kept);
        self.len += kept;
        self.base += kept as u64;
        // The new bytes may close the hole before held out-of-order ranges.
        let moved = self.take_front();
        self.drop_chunks_behind();
        Written {
            kept,
            advanced: kept + moved,
        }
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
        self.ring.advance(n);
        self.len -= n;
        if self.len == 0 {
            // Out-of-order data lives in chunks, so an empty ring holds
            // nothing: keep later writes contiguous.
            self.ring.reset();
        }
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

    /// Discards every out-of-order byte and frees its chunks (counted as
    /// pruned); returns how many bytes went. Always safe: the peer
    /// retransmits what it has not seen acknowledged.
    pub fn prune_ooo(&mut self) -> usize {
        let pruned = self.assembler.bytes();
        self.assembler.clear();
        self.drop_stale_chunks();
        self.memory.count_pruned(pruned);
        pruned
    }

    /// Gives the ring's storage back when it holds no readable byte
    /// (counted as a ring shrunk); returns whether it did.
    pub fn shrink(&mut self) -> bool {
        if self.len > 0 || self.ring.allocated() == 0 {
            return false;
        }
        self.memory.release(self.ring.release());
        self.memory.count_shrunk();
        true
    }

    /// Discards everything, readable and out-of-order, and frees the
    /// storage.
    pub fn clear(&mut self) {
        self.len = 0;
        self.assembler.clear();
        self.drop_stale_chunks();
        self.memory.release(self.ring.release());
    }

    /// Out-of-order bytes at `offset` (> 0): stored in chunks, charged
    /// first. Returns how many were kept (all or none).
    fn write_ooo(&mut self, offset: usize, data: &[u8]) -> usize {
        let n = data.len();
        if !self.assembler.can_add(offset, n) {
            return 0;
        }
        let start = self.base + offset as u64;
        let end = start + n as u64;
        let keys = start / OOO_CHUNK as u64..=(end - 1) / OOO_CHUNK as u64;
        let missing = |chunks: &BTreeMap<u64, Box<[u8]>>| {
            keys.clone().filter(|k| !chunks.contains_key(k)).count() * OOO_CHUNK
        };
        // Make room from our own far end if need be, range by range, as
        // Linux prunes its out-of-order queue from the tail: bytes nearer
        // RCV.NXT are the ones the reader waits for.
        while !self.memory.try_charge(missing(&self.chunks)) {
            let Some((last, _)) = self.assembler.ranges().last() else {
                self.memory.count_drop();
                return 0;
            };
            if last < offset + n {
                self.memory.count_drop();
                return 0;
            }
            let pruned = self.assembler.truncate(last);
            self.memory.count_pruned(pruned);
            self.drop_stale_chunks();
        }
        for key in keys {
            self.chunks
                .entry(key)
                .or_insert_with(|| vec![0; OOO_CHUNK].into_boxed_slice());
        }
        if self.assembler.add(offset, n).is_err() {
            // can_add said yes; never reached, but leave nothing behind.
            self.drop_stale_chunks();
            return 0;
        }
        let mut pos = start;
        let mut rest = data;
        while let Some((key, within)) = chunk_of(pos) {
            let Some(chunk) = self.chunks.get_mut(&key) else {
                break;
            };
            let take = rest.len().min(OOO_CHUNK - within);
            chunk[within..within + take].copy_from_slice(&rest[..take]);
            rest = &rest[take..];
            pos += take as u64;
            if rest.is_empty() {
                break;
            }
        }
        n
    }

    /// After RCV.NXT moved: moves the held range that now starts at
    /// RCV.NXT, if any, from its chunks into the ring. What the ring
    /// cannot take within the budget is discarded (pruned). Returns the
    /// bytes that became readable.
    fn take_front(&mut self) -> usize {
        let m = self.assembler.front_len();
        if m == 0 {
            return 0;
        }
        let room = self.grow(self.len + m, false).saturating_sub(self.len);
        let mut moved = 0;
        while moved < m.min(room) {
            let pos = self.base + moved as u64;
            let Some((key, within)) = chunk_of(pos) else {
                break;
            };
            let Some(chunk) = self.chunks.get(&key) else {
                break;
            };
            let take = (m.min(room) - moved).min(OOO_CHUNK - within);
            self.ring
                .write(self.len + moved, &chunk[within..within + take]);
            moved += take;
        }
        let mut discarded = false;
        if moved == m {
            self.assembler.remove_front();
        } else {
            self.assembler.shift(moved);
            let pruned = self.assembler.discard_front();
            self.memory.count_pruned(pruned);
            discarded = true;
        }
        self.len += moved;
        self.base += moved as u64;
        if discarded {
            self.drop_stale_chunks();
        }
        moved
    }

    /// Grows the ring, within the budget, so positions `0..end` exist if
    /// it can; returns the storage size it has. Tries the ring's doubling,
    /// then just what is needed, then (if `may_prune`) the same after
    /// pruning the out-of-order data.
    fn grow(&mut self, end: usize, may_prune: bool) -> usize {
        let size = self.ring.allocated();
        let end = end.min(self.capacity());
        if end <= size {
            return size;
        }
        let doubled = self.ring.growth_target(end);
        let exact = end
            .div_ceil(MIN_STORAGE)
            .saturating_mul(MIN_STORAGE)
            .min(self.capacity());
        for target in [doubled, exact] {
            if self.memory.try_charge(target - size) {
                self.ring.grow_to(target);
                return target;
            }
        }
        if may_prune && self.prune_ooo() > 0 && self.memory.try_charge(exact - size) {
            self.ring.grow_to(exact);
            return exact;
        }
        size
    }

    /// After RCV.NXT moved over data: frees the chunks wholly behind it,
    /// and the one it falls in if no held byte remains there. Ranges that
    /// went were behind RCV.NXT, so this is all that can have gone stale.
    fn drop_chunks_behind(&mut self) {
        let chunk = OOO_CHUNK as u64;
        let before = self.chunks.len();
        while let Some(entry) = self.chunks.first_entry() {
            let lo = *entry.key() * chunk;
            let first_held = self.assembler.ranges().next();
            let behind = lo + chunk <= self.base;
            let straddles_unheld = lo <= self.base
                && first_held.is_none_or(|(s, _)| self.base + s as u64 >= lo + chunk);
            if !(behind || straddles_unheld) {
                break;
            }
            entry.remove();
        }
        self.memory
            .release((before - self.chunks.len()) * OOO_CHUNK);
    }

    /// Frees the chunks that hold no byte of a held range.
    fn drop_stale_chunks(&mut self) {
        if self.chunks.is_empty() {
            return;
        }
        let before = self.chunks.len();
        let base = self.base;
        let ranges = &self.assembler;
        self.chunks.retain(|&key, _| {
            let lo = key * OOO_CHUNK as u64;
            let hi = lo + OOO_CHUNK as u64;
            ranges
                .ranges()
                .any(|(s, e)| base + (s as u64) < hi && lo < base + (e as u64))
        });
        self.memory
            .release((before - self.chunks.len()) * OOO_CHUNK);
    }
}

#[cfg(test)]
impl RecvBuffer {
    /// Asserts that the chunks are exactly those holding a held byte.
    fn check_chunks(&self) {
        let chunk = OOO_CHUNK as u64;
        let mut wanted = std::collections::BTreeSet::new();
        for (s, e) in self.assembler.ranges() {
            let (s, e) = (self.base + s as u64, self.base + e as u64);
            wanted.extend(s / chunk..=(e - 1) / chunk);
        }
        let have: std::collections::BTreeSet<u64> = self.chunks.keys().copied().collect();
        assert_eq!(have, wanted, "chunks against held ranges");
    }
}

impl Drop for RecvBuffer {
    fn drop(&mut self) {
        self.memory.release(self.allocated());
    }
}

/// The chunk key of stream position `pos` and its index within the chunk.
fn chunk_of(pos: u64) -> Option<(u64, usize)> {
    let chunk = OOO_CHUNK as u64;
    Some((pos / chunk, usize::try_from(pos % chunk).ok()?))
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

    #[test]
    fn far_out_of_order_byte_costs_a_chunk_not_the_window() {
        let memory = MemoryBudget::new(64 << 20);
        let mut b = RecvBuffer::with_memory(1 << 20, 32, memory.clone());
        assert_eq!(b.write_at((1 << 20) - 1, b"x"), 0);
        assert_eq!(b.allocated(), OOO_CHUNK);
        assert_eq!(memory.in_use(), OOO_CHUNK);
        // Bytes spread over 32 ranges cost 32 chunks, not 1 MiB.
        for i in 1..32 {
            b.write_at(i * 30_000, b"y");
        }
        assert_eq!(b.allocated(), 32 * OOO_CHUNK);
        // The stream arrives; every chunk ends up copied out and freed.
        let stream = segment(0, 1 << 20);
        let mut nxt = 0;
        let mut out = Vec::new();
        while nxt < stream.len() {
            let end = (nxt + 1460).min(stream.len());
            nxt += b.write_at(0, &stream[nxt..end]);
            let mut buf = vec![0u8; 1 << 16];
            let n = b.read(&mut buf);
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(b.ooo_bytes(), 0);
        assert_eq!(b.allocated(), b.ring.allocated(), "no chunk left");
        assert_eq!(memory.in_use(), b.allocated());
        let mut rest = vec![0u8; b.len()];
        b.read(&mut rest);
        out.extend_from_slice(&rest);
        // The out-of-order bytes were overwritten by the stream's own.
        assert_eq!(out.len(), stream.len());
        assert!(b.shrink());
        assert_eq!(memory.in_use(), 0);
        drop(b);
        assert_eq!(memory.in_use(), 0);
    }

    #[test]
    fn a_refused_chunk_prunes_the_far_end_first() {
        let memory = MemoryBudget::new(2 * OOO_CHUNK);
        let mut b = RecvBuffer::with_memory(1 << 16, 32, memory.clone());
        b.write_at(10_000, b"far");
        b.write_at(20_000, b"farther");
        assert_eq!(memory.in_use(), 2 * OOO_CHUNK);
        // Nearer data needs a third chunk: the farthest range goes.
        assert_eq!(b.write(5000, b"near").kept, 4);
        assert_eq!(
            b.ooo_ranges().collect::<Vec<_>>(),
            [(5000, 5004), (10_000, 10_003)]
        );
        assert_eq!(memory.ooo_pruned(), 7);
        // Data beyond what is held finds nothing to prune: refused.
        assert_eq!(b.write(30_000, b"x").kept, 0);
        assert_eq!(memory.drops(), 1);
        assert_eq!(memory.in_use(), 2 * OOO_CHUNK);
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

        /// Under a small budget segments are dropped and held data pruned,
        /// but whatever is delivered is exactly the stream, the storage
        /// stays within the budget, and every byte is given back.
        #[test]
        fn delivers_exact_stream_within_a_small_budget(
            cap in 1usize..40_000,
            limit in 0usize..20_000,
            ops in proptest::collection::vec((0u8..8, 0usize..45_000, 0usize..5000), 0..150),
        ) {
            let memory = MemoryBudget::new(limit);
            let mut b = RecvBuffer::with_memory(cap, 8, memory.clone());
            let mut nxt = 0usize;
            let mut out = Vec::new();
            for (kind, x, y) in ops {
                match kind {
                    0..=2 => nxt += b.write_at(x, &segment(nxt + x, y)),
                    3 => nxt += b.write_at(0, &segment(nxt, y)),
                    4 | 5 => {
                        let mut buf = vec![0u8; y];
                        let n = b.read(&mut buf);
                        out.extend_from_slice(&buf[..n]);
                    }
                    6 => {
                        b.prune_ooo();
                    }
                    _ => {
                        b.shrink();
                    }
                }
                prop_assert!(memory.in_use() <= limit);
                prop_assert_eq!(memory.in_use(), b.allocated());
                prop_assert!(b.len() <= cap);
                // Held bytes live in chunks, and only they.
                b.check_chunks();
            }
            let mut rest = vec![0u8; b.len()];
            b.read(&mut rest);
            out.extend_from_slice(&rest);
            prop_assert_eq!(out.len(), nxt);
            prop_assert_eq!(out, segment(0, nxt));
            drop(b);
            prop_assert_eq!(memory.in_use(), 0);
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
