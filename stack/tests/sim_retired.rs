//! Retired connections (TIME-WAIT, orphans) on a cap of their own
//! (`Config::max_retired`): a server that closes first keeps serving new
//! connections when TIME-WAIT alone would fill `max_connections`, and the
//! oldest TIME-WAIT goes first. Simulated time, one-way latency 5 ms, so
//! TIME-WAIT (2 MSL = 60 s by default) outlasts the whole test.

#![allow(clippy::unwrap_used)]

mod sim;

use std::io::Write;
use std::time::Duration;

use sim::{on_b, Flow, Sim, A, B};
use stack::device::fault::FaultConfig;
use stack::{Config, TcpListener, TcpStream};

const LATENCY: Duration = Duration::from_millis(5);
const MAX_STEPS: u64 = 100_000;
const CONNECTIONS: usize = 12;

#[test]
fn server_closed_connections_beyond_the_table_go_through_time_wait_oldest_first() {
    let faults = FaultConfig {
        latency: LATENCY,
        ..FaultConfig::default()
    };
    let server_config = Config {
        max_connections: 4,
        max_retired: 3,
        ..Config::with_addr(B)
    };
    let mut sim = Sim::new(5, faults, Config::with_addr(A), server_config);
    let listener = TcpListener::bind(&sim.b.stack, (sim.b.stack.addr(), 80)).unwrap();
    listener.set_nonblocking(true).unwrap();

    let mut ports = Vec::new();
    for i in 0..CONNECTIONS {
        let client = TcpStream::connect_nonblocking(&sim.a.stack, on_b(80)).unwrap();
        ports.push(client.local_addr().unwrap().port());
        // The server answers and closes first: it will hold TIME-WAIT.
        let server = sim.accept(MAX_STEPS, &listener);
        (&server).write_all(b"bye").unwrap();
        drop(server);
        assert_eq!(
            sim.read_to_eof(MAX_STEPS, &client),
            b"bye",
            "connection {i}"
        );
        drop(client);
        // The client's FIN reaches the server, which enters TIME-WAIT.
        sim.drive_bounded(MAX_STEPS, |sim| {
            let waiting = time_wait(sim);
            if sim.a.stack.sockets().is_empty() && waiting >= 1.min(i + 1) {
                Flow::Done
            } else {
                Flow::Idle
            }
        });
        assert!(time_wait(&sim) <= 3, "at most max_retired in TIME-WAIT");
    }
    let stats = &sim.b.stack.stats();
    assert_eq!(stats.get("drop_table_full"), Some(0));
    assert_eq!(
        stats.get("tcp_time_wait_evicted"),
        Some(CONNECTIONS as u64 - 3)
    );
    // The three kept are the newest: those of the last three clients.
    let mut kept: Vec<u16> = sim
        .b
        .stack
        .sockets()
        .iter()
        .filter(|s| s.state == "TIME-WAIT")
        .filter_map(|s| s.remote.map(|r| r.port()))
        .collect();
    kept.sort_unstable();
    let mut newest = ports[CONNECTIONS - 3..].to_vec();
    newest.sort_unstable();
    assert_eq!(kept, newest);
}

fn time_wait(sim: &Sim) -> usize {
    sim.b
        .stack
        .sockets()
        .iter()
        .filter(|s| s.state == "TIME-WAIT")
        .count()
}
