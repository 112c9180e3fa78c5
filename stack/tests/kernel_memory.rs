//! The memory budget against a hostile peer through a real TUN device in a
//! private namespace: 300 connections each hold bytes far out of order,
//! one at the very edge of the 1 MiB window. Without a budget each would
//! make its receive ring allocate the whole window (300 MiB); with an
//! 8 MiB budget the storage stays under it (out-of-order bytes cost a
//! 4 KiB chunk each and are pruned under pressure), and a fresh client
//! served by the kernel's own TCP still transfers exactly.
//!
//! The hostile peer is a Python script on an `AF_PACKET` socket bound to
//! `tun0` (see `common/packets.py`), at 10.0.0.77: on tun0's subnet but
//! not the kernel's, so the kernel neither answers for it nor resets its
//! connections. It sends a bounded number of packets.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream as KernelStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use common::{can_run, counter, pattern, stack_addr, test_config, NetNs};
use stack::TcpListener;

/// `farooo N FAR SPREAD`: N handshakes (window scaling offered, so our
/// window is 1 MiB) from ports 42000.., each completed with an ACK and
/// followed by one byte just past RCV.NXT (out of order; its ACK opens
/// our whole window); then on each connection SPREAD single bytes at
/// offsets FAR, FAR - 40000, ... (each in its own 4 KiB chunk). Reports
/// how many SYN-ACKs came and how many bytes went out.
const PEER_PY: &str = r#"
import json, random, sys

PEER = "10.0.0.77"
M = 0xffffffff
WSCALE = b"\x01\x03\x03\x07"
BASE = 42000

def pace(i):
    """A breath every 16 connections: tun0's queue holds 500 packets."""
    if i % 16 == 15:
        time.sleep(0.005)

def farooo(n, far, spread):
    s = tun()
    # Room for every reply while we are busy sending (root may force it).
    s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
    isn = {}
    for i in range(n):
        isn[BASE + i] = random.getrandbits(32)
        s.send(ip(PEER, US, 6, tcp(PEER, US, BASE + i, 80, isn[BASE + i], 0, SYN, MSS + WSCALE)))
    synacks = {}
    deadline = time.monotonic() + 10
    while len(synacks) < n and time.monotonic() < deadline:
        for seg in from_stack(s, 0.2):
            if seg.flags & (SYN | ACK) == SYN | ACK and BASE <= seg.dport < BASE + n:
                synacks[seg.dport] = (seg.seq + 1) & M
    out = {"synacks": len(synacks)}
    for i, (sport, ack) in enumerate(synacks.items()):
        seq = (isn[sport] + 1) & M
        s.send(ip(PEER, US, 6, tcp(PEER, US, sport, 80, seq, ack, ACK)))
        s.send(ip(PEER, US, 6, tcp(PEER, US, sport, 80, seq + 1, ack, ACK, b"", b"a")))
        pace(i)
    opened = {seg.dport for seg in sniff(s, 1.0, lambda seg: seg.flags & ACK and seg.dport in synacks)}
    out["window_updates"] = len(opened)
    sent = 0
    for i, (sport, ack) in enumerate(synacks.items()):
        pace(i)
        seq = (isn[sport] + 1) & M
        for j in range(spread):
            s.send(ip(PEER, US, 6, tcp(PEER, US, sport, 80, seq + far - j * 40000, ack, ACK, b"", b"z")))
            sent += 1
    out["far_bytes"] = sent
    out["acks"] = len(sniff(s, 1.0, lambda seg: seg.dport in synacks))
    return out

print(json.dumps(farooo(*[int(a) for a in sys.argv[1:]])))
"#;

const CONNECTIONS: usize = 300;
const BUDGET: usize = 8 << 20;
const WINDOW: usize = 1 << 20;
/// Far bytes per connection: with the one just past RCV.NXT, nine chunks
/// each, 300 x 9 x 4 KiB = 10.5 MiB wanted, over the budget.
const SPREAD: usize = 8;
const FRESH: usize = 4 << 20;

#[test]
fn far_out_of_order_bytes_on_300_connections_stay_within_the_budget() {
    let test = "far_out_of_order_bytes_on_300_connections_stay_within_the_budget";
    if !can_run(test) {
        return;
    }
    let mut config = test_config();
    config.memory_budget = BUDGET;
    config.tcp.recv_buffer = WINDOW;
    // Every handshake a real one (a cookie would lose window scaling).
    config.accept_backlog = 2 * CONNECTIONS;
    let ns = NetNs::new("farooo");
    let stack = ns.start_stack(config);

    // Accept the hostile connections and keep them open, unread.
    let hostile = TcpListener::bind(&stack, (stack.addr(), 80)).unwrap();
    let holder = std::thread::spawn(move || {
        hostile.set_accept_timeout(Some(Duration::from_secs(15)));
        let mut held = Vec::new();
        while held.len() < CONNECTIONS {
            match hostile.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => break,
            }
        }
        held
    });
    // The peak of the gauge while everything happens.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stack, stop, peak) = (stack.clone(), Arc::clone(&stop), Arc::clone(&peak));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(counter(&stack, "memory_in_use"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };

    let far = (WINDOW - 1).to_string();
    let report = ns.python(
        PEER_PY,
        &[&CONNECTIONS.to_string(), &far, &SPREAD.to_string()],
    );
    let r: Value = serde_json::from_str(report.trim())
        .unwrap_or_else(|e| panic!("peer script printed {report:?}: {e}"));
    eprintln!("peer: {r}");
    assert_eq!(
        r["synacks"], CONNECTIONS,
        "not every handshake was answered"
    );
    assert_eq!(r["far_bytes"], CONNECTIONS * SPREAD);
    assert_eq!(
        r["window_updates"], CONNECTIONS,
        "not every connection opened its whole window"
    );
    let held = holder.join().unwrap();
    assert_eq!(held.len(), CONNECTIONS);
    let after_attack = counter(&stack, "memory_in_use");

    // A fresh client of the kernel's own TCP, while the 300 are held.
    let fresh = TcpListener::bind(&stack, (stack.addr(), 81)).unwrap();
    let sender = ns.kernel(|| {
        std::thread::spawn(|| {
            let mut s =
                KernelStream::connect_timeout(&stack_addr(81), Duration::from_secs(5)).unwrap();
            s.write_all(&pattern(FRESH, 7)).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
        })
    });
    fresh.set_accept_timeout(Some(Duration::from_secs(10)));
    let (stream, _) = fresh.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = Vec::new();
    (&stream).read_to_end(&mut got).unwrap();
    sender.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();

    let peak = peak.load(Ordering::Relaxed);
    let pruned = counter(&stack, "tcp_ooo_pruned");
    let drops = counter(&stack, "tcp_memory_drops");
    eprintln!(
        "memory: peak {peak}, after the attack {after_attack}, budget {BUDGET}; \
         pruned {pruned} bytes, {drops} drops, {} rings shrunk",
        counter(&stack, "tcp_rings_shrunk")
    );
    assert!(
        got == pattern(FRESH, 7),
        "the fresh transfer differs ({} bytes)",
        got.len()
    );
    assert!(
        peak <= BUDGET as u64,
        "peak {peak} over the budget {BUDGET}"
    );
    assert!(
        peak > 0,
        "nothing was ever charged: the attack did not land"
    );
    assert_eq!(counter(&stack, "memory_budget"), BUDGET as u64);
    assert!(
        pruned + drops > 0,
        "the budget was never under pressure: the test proves nothing"
    );
    drop(held);
    stack.shutdown();
}
