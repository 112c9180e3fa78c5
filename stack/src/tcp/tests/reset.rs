//! RST received in each state (RFC 9293 §3.10.7.4 second step), RST sent,
//! and the reply for closed ports (§3.10.7.1).

use super::*;
use crate::tcp::{rst_for_closed, ConnError, RecvError, SendError};

/// A RST exactly at RCV.NXT.
fn rst_at(seq: u32) -> TcpRepr<'static> {
    seg(RST, seq, 0)
}

#[track_caller]
fn assert_reset(c: &Connection, error: Option<ConnError>) {
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), error);
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
}

// ---- RST received, state by state ---------------------------------------

#[test]
fn test_syn_sent_rst_with_acceptable_ack_is_refused() {
    let mut c = syn_sent();
    send!(c, time 5, seg(RST | ACK, 0, L));
    assert_reset(&c, Some(ConnError::Refused));
    recv_nothing!(c, time 5);
    assert_eq!(c.send(b"x"), Err(SendError::Conn(ConnError::Refused)));
    let mut buf = [0u8; 4];
    assert_eq!(c.recv(&mut buf), Err(RecvError::Conn(ConnError::Refused)));
}

#[test]
fn test_syn_sent_rst_without_ack_is_ignored() {
    let mut c = syn_sent();
    send!(c, time 5, seg(RST, 0, 0));
    assert_eq!(c.state(), State::SynSent);
    recv_nothing!(c, time 5);
}

#[test]
fn test_syn_sent_rst_with_bad_ack_is_ignored() {
    let mut c = syn_sent();
    send!(c, time 5, seg(RST | ACK, 0, L + 9));
    assert_eq!(c.state(), State::SynSent);
    // A RST never answers a RST.
    recv_nothing!(c, time 5);
}

#[test]
fn test_syn_received_rst_closes() {
    let mut c = syn_received();
    send!(c, time 5, rst_at(R));
    assert_reset(&c, Some(ConnError::Reset));
}

#[test]
fn test_syn_received_rst_after_simultaneous_open_is_refused() {
    let mut c = syn_sent();
    send!(c, time 1, seg(SYN, REMOTE_ISS, 0));
    recv!(c, time 1, SYN | ACK, seq LOCAL_ISS, ack R);
    send!(c, time 2, rst_at(R));
    assert_reset(&c, Some(ConnError::Refused));
}

#[test]
fn test_established_rst_resets() {
    let mut c = established();
    send!(c, time 5, rst_at(R));
    assert_reset(&c, Some(ConnError::Reset));
    assert!(c.can_recv() && c.can_send());
    recv_nothing!(c, time 5);
}

#[test]
fn test_established_rst_in_window_not_exact_gets_challenge_ack() {
    let mut c = established();
    send!(c, time 5, rst_at(R + 100));
    assert_eq!(c.state(), State::Established);
    recv!(c, time 5, ACK, seq L, ack R);
}

#[test]
fn test_established_rst_out_of_window_is_dropped() {
    let mut c = established();
    send!(c, time 5, rst_at(R + 1_000_000));
    assert_eq!(c.state(), State::Established);
    recv_nothing!(c, time 5);
    send!(c, time 5, rst_at(R - 1));
    assert_eq!(c.state(), State::Established);
    recv_nothing!(c, time 5);
}

#[test]
fn test_fin_wait_1_rst_resets() {
    let mut c = fin_wait_1();
    send!(c, time 5, rst_at(R));
    assert_reset(&c, Some(ConnError::Reset));
}

#[test]
fn test_fin_wait_2_rst_resets() {
    let mut c = fin_wait_2();
    send!(c, time 5, rst_at(R));
    assert_reset(&c, Some(ConnError::Reset));
}

#[test]
fn test_close_wait_rst_resets() {
    let mut c = close_wait();
    send!(c, time 5, rst_at(R + 1));
    assert_reset(&c, Some(ConnError::Reset));
}

#[test]
fn test_closing_rst_closes_without_error() {
    let mut c = closing();
    send!(c, time 5, rst_at(R + 1));
    assert_reset(&c, None);
}

#[test]
fn test_last_ack_rst_closes_without_error() {
    let mut c = last_ack();
    send!(c, time 5, rst_at(R + 1));
    assert_reset(&c, None);
}

#[test]
fn test_time_wait_rst_closes_without_error() {
    let mut c = time_wait();
    send!(c, time 5, rst_at(R + 1));
    assert_reset(&c, None);
}

// ---- RST sent -----------------------------------------------------------

#[test]
fn test_established_abort_sends_rst() {
    let mut c = established();
    c.send(b"discarded").unwrap();
    c.abort();
    assert_eq!(c.state(), State::Closed);
    assert!(!c.is_closed(), "the RST is still owed");
    recv!(c, time 1, RST, seq L, ack 0);
    assert!(c.is_closed());
    recv_nothing!(c, time 1);
    let mut buf = [0u8; 4];
    assert_eq!(c.recv(&mut buf), Err(RecvError::InvalidState));
}

#[test]
fn test_time_wait_abort_sends_nothing() {
    let mut c = time_wait();
    c.abort();
    assert!(c.is_closed());
    recv_nothing!(c, time 1);
}

#[test]
fn test_established_ack_of_unsent_data_gets_ack() {
    let mut c = established();
    send!(c, time 1, seg(ACK, R, L + 50));
    recv!(c, time 1, ACK, seq L, ack R);
    assert_eq!(c.state(), State::Established);
}

#[test]
fn test_established_syn_gets_challenge_ack() {
    let mut c = established();
    send!(c, time 1, seg(SYN, R + 10, 0));
    assert_eq!(c.state(), State::Established);
    recv!(c, time 1, ACK, seq L, ack R);
}

// ---- RFC 5961: ACK validation and the challenge-ACK rate limit ---------

#[test]
fn test_rfc5961_challenge_acks_are_counted() {
    let mut c = established();
    send!(c, time 5, rst_at(R + 100)); // §3.2: in window, not exact
    recv!(c, time 5, ACK, seq L, ack R);
    send!(c, time 6, seg(SYN, R, 0)); // §4.2: SYN in a synchronized state
    recv!(c, time 6, ACK, seq L, ack R);
    let s = c.stats();
    assert_eq!((s.challenge_acks_sent, s.challenge_acks_suppressed), (2, 0));
    assert_eq!(c.state(), State::Established);
}

#[test]
fn test_rfc5961_ack_too_old_is_dropped_with_ack() {
    // §5.2: SEG.ACK below SND.UNA - MAX.SND.WND (the peer offered 65535):
    // discard the segment, data and all, and send an ACK.
    let mut c = established();
    send!(c, time 5, data(R, L.wrapping_sub(70_000), b"blind"));
    recv!(c, time 5, ACK, seq L, ack R);
    assert_eq!(c.recv_queue(), 0);
    assert_eq!(c.stats().challenge_acks_sent, 1);
    // Within MAX.SND.WND below SND.UNA it is an old duplicate: data taken.
    send!(c, time 6, data(R, L.wrapping_sub(60_000), b"fine"));
    recv!(c, time 6, ACK, seq L, ack R + 4);
    assert_eq!(c.recv_queue(), 4);
    assert_eq!(c.stats().challenge_acks_sent, 1);
}

#[test]
fn test_rfc5961_ack_beyond_snd_max_is_dropped_with_ack() {
    // §5.2: SEG.ACK > SND.NXT: discard (data too) and ACK.
    let mut c = established();
    send!(c, time 5, data(R, L + 10, b"blind"));
    recv!(c, time 5, ACK, seq L, ack R);
    assert_eq!(c.recv_queue(), 0);
    assert_eq!(c.stats().challenge_acks_sent, 1);
}

#[test]
fn test_rfc5961_challenge_ack_rate_limit() {
    // §7: at most `challenge_acks_per_sec` per second; the (N+1)-th in the
    // same second is counted, not sent; a second later they flow again.
    let n = cfg().challenge_acks_per_sec;
    assert!(n > 0);
    let mut c = established();
    for i in 0..n {
        let t = 5 + u64::from(i);
        if i % 2 == 0 {
            send!(c, time t, rst_at(R + 100));
        } else {
            send!(c, time t, seg(SYN, R, 0));
        }
        recv!(c, time t, ACK, seq L, ack R);
    }
    send!(c, time 500, rst_at(R + 100));
    recv_nothing!(c, time 500);
    send!(c, time 1004, seg(ACK, R, L + 10));
    recv_nothing!(c, time 1004);
    let s = c.stats();
    assert_eq!(
        (s.challenge_acks_sent, s.challenge_acks_suppressed),
        (u64::from(n), 2)
    );
    send!(c, time 1005, rst_at(R + 100));
    recv!(c, time 1005, ACK, seq L, ack R);
    assert_eq!(c.stats().challenge_acks_sent, u64::from(n) + 1);
    assert_eq!(c.state(), State::Established);
}

#[test]
fn test_out_of_window_bare_acks_share_the_challenge_limit() {
    // A flood of data-less segments beyond the window: answered at most
    // `challenge_acks_per_sec` times a second (no ACK war, no reflector).
    let n = cfg().challenge_acks_per_sec;
    let mut c = established();
    for i in 0..n {
        let t = 5 + u64::from(i);
        send!(c, time t, seg(ACK, R + 200_000, L));
        recv!(c, time t, ACK, seq L, ack R);
    }
    send!(c, time 500, seg(ACK, R + 200_000, L));
    recv_nothing!(c, time 500);
    // Out-of-window data still gets its duplicate ACK at once.
    send!(c, time 501, data(R + 200_000, L, b"late"));
    recv!(c, time 501, ACK, seq L, ack R);
    let s = c.stats();
    assert_eq!(s.challenge_acks_suppressed, 1);
    assert_eq!(s.unacceptable, u64::from(n) + 2);
}

// ---- rst_for_closed (RFC 9293 §3.10.7.1) --------------------------------

#[test]
fn rst_for_closed_answers_syn_with_rst_ack() {
    let syn = TcpRepr {
        payload: b"abc",
        ..SYN_TEMPL
    };
    let rst = rst_for_closed(&syn).unwrap();
    assert_eq!(rst.flags, RST | ACK);
    assert_eq!(rst.seq, SeqNumber(0));
    // SEG.SEQ + SEG.LEN: the SYN and three bytes.
    assert_eq!(rst.ack, SeqNumber(REMOTE_ISS + 4));
    assert_eq!((rst.src_port, rst.dst_port), (80, 49152));
    assert!(rst.payload.is_empty());
}

#[test]
fn rst_for_closed_answers_ack_with_rst_at_its_ack() {
    let rst = rst_for_closed(&seg(ACK, 7, 1234)).unwrap();
    assert_eq!(rst.flags, RST);
    assert_eq!(rst.seq, SeqNumber(1234));
}

#[test]
fn rst_for_closed_never_answers_a_rst() {
    assert_eq!(rst_for_closed(&seg(RST, 7, 0)), None);
    assert_eq!(rst_for_closed(&seg(RST | ACK, 7, 9)), None);
}
