//! Fuzz target: the stack's whole receive path. One running `Stack` over a
//! `MemPair` (10.0.0.2 and fd00::2, each with a TCP listener on 80 and a
//! UDP socket on 7, the defaults for everything else) receives each input
//! as one packet from the other end.
//! After each input the target waits until the RX thread has read it, so a
//! panic there (libfuzzer-sys aborts on a panic in any thread) is
//! attributed to the input that caused it, or at worst its successor.
//!
//! Packets the stack sends back are drained and thrown away, and the table
//! is checked against its bound every few thousand inputs.

#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use stack::device::mem::{MemDevice, MemPair};
use stack::device::{Device, PacketBatch};
use stack::{Config, Stack, TcpListener, UdpSocket};

struct Harness {
    stack: Stack,
    peer: MemDevice,
    _sockets: Vec<(TcpListener, UdpSocket)>,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let (ours, peer) = MemPair::new(4096, 1500);
        let mut config = Config::default();
        config.accept_backlog = 16;
        config.addr6 = Some("fd00::2".parse().expect("an IPv6 address"));
        let stack = Stack::new(ours, config).expect("start the stack");
        let ips: [IpAddr; 2] = [stack.addr().into(), "fd00::2".parse().expect("v6")];
        let sockets = ips
            .into_iter()
            .map(|ip| {
                let listener = TcpListener::bind(&stack, (ip, 80)).expect("bind 80");
                let udp = UdpSocket::bind(&stack, (ip, 7)).expect("bind 7");
                (listener, udp)
            })
            .collect();
        Harness {
            stack,
            peer,
            _sockets: sockets,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let before = h.stack.stats().get("ip_rx").unwrap_or(0);
    if h.peer.send(data).is_err() || data.len() > 1500 {
        return;
    }
    // Wait (bounded) until the RX thread has taken the packet.
    let until = Instant::now() + Duration::from_secs(2);
    while h.stack.stats().get("ip_rx").unwrap_or(0) == before {
        assert!(Instant::now() < until, "the RX thread stopped reading");
        std::thread::yield_now();
    }
    // Drop what the stack sent so its queue never fills.
    let mut batch = PacketBatch::new(8, 1500);
    while h.peer.recv_batch(&mut batch, Duration::ZERO).unwrap_or(0) > 0 {}
    let sockets = h.stack.sockets().len();
    // Four bound sockets; per listener at most 2 * backlog passive
    // connections.
    assert!(sockets <= 4 + 2 * 2 * 16, "{sockets} sockets");
});
