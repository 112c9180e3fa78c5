//! IPv6 TCP segmentation offload against the Linux kernel, at the device
//! level (no stack), as `kernel_offload.rs` does for IPv4: a private
//! namespace's `tun0`, with the kernel's side at fd00::1/64, opened with
//! `IFF_VNET_HDR`, and TCP driven by hand from the device side at
//! fd00::2, so each test sees exactly what the kernel hands over (its own
//! TCPV6 super-segments, checksums partial) and what it accepts (ours,
//! whole with TSO6 or segmented in software by `gso.rs` without).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv6Addr, TcpListener};
use std::time::{Duration, Instant};

use common::{can_run, pattern, NetNs};
use etherparse::{Ipv6HeaderSlice, PacketBuilder, TcpHeaderSlice, TcpOptionElement};
use stack::device::gso::{IpVersion, TcpSuperSegment};
use stack::device::tun::{Offload, Offloads, TunDevice};
use stack::device::{Device, PacketBatch, RxChecksum};

const HOST6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const STACK6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

/// A namespace whose tun0 also has fd00::1/64, without duplicate address
/// detection so the kernel can bind and answer at once.
fn netns6(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    // A namespace may inherit IPv6 disabled; turn it on (best effort: a
    // kernel without the knob has it on).
    let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0"]);
    let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.tun0.disable_ipv6=0"]);
    ns.ip(&["-6", "addr", "add", "fd00::1/64", "dev", "tun0", "nodad"]);
    ns
}

/// Opens the namespace's tun0 as asked.
fn open(ns: &NetNs, offload: Offload) -> TunDevice {
    ns.kernel(move || TunDevice::open_with("tun0", 1500, offload))
        .unwrap_or_else(|e| panic!("open tun0 with {offload:?}: {e}"))
}

fn batch_for(dev: &TunDevice) -> PacketBatch {
    PacketBatch::new(16, dev.max_packet())
}

#[test]
fn tso6_is_granted_with_tso4() {
    if !can_run("tso6_is_granted_with_tso4") {
        return;
    }
    let ns = netns6("off6grant");
    let dev = open(&ns, Offload::On);
    assert_eq!(
        dev.offloads(),
        Offloads {
            csum: true,
            tso4: true,
            tso6: true
        }
    );
    assert_eq!(dev.offloads().to_string(), "checksum + TSO4 + TSO6");
    assert_eq!(dev.max_packet(), 65535);
    assert_eq!(dev.max_segment(), 65535);
    drop(dev);
    let dev = open(&ns, Offload::Auto);
    assert!(dev.offloads().tso6);
}

/// Checks what `meta` promises about `packet`: the TCP checksum verifies
/// in full when it is to be verified, and holds exactly the IPv6
/// pseudo-header sum over the whole TCP length (even of a super-segment)
/// when it is partial.
fn check_rx_checksum(packet: &[u8], checksum: RxChecksum) {
    match checksum {
        RxChecksum::Unverified | RxChecksum::Verified => {
            assert!(tcp_checksum_valid(packet), "{checksum:?}");
        }
        RxChecksum::Partial => {
            let seg = TcpSuperSegment::parse(packet).unwrap();
            assert_eq!(seg.version(), IpVersion::V6);
            assert_eq!(seg.ip_header_len(), 40);
            assert_eq!(
                u16::from_be_bytes([packet[56], packet[57]]),
                seg.partial_checksum()
            );
        }
    }
}

/// Whether the TCP checksum of the IPv6 `packet` verifies in full.
fn tcp_checksum_valid(packet: &[u8]) -> bool {
    let ip = Ipv6HeaderSlice::from_slice(packet).unwrap();
    let tcp = TcpHeaderSlice::from_slice(&packet[40..]).unwrap();
    let payload = &packet[40 + tcp.slice().len()..];
    tcp.checksum() == tcp.calc_checksum_ipv6(&ip, payload).unwrap()
}

/// The TCP header of `packet` if it is IPv6 + TCP between `from` and
/// `to` ports, with its payload.
fn tcp_between(packet: &[u8], from: u16, to: u16) -> Option<(TcpHeaderSlice<'_>, &[u8])> {
    let ip = Ipv6HeaderSlice::from_slice(packet).ok()?;
    if ip.next_header() != etherparse::IpNumber::TCP || ip.source_addr() != HOST6 {
        return None;
    }
    let tcp = TcpHeaderSlice::from_slice(packet.get(40..)?).ok()?;
    if tcp.source_port() != from || tcp.destination_port() != to {
        return None;
    }
    let payload = packet.get(40 + tcp.slice().len()..)?;
    Some((tcp, payload))
}

const CLIENT_PORT: u16 = 40000;
const SERVER_PORT: u16 = 5001;
/// The MSS over a 1500-byte link: 1500 - 40 (IPv6) - 20 (TCP).
const MSS: u16 = 1440;
const OUR_SHIFT: u8 = 7;
const ISN: u32 = 0xfff0_0000;

/// One TCP connection over IPv6 driven by hand from the device side: the
/// device is the client at [fd00::2]:40000, a kernel listener the server.
struct HandTcp6 {
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

impl HandTcp6 {
    fn segment(&self, seq: u32, payload: &[u8], fin: bool) -> Vec<u8> {
        let mut b = PacketBuilder::ipv6(STACK6.octets(), HOST6.octets(), 64)
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
            let Some((tcp, payload)) = tcp_between(packet, SERVER_PORT, CLIENT_PORT) else {
                continue;
            };
            got = true;
            self.largest_rx = self.largest_rx.max(packet.len());
            check_rx_checksum(packet, meta.checksum);
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
                self.dev.send_tso(&packet, MSS).expect("send_tso");
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

/// Connects by hand to a kernel listener on [fd00::1] through `dev`,
/// sends it 64 KiB with `send_tso` in super-segments of up to
/// `max_payload` bytes, and has the kernel echo them back. Asserts that
/// both directions arrive intact.
fn echo_through_kernel(ns: &NetNs, dev: TunDevice, max_payload: usize) -> Transfer {
    let listener = ns.kernel(|| TcpListener::bind((HOST6, SERVER_PORT)).expect("bind"));
    const LEN: usize = 64 * 1024;
    let data = pattern(LEN, 5);
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

    let mut hand = HandTcp6 {
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
    };
    let deadline = Instant::now() + Duration::from_secs(20);

    // Handshake: SYN with MSS and window scale, read SYN-ACK, ACK it.
    let mut syn = Vec::new();
    PacketBuilder::ipv6(STACK6.octets(), HOST6.octets(), 64)
        .tcp(CLIENT_PORT, SERVER_PORT, ISN, 0xffff)
        .syn()
        .options(&[
            TcpOptionElement::MaximumSegmentSize(MSS),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(OUR_SHIFT),
        ])
        .unwrap()
        .write(&mut syn, &[])
        .unwrap();
    hand.dev.send(&syn).unwrap();
    hand.snd_nxt = ISN.wrapping_add(1);
    while hand.snd_una != hand.snd_nxt {
        assert!(Instant::now() < deadline, "no SYN-ACK");
        hand.pump(Duration::from_millis(200));
    }
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
        "v6 tx super-segments {tx_sizes:?}; largest rx packet {}, rx gso sizes {:?}",
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

#[test]
fn tso6_super_segments_reach_a_kernel_socket_intact() {
    if !can_run("tso6_super_segments_reach_a_kernel_socket_intact") {
        return;
    }
    let ns = netns6("off6tso");
    let dev = open(&ns, Offload::On);
    assert!(dev.offloads().tso6);
    // The largest IPv6 packet the device takes, less both headers.
    let max_payload = dev.max_segment() - 60;
    let t = echo_through_kernel(&ns, dev, max_payload);
    // Each super-segment went to the kernel in one write, whole.
    assert!(
        t.tx_sizes.iter().any(|&n| n > 10 * usize::from(MSS)),
        "no large super-segment was sent: {:?}",
        t.tx_sizes
    );
    // And the echo came back as the kernel's own TCPV6 super-segments.
    assert!(t.largest_rx > 1500, "no receive super-segment");
    assert!(t.rx_gso.contains(&MSS), "gso sizes {:?}", t.rx_gso);
    // The kernel's TCP leaves every checksum to the device.
    assert!(
        t.rx_checksums.iter().all(|&c| c == RxChecksum::Partial),
        "{:?}",
        t.rx_checksums
    );
}

#[test]
fn plain_device_segments_v6_super_segments_in_software() {
    if !can_run("plain_device_segments_v6_super_segments_in_software") {
        return;
    }
    let ns = netns6("off6soft");
    let dev = open(&ns, Offload::Off);
    assert_eq!(dev.max_segment(), 1500);
    // Bigger than the device takes: send_tso splits them with gso.rs, and
    // the kernel must accept every piece's IPv6 checksums.
    let t = echo_through_kernel(&ns, dev, 8 * usize::from(MSS));
    assert!(t.tx_sizes.iter().any(|&n| n > usize::from(MSS)));
    assert!(t.largest_rx <= 1500);
    assert!(t.rx_gso.is_empty());
    assert!(t.rx_checksums.iter().all(|&c| c == RxChecksum::Unverified));
}

/// Sends a 3-MSS super-segment with ACK set to a closed port on the
/// kernel with `send_tso`, and returns the RSTs the kernel answers with.
/// RFC 9293 §3.10.7.1: a segment to a closed port that carries an ACK
/// draws a RST with SEG.SEQ = SEG.ACK; the kernel replies only to
/// packets whose checksum it accepted, so a RST proves it did.
fn rsts_for_super_segment(dev: &TunDevice) -> Vec<(u32, bool)> {
    const CLOSED: u16 = 9;
    const ACK: u32 = 0x1234_5678;
    let mut packet = Vec::new();
    PacketBuilder::ipv6(STACK6.octets(), HOST6.octets(), 64)
        .tcp(CLIENT_PORT, CLOSED, 1000, 0xffff)
        .ack(ACK)
        .write(&mut packet, &pattern(3 * usize::from(MSS), 1))
        .unwrap();
    // send_tso ignores the checksum it is given; spoil it to show that.
    packet[56] ^= 0xff;
    dev.send_tso(&packet, MSS).expect("send_tso");
    let mut batch = batch_for(dev);
    let mut rsts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        dev.recv_batch(&mut batch, Duration::from_millis(100))
            .expect("recv");
        for (p, meta) in batch.iter_with_meta() {
            if let Some((tcp, _)) = tcp_between(p, CLOSED, CLIENT_PORT) {
                check_rx_checksum(p, meta.checksum);
                assert!(tcp.rst(), "not a RST");
                assert_eq!(tcp.sequence_number(), ACK);
                rsts.push((tcp.sequence_number(), tcp.ack()));
            }
        }
        if !rsts.is_empty() {
            // Give the kernel a moment for further RSTs (one per piece
            // if it segmented), rate limits permitting.
            std::thread::sleep(Duration::from_millis(200));
            dev.recv_batch(&mut batch, Duration::ZERO).expect("recv");
            for (p, meta) in batch.iter_with_meta() {
                if let Some((tcp, _)) = tcp_between(p, CLOSED, CLIENT_PORT) {
                    check_rx_checksum(p, meta.checksum);
                    rsts.push((tcp.sequence_number(), tcp.ack()));
                }
            }
            break;
        }
    }
    let _ = writeln!(std::io::stderr(), "RSTs from the kernel: {rsts:?}");
    rsts
}

#[test]
fn kernel_resets_a_tso6_super_segment_to_a_closed_port() {
    if !can_run("kernel_resets_a_tso6_super_segment_to_a_closed_port") {
        return;
    }
    let ns = netns6("off6rst");
    let dev = open(&ns, Offload::On);
    assert!(dev.offloads().tso6);
    let rsts = rsts_for_super_segment(&dev);
    // One write, one packet for the kernel: it delivers a super-segment
    // locally without segmenting it, so one RST answers all 3 MSS.
    assert_eq!(rsts.len(), 1, "{rsts:?}");
    // A RST answering a segment with ACK carries no ACK of its own.
    assert!(rsts.iter().all(|&(_, ack)| !ack), "{rsts:?}");
}

#[test]
fn kernel_resets_a_software_segmented_v6_super_segment() {
    if !can_run("kernel_resets_a_software_segmented_v6_super_segment") {
        return;
    }
    let ns = netns6("off6rsts");
    let dev = open(&ns, Offload::Off);
    let rsts = rsts_for_super_segment(&dev);
    // Three packets of one MSS each, every one with a checksum the
    // kernel accepted: three RSTs (TCP RSTs are not rate limited).
    assert_eq!(rsts.len(), 3, "{rsts:?}");
    assert!(rsts.iter().all(|&(_, ack)| !ack), "{rsts:?}");
}
