//! RFC 8985 on top of SACK recovery: a lost retransmission is sent again
//! about one SRTT after it went out, and a lost tail is probed after two
//! SRTTs; neither waits for the 200 ms RTO.

use super::*;
use crate::tcp::congestion::Algorithm;

const MSS: u32 = 1460;

fn seg_at(i: u32) -> u32 {
    L + i * MSS
}

/// SACK on, no timestamps, NewReno, immediate ACKs.
fn rack_cfg() -> TcpConfig {
    TcpConfig {
        sack: true,
        congestion: Algorithm::NewReno,
        ..cfg()
    }
}

/// ESTABLISHED with SACK; the handshake ACK came at t=30, so SRTT is 30 ms
/// (RTTVAR 15 ms, RTO the 200 ms floor).
fn established_srtt_30(config: &TcpConfig) -> Connection {
    let syn = TcpRepr {
        options: TcpOptions {
            sack_permitted: true,
            ..SYN_TEMPL.options
        },
        ..SYN_TEMPL
    };
    let mut c = syn_received_with(config, &syn);
    send!(c, time 30, seg(ACK, R, L));
    assert!(c.sack_enabled());
    assert_eq!(c.srtt(), Some(Duration::from_millis(30)));
    assert_eq!(c.rto(), Duration::from_millis(200));
    c
}

/// Every segment emitted at `at`: (seq, payload length).
fn drain_at(c: &mut Connection, at: Instant) -> Vec<(u32, usize)> {
    let mut buf = vec![0u8; 2000];
    let mut v = Vec::new();
    while let Some(repr) = c.poll_transmit(at, &mut buf) {
        v.push((repr.seq.0, repr.payload.len()));
        assert!(v.len() < 100, "poll_transmit never stops");
    }
    v
}

#[test]
fn test_lost_retransmission_is_resent_after_srtt_not_rto() {
    let mut c = established_srtt_30(&rack_cfg());
    let data = vec![7u8; 30 * MSS as usize];
    assert_eq!(c.send(&data), Ok(data.len()));
    let out = drain_at(&mut c, ms(30));
    assert_eq!(out.len(), 10, "RFC 6928 initial window");
    // Segment 0 is lost; 1..4 are SACKed: recovery, segment 0 resent at
    // t=60 (cwnd = ssthresh = 5 segments).
    send!(c, time 60, sack_ack(L, &[(seg_at(1), seg_at(4))]));
    assert_eq!(drain_at(&mut c, ms(60)), [(L, MSS as usize)]);
    // The rest of the flight is SACKed: new data goes out after the
    // retransmission (RFC 6675 NextSeg rule 2).
    send!(c, time 61, sack_ack(L, &[(seg_at(1), seg_at(10))]));
    let out = drain_at(&mut c, ms(61));
    assert!(
        !out.is_empty() && out.iter().all(|&(s, _)| s >= seg_at(10)),
        "{out:?}"
    );
    // The retransmission is lost too. Segment 10, sent after it, is
    // SACKed at t=91: it is overtaken, and lost once SRTT + SRTT/4 =
    // 37.5 ms have passed since t=60: the reorder timer says 97.5 ms.
    send!(c, time 91, sack_ack(L, &[(seg_at(1), seg_at(11))]));
    let out = drain_at(&mut c, ms(91));
    assert!(out.iter().all(|&(s, _)| s != L), "too early: {out:?}");
    let at = Instant::from_micros(97_500);
    assert_eq!(c.poll_timeout(), Some(at));
    assert_eq!(c.stats().lost_retransmits_detected, 0);
    c.handle_timeout(at);
    let out = drain_at(&mut c, at);
    assert_eq!(out.first(), Some(&(L, MSS as usize)), "{out:?}");
    let s = c.stats();
    assert_eq!(s.lost_retransmits_detected, 1);
    assert_eq!(s.retransmit_timeouts, 0);
    // RFC 8985 §3.4 / RFC 5681: cwnd lowered a second time (5 -> 2.5
    // segments).
    assert_eq!(c.cwnd(), 5 * MSS as usize / 2);
    // The second retransmission arrives: everything is acknowledged.
    send!(c, time 130, seg(ACK, R, seg_at(11)));
    assert_eq!(c.stats().retransmit_timeouts, 0);
}

#[test]
fn test_tail_loss_probe_at_two_srtt_starts_recovery() {
    let mut c = established_srtt_30(&rack_cfg());
    let data = vec![7u8; 10 * MSS as usize];
    assert_eq!(c.send(&data), Ok(data.len()));
    assert_eq!(drain_at(&mut c, ms(30)).len(), 10);
    // Segments 8 and 9 (the tail) are lost: the ACK of 0..7 is the last
    // one. SRTT stays 30 ms, so the probe is due 2*SRTT later, well before
    // the RTO at 60 + 200 ms.
    send!(c, time 60, seg(ACK, R, seg_at(8)));
    assert!(drain_at(&mut c, ms(60)).is_empty());
    assert_eq!(c.poll_timeout(), Some(ms(120)));
    c.handle_timeout(ms(120));
    // No new data: the probe is the last segment (RFC 8985 §7.3).
    assert_eq!(drain_at(&mut c, ms(120)), [(seg_at(9), MSS as usize)]);
    assert_eq!(c.stats().tlp_probes, 1);
    // The RTO is armed afresh after the probe; no second probe.
    assert_eq!(c.poll_timeout(), Some(ms(320)));
    // The probe is SACKed above segment 8, sent a PTO before it: lost
    // (RFC 8985 §6.2). Recovery starts and resends it at once.
    send!(c, time 150, sack_ack(seg_at(8), &[(seg_at(9), seg_at(10))]));
    assert_eq!(drain_at(&mut c, ms(150)), [(seg_at(8), MSS as usize)]);
    let s = c.stats();
    assert_eq!((s.fast_retransmits, s.sack_recoveries), (1, 1));
    send!(c, time 180, seg(ACK, R, seg_at(10)));
    assert_eq!(c.send_queue(), 0);
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.stats().retransmit_timeouts, 0);
}

#[test]
fn test_tail_loss_probe_can_be_switched_off() {
    let config = TcpConfig {
        tail_loss_probe: false,
        ..rack_cfg()
    };
    let mut c = established_srtt_30(&config);
    assert_eq!(c.send(&[7u8; 10 * MSS as usize]), Ok(10 * MSS as usize));
    assert_eq!(drain_at(&mut c, ms(30)).len(), 10);
    send!(c, time 60, seg(ACK, R, seg_at(8)));
    // Only the RTO remains.
    assert_eq!(c.poll_timeout(), Some(ms(260)));
    c.handle_timeout(ms(260));
    assert_eq!(c.stats().tlp_probes, 0);
    assert_eq!(c.stats().retransmit_timeouts, 1);
}

#[test]
fn test_tail_loss_probe_sends_new_data_when_the_peer_window_allows() {
    // cwnd-limited with more queued: the probe is the next new segment,
    // outside cwnd (RFC 8985 §7.3).
    let mut c = established_srtt_30(&rack_cfg());
    let data = vec![7u8; 20 * MSS as usize];
    assert_eq!(c.send(&data), Ok(data.len()));
    assert_eq!(drain_at(&mut c, ms(30)).len(), 10);
    assert_eq!(c.poll_timeout(), Some(ms(90)));
    c.handle_timeout(ms(90));
    assert_eq!(drain_at(&mut c, ms(90)), [(seg_at(10), MSS as usize)]);
    assert_eq!(c.stats().tlp_probes, 1);
}
