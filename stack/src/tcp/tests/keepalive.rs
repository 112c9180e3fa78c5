//! Keepalive (RFC 1122 §4.2.3.6): probes after an idle interval, a peer
//! that answers keeps the connection, one that stays silent for
//! `KEEPALIVE_PROBES` probes fails it; and switching it on and off on a
//! live connection (`set_keepalive`, like `SO_KEEPALIVE`).

use super::*;
use crate::tcp::config::KEEPALIVE_PROBES;
use crate::tcp::ConnError;

const IDLE: u64 = 10_000;

fn keepalive_cfg() -> TcpConfig {
    TcpConfig {
        keepalive: Some(Duration::from_millis(IDLE)),
        ..cfg()
    }
}

#[test]
fn test_established_keepalive_probe_after_idle() {
    let mut c = established_with(&keepalive_cfg());
    assert_eq!(c.poll_timeout(), Some(ms(IDLE)));
    c.handle_timeout(ms(IDLE - 1));
    recv_nothing!(c, time IDLE - 1);
    c.handle_timeout(ms(IDLE));
    // SEG.SEQ = SND.NXT - 1 with no data: the peer must answer with an ACK.
    let probe = recv!(c, time IDLE, ACK, seq L - 1, ack R);
    assert!(probe.payload.is_empty());
    assert_eq!(c.stats().keepalive_probes, 1);
}

#[test]
fn test_established_keepalive_answered_keeps_connection() {
    let mut c = established_with(&keepalive_cfg());
    for _ in 0..2 * KEEPALIVE_PROBES {
        // Each answer restarts the idle interval.
        let t = c.poll_timeout().unwrap().total_millis();
        c.handle_timeout(ms(t));
        recv!(c, time t, ACK, seq L - 1, ack R);
        send!(c, time t + 1, seg(ACK, R, L));
        assert_eq!(c.poll_timeout(), Some(ms(t + 1 + IDLE)));
    }
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.error(), None);
}

#[test]
fn test_established_keepalive_unanswered_times_out_with_rst() {
    let mut c = established_with(&keepalive_cfg());
    let mut t = 0;
    for _ in 0..KEEPALIVE_PROBES {
        t += IDLE;
        c.handle_timeout(ms(t));
        recv!(c, time t, ACK, seq L - 1, ack R);
    }
    assert_eq!(c.state(), State::Established);
    t += IDLE;
    c.handle_timeout(ms(t));
    assert_eq!(c.error(), Some(ConnError::TimedOut));
    recv!(c, time t, RST, seq L, ack 0);
    assert!(c.is_closed());
}

#[test]
fn test_established_set_keepalive_on_then_off() {
    let mut c = established();
    assert_eq!(c.poll_timeout(), None);
    c.set_keepalive(ms(500), Some(Duration::from_millis(IDLE)));
    assert_eq!(c.keepalive(), Some(Duration::from_millis(IDLE)));
    assert_eq!(c.poll_timeout(), Some(ms(500 + IDLE)));
    c.set_keepalive(ms(600), None);
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(ms(500 + IDLE));
    recv_nothing!(c, time 500 + IDLE);
}

#[test]
fn test_set_nodelay_toggles_nagle() {
    let mut c = established();
    assert!(c.nodelay());
    c.set_nodelay(false);
    c.send(b"a").unwrap();
    recv!(c, time 1, ACK | PSH, seq L, ack R);
    c.send(b"b").unwrap();
    recv_nothing!(c, time 1);
    c.set_nodelay(true);
    recv!(c, time 2, ACK | PSH, seq L + 1, ack R);
}
