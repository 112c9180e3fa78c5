//! The async API (`stack::tokio`) between two whole stacks joined by the
//! in-memory link, each with its own runtime threads, under a tokio
//! runtime: echo, 10 MiB each way exact by SHA-256, cancellation (a
//! dropped read, accept or `recv_from` loses nothing), back-pressure (a
//! writer facing a reader that does not read gets `Pending`, then
//! finishes), errors as the blocking API maps them, blocking and async
//! sockets on one stack, tasks sharing a listener, IPv6, tokio-util's
//! `LinesCodec`, hyper through hyper-util's `TokioIo`, and what the
//! blocking API has beside reads and writes: `peek`, `info`,
//! `take_error`, and connected UDP sockets (`connect`, `send`, `recv`).

#![allow(clippy::unwrap_used)]

use std::future::{poll_fn, Future};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_util::codec::{Framed, LinesCodec};

use stack::device::mem::MemPair;
use stack::tokio::{TcpListener, TcpStream, UdpSocket};
use stack::{Config, Stack};

const A: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const TEN_MIB: usize = 10 * 1024 * 1024;
/// Packets each direction of the memory link holds.
const LINK_DEPTH: usize = 1024;
const MTU: usize = 1500;
/// Longest any test waits for anything: a hang fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// Two threaded stacks at A and B, joined by a lossless memory link.
fn pair() -> (Stack, Stack) {
    let (da, db) = MemPair::new(LINK_DEPTH, MTU);
    let a = Stack::new(da, Config::with_addr(A)).unwrap();
    let b = Stack::new(db, Config::with_addr(B)).unwrap();
    (a, b)
}

fn on_b(port: u16) -> SocketAddr {
    SocketAddrV4::new(B, port).into()
}

/// Byte i is (i + salt) mod 251.
fn pattern(len: usize, salt: usize) -> Vec<u8> {
    (0..len).map(|i| ((i + salt) % 251) as u8).collect()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Reads to end-of-file; the SHA-256 and the count.
async fn hash_to_eof(mut r: impl AsyncRead + Unpin) -> ([u8; 32], usize) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            return (h.finalize().into(), total);
        }
        h.update(&buf[..n]);
        total += n;
    }
}

/// `f`, failing the test if it takes longer than [`PATIENCE`].
async fn patient<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .expect("timed out: a task was never woken")
}

/// A connected pair: (A's client stream, B's accepted stream).
async fn connected(a: &Stack, b: &Stack, port: u16) -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(b, (B, port)).unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(a, on_b(port)), listener.accept());
    let client = client.unwrap();
    let (server, peer) = accepted.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    assert_eq!(client.peer_addr().unwrap(), on_b(port));
    (client, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_server_answers_several_clients() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&b, (Ipv4Addr::UNSPECIFIED, 7)).unwrap();
    assert_eq!(listener.local_addr().unwrap(), "0.0.0.0:7".parse().unwrap());
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
    let mut clients = Vec::new();
    for i in 0..8 {
        let a = a.clone();
        clients.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(&a, on_b(7)).await.unwrap();
            let msg = format!("hello {i} ").repeat(1000);
            s.write_all(msg.as_bytes()).await.unwrap();
            s.shutdown().await.unwrap();
            let mut back = String::new();
            s.read_to_string(&mut back).await.unwrap();
            assert_eq!(back, msg);
        }));
    }
    for c in clients {
        patient(c).await.unwrap();
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mib_each_way_arrive_exact() {
    let (a, b) = pair();
    let (client, server) = connected(&a, &b, 5001).await;
    let up = pattern(TEN_MIB, 0);
    let down = pattern(TEN_MIB, 7);
    let (up_hash, down_hash) = (sha256(&up), sha256(&down));

    // Each side writes from one task and reads from another, at once.
    let (c_rd, mut c_wr) = client.into_split();
    let (s_rd, mut s_wr) = server.into_split();
    let c_send = tokio::spawn(async move {
        for chunk in up.chunks(100_000) {
            c_wr.write_all(chunk).await.unwrap();
        }
        c_wr.shutdown().await.unwrap();
        c_wr
    });
    let s_send = tokio::spawn(async move {
        s_wr.write_all(&down).await.unwrap();
        // Dropping the owned write half sends the FIN.
        drop(s_wr);
    });
    let s_recv = tokio::spawn(hash_to_eof(s_rd));
    let c_recv = tokio::spawn(hash_to_eof(c_rd));
    assert_eq!(patient(s_recv).await.unwrap(), (up_hash, TEN_MIB));
    assert_eq!(patient(c_recv).await.unwrap(), (down_hash, TEN_MIB));
    patient(c_send).await.unwrap();
    patient(s_send).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_read_loses_no_bytes() {
    let (a, b) = pair();
    let (mut client, mut server) = connected(&a, &b, 5002).await;
    let data = pattern(2 * 1024 * 1024, 3);
    let expected = sha256(&data);
    let writer = tokio::spawn(async move {
        // Small pieces with pauses, so many reads time out between them.
        for chunk in data.chunks(50_000) {
            client.write_all(chunk).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        client.shutdown().await.unwrap();
        client
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut cancelled = 0u32;
    patient(async {
        loop {
            tokio::select! {
                r = server.read(&mut buf) => {
                    let n = r.unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                () = tokio::time::sleep(Duration::from_micros(200)) => cancelled += 1,
            }
        }
    })
    .await;
    assert_eq!(got.len(), 2 * 1024 * 1024, "bytes lost or duplicated");
    assert_eq!(sha256(&got), expected);
    assert!(
        cancelled > 0,
        "no read was ever cancelled: the test proves nothing"
    );
    patient(writer).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_facing_a_slow_reader_gets_pending_then_finishes() {
    let (a, b) = pair();
    let (mut client, server) = connected(&a, &b, 5003).await;
    let chunk = vec![0xa5u8; 64 * 1024];

    // Write without a real waker until the stack refuses: the send buffer
    // and the peer's receive window are full.
    let noop = Waker::noop();
    let mut cx = Context::from_waker(noop);
    let mut written = 0usize;
    loop {
        match Pin::new(&mut client).poll_write(&mut cx, &chunk) {
            Poll::Ready(Ok(n)) => written += n,
            Poll::Ready(Err(e)) => panic!("write failed: {e}"),
            Poll::Pending => break,
        }
        assert!(written < 256 * 1024 * 1024, "poll_write never said Pending");
    }
    assert!(written > 0);

    // A writer now waits for room; the slow reader frees it in steps.
    let total = written + 4 * 1024 * 1024;
    let rest = total - written;
    let writer = tokio::spawn(async move {
        let mut left = rest;
        while left > 0 {
            let n = left.min(chunk.len());
            client.write_all(&chunk[..n]).await.unwrap();
            left -= n;
        }
        client.shutdown().await.unwrap();
        client
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!writer.is_finished(), "the writer did not wait for room");
    let mut slow = server;
    let mut buf = vec![0u8; 8 * 1024];
    let mut got = 0usize;
    patient(async {
        loop {
            let n = slow.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == 0xa5));
            got += n;
            if got % (256 * 1024) < n {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    })
    .await;
    assert_eq!(got, total);
    patient(writer).await.unwrap();
}

/// Polls `fut` once.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_accept_loses_no_connection() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&b, (B, 5004)).unwrap();
    // Nobody is connecting yet: the accept is cancelled by the timeout.
    let early = tokio::time::timeout(Duration::from_millis(20), listener.accept()).await;
    assert!(early.is_err());
    // An accept waits, the connection arrives and wakes it, and the
    // accept is dropped before it is polled again.
    let mut waiting = Box::pin(listener.accept());
    assert!(poll_once(&mut waiting).await.is_pending());
    let mut client = TcpStream::connect(&a, on_b(5004)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(waiting);
    // The connection is still queued for the next accept.
    let (mut s, _) = patient(listener.accept()).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    patient(s.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_echo_and_a_dropped_recv_loses_no_datagram() {
    let (a, b) = pair();
    let server = UdpSocket::bind(&b, (B, 7)).unwrap();
    let client = UdpSocket::bind(&a, (A, 0)).unwrap();
    let client_addr = client.local_addr().unwrap();
    assert_ne!(client_addr.port(), 0);

    let mut buf = [0u8; 2048];
    // Nothing queued: a timed-out recv is dropped.
    let early = tokio::time::timeout(Duration::from_millis(20), server.recv_from(&mut buf)).await;
    assert!(early.is_err());

    let echo = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        for _ in 0..10 {
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            server.send_to(&buf[..n], from).await.unwrap();
        }
    });
    for i in 0..10u8 {
        let msg = vec![i; 100 + usize::from(i)];
        client.send_to(&msg, on_b(7)).await.unwrap();
        let (n, from) = patient(client.recv_from(&mut buf)).await.unwrap();
        assert_eq!(from, on_b(7));
        assert_eq!(&buf[..n], &msg[..]);
    }
    patient(echo).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_the_blocking_apis() {
    let (a, b) = pair();
    // No listener on B's port: the RST refuses the connection.
    let refused = TcpStream::connect(&a, on_b(5999)).await.unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    // No IPv6 address on the stack.
    let v6 = TcpStream::connect(&a, ("fd00::9".parse::<std::net::Ipv6Addr>().unwrap(), 80))
        .await
        .unwrap_err();
    assert_eq!(v6.kind(), io::ErrorKind::AddrNotAvailable);
    // A second listener on a port.
    let _l = TcpListener::bind(&b, (B, 5005)).unwrap();
    assert_eq!(
        TcpListener::bind(&b, (B, 5005)).unwrap_err().kind(),
        io::ErrorKind::AddrInUse
    );

    // Writing after our FIN is a broken pipe.
    let (mut client, mut server) = connected(&a, &b, 5006).await;
    client.shutdown().await.unwrap();
    let e = client.write_all(b"late").await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(server.read(&mut [0u8; 8]).await.unwrap(), 0);

    // A task waiting in a read when the stack shuts down is woken; the
    // shutdown aborted the connection, so it reads end-of-file, as a
    // blocking read does; a write fails.
    let (_client, mut server) = connected(&a, &b, 5007).await;
    let reader = tokio::spawn(async move {
        let n = server.read(&mut [0u8; 8]).await.unwrap();
        (n, server)
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!reader.is_finished());
    b.shutdown();
    let (n, mut server) = patient(reader).await.unwrap();
    assert_eq!(n, 0);
    assert!(server.write_all(b"after").await.is_err());
    // An accept waiting on a stack that shuts down fails.
    let listener = TcpListener::bind(&a, (A, 5012)).unwrap();
    let accepter = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.shutdown();
    let e = patient(accepter).await.unwrap().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotConnected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_and_async_sockets_share_one_stack() {
    let (a, b) = pair();
    // A blocking listener on B serves an async client on A...
    let blocking = stack::TcpListener::bind(&b, (B, 5008)).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = blocking.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let mut s = TcpStream::connect(&a, on_b(5008)).await.unwrap();
    s.write_all(b"mixed").await.unwrap();
    let mut buf = [0u8; 5];
    patient(s.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"mixed");
    tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();

    // ...and an async listener on the same stack serves a blocking one.
    let listener = TcpListener::bind(&b, (B, 5009)).unwrap();
    let a2 = a.clone();
    let client = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = stack::TcpStream::connect(&a2, on_b(5009)).unwrap();
        s.write_all(b"other way").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = String::new();
        s.read_to_string(&mut back).unwrap();
        back
    });
    let (mut conn, _) = patient(listener.accept()).await.unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).await.unwrap();
    conn.write_all(got.to_uppercase().as_bytes()).await.unwrap();
    drop(conn);
    assert_eq!(patient(client).await.unwrap(), "OTHER WAY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_codec_frames_over_the_stream() {
    let (a, b) = pair();
    let (client, server) = connected(&a, &b, 5010).await;
    let server = tokio::spawn(async move {
        let mut lines = Framed::new(server, LinesCodec::new());
        while let Some(line) = lines.next().await {
            let line = line.unwrap();
            lines.send(format!("{} chars", line.len())).await.unwrap();
        }
    });
    let mut lines = Framed::new(client, LinesCodec::new());
    for word in ["one", "three", "twenty-three"] {
        lines.send(word).await.unwrap();
        let reply = patient(lines.next()).await.unwrap().unwrap();
        assert_eq!(reply, format!("{} chars", word.len()));
    }
    drop(lines);
    patient(server).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_serves_and_fetches_over_the_stack() {
    use http_body_util::{BodyExt, Full};
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;

    let (a, b) = pair();
    let listener = TcpListener::bind(&b, (B, 80)).unwrap();
    let server = tokio::spawn(async move {
        let (conn, peer) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| async move {
            let path = req.uri().path().to_owned();
            let body = req.into_body().collect().await?.to_bytes();
            let text = format!("{path} from {peer}: {} bytes", body.len());
            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(text))))
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(conn), service)
            .await
            .unwrap();
    });

    let stream = TcpStream::connect(&a, on_b(80)).await.unwrap();
    let local = stream.local_addr().unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    for (path, len) in [("/a", 0usize), ("/b", 100_000)] {
        let req = Request::post(path)
            .header("host", "10.9.0.2")
            .body(Full::new(Bytes::from(vec![b'x'; len])))
            .unwrap();
        // hyper's contract: a request goes only on a ready connection
        // (after a response, the dispatcher may still be finishing it).
        patient(sender.ready()).await.unwrap();
        let res = patient(sender.send_request(req)).await.unwrap();
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("{path} from {local}: {len} bytes"));
    }
    drop(sender);
    patient(driver).await.unwrap().unwrap();
    patient(server).await.unwrap();
}

/// Reading through a `ReadBuf` with uninitialised room works (tokio's
/// `read_buf` hands one over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_buf_fills_uninitialised_room() {
    let (a, b) = pair();
    let (mut client, mut server) = connected(&a, &b, 5011).await;
    client.write_all(b"into a Vec").await.unwrap();
    client.shutdown().await.unwrap();
    let mut got = Vec::with_capacity(4);
    while patient(server.read_buf(&mut got)).await.unwrap() > 0 {}
    assert_eq!(got, b"into a Vec");
    // poll_read with a full buffer reads nothing and does not wait.
    let mut none = [0u8; 0];
    let mut rb = ReadBuf::new(&mut none);
    let r = poll_fn(|cx| Poll::Ready(Pin::new(&mut server).poll_read(cx, &mut rb))).await;
    assert!(matches!(r, Poll::Ready(Ok(()))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_stream_and_datagram() {
    use std::net::Ipv6Addr;
    const A6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    const B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    let (da, db) = MemPair::new(LINK_DEPTH, MTU);
    let a = Stack::new(
        da,
        Config {
            addr6: Some(A6),
            ..Config::with_addr(A)
        },
    )
    .unwrap();
    let b = Stack::new(
        db,
        Config {
            addr6: Some(B6),
            ..Config::with_addr(B)
        },
    )
    .unwrap();

    // `[::]` takes IPv6 only, as with IPV6_V6ONLY.
    let listener = TcpListener::bind(&b, (Ipv6Addr::UNSPECIFIED, 7)).unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(&a, (B6, 7)), listener.accept());
    let mut client = client.unwrap();
    let (mut server, peer) = accepted.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(peer.ip(), A6);
    assert_eq!(server.local_addr().unwrap(), (B6, 7).into());
    let data = pattern(1024 * 1024, 5);
    let expected = sha256(&data);
    let writer = tokio::spawn(async move {
        client.write_all(&data).await.unwrap();
        client.shutdown().await.unwrap();
        client
    });
    assert_eq!(
        patient(hash_to_eof(&mut server)).await,
        (expected, 1024 * 1024)
    );
    patient(writer).await.unwrap();

    let rx = UdpSocket::bind(&b, (B6, 9)).unwrap();
    let tx = UdpSocket::bind(&a, (Ipv6Addr::UNSPECIFIED, 0)).unwrap();
    tx.send_to(b"over six", (B6, 9)).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = patient(rx.recv_from(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"over six");
    assert_eq!(from.ip(), A6);
    // An IPv4 destination from an IPv6 socket is the caller's mistake.
    let e = tx.send_to(b"x", on_b(9)).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

/// Several tasks awaiting one listener are each woken (a socket keeps a
/// waker per waiting task, not one slot the last task overwrites).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_sharing_a_listener_each_get_a_connection() {
    let (a, b) = pair();
    let listener = std::sync::Arc::new(TcpListener::bind(&b, (B, 5013)).unwrap());
    let accepters: Vec<_> = (0..4)
        .map(|_| {
            let l = std::sync::Arc::clone(&listener);
            tokio::spawn(async move { l.accept().await.unwrap().1 })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(TcpStream::connect(&a, on_b(5013)).await.unwrap());
    }
    let mut peers = Vec::new();
    for t in accepters {
        peers.push(patient(t).await.unwrap());
    }
    let mut locals: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    peers.sort();
    locals.sort();
    assert_eq!(peers, locals);
}

// ---- parity with the blocking API: peek, info, take_error, connected UDP ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peek_waits_shows_the_bytes_and_read_still_gets_them() {
    let (a, b) = pair();
    let (mut client, mut server) = connected(&a, &b, 5020).await;
    let mut buf = [0u8; 16];
    // Nothing yet: the peek waits, and the write wakes it.
    let mut waiting = Box::pin(server.peek(&mut buf));
    assert!(poll_once(&mut waiting).await.is_pending());
    client.write_all(b"hello").await.unwrap();
    let n = patient(waiting).await.unwrap();
    assert_eq!(&buf[..n], b"hello");
    // Peeking again sees the same bytes; a short buffer the first ones.
    let mut two = [0u8; 2];
    assert_eq!(server.peek(&mut two).await.unwrap(), 2);
    assert_eq!(&two, b"he");
    let mut read = [0u8; 5];
    patient(server.read_exact(&mut read)).await.unwrap();
    assert_eq!(&read, b"hello");
    // End-of-file peeks as 0, as it reads.
    client.shutdown().await.unwrap();
    assert_eq!(patient(server.peek(&mut buf)).await.unwrap(), 0);
    assert_eq!(server.read(&mut buf).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_counts_a_transfer_and_take_error_reports_a_reset_once() {
    let (a, b) = pair();
    let (mut client, server) = connected(&a, &b, 5021).await;
    let info = client.info();
    assert_eq!(info.state, stack::tcp::state::State::Established);
    assert!(info.srtt.is_some(), "the handshake measured the RTT");
    assert!(client.take_error().unwrap().is_none());

    let data = pattern(20_000, 3);
    client.write_all(&data).await.unwrap();
    // Everything is acknowledged in time: the server's stack takes it
    // all into its buffer.
    patient(async {
        while client.info().bytes_acked < data.len() as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(server.info().bytes_received, data.len() as u64);

    // The server goes with the data unread: a RST (as Linux does).
    drop(server);
    let e = patient(client.read(&mut [0u8; 8])).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    let e = client.take_error().unwrap().expect("the reset");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    // Cleared by reading it, as SO_ERROR; reads and peeks keep failing.
    assert!(client.take_error().unwrap().is_none());
    let e = client.peek(&mut [0u8; 8]).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_udp_socket_sends_to_and_hears_only_its_peer() {
    let (a, b) = pair();
    let server = UdpSocket::bind(&b, (B, 7)).unwrap();
    let peer = UdpSocket::bind(&a, (A, 0)).unwrap();
    let other = UdpSocket::bind(&a, (A, 0)).unwrap();

    assert_eq!(
        server.peer_addr().unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    assert_eq!(
        server.send(b"x").await.unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    let v6: SocketAddr = "[2001:db8::1]:7".parse().unwrap();
    let e = server.connect(v6).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

    server.connect(peer.local_addr().unwrap()).await.unwrap();
    assert_eq!(server.peer_addr().unwrap(), peer.local_addr().unwrap());
    // The stranger's datagram, sent first, is refused on arrival.
    other.send_to(b"not for you", on_b(7)).await.unwrap();
    peer.send_to(b"from the peer", on_b(7)).await.unwrap();
    let mut buf = [0u8; 32];
    let n = patient(server.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"from the peer");

    // `send` goes to the peer, and the peer connected to us hears it.
    peer.connect(on_b(7)).await.unwrap();
    server.send(b"reply").await.unwrap();
    let n = patient(peer.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"reply");
    // Nothing else was queued: the stranger's datagram was dropped.
    let early = tokio::time::timeout(Duration::from_millis(20), server.recv(&mut buf)).await;
    assert!(early.is_err());
}

/// Writes all of `parts` with vectored writes (empty slices among them),
/// advancing past what each call took, as hyper's writer does.
async fn write_all_vectored(w: &mut (impl AsyncWrite + Unpin), parts: &[Vec<u8>]) {
    use std::io::IoSlice;
    let (mut part, mut offset) = (0, 0);
    while part < parts.len() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(&parts[part][offset..])
            .chain(parts[part + 1..].iter().map(Vec::as_slice))
            .map(IoSlice::new)
            .collect();
        let mut n = patient(w.write_vectored(&slices)).await.unwrap();
        assert!(n > 0 || parts[part][offset..].is_empty());
        while part < parts.len() && n >= parts[part].len() - offset {
            n -= parts[part].len() - offset;
            part += 1;
            offset = 0;
        }
        offset += n;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectored_writes_arrive_whole_and_in_order_on_both_apis() {
    let (a, b) = pair();
    // Pieces around the send buffer's size, with empty ones among them.
    let parts: Vec<Vec<u8>> = [1, 0, 70_000, 3, 0, 300_000, 1448, 2_000_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| pattern(len, i))
        .collect();
    let all: Vec<u8> = parts.concat();

    // The async stream.
    let (mut client, server) = connected(&a, &b, 5020).await;
    assert!(client.is_write_vectored());
    let reader = tokio::spawn(hash_to_eof(server));
    write_all_vectored(&mut client, &parts).await;
    client.shutdown().await.unwrap();
    assert_eq!(patient(reader).await.unwrap(), (sha256(&all), all.len()));

    // The blocking stream, through std's `write_vectored`.
    let listener = TcpListener::bind(&b, (B, 5021)).unwrap();
    let a2 = a.clone();
    let sent = parts.clone();
    let writer = tokio::task::spawn_blocking(move || {
        use std::io::{IoSlice, Write};
        let mut s = stack::TcpStream::connect(&a2, on_b(5021)).unwrap();
        let mut slices: Vec<IoSlice<'_>> = sent.iter().map(|p| IoSlice::new(p)).collect();
        let mut slices = slices.as_mut_slice();
        while !slices.is_empty() {
            let n = s.write_vectored(slices).unwrap();
            assert!(n > 0);
            IoSlice::advance_slices(&mut slices, n);
        }
    });
    let (conn, _) = patient(listener.accept()).await.unwrap();
    let reader = tokio::spawn(hash_to_eof(conn));
    patient(writer).await.unwrap();
    assert_eq!(patient(reader).await.unwrap(), (sha256(&all), all.len()));
}
