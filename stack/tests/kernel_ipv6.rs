//! IPv6 against the Linux kernel through a real TUN device, while the
//! stack's sockets are IPv4 only: `ping -6` is answered, also when its
//! requests and replies are larger than the MTU (fragments both ways),
//! and TCP and UDP over IPv6 are refused as by a host with nothing
//! listening on IPv6.

mod common;

use std::io::ErrorKind;
use std::net::{TcpStream as KernelTcp, UdpSocket as KernelUdp};
use std::time::{Duration, Instant};

use common::{can_run, counter, test_config, NetNs};
use stack::{Config, Stack};

const HOST6: &str = "fd00::1";
const STACK6: &str = "fd00::2";

/// A namespace whose tun0 also has fd00::1/64 (without duplicate address
/// detection, as `setup-tun.sh` adds it), and a stack owning fd00::2.
fn setup(tag: &str) -> (NetNs, Stack) {
    let ns = NetNs::new(tag);
    ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{HOST6}/64"),
        "dev",
        "tun0",
        "nodad",
    ]);
    let config = Config {
        addr6: Some(STACK6.parse().expect("an IPv6 address")),
        ..test_config()
    };
    let stack = ns.start_stack(config);
    (ns, stack)
}

#[test]
fn ping6_gets_three_replies() {
    if !can_run("ping6_gets_three_replies") {
        return;
    }
    let (ns, stack) = setup("ping6");
    let out = ns.exec(&["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", STACK6]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("3 packets transmitted, 3 received"),
        "ping -6 failed: {text}{}\nstack counters: {:?}",
        String::from_utf8_lossy(&out.stderr),
        stack.stats().snapshot()
    );
    assert_eq!(counter(&stack, "icmp_echo"), 3);
    stack.shutdown();
}

#[test]
fn ping6_of_4000_bytes_is_answered_through_fragments() {
    if !can_run("ping6_of_4000_bytes_is_answered_through_fragments") {
        return;
    }
    let (ns, stack) = setup("frag6");
    // 4008 bytes of ICMPv6 over a 1500-byte MTU: the kernel fragments
    // each request, we reassemble it, and the reply goes back in
    // fragments the kernel reassembles.
    let out = ns.exec(&[
        "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-s", "4000", STACK6,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("3 packets transmitted, 3 received"),
        "ping -6 -s 4000 failed: {text}{}\nstack counters: {:?}",
        String::from_utf8_lossy(&out.stderr),
        stack.stats().snapshot()
    );
    assert_eq!(counter(&stack, "icmp_echo"), 3);
    assert_eq!(counter(&stack, "ip_reassembled"), 3);
    assert!(counter(&stack, "ip_frag_received") >= 9);
    assert!(counter(&stack, "ip_frag_tx") >= 9);
    assert_eq!(counter(&stack, "ip_reasm_overlap_dropped"), 0);
    stack.shutdown();
}

#[test]
fn tcp_and_udp_over_ipv6_are_refused() {
    if !can_run("tcp_and_udp_over_ipv6_are_refused") {
        return;
    }
    let (ns, stack) = setup("refuse6");
    let (tcp, tcp_time, udp) = ns.kernel(|| {
        let started = Instant::now();
        let to = format!("[{STACK6}]:80").parse().unwrap();
        let tcp = KernelTcp::connect_timeout(&to, Duration::from_secs(5)).map(drop);
        let tcp_time = started.elapsed();
        let sock = KernelUdp::bind(format!("[{HOST6}]:0")).unwrap();
        sock.connect(format!("[{STACK6}]:9999")).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        sock.send(b"anyone there?").unwrap();
        let udp = sock.recv(&mut [0u8; 64]).map(drop);
        (tcp, tcp_time, udp)
    });
    let stats = stack.stats().snapshot();
    // A RST: refused at once, not after the kernel's SYN retries.
    assert_eq!(
        tcp.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionRefused),
        "{stats:?}"
    );
    assert!(
        tcp_time < Duration::from_secs(2),
        "refused after {tcp_time:?}"
    );
    // ICMPv6 port unreachable reaches a connected socket as ECONNREFUSED.
    assert_eq!(
        udp.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionRefused),
        "{stats:?}"
    );
    assert!(counter(&stack, "tcp_rst_tx") >= 1);
    assert_eq!(counter(&stack, "icmp_unreachable_tx"), 1);
    stack.shutdown();
}
