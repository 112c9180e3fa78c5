//! Two linked in-memory devices: what one end sends, the other receives.
//!
//! For tests and simulations. Each direction is a bounded queue; a full
//! queue drops the packet and counts it, as a real link with a full
//! transmit ring would.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::{Device, PacketBatch};

/// Makes linked pairs of [`MemDevice`]s.
#[derive(Debug)]
pub struct MemPair;

impl MemPair {
    /// Two linked ends. Each direction holds at most `queue_depth` packets
    /// (at least 1); both ends report `mtu`.
    ///
    /// DoS warning: memory is bounded by `2 * queue_depth * mtu` bytes,
    /// since packets longer than `mtu` are dropped at `send`.
    // A pair has two ends; `new` is the name callers of this API expect.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(queue_depth: usize, mtu: usize) -> (MemDevice, MemDevice) {
        Self::with_max_segment(queue_depth, mtu, mtu)
    }

    /// Like [`MemPair::new`], but both ends advertise `max_segment` (at
    /// least `mtu`, at most 65535) as [`Device::max_segment`]: the stack
    /// then builds TCP super-segments of that size, which `send_tso` (the
    /// default) cuts into MTU-sized packets in software. The link itself
    /// still carries only packets up to `mtu`, so simulations exercise
    /// the super-segment path of a TSO device.
    pub fn with_max_segment(
        queue_depth: usize,
        mtu: usize,
        max_segment: usize,
    ) -> (MemDevice, MemDevice) {
        let depth = queue_depth.max(1);
        let max_segment = max_segment.clamp(mtu, 0xffff.max(mtu));
        let (a_tx, b_rx) = crossbeam_channel::bounded(depth);
        let (b_tx, a_rx) = crossbeam_channel::bounded(depth);
        (
            MemDevice::new(a_tx, a_rx, mtu, max_segment),
            MemDevice::new(b_tx, b_rx, mtu, max_segment),
        )
    }
}

/// One end of a [`MemPair`].
#[derive(Debug)]
pub struct MemDevice {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    mtu: usize,
    /// What `max_segment` advertises (see `MemPair::with_max_segment`).
    max_segment: usize,
    dropped: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
}

impl MemDevice {
    fn new(
        tx: Sender<Vec<u8>>,
        rx: Receiver<Vec<u8>>,
        mtu: usize,
        max_segment: usize,
    ) -> MemDevice {
        MemDevice {
            tx,
            rx,
            mtu,
            max_segment,
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    /// Packets this end sent that the link dropped: the peer's queue was
    /// full, the peer was gone, or the packet was longer than the MTU.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Packets this end put on the link (not counting drops).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Packets this end received.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Packets waiting in this end's receive queue.
    pub fn pending(&self) -> usize {
        self.rx.len()
    }

    fn push(&self, batch: &mut PacketBatch, packet: &[u8]) -> bool {
        let pushed = batch.push(packet);
        if pushed {
            self.received.fetch_add(1, Ordering::Relaxed);
        }
        pushed
    }
}

impl Device for MemDevice {
    /// Blocks up to `timeout` for the first packet, then drains what is
    /// queued without waiting. A peer that has been dropped looks like a
    /// silent link: this waits out `timeout` and returns 0.
    fn recv_batch(&self, batch: &mut PacketBatch, timeout: Duration) -> io::Result<usize> {
        batch.clear();
        match self.rx.recv_timeout(timeout) {
            Ok(packet) => {
                self.push(batch, &packet);
            }
            Err(RecvTimeoutError::Timeout) => return Ok(0),
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(timeout);
                return Ok(0);
            }
        }
        while !batch.is_full() {
            match self.rx.try_recv() {
                Ok(packet) => {
                    self.push(batch, &packet);
                }
                Err(_) => break,
            }
        }
        Ok(batch.len())
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        if packet.len() > self.mtu {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        match self.tx.try_send(packet.to_vec()) {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn max_segment(&self) -> usize {
        self.max_segment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_cross_in_both_directions_in_order() {
        let (a, b) = MemPair::new(8, 1500);
        a.send(b"one").unwrap();
        a.send(b"two").unwrap();
        b.send(b"back").unwrap();
        let mut batch = PacketBatch::new(4, 1500);
        assert_eq!(b.recv_batch(&mut batch, Duration::from_secs(1)).unwrap(), 2);
        assert_eq!(
            batch.iter().collect::<Vec<_>>(),
            vec![&b"one"[..], &b"two"[..]]
        );
        assert_eq!(a.recv_batch(&mut batch, Duration::from_secs(1)).unwrap(), 1);
        assert_eq!(batch.get(0), Some(&b"back"[..]));
        assert_eq!((a.sent(), b.received()), (2, 2));
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let (a, b) = MemPair::new(2, 1500);
        for p in [b"1", b"2", b"3", b"4"] {
            a.send(p).unwrap();
        }
        assert_eq!(a.dropped(), 2);
        let mut batch = PacketBatch::new(8, 1500);
        assert_eq!(b.recv_batch(&mut batch, Duration::ZERO).unwrap(), 2);
        assert_eq!(batch.get(1), Some(&b"2"[..]));
    }

    #[test]
    fn oversize_packets_are_dropped() {
        let (a, b) = MemPair::new(2, 4);
        a.send(b"12345").unwrap();
        assert_eq!(a.dropped(), 1);
        assert_eq!(b.pending(), 0);
    }

    #[test]
    fn batch_capacity_limits_one_receive() {
        let (a, b) = MemPair::new(8, 1500);
        for i in 0..5u8 {
            a.send(&[i]).unwrap();
        }
        let mut batch = PacketBatch::new(3, 64);
        assert_eq!(b.recv_batch(&mut batch, Duration::ZERO).unwrap(), 3);
        assert_eq!(b.recv_batch(&mut batch, Duration::ZERO).unwrap(), 2);
        assert_eq!(batch.get(0), Some(&[3u8][..]));
    }

    #[test]
    fn times_out_empty_and_wakes_on_send() {
        let (a, b) = MemPair::new(8, 1500);
        let mut batch = PacketBatch::new(4, 64);
        assert_eq!(
            b.recv_batch(&mut batch, Duration::from_millis(10)).unwrap(),
            0
        );
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            a.send(b"late").unwrap();
            a
        });
        assert_eq!(b.recv_batch(&mut batch, Duration::from_secs(5)).unwrap(), 1);
        assert_eq!(batch.get(0), Some(&b"late"[..]));
        let a = sender.join().unwrap();
        drop(a);
        // A vanished peer is a silent link, not an error.
        assert_eq!(
            b.recv_batch(&mut batch, Duration::from_millis(1)).unwrap(),
            0
        );
    }
}
