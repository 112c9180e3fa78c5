//! A UDP echo between a kernel socket and the stack, for the IPv4
//! (`kernel_fragments.rs`) and IPv6 (`kernel_ipv6.rs`) tests, which
//! differ only in the addresses they are given.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket as KernelUdp};
use std::thread::JoinHandle;
use std::time::Duration;

use stack::{Stack, UdpSocket};

use super::NetNs;

/// A UDP echo server at `at` on `stack` that answers `count` datagrams,
/// each of which must come from an address of `at`'s family.
pub fn echo_server(stack: &Stack, at: SocketAddr, count: usize) -> JoinHandle<()> {
    let echo = UdpSocket::bind(stack, at).unwrap();
    echo.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        for _ in 0..count {
            let (n, from) = echo.recv_from(&mut buf).unwrap();
            assert_eq!(from.is_ipv6(), at.is_ipv6(), "{from}");
            echo.send_to(&buf[..n], from).unwrap();
        }
    })
}

/// Sends `payload` from a kernel UDP socket bound to `host` in `ns` to
/// the echo server at `to` on `stack`, and asserts that the same bytes
/// come back from `to`.
pub fn check_kernel_echo(
    ns: &NetNs,
    stack: &Stack,
    host: SocketAddr,
    to: SocketAddr,
    payload: &[u8],
) {
    let sent = payload.to_vec();
    let reply = ns
        .kernel(move || {
            let sock = KernelUdp::bind(host).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            sock.send_to(&sent, to).map_err(|e| format!("send: {e}"))?;
            let mut buf = vec![0u8; 65_536];
            let (n, from) = sock
                .recv_from(&mut buf)
                .map_err(|e| format!("no echo: {e}"))?;
            assert_eq!(from, to);
            Ok::<_, String>(buf[..n].to_vec())
        })
        .unwrap_or_else(|e| panic!("{e}; stack counters: {:?}", stack.stats().snapshot()));
    assert_eq!(reply.len(), payload.len());
    assert!(
        reply == payload,
        "the echo differs from what was sent; stack counters: {:?}",
        stack.stats().snapshot()
    );
}
