//! Retransmission (RFC 6298), Karn's rule, give-up, fast retransmit and
//! NewReno recovery (RFC 5681 §3.2, RFC 6582).

use super::*;
use crate::tcp::rtt_histogram::RttHistogram;
use crate::tcp::ConnError;

const MSS: usize = 1460;

#[test]
fn test_established_retransmit_with_exponential_backoff() {
    let mut c = established();
    assert_eq!(c.rto(), Duration::from_millis(200));
    c.send(b"data").unwrap();
    recv!(c, time 1000, ACK | PSH, seq L, ack R);
    assert_eq!(c.poll_timeout(), Some(ms(1200)));
    c.handle_timeout(ms(1199));
    recv_nothing!(c, time 1199);
    c.handle_timeout(ms(1200));
    let out = recv!(c, time 1200, ACK | PSH, seq L, ack R);
    assert_eq!(out.payload, b"data");
    assert_eq!(c.poll_timeout(), Some(ms(1600)));
    c.handle_timeout(ms(1600));
    recv!(c, time 1600, ACK | PSH, seq L, ack R);
    assert_eq!(c.poll_timeout(), Some(ms(2400)));
    assert_eq!(c.stats().retransmit_timeouts, 2);
    assert_eq!(c.stats().bytes_retransmitted, 8);
    // The ACK stops the timer.
    send!(c, time 2000, seg(ACK, R, L + 4));
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn test_rto_from_handshake_sample() {
    let mut c = syn_received();
    send!(c, time 100, seg(ACK, R, L));
    // RFC 6298 §2.2: SRTT = 100, RTTVAR = 50, RTO = 100 + 4*50.
    assert_eq!(c.srtt(), Some(Duration::from_millis(100)));
    assert_eq!(c.rto(), Duration::from_millis(300));
    c.send(b"x").unwrap();
    recv!(c, time 1000, ACK | PSH, seq L, ack R);
    assert_eq!(c.poll_timeout(), Some(ms(1300)));
}

#[test]
fn test_rto_from_data_sample() {
    let mut c = established();
    c.send(b"x").unwrap();
    recv!(c, time 1000, ACK | PSH, seq L, ack R);
    send!(c, time 1080, seg(ACK, R, L + 1));
    // SRTT = 0*7/8 + 80/8 = 10 ms; RTTVAR = 0*3/4 + 80/4 = 20 ms.
    assert_eq!(c.srtt(), Some(Duration::from_millis(10)));
    assert_eq!(c.rto(), Duration::from_millis(200), "clamped to min_rto");
}

#[test]
fn test_karn_no_sample_from_retransmitted_segment() {
    let mut c = established();
    c.send(b"x").unwrap();
    recv!(c, time 1000, ACK | PSH, seq L, ack R);
    c.handle_timeout(ms(1200));
    recv!(c, time 1200, ACK | PSH, seq L, ack R);
    assert_eq!(c.rto(), Duration::from_millis(400));
    // This ACK may be for either transmission: no sample, back-off kept.
    send!(c, time 1210, seg(ACK, R, L + 1));
    assert_eq!(c.srtt(), Some(Duration::ZERO));
    assert_eq!(c.rto(), Duration::from_millis(400));
    // A fresh segment is timed again.
    c.send(b"y").unwrap();
    recv!(c, time 1300, ACK | PSH, seq L + 1, ack R);
    send!(c, time 1380, seg(ACK, R, L + 2));
    assert_eq!(c.srtt(), Some(Duration::from_millis(10)));
    assert_eq!(c.rto(), Duration::from_millis(200));
}

#[test]
fn test_rtt_samples_reach_the_histogram_but_not_under_karn() {
    let histogram = RttHistogram::new();
    let config = TcpConfig {
        rtt_histogram: histogram.clone(),
        ..cfg()
    };
    // The handshake ACK at 0 is the first sample: 0 ms.
    let mut c = established_with(&config);
    c.send(b"x").unwrap();
    recv!(c, time 1000, ACK | PSH, seq L, ack R);
    send!(c, time 1080, seg(ACK, R, L + 1));
    // Retransmitted: its ACK gives no sample (RFC 6298 §3), so none here.
    c.send(b"y").unwrap();
    recv!(c, time 2000, ACK | PSH, seq L + 1, ack R);
    c.handle_timeout(ms(2200));
    recv!(c, time 2200, ACK | PSH, seq L + 1, ack R);
    send!(c, time 2210, seg(ACK, R, L + 2));

    let s = histogram.snapshot();
    assert_eq!(s.count(), 2);
    assert_eq!(s.sum, Duration::from_millis(80));
    let at_most = |bound: Duration| {
        s.cumulative()
            .find(|(b, _)| *b == Some(bound))
            .map(|(_, n)| n)
    };
    assert_eq!(
        at_most(Duration::from_millis(50)),
        Some(1),
        "the 0 ms sample"
    );
    assert_eq!(
        at_most(Duration::from_millis(100)),
        Some(2),
        "and the 80 ms one"
    );
}

#[test]
fn test_gives_up_after_max_retransmits() {
    let config = TcpConfig {
        max_retransmits: 3,
        ..cfg()
    };
    let mut c = established_with(&config);
    c.send(b"lost").unwrap();
    recv!(c, time 1000, ACK | PSH, seq L, ack R);
    for at in [1200, 1600, 2400] {
        assert_eq!(c.poll_timeout(), Some(ms(at)));
        c.handle_timeout(ms(at));
        recv!(c, time at, ACK | PSH, seq L, ack R);
    }
    assert_eq!(c.poll_timeout(), Some(ms(4000)));
    c.handle_timeout(ms(4000));
    assert_eq!(c.error(), Some(ConnError::TimedOut));
    assert_eq!(c.state(), State::Closed);
    // RFC 1122 §4.2.3.5: the peer is told with a RST.
    recv!(c, time 4000, RST, seq L + 4, ack 0);
    assert!(c.is_closed());
    assert!(c.can_send() && c.can_recv());
}

#[test]
fn test_timeout_goes_back_to_snd_una_with_one_segment() {
    let mut c = established();
    c.send(&[5u8; 3 * MSS]).unwrap();
    assert_eq!(drain(&mut c, 1000).len(), 3);
    c.handle_timeout(ms(1200));
    // cwnd is one segment after a timeout (RFC 5681 §3.1).
    let outs = drain(&mut c, 1200);
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].seq, L);
    // Its ACK lets the next ones go (cwnd now 2 segments).
    send!(c, time 1300, seg(ACK, R, L + MSS as u32));
    let outs = drain(&mut c, 1300);
    let seqs: Vec<u32> = outs.iter().map(|o| o.seq).collect();
    assert_eq!(seqs, vec![L + MSS as u32, L + 2 * MSS as u32]);
}

#[test]
fn test_fast_retransmit_on_three_dup_acks_and_newreno_partial_ack() {
    let mut c = established();
    c.send(&[9u8; 6 * MSS]).unwrap();
    assert_eq!(drain(&mut c, 1000).len(), 6);
    let a1 = L + MSS as u32;
    send!(c, time 1050, seg(ACK, R, a1));
    let _ = drain(&mut c, 1050);
    for i in 0..2 {
        send!(c, time 1051 + i, seg(ACK, R, a1));
        assert!(drain(&mut c, 1051 + i).iter().all(|o| o.seq != a1));
    }
    send!(c, time 1053, seg(ACK, R, a1));
    let outs = drain(&mut c, 1053);
    assert_eq!(outs.first().map(|o| o.seq), Some(a1), "fast retransmit");
    assert_eq!(outs[0].payload.len(), MSS);
    assert_eq!(c.stats().fast_retransmits, 1);
    assert_eq!(c.stats().dup_acks, 3);
    // A fourth duplicate does not retransmit again.
    send!(c, time 1054, seg(ACK, R, a1));
    assert!(drain(&mut c, 1054).iter().all(|o| o.seq != a1));
    // Partial ACK (RFC 6582 §3.2 step 4): the next hole goes at once.
    let a2 = L + 3 * MSS as u32;
    send!(c, time 1100, seg(ACK, R, a2));
    let outs = drain(&mut c, 1100);
    assert_eq!(outs.first().map(|o| o.seq), Some(a2));
    assert_eq!(c.stats().fast_retransmits, 1);
}

#[test]
fn test_limited_transmit_sends_new_data_on_first_dup_acks() {
    let mut c = established();
    c.send(&[3u8; 14 * MSS]).unwrap();
    // The initial window: ten segments, then cwnd-limited.
    assert_eq!(drain(&mut c, 1000).len(), 10);
    // RFC 3042: each of the first two duplicate ACKs releases one new
    // segment.
    for (i, t) in [(10u32, 1050u64), (11, 1051)] {
        send!(c, time t, seg(ACK, R, L));
        let outs = drain(&mut c, t);
        assert_eq!(outs.len(), 1);
        assert_eq!(outs[0].seq, L + i * MSS as u32);
    }
    // The third is a fast retransmit of the first segment.
    send!(c, time 1052, seg(ACK, R, L));
    let outs = drain(&mut c, 1052);
    assert_eq!(outs.first().map(|o| o.seq), Some(L));
}

#[test]
fn test_sack_bearing_data_segments_count_as_duplicates() {
    let config = TcpConfig {
        sack: true,
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
    send!(c, time 0, seg(ACK, R, L));
    c.send(&[4u8; 6 * MSS]).unwrap();
    assert_eq!(drain(&mut c, 1000).len(), 6);
    // The peer sends its own data, each segment acknowledging L with a
    // growing SACK block: segment 1 was lost.
    static BYTES: [u8; 100] = [1; 100];
    for i in 0..3u32 {
        let mut options = NO_OPTIONS;
        options.push_sack(SackBlock {
            left: SeqNumber(L + MSS as u32),
            right: SeqNumber(L + (2 + i) * MSS as u32),
        });
        let s = TcpRepr {
            options,
            ..data(R + 100 * i, L, &BYTES)
        };
        send!(c, time 1050 + u64::from(i), s);
    }
    assert_eq!(c.stats().fast_retransmits, 1);
    let outs = drain(&mut c, 1053);
    assert!(outs.iter().any(|o| o.seq == L && o.payload.len() == MSS));
}
