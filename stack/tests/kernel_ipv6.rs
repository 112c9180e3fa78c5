//! IPv6 against the Linux kernel through a real TUN device: `ping -6` is
//! answered, also when its requests and replies are larger than the MTU
//! (fragments both ways); TCP over IPv6 carries 10 MiB each way exactly
//! (SHA-256), with the kernel as client and as server; UDP echoes over
//! IPv6, also a 4000-byte datagram through fragments both ways; a `[::]`
//! listener in any-address mode tells which address was dialled; and TCP
//! and UDP to a port with nothing bound are refused (RST, ICMPv6 port
//! unreachable).

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream as KernelTcp, UdpSocket as KernelUdp};
use std::time::{Duration, Instant};

use common::bulk;
use common::udp_echo::{check_kernel_echo, echo_server};
use common::{can_run, counter, pattern, test_config, NetNs, HOST6, STACK6};
use stack::{Config, Stack, TcpListener};

/// The stack's `port` over IPv6.
fn ours(port: u16) -> SocketAddr {
    SocketAddr::from((STACK6, port))
}

/// The kernel's `port` over IPv6.
fn host(port: u16) -> SocketAddr {
    SocketAddr::from((HOST6, port))
}

/// A namespace whose tun0 also has fd00::1/64 (without duplicate address
/// detection, as `setup-tun.sh` adds it), and a stack owning fd00::2.
fn setup(tag: &str) -> (NetNs, Stack) {
    setup_with(tag, |_| {})
}

/// [`setup`] with `tune` applied to the stack's configuration.
fn setup_with(tag: &str, tune: impl FnOnce(&mut Config)) -> (NetNs, Stack) {
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
    let mut config = Config {
        addr6: Some(STACK6),
        ..test_config()
    };
    tune(&mut config);
    let stack = ns.start_stack(config);
    (ns, stack)
}

#[test]
fn ping6_gets_three_replies() {
    if !can_run("ping6_gets_three_replies") {
        return;
    }
    let (ns, stack) = setup("ping6");
    let to = STACK6.to_string();
    let out = ns.exec(&["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", &to]);
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
    let to = STACK6.to_string();
    let out = ns.exec(&[
        "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-s", "4000", &to,
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

#[test]
fn kernel_client_uploads_10mib_over_ipv6() {
    if !can_run("kernel_client_uploads_10mib_over_ipv6") {
        return;
    }
    let (ns, stack) = setup("up6");
    bulk::upload_from_kernel(&ns, &stack, ours(5001), host(0).ip());
    stack.shutdown();
}

#[test]
fn our_client_downloads_and_uploads_10mib_over_ipv6() {
    if !can_run("our_client_downloads_and_uploads_10mib_over_ipv6") {
        return;
    }
    let (ns, stack) = setup("down6");
    bulk::download_then_upload(&ns, &stack, host(6001));
    stack.shutdown();
}

#[test]
fn udp_echoes_over_ipv6_also_4000_bytes_through_fragments() {
    if !can_run("udp_echoes_over_ipv6_also_4000_bytes_through_fragments") {
        return;
    }
    let (ns, stack) = setup("udp6");
    let server = echo_server(&stack, ours(7), 2);
    check_kernel_echo(&ns, &stack, host(0), ours(7), b"hello over IPv6");
    check_kernel_echo(&ns, &stack, host(0), ours(7), &pattern(4000, 9));
    server.join().unwrap();
    // 4008 bytes of UDP over a 1500-byte MTU: three fragments each way.
    assert_eq!(counter(&stack, "ip_reassembled"), 1);
    assert!(counter(&stack, "ip_frag_tx") >= 3);
    assert_eq!(counter(&stack, "udp_rx"), 2);
    stack.shutdown();
}

#[test]
fn an_any_address_listener_on_ipv6_tells_the_dialled_address() {
    if !can_run("an_any_address_listener_on_ipv6_tells_the_dialled_address") {
        return;
    }
    let (ns, stack) = setup_with("any6", |c| c.any_address = true);
    // A prefix routed into tun0, none of whose addresses is the stack's.
    ns.ip(&["-6", "route", "add", "fd00:99::/64", "dev", "tun0"]);
    let dialled: Ipv6Addr = "fd00:99::5".parse().unwrap();
    let listener = TcpListener::bind(&stack, (Ipv6Addr::UNSPECIFIED, 80)).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let local = stream.local_addr().unwrap();
        stream.write_all(local.to_string().as_bytes()).unwrap();
        local
    });
    let told = ns.kernel(move || {
        let mut s =
            KernelTcp::connect_timeout(&SocketAddr::from((dialled, 80)), Duration::from_secs(5))
                .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut told = String::new();
        s.read_to_string(&mut told).unwrap();
        told
    });
    let local = server.join().unwrap();
    assert_eq!(local, SocketAddr::from((dialled, 80)));
    assert_eq!(told, "[fd00:99::5]:80");
    stack.shutdown();
}
