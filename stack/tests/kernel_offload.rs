//! The offload TUN device against the Linux kernel, at the device level
//! (no stack): a private namespace's `tun0` opened with `IFF_VNET_HDR`,
//! and packets read and written by hand, so each test sees exactly what
//! the kernel hands over and what it accepts.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{can_run, pattern, NetNs, HOST, STACK};
use etherparse::{
    Icmpv4Slice, Icmpv4Type, Ipv4HeaderSlice, PacketBuilder, TcpHeaderSlice, TcpOptionElement,
};
use stack::device::gso::TcpSuperSegment;
use stack::device::tun::{Offload, Offloads, TunDevice};
use stack::device::{Device, PacketBatch, RxChecksum, RxMeta};

/// Opens the namespace's tun0 as asked.
fn open(ns: &NetNs, offload: Offload) -> TunDevice {
    ns.kernel(move || TunDevice::open_with("tun0", 1500, offload))
        .unwrap_or_else(|e| panic!("open tun0 with {offload:?}: {e}"))
}

fn batch_for(dev: &TunDevice) -> PacketBatch {
    PacketBatch::new(16, dev.max_packet())
}

/// Answers every ICMP echo request to 10.0.0.2 until `stop`, writing
/// the reply with `send` (an all-zero virtio-net header on an offload
/// device). Returns the metadata of each request.
fn answer_pings(dev: Arc<TunDevice>, stop: Arc<AtomicBool>) -> JoinHandle<Vec<RxMeta>> {
    std::thread::spawn(move || {
        let mut batch = batch_for(&dev);
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            dev.recv_batch(&mut batch, Duration::from_millis(20))
                .expect("recv");
            for (packet, meta) in batch.iter_with_meta() {
                let Some(reply) = echo_reply(packet) else {
                    continue;
                };
                seen.push(meta);
                dev.send(&reply).expect("send reply");
            }
        }
        seen
    })
}

fn echo_reply(packet: &[u8]) -> Option<Vec<u8>> {
    let ip = Ipv4HeaderSlice::from_slice(packet).ok()?;
    if ip.protocol() != etherparse::IpNumber::ICMP || ip.destination_addr() != STACK {
        return None;
    }
    let icmp = Icmpv4Slice::from_slice(packet.get(ip.slice().len()..)?).ok()?;
    let Icmpv4Type::EchoRequest(echo) = icmp.icmp_type() else {
        return None;
    };
    let mut out = Vec::new();
    PacketBuilder::ipv4(STACK.octets(), ip.source(), 64)
        .icmpv4_echo_reply(echo.id, echo.seq)
        .write(&mut out, icmp.payload())
        .ok()?;
    Some(out)
}

fn ping_three(ns: &NetNs, dev: TunDevice) -> Vec<RxMeta> {
    let dev = Arc::new(dev);
    let stop = Arc::new(AtomicBool::new(false));
    let responder = answer_pings(dev.clone(), stop.clone());
    let out = ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"]);
    stop.store(true, Ordering::Relaxed);
    let seen = responder.join().expect("responder");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3 packets transmitted, 3 received"),
        "ping failed: {text}"
    );
    seen
}

#[test]
fn offload_ping_is_answered_with_a_zero_header() {
    if !can_run("offload_ping_is_answered_with_a_zero_header") {
        return;
    }
    let ns = NetNs::new("offping");
    let dev = open(&ns, Offload::On);
    assert!(dev.has_vnet_hdr());
    let seen = ping_three(&ns, dev);
    // ICMP checksums are computed in software by the kernel: no flags.
    assert_eq!(seen, vec![RxMeta::default(); 3]);
}

#[test]
fn offloads_granted_are_reported() {
    if !can_run("offloads_granted_are_reported") {
        return;
    }
    let ns = NetNs::new("offgrant");
    let dev = open(&ns, Offload::On);
    let granted = dev.offloads();
    let _ = writeln!(
        std::io::stderr(),
        "kernel granted: {granted}, max_packet {}",
        dev.max_packet()
    );
    assert_eq!(
        granted,
        Offloads {
            csum: true,
            tso4: true,
            tso6: true
        }
    );
    assert_eq!(dev.max_packet(), 65535);
    assert_eq!(dev.max_segment(), 65535);
    assert_eq!(dev.mtu(), 1500);
    drop(dev);
    // Auto takes the same.
    let dev = open(&ns, Offload::Auto);
    assert_eq!(dev.offloads(), granted);
    assert!(dev.has_vnet_hdr());
}

/// Connects from the kernel to 10.0.0.2:80 in the background and returns
/// the first SYN the device reads, with its metadata.
fn kernel_syn(ns: &NetNs, dev: &TunDevice) -> (Vec<u8>, RxMeta) {
    let name = ns.name.clone();
    let connector = std::thread::spawn(move || {
        stack::device::netns::in_netns(&name, || {
            let _ =
                TcpStream::connect_timeout(&"10.0.0.2:80".parse().unwrap(), Duration::from_secs(2));
        })
    });
    let mut batch = batch_for(dev);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        dev.recv_batch(&mut batch, Duration::from_millis(50))
            .expect("recv");
        for (packet, meta) in batch.iter_with_meta() {
            let Ok(ip) = Ipv4HeaderSlice::from_slice(packet) else {
                continue;
            };
            let Ok(tcp) = TcpHeaderSlice::from_slice(&packet[ip.slice().len()..]) else {
                continue;
            };
            if tcp.syn() && tcp.destination_port() == 80 {
                let syn = (packet.to_vec(), meta);
                // The connect times out on its own; don't wait for it.
                drop(connector);
                return syn;
            }
        }
    }
    panic!("no SYN from the kernel");
}

/// Checks what `meta` promises about `packet`: the IPv4 header checksum
/// is always valid; the TCP checksum verifies in full when it is to be
/// verified, and holds exactly the pseudo-header sum over the whole TCP
/// length (even of a super-segment) when it is partial.
fn check_rx_checksums(packet: &[u8], meta: RxMeta) {
    let ip = Ipv4HeaderSlice::from_slice(packet).unwrap();
    assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
    match meta.checksum {
        RxChecksum::Unverified | RxChecksum::Verified => {
            assert!(tcp_checksum_valid(packet), "{meta:?}");
        }
        RxChecksum::Partial => {
            let seg = TcpSuperSegment::parse(packet).unwrap();
            let at = seg.ip_header_len() + 16;
            assert_eq!(
                u16::from_be_bytes([packet[at], packet[at + 1]]),
                seg.partial_checksum()
            );
        }
    }
}

/// Whether the TCP checksum of `packet` verifies in full.
fn tcp_checksum_valid(packet: &[u8]) -> bool {
    let ip = Ipv4HeaderSlice::from_slice(packet).unwrap();
    let tcp = TcpHeaderSlice::from_slice(&packet[ip.slice().len()..]).unwrap();
    let payload = &packet[ip.slice().len() + tcp.slice().len()..];
    tcp.checksum() == tcp.calc_checksum_ipv4(&ip, payload).unwrap()
}

#[test]
fn kernel_syn_arrives_with_a_partial_checksum() {
    if !can_run("kernel_syn_arrives_with_a_partial_checksum") {
        return;
    }
    let ns = NetNs::new("offsyn");
    let dev = open(&ns, Offload::On);
    let (syn, meta) = kernel_syn(&ns, &dev);
    // With TUN_F_CSUM the device advertises checksum offload, so the
    // kernel's TCP leaves the checksum to "hardware" (CHECKSUM_PARTIAL)
    // and TUN reports NEEDS_CSUM: the field holds only the pseudo-header
    // sum, which would fail a software check.
    assert_eq!(
        meta,
        RxMeta {
            checksum: RxChecksum::Partial,
            gso_size: None
        }
    );
    check_rx_checksums(&syn, meta);
    assert!(!tcp_checksum_valid(&syn));
}

#[test]
fn offload_off_is_a_plain_device_even_after_an_offload_attach() {
    if !can_run("offload_off_is_a_plain_device_even_after_an_offload_attach") {
        return;
    }
    let ns = NetNs::new("offoff");
    // An offload attach first: the offloads it negotiated stay on the
    // persistent device unless the plain attach clears them.
    drop(open(&ns, Offload::On));
    let dev = open(&ns, Offload::Off);
    assert!(!dev.has_vnet_hdr());
    assert_eq!(dev.offloads(), Offloads::default());
    assert_eq!(dev.max_packet(), 1500);
    let (syn, meta) = kernel_syn(&ns, &dev);
    assert_eq!(meta, RxMeta::default());
    check_rx_checksums(&syn, meta);
    assert!(
        tcp_checksum_valid(&syn),
        "plain attach got a partial checksum"
    );
    let seen = ping_three(&ns, dev);
    assert_eq!(seen, vec![RxMeta::default(); 3]);
}

/// One TCP connection driven by hand from the device side: the device is
/// the client at 10.0.0.2:40000, a kernel listener the server.
struct HandTcp {
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

const CLIENT_PORT: u16 = 40000;
const SERVER_PORT: u16 = 5001;
const MSS: u16 = 1460;
const OUR_SHIFT: u8 = 7;
const ISN: u32 = 0xfff0_0000;

impl HandTcp {
    fn segment(&self, seq: u32, payload: &[u8], fin: bool) -> Vec<u8> {
        let mut b = PacketBuilder::ipv4(STACK.octets(), HOST.octets(), 64)
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
            let Ok(ip) = Ipv4HeaderSlice::from_slice(packet) else {
                continue;
            };
            let Ok(tcp) = TcpHeaderSlice::from_slice(&packet[ip.slice().len()..]) else {
                continue;
            };
            if tcp.source_port() != SERVER_PORT || tcp.destination_port() != CLIENT_PORT {
                continue;
            }
            got = true;
            self.largest_rx = self.largest_rx.max(packet.len());
            check_rx_checksums(packet, meta);
            self.rx_checksums.push(meta.checksum);
            let payload = &packet[ip.slice().len() + tcp.slice().len()..];
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
    /// as large as the kernel's window allows, going back to the oldest unacknowledged byte if
    /// nothing is acknowledged for a while. Returns the size of each
    /// super-segment written.
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

/// Connects by hand to a kernel listener through `dev`, sends it 64 KiB
/// with `send_tso` in super-segments of up to `max_payload` bytes, and
/// has the kernel echo them back. Asserts that both directions arrive
/// intact.
fn echo_through_kernel(ns: &NetNs, dev: TunDevice, max_payload: usize) -> Transfer {
    let listener = ns.kernel(|| TcpListener::bind((HOST, SERVER_PORT)).expect("bind"));
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

    let mut hand = HandTcp {
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
    PacketBuilder::ipv4(STACK.octets(), HOST.octets(), 64)
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
        "tx super-segments {tx_sizes:?}; largest rx packet {}, rx gso sizes {:?}",
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
fn tso_super_segments_reach_a_kernel_socket_intact() {
    if !can_run("tso_super_segments_reach_a_kernel_socket_intact") {
        return;
    }
    let ns = NetNs::new("offtso");
    let dev = open(&ns, Offload::On);
    let max_payload = dev.max_segment() - 40;
    let t = echo_through_kernel(&ns, dev, max_payload);
    // Each super-segment went to the kernel in one write, whole.
    assert!(
        t.tx_sizes.iter().any(|&n| n > 10 * usize::from(MSS)),
        "no large super-segment was sent: {:?}",
        t.tx_sizes
    );
    // And the echo came back as the kernel's own super-segments.
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
fn plain_device_segments_super_segments_in_software() {
    if !can_run("plain_device_segments_super_segments_in_software") {
        return;
    }
    let ns = NetNs::new("offsoft");
    let dev = open(&ns, Offload::Off);
    assert_eq!(dev.max_segment(), 1500);
    // Bigger than the device takes: send_tso splits them with gso.rs, and
    // the kernel must accept every piece's checksums.
    let t = echo_through_kernel(&ns, dev, 8 * usize::from(MSS));
    assert!(t.tx_sizes.iter().any(|&n| n > usize::from(MSS)));
    assert!(t.largest_rx <= 1500);
    assert!(t.rx_gso.is_empty());
    assert!(t.rx_checksums.iter().all(|&c| c == RxChecksum::Unverified));
}
