//! TCP edge cases a hostile peer can reach, through a real TUN device in a
//! private namespace: a blind segment that tries to poison PAWS (RFC 7323
//! §4.3), a FIN followed by data that overlaps it (RFC 9293 §3.10.7.4), a
//! "Land" SYN from our own address (RFC 1122 §3.2.1.3), a SYN scan of a
//! closed port (RSTs rate-limited) and a flood of out-of-window ACKs
//! (answered under the challenge-ACK limit, RFC 5961 §7).
//!
//! A Python script plays the peer from inside the namespace, byte by byte,
//! on an `AF_PACKET` socket bound to `tun0` (see `common/packets.py`). It
//! reads our replies on the same socket to learn our sequence numbers. The
//! peer's address, 10.0.0.77, is on tun0's subnet but not the kernel's, so
//! the kernel neither answers for it nor resets its connections. Every
//! scenario sends a bounded number of packets and waits a bounded time.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{can_run, counter, pattern, test_config, NetNs};
use stack::{Stack, TcpListener};

/// Plays the peer at 10.0.0.77 against our stack at 10.0.0.2:80, on top of
/// the packet library; each mode prints one JSON object of what it saw.
///
/// - `paws`: handshake with timestamps; "hello"; a blind in-window segment
///   with an ACK far beyond anything we sent and a far-future TSval;
///   "world" with the next normal TSval; close.
/// - `fin`: handshake; a FIN at RCV.NXT+100; 200 bytes from RCV.NXT; close.
/// - `land`: a SYN from 10.0.0.2:80 to itself, one from 127.0.0.1, each
///   followed by 0.5 s of listening for a SYN-ACK; then a SYN from the
///   peer, which must get one (so the listening works), and a RST.
/// - `rsts N`: N SYNs to closed port 81 as fast as they go, counting RSTs
///   for 0.3 s after; then after a pause one more SYN, which must get its
///   RST.
/// - `oow N`: handshake; N bare ACKs 1 GiB beyond the window, 2 ms apart,
///   counting our replies for 0.7 s from the first; then data; close.
const PEER_PY: &str = r#"
import json, random, sys

PEER = "10.0.0.77"
M = 0xffffffff

class Peer:
    """One end of a TCP connection to our port 80, played by hand."""

    def __init__(self, s, sport, tsval=None):
        self.s, self.sport = s, sport
        self.snd = random.getrandbits(32)   # our next sequence number
        self.rcv = 0                        # the stack's next sequence number
        self.tsval = tsval                  # our timestamp clock; None: no timestamps
        self.tsecr = 0

    def advance(self, n):
        self.snd = (self.snd + n) & M

    def send(self, flags, data=b"", seq=None, ack=None, tsval=None):
        opts = MSS if flags & SYN else b""
        if self.tsval is not None:
            self.tsval += 1
            opts += ts_option(self.tsval if tsval is None else tsval, self.tsecr)
        seq = self.snd if seq is None else seq
        ack = self.rcv if ack is None else ack
        self.s.send(ip(PEER, US, 6, tcp(PEER, US, self.sport, 80, seq, ack, flags, opts, data)))

    def wait(self, seconds, match=lambda seg: True):
        """Our stack's next segment on this connection that satisfies `match`."""
        seg = sniff_one(self.s, seconds,
                        lambda seg: seg.dst == PEER and seg.dport == self.sport and match(seg))
        if seg is not None and seg.tsval is not None:
            self.tsecr = seg.tsval
        return seg

    def handshake(self):
        self.send(SYN)
        synack = self.wait(2, lambda seg: seg.flags & (SYN | ACK) == SYN | ACK)
        if synack is None:
            sys.exit("no SYN-ACK to the handshake")
        self.advance(1)
        self.rcv = (synack.seq + 1) & M
        self.send(ACK)
        return synack

    def acked(self, seconds=2):
        """The ACK of everything sent so far, or None."""
        return self.wait(seconds, lambda seg: seg.flags & ACK and seg.ack == self.snd)

    def close(self):
        """Our FIN; then the stack's, sent once the test has read end-of-file
        and closed its stream, which we ACK. Whether both went through."""
        self.send(FIN | ACK)
        self.advance(1)
        fin = self.wait(5, lambda seg: seg.flags & FIN)
        if fin is None:
            return False
        self.rcv = (fin.seq + len(fin.data) + 1) & M
        self.send(ACK)
        return fin.ack == self.snd

def paws():
    p = Peer(tun(), 40001, tsval=1000)
    out = {"synack_ts": p.handshake().tsval is not None}
    p.send(PSH | ACK, b"hello")
    out["hello_tsval"] = p.tsval
    p.advance(5)
    out["hello_acked"] = p.acked() is not None
    p.send(PSH | ACK, b"evil", ack=p.rcv + 1000000, tsval=p.tsval + 2000000000)
    challenge = p.wait(2, lambda seg: seg.flags & ACK)
    out["challenge_tsecr"] = challenge and challenge.tsecr
    p.send(PSH | ACK, b"world")
    out["world_tsval"] = p.tsval
    p.advance(5)
    ack = p.acked()
    out["world_tsecr"] = ack and ack.tsecr
    out["closed"] = p.close()
    return out

def fin():
    p = Peer(tun(), 40002)
    p.handshake()
    base = p.snd
    rel = lambda seq: (seq - base) & M
    p.send(FIN | ACK, seq=base + 100)
    held = p.wait(2, lambda seg: seg.flags & ACK)
    out = {"held_ack": held and rel(held.ack)}
    p.send(PSH | ACK, bytes(i % 251 for i in range(200)))
    # The first ACK that moves past the held FIN's sequence number.
    ack = p.wait(3, lambda seg: seg.flags & ACK and 100 < rel(seg.ack) < 1 << 31)
    out["data_ack"] = ack and rel(ack.ack)
    p.advance(101)
    fin = p.wait(5, lambda seg: seg.flags & FIN)
    out["our_fin"] = fin is not None
    if fin is not None:
        p.rcv = (fin.seq + 1) & M
        p.send(ACK)
    return out

def land():
    s = tun()
    out = {}
    for name, src, sport in [("land", US, 80), ("loopback", "127.0.0.1", 40003)]:
        s.send(ip(src, US, 6, tcp(src, US, sport, 80, random.getrandbits(32), 0, SYN, MSS)))
        out[name + "_synacks"] = len(sniff(s, 0.5, lambda seg: seg.flags & SYN))
    p = Peer(s, 40004)
    p.send(SYN)
    synack = p.wait(2, lambda seg: seg.flags & (SYN | ACK) == SYN | ACK)
    out["control_synack"] = synack is not None
    if synack is not None:
        p.send(RST, seq=p.snd + 1)
    return out

def rsts(n):
    s = tun()
    start = time.monotonic()
    for i in range(n):
        s.send(ip(PEER, US, 6, tcp(PEER, US, 20000 + i, 81, random.getrandbits(32), 0, SYN, MSS)))
    out = {"send_secs": time.monotonic() - start}
    burst = sniff(s, 0.3, lambda seg: seg.flags & RST and 20000 <= seg.dport < 20000 + n)
    out["burst_rsts"] = len(burst)
    out["burst_secs"] = time.monotonic() - start
    time.sleep(0.5)
    s.send(ip(PEER, US, 6, tcp(PEER, US, 30000, 81, random.getrandbits(32), 0, SYN, MSS)))
    out["late_rst"] = sniff_one(s, 2, lambda seg: seg.flags & RST and seg.dport == 30000) is not None
    return out

def oow(n):
    p = Peer(tun(), 40005)
    p.handshake()
    start = time.monotonic()
    for _ in range(n):
        p.send(ACK, seq=p.snd + 0x40000000)
        time.sleep(0.002)
    out = {"flood_secs": time.monotonic() - start}
    acks = sniff(p.s, max(0.2, start + 0.7 - time.monotonic()),
                 lambda seg: seg.dst == PEER and seg.dport == p.sport)
    out["acks"] = len(acks)
    out["count_secs"] = time.monotonic() - start
    p.send(PSH | ACK, b"still here")
    p.advance(10)
    out["data_acked"] = p.acked() is not None
    out["closed"] = p.close()
    return out

mode = sys.argv[1]
args = [int(a) for a in sys.argv[2:]]
print(json.dumps({"paws": paws, "fin": fin, "land": land, "rsts": rsts, "oow": oow}[mode](*args)))
"#;

/// Runs the peer script in `mode` and returns what it reported.
fn play(ns: &NetNs, args: &[&str]) -> Value {
    let out = ns.python(PEER_PY, args);
    let report: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("peer script printed {out:?}: {e}"));
    eprintln!("{args:?}: {report}");
    report
}

/// A listener on port 80 whose first connection is read to end-of-file on
/// a thread, then closed (so our FIN goes out). Yields the bytes read and
/// whether end-of-file was reached within `limit`.
fn read_one_connection(stack: &Stack, limit: Duration) -> JoinHandle<(Vec<u8>, bool)> {
    let listener = TcpListener::bind(stack, (stack.addr(), 80)).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        listener.set_accept_timeout(Some(limit));
        let Ok((stream, _)) = listener.accept() else {
            return (Vec::new(), false);
        };
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                return (got, false);
            }
            match (&stream).read(&mut buf) {
                Ok(0) => return (got, true),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => return (got, false),
            }
        }
    })
}

/// Joins a reader from [`read_one_connection`]: it read exactly `want`,
/// then end-of-file.
fn assert_reads(reader: JoinHandle<(Vec<u8>, bool)>, want: &[u8]) {
    let (got, eof) = reader.join().unwrap();
    assert!(got == want, "read {:?}", String::from_utf8_lossy(&got));
    assert!(eof, "no end-of-file after {} bytes", got.len());
}

/// A stack with `config` at 10.0.0.2 in a fresh namespace named after
/// `tag`; `None` (and a message) when `test` cannot run here.
fn setup(test: &str, tag: &str, config: stack::Config) -> Option<(NetNs, Stack)> {
    if !can_run(test) {
        return None;
    }
    let ns = NetNs::new(tag);
    let stack = ns.start_stack(config);
    Some((ns, stack))
}

#[test]
fn blind_segment_with_bad_ack_cannot_poison_paws() {
    let Some((ns, stack)) = setup(
        "blind_segment_with_bad_ack_cannot_poison_paws",
        "paws",
        test_config(),
    ) else {
        return;
    };
    let reader = read_one_connection(&stack, Duration::from_secs(10));
    let r = play(&ns, &["paws"]);
    assert_eq!(r["synack_ts"], true, "timestamps were not negotiated");
    assert_eq!(r["hello_acked"], true);
    // The challenge ACK still echoes the last acceptable TSval, not the
    // blind segment's (RFC 7323 §4.3).
    assert_eq!(r["challenge_tsecr"], r["hello_tsval"]);
    // The real peer's next segment passed PAWS.
    assert_eq!(
        r["world_tsecr"], r["world_tsval"],
        "the real data was refused"
    );
    assert_reads(reader, b"helloworld");
    assert_eq!(r["closed"], true);
    stack.shutdown();
}

#[test]
fn data_overlapping_a_held_fin_is_trimmed_and_ends_the_stream() {
    let Some((ns, stack)) = setup(
        "data_overlapping_a_held_fin_is_trimmed_and_ends_the_stream",
        "finover",
        test_config(),
    ) else {
        return;
    };
    let reader = read_one_connection(&stack, Duration::from_secs(10));
    let r = play(&ns, &["fin"]);
    // The FIN out of order is held: a duplicate ACK of RCV.NXT.
    assert_eq!(r["held_ack"], 0);
    // The 100 bytes before the FIN, and the FIN: nothing past it.
    assert_eq!(r["data_ack"], 101);
    assert_reads(reader, &pattern(100, 0));
    assert_eq!(r["our_fin"], true, "no FIN after the application closed");
    stack.shutdown();
}

#[test]
fn land_and_loopback_syns_are_dropped_and_counted() {
    let Some((ns, stack)) = setup(
        "land_and_loopback_syns_are_dropped_and_counted",
        "land",
        test_config(),
    ) else {
        return;
    };
    let _listener = TcpListener::bind(&stack, (stack.addr(), 80)).unwrap();
    let bad_before = counter(&stack, "drop_bad_address");
    let r = play(&ns, &["land"]);
    assert_eq!(r["land_synacks"], 0, "a SYN-ACK to ourselves");
    assert_eq!(r["loopback_synacks"], 0, "a SYN-ACK to 127.0.0.1");
    assert_eq!(r["control_synack"], true, "a real SYN was not answered");
    assert_eq!(counter(&stack, "drop_bad_address") - bad_before, 2);
    // Only the control SYN opened a connection.
    assert_eq!(counter(&stack, "tcp_passive_opens"), 1);
    stack.shutdown();
}

#[test]
fn rsts_to_a_closed_port_are_rate_limited_and_recover() {
    const SYNS: u64 = 200;
    const RATE: u32 = 20;
    let mut config = test_config();
    config.rsts_per_sec = RATE;
    let Some((ns, stack)) = setup(
        "rsts_to_a_closed_port_are_rate_limited_and_recover",
        "rsts",
        config,
    ) else {
        return;
    };
    let r = play(&ns, &["rsts", &SYNS.to_string()]);
    let burst = r["burst_rsts"].as_u64().unwrap();
    let secs = r["burst_secs"].as_f64().unwrap();
    // The bucket starts full (RATE) and refills at RATE a second while
    // the SYNs are handled; one more for rounding.
    let most = u64::from(RATE) + (f64::from(RATE) * secs).ceil() as u64 + 1;
    assert!(
        burst >= u64::from(RATE),
        "only {burst} RSTs of a full bucket"
    );
    assert!(burst <= most, "{burst} RSTs in {secs:.2} s; at most {most}");
    assert_eq!(r["late_rst"], true, "the limit did not recover");
    // Every SYN was answered or counted; the late one was answered.
    assert_eq!(counter(&stack, "tcp_rst_tx"), burst + 1);
    assert_eq!(counter(&stack, "tcp_rst_rate_limited"), SYNS - burst);
    stack.shutdown();
}

#[test]
fn out_of_window_ack_flood_is_answered_under_the_challenge_limit() {
    let config = test_config();
    let limit = u64::from(config.tcp.challenge_acks_per_sec);
    let Some((ns, stack)) = setup(
        "out_of_window_ack_flood_is_answered_under_the_challenge_limit",
        "oow",
        config,
    ) else {
        return;
    };
    let reader = read_one_connection(&stack, Duration::from_secs(10));
    let r = play(&ns, &["oow", "100"]);
    let acks = r["acks"].as_u64().unwrap();
    let secs = r["count_secs"].as_f64().unwrap();
    // The limit is per one-second window from the first ACK it allows.
    let most = limit * (secs.floor() as u64 + 1);
    assert!(
        acks >= 1,
        "no ACK at all to the first out-of-window segment"
    );
    assert!(acks <= most, "{acks} ACKs in {secs:.2} s; at most {most}");
    // The connection still works.
    assert_eq!(r["data_acked"], true);
    assert_reads(reader, b"still here");
    assert_eq!(r["closed"], true);
    stack.shutdown();
}
