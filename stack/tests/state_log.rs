//! Each change of a connection's state is logged at debug level with the
//! 4-tuple as fields, so `RUST_LOG=debug` output can be read connection by
//! connection. Two stacks over an in-memory link, one connection opened
//! and closed, the log captured by a subscriber of this test's own.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stack::device::mem::MemPair;
use stack::{Config, Stack, TcpListener, TcpStream};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_state_change_is_logged_with_the_4_tuple() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let a = Ipv4Addr::new(10, 9, 2, 1);
    let b = Ipv4Addr::new(10, 9, 2, 2);
    let (da, db) = MemPair::new(256, 1500);
    let client = Stack::new(da, Config::with_addr(a)).unwrap();
    let server = Stack::new(db, Config::with_addr(b)).unwrap();
    let listener = TcpListener::bind(&server, SocketAddr::from((b, 7))).unwrap();
    let mut conn = TcpStream::connect(&client, SocketAddr::from((b, 7))).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    let local = conn.local_addr().unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    accepted.read_to_end(&mut rest).unwrap();
    accepted.shutdown(Shutdown::Write).unwrap();
    conn.read_to_end(&mut rest).unwrap();

    // The client's side: SYN-SENT -> ESTABLISHED -> FIN-WAIT-1 -> ... ;
    // each line names both ends.
    let ours = format!("local={local} remote={b}:7");
    let wanted = ["to=ESTABLISHED", "to=FIN-WAIT-1"];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let found = wanted.iter().all(|w| {
            log.lines()
                .any(|l| l.contains("tcp state") && l.contains(&ours) && l.contains(w))
        });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ours} {wanted:?} not all in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    client.shutdown();
    server.shutdown();
}
