//! A listener in a running stack, over a `MemPair` whose other end is
//! driven by hand: passive open, the backlog, SYN cookies and the accept
//! queue, checked packet by packet and by the counters (no root needed;
//! `hostile.rs` does the same against the kernel under a real flood).

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use stack::device::mem::{MemDevice, MemPair};
use stack::device::{Device, PacketBatch};
use stack::wire::ipv4::{self, Ipv4Repr};
use stack::wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr};
use stack::wire::SeqNumber;
use stack::{Config, Stack, TcpListener};

const STACK: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 1);
const CLIENT_ISN: SeqNumber = SeqNumber(7_000);

/// A segment the peer received: flags, seq, ack, destination port, MSS
/// option, whether it offered SACK, payload.
#[derive(Debug)]
struct Got {
    flags: TcpFlags,
    seq: SeqNumber,
    ack: SeqNumber,
    dst_port: u16,
    mss: Option<u16>,
    sack_permitted: bool,
    payload: Vec<u8>,
}

fn send(peer: &MemDevice, port: u16, seq: SeqNumber, ack: SeqNumber, flags: TcpFlags, data: &[u8]) {
    let seg = TcpRepr {
        src_port: port,
        dst_port: 80,
        seq,
        ack,
        flags,
        window: 64_000,
        urgent: 0,
        options: TcpOptions {
            mss: flags.syn().then_some(1460),
            sack_permitted: flags.syn(),
            ..TcpOptions::default()
        },
        payload: data,
    };
    let ip = Ipv4Repr {
        src: PEER,
        dst: STACK,
        protocol: tcp::PROTOCOL,
        ttl: 64,
        payload_len: seg.buffer_len(),
    };
    let mut p = vec![0u8; ip.buffer_len()];
    seg.emit(PEER, STACK, &mut p[ipv4::HEADER_LEN..]).unwrap();
    ip.emit(&mut p).unwrap();
    peer.send(&p).unwrap();
}

/// The next TCP segment the peer receives, within 5 s.
fn next(peer: &MemDevice, batch: &mut PacketBatch, pending: &mut Vec<Got>) -> Got {
    let deadline = Instant::now() + Duration::from_secs(5);
    while pending.is_empty() {
        assert!(Instant::now() < deadline, "nothing arrived");
        peer.recv_batch(batch, Duration::from_millis(20)).unwrap();
        for packet in batch.iter() {
            let (ip, payload) = Ipv4Repr::parse(packet).unwrap();
            if ip.protocol != tcp::PROTOCOL {
                continue;
            }
            let seg = TcpRepr::parse(ip.src, ip.dst, payload, true).unwrap();
            pending.push(Got {
                flags: seg.flags,
                seq: seg.seq,
                ack: seg.ack,
                dst_port: seg.dst_port,
                mss: seg.options.mss,
                sack_permitted: seg.options.sack_permitted,
                payload: seg.payload.to_vec(),
            });
        }
    }
    pending.remove(0)
}

fn counter(stack: &Stack, name: &str) -> u64 {
    stack.stats().get(name).unwrap()
}

/// A stack whose listener on port 80 has a backlog of one, SYN cookies
/// as `cookies` says, accepting with a 5 s deadline; the peer's end of
/// the link.
fn backlog_of_one(cookies: bool) -> (Stack, TcpListener, MemDevice) {
    let (ours, peer) = MemPair::new(64, 1500);
    let config = Config {
        accept_backlog: 1,
        syn_cookies: cookies,
        ..Config::with_addr(STACK)
    };
    let stack = Stack::new(ours, config).unwrap();
    let listener = TcpListener::bind(&stack, (stack.addr(), 80)).unwrap();
    listener.set_accept_timeout(Some(Duration::from_secs(5)));
    (stack, listener, peer)
}

/// With the backlog full and no cookies, a second SYN is dropped and
/// counted, and nothing answers it.
fn a_second_syn_is_dropped(stack: &Stack, peer: &MemDevice) {
    let (mut batch, mut pending) = (PacketBatch::new(16, 1500), Vec::new());
    send(peer, 2001, CLIENT_ISN, SeqNumber(0), TcpFlags::SYN, &[]);
    assert_eq!(next(peer, &mut batch, &mut pending).dst_port, 2001);
    send(peer, 2002, CLIENT_ISN, SeqNumber(0), TcpFlags::SYN, &[]);
    // A RST to a closed port is the marker that the SYN before it was
    // processed (in order, on the one RX thread).
    send(peer, 2003, CLIENT_ISN, SeqNumber(0), TcpFlags::ACK, &[]);
    let marker = next(peer, &mut batch, &mut pending);
    assert!(marker.flags.rst(), "{marker:?}");
    assert_eq!(marker.dst_port, 2003);
    assert_eq!(counter(stack, "drop_backlog_full"), 1);
    assert_eq!(counter(stack, "syn_cookies_sent"), 0);
}

#[test]
fn backlog_overflow_is_answered_by_cookie_and_the_cookie_opens_a_connection() {
    let (stack, listener, peer) = backlog_of_one(true);
    let (mut batch, mut pending) = (PacketBatch::new(16, 1500), Vec::new());

    // The first SYN fills the backlog: a SYN-RECEIVED connection with
    // state, whose SYN-ACK answers SACK.
    send(&peer, 1001, CLIENT_ISN, SeqNumber(0), TcpFlags::SYN, &[]);
    let first = next(&peer, &mut batch, &mut pending);
    assert_eq!(first.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(first.dst_port, 1001);
    assert!(first.sack_permitted);
    let half_open = stack.sockets();
    assert_eq!(half_open.len(), 2, "{half_open:?}");
    assert!(half_open.iter().any(|s| s.state == "SYN-RECEIVED"));
    assert!(half_open
        .iter()
        .any(|s| s.state == "LISTEN" && s.send_queue == 1));

    // The second gets a cookie: MSS only, and no state.
    send(&peer, 1002, CLIENT_ISN, SeqNumber(0), TcpFlags::SYN, &[]);
    let cookie = next(&peer, &mut batch, &mut pending);
    assert_eq!(cookie.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(cookie.dst_port, 1002);
    assert_eq!(cookie.mss, Some(1460));
    assert!(!cookie.sack_permitted);
    assert_eq!(counter(&stack, "syn_cookies_sent"), 1);
    assert_eq!(stack.sockets().len(), 2);

    // A wrong cookie is reset and opens nothing.
    send(
        &peer,
        1002,
        CLIENT_ISN + 1,
        cookie.seq + 5,
        TcpFlags::ACK,
        &[],
    );
    let rst = next(&peer, &mut batch, &mut pending);
    assert_eq!((rst.flags, rst.seq), (TcpFlags::RST, cookie.seq + 5));
    assert_eq!(counter(&stack, "syn_cookies_bad"), 1);

    // The right one, carrying data, opens an established connection
    // straight into the accept queue.
    send(
        &peer,
        1002,
        CLIENT_ISN + 1,
        cookie.seq + 1,
        TcpFlags::ACK | TcpFlags::PSH,
        b"ping",
    );
    let (mut stream, from) = listener.accept().unwrap();
    assert_eq!(from, SocketAddr::from((PEER, 1002)));
    assert_eq!(counter(&stack, "syn_cookies_ok"), 1);
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    // Our data follows the cookie; no second SYN-ACK was sent for it.
    stream.write_all(b"pong").unwrap();
    let data = loop {
        let got = next(&peer, &mut batch, &mut pending);
        assert!(!got.flags.syn(), "a SYN-ACK was sent again: {got:?}");
        if !got.payload.is_empty() {
            break got;
        }
    };
    assert_eq!(
        (data.seq, data.payload.as_slice()),
        (cookie.seq + 1, &b"pong"[..])
    );
    assert_eq!(data.ack, CLIENT_ISN + 5);

    // The first connection completes too; accepting it frees the backlog,
    // so a new SYN gets state again, not a cookie.
    send(
        &peer,
        1001,
        CLIENT_ISN + 1,
        first.seq + 1,
        TcpFlags::ACK,
        &[],
    );
    let (_second, from) = listener.accept().unwrap();
    assert_eq!(from, SocketAddr::from((PEER, 1001)));
    send(&peer, 1003, CLIENT_ISN, SeqNumber(0), TcpFlags::SYN, &[]);
    let third = loop {
        let got = next(&peer, &mut batch, &mut pending);
        if got.dst_port == 1003 {
            break got;
        }
    };
    assert!(
        third.sack_permitted,
        "a cookie, though the backlog had room"
    );
    assert_eq!(counter(&stack, "syn_cookies_sent"), 1);
    assert_eq!(counter(&stack, "tcp_passive_opens"), 3);
    assert_eq!(counter(&stack, "drop_backlog_full"), 0);
}

#[test]
fn without_cookies_a_full_backlog_drops_and_counts() {
    let (stack, _listener, peer) = backlog_of_one(false);
    a_second_syn_is_dropped(&stack, &peer);
}

/// A listener's own backlog overrides `Config::accept_backlog` (128
/// here), and 0 counts as 1, as `listen(2)` takes it.
#[test]
fn a_listeners_own_backlog_overrides_the_config() {
    let (ours, peer) = MemPair::new(64, 1500);
    let config = Config {
        syn_cookies: false,
        ..Config::with_addr(STACK)
    };
    assert_eq!(config.accept_backlog, 128);
    let stack = Stack::new(ours, config).unwrap();
    let _listener = TcpListener::bind_with_backlog(&stack, (stack.addr(), 80), 0).unwrap();
    a_second_syn_is_dropped(&stack, &peer);
}

#[test]
fn an_idle_clients_cookie_is_redeemed_though_the_accept_queue_filled_and_syns_wait_for_room() {
    let (stack, listener, peer) = backlog_of_one(true);
    let (mut batch, mut pending) = (PacketBatch::new(16, 1500), Vec::new());

    // One SYN with state fills the backlog; the next gets a cookie.
    send(&peer, 3001, CLIENT_ISN, SeqNumber(0), TcpFlags::SYN, &[]);
    let first = next(&peer, &mut batch, &mut pending);
    send(&peer, 3002, CLIENT_ISN, SeqNumber(0), TcpFlags::SYN, &[]);
    let cookie = next(&peer, &mut batch, &mut pending);
    assert_eq!(cookie.dst_port, 3002);
    assert!(!cookie.sack_permitted, "not a cookie: {cookie:?}");

    // The first completes and fills the accept queue before the cookie's
    // ACK arrives.
    send(
        &peer,
        3001,
        CLIENT_ISN + 1,
        first.seq + 1,
        TcpFlags::ACK,
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stack
        .sockets()
        .iter()
        .any(|s| s.state == "LISTEN" && s.recv_queue == 1)
    {
        assert!(
            Instant::now() < deadline,
            "the first never joined the queue"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The cookie's client is ESTABLISHED now and, idle, sends nothing
    // after this bare ACK: it must open the connection.
    send(
        &peer,
        3002,
        CLIENT_ISN + 1,
        cookie.seq + 1,
        TcpFlags::ACK,
        &[],
    );
    // A SYN while the accept queue is full is dropped, not answered by a
    // cookie its ACK might not redeem.
    send(&peer, 3003, CLIENT_ISN, SeqNumber(0), TcpFlags::SYN, &[]);
    // A forged ACK's RST marks that everything before it was processed.
    send(
        &peer,
        3009,
        CLIENT_ISN + 1,
        SeqNumber(5),
        TcpFlags::ACK,
        &[],
    );
    let marker = next(&peer, &mut batch, &mut pending);
    assert_eq!((marker.flags, marker.dst_port), (TcpFlags::RST, 3009));
    assert_eq!(counter(&stack, "syn_cookies_ok"), 1);
    assert_eq!(counter(&stack, "syn_cookies_sent"), 1);
    assert_eq!(counter(&stack, "drop_backlog_full"), 1);

    let mut ports: Vec<u16> = (0..2)
        .map(|_| listener.accept().unwrap().1.port())
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, [3001, 3002]);
    // With the queue empty, the retransmitted SYN gets state again.
    send(&peer, 3003, CLIENT_ISN, SeqNumber(0), TcpFlags::SYN, &[]);
    let retried = loop {
        let got = next(&peer, &mut batch, &mut pending);
        if got.dst_port == 3003 {
            break got;
        }
    };
    assert!(
        retried.sack_permitted,
        "a cookie, though the queue had room"
    );
}
