//! The foundation against the Linux kernel through a real TUN device:
//! ping, UDP echo, ICMP port unreachable.

mod common;

use std::net::UdpSocket as KernelUdp;
use std::time::Duration;

use common::{can_run, stack_addr, test_config, NetNs};
use stack::UdpSocket;

#[test]
fn ping_gets_three_replies() {
    if !can_run("ping_gets_three_replies") {
        return;
    }
    let ns = NetNs::new("ping");
    let stack = ns.start_stack(test_config());
    let out = ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ping failed: {text}");
    assert!(
        text.contains("3 packets transmitted, 3 received"),
        "unexpected ping output: {text}\nstack counters: {:?}",
        stack.stats().snapshot()
    );
    assert_eq!(stack.stats().get("icmp_echo"), Some(3));
    stack.shutdown();
}

#[test]
fn udp_echo_and_port_unreachable() {
    if !can_run("udp_echo_and_port_unreachable") {
        return;
    }
    let ns = NetNs::new("udp");
    let stack = ns.start_stack(test_config());
    let echo = UdpSocket::bind(&stack, (stack.addr(), 7)).unwrap();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let (n, from) = echo.recv_from(&mut buf).unwrap();
        echo.send_to(&buf[..n], from).unwrap();
        echo
    });

    let (reply, refused) = ns
        .kernel(|| {
            let sock = KernelUdp::bind("10.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let payload: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
            sock.send_to(&payload, "10.0.0.2:7").unwrap();
            let mut buf = [0u8; 2048];
            let (n, from) = match sock.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) => return Err(format!("no echo: {e}")),
            };
            assert_eq!(from.to_string(), "10.0.0.2:7");
            let reply = buf[..n].to_vec();
            assert_eq!(reply, payload, "echo changed the datagram");

            // A connected kernel UDP socket learns of ICMP port unreachable as
            // ECONNREFUSED on its next receive.
            let closed = KernelUdp::bind("10.0.0.1:0").unwrap();
            closed.connect("10.0.0.2:9999").unwrap();
            closed
                .set_read_timeout(Some(Duration::from_secs(3)))
                .unwrap();
            closed.send(b"anyone?").unwrap();
            let err = closed.recv(&mut buf).unwrap_err();
            Ok((reply.len(), err.kind()))
        })
        .unwrap_or_else(|e| panic!("{e}; stack counters: {:?}", stack.stats().snapshot()));
    assert_eq!(reply, 1000);
    assert_eq!(refused, std::io::ErrorKind::ConnectionRefused);
    let echo = server.join().unwrap();
    assert_eq!(stack.stats().get("icmp_unreachable_tx"), Some(1));
    assert!(stack
        .sockets()
        .iter()
        .any(|s| s.local == stack_addr(7) && s.state == "BOUND"));
    drop(echo);
    assert!(stack.sockets().is_empty());
    stack.shutdown();
}
