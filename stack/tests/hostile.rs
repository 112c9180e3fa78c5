//! A hostile wire through a real TUN device in a private namespace: a SYN
//! flood from spoofed sources (RFC 4987), then a barrage of malformed
//! packets, and after each a normal kernel client must still be served.
//!
//! The packets are written by a Python script run inside the test's
//! namespace with an `AF_PACKET` socket bound to `tun0`: bytes sent on it
//! go straight to the TUN reader (our stack) without passing through the
//! kernel's IP layer, so the script controls every byte, checksums and
//! lengths included. Nothing leaves the namespace; every count is bounded.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream as KernelStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use common::{can_run, counter, hex, test_config, NetNs};
use stack::{Stack, TcpListener};

/// Writes packets into tun0 from inside the namespace, on top of the
/// packet library (`common/packets.py`).
///
/// `flood N`: N TCP SYNs to 10.0.0.2:80 from random spoofed sources in
/// 10.0.0.0/24 (not .0, .1, .2, .255) and 10.200.0.0/16, random ports and
/// ISNs, each with an MSS option and correct checksums.
///
/// `garbage N SEED`: N malformed packets of a dozen kinds (see `kinds`),
/// seeded. Prints the number of packets sent.
const INJECT_PY: &str = r#"
import random, sys

def spoofed(r):
    if r.random() < 0.5:
        return "10.0.0.%d" % r.randint(3, 254)
    return "10.200.%d.%d" % (r.randint(0, 255), r.randint(1, 254))

def kinds(r):
    src = spoofed(r)
    sp, seq, ack = r.randint(1024, 65535), r.getrandbits(32), r.getrandbits(32)
    k = r.randrange(13)
    if k == 0:   # random bytes
        return bytes(r.getrandbits(8) for _ in range(r.randint(1, 80)))
    if k == 1:   # IPv4 header cut short
        return ip(src, US, 6, tcp(src, US, sp, 80, seq, 0, 0x02))[:r.randint(1, 19)]
    if k == 2:   # TCP header cut short (IP total length agrees)
        return ip(src, US, 6, tcp(src, US, sp, 80, seq, 0, 0x02)[:r.randint(0, 19)])
    if k == 3:   # bad IP header checksum
        p = bytearray(ip(src, US, 6, tcp(src, US, sp, 80, seq, 0, 0x02, MSS)))
        p[10] ^= 0xff
        return bytes(p)
    if k == 4:   # bad TCP checksum
        return ip(src, US, 6, tcp(src, US, sp, 80, seq, 0, 0x02, MSS, good=False))
    if k == 5:   # zero-length option (kind 2, length 0)
        return ip(src, US, 6, tcp(src, US, sp, 80, seq, 0, 0x02, b"\x02\x00\x00\x00"))
    if k == 6:   # RST for a random tuple
        return ip(src, US, 6, tcp(src, US, sp, r.choice([80, 7, 4444]), seq, ack, 0x14))
    if k == 7:   # ACK for a random tuple (the listener answers RST, or checks a cookie)
        return ip(src, US, 6, tcp(src, US, sp, r.choice([80, 4444]), seq, ack, 0x10, data=b"x" * r.randint(0, 40)))
    if k == 8:   # not IPv4
        return ip(src, US, 6, tcp(src, US, sp, 80, seq, 0, 0x02), ver=6)
    if k == 9:   # a first fragment that never completes (reassembly holds it)
        return ip(src, US, 6, tcp(src, US, sp, 80, seq, 0, 0x02), frag=0x2000)
    if k == 10:  # total length longer than the packet, or shorter than the header
        return ip(src, US, 6, tcp(src, US, sp, 80, seq, 0, 0x02), total=r.choice([1500, 60000, 12]))
    if k == 11:  # bad UDP checksum, and a datagram to a closed port
        return ip(src, US, 17, udp(src, US, sp, r.choice([7, 9999]), b"junk", good=r.random() < 0.5))
    # TCP data offset beyond the segment
    seg = bytearray(tcp(src, US, sp, 80, seq, 0, 0x02))
    seg[12] = 0xf0
    return ip(src, US, 6, bytes(seg))

def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    r = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    s = tun()
    deadline = time.monotonic() + 20
    sent = 0
    for i in range(n):
        if time.monotonic() > deadline:
            break
        if mode == "flood":
            src = spoofed(r)
            p = ip(src, US, 6, tcp(src, US, r.randint(1024, 65535), 80, r.getrandbits(32), 0, 0x02, MSS))
        else:
            p = kinds(r)
        try:
            s.send(p)
            sent += 1
        except OSError:
            pass
        # Let the reader keep up: tun0's queue holds 500 packets.
        if i % 100 == 99:
            time.sleep(0.002)
    print(sent)

main()
"#;

/// Runs the packet script inside `ns` and returns how many it sent.
fn inject(ns: &NetNs, args: &[&str]) -> u64 {
    ns.python(INJECT_PY, args).trim().parse().unwrap()
}

/// A server on port 80 of `stack`: each connection's bytes are read to
/// EOF and answered with their SHA-256 in hex. Runs until `stop`.
fn sha256_server(stack: &Stack, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let listener = TcpListener::bind(stack, (stack.addr(), 80)).unwrap();
    listener.set_accept_timeout(Some(Duration::from_millis(100)));
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let Ok((stream, _)) = listener.accept() else {
                continue;
            };
            std::thread::spawn(move || {
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match (&stream).read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => h.update(&buf[..n]),
                    }
                }
                let _ = (&stream).write_all(hex(&h.finalize()).as_bytes());
            });
        }
    })
}

/// A kernel client in `ns` sends `len` bytes to 10.0.0.2:80 and returns
/// the hash the server replied with and the expected one; every step is
/// bounded by `limit`.
fn kernel_round_trip(ns: &NetNs, len: usize, limit: Duration) -> (String, String, Duration) {
    ns.kernel(move || {
        let start = Instant::now();
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let expected = hex(&Sha256::digest(&data));
        let mut s = KernelStream::connect_timeout(&"10.0.0.2:80".parse().unwrap(), limit)
            .expect("connect during the attack");
        s.set_read_timeout(Some(limit)).unwrap();
        s.set_write_timeout(Some(limit)).unwrap();
        s.write_all(&data).expect("send during the attack");
        s.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply)
            .expect("reply during the attack");
        (reply, expected, start.elapsed())
    })
}

#[test]
fn syn_flood_of_spoofed_sources_does_not_lock_out_a_real_client() {
    if !can_run("syn_flood_of_spoofed_sources_does_not_lock_out_a_real_client") {
        return;
    }
    const FLOOD: &str = "5000";
    let ns = NetNs::new("flood");
    // Let SYN-ACKs to the spoofed 10.200/16 sources leave over tun0 (the
    // namespace's kernel drops them: it does not forward).
    ns.ip(&["route", "add", "10.200.0.0/16", "dev", "tun0"]);
    let config = test_config();
    let backlog = config.accept_backlog;
    let stack = ns.start_stack(config);
    let stop = Arc::new(AtomicBool::new(false));
    let server = sha256_server(&stack, Arc::clone(&stop));

    let sent = inject(&ns, &["flood", FLOOD, "7"]);
    // The spoofed SYNs that got state fill the backlog; the rest got
    // cookies, and none of them got memory.
    let (reply, expected, took) = kernel_round_trip(&ns, 1 << 20, Duration::from_secs(10));
    assert_eq!(reply, expected, "the real client's bytes arrived intact");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    let stats: Vec<_> = stack
        .stats()
        .snapshot()
        .into_iter()
        .filter(|(n, _)| n.starts_with("syn_") || n.starts_with("tcp_") || n.contains("backlog"))
        .collect();
    eprintln!("flood: {sent} SYNs sent, client round trip {took:?}, counters {stats:?}");
    assert!(sent >= 4000, "the script sent only {sent}");
    assert!(counter(&stack, "syn_cookies_sent") > 0);
    assert!(
        counter(&stack, "syn_cookies_ok") >= 1,
        "the real client came in by cookie"
    );
    assert_eq!(counter(&stack, "drop_backlog_full"), 0);
    // Bounded state: the spoofed SYNs hold at most one backlog of
    // half-open connections; everything else was stateless.
    let half_open = stack
        .sockets()
        .iter()
        .filter(|s| s.state == "SYN-RECEIVED")
        .count();
    assert!(half_open <= backlog, "{half_open} half-open connections");
    let opens = counter(&stack, "tcp_passive_opens");
    assert!(opens <= backlog as u64 + 1, "{opens} passive opens");

    // Now forged ACKs for random tuples (inside the junk mix): while
    // cookies are in use each is checked, fails and is answered with a
    // RST; none opens a connection.
    inject(&ns, &["garbage", "1000", "5"]);
    let ping = ns.exec(&["ping", "-c", "1", "-W", "2", "10.0.0.2"]);
    assert!(ping.status.success(), "ping after the forged ACKs failed");
    assert!(counter(&stack, "syn_cookies_bad") > 0);
    assert_eq!(counter(&stack, "tcp_passive_opens"), opens);
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();
    stack.shutdown();
}

#[test]
fn malformed_packet_barrage_is_dropped_and_counted() {
    if !can_run("malformed_packet_barrage_is_dropped_and_counted") {
        return;
    }
    let ns = NetNs::new("junk");
    ns.ip(&["route", "add", "10.200.0.0/16", "dev", "tun0"]);
    let stack = ns.start_stack(test_config());
    let stop = Arc::new(AtomicBool::new(false));
    let server = sha256_server(&stack, Arc::clone(&stop));
    let udp = stack::UdpSocket::bind(&stack, (stack.addr(), 7)).unwrap();

    let sent = inject(&ns, &["garbage", "4000", "42"]);
    let (reply, expected, took) = kernel_round_trip(&ns, 256 * 1024, Duration::from_secs(10));
    assert_eq!(reply, expected);

    let snapshot = stack.stats().snapshot();
    eprintln!("barrage: {sent} packets, client round trip {took:?}, counters {snapshot:?}");
    assert!(sent >= 3000, "the script sent only {sent}");
    for reason in [
        "drop_truncated",
        "drop_bad_length",
        "drop_bad_version",
        "drop_bad_checksum",
        "drop_bad_option",
        "ip_frag_received",
        "tcp_rst_tx",
    ] {
        assert!(counter(&stack, reason) > 0, "{reason} did not move");
    }
    // Datagrams with good checksums were queued for the UDP socket, but
    // never more than its queue depth.
    assert!(counter(&stack, "udp_rx") > 0);
    let queued = stack
        .sockets()
        .iter()
        .find(|s| s.protocol == stack::table::Protocol::Udp)
        .map(|s| s.recv_queue)
        .unwrap();
    assert!(queued <= stack.config().udp_queue_depth, "{queued} queued");
    drop(udp);
    // The RX thread is alive: a ping is answered.
    let ping = ns.exec(&["ping", "-c", "1", "-W", "2", "10.0.0.2"]);
    assert!(ping.status.success(), "ping after the barrage failed");
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();
    stack.shutdown();
}
