//! IPv6 TCP segmentation offload against the Linux kernel, at the device
//! level (no stack), as `kernel_offload.rs` does for IPv4: a private
//! namespace's `tun0`, with the kernel's side at fd00::1/64, opened with
//! `IFF_VNET_HDR`, and TCP driven by hand from the device side at
//! fd00::2, so each test sees exactly what the kernel hands over (its own
//! TCPV6 super-segments, checksums partial) and what it accepts (ours,
//! whole with TSO6 or segmented in software by `gso.rs` without).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::hand_tcp::{
    batch_for, echo_segmented_in_software, echo_with_tso, open, Family::V6, CLIENT_PORT,
};
use common::{can_run, pattern, NetNs};
use stack::device::tun::{Offload, Offloads, TunDevice};
use stack::device::Device;

/// The MSS over a 1500-byte link: 1500 - 40 (IPv6) - 20 (TCP).
const MSS: u16 = V6.mss();

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

#[test]
fn tso6_super_segments_reach_a_kernel_socket_intact() {
    if !can_run("tso6_super_segments_reach_a_kernel_socket_intact") {
        return;
    }
    echo_with_tso(V6, &netns6("off6tso"));
}

#[test]
fn plain_device_segments_v6_super_segments_in_software() {
    if !can_run("plain_device_segments_v6_super_segments_in_software") {
        return;
    }
    echo_segmented_in_software(V6, &netns6("off6soft"));
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
    V6.builder()
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
            if let Some((tcp, _)) = V6.tcp_between(p, CLOSED, CLIENT_PORT) {
                V6.check_rx_checksum(p, meta.checksum);
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
                if let Some((tcp, _)) = V6.tcp_between(p, CLOSED, CLIENT_PORT) {
                    V6.check_rx_checksum(p, meta.checksum);
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
