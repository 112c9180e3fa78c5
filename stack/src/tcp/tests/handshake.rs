//! Opening: LISTEN -> SYN-RECEIVED, SYN-SENT, simultaneous open, MSS.

use super::*;
use crate::tcp::ConnError;

// ---- Tests for the LISTEN state (passive open) --------------------------

#[test]
fn test_listen_syn_gives_syn_ack() {
    let mut c = Connection::accept(
        ms(0),
        LOCAL,
        REMOTE,
        &SYN_TEMPL,
        SeqNumber(LOCAL_ISS),
        &cfg(),
    );
    assert_eq!(c.state(), State::SynReceived);
    assert!(!c.is_established());
    let out = recv!(c, time 0, SYN | ACK, seq LOCAL_ISS, ack R);
    assert_eq!(out.options.mss, Some(1460));
    // The peer offered no window scale, SACK or timestamps: neither do we.
    assert_eq!(out.options.window_scale, None);
    assert!(!out.options.sack_permitted);
    assert_eq!(out.options.timestamps, None);
    assert_eq!(usize::from(out.window), RECV_BUF);
    recv_nothing!(c, time 0);
    // RFC 6298 §2.1: the first RTO is 1 s.
    assert_eq!(c.poll_timeout(), Some(ms(1000)));
}

// ---- Tests for the SYN-RECEIVED state -----------------------------------

#[test]
fn test_syn_received_ack_establishes() {
    let mut c = syn_received();
    send!(c, time 10, seg(ACK, R, L));
    assert_eq!(c.state(), State::Established);
    assert!(c.is_established());
    recv_nothing!(c, time 10);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn test_syn_received_ack_with_data_establishes_and_delivers() {
    let mut c = syn_received();
    send!(c, time 10, data(R, L, b"hello"));
    assert_eq!(c.state(), State::Established);
    recv!(c, time 10, ACK, seq L, ack R + 5);
    let mut buf = [0u8; 10];
    assert_eq!(c.recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
}

#[test]
fn test_syn_received_unacceptable_ack_sends_rst() {
    let mut c = syn_received();
    send!(c, time 10, seg(ACK, R, L + 100));
    recv!(c, time 10, RST, seq L + 100, ack 0);
    assert_eq!(c.state(), State::SynReceived);
    // An ACK of ISS itself (our SYN not covered) is just as unacceptable.
    send!(c, time 10, seg(ACK, R, LOCAL_ISS));
    recv!(c, time 10, RST, seq LOCAL_ISS, ack 0);
}

#[test]
fn test_syn_received_duplicate_syn_resends_syn_ack() {
    let mut c = syn_received();
    send!(c, time 300, SYN_TEMPL);
    recv!(c, time 300, SYN | ACK, seq LOCAL_ISS, ack R);
    recv_nothing!(c, time 300);
}

#[test]
fn test_syn_received_retransmits_syn_ack_with_backoff() {
    let mut c = syn_received();
    assert_eq!(c.poll_timeout(), Some(ms(1000)));
    c.handle_timeout(ms(999));
    recv_nothing!(c, time 999);
    c.handle_timeout(ms(1000));
    recv!(c, time 1000, SYN | ACK, seq LOCAL_ISS, ack R);
    assert_eq!(c.poll_timeout(), Some(ms(3000)));
    c.handle_timeout(ms(3000));
    recv!(c, time 3000, SYN | ACK, seq LOCAL_ISS, ack R);
    assert_eq!(c.poll_timeout(), Some(ms(7000)));
    // Karn: the ACK after a retransmission gives no RTT sample.
    send!(c, time 7100, seg(ACK, R, L));
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.srtt(), None);
}

#[test]
fn test_syn_received_close_sends_fin_once_established() {
    let mut c = syn_received();
    c.close();
    assert_eq!(c.state(), State::SynReceived);
    recv_nothing!(c, time 0);
    send!(c, time 10, seg(ACK, R, L));
    assert_eq!(c.state(), State::FinWait1);
    recv!(c, time 10, FIN | ACK, seq L, ack R);
}

#[test]
fn test_syn_received_gives_up_after_syn_retries() {
    let config = TcpConfig {
        syn_retries: 2,
        ..cfg()
    };
    let mut c = syn_received_with(&config, &SYN_TEMPL);
    c.handle_timeout(ms(1000));
    recv!(c, time 1000, SYN | ACK, seq LOCAL_ISS, ack R);
    c.handle_timeout(ms(3000));
    recv!(c, time 3000, SYN | ACK, seq LOCAL_ISS, ack R);
    assert_eq!(c.poll_timeout(), Some(ms(7000)));
    c.handle_timeout(ms(7000));
    assert_eq!(c.error(), Some(ConnError::TimedOut));
    recv!(c, time 7000, RST, seq L, ack 0);
    assert!(c.is_closed());
}

// ---- Tests for the SYN-SENT state (active open) -------------------------

#[test]
fn test_syn_sent_emits_syn() {
    let mut c = Connection::connect(ms(0), LOCAL, REMOTE, SeqNumber(LOCAL_ISS), &cfg());
    assert_eq!(c.state(), State::SynSent);
    let out = recv!(c, time 0, SYN, seq LOCAL_ISS, ack 0);
    assert_eq!(out.options.mss, Some(1460));
    assert_eq!(out.options.window_scale, None);
    assert_eq!(usize::from(out.window), RECV_BUF);
    recv_nothing!(c, time 0);
    assert_eq!(c.poll_timeout(), Some(ms(1000)));
}

#[test]
fn test_syn_sent_syn_ack_establishes() {
    let mut c = syn_sent();
    send!(c, time 50, seg(SYN | ACK, REMOTE_ISS, L));
    assert_eq!(c.state(), State::Established);
    assert!(c.is_established());
    recv!(c, time 50, ACK, seq L, ack R);
    recv_nothing!(c, time 50);
    // The SYN was timed: RTT 50 ms.
    assert_eq!(c.srtt(), Some(Duration::from_millis(50)));
}

#[test]
fn test_syn_sent_syn_ack_bad_ack_sends_rst() {
    let mut c = syn_sent();
    send!(c, time 50, seg(SYN | ACK, REMOTE_ISS, L + 5));
    recv!(c, time 50, RST, seq L + 5, ack 0);
    assert_eq!(c.state(), State::SynSent);
    send!(c, time 50, seg(ACK, REMOTE_ISS, LOCAL_ISS));
    recv!(c, time 50, RST, seq LOCAL_ISS, ack 0);
}

#[test]
fn test_syn_sent_plain_ack_without_syn_is_dropped() {
    let mut c = syn_sent();
    send!(c, time 50, seg(ACK, REMOTE_ISS, L));
    assert_eq!(c.state(), State::SynSent);
    recv_nothing!(c, time 50);
}

#[test]
fn test_syn_sent_simultaneous_open() {
    let mut c = syn_sent();
    // The peer's SYN crosses ours: SYN-RECEIVED, answer SYN,ACK.
    send!(c, time 10, seg(SYN, REMOTE_ISS, 0));
    assert_eq!(c.state(), State::SynReceived);
    recv!(c, time 10, SYN | ACK, seq LOCAL_ISS, ack R);
    recv_nothing!(c, time 10);
    // Its SYN,ACK (repeating its SYN) completes the handshake; nothing
    // more is owed (RFC 9293 Figure 8, line 6).
    send!(c, time 20, seg(SYN | ACK, REMOTE_ISS, L));
    assert_eq!(c.state(), State::Established);
    recv_nothing!(c, time 20);
}

#[test]
fn test_syn_sent_simultaneous_open_plain_ack() {
    let mut c = syn_sent();
    send!(c, time 10, seg(SYN, REMOTE_ISS, 0));
    recv!(c, time 10, SYN | ACK, seq LOCAL_ISS, ack R);
    send!(c, time 20, seg(ACK, R, L));
    assert_eq!(c.state(), State::Established);
}

#[test]
fn test_syn_sent_syn_retries_then_timed_out() {
    let mut c = syn_sent();
    // RFC 6298 §5.5: 1 s, then doubling: 0, 1, 3, 7, 15, 31, 63 s.
    let mut at = 0u64;
    let mut rto = 1000u64;
    for _ in 0..6 {
        at += rto;
        rto *= 2;
        assert_eq!(c.poll_timeout(), Some(ms(at)));
        c.handle_timeout(ms(at - 1));
        recv_nothing!(c, time at - 1);
        c.handle_timeout(ms(at));
        recv!(c, time at, SYN, seq LOCAL_ISS, ack 0);
    }
    assert_eq!(at, 63_000);
    // The next RTO would be 64 s; RFC 6298 §2.5 lets us cap it (60 s).
    assert_eq!(c.poll_timeout(), Some(ms(123_000)));
    c.handle_timeout(ms(123_000));
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(ConnError::TimedOut));
    // Not synchronized: no RST.
    recv_nothing!(c, time 123_000);
    assert!(c.is_closed());
    assert!(c.can_send() && c.can_recv());
    assert_eq!(c.stats().retransmit_timeouts, 6);
}

#[test]
fn test_syn_sent_close_goes_closed() {
    let mut c = syn_sent();
    c.close();
    assert_eq!(c.state(), State::Closed);
    assert!(c.is_closed());
    recv_nothing!(c, time 0);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn test_syn_sent_data_queued_before_established_is_sent_after() {
    let mut c = syn_sent();
    assert_eq!(c.send(b"early"), Ok(5));
    recv_nothing!(c, time 0);
    send!(c, time 50, seg(SYN | ACK, REMOTE_ISS, L));
    let out = recv!(c, time 50, ACK | PSH, seq L, ack R);
    assert_eq!(out.payload, b"early");
}

// ---- MSS (RFC 9293 §3.7.1) ----------------------------------------------

#[test]
fn test_mss_from_peer_option_caps_segments() {
    let syn = TcpRepr {
        options: TcpOptions {
            mss: Some(500),
            ..NO_OPTIONS
        },
        ..SYN_TEMPL
    };
    let mut c = syn_received_with(&cfg(), &syn);
    send!(c, time 0, seg(ACK, R, L));
    assert_eq!(c.effective_mss(), 500);
    c.send(&[7u8; 1200]).unwrap();
    let sizes: Vec<usize> = drain(&mut c, 0).iter().map(|o| o.payload.len()).collect();
    assert_eq!(sizes, vec![500, 500, 200]);
}

#[test]
fn test_mss_defaults_to_536_without_option() {
    let syn = TcpRepr {
        options: NO_OPTIONS,
        ..SYN_TEMPL
    };
    let mut c = syn_received_with(&cfg(), &syn);
    send!(c, time 0, seg(ACK, R, L));
    assert_eq!(c.effective_mss(), 536);
}

#[test]
fn test_mss_capped_by_our_config() {
    let config = TcpConfig { mss: 1000, ..cfg() };
    let mut c = syn_received_with(&config, &SYN_TEMPL);
    send!(c, time 0, seg(ACK, R, L));
    assert_eq!(c.effective_mss(), 1000);
}
