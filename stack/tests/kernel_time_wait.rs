//! A kernel client reusing one source port against our server, which
//! closes first and so holds each four-tuple in TIME-WAIT: every new SYN
//! must open a new connection at once (RFC 6191), not wait out a SYN
//! retransmission.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::{can_run, counter, test_config, NetNs};
use stack::{Stack, TcpListener};

/// Connects from 10.0.0.1, from one of `ports` source ports from 40001
/// (SO_REUSEADDR; at random, with a fixed seed), as fast as it can until `connections` are done
/// or `seconds` have passed; reads each to EOF and prints each
/// connection's duration in ms.
const CLIENT: &str = r#"
import errno, random, socket, sys, time
random.seed(7)
ports, connections, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + seconds
i = 0
while i < connections and time.monotonic() < end:
    port = 40001 + random.randrange(ports)
    i += 1
    t0 = time.monotonic()
    while True:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(10)
        try:
            s.bind(("10.0.0.1", port))
            s.connect(("10.0.0.2", 5003))
            break
        except OSError as e:
            s.close()
            # The previous incarnation's last ACK may still be on its way
            # (the kernel's side is in LAST-ACK): try again shortly. Any
            # other error (refused, reset, timed out) is the stack's.
            if e.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                print("failed", e)
                sys.exit(0)
            time.sleep(0.001)
    data = b""
    while True:
        chunk = s.recv(100)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data == b"bye\n", data
    print(round((time.monotonic() - t0) * 1000, 1))
"#;

/// Serves `bye\n` and closes first (so each four-tuple stays in TIME-WAIT
/// on our side) until no client comes for a second.
fn serve(stack: &Stack) -> thread::JoinHandle<()> {
    let listener = TcpListener::bind(stack, (stack.addr(), 5003)).unwrap();
    listener.set_accept_timeout(Some(Duration::from_secs(1)));
    thread::spawn(move || {
        while let Ok((mut s, _)) = listener.accept() {
            s.write_all(b"bye\n").unwrap();
        }
    })
}

/// Runs the client; returns each connection's duration in ms.
fn client(ns: &NetNs, ports: usize, connections: usize, seconds: f64) -> Vec<f64> {
    let args = [
        ports.to_string(),
        connections.to_string(),
        seconds.to_string(),
    ];
    let out = ns.python(CLIENT, &[&args[0], &args[1], &args[2]]);
    out.lines()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("after {out}")))
        .collect()
}

/// Generous: a stall is a retransmission timeout (1 s); a connection here
/// takes a millisecond or two.
fn assert_none_stalled(times: &[f64]) {
    let slow: Vec<_> = times.iter().filter(|&&ms| ms >= 500.0).collect();
    assert!(slow.is_empty(), "connections that stalled (ms): {slow:?}");
}

#[test]
fn a_reused_port_reopens_from_time_wait_at_once() {
    if !can_run("a_reused_port_reopens_from_time_wait_at_once") {
        return;
    }
    let ns = NetNs::new("tw");
    let mut config = test_config();
    // TIME-WAIT (2 MSL) outlasts the whole test.
    config.tcp.msl = Duration::from_secs(30);
    let stack = ns.start_stack(config);
    let server = serve(&stack);
    let times = client(&ns, 1, 40, 30.0);
    assert_eq!(times.len(), 40);
    // Without the reopening each reuse cost about 12 ms here (the client
    // resets the ACK that TIME-WAIT answers and tries again); with it, a
    // round trip.
    assert_none_stalled(&times);
    assert_eq!(
        counter(&stack, "tcp_time_wait_reopened"),
        39,
        "every connection after the first found its predecessor in TIME-WAIT"
    );
    server.join().unwrap();
    stack.shutdown();
}

#[test]
fn churn_longer_than_time_wait_with_a_small_table_drops_no_syn() {
    if !can_run("churn_longer_than_time_wait_with_a_small_table_drops_no_syn") {
        return;
    }
    let ns = NetNs::new("churn");
    let mut config = test_config();
    // TIME-WAIT lasts 1 s; the churn 3 s. Six client ports taken at
    // random over a table of 8 live and 4 retired places: a reused port
    // often meets its TIME-WAIT, and TIME-WAIT often overflows its cap.
    config.tcp.msl = Duration::from_millis(500);
    config.max_connections = 8;
    config.max_retired = 4;
    let stack = ns.start_stack(config);
    let server = serve(&stack);
    let times = client(&ns, 6, 100_000, 3.0);
    assert!(times.len() > 100, "only {} connections", times.len());
    assert_none_stalled(&times);
    assert_eq!(counter(&stack, "drop_table_full"), 0);
    assert!(counter(&stack, "tcp_time_wait_reopened") > 0);
    assert!(counter(&stack, "tcp_time_wait_evicted") > 0);
    server.join().unwrap();
    stack.shutdown();
}
