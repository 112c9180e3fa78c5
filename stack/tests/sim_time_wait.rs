//! Sequential connections whose server closes first leave the server's
//! side in TIME-WAIT for 2 MSL (60 s by default). A busy client cycles
//! through its 16,384 ephemeral ports long before that and reuses a port
//! whose four-tuple is still in TIME-WAIT on the server: its SYN must open
//! a new connection at once (RFC 6191 §2), not get a challenge ACK and
//! wait a SYN retransmission (1 s) for the stale one to go away.
//! Simulated time (one-way latency 50 µs), default `Config`s.

#![allow(clippy::unwrap_used)]

mod sim;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use sim::{on_b, Flow, Sim, A, B};
use stack::device::fault::FaultConfig;
use stack::{Config, TcpListener, TcpStream};

const LATENCY: Duration = Duration::from_micros(50);
const MAX_STEPS: u64 = 10_000;
/// Every ephemeral port once, then some again.
const CONNECTIONS: usize = 16_384 + 200;

#[test]
fn server_closed_connections_reusing_ports_in_time_wait_never_stall() {
    let faults = FaultConfig {
        latency: LATENCY,
        ..FaultConfig::default()
    };
    let mut sim = Sim::new(12, faults, Config::with_addr(A), Config::with_addr(B));
    let listener = TcpListener::bind(&sim.b.stack, (sim.b.stack.addr(), 80)).unwrap();
    listener.set_nonblocking(true).unwrap();

    let mut ports = HashSet::new();
    let mut reused = 0;
    let mut slowest = Duration::ZERO;
    for i in 0..CONNECTIONS {
        let start = sim.now();
        let client = TcpStream::connect_nonblocking(&sim.a.stack, on_b(80)).unwrap();
        if !ports.insert(client.local_addr().unwrap().port()) {
            reused += 1;
        }
        // B answers one byte and closes first; A reads it and the EOF.
        let mut got = 0;
        sim.drive_bounded(MAX_STEPS, |_| {
            match listener.accept() {
                Ok((s, _)) => (&s).write_all(b"x").unwrap(), // dropped: FIN
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
            match (&client).read(&mut [0; 8]) {
                Ok(0) => Flow::Done,
                Ok(n) => {
                    got += n;
                    Flow::Busy
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => Flow::Idle,
                Err(e) => panic!("connection {i}: {e}"),
            }
        });
        assert_eq!(got, 1, "connection {i}");
        drop(client);
        slowest = slowest.max(sim.now().saturating_duration_since(start));
    }
    // Let the last FINs and ACKs land.
    sim.drive_bounded(MAX_STEPS, |sim| {
        if sim.a.stack.sockets().is_empty() {
            Flow::Done
        } else {
            Flow::Idle
        }
    });

    assert!(reused >= 200, "only {reused} ports were reused");
    let recycled = sim.b.stack.stats().get("tcp_time_wait_reopened").unwrap();
    assert!(recycled >= 200, "{recycled} TIME-WAITs reopened");
    // A few round trips each; a stalled SYN would cost a 1 s RTO.
    assert!(slowest < Duration::from_millis(100), "slowest {slowest:?}");
    assert_eq!(sim.a.stack.stats().get("tcp_rst_tx"), Some(0));
}
