//! Data in ESTABLISHED: delivery, acknowledgment, reassembly, duplicates,
//! delayed ACK, Nagle.

use super::*;

fn read_all(c: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.recv(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

// ---- Tests for the ESTABLISHED state: receiving -------------------------

#[test]
fn test_established_data_is_acked_and_readable() {
    let mut c = established();
    assert!(!c.can_recv());
    send!(c, time 1, data(R, L, b"abcdef"));
    assert!(c.can_recv());
    assert_eq!(c.recv_queue(), 6);
    let out = recv!(c, time 1, ACK, seq L, ack R + 6);
    assert_eq!(usize::from(out.window), RECV_BUF - 6);
    assert_eq!(read_all(&mut c), b"abcdef");
    let mut buf = [0u8; 4];
    assert_eq!(c.recv(&mut buf), Ok(0));
}

#[test]
fn test_established_batch_gets_one_cumulative_ack() {
    let mut c = established();
    send!(c, time 1, data(R, L, b"aa"));
    send!(c, time 1, data(R + 2, L, b"bb"));
    send!(c, time 1, data(R + 4, L, b"cc"));
    recv!(c, time 1, ACK, seq L, ack R + 6);
    recv_nothing!(c, time 1);
}

#[test]
fn test_established_out_of_order_is_reassembled() {
    let mut c = established();
    send!(c, time 1, data(R + 3, L, b"def"));
    // A duplicate ACK at once (RFC 5681 §4.2).
    recv!(c, time 1, ACK, seq L, ack R);
    assert_eq!(c.recv_queue(), 0);
    send!(c, time 2, data(R + 6, L, b"ghi"));
    recv!(c, time 2, ACK, seq L, ack R);
    send!(c, time 3, data(R, L, b"abc"));
    recv!(c, time 3, ACK, seq L, ack R + 9);
    assert_eq!(read_all(&mut c), b"abcdefghi");
}

#[test]
fn test_established_duplicate_data_is_acked_not_delivered_twice() {
    let mut c = established();
    send!(c, time 1, data(R, L, b"abc"));
    recv!(c, time 1, ACK, seq L, ack R + 3);
    send!(c, time 2, data(R, L, b"abc"));
    recv!(c, time 2, ACK, seq L, ack R + 3);
    assert_eq!(read_all(&mut c), b"abc");
    assert_eq!(c.stats().unacceptable, 1);
}

#[test]
fn test_established_overlapping_data_keeps_new_part() {
    let mut c = established();
    send!(c, time 1, data(R, L, b"abcd"));
    send!(c, time 1, data(R + 2, L, b"cdefg"));
    recv!(c, time 1, ACK, seq L, ack R + 7);
    assert_eq!(read_all(&mut c), b"abcdefg");
}

#[test]
fn test_established_overlapping_out_of_order_ranges() {
    let mut c = established();
    send!(c, time 1, data(R + 4, L, b"efgh"));
    send!(c, time 1, data(R + 2, L, b"cdef"));
    send!(c, time 1, data(R + 6, L, b"ghij"));
    send!(c, time 1, data(R, L, b"ab"));
    recv!(c, time 1, ACK, seq L, ack R + 10);
    assert_eq!(read_all(&mut c), b"abcdefghij");
}

#[test]
fn test_established_data_beyond_window_is_trimmed() {
    let config = TcpConfig {
        recv_buffer: 8,
        ..cfg()
    };
    let mut c = established_with(&config);
    send!(c, time 1, data(R, L, b"0123456789"));
    recv!(c, time 1, ACK, seq L, ack R + 8);
    assert_eq!(read_all(&mut c), b"01234567");
}

#[test]
fn test_established_segment_outside_window_gets_ack() {
    let mut c = established();
    send!(c, time 1, data(R + 100_000, L, b"far"));
    recv!(c, time 1, ACK, seq L, ack R);
    send!(c, time 1, data(R - 10, L, b"old"));
    recv!(c, time 1, ACK, seq L, ack R);
    assert_eq!(c.recv_queue(), 0);
    assert_eq!(c.stats().unacceptable, 2);
}

#[test]
fn test_established_segment_without_ack_is_dropped() {
    let mut c = established();
    send!(c, time 1, TcpRepr { flags: PSH, ..data(R, L, b"x") });
    assert_eq!(c.recv_queue(), 0);
    recv_nothing!(c, time 1);
}

// ---- Tests for the ESTABLISHED state: sending ---------------------------

#[test]
fn test_established_send_and_ack_frees_buffer() {
    let mut c = established();
    assert!(c.can_send());
    assert_eq!(c.send(b"hello"), Ok(5));
    assert_eq!(c.send_queue(), 5);
    let out = recv!(c, time 1, ACK | PSH, seq L, ack R);
    assert_eq!(out.payload, b"hello");
    recv_nothing!(c, time 1);
    assert_eq!(c.poll_timeout(), Some(ms(201)));
    send!(c, time 11, seg(ACK, R, L + 5));
    assert_eq!(c.send_queue(), 0);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn test_established_send_buffer_full_would_block() {
    let config = TcpConfig {
        send_buffer: 10,
        ..cfg()
    };
    let mut c = established_with(&config);
    assert_eq!(c.send(b"0123456789abc"), Ok(10));
    assert_eq!(c.send(b"x"), Ok(0));
    assert!(!c.can_send());
    assert_eq!(c.send_free(), 0);
}

#[test]
fn test_established_sends_up_to_initial_cwnd() {
    let mut c = established();
    c.send(&[1u8; 30_000]).unwrap();
    let outs = drain(&mut c, 1);
    // RFC 6928: ten segments (min(10*1460, max(2*1460, 14600))).
    assert_eq!(outs.len(), 10);
    assert!(outs.iter().all(|o| o.payload.len() == 1460));
    let mut seq = L;
    for o in &outs {
        assert_eq!(o.seq, seq);
        seq += 1460;
    }
}

#[test]
fn test_established_respects_peer_window() {
    let mut c = established();
    send!(c, time 1, TcpRepr { window: 1000, ..seg(ACK, R, L) });
    c.send(&[1u8; 3000]).unwrap();
    let outs = drain(&mut c, 1);
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].payload.len(), 1000);
}

// ---- Delayed ACK (RFC 1122 §4.2.3.2) ------------------------------------

fn delayed() -> Connection {
    established_with(&TcpConfig {
        delayed_ack: Some(Duration::from_millis(40)),
        ..cfg()
    })
}

#[test]
fn test_delayed_ack_waits_for_timer() {
    let mut c = delayed();
    send!(c, time 100, data(R, L, b"one"));
    recv_nothing!(c, time 100);
    assert_eq!(c.poll_timeout(), Some(ms(140)));
    c.handle_timeout(ms(139));
    recv_nothing!(c, time 139);
    c.handle_timeout(ms(140));
    recv!(c, time 140, ACK, seq L, ack R + 3);
    assert_eq!(c.poll_timeout(), None);
}

/// A full-sized segment's payload: `cfg()` has no options, so the MSS.
const FULL: usize = 1460;
static FULL_SEG: [u8; FULL] = [7; FULL];
static SUPER_SEG: [u8; 44 * FULL] = [7; 44 * FULL];

#[test]
fn test_delayed_ack_every_second_full_sized_segment() {
    let mut c = delayed();
    send!(c, time 100, data(R, L, &FULL_SEG));
    recv_nothing!(c, time 100);
    send!(c, time 101, data(R + FULL as u32, L, &FULL_SEG));
    recv!(c, time 101, ACK, seq L, ack R + 2 * FULL as u32);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn test_delayed_ack_small_segments_count_by_bytes() {
    // Two small segments are not two full-sized ones: the ACK waits for
    // the timer (RFC 1122 §4.2.3.2 asks only for every second full-sized
    // segment).
    let mut c = delayed();
    send!(c, time 100, data(R, L, b"one"));
    recv_nothing!(c, time 100);
    send!(c, time 101, data(R + 3, L, b"two"));
    recv_nothing!(c, time 101);
    assert_eq!(c.poll_timeout(), Some(ms(140)));
    c.handle_timeout(ms(140));
    recv!(c, time 140, ACK, seq L, ack R + 6);
}

#[test]
fn test_delayed_ack_super_segment_is_acked_at_once() {
    // A sender's 64 KiB TSO super-segment that arrives unsplit (generic
    // receive offload) is acknowledged as the 44 segments it merges
    // would have been: at once.
    let mut c = established_with(&TcpConfig {
        delayed_ack: Some(Duration::from_millis(40)),
        // The unscaled window (65535) takes the whole super-segment.
        recv_buffer: 0xffff,
        ..cfg()
    });
    send!(c, time 100, data(R, L, &SUPER_SEG));
    recv!(c, time 100, ACK, seq L, ack R + SUPER_SEG.len() as u32);
    assert_eq!(c.recv_queue(), SUPER_SEG.len());
}

#[test]
fn test_delayed_ack_not_for_out_of_order() {
    let mut c = delayed();
    send!(c, time 100, data(R + 3, L, b"two"));
    recv!(c, time 100, ACK, seq L, ack R);
}

#[test]
fn test_delayed_ack_piggybacks_on_data() {
    let mut c = delayed();
    send!(c, time 100, data(R, L, b"ping"));
    c.send(b"pong").unwrap();
    let out = recv!(c, time 100, ACK | PSH, seq L, ack R + 4);
    assert_eq!(out.payload, b"pong");
    recv_nothing!(c, time 100);
}

// ---- Nagle (RFC 9293 §3.7.4) --------------------------------------------

#[test]
fn test_nagle_holds_small_segment_while_unacked() {
    let mut c = established_with(&TcpConfig {
        nodelay: false,
        ..cfg()
    });
    c.send(b"a").unwrap();
    recv!(c, time 1, ACK | PSH, seq L, ack R);
    c.send(b"b").unwrap();
    recv_nothing!(c, time 1);
    c.send(b"c").unwrap();
    recv_nothing!(c, time 1);
    send!(c, time 5, seg(ACK, R, L + 1));
    let out = recv!(c, time 5, ACK | PSH, seq L + 1, ack R);
    assert_eq!(out.payload, b"bc");
}

#[test]
fn test_nodelay_sends_small_segments_at_once() {
    let mut c = established();
    c.send(b"a").unwrap();
    recv!(c, time 1, ACK | PSH, seq L, ack R);
    c.send(b"b").unwrap();
    recv!(c, time 1, ACK | PSH, seq L + 1, ack R);
}

#[test]
fn test_nagle_sends_full_segments() {
    let mut c = established_with(&TcpConfig {
        nodelay: false,
        ..cfg()
    });
    c.send(b"a").unwrap();
    recv!(c, time 1, ACK | PSH, seq L, ack R);
    c.send(&[0u8; 2000]).unwrap();
    let out = recv!(c, time 1, ACK, seq L + 1, ack R);
    assert_eq!(out.payload.len(), 1460);
    // The 540-byte tail waits for the ACK.
    recv_nothing!(c, time 1);
}
