//! A panic on the stack's own threads is caught, counted and survived
//! (the connection it hit is reset, the others go on), and after
//! `Config::max_thread_panics` the stack shuts down so that every waiting
//! call fails instead of hanging. The panics come from a device that
//! panics on cue, as a user's own device might.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use stack::device::mem::{MemDevice, MemPair};
use stack::device::{Device, PacketBatch};
use stack::{Config, Stack, TcpListener, TcpStream};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

/// When the wrapped device panics.
#[derive(Clone, Copy)]
enum Cue {
    /// On the first SYN-ACK it is asked to send (on the RX thread).
    FirstSynAck,
    /// On the first packet sent from the timer thread (a retransmission).
    FirstTimerSend,
    /// On every receive.
    EveryReceive,
}

struct Panicky {
    dev: MemDevice,
    cue: Cue,
    fired: AtomicBool,
    /// Packets sent from the timer thread, the one that panicked included.
    timer_sends: AtomicU64,
}

impl Panicky {
    fn new(dev: MemDevice, cue: Cue) -> Arc<Panicky> {
        Arc::new(Panicky {
            dev,
            cue,
            fired: AtomicBool::new(false),
            timer_sends: AtomicU64::new(0),
        })
    }

    fn once(&self) -> bool {
        !self.fired.swap(true, Ordering::SeqCst)
    }
}

impl Device for Panicky {
    fn recv_batch(&self, batch: &mut PacketBatch, timeout: Duration) -> std::io::Result<usize> {
        if matches!(self.cue, Cue::EveryReceive) {
            panic!("test device: receive panics");
        }
        self.dev.recv_batch(batch, timeout)
    }

    fn send(&self, packet: &[u8]) -> std::io::Result<()> {
        let on_timer = thread::current().name() == Some("stack-timers");
        if on_timer {
            self.timer_sends.fetch_add(1, Ordering::SeqCst);
        }
        let syn_ack = packet.len() >= 40 && packet[9] == 6 && packet[33] & 0x12 == 0x12;
        match self.cue {
            Cue::FirstSynAck if syn_ack && self.once() => panic!("test device: SYN-ACK panics"),
            Cue::FirstTimerSend if on_timer && self.once() => panic!("test device: timer panics"),
            _ => self.dev.send(packet),
        }
    }

    fn mtu(&self) -> usize {
        self.dev.mtu()
    }
}

fn counter(stack: &Stack, name: &str) -> u64 {
    let snapshot = stack.stats().snapshot();
    snapshot.iter().find(|(n, _)| *n == name).unwrap().1
}

/// Connects to `server`:7 and checks that bytes come back from an echo.
fn echo_round_trip(client: &Stack, server: SocketAddrV4) {
    let mut s = TcpStream::connect_timeout(client, server, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"still alive").unwrap();
    let mut back = [0u8; 11];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still alive");
}

fn spawn_echo(listener: TcpListener) {
    thread::spawn(move || {
        while let Ok((mut s, _)) = listener.accept() {
            thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

#[test]
fn rx_thread_panic_resets_that_connection_and_the_stack_goes_on() {
    let (a, b) = MemPair::new(256, 1500);
    let device = Panicky::new(a, Cue::FirstSynAck);
    let server = Stack::new(Arc::clone(&device), Config::with_addr(SERVER)).unwrap();
    let client = Stack::new(b, Config::with_addr(CLIENT)).unwrap();
    spawn_echo(TcpListener::bind(&server, (server.addr(), 7)).unwrap());

    // The first handshake hits the panic on the server's RX thread; that
    // connection is reset, and the client's SYN retransmission (or a
    // second connect) finds a working server.
    let addr = SocketAddrV4::new(SERVER, 7);
    let first = TcpStream::connect_timeout(&client, addr, Duration::from_secs(10));
    assert!(device.fired.load(Ordering::SeqCst));
    assert_eq!(counter(&server, "thread_panics"), 1);
    assert_eq!(counter(&server, "tcp_poisoned_reset"), 1);
    drop(first);
    echo_round_trip(&client, addr);
    assert!(!server.is_shut_down());
}

#[test]
fn timer_thread_panic_fails_that_connect_and_timers_go_on() {
    let (a, _silent_peer) = MemPair::new(256, 1500);
    let device = Panicky::new(a, Cue::FirstTimerSend);
    let stack = Stack::new(Arc::clone(&device), Config::with_addr(CLIENT)).unwrap();
    let nobody = SocketAddrV4::new(SERVER, 80);

    // The SYN's first retransmission (RTO 1 s, RFC 6298 §2.1) panics on
    // the timer thread: the connect fails then, not after its timeout.
    let start = Instant::now();
    let err = TcpStream::connect_timeout(&stack, nobody, Duration::from_secs(30)).unwrap_err();
    assert_ne!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(counter(&stack, "thread_panics"), 1);
    assert_eq!(counter(&stack, "tcp_poisoned_reset"), 1);

    // The timer thread still runs: the next connect's SYN is retransmitted.
    let before = device.timer_sends.load(Ordering::SeqCst);
    let err = TcpStream::connect_timeout(&stack, nobody, Duration::from_millis(2500)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(device.timer_sends.load(Ordering::SeqCst) > before);
    assert_eq!(counter(&stack, "thread_panics"), 1);
}

#[test]
fn repeated_panics_shut_the_stack_down_and_waiting_calls_fail() {
    let (a, _peer) = MemPair::new(256, 1500);
    let config = Config {
        max_thread_panics: 3,
        ..Config::with_addr(SERVER)
    };
    let stack = Stack::new(Panicky::new(a, Cue::EveryReceive), config).unwrap();
    let listener = TcpListener::bind(&stack, (stack.addr(), 80)).unwrap();

    // accept() blocks until the RX thread's third panic shuts the stack
    // down; it must then fail, not hang.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = done_tx.send(listener.accept().map(|_| ()));
    });
    let result = done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(result.is_err());
    assert!(stack.is_shut_down());
    assert_eq!(counter(&stack, "thread_panics"), 3);
}
