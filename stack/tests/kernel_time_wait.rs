//! A kernel client reusing one source port against our server, which
//! closes first and so holds each four-tuple in TIME-WAIT: every new SYN
//! must open a new connection at once (RFC 6191), not wait out a SYN
//! retransmission.

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::{can_run, counter, test_config, NetNs};
use stack::TcpListener;

const CONNECTIONS: usize = 40;

/// Connects from 10.0.0.1:40001 again and again (SO_REUSEADDR), reads to
/// EOF each time, and prints each connection's duration in ms.
const CLIENT: &str = r#"
import errno, socket, sys, time
n = int(sys.argv[1])
for i in range(n):
    t0 = time.monotonic()
    while True:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(10)
        try:
            s.bind(("10.0.0.1", 40001))
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
    let listener = TcpListener::bind(&stack, 5003).unwrap();
    let server = thread::spawn(move || {
        for _ in 0..CONNECTIONS {
            let (mut s, _) = listener.accept().unwrap();
            // We write and close first: the four-tuple stays in TIME-WAIT
            // on our side.
            s.write_all(b"bye\n").unwrap();
        }
    });

    let out = ns.python(CLIENT, &[&CONNECTIONS.to_string()]);
    let times: Vec<f64> = out
        .lines()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("after {out}")))
        .collect();
    assert_eq!(times.len(), CONNECTIONS);
    server.join().unwrap();
    // Without the reopening each reuse costs the client's SYN
    // retransmission timeout (1 s); with it, a round trip or two.
    let slow: Vec<_> = times.iter().filter(|&&ms| ms >= 500.0).collect();
    assert!(slow.is_empty(), "connections that stalled (ms): {slow:?}");
    assert_eq!(
        counter(&stack, "tcp_time_wait_reopened"),
        CONNECTIONS as u64 - 1,
        "every connection after the first found its predecessor in TIME-WAIT"
    );
    stack.shutdown();
}
