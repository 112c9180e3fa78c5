//! Closing: FIN-WAIT-1/2, CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT, and
//! half-close in both directions.

use super::*;
use crate::tcp::{RecvError, SendError};

// ---- Tests for the ESTABLISHED state: closing ---------------------------

#[test]
fn test_established_close_sends_fin_after_queued_data() {
    let mut c = established();
    c.send(b"bye").unwrap();
    c.close();
    assert_eq!(c.state(), State::FinWait1);
    let out = recv!(c, time 0, ACK | PSH | FIN, seq L, ack R);
    assert_eq!(out.payload, b"bye");
    recv_nothing!(c, time 0);
    assert_eq!(c.send(b"more"), Err(SendError::InvalidState));
    // Idempotent.
    c.close();
    assert_eq!(c.state(), State::FinWait1);
    recv_nothing!(c, time 0);
}

#[test]
fn test_established_fin_goes_close_wait() {
    let mut c = established();
    send!(c, time 5, TCP_FIN_DATA);
    assert_eq!(c.state(), State::CloseWait);
    // Three bytes and the FIN.
    recv!(c, time 5, ACK, seq L, ack R + 4);
    let mut buf = [0u8; 8];
    assert!(c.can_recv());
    assert_eq!(c.recv(&mut buf), Ok(3));
    assert_eq!(c.recv(&mut buf), Err(RecvError::Finished));
}

const TCP_FIN_DATA: TcpRepr<'static> = TcpRepr {
    flags: TcpFlags(ACK.0 | FIN.0),
    payload: b"end",
    ..ACK_TEMPL
};

#[test]
fn test_established_out_of_order_fin_waits_for_data() {
    let mut c = established();
    // FIN after 3 missing bytes.
    send!(c, time 0, seg(FIN | ACK, R + 3, L));
    assert_eq!(c.state(), State::Established);
    recv!(c, time 0, ACK, seq L, ack R);
    send!(c, time 1, data(R, L, b"abc"));
    assert_eq!(c.state(), State::CloseWait);
    recv!(c, time 1, ACK, seq L, ack R + 4);
}

#[test]
fn test_data_past_a_held_fin_is_trimmed_and_eof_delivered() {
    let mut c = established();
    // FIN held out of order at R+100, then one segment covering
    // [R, R+200): the 100 bytes before the FIN are taken, the rest trimmed.
    send!(c, time 0, seg(FIN | ACK, R + 100, L));
    recv!(c, time 0, ACK, seq L, ack R);
    send!(c, time 1, data(R, L, &[b'x'; 200]));
    assert_eq!(c.state(), State::CloseWait);
    assert_eq!(c.recv_queue(), 100);
    recv!(c, time 1, ACK, seq L, ack R + 101);
}

#[test]
fn test_fin_below_held_data_is_ignored() {
    let mut c = established();
    // Bytes held at [R+50, R+60), then a FIN at R+20 that contradicts them.
    send!(c, time 0, data(R + 50, L, b"0123456789"));
    recv!(c, time 0, ACK, seq L, ack R);
    send!(c, time 1, seg(FIN | ACK, R + 20, L));
    recv!(c, time 1, ACK, seq L, ack R);
    // The gap fills: all 60 bytes are delivered and no FIN is taken.
    send!(c, time 2, data(R, L, &[b'y'; 50]));
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.recv_queue(), 60);
}

// ---- Tests for the FIN-WAIT-1 state -------------------------------------

#[test]
fn test_fin_wait_1_ack_goes_fin_wait_2() {
    let mut c = fin_wait_1();
    send!(c, time 10, seg(ACK, R, L + 1));
    assert_eq!(c.state(), State::FinWait2);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn test_fin_wait_1_fin_goes_closing() {
    let c = closing();
    assert_eq!(c.state(), State::Closing);
}

#[test]
fn test_fin_wait_1_fin_ack_goes_time_wait() {
    let mut c = fin_wait_1();
    send!(c, time 10, seg(FIN | ACK, R, L + 1));
    assert_eq!(c.state(), State::TimeWait);
    recv!(c, time 10, ACK, seq L + 1, ack R + 1);
}

#[test]
fn test_fin_wait_1_retransmits_fin() {
    let mut c = fin_wait_1();
    // RTO is min_rto (200 ms) after the handshake sample of 0.
    assert_eq!(c.poll_timeout(), Some(ms(200)));
    c.handle_timeout(ms(200));
    recv!(c, time 200, FIN | ACK, seq L, ack R);
}

#[test]
fn test_fin_wait_1_still_receives() {
    let mut c = fin_wait_1();
    send!(c, time 1, data(R, L + 1, b"late"));
    recv!(c, time 1, ACK, seq L + 1, ack R + 4);
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf), Ok(4));
}

// ---- Tests for the FIN-WAIT-2 state (half-close: we still receive) ------

#[test]
fn test_fin_wait_2_receives_data_then_fin() {
    let mut c = fin_wait_2();
    send!(c, time 1, data(R, L + 1, b"reply"));
    recv!(c, time 1, ACK, seq L + 1, ack R + 5);
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"reply");
    send!(c, time 2, seg(FIN | ACK, R + 5, L + 1));
    assert_eq!(c.state(), State::TimeWait);
    recv!(c, time 2, ACK, seq L + 1, ack R + 6);
    assert_eq!(c.recv(&mut buf), Err(RecvError::Finished));
}

// ---- Tests for the CLOSE-WAIT state (half-close: we still send) ---------

#[test]
fn test_close_wait_can_still_send() {
    let mut c = close_wait();
    assert!(c.can_send());
    assert_eq!(c.send(b"answer"), Ok(6));
    let out = recv!(c, time 1, ACK | PSH, seq L, ack R + 1);
    assert_eq!(out.payload, b"answer");
    send!(c, time 2, seg(ACK, R + 1, L + 6));
    assert_eq!(c.send_queue(), 0);
}

#[test]
fn test_close_wait_close_goes_last_ack() {
    let c = last_ack();
    assert_eq!(c.state(), State::LastAck);
}

// ---- Tests for the LAST-ACK state ---------------------------------------

#[test]
fn test_last_ack_ack_closes() {
    let mut c = last_ack();
    send!(c, time 10, seg(ACK, R + 1, L + 1));
    assert_eq!(c.state(), State::Closed);
    assert!(c.is_closed());
    assert_eq!(c.error(), None);
    recv_nothing!(c, time 10);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn test_last_ack_retransmits_fin() {
    let mut c = last_ack();
    c.handle_timeout(ms(200));
    recv!(c, time 200, FIN | ACK, seq L, ack R + 1);
}

// ---- Tests for the CLOSING state ----------------------------------------

#[test]
fn test_closing_ack_goes_time_wait() {
    let mut c = closing();
    send!(c, time 10, seg(ACK, R + 1, L + 1));
    assert_eq!(c.state(), State::TimeWait);
    assert_eq!(c.poll_timeout(), Some(ms(2010)));
}

// ---- Tests for the TIME-WAIT state --------------------------------------

#[test]
fn test_time_wait_still_there_just_before_2msl() {
    let mut c = time_wait();
    assert_eq!(c.poll_timeout(), Some(ms(2000)));
    c.handle_timeout(ms(1999));
    assert_eq!(c.state(), State::TimeWait);
    assert!(!c.is_closed());
}

#[test]
fn test_time_wait_closes_at_2msl() {
    let mut c = time_wait();
    c.handle_timeout(ms(2000));
    assert_eq!(c.state(), State::Closed);
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn test_time_wait_retransmitted_fin_is_acked_and_restarts_timer() {
    let mut c = time_wait();
    send!(c, time 500, seg(FIN | ACK, R, L + 1));
    recv!(c, time 500, ACK, seq L + 1, ack R + 1);
    assert_eq!(c.poll_timeout(), Some(ms(2500)));
}
