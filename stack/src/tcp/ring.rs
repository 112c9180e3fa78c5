//! Byte storage for the send and receive rings, allocated as it is used.
//!
//! A connection may buffer up to its configured capacity (1 MiB each way by
//! default), but most connections never hold more than a few kilobytes.
//! Allocating and zeroing the whole capacity at open made every accepted
//! connection cost two megabytes of `memset` on the RX thread, so the
//! storage starts empty and doubles when a write needs room, up to the
//! capacity. Growth copies the live ring once to the front of the new
//! storage; positions relative to the read head do not change.

/// The smallest storage allocated once anything is written.
pub(crate) const MIN_STORAGE: usize = 4096;

/// A ring of at most `capacity` bytes. Positions are relative to the read
/// head; the owner keeps track of which positions hold data.
#[derive(Debug)]
pub(crate) struct Ring {
    storage: Vec<u8>,
    head: usize,
    capacity: usize,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Ring {
        Ring {
            storage: Vec::new(),
            head: 0,
            capacity,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes of storage allocated so far.
    pub(crate) fn allocated(&self) -> usize {
        self.storage.len()
    }

    /// Copies `data` in at position `pos`. The caller keeps `pos +
    /// data.len()` within the capacity; anything beyond it is not stored.
    pub(crate) fn write(&mut self, pos: usize, data: &[u8]) {
        let end = (pos + data.len()).min(self.capacity);
        if end <= pos {
            return;
        }
        self.reserve(end);
        let data = &data[..end - pos];
        let size = self.storage.len();
        let start = (self.head + pos) % size;
        let first = data.len().min(size - start);
        self.storage[start..start + first].copy_from_slice(&data[..first]);
        self.storage[..data.len() - first].copy_from_slice(&data[first..]);
    }

    /// Copies `buf.len()` bytes from position `pos` into `buf`. The caller
    /// reads only positions it wrote.
    pub(crate) fn read(&self, pos: usize, buf: &mut [u8]) {
        let size = self.storage.len();
        if buf.is_empty() || size == 0 {
            return;
        }
        let start = (self.head + pos) % size;
        let n = buf.len().min(size);
        let first = n.min(size - start);
        buf[..first].copy_from_slice(&self.storage[start..start + first]);
        buf[first..n].copy_from_slice(&self.storage[..n - first]);
    }

    /// Moves the read head `n` bytes on.
    pub(crate) fn advance(&mut self, n: usize) {
        let size = self.storage.len();
        if size > 0 {
            self.head = (self.head + n) % size;
        }
    }

    /// Puts the head back at the start of the storage; only valid when no
    /// position holds data.
    pub(crate) fn reset(&mut self) {
        self.head = 0;
    }

    /// Gives the storage back (it is allocated again on the next write);
    /// only valid when no position holds data. Returns the bytes freed.
    pub(crate) fn release(&mut self) -> usize {
        let freed = self.storage.len();
        self.storage = Vec::new();
        self.head = 0;
        freed
    }

    /// The storage size a write reaching `end` would grow to (doubling,
    /// at least [`MIN_STORAGE`], at most the capacity); the current size
    /// if it already fits.
    pub(crate) fn growth_target(&self, end: usize) -> usize {
        let size = self.storage.len();
        if end <= size {
            return size;
        }
        end.max(size * 2).max(MIN_STORAGE).min(self.capacity)
    }

    /// Grows the storage so positions `0..end` exist.
    fn reserve(&mut self, end: usize) {
        if end > self.storage.len() {
            self.grow_to(self.growth_target(end));
        }
    }

    /// Grows the storage to `new_size` bytes (at most the capacity); a
    /// smaller size changes nothing.
    pub(crate) fn grow_to(&mut self, new_size: usize) {
        let size = self.storage.len();
        let new_size = new_size.min(self.capacity);
        if new_size <= size {
            return;
        }
        let mut grown = vec![0; new_size];
        // Unroll the ring: position p moves from (head + p) % size to p.
        let (back, front) = self.storage.split_at(self.head);
        grown[..front.len()].copy_from_slice(front);
        grown[front.len()..size].copy_from_slice(back);
        self.storage = grown;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_only_what_is_used() {
        let mut r = Ring::new(1 << 20);
        assert_eq!(r.allocated(), 0);
        r.write(0, b"hello");
        assert_eq!(r.allocated(), MIN_STORAGE);
        r.write(10_000, b"x");
        assert_eq!(r.allocated(), 10_001.max(2 * MIN_STORAGE));
        r.write((1 << 20) - 1, b"yz");
        assert_eq!(r.allocated(), 1 << 20, "never beyond the capacity");
        let mut out = [0u8; 5];
        r.read(0, &mut out);
        assert_eq!(&out, b"hello");
    }

    #[test]
    fn growth_keeps_positions_across_the_wrap() {
        let mut r = Ring::new(64 * 1024);
        // Fill the first 4 KiB, consume most of it, wrap around.
        let first: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        r.write(0, &first);
        r.advance(4000);
        r.write(96, b"wrapped!"); // positions 96.. sit at the storage's start
        assert_eq!(r.allocated(), MIN_STORAGE);
        r.write(104, &[7u8; 5000]); // forces growth while wrapped
        let mut out = vec![0u8; 96 + 8 + 5000];
        r.read(0, &mut out);
        assert_eq!(&out[..96], &first[4000..]);
        assert_eq!(&out[96..104], b"wrapped!");
        assert!(out[104..].iter().all(|&b| b == 7));
    }
}
