//! TCP against the Linux kernel through a real TUN device in a private
//! namespace: the kernel as client of our listener and as server for our
//! client, 10 MiB each way checked by SHA-256, half-close, refusal by RST,
//! and 50 connections at once.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener as KernelListener, TcpStream as KernelStream};
use std::time::{Duration, Instant};

use common::{
    can_run, hash_to_eof, host_addr, pattern, sha256_hex, stack_addr, test_config, NetNs,
};
use stack::{TcpListener, TcpStream};

const TEN_MIB: usize = 10 * 1024 * 1024;

#[test]
fn kernel_client_uploads_10mib_then_half_closes() {
    if !can_run("kernel_client_uploads_10mib_then_half_closes") {
        return;
    }
    let ns = NetNs::new("up");
    let stack = ns.start_stack(test_config());
    let listener = TcpListener::bind(&stack, (stack.addr(), 5001)).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, peer) = listener.accept().unwrap();
        assert_eq!(stream.local_addr().unwrap(), stack_addr(5001));
        assert_eq!(peer.ip(), common::HOST);
        // Read until the client's FIN, then answer on the still-open
        // direction: that is the half-close.
        let (digest, n) = hash_to_eof(&stream);
        writeln!(stream, "{digest} {n}").unwrap();
    });

    let data = pattern(TEN_MIB, 0);
    let expected = format!("{} {}\n", sha256_hex(&data), TEN_MIB);
    let reply = ns.kernel(move || {
        let mut s = KernelStream::connect("10.0.0.2:5001").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    });
    assert_eq!(reply, expected);
    server.join().unwrap();
    stack.shutdown();
}

#[test]
fn our_client_downloads_and_uploads_10mib() {
    if !can_run("our_client_downloads_and_uploads_10mib") {
        return;
    }
    let ns = NetNs::new("down");
    let stack = ns.start_stack(test_config());
    let kernel = ns.kernel(|| KernelListener::bind("10.0.0.1:6001").unwrap());
    let kernel_side = std::thread::spawn(move || {
        // First connection: the kernel sends 10 MiB and closes.
        let (mut s, _) = kernel.accept().unwrap();
        s.write_all(&pattern(TEN_MIB, 0)).unwrap();
        drop(s);
        // Second: the kernel reads 10 MiB to EOF and replies its hash.
        let (mut s, peer) = kernel.accept().unwrap();
        let (digest, n) = hash_to_eof(&s);
        writeln!(s, "{digest} {n}").unwrap();
        peer
    });

    let down = TcpStream::connect(&stack, host_addr(6001)).unwrap();
    assert!(
        down.local_addr().unwrap().port() >= 49152,
        "not an ephemeral port"
    );
    let (digest, n) = hash_to_eof(&down);
    assert_eq!(n, TEN_MIB);
    assert_eq!(digest, sha256_hex(&pattern(TEN_MIB, 0)));

    let mut up = TcpStream::connect(&stack, host_addr(6001)).unwrap();
    assert_ne!(up.local_addr().unwrap(), down.local_addr().unwrap());
    up.write_all(&pattern(TEN_MIB, 0)).unwrap();
    up.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    up.read_to_string(&mut reply).unwrap();
    assert_eq!(
        reply,
        format!("{} {}\n", sha256_hex(&pattern(TEN_MIB, 0)), TEN_MIB)
    );
    let peer = kernel_side.join().unwrap();
    assert_eq!(peer.to_string(), up.local_addr().unwrap().to_string());
    stack.shutdown();
}

#[test]
fn closed_ports_refuse_at_once() {
    if !can_run("closed_ports_refuse_at_once") {
        return;
    }
    let ns = NetNs::new("rst");
    let stack = ns.start_stack(test_config());
    // The kernel connecting to a port of ours with no listener gets our
    // RST: refused, not a timeout.
    let (kind, took) = ns.kernel(|| {
        let start = Instant::now();
        let err = KernelStream::connect_timeout(
            &"10.0.0.2:4444".parse().unwrap(),
            Duration::from_secs(5),
        )
        .unwrap_err();
        (err.kind(), start.elapsed())
    });
    assert_eq!(kind, std::io::ErrorKind::ConnectionRefused);
    assert!(took < Duration::from_secs(2), "refusal took {took:?}");
    assert!(stack.stats().get("tcp_rst_tx").unwrap() >= 1);

    // And the kernel's RST refuses our connect to a closed port of its.
    let err =
        TcpStream::connect_timeout(&stack, host_addr(4444), Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    stack.shutdown();
}

#[test]
fn fifty_concurrent_connections() {
    if !can_run("fifty_concurrent_connections") {
        return;
    }
    const CLIENTS: usize = 50;
    const EACH: usize = 100 * 1024;
    let ns = NetNs::new("fifty");
    let stack = ns.start_stack(test_config());
    let listener = TcpListener::bind(&stack, (stack.addr(), 7)).unwrap();
    let acceptor = std::thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..CLIENTS {
            let (stream, _) = listener.accept().unwrap();
            workers.push(std::thread::spawn(move || {
                // Echo (RFC 862) until EOF, then close.
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = (&stream).read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    (&stream).write_all(&buf[..n]).unwrap();
                }
            }));
        }
        for w in workers {
            w.join().unwrap();
        }
    });

    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            ns.kernel(move || {
                std::thread::spawn(move || {
                    let s = KernelStream::connect("10.0.0.2:7").unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    let data: Vec<u8> = (0..EACH).map(|j| ((i * 7 + j) % 256) as u8).collect();
                    let writer = {
                        let mut s = s.try_clone().unwrap();
                        let data = data.clone();
                        std::thread::spawn(move || {
                            s.write_all(&data).unwrap();
                            s.shutdown(Shutdown::Write).unwrap();
                        })
                    };
                    let mut back = Vec::new();
                    (&s).read_to_end(&mut back).unwrap();
                    writer.join().unwrap();
                    (s.local_addr().unwrap().port(), back == data)
                })
            })
        })
        .collect();
    let mut ports = std::collections::HashSet::new();
    for c in clients {
        let (port, same) = c.join().unwrap();
        assert!(same, "connection from port {port} got different bytes back");
        ports.insert(port);
    }
    assert_eq!(ports.len(), CLIENTS, "each client has its own port");
    acceptor.join().unwrap();
    assert_eq!(stack.stats().get("tcp_passive_opens"), Some(CLIENTS as u64));
    stack.shutdown();
}
