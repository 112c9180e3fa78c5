//! TCP against the Linux kernel through a real TUN device in a private
//! namespace: the kernel as client of our listener and as server for our
//! client, 10 MiB each way checked by SHA-256, half-close, refusal by RST,
//! and 50 connections at once.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream as KernelStream};
use std::time::{Duration, Instant};

use common::bulk;
use common::{can_run, host_addr, stack_addr, test_config, NetNs, HOST};
use stack::{TcpListener, TcpStream};

#[test]
fn kernel_client_uploads_10mib_then_half_closes() {
    if !can_run("kernel_client_uploads_10mib_then_half_closes") {
        return;
    }
    let ns = NetNs::new("up");
    let stack = ns.start_stack(test_config());
    bulk::upload_from_kernel(&ns, &stack, stack_addr(5001), HOST.into());
    stack.shutdown();
}

#[test]
fn our_client_downloads_and_uploads_10mib() {
    if !can_run("our_client_downloads_and_uploads_10mib") {
        return;
    }
    let ns = NetNs::new("down");
    let stack = ns.start_stack(test_config());
    bulk::download_then_upload(&ns, &stack, host_addr(6001));
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
