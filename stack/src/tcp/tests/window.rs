//! Flow control: zero-window probing (persist), our advertised window and
//! its SWS avoidance, window scale negotiation (RFC 7323 §2).

use super::*;

fn zero_window_peer() -> Connection {
    let mut c = established();
    send!(c, time 0, TcpRepr { window: 0, ..seg(ACK, R, L) });
    assert_eq!(c.peer_window(), 0);
    c
}

// ---- Zero window probing (RFC 9293 §3.8.6.1) ----------------------------

#[test]
fn test_zero_window_persist_probes_with_backoff_then_data_flows() {
    let mut c = zero_window_peer();
    c.send(&[b'z'; 100]).unwrap();
    recv_nothing!(c, time 1000);
    // First probe one RTO (200 ms) later, then 400, 800 ms apart.
    assert_eq!(c.poll_timeout(), Some(ms(1200)));
    c.handle_timeout(ms(1200));
    let out = recv!(c, time 1200, ACK, seq L, ack R);
    assert_eq!(out.payload, b"z");
    recv_nothing!(c, time 1200);
    assert_eq!(c.poll_timeout(), Some(ms(1600)));
    // The peer answers with a zero window again.
    send!(c, time 1250, TcpRepr { window: 0, ..seg(ACK, R, L) });
    recv_nothing!(c, time 1250);
    assert_eq!(c.poll_timeout(), Some(ms(1600)));
    c.handle_timeout(ms(1600));
    recv!(c, time 1600, ACK, seq L, ack R);
    assert_eq!(c.poll_timeout(), Some(ms(2400)));
    // The window opens: all 100 bytes go.
    send!(c, time 2000, TcpRepr { window: 1000, ..seg(ACK, R, L) });
    let out = recv!(c, time 2000, ACK | PSH, seq L, ack R);
    assert_eq!(out.payload.len(), 100);
    assert_eq!(c.stats().zero_window_probes, 2);
    assert_eq!(
        c.poll_timeout(),
        Some(ms(2200)),
        "retransmit timer, not persist"
    );
}

#[test]
fn test_abort_after_the_peer_shrank_its_window_resets_at_the_window_edge() {
    let mut c = established();
    c.send(&[b'd'; 100]).unwrap();
    let out = recv!(c, time 1, ACK | PSH, seq L, ack R);
    assert_eq!(out.payload.len(), 100);
    // The peer takes back its window (RFC 9293 §3.8.6 discourages it but
    // it happens): nothing acknowledged, window 0. Its RCV.NXT is still
    // L, and with a zero window only a RST at exactly L is taken (RFC
    // 5961 §3.2), not one at SND.MAX = L+100.
    send!(c, time 2, TcpRepr { window: 0, ..seg(ACK, R, L) });
    c.abort();
    recv!(c, time 3, RST, seq L, ack 0);
}

#[test]
fn test_zero_window_probe_accepted_advances() {
    let mut c = zero_window_peer();
    c.send(b"abc").unwrap();
    recv_nothing!(c, time 0);
    c.handle_timeout(ms(200));
    recv!(c, time 200, ACK, seq L, ack R);
    // The peer took the byte and opened its window.
    send!(c, time 210, TcpRepr { window: 100, ..seg(ACK, R, L + 1) });
    let out = recv!(c, time 210, ACK | PSH, seq L + 1, ack R);
    assert_eq!(out.payload, b"bc");
}

#[test]
fn test_zero_window_probing_never_gives_up() {
    let mut c = zero_window_peer();
    c.send(b"abc").unwrap();
    recv_nothing!(c, time 0);
    let mut last = 0;
    for _ in 0..40 {
        let at = c.poll_timeout().unwrap();
        c.handle_timeout(at);
        let t = at.total_millis();
        recv!(c, time t, ACK, seq L, ack R);
        send!(c, time t, TcpRepr { window: 0, ..seg(ACK, R, L) });
        assert!(t - last <= 60_000, "back-off is capped at max_rto");
        last = t;
    }
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.error(), None);
}

#[test]
fn test_zero_window_after_timeout_probes_instead_of_giving_up() {
    let mut c = established();
    c.send(&[b'q'; 500]).unwrap();
    recv!(c, time 1000, ACK | PSH, seq L, ack R);
    // The peer dropped it at its closed window and says so.
    send!(c, time 1010, TcpRepr { window: 0, ..seg(ACK, R, L) });
    assert_eq!(c.poll_timeout(), Some(ms(1200)));
    c.handle_timeout(ms(1200));
    // Not a loss: a one-byte probe at once, then persist back-off.
    let out = recv!(c, time 1200, ACK, seq L, ack R);
    assert_eq!(out.payload, b"q");
    assert_eq!(c.stats().retransmit_timeouts, 0);
    assert_eq!(c.rto(), Duration::from_millis(200));
    assert!(c.poll_timeout() > Some(ms(1200)));
    for _ in 0..20 {
        let at = c.poll_timeout().unwrap();
        c.handle_timeout(at);
        let t = at.total_millis();
        recv!(c, time t, ACK, seq L, ack R);
    }
    assert_eq!(c.state(), State::Established);
    send!(c, time 900_000, TcpRepr { window: 1000, ..seg(ACK, R, L + 1) });
    let out = recv!(c, time 900_000, ACK | PSH, seq L + 1, ack R);
    assert_eq!(out.payload.len(), 499);
}

// ---- Our receive window --------------------------------------------------

fn small_window() -> Connection {
    established_with(&TcpConfig {
        recv_buffer: 4000,
        ..cfg()
    })
}

#[test]
fn test_our_window_closes_then_update_after_read() {
    let mut c = small_window();
    static BYTES: [u8; 4000] = [1; 4000];
    send!(c, time 1, data(R, L, &BYTES[..1460]));
    send!(c, time 1, data(R + 1460, L, &BYTES[..1460]));
    send!(c, time 1, data(R + 2920, L, &BYTES[..1080]));
    let out = recv!(c, time 1, ACK, seq L, ack R + 4000);
    assert_eq!(out.window, 0);
    // A probe into the zero window is answered with the same window.
    send!(c, time 2, data(R + 4000, L, b"p"));
    let out = recv!(c, time 2, ACK, seq L, ack R + 4000);
    assert_eq!(out.window, 0);
    // Receiver SWS avoidance: reading one byte opens nothing.
    let mut buf = [0u8; 1500];
    assert_eq!(c.recv(&mut buf[..1]), Ok(1));
    recv_nothing!(c, time 3);
    // Reading an MSS worth owes a window update.
    assert_eq!(c.recv(&mut buf[..1459]), Ok(1459));
    let out = recv!(c, time 4, ACK, seq L, ack R + 4000);
    assert_eq!(out.window, 1460);
    recv_nothing!(c, time 4);
}

#[test]
fn test_our_window_never_shrinks() {
    let mut c = small_window();
    let mut buf = [0u8; 4000];
    static BYTES: [u8; 2000] = [2; 2000];
    send!(c, time 1, data(R, L, &BYTES[..1000]));
    let out = recv!(c, time 1, ACK, seq L, ack R + 1000);
    assert_eq!(out.window, 3000);
    // A small read: the edge stays (not worth moving), so 3000 again.
    assert_eq!(c.recv(&mut buf[..10]), Ok(10));
    send!(c, time 2, data(R + 1000, L, &BYTES[..500]));
    let out = recv!(c, time 2, ACK, seq L, ack R + 1500);
    assert_eq!(out.window, 2500, "the right edge R+4000 is kept");
}

// ---- Window scale negotiation (RFC 7323 §2) ------------------------------

fn scaled_cfg() -> TcpConfig {
    TcpConfig {
        window_scaling: true,
        recv_buffer: 1 << 20,
        ..cfg()
    }
}

#[test]
fn test_window_scale_both_offer() {
    let mut c = syn_sent_with(&scaled_cfg());
    // (The fixture consumed the SYN; check what it offered.)
    let mut fresh = Connection::connect(ms(0), LOCAL, REMOTE, SeqNumber(LOCAL_ISS), &scaled_cfg());
    let syn = recv!(fresh, time 0, SYN, seq LOCAL_ISS, ack 0);
    // 1 MiB needs a shift of 5 to fit 16 bits.
    assert_eq!(syn.options.window_scale, Some(5));
    assert_eq!(syn.window, 0xffff, "a SYN's window is never scaled");

    let syn_ack = TcpRepr {
        window: 1000,
        options: TcpOptions {
            window_scale: Some(7),
            ..NO_OPTIONS
        },
        ..seg(SYN | ACK, REMOTE_ISS, L)
    };
    send!(c, time 10, syn_ack);
    assert_eq!(c.window_scale(), Some((5, 7)));
    assert_eq!(c.peer_window(), 1000, "the SYN-ACK window is unscaled");
    let ack = recv!(c, time 10, ACK, seq L, ack R);
    assert_eq!(usize::from(ack.window), (1 << 20) >> 5);
    send!(c, time 20, TcpRepr { window: 100, ..seg(ACK, R, L) });
    assert_eq!(c.peer_window(), 100 << 7);
}

#[test]
fn test_window_scale_only_we_offer_means_none() {
    let mut c = syn_sent_with(&scaled_cfg());
    send!(c, time 10, TcpRepr { window: 1000, ..seg(SYN | ACK, REMOTE_ISS, L) });
    assert_eq!(c.window_scale(), None);
    let ack = recv!(c, time 10, ACK, seq L, ack R);
    assert_eq!(ack.window, 0xffff, "unscaled, capped at 16 bits");
    send!(c, time 20, TcpRepr { window: 100, ..seg(ACK, R, L) });
    assert_eq!(c.peer_window(), 100);
}

#[test]
fn test_window_scale_passive_both_offer() {
    let syn = TcpRepr {
        options: TcpOptions {
            window_scale: Some(9),
            ..SYN_TEMPL.options
        },
        ..SYN_TEMPL
    };
    let mut c = Connection::accept(
        ms(0),
        LOCAL,
        REMOTE,
        &syn,
        SeqNumber(LOCAL_ISS),
        &scaled_cfg(),
    );
    let out = recv!(c, time 0, SYN | ACK, seq LOCAL_ISS, ack R);
    assert_eq!(out.options.window_scale, Some(5));
    assert_eq!(c.window_scale(), Some((5, 9)));
}

#[test]
fn test_window_scale_passive_only_peer_offers_means_none() {
    let syn = TcpRepr {
        options: TcpOptions {
            window_scale: Some(9),
            ..SYN_TEMPL.options
        },
        ..SYN_TEMPL
    };
    // Our config has scaling off.
    let mut c = Connection::accept(ms(0), LOCAL, REMOTE, &syn, SeqNumber(LOCAL_ISS), &cfg());
    let out = recv!(c, time 0, SYN | ACK, seq LOCAL_ISS, ack R);
    assert_eq!(out.options.window_scale, None);
    assert_eq!(c.window_scale(), None);
    send!(c, time 5, TcpRepr { window: 100, ..seg(ACK, R, L) });
    assert_eq!(c.peer_window(), 100);
}

#[test]
fn test_window_scale_passive_peer_does_not_offer() {
    let mut c = Connection::accept(
        ms(0),
        LOCAL,
        REMOTE,
        &SYN_TEMPL,
        SeqNumber(LOCAL_ISS),
        &scaled_cfg(),
    );
    let out = recv!(c, time 0, SYN | ACK, seq LOCAL_ISS, ack R);
    assert_eq!(out.options.window_scale, None);
    assert_eq!(c.window_scale(), None);
}
