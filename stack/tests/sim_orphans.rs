//! An application that drops a connection hands it to the stack to finish
//! closing; if the peer never finishes (no FIN), the stack resets it after
//! `Config::orphan_timeout` instead of holding it forever. Simulated time
//! (one-way latency 5 ms), so the default 60 s timeout is tested as is.

#![allow(clippy::unwrap_used)]

mod sim;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use sim::{on_b, Flow, Sim, A, B};
use stack::device::fault::FaultConfig;
use stack::{Config, TcpListener, TcpStream};

const LATENCY: Duration = Duration::from_millis(5);
const MAX_STEPS: u64 = 100_000;

#[test]
fn dropped_connection_in_fin_wait_2_is_reset_after_the_orphan_timeout() {
    let faults = FaultConfig {
        latency: LATENCY,
        ..FaultConfig::default()
    };
    let ca = Config::with_addr(A);
    let orphan_timeout = ca.orphan_timeout;
    let mut sim = Sim::new(3, faults, ca, Config::with_addr(B));
    let listener = TcpListener::bind(&sim.b.stack, (sim.b.stack.addr(), 80)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let client = TcpStream::connect_nonblocking(&sim.a.stack, on_b(80)).unwrap();
    let server = sim.accept(MAX_STEPS, &listener);

    (&client).write_all(b"bye").unwrap();
    let dropped_at = sim.now();
    drop(client); // FIN: A goes to FIN-WAIT-2 once B acknowledges it.

    // B reads the data and the FIN but never closes its side.
    assert_eq!(sim.read_to_eof(MAX_STEPS, &server), b"bye");
    // B's ACK of the FIN reaches A a moment later.
    sim.drive_bounded(MAX_STEPS, |sim| {
        let sockets = sim.a.stack.sockets();
        if sockets.len() == 1 && sockets[0].state == "FIN-WAIT-2" {
            Flow::Done
        } else {
            Flow::Idle
        }
    });

    // At the orphan timeout A resets it; B sees the RST one latency later.
    let mut reset_at = None;
    sim.drive_bounded(MAX_STEPS, |sim| match (&server).read(&mut [0; 16]) {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {
            reset_at = Some(sim.now());
            Flow::Done
        }
        Ok(0) => Flow::Idle,
        other => panic!("{other:?}"),
    });
    assert_eq!(reset_at, Some(dropped_at + orphan_timeout + LATENCY));
    assert!(
        sim.a.stack.sockets().is_empty(),
        "the orphan was not removed"
    );
    assert_eq!(sim.a.stack.stats().get("tcp_orphans_reset"), Some(1));
}
