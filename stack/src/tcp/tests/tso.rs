//! Super-segments for TCP segmentation offload
//! (`Connection::set_max_segment_payload`): new data goes out in whole MSS
//! units up to the limit, within the congestion and peer windows, with
//! Nagle and sender SWS avoidance deciding a short last unit as they
//! would decide a short segment; every retransmission and probe stays one
//! MSS (RFC 5681 §3.2, RFC 6298 §5.4, RFC 8985 §7.3).

use super::*;
use crate::tcp::congestion::Algorithm;

const MSS: usize = 1460;
/// The limit the runtime sets for a 64 KiB device: 44 whole MSS units.
const LIMIT: usize = 64 * 1024;
const UNITS: usize = LIMIT / MSS;

fn at(i: usize) -> u32 {
    L + (i * MSS) as u32
}

/// One `poll_transmit` with room for a super-segment.
#[track_caller]
fn poll_big(c: &mut Connection, t: u64) -> Option<Out> {
    let mut buf = vec![0u8; 0xffff];
    let repr = c.poll_transmit(ms(t), &mut buf)?;
    Some(Out {
        flags: repr.flags,
        seq: repr.seq.0,
        ack: repr.ack.0,
        window: repr.window,
        options: repr.options,
        payload: repr.payload.to_vec(),
    })
}

/// Every segment emitted at `t`: (seq, payload length).
fn drain_big(c: &mut Connection, t: u64) -> Vec<(u32, usize)> {
    let mut v = Vec::new();
    while let Some(o) = poll_big(c, t) {
        v.push((o.seq, o.payload.len()));
        assert!(v.len() < 1000, "poll_transmit never stops");
    }
    v
}

/// ESTABLISHED (`cfg()` with `config`'s changes) with the 64 KiB limit.
fn tso_established(config: &TcpConfig) -> Connection {
    let mut c = established_with(config);
    c.set_max_segment_payload(LIMIT);
    assert_eq!(c.max_segment_payload(), LIMIT);
    c
}

#[test]
fn test_one_poll_sends_the_whole_initial_window_in_mss_units() {
    let mut c = tso_established(&cfg());
    let before = c.stats().segs_sent;
    assert_eq!(c.send(&[1u8; 40 * MSS + 100]), Ok(40 * MSS + 100));
    let cwnd = c.cwnd();
    assert_eq!(cwnd, 10 * MSS, "RFC 6928 initial window");
    // One segment: the whole congestion window, ten MSS units.
    let out = poll_big(&mut c, 10).unwrap();
    assert_eq!((out.seq, out.payload.len()), (L, 10 * MSS));
    assert_eq!(out.flags, ACK);
    recv_nothing!(c, time 10);
    // Counted as the ten segments the device cuts it into.
    assert_eq!(c.stats().segs_sent - before, 10);
    assert_eq!(c.stats().bytes_sent, 10 * MSS as u64);
    // The ACK grows cwnd; the next super-segment is again whole units,
    // within both windows.
    send!(c, time 20, seg(ACK, R, at(10)));
    let (cwnd, peer) = (c.cwnd(), c.peer_window());
    let out = drain_big(&mut c, 20);
    let sent: usize = out.iter().map(|&(_, n)| n).sum();
    assert!(sent <= cwnd && sent <= peer, "{out:?} cwnd {cwnd}");
    assert!(out.iter().all(|&(_, n)| n % MSS == 0 && n <= UNITS * MSS));
    assert!(out.iter().any(|&(_, n)| n > MSS), "{out:?}");
    assert_eq!(out[0].0, at(10));
}

#[test]
fn test_peer_window_limits_a_super_segment_and_sws_holds_the_rest() {
    let mut c = tso_established(&cfg());
    // The peer shrinks its window to 5000 bytes (its largest stays 65535).
    send!(c, time 0, TcpRepr { window: 5000, ..seg(ACK, R, L) });
    assert_eq!(c.peer_window(), 5000);
    c.send(&[2u8; 8 * MSS]).unwrap();
    // Three units fit; the 620 bytes left of the window are less than
    // half the largest window: sender SWS avoidance holds them.
    assert_eq!(drain_big(&mut c, 1), [(L, 3 * MSS)]);
    // Once acknowledged, the window takes three more.
    send!(c, time 10, TcpRepr { window: 5000, ..seg(ACK, R, at(3)) });
    assert_eq!(drain_big(&mut c, 10), [(at(3), 3 * MSS)]);
}

#[test]
fn test_nagle_holds_the_short_tail_of_a_super_segment() {
    let config = TcpConfig {
        nodelay: false,
        ..cfg()
    };
    let mut c = tso_established(&config);
    c.send(&[3u8; 5 * MSS + 100]).unwrap();
    // The full units go; the 100-byte tail waits for their ACK (RFC 9293
    // §3.7.4), as it would behind five MSS-sized segments.
    assert_eq!(drain_big(&mut c, 1), [(L, 5 * MSS)]);
    send!(c, time 10, seg(ACK, R, at(5)));
    let out = poll_big(&mut c, 10).unwrap();
    assert_eq!((out.seq, out.payload.len()), (at(5), 100));
    assert_eq!(out.flags, ACK | PSH);
}

#[test]
fn test_nodelay_or_fin_sends_the_tail_with_the_units() {
    let mut c = tso_established(&cfg()); // nodelay
    c.send(&[4u8; 5 * MSS + 100]).unwrap();
    let out = poll_big(&mut c, 1).unwrap();
    assert_eq!((out.seq, out.payload.len()), (L, 5 * MSS + 100));
    assert_eq!(out.flags, ACK | PSH);

    let config = TcpConfig {
        nodelay: false,
        ..cfg()
    };
    let mut c = tso_established(&config);
    c.send(&[4u8; 3 * MSS + 100]).unwrap();
    c.close();
    // The FIN rides on the super-segment, which ends the stream.
    let out = poll_big(&mut c, 1).unwrap();
    assert_eq!((out.seq, out.payload.len()), (L, 3 * MSS + 100));
    assert_eq!(out.flags, ACK | PSH | FIN);
    recv_nothing!(c, time 1);
}

#[test]
fn test_fast_retransmit_is_one_mss() {
    let mut c = tso_established(&cfg());
    c.send(&[5u8; 14 * MSS]).unwrap();
    assert_eq!(drain_big(&mut c, 1000), [(L, 10 * MSS)]);
    // The first unit is lost: three duplicate ACKs. The first two each
    // let one new MSS out (RFC 3042), the third resends one MSS at
    // SND.UNA (RFC 5681 §3.2), not the super-segment.
    for (i, t) in [(10, 1050u64), (11, 1051)] {
        send!(c, time t, seg(ACK, R, L));
        assert_eq!(drain_big(&mut c, t), [(at(i), MSS)]);
    }
    send!(c, time 1052, seg(ACK, R, L));
    let out = drain_big(&mut c, 1052);
    assert_eq!(out.first(), Some(&(L, MSS)), "{out:?}");
    assert_eq!(c.stats().fast_retransmits, 1);
    assert_eq!(c.stats().bytes_retransmitted, MSS as u64);
}

#[test]
fn test_timeout_resends_one_mss_at_a_time() {
    let mut c = tso_established(&cfg());
    c.send(&[6u8; 10 * MSS]).unwrap();
    assert_eq!(drain_big(&mut c, 1000), [(L, 10 * MSS)]);
    let rto = c.poll_timeout().unwrap();
    c.handle_timeout(rto);
    let t = rto.total_millis();
    // cwnd is one segment after a timeout (RFC 5681 §3.1): one MSS.
    assert_eq!(drain_big(&mut c, t), [(L, MSS)]);
    assert_eq!(c.stats().bytes_retransmitted, MSS as u64);
    // Its ACK lets two go, still one MSS each: go-back-N resends old
    // data segment by segment, as it was cut on the wire.
    send!(c, time t + 10, seg(ACK, R, at(1)));
    assert_eq!(drain_big(&mut c, t + 10), [(at(1), MSS), (at(2), MSS)]);
}

/// SACK on, NewReno, with the handshake ACK at t=30: SRTT 30 ms.
fn sack_established() -> Connection {
    let config = TcpConfig {
        sack: true,
        congestion: Algorithm::NewReno,
        ..cfg()
    };
    let syn = TcpRepr {
        options: TcpOptions {
            sack_permitted: true,
            ..SYN_TEMPL.options
        },
        ..SYN_TEMPL
    };
    let mut c = syn_received_with(&config, &syn);
    send!(c, time 30, seg(ACK, R, L));
    assert!(c.sack_enabled());
    c.set_max_segment_payload(LIMIT);
    c
}

#[test]
fn test_tail_loss_probe_resends_the_last_mss_not_the_super_segment() {
    let mut c = sack_established();
    c.send(&[7u8; 10 * MSS]).unwrap();
    assert_eq!(drain_big(&mut c, 30), [(L, 10 * MSS)]);
    // Units 8 and 9 are lost: the ACK of 0..7 is the last.
    send!(c, time 60, seg(ACK, R, at(8)));
    assert!(drain_big(&mut c, 60).is_empty());
    assert_eq!(c.poll_timeout(), Some(ms(120)));
    c.handle_timeout(ms(120));
    // RFC 8985 §7.3: the probe is the last segment, one MSS: the tail.
    assert_eq!(drain_big(&mut c, 120), [(at(9), MSS)]);
    assert_eq!(c.stats().tlp_probes, 1);
    // SACKed above unit 8: recovery resends unit 8, one MSS.
    send!(c, time 150, sack_ack(at(8), &[(at(9), at(10))]));
    assert_eq!(drain_big(&mut c, 150), [(at(8), MSS)]);
    assert_eq!(c.stats().bytes_retransmitted, 2 * MSS as u64);
}

#[test]
fn test_tail_loss_probe_of_new_data_is_one_mss() {
    let mut c = sack_established();
    c.send(&[8u8; 30 * MSS]).unwrap();
    assert_eq!(drain_big(&mut c, 30), [(L, 10 * MSS)]);
    assert_eq!(c.poll_timeout(), Some(ms(90)));
    c.handle_timeout(ms(90));
    // The probe is one new segment outside cwnd (RFC 8985 §7.3).
    assert_eq!(drain_big(&mut c, 90), [(at(10), MSS)]);
    assert_eq!(c.stats().tlp_probes, 1);
}

#[test]
fn test_sack_recovery_retransmits_single_mss_holes() {
    let mut c = sack_established();
    c.send(&[9u8; 20 * MSS]).unwrap();
    assert_eq!(drain_big(&mut c, 30), [(L, 10 * MSS)]);
    // Units 0 and 5 of the super-segment are lost on the wire.
    send!(c, time 60, sack_ack(L, &[(at(1), at(5)), (at(6), at(10))]));
    let out = drain_big(&mut c, 60);
    assert_eq!(out.first(), Some(&(L, MSS)), "{out:?}");
    assert!(out.contains(&(at(5), MSS)), "{out:?}");
    // Retransmissions are MSS-sized; only new data may be longer.
    assert!(out.iter().all(|&(s, n)| n == MSS || s >= at(10)), "{out:?}");
}

#[test]
fn test_without_a_limit_segments_stay_one_mss() {
    let mut c = established();
    assert_eq!(c.max_segment_payload(), 0);
    c.send(&[1u8; 10 * MSS]).unwrap();
    let out = drain_big(&mut c, 1);
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|&(_, n)| n == MSS));
    // A limit below one MSS changes nothing either.
    let mut c = established();
    c.set_max_segment_payload(1000);
    c.send(&[1u8; 3 * MSS]).unwrap();
    assert_eq!(drain_big(&mut c, 1), [(L, MSS), (at(1), MSS), (at(2), MSS)]);
}

#[test]
fn test_the_caller_buffer_caps_a_super_segment_in_whole_units() {
    let mut c = tso_established(&cfg());
    c.send(&[1u8; 10 * MSS]).unwrap();
    let mut buf = vec![0u8; 4 * MSS + 500];
    let repr = c.poll_transmit(ms(1), &mut buf).unwrap();
    assert_eq!((repr.seq.0, repr.payload.len()), (L, 4 * MSS));
}
