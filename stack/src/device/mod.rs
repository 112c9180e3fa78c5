//! Devices: where raw IPv4 packets come from and go to.
//!
//! One small trait, [`Device`], and types that implement it:
//! - [`tun::TunDevice`]: a Linux TUN interface;
//! - [`mem::MemPair`]: two linked in-memory ends, for tests;
//! - [`fault::FaultInjector`]: wraps any device and, seeded, loses,
//!   duplicates, reorders, corrupts and delays packets;
//! - [`pcap::PcapWriter`]: wraps any device and records every packet in
//!   both directions to a pcap file (LINKTYPE_RAW) for Wireshark.
//!
//! Wrappers compose: `PcapWriter::new(FaultInjector::new(tun, ..), file)`.
//! This layer knows nothing of protocols.
//!
//! The crate denies `unsafe_code`; the two modules below that call the
//! kernel through `libc` are the only ones allowed it, each call with its
//! `SAFETY:` reasoning:
//! - `tun`: `if_nametoindex(3)` to find the interface, the `ioctl(2)`s
//!   that read its flags and MTU, `fcntl(2)` for non-blocking mode, and
//!   the `poll(2)` that waits for packets;
//! - `netns` (test support, behind the `test-support` feature): the
//!   `setns(2)` that moves one thread into a network namespace.

use std::io;
use std::time::Duration;

pub mod fault;
pub mod mem;
// Test support for the real-TUN tests, not part of the stack's API;
// `unsafe` for setns(2), which std does not wrap.
#[cfg(feature = "test-support")]
#[allow(unsafe_code)]
pub mod netns;
pub mod pcap;
// `unsafe` for if_nametoindex(3), ioctl(2), fcntl(2) and poll(2), which
// std does not wrap.
#[allow(unsafe_code)]
pub mod tun;

/// A point-to-point link that carries whole IPv4 packets.
///
/// Both methods take `&self`: the runtime receives on one thread while user
/// threads transmit directly, so implementations are internally
/// synchronised (a TUN fd is safe to write from several threads).
pub trait Device: Send + Sync {
    /// Waits up to `timeout` for at least one packet, then fills `batch`
    /// with as many as are ready without waiting further, up to its
    /// capacity. Returns the number received (0 on timeout). `batch` is
    /// cleared first.
    ///
    /// # Errors
    ///
    /// An I/O error from the underlying device; a timeout is not an error.
    fn recv_batch(&self, batch: &mut PacketBatch, timeout: Duration) -> io::Result<usize>;

    /// Sends one packet. A full link drops the packet and returns Ok, as a
    /// real network interface would.
    ///
    /// # Errors
    ///
    /// An I/O error from the underlying device.
    fn send(&self, packet: &[u8]) -> io::Result<()>;

    /// The largest packet this device carries, IP header included.
    fn mtu(&self) -> usize;
}

impl<D: Device + ?Sized> Device for std::sync::Arc<D> {
    fn recv_batch(&self, batch: &mut PacketBatch, timeout: Duration) -> io::Result<usize> {
        (**self).recv_batch(batch, timeout)
    }
    fn send(&self, packet: &[u8]) -> io::Result<()> {
        (**self).send(packet)
    }
    fn mtu(&self) -> usize {
        (**self).mtu()
    }
}

impl<D: Device + ?Sized> Device for Box<D> {
    fn recv_batch(&self, batch: &mut PacketBatch, timeout: Duration) -> io::Result<usize> {
        (**self).recv_batch(batch, timeout)
    }
    fn send(&self, packet: &[u8]) -> io::Result<()> {
        (**self).send(packet)
    }
    fn mtu(&self) -> usize {
        (**self).mtu()
    }
}

/// A fixed set of packet buffers filled by one `recv_batch` call and
/// reused for the next: receiving allocates nothing.
///
/// DoS warning: a batch holds at most `capacity` packets of at most
/// `buf_len` bytes; longer packets are truncated by the device (and then
/// rejected by the IPv4 length check).
#[derive(Debug)]
pub struct PacketBatch {
    data: Vec<u8>,
    lens: Vec<usize>,
    buf_len: usize,
    capacity: usize,
}

impl PacketBatch {
    /// A batch of `capacity` buffers of `buf_len` bytes each.
    pub fn new(capacity: usize, buf_len: usize) -> PacketBatch {
        let capacity = capacity.max(1);
        PacketBatch {
            data: vec![0; capacity * buf_len],
            lens: Vec::with_capacity(capacity),
            buf_len,
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn buf_len(&self) -> usize {
        self.buf_len
    }

    pub fn len(&self) -> usize {
        self.lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.lens.len() >= self.capacity
    }

    pub fn clear(&mut self) {
        self.lens.clear();
    }

    /// Lends the next free buffer to `fill`, which returns how many bytes it
    /// wrote, or `None` to leave the buffer unused. Returns `Ok(false)` when
    /// the batch is full or `fill` produced nothing.
    ///
    /// # Errors
    ///
    /// Whatever `fill` returns.
    pub fn push_with<E>(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Result<Option<usize>, E>,
    ) -> Result<bool, E> {
        if self.is_full() {
            return Ok(false);
        }
        let start = self.lens.len() * self.buf_len;
        let buf = &mut self.data[start..start + self.buf_len];
        match fill(buf)? {
            Some(n) => {
                self.lens.push(n.min(self.buf_len));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Copies `packet` into the next free buffer (truncating it to
    /// `buf_len`). Returns false when the batch is full.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        self.push_with::<()>(|buf| {
            let n = packet.len().min(buf.len());
            buf[..n].copy_from_slice(&packet[..n]);
            Ok(Some(n))
        })
        .unwrap_or(false)
    }

    /// The `i`th packet of the batch.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let len = *self.lens.get(i)?;
        let start = i * self.buf_len;
        self.data.get(start..start + len)
    }

    /// The `i`th packet, mutably (fault injection corrupts in place).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        let len = *self.lens.get(i)?;
        let start = i * self.buf_len;
        self.data.get_mut(start..start + len)
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_fills_to_capacity_and_reuses() {
        let mut batch = PacketBatch::new(2, 8);
        assert!(batch.push(b"abc"));
        assert!(batch.push(b"0123456789"));
        assert!(!batch.push(b"x"));
        assert_eq!(batch.get(0), Some(&b"abc"[..]));
        assert_eq!(batch.get(1), Some(&b"01234567"[..]));
        assert_eq!(batch.get(2), None);
        batch.clear();
        assert!(batch.is_empty());
        assert!(batch.push(b"z"));
        assert_eq!(batch.iter().collect::<Vec<_>>(), vec![&b"z"[..]]);
    }
}
