//! The socket API over driven stacks in simulated time: non-blocking
//! calls return `WouldBlock` instead of waiting, and what they wait for
//! happens at the simulated time the protocol says (one-way latency 5 ms,
//! no faults unless a test asks for them).

#![allow(clippy::unwrap_used)]

mod sim;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddrV4;
use std::time::Duration;

use sim::{at, on_b, Flow, Sim, A, B};
use stack::device::fault::FaultConfig;
use stack::device::mem::MemPair;
use stack::tcp::state::State;
use stack::{Config, Stack, TcpListener, TcpStream, UdpSocket};

const LATENCY: Duration = Duration::from_millis(5);
const MAX_STEPS: u64 = 100_000;

fn network(faults: FaultConfig) -> Sim {
    Sim::new(
        1,
        FaultConfig {
            latency: LATENCY,
            ..faults
        },
        Config::with_addr(A),
        Config::with_addr(B),
    )
}

fn would_block<T: std::fmt::Debug>(r: std::io::Result<T>) -> bool {
    matches!(r, Err(e) if e.kind() == ErrorKind::WouldBlock)
}

#[test]
fn handshake_and_data_take_the_link_latency_and_no_more() {
    let mut sim = network(FaultConfig::default());
    let listener = TcpListener::bind(&sim.b.stack, (sim.b.stack.addr(), 80)).unwrap();
    listener.set_nonblocking(true).unwrap();
    assert!(would_block(listener.accept()));

    let client = TcpStream::connect_nonblocking(&sim.a.stack, on_b(80)).unwrap();
    assert_eq!(client.state(), State::SynSent);
    assert!(would_block((&client).read(&mut [0; 8])));

    // SYN at 0, SYN-ACK at 5 ms, A established at 10 ms, B's accept queue
    // gets the connection with the ACK at 15 ms.
    let mut established_at = None;
    let mut server = None;
    sim.drive_bounded(MAX_STEPS, |sim| {
        if established_at.is_none() && client.state() == State::Established {
            established_at = Some(sim.now());
        }
        match listener.accept() {
            Ok((s, peer)) => {
                assert_eq!(peer, client.local_addr().unwrap());
                server = Some((s, sim.now()));
                Flow::Done
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Flow::Idle,
            Err(e) => panic!("accept: {e}"),
        }
    });
    let (server, accepted_at) = server.unwrap();
    assert_eq!(established_at, Some(at(2 * LATENCY)));
    assert_eq!(accepted_at, at(3 * LATENCY));

    server.set_nonblocking(true).unwrap();
    assert!(would_block((&server).read(&mut [0; 8])));
    let sent_at = sim.now();
    (&client).write_all(b"ping").unwrap();
    let mut got = Vec::new();
    sim.drive_bounded(MAX_STEPS, |_| {
        let mut buf = [0u8; 8];
        match (&server).read(&mut buf) {
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                Flow::Done
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Flow::Idle,
            Err(e) => panic!("read: {e}"),
        }
    });
    assert_eq!(got, b"ping");
    assert_eq!(sim.now(), sent_at + LATENCY);
}

#[test]
fn udp_recv_from_would_block_until_the_datagram_arrives() {
    let mut sim = network(FaultConfig::default());
    let b = UdpSocket::bind(&sim.b.stack, (sim.b.stack.addr(), 7)).unwrap();
    b.set_nonblocking(true).unwrap();
    let a = UdpSocket::bind(&sim.a.stack, (sim.a.stack.addr(), 0)).unwrap();
    let mut buf = [0u8; 16];
    assert!(would_block(b.recv_from(&mut buf)));
    a.send_to(b"hello", SocketAddrV4::new(B, 7)).unwrap();
    assert!(would_block(b.recv_from(&mut buf)), "not before the latency");
    let mut got = None;
    sim.drive_bounded(MAX_STEPS, |sim| match b.recv_from(&mut buf) {
        Ok((n, from)) => {
            got = Some((buf[..n].to_vec(), from, sim.now()));
            Flow::Done
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => Flow::Idle,
        Err(e) => panic!("recv_from: {e}"),
    });
    assert_eq!(
        got,
        Some((b"hello".to_vec(), a.local_addr().unwrap(), at(LATENCY)))
    );
}

#[test]
fn refused_connect_surfaces_on_the_next_read() {
    let mut sim = network(FaultConfig::default());
    let client = TcpStream::connect_nonblocking(&sim.a.stack, on_b(81)).unwrap();
    let mut refused_at = None;
    sim.drive_bounded(MAX_STEPS, |sim| match (&client).read(&mut [0; 8]) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            refused_at = Some(sim.now());
            Flow::Done
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => Flow::Idle,
        other => panic!("{other:?}"),
    });
    // RFC 9293 §3.10.7.1: B answers the SYN with a RST at once.
    assert_eq!(refused_at, Some(at(2 * LATENCY)));
}

#[test]
fn unanswered_syn_gives_up_after_its_retries_in_simulated_time() {
    let mut sim = network(FaultConfig {
        loss: 1.0,
        ..FaultConfig::default()
    });
    let client = TcpStream::connect_nonblocking(&sim.a.stack, on_b(80)).unwrap();
    let mut failed_at = None;
    sim.drive_bounded(MAX_STEPS, |sim| match (&client).read(&mut [0; 8]) {
        Err(e) if e.kind() == ErrorKind::TimedOut => {
            failed_at = Some(sim.now());
            Flow::Done
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => Flow::Idle,
        other => panic!("{other:?}"),
    });
    // Six retries from a 1 s RTO, doubling (RFC 6298 §5.5) up to the 60 s
    // `max_rto`, then one last RTO to wait for an answer:
    // 1 + 2 + 4 + 8 + 16 + 32 + 60 = 123 s (Linux, whose cap is 120 s,
    // takes 127).
    assert_eq!(failed_at, Some(at(Duration::from_secs(123))));
    assert_eq!(sim.a.link.stats().lost, 7, "the SYN and six retries");
}

#[test]
#[should_panic(expected = "deadlock")]
fn a_run_that_can_never_finish_is_reported_not_hung() {
    let mut sim = network(FaultConfig {
        loss: 1.0,
        ..FaultConfig::default()
    });
    let listener = TcpListener::bind(&sim.b.stack, (sim.b.stack.addr(), 80)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let _client = TcpStream::connect_nonblocking(&sim.a.stack, on_b(80)).unwrap();
    // Waits for a connection that cannot arrive; once the SYN retries are
    // spent nothing is left to happen.
    sim.drive_bounded(MAX_STEPS, |_| match listener.accept() {
        Ok(_) => Flow::Done,
        Err(_) => Flow::Idle,
    });
}

#[test]
#[should_panic(expected = "livelock")]
fn a_run_that_stays_busy_without_finishing_is_reported() {
    let mut sim = network(FaultConfig::default());
    let a = UdpSocket::bind(&sim.a.stack, (sim.a.stack.addr(), 0)).unwrap();
    // Sends forever to a port with no socket: never done, never idle.
    sim.drive_bounded(1_000, |_| {
        a.send_to(b"?", SocketAddrV4::new(B, 9)).unwrap();
        Flow::Busy
    });
}

#[test]
fn poll_drives_only_a_driven_stack() {
    let (dev, _peer) = MemPair::new(8, 1500);
    let stack = Stack::new(dev, Config::with_addr(A)).unwrap();
    let err = stack.poll().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    stack.shutdown();
}

#[test]
fn abort_resets_the_peer_and_fails_every_later_call() {
    let mut sim = network(FaultConfig::default());
    let listener = TcpListener::bind(&sim.b.stack, (sim.b.stack.addr(), 80)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let client = TcpStream::connect_nonblocking(&sim.a.stack, on_b(80)).unwrap();
    let server = sim.accept(MAX_STEPS, &listener);
    (&client).write_all(b"never delivered").unwrap();

    // SO_LINGER 0: a RST goes out at once, and our own calls fail.
    client.abort();
    let aborted = (&client).read(&mut [0; 8]).unwrap_err();
    assert_eq!(aborted.kind(), ErrorKind::ConnectionAborted);
    assert_eq!(
        (&client).write(b"x").unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    let aborted_at = sim.now();
    let mut reset_at = None;
    sim.drive_bounded(MAX_STEPS, |sim| match (&server).read(&mut [0; 64]) {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {
            reset_at = Some(sim.now());
            Flow::Done
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => Flow::Idle,
        other => panic!("{other:?}"),
    });
    // The RST reaches B one latency later, ahead of any data.
    assert_eq!(reset_at, Some(aborted_at + LATENCY));
}
