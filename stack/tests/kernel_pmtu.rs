//! Path MTU discovery against Linux as a router (RFC 1191, RFC 8201): the
//! stack's namespace forwards to a second one over a veth link whose MTU
//! is 1280, while tun0 and the far end take 1500. The far end's SYN-ACK
//! offers an MSS for 1500-byte packets, so our first full-sized segments
//! are too big for the link in between: the kernel drops them and answers
//! with an ICMP Fragmentation Needed (IPv4) or ICMPv6 Packet Too Big,
//! which must bring our segments down to fit, at once, so an upload
//! completes exactly (SHA-256) and promptly. What was learned then sizes
//! our fragments: a large UDP datagram crosses the narrow link.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener as KernelListener, UdpSocket as KernelUdp};
use std::time::{Duration, Instant};

use common::{can_run, counter, hash_to_eof, pattern, sha256_hex, test_config, NetNs};
use stack::{Config, Stack, TcpStream, UdpSocket};

const SIZE: usize = 2 * 1024 * 1024;

/// The stack in `ours` (10.0.0.2, fd00::2 on tun0), and `far`, reached
/// through `ours` over a veth link of MTU 1280 (10.0.9.0/24,
/// fd00:9::/64).
fn setup(tag: &str) -> (NetNs, NetNs, Stack) {
    let ours = NetNs::new(tag);
    let far = NetNs::new(&format!("{tag}f"));
    // The far end is reached over the veth link only.
    far.ip(&["link", "del", "tun0"]);
    ours.ip(&["-6", "addr", "add", "fd00::1/64", "dev", "tun0", "nodad"]);
    ours.ip(&[
        "link", "add", "va", "mtu", "1280", "type", "veth", "peer", "name", "vb", "netns",
        &far.name,
    ]);
    ours.ip(&["addr", "add", "10.0.9.1/24", "dev", "va"]);
    ours.ip(&["-6", "addr", "add", "fd00:9::1/64", "dev", "va", "nodad"]);
    ours.ip(&["link", "set", "va", "up"]);
    far.ip(&["link", "set", "vb", "mtu", "1500"]);
    far.ip(&["addr", "add", "10.0.9.2/24", "dev", "vb"]);
    far.ip(&["-6", "addr", "add", "fd00:9::2/64", "dev", "vb", "nodad"]);
    far.ip(&["link", "set", "vb", "up"]);
    far.ip(&["route", "add", "10.0.0.0/24", "via", "10.0.9.1"]);
    far.ip(&["-6", "route", "add", "fd00::/64", "via", "fd00:9::1"]);
    for knob in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
        let out = ours.exec(&["sysctl", "-qw", knob]);
        assert!(out.status.success(), "sysctl {knob}");
    }
    let config = Config {
        addr6: Some("fd00::2".parse().expect("an IPv6 address")),
        ..test_config()
    };
    let stack = ours.start_stack(config);
    (ours, far, stack)
}

/// Uploads `SIZE` bytes from the stack to a kernel server in `far` at
/// `server` and checks the digest it replies; returns how long it took.
fn upload(far: &NetNs, stack: &Stack, server: SocketAddr) -> Duration {
    let listener = far.kernel(move || KernelListener::bind(server).unwrap());
    let side = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let (digest, n) = hash_to_eof(&s);
        writeln!(s, "{digest} {n}").unwrap();
    });
    let started = Instant::now();
    let mut up = TcpStream::connect_timeout(stack, server, Duration::from_secs(5)).unwrap();
    up.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let data = pattern(SIZE, server.port().into());
    up.write_all(&data).unwrap();
    up.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    up.read_to_string(&mut reply).unwrap();
    assert_eq!(
        reply,
        format!("{} {}\n", sha256_hex(&data), SIZE),
        "{:?}",
        stack.stats().snapshot()
    );
    side.join().unwrap();
    started.elapsed()
}

#[test]
fn packet_too_big_and_fragmentation_needed_shrink_our_segments() {
    if !can_run("packet_too_big_and_fragmentation_needed_shrink_our_segments") {
        return;
    }
    let (_ours, far, stack) = setup("pmtu");
    let v6 = upload(&far, &stack, "[fd00:9::2]:7000".parse().unwrap());
    let after_v6 = counter(&stack, "pmtu_lowered");
    assert!(after_v6 >= 1, "{:?}", stack.stats().snapshot());
    let v4 = upload(&far, &stack, "10.0.9.2:7001".parse().unwrap());
    assert!(
        counter(&stack, "pmtu_lowered") > after_v6,
        "{:?}",
        stack.stats().snapshot()
    );
    assert_eq!(counter(&stack, "pmtu_ignored"), 0);
    // The path MTU learned sizes our IPv6 fragments to 1280 bytes, so a
    // 3000-byte datagram arrives whole.
    let sink = far.kernel(|| KernelUdp::bind("[fd00:9::2]:7002").unwrap());
    sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let udp = UdpSocket::bind(
        &stack,
        ("fd00::2".parse::<std::net::Ipv6Addr>().unwrap(), 0),
    )
    .unwrap();
    let sent = pattern(3000, 3);
    udp.send_to(&sent, sink.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 4000];
    let (n, _) = sink.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &sent[..]);
    // Promptly: resent at once, not after RTOs with back-off (the kernel
    // itself moves 2 MiB over this path in well under a second).
    assert!(v6 < Duration::from_secs(5), "IPv6 upload took {v6:?}");
    assert!(v4 < Duration::from_secs(5), "IPv4 upload took {v4:?}");
    stack.shutdown();
}
