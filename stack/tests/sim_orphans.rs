//! An application that drops a connection hands it to the stack to finish
//! closing; if the peer never finishes (no FIN), the stack resets it after
//! `Config::orphan_timeout` instead of holding it forever.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use stack::device::mem::MemPair;
use stack::{Config, Stack, TcpListener, TcpStream};

const A: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 2);

#[test]
fn dropped_connection_in_fin_wait_2_is_reset_after_the_orphan_timeout() {
    let (da, db) = MemPair::new(256, 1500);
    let mut ca = Config::with_addr(A);
    ca.orphan_timeout = Duration::from_millis(300);
    let a = Stack::new(da, ca).unwrap();
    let b = Stack::new(db, Config::with_addr(B)).unwrap();
    let listener = TcpListener::bind(&b, 80).unwrap();

    let mut client = TcpStream::connect(&a, SocketAddrV4::new(B, 80)).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"bye").unwrap();
    let dropped_at = Instant::now();
    drop(client); // FIN: A goes to FIN-WAIT-2 once B acknowledges it.

    // B reads the data and the FIN but never closes its side.
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    loop {
        let n = server.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"bye");
    // B's ACK of the FIN reaches A a moment later.
    let in_fin_wait_2 = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(2));
        let sockets = a.sockets();
        sockets.len() == 1 && sockets[0].state == "FIN-WAIT-2"
    });
    assert!(
        in_fin_wait_2,
        "the orphan should wait in FIN-WAIT-2: {:?}",
        a.sockets()
    );

    // After the orphan timeout A resets it: B's next write meets the RST.
    let reset = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        matches!(server.write(b"x"), Err(e) if e.kind() == ErrorKind::ConnectionReset)
    });
    assert!(reset, "the peer never saw a reset");
    assert!(dropped_at.elapsed() >= Duration::from_millis(300));
    assert!(a.sockets().is_empty(), "the orphan was not removed");
    assert_eq!(a.stats().get("tcp_orphans_reset"), Some(1));
    a.shutdown();
    b.shutdown();
}
