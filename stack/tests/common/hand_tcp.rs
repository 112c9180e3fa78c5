//! One TCP connection driven by hand through a TUN device, for the
//! device-level offload tests of both IP versions (`kernel_offload.rs`
//! over IPv4, `kernel_offload6.rs` over IPv6). The device side is the
//! client at the stack's address, port 40000; a kernel listener is the
//! server. No stack runs: each test sees exactly what the kernel hands
//! over, and the kernel's acknowledgements say what it accepted.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::time::{Duration, Instant};

use etherparse::{
    IpHeaders, IpNumber, Ipv4HeaderSlice, Ipv6HeaderSlice, PacketBuilder, PacketBuilderStep,
    TcpHeaderSlice, TcpOptionElement,
};
use stack::device::gso::{IpVersion, TcpSuperSegment};
use stack::device::tun::{Offload, TunDevice};
use stack::device::{Device, PacketBatch, RxChecksum};

use super::{pattern, NetNs, HOST, HOST6, STACK, STACK6};

pub const CLIENT_PORT: u16 = 40000;
pub const SERVER_PORT: u16 = 5001;
const OUR_SHIFT: u8 = 7;
const ISN: u32 = 0xfff0_0000;

/// Opens the namespace's tun0 as asked.
pub fn open(ns: &NetNs, offload: Offload) -> TunDevice {
    ns.kernel(move || TunDevice::open_with("tun0", 1500, offload))
        .unwrap_or_else(|e| panic!("open tun0 with {offload:?}: {e}"))
}

pub fn batch_for(dev: &TunDevice) -> PacketBatch {
    PacketBatch::new(16, dev.max_packet())
}

/// The IP version a test speaks over tun0: the device at 10.0.0.2 or
/// fd00::2, the kernel at 10.0.0.1 or fd00::1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// An IP header of a [`Family`], as read from the device.
enum IpHeader<'a> {
    V4(Ipv4HeaderSlice<'a>),
    V6(Ipv6HeaderSlice<'a>),
}

impl Family {
    /// The IP header length of what we build: IPv4 without options, IPv6
    /// without extension headers.
    pub const fn ip_header_len(self) -> usize {
        match self {
            Family::V4 => 20,
            Family::V6 => 40,
        }
    }

    /// The MSS over a 1500-byte link: 1500 less the IP and TCP headers.
    pub const fn mss(self) -> u16 {
        (1500 - self.ip_header_len() - 20) as u16
    }

    /// The device's address.
    pub fn stack(self) -> IpAddr {
        match self {
            Family::V4 => STACK.into(),
            Family::V6 => STACK6.into(),
        }
    }

    /// The kernel's address.
    pub fn host(self) -> IpAddr {
        match self {
            Family::V4 => HOST.into(),
            Family::V6 => HOST6.into(),
        }
    }

    fn version(self) -> IpVersion {
        match self {
            Family::V4 => IpVersion::V4,
            Family::V6 => IpVersion::V6,
        }
    }

    /// A packet from the device's address to the kernel's.
    pub fn builder(self) -> PacketBuilderStep<IpHeaders> {
        match self {
            Family::V4 => PacketBuilder::ipv4(STACK.octets(), HOST.octets(), 64),
            Family::V6 => PacketBuilder::ipv6(STACK6.octets(), HOST6.octets(), 64),
        }
    }

    /// `packet`'s IP header, TCP header and payload, if it is TCP over
    /// this IP version.
    fn parse(self, packet: &[u8]) -> Option<(IpHeader<'_>, TcpHeaderSlice<'_>, &[u8])> {
        let ip = match self {
            Family::V4 => {
                let ip = Ipv4HeaderSlice::from_slice(packet).ok()?;
                if ip.protocol() != IpNumber::TCP {
                    return None;
                }
                IpHeader::V4(ip)
            }
            Family::V6 => {
                let ip = Ipv6HeaderSlice::from_slice(packet).ok()?;
                if ip.next_header() != IpNumber::TCP {
                    return None;
                }
                IpHeader::V6(ip)
            }
        };
        let ip_len = match &ip {
            IpHeader::V4(ip) => ip.slice().len(),
            IpHeader::V6(ip) => ip.slice().len(),
        };
        let tcp = TcpHeaderSlice::from_slice(packet.get(ip_len..)?).ok()?;
        let payload = packet.get(ip_len + tcp.slice().len()..)?;
        Some((ip, tcp, payload))
    }

    /// The TCP header of `packet`, with its payload, if it is TCP over
    /// this IP version from the kernel's address, port `from`, to port
    /// `to`.
    pub fn tcp_between(
        self,
        packet: &[u8],
        from: u16,
        to: u16,
    ) -> Option<(TcpHeaderSlice<'_>, &[u8])> {
        let (ip, tcp, payload) = self.parse(packet)?;
        let source = match ip {
            IpHeader::V4(ip) => IpAddr::from(ip.source_addr()),
            IpHeader::V6(ip) => IpAddr::from(ip.source_addr()),
        };
        if source != self.host() || tcp.source_port() != from || tcp.destination_port() != to {
            return None;
        }
        Some((tcp, payload))
    }

    /// Whether the TCP checksum of `packet` verifies in full.
    pub fn tcp_checksum_valid(self, packet: &[u8]) -> bool {
        let (ip, tcp, payload) = self.parse(packet).expect("a TCP packet");
        let sum = match ip {
            IpHeader::V4(ip) => tcp.calc_checksum_ipv4(&ip, payload),
            IpHeader::V6(ip) => tcp.calc_checksum_ipv6(&ip, payload),
        };
        tcp.checksum() == sum.unwrap()
    }

    /// Checks what `checksum` promises about `packet`: an IPv4 header
    /// checksum is always valid; the TCP checksum verifies in full when
    /// it is to be verified, and holds exactly the pseudo-header sum over
    /// the whole TCP length (even of a super-segment) when it is partial.
    pub fn check_rx_checksum(self, packet: &[u8], checksum: RxChecksum) {
        let (ip, ..) = self.parse(packet).expect("a TCP packet");
        let ip_len = match ip {
            IpHeader::V4(ip) => {
                assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
                ip.slice().len()
            }
            IpHeader::V6(ip) => ip.slice().len(),
        };
        match checksum {
            RxChecksum::Unverified | RxChecksum::Verified => {
                assert!(self.tcp_checksum_valid(packet), "{checksum:?}");
            }
            RxChecksum::Partial => {
                let seg = TcpSuperSegment::parse(packet).unwrap();
                assert_eq!(seg.version(), self.version());
                assert_eq!(seg.ip_header_len(), ip_len);
                let at = seg.ip_header_len() + 16;
                assert_eq!(
                    u16::from_be_bytes([packet[at], packet[at + 1]]),
                    seg.partial_checksum()
                );
            }
        }
    }
}

/// One TCP connection driven by hand from the device side: the device is
/// the client at port 40000, a kernel listener the server.
struct HandTcp {
    family: Family,
    dev: TunDevice,
    batch: PacketBatch,
    /// Next sequence number to send, oldest unacknowledged one.
    snd_nxt: u32,
    snd_una: u32,
    /// The kernel's window in bytes (its field scaled by its shift).
    snd_wnd: u32,
    peer_shift: u8,
    rcv_nxt: u32,
    /// What the kernel sent us, in order.
    received: Vec<u8>,
    peer_fin: bool,
    /// Largest packet read and the GSO sizes seen on data.
    largest_rx: usize,
    rx_gso: Vec<u16>,
    rx_checksums: Vec<RxChecksum>,
}

impl HandTcp {
    fn new(family: Family, dev: TunDevice) -> HandTcp {
        HandTcp {
            family,
            batch: batch_for(&dev),
            dev,
            snd_nxt: ISN,
            snd_una: ISN,
            snd_wnd: 0,
            peer_shift: 0,
            rcv_nxt: 0,
            received: Vec::new(),
            peer_fin: false,
            largest_rx: 0,
            rx_gso: Vec::new(),
            rx_checksums: Vec::new(),
        }
    }

    fn segment(&self, seq: u32, payload: &[u8], fin: bool) -> Vec<u8> {
        let mut b = self
            .family
            .builder()
            .tcp(CLIENT_PORT, SERVER_PORT, seq, 0xffff)
            .ack(self.rcv_nxt);
        if !payload.is_empty() {
            b = b.psh();
        }
        if fin {
            b = b.fin();
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    /// Sends the SYN, with MSS and window scale, and waits until it is
    /// acknowledged.
    fn connect(&mut self, deadline: Instant) {
        let mut syn = Vec::new();
        self.family
            .builder()
            .tcp(CLIENT_PORT, SERVER_PORT, ISN, 0xffff)
            .syn()
            .options(&[
                TcpOptionElement::MaximumSegmentSize(self.family.mss()),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(OUR_SHIFT),
            ])
            .unwrap()
            .write(&mut syn, &[])
            .unwrap();
        self.dev.send(&syn).unwrap();
        self.snd_nxt = ISN.wrapping_add(1);
        while self.snd_una != self.snd_nxt {
            assert!(Instant::now() < deadline, "no SYN-ACK");
            self.pump(Duration::from_millis(200));
        }
    }

    /// Reads what the kernel sent within `wait`, updating the state, and
    /// acknowledges new data. Returns whether anything arrived.
    fn pump(&mut self, wait: Duration) -> bool {
        self.dev.recv_batch(&mut self.batch, wait).expect("recv");
        let mut got = false;
        let mut ack_owed = false;
        for i in 0..self.batch.len() {
            let (Some(packet), Some(meta)) = (self.batch.get(i), self.batch.meta(i)) else {
                continue;
            };
            let Some((tcp, payload)) = self.family.tcp_between(packet, SERVER_PORT, CLIENT_PORT)
            else {
                continue;
            };
            got = true;
            self.largest_rx = self.largest_rx.max(packet.len());
            self.family.check_rx_checksum(packet, meta.checksum);
            self.rx_checksums.push(meta.checksum);
            if tcp.syn() {
                self.rcv_nxt = tcp.sequence_number().wrapping_add(1);
                for opt in tcp.options_iterator().flatten() {
                    if let TcpOptionElement::WindowScale(s) = opt {
                        self.peer_shift = s;
                    }
                }
                // RFC 7323 §2.2: the window in a SYN is never scaled.
                self.snd_wnd = u32::from(tcp.window_size());
            } else {
                self.snd_wnd = u32::from(tcp.window_size()) << self.peer_shift;
            }
            if tcp.ack() && tcp.acknowledgment_number().wrapping_sub(self.snd_una) as i32 > 0 {
                self.snd_una = tcp.acknowledgment_number();
            }
            if !payload.is_empty() {
                if let Some(size) = meta.gso_size {
                    self.rx_gso.push(size);
                }
                // In order only; the kernel retransmits anything else.
                if tcp.sequence_number() == self.rcv_nxt {
                    self.received.extend_from_slice(payload);
                    self.rcv_nxt = self.rcv_nxt.wrapping_add(payload.len() as u32);
                }
                ack_owed = true;
            }
            if tcp.fin() && tcp.sequence_number().wrapping_add(payload.len() as u32) == self.rcv_nxt
            {
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                self.peer_fin = true;
                ack_owed = true;
            }
        }
        if ack_owed {
            let ack = self.segment(self.snd_nxt, &[], false);
            self.dev.send(&ack).expect("send ack");
        }
        got
    }

    /// Sends `data` as super-segments of at most `max_payload` bytes and
    /// as large as the kernel's window allows, going back to the oldest
    /// unacknowledged byte if nothing is acknowledged for a while.
    /// Returns the size of each super-segment written.
    fn send_all(&mut self, data: &[u8], max_payload: usize, deadline: Instant) -> Vec<usize> {
        let base = self.snd_una;
        let mut sizes = Vec::new();
        let mut last_progress = Instant::now();
        while (self.snd_una.wrapping_sub(base) as usize) < data.len() {
            assert!(Instant::now() < deadline, "kernel stopped acknowledging");
            let sent = self.snd_nxt.wrapping_sub(base) as usize;
            let in_flight = self.snd_nxt.wrapping_sub(self.snd_una) as usize;
            let room = (self.snd_wnd as usize).saturating_sub(in_flight);
            let len = room.min(max_payload).min(data.len() - sent);
            if len > 0 {
                let packet = self.segment(self.snd_nxt, &data[sent..sent + len], false);
                self.dev
                    .send_tso(&packet, self.family.mss())
                    .expect("send_tso");
                sizes.push(len);
                self.snd_nxt = self.snd_nxt.wrapping_add(len as u32);
            }
            let una = self.snd_una;
            self.pump(Duration::from_millis(200));
            if self.snd_una != una {
                last_progress = Instant::now();
            } else if last_progress.elapsed() > Duration::from_secs(1) {
                self.snd_nxt = self.snd_una;
                last_progress = Instant::now();
            }
        }
        sizes
    }
}

/// What one [`echo_through_kernel`] saw.
struct Transfer {
    /// Payload bytes of each super-segment handed to `send_tso`.
    tx_sizes: Vec<usize>,
    largest_rx: usize,
    rx_gso: Vec<u16>,
    /// The checksum state of every TCP packet the kernel sent.
    rx_checksums: Vec<RxChecksum>,
}

/// Connects by hand over `family` to a kernel listener through `dev`,
/// sends it 64 KiB with `send_tso` in super-segments of up to
/// `max_payload` bytes, and has the kernel echo them back. Asserts that
/// both directions arrive intact.
fn echo_through_kernel(family: Family, ns: &NetNs, dev: TunDevice, max_payload: usize) -> Transfer {
    let listener =
        ns.kernel(move || TcpListener::bind((family.host(), SERVER_PORT)).expect("bind"));
    const LEN: usize = 64 * 1024;
    let data = pattern(LEN, 3);
    // The kernel reads to our FIN, then echoes everything back and closes.
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).expect("read");
        conn.write_all(&got).expect("echo");
        got
    });

    let mut hand = HandTcp::new(family, dev);
    let deadline = Instant::now() + Duration::from_secs(20);
    // Handshake: SYN, read SYN-ACK, ACK it.
    hand.connect(deadline);
    let ack = hand.segment(hand.snd_nxt, &[], false);
    hand.dev.send(&ack).unwrap();

    let tx_sizes = hand.send_all(&data, max_payload, deadline);
    let fin = hand.segment(hand.snd_nxt, &[], true);
    hand.dev.send(&fin).unwrap();
    hand.snd_nxt = hand.snd_nxt.wrapping_add(1);

    while !(hand.peer_fin && hand.snd_una == hand.snd_nxt) {
        assert!(
            Instant::now() < deadline,
            "echo incomplete: {} of {LEN} bytes",
            hand.received.len()
        );
        hand.pump(Duration::from_millis(200));
    }
    let got = server.join().expect("kernel side");
    assert_eq!(got.len(), LEN);
    assert!(got == data, "the kernel received different bytes");
    assert_eq!(hand.received.len(), LEN);
    assert!(hand.received == data, "the echo differs");
    let _ = writeln!(
        std::io::stderr(),
        "{family:?} tx super-segments {tx_sizes:?}; largest rx packet {}, rx gso sizes {:?}",
        hand.largest_rx,
        hand.rx_gso
    );
    Transfer {
        tx_sizes,
        largest_rx: hand.largest_rx,
        rx_gso: hand.rx_gso,
        rx_checksums: hand.rx_checksums,
    }
}

/// Echoes 64 KiB over `family` through tun0 opened with offloads, in
/// super-segments as large as the device takes. Asserts that each went to
/// the kernel in one write, whole, and that the echo came back as the
/// kernel's own super-segments, every checksum left to the device.
pub fn echo_with_tso(family: Family, ns: &NetNs) {
    let dev = open(ns, Offload::On);
    let offloads = dev.offloads();
    let tso = match family {
        Family::V4 => offloads.tso4,
        Family::V6 => offloads.tso6,
    };
    assert!(tso, "no TSO for {family:?}: {offloads}");
    let mss = family.mss();
    // The largest packet the device takes, less both headers.
    let max_payload = dev.max_segment() - family.ip_header_len() - 20;
    let t = echo_through_kernel(family, ns, dev, max_payload);
    // Each super-segment went to the kernel in one write, whole.
    assert!(
        t.tx_sizes.iter().any(|&n| n > 10 * usize::from(mss)),
        "no large super-segment was sent: {:?}",
        t.tx_sizes
    );
    // And the echo came back as the kernel's own super-segments.
    assert!(t.largest_rx > 1500, "no receive super-segment");
    assert!(t.rx_gso.contains(&mss), "gso sizes {:?}", t.rx_gso);
    // The kernel's TCP leaves every checksum to the device.
    assert!(
        t.rx_checksums.iter().all(|&c| c == RxChecksum::Partial),
        "{:?}",
        t.rx_checksums
    );
}

/// Echoes 64 KiB over `family` through tun0 opened without offloads, in
/// super-segments of 8 MSS: bigger than the device takes, so `send_tso`
/// splits them with gso.rs, and the kernel must accept every piece's
/// checksums. Asserts that nothing larger than the MTU came back, and
/// every checksum was the kernel's own.
pub fn echo_segmented_in_software(family: Family, ns: &NetNs) {
    let dev = open(ns, Offload::Off);
    assert_eq!(dev.max_segment(), 1500);
    let mss = usize::from(family.mss());
    let t = echo_through_kernel(family, ns, dev, 8 * mss);
    assert!(t.tx_sizes.iter().any(|&n| n > mss));
    assert!(t.largest_rx <= 1500);
    assert!(t.rx_gso.is_empty());
    assert!(t.rx_checksums.iter().all(|&c| c == RxChecksum::Unverified));
}
