//! A device wrapper that records every packet, received and sent, to a
//! pcap file that Wireshark and tcpdump open directly.
//!
//! The link type is LINKTYPE_RAW (101): each record is a bare IPv4
//! packet, which is exactly what a TUN device carries. Timestamps are wall
//! clock (Unix epoch, microseconds) so a capture lines up with other logs;
//! [`PcapWriter::with_clock`] stamps them from a [`Clock`] instead (a
//! simulation's, counted from its epoch), so that a simulated run gives
//! the same capture byte for byte.
//!
//! A super-segment sent with `Device::send_tso` is recorded once, as the
//! single packet of up to 64 KiB the stack built (what tcpdump shows on an
//! interface with TSO), not as the wire packets the device cuts it into;
//! its TCP checksum may be unset, since the device fills it in.
//!
//! The file is flushed after every received batch and every sent packet,
//! so a run that ends by Ctrl-C still leaves a readable capture. A failure
//! to write the capture is logged once and never breaks the network path.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness};

use super::{Device, PacketBatch};
use crate::time::Clock;

/// The most bytes of one packet we record: the IPv4 maximum.
const SNAPLEN: u32 = 0xffff;

/// Wraps a [`Device`] and records its traffic.
pub struct PcapWriter<D: Device> {
    inner: D,
    sink: Mutex<Sink>,
    /// Where timestamps come from; `None` for the wall clock.
    clock: Option<Arc<dyn Clock>>,
}

impl<D: Device> std::fmt::Debug for PcapWriter<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapWriter").finish_non_exhaustive()
    }
}

/// pcap-file's writer owns its output and cannot flush it, so it writes
/// into `staged`, which we copy to `out` and flush at each flush point.
/// The staging buffer holds at most one received batch.
struct Sink {
    pcap: pcap_file::pcap::PcapWriter<Staging>,
    staged: Arc<Mutex<Vec<u8>>>,
    out: Box<dyn Write + Send>,
    failed: bool,
}

/// The pcap writer's output: a buffer shared with [`Sink`].
struct Staging(Arc<Mutex<Vec<u8>>>);

impl Write for Staging {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<D: Device> PcapWriter<D> {
    /// Records `inner`'s traffic to a new file at `path` (truncating it).
    ///
    /// # Errors
    ///
    /// Creating the file or writing the pcap header failed.
    pub fn create(inner: D, path: impl AsRef<Path>) -> io::Result<Self> {
        let file = File::create(path)?;
        Self::new(inner, BufWriter::new(file))
    }

    /// Records `inner`'s traffic to `writer`; writes the pcap header now.
    ///
    /// # Errors
    ///
    /// Writing the pcap header failed.
    pub fn new<W: Write + Send + 'static>(inner: D, writer: W) -> io::Result<Self> {
        let staged = Arc::new(Mutex::new(Vec::new()));
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::RAW,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        let pcap = pcap_file::pcap::PcapWriter::with_header(Staging(staged.clone()), header)
            .map_err(io::Error::other)?;
        let mut sink = Sink {
            pcap,
            staged,
            out: Box::new(writer),
            failed: false,
        };
        sink.flush()?;
        Ok(PcapWriter {
            inner,
            sink: Mutex::new(sink),
            clock: None,
        })
    }

    /// Stamps packets with `clock`'s time (microseconds since its epoch)
    /// instead of the wall clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    fn now(&self) -> Duration {
        match &self.clock {
            Some(clock) => Duration::from_micros(clock.now().total_micros()),
            None => wall_now(),
        }
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl Sink {
    fn record(&mut self, packet: &[u8], at: Duration) {
        let data = packet.get(..SNAPLEN as usize).unwrap_or(packet);
        let orig_len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        let result = self.pcap.write_packet(&PcapPacket::new(at, orig_len, data));
        if let Err(e) = result {
            self.fail(&io::Error::other(e));
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let staged = std::mem::take(&mut *self.staged.lock());
        self.out.write_all(&staged)?;
        self.out.flush()
    }

    fn flush_or_log(&mut self) {
        if let Err(e) = self.flush() {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &io::Error) {
        if !self.failed {
            tracing::warn!("pcap capture failed, packets are no longer recorded: {e}");
            self.failed = true;
        }
        self.staged.lock().clear();
    }
}

fn wall_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

impl<D: Device> Device for PcapWriter<D> {
    fn recv_batch(&self, batch: &mut PacketBatch, timeout: Duration) -> io::Result<usize> {
        let n = self.inner.recv_batch(batch, timeout)?;
        if n > 0 {
            let at = self.now();
            let mut sink = self.sink.lock();
            for packet in batch.iter() {
                sink.record(packet, at);
            }
            sink.flush_or_log();
        }
        Ok(n)
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        {
            let mut sink = self.sink.lock();
            sink.record(packet, self.now());
            sink.flush_or_log();
        }
        self.inner.send(packet)
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn max_packet(&self) -> usize {
        self.inner.max_packet()
    }

    fn max_segment(&self) -> usize {
        self.inner.max_segment()
    }

    /// Records the super-segment as one packet, as sent (up to 64 KiB;
    /// its TCP checksum may be left for the device to fill in), then hands
    /// it to the wrapped device's `send_tso`.
    fn send_tso(&self, packet: &[u8], mss: u16) -> io::Result<()> {
        {
            let mut sink = self.sink.lock();
            sink.record(packet, self.now());
            sink.flush_or_log();
        }
        self.inner.send_tso(packet, mss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::mem::MemPair;
    use crate::time::{Instant, ManualClock};
    use pcap_file::pcap::PcapReader;

    /// A `Write` the test can read back while the writer still owns it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn read_back(bytes: &[u8]) -> (PcapHeader, Vec<Vec<u8>>) {
        let mut reader = PcapReader::new(bytes).unwrap();
        let header = reader.header();
        let mut packets = Vec::new();
        while let Some(p) = reader.next_packet() {
            packets.push(p.unwrap().data.into_owned());
        }
        (header, packets)
    }

    #[test]
    fn a_super_segment_is_recorded_once_and_arrives_cut_and_checksummed() {
        use crate::wire::ipv4::{self, Ipv4Repr};
        use crate::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
        use crate::wire::SeqNumber;
        use std::net::Ipv4Addr;

        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let (a, b) = MemPair::with_max_segment(8, 1500, 0xffff);
        let out = Shared::default();
        let a = PcapWriter::new(a, out.clone()).unwrap();
        assert_eq!((a.mtu(), a.max_segment()), (1500, 0xffff));
        let payload: Vec<u8> = (0..3500u32).map(|i| i as u8).collect();
        let seg = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq: SeqNumber(100),
            ack: SeqNumber(7),
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 1000,
            urgent: 0,
            options: TcpOptions::default(),
            payload: &payload,
        };
        // Built as the runtime builds one: no TCP checksum.
        let mut packet = vec![0u8; ipv4::MAX_PACKET_LEN];
        let len = seg
            .emit_unchecksummed(&mut packet[ipv4::HEADER_LEN..])
            .unwrap();
        let ip = Ipv4Repr {
            src,
            dst,
            protocol: 6,
            ttl: 64,
            payload_len: len,
        };
        ip.emit(&mut packet).unwrap();
        let packet = &packet[..ip.buffer_len()];
        a.send_tso(packet, 1000).unwrap();
        // One record: the super-segment as built.
        assert_eq!(read_back(&out.0.lock()).1, vec![packet.to_vec()]);
        // Four wire packets, each with a checksum that verifies.
        let mut batch = PacketBatch::new(8, 1500);
        assert_eq!(b.recv_batch(&mut batch, Duration::ZERO).unwrap(), 4);
        let mut got = Vec::new();
        for p in batch.iter() {
            let (ip, body) = Ipv4Repr::parse(p).unwrap();
            let tcp = TcpRepr::parse(ip.src, ip.dst, body, true).unwrap();
            assert_eq!(tcp.seq, SeqNumber(100) + got.len());
            got.extend_from_slice(tcp.payload);
        }
        assert_eq!(got, payload);
    }

    #[test]
    fn records_both_directions_in_order_and_flushes_each() {
        let (a, b) = MemPair::new(8, 1500);
        let out = Shared::default();
        let a = PcapWriter::new(a, out.clone()).unwrap();
        a.send(b"\x45 first out").unwrap();
        // Flushed already: readable without dropping the writer.
        assert_eq!(read_back(&out.0.lock()).1, vec![b"\x45 first out".to_vec()]);
        b.send(b"\x45 in one").unwrap();
        b.send(b"\x45 in two").unwrap();
        let mut batch = PacketBatch::new(4, 1500);
        assert_eq!(a.recv_batch(&mut batch, Duration::from_secs(1)).unwrap(), 2);
        a.send(b"\x45 last out").unwrap();
        let (header, packets) = read_back(&out.0.lock());
        assert_eq!(header.datalink, DataLink::RAW);
        assert_eq!(
            packets,
            vec![
                b"\x45 first out".to_vec(),
                b"\x45 in one".to_vec(),
                b"\x45 in two".to_vec(),
                b"\x45 last out".to_vec(),
            ]
        );
        // The peer still got what was sent.
        assert_eq!(b.recv_batch(&mut batch, Duration::ZERO).unwrap(), 2);
    }

    #[test]
    fn injected_clock_stamps_the_records() {
        let clock = Arc::new(ManualClock::new(Instant::from_micros(1_500_000)));
        let (a, _b) = MemPair::new(8, 1500);
        let out = Shared::default();
        let a = PcapWriter::new(a, out.clone())
            .unwrap()
            .with_clock(clock.clone());
        a.send(b"\x45 one").unwrap();
        clock.advance(Duration::from_micros(250));
        a.send(b"\x45 two").unwrap();
        let bytes = out.0.lock().clone();
        let mut reader = PcapReader::new(&bytes[..]).unwrap();
        let first = reader.next_packet().unwrap().unwrap().timestamp;
        let second = reader.next_packet().unwrap().unwrap().timestamp;
        assert_eq!(first, Duration::from_micros(1_500_000));
        assert_eq!(second, Duration::from_micros(1_500_250));
    }

    #[test]
    fn create_writes_a_file_wireshark_can_read() {
        let path = std::env::temp_dir().join(format!("stack-pcap-{}.pcap", std::process::id()));
        let (a, _b) = MemPair::new(8, 1500);
        let a = PcapWriter::create(a, &path).unwrap();
        a.send(&[0x45; 40]).unwrap();
        // Not dropped: a Ctrl-C'd run must still leave the packet on disk.
        let bytes = std::fs::read(&path).unwrap();
        drop(a);
        std::fs::remove_file(&path).unwrap();
        let (header, packets) = read_back(&bytes);
        assert_eq!(header.datalink, DataLink::RAW);
        assert_eq!(packets, vec![vec![0x45; 40]]);
        // LINKTYPE_RAW is 101 in the global header (offset 20).
        let linktype = u32::from_ne_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        assert_eq!(linktype, 101);
    }
}
