//! The async API (`stack::tokio`) against the Linux kernel through a real
//! TUN device in a private namespace: the kernel as client of our async
//! listener and as server for our async client, 10 MiB each way checked
//! by SHA-256, an echo server answering 50 kernel clients at once,
//! and UDP echo. The kernel's side runs on plain threads inside the
//! namespace; ours in tokio tasks.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::UdpSocket as KernelUdp;
use std::net::{Shutdown, TcpListener as KernelListener, TcpStream as KernelStream};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{
    can_run, hash_to_eof, host_addr, pattern, sha256_hex, stack_addr, test_config, NetNs,
};
use stack::tokio::{TcpListener, TcpStream, UdpSocket};

const TEN_MIB: usize = 10 * 1024 * 1024;
/// Longest any step waits: a hang fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

async fn patient<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .expect("timed out: a task was never woken")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_client_uploads_10mib_to_an_async_listener() {
    if !can_run("kernel_client_uploads_10mib_to_an_async_listener") {
        return;
    }
    let ns = NetNs::new("aup");
    let stack = ns.start_stack(test_config());
    let listener = TcpListener::bind(&stack, (stack.addr(), 5001)).unwrap();
    let data = pattern(TEN_MIB, 0);
    let expected = format!("{} {}\n", sha256_hex(&data), TEN_MIB);
    let kernel = tokio::task::spawn_blocking(move || {
        let reply = ns.kernel(move || {
            let mut s = KernelStream::connect("10.0.0.2:5001").unwrap();
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            s.write_all(&data).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut reply = String::new();
            s.read_to_string(&mut reply).unwrap();
            reply
        });
        (ns, reply)
    });

    let (mut conn, peer) = patient(listener.accept()).await.unwrap();
    assert_eq!(conn.local_addr().unwrap(), stack_addr(5001));
    assert_eq!(peer.ip(), common::HOST);
    // Read to the client's FIN, then answer on the open direction.
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = patient(conn.read(&mut buf)).await.unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n;
    }
    let digest = common::hex(&h.finalize());
    conn.write_all(format!("{digest} {total}\n").as_bytes())
        .await
        .unwrap();
    conn.shutdown().await.unwrap();
    drop(conn);
    let (ns, reply) = patient(kernel).await.unwrap();
    drop(ns);
    assert_eq!(reply, expected);
    stack.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_client_downloads_and_uploads_10mib_with_the_kernel() {
    if !can_run("async_client_downloads_and_uploads_10mib_with_the_kernel") {
        return;
    }
    let ns = NetNs::new("adown");
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

    let mut down = patient(TcpStream::connect(&stack, host_addr(6001)))
        .await
        .unwrap();
    let mut got = Vec::with_capacity(TEN_MIB);
    patient(down.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got.len(), TEN_MIB);
    assert_eq!(sha256_hex(&got), sha256_hex(&pattern(TEN_MIB, 0)));

    let up = patient(TcpStream::connect(&stack, host_addr(6001)))
        .await
        .unwrap();
    let local = up.local_addr().unwrap();
    let (mut rd, mut wr) = up.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(&pattern(TEN_MIB, 0)).await.unwrap();
        wr.shutdown().await.unwrap();
        wr
    });
    let mut reply = String::new();
    patient(rd.read_to_string(&mut reply)).await.unwrap();
    assert_eq!(
        reply,
        format!("{} {}\n", sha256_hex(&pattern(TEN_MIB, 0)), TEN_MIB)
    );
    patient(writer).await.unwrap();
    let peer = tokio::task::spawn_blocking(move || kernel_side.join().unwrap())
        .await
        .unwrap();
    assert_eq!(peer, local);
    drop(ns);
    stack.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_echo_serves_many_kernel_clients_at_once() {
    if !can_run("async_echo_serves_many_kernel_clients_at_once") {
        return;
    }
    const CLIENTS: usize = 50;
    const EACH: usize = 100 * 1024;
    let ns = NetNs::new("aecho");
    let stack = ns.start_stack(test_config());
    let listener = TcpListener::bind(&stack, (stack.addr(), 7)).unwrap();
    // One task per connection on two worker threads: no thread per
    // connection.
    let server = tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut rd, mut wr) = conn.split();
                tokio::io::copy(&mut rd, &mut wr).await.unwrap();
                wr.shutdown().await.unwrap();
            });
        }
    });
    let clients = tokio::task::spawn_blocking(move || {
        let results = ns.kernel(|| {
            let threads: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    std::thread::spawn(move || {
                        let data = pattern(EACH, i);
                        let s = KernelStream::connect("10.0.0.2:7").unwrap();
                        s.set_read_timeout(Some(PATIENCE)).unwrap();
                        let mut w = s.try_clone().unwrap();
                        let sent = data.clone();
                        let writer = std::thread::spawn(move || {
                            w.write_all(&sent).unwrap();
                            w.shutdown(Shutdown::Write).unwrap();
                        });
                        let (digest, n) = hash_to_eof(&s);
                        writer.join().unwrap();
                        (digest, n, sha256_hex(&data))
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        });
        (ns, results)
    });
    let (ns, results) = patient(clients).await.unwrap();
    for (digest, n, want) in results {
        assert_eq!(n, EACH);
        assert_eq!(digest, want);
    }
    server.abort();
    drop(ns);
    stack.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_udp_echo_answers_the_kernel() {
    if !can_run("async_udp_echo_answers_the_kernel") {
        return;
    }
    let ns = NetNs::new("audp");
    let stack = ns.start_stack(test_config());
    let echo = UdpSocket::bind(&stack, (stack.addr(), 7)).unwrap();
    let server = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        for _ in 0..5 {
            let (n, from) = echo.recv_from(&mut buf).await.unwrap();
            echo.send_to(&buf[..n], from).await.unwrap();
        }
    });
    let replies = tokio::task::spawn_blocking(move || {
        let replies = ns.kernel(|| {
            let s = KernelUdp::bind("10.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            (0..5u8)
                .map(|i| {
                    let msg = vec![i; 10 + usize::from(i)];
                    s.send_to(&msg, "10.0.0.2:7").unwrap();
                    let mut buf = [0u8; 2048];
                    let (n, from) = s.recv_from(&mut buf).unwrap();
                    (msg == buf[..n], from)
                })
                .collect::<Vec<_>>()
        });
        (ns, replies)
    });
    let (ns, replies) = patient(replies).await.unwrap();
    for (same, from) in replies {
        assert!(same);
        assert_eq!(from, stack_addr(7));
    }
    patient(server).await.unwrap();
    drop(ns);
    stack.shutdown();
}
