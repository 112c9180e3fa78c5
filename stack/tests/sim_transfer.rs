//! Two stacks joined by the in-memory device pair through the seeded
//! fault injector (loss, duplication, reordering): bulk transfers both ways
//! arrive exact and in order, also with a reader that stalls long enough
//! to close the window and then resumes.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};

use stack::device::fault::{FaultConfig, FaultInjector};
use stack::device::mem::MemPair;
use stack::{Config, Stack, TcpListener, TcpStream};

const A: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const TEN_MIB: usize = 10 * 1024 * 1024;

fn faults(seed: u64) -> FaultConfig {
    FaultConfig {
        seed,
        loss: 0.05,
        duplicate: 0.01,
        reorder: 0.02,
        ..FaultConfig::default()
    }
}

fn config(addr: Ipv4Addr) -> Config {
    let mut c = Config::with_addr(addr);
    // Memory links have microsecond RTTs: a short RTO floor keeps a test
    // with 5% loss from spending its time waiting out 200 ms timeouts.
    c.tcp.min_rto = Duration::from_millis(10);
    c.tcp.initial_rto = Duration::from_millis(100);
    c.tcp.msl = Duration::from_millis(100);
    c
}

fn pair(seed: u64, b_config: Config) -> (Stack, Stack) {
    let (da, db) = MemPair::new(1024, 1500);
    let a = Stack::new(FaultInjector::new(da, faults(seed)), config(A)).unwrap();
    let b = Stack::new(FaultInjector::new(db, faults(seed + 1)), b_config).unwrap();
    (a, b)
}

fn stream_bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i % 251) as u8) ^ seed).collect()
}

#[test]
fn ten_mib_both_ways_under_loss_duplication_and_reordering() {
    let (a, b) = pair(42, config(B));
    let listener = TcpListener::bind(&b, 9000).unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let writer = {
            let mut s = stream.try_clone().unwrap();
            thread::spawn(move || {
                s.write_all(&stream_bytes(0xb0, TEN_MIB)).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut got = Vec::with_capacity(TEN_MIB);
        (&stream).read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        got
    });

    let client = TcpStream::connect(&a, SocketAddrV4::new(B, 9000)).unwrap();
    let writer = {
        let mut s = client.try_clone().unwrap();
        thread::spawn(move || {
            s.write_all(&stream_bytes(0xa0, TEN_MIB)).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut got = Vec::with_capacity(TEN_MIB);
    (&client).read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    let server_got = server.join().unwrap();

    assert_eq!(got.len(), TEN_MIB);
    assert_eq!(
        Sha256::digest(&got),
        Sha256::digest(stream_bytes(0xb0, TEN_MIB))
    );
    assert_eq!(server_got.len(), TEN_MIB);
    assert_eq!(
        Sha256::digest(&server_got),
        Sha256::digest(stream_bytes(0xa0, TEN_MIB))
    );
    a.shutdown();
    b.shutdown();
}

#[test]
fn stalled_reader_closes_the_window_then_resumes() {
    // A small receive buffer so the stall fills it quickly.
    let mut cb = config(B);
    cb.tcp.recv_buffer = 64 * 1024;
    let (a, b) = pair(7, cb);
    let listener = TcpListener::bind(&b, 9001).unwrap();
    const LEN: usize = 2 * 1024 * 1024;
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        // Stall: let the sender fill our window to zero and probe it.
        thread::sleep(Duration::from_millis(700));
        let mut got = Vec::with_capacity(LEN);
        (&stream).read_to_end(&mut got).unwrap();
        got
    });
    let mut client = TcpStream::connect(&a, SocketAddrV4::new(B, 9001)).unwrap();
    client.write_all(&stream_bytes(0x5a, LEN)).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let got = server.join().unwrap();
    assert_eq!(got.len(), LEN);
    assert!(got == stream_bytes(0x5a, LEN), "bytes differ");
    a.shutdown();
    b.shutdown();
}
