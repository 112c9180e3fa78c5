//! Fuzz target: any bytes as an arriving IPv4 packet, through
//! `Ipv4Repr::parse` and the transport parser its protocol selects, as the
//! RX path does. Beyond "no panic" it checks that what parses round-trips:
//! an accepted header re-emitted and re-parsed gives the same value, and so
//! does an accepted UDP datagram, ICMP message and TCP segment.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stack::device::packet_log::PacketSummary;
use stack::wire::icmp::IcmpRepr;
use stack::wire::ipv4::{self, Ipv4Repr};
use stack::wire::tcp::{self, TcpRepr};
use stack::wire::udp::{self, UdpRepr};

fuzz_target!(|data: &[u8]| {
    // The packet log summarises whatever crosses the device, parsed or
    // not: it must never panic either.
    if let Some(summary) = PacketSummary::of(data) {
        let _ = summary.to_string();
    }
    let Ok((ip, payload)) = Ipv4Repr::parse(data) else {
        return;
    };
    assert_eq!(ip.payload_len, payload.len());

    // The header we would emit for this packet parses back to itself.
    let mut packet = vec![0u8; ip.buffer_len()];
    ip.emit(&mut packet)
        .expect("a parsed header fits its own buffer");
    packet[ipv4::HEADER_LEN..].copy_from_slice(payload);
    let (again, again_payload) = Ipv4Repr::parse(&packet).expect("re-parse of an emitted header");
    assert_eq!(again, ip);
    assert_eq!(again_payload, payload);

    match ip.protocol {
        tcp::PROTOCOL => {
            for verify in [true, false] {
                if let Ok(seg) = TcpRepr::parse(ip.src, ip.dst, payload, verify) {
                    assert!(seg.payload.len() <= payload.len());
                }
            }
        }
        udp::PROTOCOL => {
            if let Ok(d) = UdpRepr::parse(ip.src, ip.dst, payload, true) {
                let mut buf = vec![0u8; d.buffer_len()];
                let n = d
                    .emit(ip.src, ip.dst, &mut buf)
                    .expect("emit a parsed datagram");
                let back = UdpRepr::parse(ip.src, ip.dst, &buf[..n], true).expect("re-parse");
                assert_eq!(back, d);
            }
        }
        ipv4::PROTOCOL_ICMP => {
            if let Ok(m) = IcmpRepr::parse(payload) {
                let mut buf = vec![0u8; m.buffer_len()];
                if let Ok(n) = m.emit(&mut buf) {
                    // Only the kinds we emit in full compare equal: a
                    // quote is truncated to MAX_QUOTE and `Other` has no
                    // body to carry.
                    if let (Ok(back), IcmpRepr::EchoRequest { .. } | IcmpRepr::EchoReply { .. }) =
                        (IcmpRepr::parse(&buf[..n]), m)
                    {
                        assert_eq!(back, m);
                    }
                }
            }
        }
        _ => {}
    }
});
