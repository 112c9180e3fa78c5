//! A device wrapper that keeps a one-line summary of each of the last few
//! hundred packets in and out ([`PacketLog`]), as tcpdump prints them, for
//! a live view of the traffic (the demo's page) without a capture file.
//!
//! What is logged is what crosses the device: a super-segment sent with
//! `send_tso` or received from an offload TUN device is one entry of up to
//! 64 KiB, as tcpdump on the interface shows it. Packets are summarised
//! with etherparse's lax slicer, which checks no checksum (ours may be
//! left to the device) and accepts what it cannot fully parse: a summary
//! never fails, it only says less ("IP, length N").
//!
//! Cost: one parse of the headers and one short lock per packet, on the
//! thread that moves it; the log holds at most its capacity of entries, a
//! few dozen bytes each, so memory stays bounded.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use parking_lot::Mutex;

use super::{Device, PacketBatch};

/// Which way a packet crossed the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Read from the device: the peer's.
    In,
    /// Written to the device: ours.
    Out,
}

impl Direction {
    /// `"in"` or `"out"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// What a TCP segment's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSummary {
    /// The control bits as tcpdump prints them: `S`, `S.`, `.`, `P.`,
    /// `F.`, `R`, ... (`.` is ACK).
    pub flags: Flags,
    pub seq: u32,
    /// Present when the ACK bit is set.
    pub ack: Option<u32>,
    /// The raw window field (unscaled).
    pub window: u16,
}

/// A TCP segment's control bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub u8);

impl fmt::Display for Flags {
    /// tcpdump's letters, in its order: F S R P U E W, then `.` for ACK.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LETTERS: [(u8, char); 7] = [
            (0x01, 'F'),
            (0x02, 'S'),
            (0x04, 'R'),
            (0x08, 'P'),
            (0x20, 'U'),
            (0x40, 'E'),
            (0x80, 'W'),
        ];
        for (bit, letter) in LETTERS {
            if self.0 & bit != 0 {
                write!(f, "{letter}")?;
            }
        }
        if self.0 & 0x10 != 0 {
            write!(f, ".")?;
        }
        Ok(())
    }
}

/// The transport part of a packet's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp(TcpSummary),
    Udp,
    /// ICMP (v4 or v6) with its type and code.
    Icmp {
        v6: bool,
        kind: u8,
        code: u8,
    },
    /// Anything else, or a header that did not parse: the IP protocol.
    Other(u8),
}

/// One packet, summarised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketSummary {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The ports, for TCP and UDP.
    pub ports: Option<(u16, u16)>,
    pub transport: Transport,
    /// The payload after the TCP or UDP header, else the IP payload.
    pub len: usize,
}

impl PacketSummary {
    /// Summarises an IPv4 or IPv6 packet; `None` when even its IP header
    /// cannot be read.
    pub fn of(packet: &[u8]) -> Option<PacketSummary> {
        let sliced = LaxSlicedPacket::from_ip(packet).ok()?;
        let (src, dst, protocol, ip_payload) = match sliced.net? {
            LaxNetSlice::Ipv4(ip) => (
                IpAddr::V4(ip.header().source_addr()),
                IpAddr::V4(ip.header().destination_addr()),
                ip.payload().ip_number.0,
                ip.payload().payload.len(),
            ),
            LaxNetSlice::Ipv6(ip) => (
                IpAddr::V6(ip.header().source_addr()),
                IpAddr::V6(ip.header().destination_addr()),
                ip.payload().ip_number.0,
                ip.payload().payload.len(),
            ),
            LaxNetSlice::Arp(_) => return None,
        };
        let (ports, transport, len) = match sliced.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                let ack = tcp.ack().then(|| tcp.acknowledgment_number());
                let flags = tcp.slice().get(13).copied().unwrap_or(0);
                (
                    Some((tcp.source_port(), tcp.destination_port())),
                    Transport::Tcp(TcpSummary {
                        flags: Flags(flags),
                        seq: tcp.sequence_number(),
                        ack,
                        window: tcp.window_size(),
                    }),
                    tcp.payload().len(),
                )
            }
            Some(TransportSlice::Udp(udp)) => (
                Some((udp.source_port(), udp.destination_port())),
                Transport::Udp,
                udp.payload().len(),
            ),
            Some(TransportSlice::Icmpv4(icmp)) => (
                None,
                Transport::Icmp {
                    v6: false,
                    kind: icmp.type_u8(),
                    code: icmp.code_u8(),
                },
                ip_payload,
            ),
            Some(TransportSlice::Icmpv6(icmp)) => (
                None,
                Transport::Icmp {
                    v6: true,
                    kind: icmp.type_u8(),
                    code: icmp.code_u8(),
                },
                ip_payload,
            ),
            _ => (None, Transport::Other(protocol), ip_payload),
        };
        Some(PacketSummary {
            src,
            dst,
            ports,
            transport,
            len,
        })
    }

    /// The source with its port, for TCP and UDP.
    pub fn src_addr(&self) -> Option<SocketAddr> {
        self.ports.map(|(p, _)| SocketAddr::new(self.src, p))
    }

    /// The destination with its port, for TCP and UDP.
    pub fn dst_addr(&self) -> Option<SocketAddr> {
        self.ports.map(|(_, p)| SocketAddr::new(self.dst, p))
    }

    /// `"tcp"`, `"udp"`, `"icmp"`, `"icmpv6"` or `"ip"`.
    pub fn protocol(&self) -> &'static str {
        match self.transport {
            Transport::Tcp(_) => "tcp",
            Transport::Udp => "udp",
            Transport::Icmp { v6: false, .. } => "icmp",
            Transport::Icmp { v6: true, .. } => "icmpv6",
            Transport::Other(_) => "ip",
        }
    }
}

/// An address as tcpdump writes it: `10.0.0.1.80`, `fd00::1.80`.
struct Endpoint(IpAddr, Option<u16>);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(port) => write!(f, "{}.{port}", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Display for PacketSummary {
    /// The packet as `tcpdump -n -S` prints it, without the timestamp:
    /// `IP 10.0.0.1.53412 > 10.0.0.2.80: Flags [S], seq 1, win 64240,
    /// length 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = if self.src.is_ipv6() { "IP6" } else { "IP" };
        let (sport, dport) = self.ports.unzip();
        write!(
            f,
            "{ip} {} > {}: ",
            Endpoint(self.src, sport),
            Endpoint(self.dst, dport)
        )?;
        match self.transport {
            Transport::Tcp(tcp) => {
                write!(f, "Flags [{}], seq {}", tcp.flags, tcp.seq)?;
                if self.len > 0 {
                    write!(f, ":{}", tcp.seq.wrapping_add(self.len as u32))?;
                }
                if let Some(ack) = tcp.ack {
                    write!(f, ", ack {ack}")?;
                }
                write!(f, ", win {}, length {}", tcp.window, self.len)
            }
            Transport::Udp => write!(f, "UDP, length {}", self.len),
            Transport::Icmp { v6, kind, code } => {
                let icmp = if v6 { "ICMP6" } else { "ICMP" };
                let name = icmp_name(v6, kind);
                write!(f, "{icmp} {name} ({kind}/{code}), length {}", self.len)
            }
            Transport::Other(proto) => write!(f, "ip-proto-{proto}, length {}", self.len),
        }
    }
}

/// What an ICMP (RFC 792) or ICMPv6 (RFC 4443) type is called, for the
/// types a host sees: its errors and echoes, neighbor and router
/// discovery (RFC 4861), which a Linux peer sends as its link comes up,
/// and multicast listener messages (MLD, RFC 2710 and RFC 3810 v2).
fn icmp_name(v6: bool, kind: u8) -> &'static str {
    match (v6, kind) {
        (false, 8) | (true, 128) => "echo request",
        (false, 0) | (true, 129) => "echo reply",
        (false, 3) | (true, 1) => "unreachable",
        (false, 11) | (true, 3) => "time exceeded",
        (false, 12) | (true, 4) => "parameter problem",
        (false, 5) | (true, 137) => "redirect",
        (true, 2) => "packet too big",
        (true, 130) => "multicast listener query",
        (true, 131) | (true, 143) => "multicast listener report",
        (true, 132) => "multicast listener done",
        (true, 133) => "router solicitation",
        (true, 134) => "router advertisement",
        (true, 135) => "neighbor solicitation",
        (true, 136) => "neighbor advertisement",
        _ => "type",
    }
}

/// One logged packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketRecord {
    /// Its place in the log: one more than the packet before.
    pub seq: u64,
    /// When it crossed the device, since the Unix epoch.
    pub at: Duration,
    pub dir: Direction,
    /// `None` for a packet whose IP header could not be read.
    pub summary: Option<PacketSummary>,
    /// The whole packet's length.
    pub bytes: usize,
}

impl PacketRecord {
    /// The time of day (UTC) as tcpdump prints it: `09:04:02.123456`.
    pub fn time_of_day(&self) -> String {
        let secs = self.at.as_secs() % 86_400;
        format!(
            "{:02}:{:02}:{:02}.{:06}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            self.at.subsec_micros()
        )
    }
}

impl fmt::Display for PacketRecord {
    /// A tcpdump line: time, direction, then the summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.dir {
            Direction::In => "In ",
            Direction::Out => "Out",
        };
        write!(f, "{} {dir} ", self.time_of_day())?;
        match &self.summary {
            Some(s) => write!(f, "{s}"),
            None => write!(f, "unreadable packet, length {}", self.bytes),
        }
    }
}

/// The last `capacity` packets; cheap to clone (all clones share it).
#[derive(Clone)]
pub struct PacketLog {
    ring: Arc<Mutex<Ring>>,
}

struct Ring {
    entries: VecDeque<PacketRecord>,
    capacity: usize,
    next_seq: u64,
}

impl fmt::Debug for PacketLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ring = self.ring.lock();
        f.debug_struct("PacketLog")
            .field("capacity", &ring.capacity)
            .field("logged", &ring.next_seq)
            .finish()
    }
}

impl PacketLog {
    /// A log keeping the last `capacity` packets (at least one).
    pub fn new(capacity: usize) -> PacketLog {
        let capacity = capacity.max(1);
        PacketLog {
            ring: Arc::new(Mutex::new(Ring {
                entries: VecDeque::with_capacity(capacity),
                capacity,
                next_seq: 0,
            })),
        }
    }

    /// `device`, logging every packet it carries into this log.
    pub fn wrap<D: Device>(&self, device: D) -> LoggedDevice<D> {
        LoggedDevice {
            inner: device,
            log: self.clone(),
        }
    }

    /// Logs `packet` as crossing the device `dir`-wards now.
    pub fn record(&self, dir: Direction, packet: &[u8]) {
        self.record_all(dir, [packet]);
    }

    /// Logs `packets` (a received batch) as crossing the device now: one
    /// clock reading and one lock for them all.
    pub fn record_all<'a>(&self, dir: Direction, packets: impl IntoIterator<Item = &'a [u8]>) {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let mut ring = self.ring.lock();
        for packet in packets {
            if ring.entries.len() == ring.capacity {
                ring.entries.pop_front();
            }
            let seq = ring.next_seq;
            ring.next_seq += 1;
            ring.entries.push_back(PacketRecord {
                seq,
                at,
                dir,
                summary: PacketSummary::of(packet),
                bytes: packet.len(),
            });
        }
    }

    /// The packets logged from `since` on that are still kept, oldest
    /// first, and the `since` to ask with next time.
    pub fn since(&self, since: u64) -> (Vec<PacketRecord>, u64) {
        let ring = self.ring.lock();
        let kept = ring
            .entries
            .iter()
            .filter(|r| r.seq >= since)
            .cloned()
            .collect();
        (kept, ring.next_seq)
    }
}

/// A [`Device`] whose packets go into a [`PacketLog`] too.
pub struct LoggedDevice<D> {
    inner: D,
    log: PacketLog,
}

impl<D: Device> Device for LoggedDevice<D> {
    fn recv_batch(&self, batch: &mut PacketBatch, timeout: Duration) -> io::Result<usize> {
        let n = self.inner.recv_batch(batch, timeout)?;
        if n > 0 {
            self.log.record_all(Direction::In, batch.iter());
        }
        Ok(n)
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        self.log.record(Direction::Out, packet);
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

    /// Logs the super-segment as one packet, as sent.
    fn send_tso(&self, packet: &[u8], mss: u16) -> io::Result<()> {
        self.log.record(Direction::Out, packet);
        self.inner.send_tso(packet, mss)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::device::mem::MemPair;

    /// A TCP/IPv4 packet with these fields (checksums left zero: the
    /// summary does not check them).
    fn tcp4(flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        let total = u16::try_from(40 + payload.len()).unwrap_or(u16::MAX);
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        p[20..22].copy_from_slice(&53412u16.to_be_bytes());
        p[22..24].copy_from_slice(&80u16.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[28..32].copy_from_slice(&ack.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p[34..36].copy_from_slice(&64240u16.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn tcp_segments_read_as_tcpdump_prints_them() {
        let syn = PacketSummary::of(&tcp4(0x02, 1000, 0, b"")).expect("parses");
        assert_eq!(
            syn.to_string(),
            "IP 10.0.0.1.53412 > 10.0.0.2.80: Flags [S], seq 1000, win 64240, length 0"
        );
        assert_eq!(
            syn.src_addr(),
            Some(SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 53412)))
        );
        let data = PacketSummary::of(&tcp4(0x18, 1001, 7, b"hello")).expect("parses");
        assert_eq!(
            data.to_string(),
            "IP 10.0.0.1.53412 > 10.0.0.2.80: Flags [P.], seq 1001:1006, ack 7, win 64240, length 5"
        );
        assert_eq!(Flags(0x12).to_string(), "S.");
        assert_eq!(Flags(0x11).to_string(), "F.");
        assert_eq!(Flags(0x04).to_string(), "R");
    }

    #[test]
    fn icmp_types_a_linux_peer_sends_have_names() {
        let icmp = |v6, kind, code| PacketSummary {
            src: Ipv6Addr::UNSPECIFIED.into(),
            dst: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2).into(),
            ports: None,
            transport: Transport::Icmp { v6, kind, code },
            len: 8,
        };
        assert_eq!(
            icmp(true, 133, 0).to_string(),
            "IP6 :: > ff02::2: ICMP6 router solicitation (133/0), length 8"
        );
        assert!(icmp(true, 143, 0)
            .to_string()
            .contains("ICMP6 multicast listener report (143/0)"));
        assert!(icmp(true, 129, 0).to_string().contains("ICMP6 echo reply"));
        // The same number means another thing in each family.
        assert!(icmp(false, 3, 1)
            .to_string()
            .contains("ICMP unreachable (3/1)"));
        assert!(icmp(true, 3, 0)
            .to_string()
            .contains("ICMP6 time exceeded (3/0)"));
        assert!(icmp(true, 200, 0)
            .to_string()
            .contains("ICMP6 type (200/0)"));
    }

    #[test]
    fn garbage_is_logged_as_unreadable_not_refused() {
        assert_eq!(PacketSummary::of(b"\x45"), None);
        assert_eq!(PacketSummary::of(b""), None);
        let log = PacketLog::new(4);
        log.record(Direction::In, b"\x60 nonsense");
        let (kept, next) = log.since(0);
        assert_eq!(next, 1);
        assert!(
            kept[0]
                .to_string()
                .ends_with("unreadable packet, length 10"),
            "{}",
            kept[0]
        );
    }

    #[test]
    fn the_log_keeps_the_last_packets_and_resumes_where_asked() {
        let log = PacketLog::new(3);
        for seq in 0..5 {
            log.record(Direction::Out, &tcp4(0x10, seq, 1, b""));
        }
        let (kept, next) = log.since(0);
        assert_eq!(next, 5);
        assert_eq!(kept.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3, 4]);
        let (kept, next) = log.since(4);
        assert_eq!((kept.len(), next), (1, 5));
        assert_eq!(log.since(5).0.len(), 0);
    }

    #[test]
    fn a_logged_device_logs_both_ways_and_passes_everything_on() {
        let (a, b) = MemPair::new(8, 1500);
        let log = PacketLog::new(16);
        let a = log.wrap(a);
        a.send(&tcp4(0x02, 1, 0, b"")).expect("send");
        b.send(&tcp4(0x12, 9, 2, b"")).expect("send");
        let mut batch = PacketBatch::new(4, 1500);
        assert_eq!(
            a.recv_batch(&mut batch, Duration::from_secs(1))
                .expect("recv"),
            1
        );
        assert_eq!(b.recv_batch(&mut batch, Duration::ZERO).expect("recv"), 1);
        let (kept, _) = log.since(0);
        let dirs: Vec<_> = kept.iter().map(|r| r.dir).collect();
        assert_eq!(dirs, [Direction::Out, Direction::In]);
        assert!(
            kept[1].to_string().contains("Flags [S.], seq 9, ack 2"),
            "{}",
            kept[1]
        );
    }
}
