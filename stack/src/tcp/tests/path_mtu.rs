//! Path MTU discovery in a connection (`Connection::cap_path_mss`,
//! `quotes_in_flight`): RFC 1191 §6.4, RFC 8201 §5.4, RFC 5927 §4.1.

use super::*;

#[test]
fn test_only_unacknowledged_data_is_in_flight() {
    let mut c = established();
    assert!(!c.quotes_in_flight(SeqNumber(L)), "nothing sent yet");
    c.send(&[7u8; 3000]).unwrap();
    let sent = drain(&mut c, 0);
    assert_eq!(sent.len(), 3);
    assert!(c.quotes_in_flight(SeqNumber(L)));
    assert!(c.quotes_in_flight(SeqNumber(L + 2999)));
    assert!(!c.quotes_in_flight(SeqNumber(L + 3000)), "never sent");
    assert!(
        !c.quotes_in_flight(SeqNumber(L - 1)),
        "the SYN, acknowledged"
    );
}

#[test]
fn test_a_lower_path_mss_resends_what_is_in_flight_in_smaller_segments() {
    let mut c = established();
    c.send(&[7u8; 2920]).unwrap();
    let sent = drain(&mut c, 0);
    assert_eq!(
        sent.iter().map(|o| o.payload.len()).collect::<Vec<_>>(),
        [1460, 1460]
    );
    let cwnd = c.cwnd();
    // A router on the way takes 1280-byte IPv6 packets: 1220 bytes of
    // options and payload.
    assert!(c.cap_path_mss(1220));
    assert_eq!(c.effective_mss(), 1220);
    // At once, not after the RTO: everything from SND.UNA again.
    let again = drain(&mut c, 1);
    let lens: Vec<usize> = again.iter().map(|o| o.payload.len()).collect();
    assert_eq!(lens, [1220, 1220, 480]);
    assert_eq!(again[0].seq, L);
    // No congestion signal: the window stays, in bytes.
    assert!(c.cwnd() >= cwnd.min(10 * 1220), "{} < {cwnd}", c.cwnd());
    // A report that is not lower changes nothing.
    assert!(!c.cap_path_mss(1400));
    assert!(drain(&mut c, 2).is_empty());
}

#[test]
fn test_a_cap_before_the_handshake_holds_after_the_peer_syn() {
    let mut c = syn_sent();
    // Learned before the SYN-ACK (a new connection to a known path).
    c.cap_path_mss(1000);
    let syn_ack = TcpRepr {
        options: TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        },
        ..seg(SYN | ACK, REMOTE_ISS, L)
    };
    c.handle_segment(ms(1), &syn_ack);
    assert!(c.is_established());
    assert_eq!(c.effective_mss(), 1000);
}
