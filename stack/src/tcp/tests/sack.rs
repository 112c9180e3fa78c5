//! The SACK sender (RFC 6675 via `tcp::sack::Scoreboard`): recovery
//! repairs several holes in one round trip, and SACK blocks never shrink
//! our data segments.

use super::*;
use crate::wire::tcp::Timestamps;

/// SACK negotiated, no timestamps: full segments carry 1460 bytes.
fn sack_cfg() -> TcpConfig {
    TcpConfig {
        sack: true,
        congestion: crate::tcp::congestion::Algorithm::NewReno,
        ..cfg()
    }
}

fn established_sack() -> Connection {
    let syn = TcpRepr {
        options: TcpOptions {
            sack_permitted: true,
            ..SYN_TEMPL.options
        },
        ..SYN_TEMPL
    };
    let mut c = syn_received_with(&sack_cfg(), &syn);
    send!(c, time 0, seg(ACK, R, L));
    assert!(c.sack_enabled());
    c
}

const MSS: u32 = 1460;

/// Sends the initial window: ten full segments from L.
fn ten_segments_out(c: &mut Connection) {
    let data = vec![7u8; 10 * MSS as usize];
    assert_eq!(c.send(&data), Ok(data.len()));
    let out = drain(c, 1);
    assert_eq!(out.len(), 10, "RFC 6928 initial window");
    for (i, o) in out.iter().enumerate() {
        assert_eq!((o.seq, o.payload.len()), (L + i as u32 * MSS, MSS as usize));
    }
}

#[test]
fn test_sack_recovery_repairs_two_holes_in_one_round_trip() {
    let mut c = established_sack();
    ten_segments_out(&mut c);
    let seg_at = |i: u32| L + i * MSS;
    // Segments 0 and 4 are lost. The first ACK SACKs 1..4: more than
    // 2 * SMSS above SND.UNA, so IsLost(SND.UNA) starts recovery at once
    // (RFC 6675 §5 step (2)), without waiting for three duplicates.
    send!(c, time 30, sack_ack(L, &[(seg_at(1), seg_at(4))]));
    let out = recv!(c, time 30, ACK, seq L, ack R);
    assert_eq!(out.payload.len(), MSS as usize);
    recv_nothing!(c, time 30);
    // The next reports 5..10 as well: hole 4 is lost too and is resent
    // in the same round trip (NewReno would wait for a partial ACK).
    send!(c, time 31, sack_ack(L, &[(seg_at(5), seg_at(10)), (seg_at(1), seg_at(4))]));
    let out = recv!(c, time 31, ACK, seq seg_at(4), ack R);
    assert_eq!(out.payload.len(), MSS as usize);
    recv_nothing!(c, time 31);
    let s = c.stats();
    assert_eq!((s.fast_retransmits, s.sack_recoveries), (1, 1));
    assert_eq!(s.bytes_retransmitted, 2 * u64::from(MSS));
    assert_eq!(s.retransmit_timeouts, 0);
    // cwnd = ssthresh = FlightSize / 2 (RFC 5681 §3.1, equation 4).
    assert_eq!(c.cwnd(), 5 * MSS as usize);
    // Everything arrives: recovery ends on the cumulative ACK of
    // RecoveryPoint, nothing is outstanding, no timer runs.
    send!(c, time 60, seg(ACK, R, seg_at(10)));
    assert_eq!(c.send_queue(), 0);
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.cwnd(), 5 * MSS as usize);
}

#[test]
fn test_sack_blocks_outside_the_window_start_no_recovery() {
    let mut c = established_sack();
    ten_segments_out(&mut c);
    // A D-SACK below SND.UNA and a block beyond SND.MAX carry no
    // information; two such ACKs are only two duplicates.
    let bogus = [(L - 100, L), (L + 20 * MSS, L + 21 * MSS)];
    send!(c, time 30, sack_ack(L, &bogus));
    send!(c, time 31, sack_ack(L, &bogus));
    assert_eq!(c.stats().fast_retransmits, 0);
}

#[test]
fn test_sack_blocks_never_shrink_a_data_segment() {
    // SACK and timestamps: full segments carry 1448 bytes (1460 minus
    // the 12-byte timestamps option), whether or not we owe SACK blocks.
    let config = TcpConfig {
        sack: true,
        timestamps: true,
        ..cfg()
    };
    let syn = TcpRepr {
        options: TcpOptions {
            sack_permitted: true,
            timestamps: Some(Timestamps {
                tsval: 100,
                tsecr: 0,
            }),
            ..SYN_TEMPL.options
        },
        ..SYN_TEMPL
    };
    let mut c = syn_received_with(&config, &syn);
    let ts = |tsval| TcpOptions {
        timestamps: Some(Timestamps { tsval, tsecr: 1 }),
        ..NO_OPTIONS
    };
    send!(c, time 0, TcpRepr { options: ts(101), ..seg(ACK, R, L) });
    assert_eq!(c.effective_mss(), 1448);
    // Out-of-order data from the peer: we now owe SACK blocks.
    send!(c, time 1, TcpRepr { options: ts(102), ..data(R + 3, L, b"def") });
    assert_eq!(c.send(&[1u8; 2 * 1448]), Ok(2 * 1448));
    let out = drain(&mut c, 2);
    let block = [SackBlock {
        left: SeqNumber(R + 3),
        right: SeqNumber(R + 6),
    }];
    // Two full segments without blocks, then a pure ACK with them.
    let sizes: Vec<_> = out
        .iter()
        .map(|o| (o.payload.len(), o.options.sack_len))
        .collect();
    assert_eq!(sizes, [(1448, 0), (1448, 0), (0, 1)], "{out:?}");
    assert_eq!(out[2].options.sack_blocks(), &block);
    // A short segment has room and carries the blocks itself.
    assert_eq!(c.send(&[1u8; 100]), Ok(100));
    let out = drain(&mut c, 3);
    let sizes: Vec<_> = out
        .iter()
        .map(|o| (o.payload.len(), o.options.sack_len))
        .collect();
    assert_eq!(sizes, [(100, 1)], "{out:?}");
    assert_eq!(out[0].options.sack_blocks(), &block);
}
