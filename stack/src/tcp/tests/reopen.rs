//! A SYN for a four-tuple in TIME-WAIT (RFC 6191): which ones open a new
//! incarnation, and where its sequence space starts.

use super::options::{established_opts, ts};
use super::*;

/// A new SYN from the peer for the same four-tuple.
fn syn(seq: u32, options: TcpOptions) -> TcpRepr<'static> {
    TcpRepr {
        options,
        ..seg(SYN, seq, 0)
    }
}

/// Our FIN took sequence number L, so SND.MAX is L + 1; the new
/// incarnation starts a full window above it.
const NEW_ISS: u32 = L + 1 + 65_537;

#[test]
fn test_reopen_without_timestamps_needs_a_higher_sequence_number() {
    let c = time_wait();
    // RCV.NXT is R + 1 (after the peer's FIN).
    assert_eq!(
        c.reopen_iss(&syn(R + 1, NO_OPTIONS)),
        None,
        "not above RCV.NXT"
    );
    assert_eq!(c.reopen_iss(&syn(R - 500, NO_OPTIONS)), None, "an old SYN");
    assert_eq!(
        c.reopen_iss(&syn(R + 100_000, NO_OPTIONS)),
        Some(SeqNumber(NEW_ISS))
    );
}

#[test]
fn test_reopen_only_from_time_wait_and_only_for_a_bare_syn() {
    let newer = syn(R + 100_000, NO_OPTIONS);
    for c in [
        established(),
        fin_wait_2(),
        close_wait(),
        last_ack(),
        closing(),
    ] {
        assert_eq!(c.reopen_iss(&newer), None, "{:?}", c.state());
    }
    let c = time_wait();
    for flags in [SYN | ACK, SYN | RST, SYN | FIN | ACK] {
        let s = TcpRepr { flags, ..newer };
        assert_eq!(c.reopen_iss(&s), None, "{flags:?}");
    }
}

/// TIME-WAIT with timestamps on; the peer's last TSval (TS.Recent) is 107.
fn time_wait_opts() -> Connection {
    let mut c = established_opts();
    c.close();
    drain(&mut c, 60);
    send!(c, time 60, TcpRepr { options: ts(106, 61), ..seg(ACK, R, L + 1) });
    assert_eq!(c.state(), State::FinWait2);
    send!(c, time 61, TcpRepr { options: ts(107, 61), ..seg(FIN | ACK, R, L + 1) });
    assert_eq!(c.state(), State::TimeWait);
    drain(&mut c, 61);
    c
}

#[test]
fn test_reopen_with_timestamps_goes_by_the_timestamp() {
    let c = time_wait_opts();
    let tsopt = |tsval| ts(tsval, 0);
    // A newer TSval opens, even with a lower sequence number: the peer's
    // new ISN is unrelated to the old one.
    assert_eq!(
        c.reopen_iss(&syn(R - 1000, tsopt(108))),
        Some(SeqNumber(NEW_ISS))
    );
    // An older TSval does not, whatever its sequence number.
    assert_eq!(c.reopen_iss(&syn(R + 100_000, tsopt(106))), None);
    // An equal TSval needs a higher sequence number too.
    assert_eq!(c.reopen_iss(&syn(R + 1, tsopt(107))), None);
    assert_eq!(
        c.reopen_iss(&syn(R + 2, tsopt(107))),
        Some(SeqNumber(NEW_ISS))
    );
    // TSval wraps: 2^31 - 1 ahead of TS.Recent is newer, 2^31 is not.
    assert!(c.reopen_iss(&syn(R, tsopt(107 + 0x7fff_ffff))).is_some());
    assert!(c
        .reopen_iss(&syn(R, tsopt(107u32.wrapping_add(0x8000_0000))))
        .is_none());
    // A SYN without timestamps falls back to the sequence number.
    assert_eq!(c.reopen_iss(&syn(R + 1, NO_OPTIONS)), None);
    assert_eq!(
        c.reopen_iss(&syn(R + 2, NO_OPTIONS)),
        Some(SeqNumber(NEW_ISS))
    );
}

#[test]
fn test_end_time_wait_closes_silently() {
    let mut c = time_wait();
    c.end_time_wait();
    assert_eq!(c.state(), State::Closed);
    recv_nothing!(c, time 0);
    assert_eq!(c.poll_timeout(), None);
    // Only TIME-WAIT ends this way.
    let mut e = established();
    e.end_time_wait();
    assert_eq!(e.state(), State::Established);
}
