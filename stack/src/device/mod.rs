//! Devices: where raw IP packets (IPv4 and IPv6) come from and go to.
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
pub mod gso;
pub mod mem;
// Test support for the real-TUN tests, not part of the stack's API;
// `unsafe` for setns(2), which std does not wrap.
#[cfg(feature = "test-support")]
#[allow(unsafe_code)]
pub mod netns;
pub mod packet_log;
pub mod pcap;
// `unsafe` for if_nametoindex(3), ioctl(2), fcntl(2) and poll(2), which
// std does not wrap.
#[allow(unsafe_code)]
pub mod tun;
pub mod vnet;

/// A point-to-point link that carries whole IP packets (IPv4 and IPv6).
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

    /// The largest packet `recv_batch` may return: size [`PacketBatch`]
    /// buffers with it. The MTU, unless the device receives
    /// super-segments (an offload TUN device: 65535).
    fn max_packet(&self) -> usize {
        self.mtu()
    }

    /// The largest packet [`Device::send_tso`] takes, IP header included:
    /// 65535 for a TUN device whose kernel granted TSO, else the MTU (the
    /// default segments in software, but building bigger super-segments
    /// than the link takes only to split them again gains nothing).
    fn max_segment(&self) -> usize {
        self.mtu()
    }

    /// Sends one IPv4 or IPv6 TCP super-segment: a packet whose TCP
    /// payload may span many segments of `mss` bytes, as the link sees
    /// them. An IPv6 one carries TCP right after its fixed header (no
    /// extension headers).
    ///
    /// Its IPv4 header checksum and TCP checksum are ignored (the device
    /// fills in whatever it needs), so the caller need not compute them;
    /// its IPv4 total length or IPv6 payload length must be right. Each
    /// segment gets the super-segment's flags except that FIN and PSH go
    /// only on the last and CWR only on the first (see [`gso`]).
    ///
    /// The default splits it in software ([`gso::segment`]) and calls
    /// [`Device::send`] for each piece, which works on every device; a
    /// TUN device with TSO hands it to the kernel in one write.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `packet` is not a well-formed unfragmented IPv4
    /// TCP packet or IPv6 TCP packet without extension headers, or `mss`
    /// is zero; else what `send` returns.
    fn send_tso(&self, packet: &[u8], mss: u16) -> io::Result<()> {
        gso::segment(packet, mss, |seg| self.send(seg))
    }
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
    fn max_packet(&self) -> usize {
        (**self).max_packet()
    }
    fn max_segment(&self) -> usize {
        (**self).max_segment()
    }
    fn send_tso(&self, packet: &[u8], mss: u16) -> io::Result<()> {
        (**self).send_tso(packet, mss)
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
    fn max_packet(&self) -> usize {
        (**self).max_packet()
    }
    fn max_segment(&self) -> usize {
        (**self).max_segment()
    }
    fn send_tso(&self, packet: &[u8], mss: u16) -> io::Result<()> {
        (**self).send_tso(packet, mss)
    }
}

/// What a device knows about a received packet beyond its bytes: the
/// virtio-net header of an offload TUN device, reduced to what the
/// receive path acts on. Devices without offload report the default:
/// verify everything in software, not a super-segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// Whether the transport (TCP/UDP) checksum must be verified. The
    /// IPv4 header checksum is always valid and always worth checking.
    pub checksum: RxChecksum,
    /// `Some(mss)`: the packet is a TCP super-segment (generic
    /// segmentation offload): one IPv4 or IPv6 packet of up to 64 KiB,
    /// its length and TCP sequence space covering data the kernel would
    /// otherwise have sent as segments of `mss` payload bytes. It is a
    /// valid TCP segment as it stands (RFC 9293 bounds a segment by the
    /// window, not the MSS), so the receive path takes it whole.
    pub gso_size: Option<u16>,
}

/// The state of a received packet's transport checksum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RxChecksum {
    /// Nothing is known: verify it in software (RFC 9293 §3.1, RFC 768).
    #[default]
    Unverified,
    /// The kernel verified it (virtio-net `DATA_VALID`).
    Verified,
    /// The kernel never computed it (virtio-net `NEEDS_CSUM`): the
    /// checksum field holds only the folded pseudo-header sum, so
    /// verifying it in software would fail and drop a good packet. The
    /// packet came straight from the local kernel's memory, not over a
    /// wire, so there is nothing to verify. Do not verify it.
    Partial,
}

impl RxChecksum {
    /// Whether the receive path must verify the checksum in software.
    pub fn must_verify(self) -> bool {
        self == RxChecksum::Unverified
    }
}

/// A fixed set of packet buffers filled by one `recv_batch` call and
/// reused for the next: receiving allocates nothing.
///
/// DoS warning: a batch holds at most `capacity` packets of at most
/// `buf_len` bytes; longer packets are truncated by the device (and then
/// rejected by the IPv4 length check). Size `buf_len` with the device's
/// [`Device::max_packet`]: an offload TUN device needs 65535 per buffer,
/// so a batch of 64 holds 4 MiB.
#[derive(Debug)]
pub struct PacketBatch {
    data: Vec<u8>,
    lens: Vec<usize>,
    metas: Vec<RxMeta>,
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
            metas: Vec::with_capacity(capacity),
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
        self.metas.clear();
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
        self.push_with_meta(|buf| Ok(fill(buf)?.map(|n| (n, RxMeta::default()))))
    }

    /// As [`PacketBatch::push_with`], for a device that also knows the
    /// packet's [`RxMeta`]: `fill` returns the length and the metadata.
    ///
    /// # Errors
    ///
    /// Whatever `fill` returns.
    pub fn push_with_meta<E>(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Result<Option<(usize, RxMeta)>, E>,
    ) -> Result<bool, E> {
        if self.is_full() {
            return Ok(false);
        }
        let start = self.lens.len() * self.buf_len;
        let buf = &mut self.data[start..start + self.buf_len];
        match fill(buf)? {
            Some((n, meta)) => {
                self.lens.push(n.min(self.buf_len));
                self.metas.push(meta);
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

    /// The metadata of the `i`th packet (the default for packets pushed
    /// without any).
    pub fn meta(&self, i: usize) -> Option<RxMeta> {
        self.metas.get(i).copied()
    }

    /// Each packet with its metadata.
    pub fn iter_with_meta(&self) -> impl Iterator<Item = (&[u8], RxMeta)> + '_ {
        (0..self.len()).filter_map(move |i| Some((self.get(i)?, self.meta(i)?)))
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

    #[test]
    fn metadata_defaults_to_verify_and_travels_with_its_packet() {
        let mut batch = PacketBatch::new(3, 8);
        assert!(batch.push(b"plain"));
        let partial = RxMeta {
            checksum: RxChecksum::Partial,
            gso_size: Some(1448),
        };
        assert!(batch
            .push_with_meta(|buf| {
                buf[..3].copy_from_slice(b"gso");
                Ok::<_, ()>(Some((3, partial)))
            })
            .unwrap());
        assert!(!batch.push_with_meta(|_| Ok::<_, ()>(None)).unwrap());
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.meta(0), Some(RxMeta::default()));
        assert!(batch.meta(0).unwrap().checksum.must_verify());
        assert_eq!(batch.meta(1), Some(partial));
        assert!(!RxChecksum::Partial.must_verify());
        assert!(!RxChecksum::Verified.must_verify());
        assert_eq!(batch.meta(2), None);
        let got: Vec<_> = batch.iter_with_meta().collect();
        assert_eq!(
            got,
            vec![(&b"plain"[..], RxMeta::default()), (&b"gso"[..], partial)]
        );
        batch.clear();
        assert_eq!(batch.meta(0), None);
    }

    #[test]
    fn default_send_tso_segments_in_software() {
        use etherparse::PacketBuilder;
        let (a, b) = mem::MemPair::new(16, 1500);
        let payload: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
        let mut packet = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
            .tcp(80, 40000, 1, 1024)
            .ack(1)
            .write(&mut packet, &payload)
            .unwrap();
        assert_eq!(a.max_segment(), a.mtu());
        assert_eq!(a.max_packet(), a.mtu());
        a.send_tso(&packet, 1460).unwrap();
        let mut batch = PacketBatch::new(8, 1500);
        assert_eq!(b.recv_batch(&mut batch, Duration::ZERO).unwrap(), 3);
        let lens: Vec<usize> = batch.iter().map(<[u8]>::len).collect();
        assert_eq!(lens, vec![1500, 1500, 40 + 4000 - 2 * 1460]);
        assert!(a.send_tso(&packet[..30], 1460).is_err());
    }
}
