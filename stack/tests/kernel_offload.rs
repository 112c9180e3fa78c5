//! The offload TUN device against the Linux kernel, at the device level
//! (no stack): a private namespace's `tun0` opened with `IFF_VNET_HDR`,
//! and packets read and written by hand, so each test sees exactly what
//! the kernel hands over and what it accepts.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::hand_tcp::{batch_for, echo_segmented_in_software, echo_with_tso, open, Family::V4};
use common::{can_run, NetNs, STACK};
use etherparse::{Icmpv4Slice, Icmpv4Type, Ipv4HeaderSlice, PacketBuilder, TcpHeaderSlice};
use stack::device::tun::{Offload, Offloads, TunDevice};
use stack::device::{Device, RxChecksum, RxMeta};

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
    V4.check_rx_checksum(&syn, meta.checksum);
    assert!(!V4.tcp_checksum_valid(&syn));
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
    V4.check_rx_checksum(&syn, meta.checksum);
    assert!(
        V4.tcp_checksum_valid(&syn),
        "plain attach got a partial checksum"
    );
    let seen = ping_three(&ns, dev);
    assert_eq!(seen, vec![RxMeta::default(); 3]);
}

#[test]
fn tso_super_segments_reach_a_kernel_socket_intact() {
    if !can_run("tso_super_segments_reach_a_kernel_socket_intact") {
        return;
    }
    echo_with_tso(V4, &NetNs::new("offtso"));
}

#[test]
fn plain_device_segments_super_segments_in_software() {
    if !can_run("plain_device_segments_super_segments_in_software") {
        return;
    }
    echo_segmented_in_software(V4, &NetNs::new("offsoft"));
}
