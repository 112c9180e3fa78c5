//! SACK (RFC 2018) and timestamps (RFC 7323 §3-5): negotiation, blocks,
//! echo, RTT from TSecr, PAWS.

use super::*;
use crate::wire::tcp::Timestamps;

pub(super) fn opt_cfg() -> TcpConfig {
    TcpConfig {
        sack: true,
        timestamps: true,
        ..cfg()
    }
}

pub(super) fn ts(tsval: u32, tsecr: u32) -> TcpOptions {
    TcpOptions {
        timestamps: Some(Timestamps { tsval, tsecr }),
        ..NO_OPTIONS
    }
}

fn syn_with_everything() -> TcpRepr<'static> {
    TcpRepr {
        options: TcpOptions {
            mss: Some(1460),
            sack_permitted: true,
            timestamps: Some(Timestamps {
                tsval: 100,
                tsecr: 0,
            }),
            ..NO_OPTIONS
        },
        ..SYN_TEMPL
    }
}

/// ESTABLISHED with SACK and timestamps; the peer's last TSval was 105.
pub(super) fn established_opts() -> Connection {
    let mut c = Connection::accept(
        ms(0),
        LOCAL,
        REMOTE,
        &syn_with_everything(),
        SeqNumber(LOCAL_ISS),
        &opt_cfg(),
    );
    let synack = recv!(c, time 0, SYN | ACK, seq LOCAL_ISS, ack R);
    assert!(synack.options.sack_permitted);
    // TSval is our clock in ms plus one; TSecr echoes the SYN's TSval.
    assert_eq!(
        synack.options.timestamps,
        Some(Timestamps {
            tsval: 1,
            tsecr: 100
        })
    );
    send!(c, time 50, TcpRepr { options: ts(105, 1), ..seg(ACK, R, L) });
    assert_eq!(c.state(), State::Established);
    assert!(c.sack_enabled() && c.timestamps_enabled());
    c
}

// ---- SACK ----------------------------------------------------------------

#[test]
fn test_sack_not_offered_when_peer_did_not() {
    let mut c = Connection::accept(
        ms(0),
        LOCAL,
        REMOTE,
        &SYN_TEMPL,
        SeqNumber(LOCAL_ISS),
        &opt_cfg(),
    );
    let synack = recv!(c, time 0, SYN | ACK, seq LOCAL_ISS, ack R);
    assert!(!synack.options.sack_permitted);
    assert_eq!(synack.options.timestamps, None);
    assert!(!c.sack_enabled() && !c.timestamps_enabled());
}

#[test]
fn test_sack_blocks_for_out_of_order_data_most_recent_first() {
    let mut c = established_opts();
    send!(c, time 60, TcpRepr { options: ts(106, 1), ..data(R + 3, L, b"def") });
    let out = recv!(c, time 60, ACK, seq L, ack R);
    let block = |l: u32, r: u32| SackBlock {
        left: SeqNumber(l),
        right: SeqNumber(r),
    };
    assert_eq!(out.options.sack_blocks(), &[block(R + 3, R + 6)]);
    send!(c, time 61, TcpRepr { options: ts(107, 1), ..data(R + 9, L, b"jkl") });
    let out = recv!(c, time 61, ACK, seq L, ack R);
    assert_eq!(
        out.options.sack_blocks(),
        &[block(R + 9, R + 12), block(R + 3, R + 6)]
    );
    // The hole fills: no more blocks for the first range.
    send!(c, time 62, TcpRepr { options: ts(108, 1), ..data(R, L, b"abc") });
    let out = recv!(c, time 62, ACK, seq L, ack R + 6);
    assert_eq!(out.options.sack_blocks(), &[block(R + 9, R + 12)]);
}

// ---- Timestamps ----------------------------------------------------------

#[test]
fn test_timestamps_rtt_from_tsecr() {
    let c = established_opts();
    // The ACK at 50 ms echoed TSval 1 (sent at 0 ms): RTT 50 ms.
    assert_eq!(c.srtt(), Some(Duration::from_millis(50)));
}

#[test]
fn test_timestamps_echo_latest_in_order_tsval() {
    let mut c = established_opts();
    send!(c, time 70, TcpRepr { options: ts(110, 1), ..data(R, L, b"x") });
    let out = recv!(c, time 70, ACK, seq L, ack R + 1);
    assert_eq!(
        out.options.timestamps,
        Some(Timestamps {
            tsval: 71,
            tsecr: 110
        })
    );
    // Data segments carry timestamps too, and lose 12 bytes of MSS.
    assert_eq!(c.effective_mss(), 1460 - 12);
}

#[test]
fn test_paws_drops_old_timestamp() {
    let mut c = established_opts();
    send!(c, time 70, TcpRepr { options: ts(110, 1), ..data(R, L, b"x") });
    recv!(c, time 70, ACK, seq L, ack R + 1);
    // An old duplicate from before a wrap: TSval behind TS.Recent.
    send!(c, time 80, TcpRepr { options: ts(90, 1), ..data(R + 1, L, b"y") });
    recv!(c, time 80, ACK, seq L, ack R + 1);
    assert_eq!(c.recv_queue(), 1);
    assert_eq!(c.stats().unacceptable, 1);
}

#[test]
fn test_paws_not_poisoned_by_blind_segment_with_bad_ack() {
    let mut c = established_opts();
    // A blind attacker guesses an in-window sequence number but not the
    // ACK (far beyond SND.NXT), with a far-future TSval. It gets a
    // challenge ACK and must not become TS.Recent (RFC 7323 §4.3).
    let bogus = TcpRepr {
        options: ts(2_000_000_000, 1),
        ..data(R, L + 1_000_000, b"evil")
    };
    send!(c, time 60, bogus);
    let out = recv!(c, time 60, ACK, seq L, ack R);
    assert_eq!(out.options.timestamps.map(|t| t.tsecr), Some(105));
    // The real peer's next segment still passes PAWS and is taken.
    send!(c, time 70, TcpRepr { options: ts(110, 1), ..data(R, L, b"x") });
    let out = recv!(c, time 70, ACK, seq L, ack R + 1);
    assert_eq!(out.options.timestamps.map(|t| t.tsecr), Some(110));
    assert_eq!(c.recv_queue(), 1);
}

#[test]
fn test_timestamps_only_we_offer_means_none() {
    let mut c = syn_sent_with(&opt_cfg());
    send!(c, time 10, seg(SYN | ACK, REMOTE_ISS, L));
    assert!(!c.timestamps_enabled());
    let out = recv!(c, time 10, ACK, seq L, ack R);
    assert_eq!(out.options.timestamps, None);
}

#[test]
fn test_active_open_offers_sack_and_timestamps() {
    let mut c = Connection::connect(ms(7), LOCAL, REMOTE, SeqNumber(LOCAL_ISS), &opt_cfg());
    let syn = recv!(c, time 7, SYN, seq LOCAL_ISS, ack 0);
    assert!(syn.options.sack_permitted);
    assert_eq!(
        syn.options.timestamps,
        Some(Timestamps { tsval: 8, tsecr: 0 })
    );
}
