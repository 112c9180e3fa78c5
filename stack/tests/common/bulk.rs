//! 10 MiB each way over TCP between the kernel and the stack, checked by
//! SHA-256: the bodies of the IPv4 (`kernel_tcp.rs`) and IPv6
//! (`kernel_ipv6.rs`) tests, which differ only in the addresses they are
//! given.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{
    IpAddr, Shutdown, SocketAddr, TcpListener as KernelListener, TcpStream as KernelStream,
};
use std::time::Duration;

use stack::{Stack, TcpListener, TcpStream};

use super::{hash_to_eof, pattern, sha256_hex, NetNs};

pub const TEN_MIB: usize = 10 * 1024 * 1024;

/// A kernel client at `host` connects to our listener at `ours`, sends
/// 10 MiB and half-closes; we read to its FIN and answer the SHA-256 and
/// byte count on the direction still open, which the kernel must read.
pub fn upload_from_kernel(ns: &NetNs, stack: &Stack, ours: SocketAddr, host: IpAddr) {
    let listener = TcpListener::bind(stack, ours).unwrap();
    assert_eq!(listener.local_addr().unwrap(), ours);
    let server = std::thread::spawn(move || {
        let (mut stream, peer) = listener.accept().unwrap();
        assert_eq!(stream.local_addr().unwrap(), ours);
        assert_eq!(peer.ip(), host);
        assert_eq!(stream.peer_addr().unwrap(), peer);
        // Read until the client's FIN, then answer on the still-open
        // direction: that is the half-close.
        let (digest, n) = hash_to_eof(&stream);
        writeln!(stream, "{digest} {n}").unwrap();
    });

    let data = pattern(TEN_MIB, 6);
    let expected = format!("{} {}\n", sha256_hex(&data), TEN_MIB);
    let reply = ns.kernel(move || {
        let mut s = KernelStream::connect(ours).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    });
    assert_eq!(reply, expected, "{:?}", stack.stats().snapshot());
    server.join().unwrap();
}

/// Our client connects twice to a kernel listener at `host`, each time
/// from an ephemeral port of `host`'s family: first the kernel sends
/// 10 MiB and closes; then we send 10 MiB and half-close, and the kernel
/// answers the SHA-256 and byte count of what it read.
pub fn download_then_upload(ns: &NetNs, stack: &Stack, host: SocketAddr) {
    let kernel = ns.kernel(move || KernelListener::bind(host).unwrap());
    let kernel_side = std::thread::spawn(move || {
        // First connection: the kernel sends 10 MiB and closes.
        let (mut s, _) = kernel.accept().unwrap();
        s.write_all(&pattern(TEN_MIB, 7)).unwrap();
        drop(s);
        // Second: the kernel reads 10 MiB to EOF and replies its hash.
        let (mut s, peer) = kernel.accept().unwrap();
        let (digest, n) = hash_to_eof(&s);
        writeln!(s, "{digest} {n}").unwrap();
        peer
    });

    let down = TcpStream::connect(stack, host).unwrap();
    let local = down.local_addr().unwrap();
    assert_eq!(local.is_ipv6(), host.is_ipv6(), "{local}");
    assert!(local.port() >= 49152, "not an ephemeral port: {local}");
    let (digest, n) = hash_to_eof(&down);
    assert_eq!(n, TEN_MIB);
    assert_eq!(digest, sha256_hex(&pattern(TEN_MIB, 7)));

    let mut up = TcpStream::connect(stack, host).unwrap();
    assert_ne!(up.local_addr().unwrap(), local);
    drop(down);
    let data = pattern(TEN_MIB, 8);
    up.write_all(&data).unwrap();
    up.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    up.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, format!("{} {}\n", sha256_hex(&data), TEN_MIB));
    let peer = kernel_side.join().unwrap();
    assert_eq!(peer, up.local_addr().unwrap());
}
