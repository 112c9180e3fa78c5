//! Any-address mode against the Linux kernel through a real TUN device:
//! with a route for 10.99.0.0/16 into tun0, a listener on 0.0.0.0:80
//! accepts connections to any of those addresses and tells which was
//! dialled, and a UDP socket on 0.0.0.0:7 answers from the address each
//! datagram was sent to; without the mode, those packets are not ours.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream as KernelTcp, UdpSocket as KernelUdp};
use std::time::Duration;

use common::{can_run, counter, test_config, NetNs};
use stack::{Config, Stack, TcpListener, UdpSocket};

const DIALLED: &str = "10.99.1.2";

/// A namespace that routes 10.99.0.0/16 into tun0, and a stack on it.
fn setup(tag: &str, any_address: bool) -> (NetNs, Stack) {
    let ns = NetNs::new(tag);
    ns.ip(&["route", "add", "10.99.0.0/16", "dev", "tun0"]);
    let config = Config {
        any_address,
        ..test_config()
    };
    let stack = ns.start_stack(config);
    (ns, stack)
}

#[test]
fn a_wildcard_listener_accepts_any_routed_address_and_tells_it() {
    if !can_run("a_wildcard_listener_accepts_any_routed_address_and_tells_it") {
        return;
    }
    let (ns, stack) = setup("any", true);
    let listener = TcpListener::bind(&stack, (Ipv4Addr::UNSPECIFIED, 80)).expect("bind");
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let local = stream.local_addr().unwrap();
        stream
            .write_all(local.to_string().as_bytes())
            .expect("write");
        local
    });
    let told = ns.kernel(|| {
        let to = format!("{DIALLED}:80").parse().expect("address");
        let mut s = KernelTcp::connect_timeout(&to, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut told = String::new();
        s.read_to_string(&mut told).expect("read");
        told
    });
    let local = server.join().expect("server");
    assert_eq!(local.to_string(), format!("{DIALLED}:80"));
    assert_eq!(told, format!("{DIALLED}:80"));
    let ping = ns.exec(&["ping", "-c", "1", "-W", "2", DIALLED]);
    assert!(ping.status.success(), "ping {DIALLED} failed");
    // A closed port on a dialled address is refused from that address.
    let refused = ns.kernel(|| {
        let to = format!("{DIALLED}:81").parse().expect("address");
        KernelTcp::connect_timeout(&to, Duration::from_secs(2))
            .map(drop)
            .map_err(|e| e.kind())
    });
    assert_eq!(refused, Err(std::io::ErrorKind::ConnectionRefused));
    stack.shutdown();
}

#[test]
fn without_any_address_other_destinations_are_not_ours() {
    if !can_run("without_any_address_other_destinations_are_not_ours") {
        return;
    }
    let (ns, stack) = setup("notany", false);
    let _listener = TcpListener::bind(&stack, (Ipv4Addr::UNSPECIFIED, 80)).expect("bind");
    let ping = ns.exec(&["ping", "-c", "1", "-W", "1", DIALLED]);
    assert!(!ping.status.success(), "ping {DIALLED} answered");
    assert!(counter(&stack, "drop_not_ours") >= 1);
    // The wildcard listener still serves our own address.
    let served = ns.kernel(|| {
        KernelTcp::connect_timeout(
            &"10.0.0.2:80".parse().expect("address"),
            Duration::from_secs(5),
        )
        .is_ok()
    });
    assert!(served);
    stack.shutdown();
}

#[test]
fn a_wildcard_udp_socket_replies_from_the_dialled_address() {
    if !can_run("a_wildcard_udp_socket_replies_from_the_dialled_address") {
        return;
    }
    let (ns, stack) = setup("anyudp", true);
    let echo = UdpSocket::bind(&stack, (Ipv4Addr::UNSPECIFIED, 7)).expect("bind");
    echo.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from, to) = echo.recv_from_to(&mut buf).expect("recv");
        echo.send_from_to(&buf[..n], to.ip(), from).expect("send");
        // Not an address we answer for even in this mode: refused.
        let e = echo
            .send_from_to(b"x", Ipv4Addr::LOCALHOST.into(), from)
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        to
    });
    let reply = ns.kernel(|| {
        // A connected socket takes replies from the address it sent to
        // only, as any UDP client would.
        let sock = KernelUdp::bind("10.0.0.1:0").expect("bind");
        sock.connect(format!("{DIALLED}:7")).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        sock.send(b"any?").expect("send");
        let mut buf = [0u8; 64];
        let n = sock
            .recv(&mut buf)
            .expect("a reply from the dialled address");
        buf[..n].to_vec()
    });
    let to = server.join().expect("server");
    assert_eq!(to.to_string(), format!("{DIALLED}:7"));
    assert_eq!(reply, b"any?");
    stack.shutdown();
}
