//! Fuzz target: any bytes as an arriving IPv6 packet, through
//! `Ipv6Repr::parse` (the fixed header and the extension-header walk) and,
//! for ICMPv6, `Icmpv6Repr::parse`. Beyond "no panic" it checks what must
//! hold of an accepted packet: the payload it hands back lies inside the
//! packet, a Parameter Problem points inside the packet, an accepted
//! header re-emitted parses back to the same fields, and an accepted echo
//! message round-trips.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stack::device::packet_log::PacketSummary;
use stack::wire::icmpv6::Icmpv6Repr;
use stack::wire::ipv6::{self, next_header, Ipv6Error, Ipv6Payload, Ipv6Repr};

fuzz_target!(|data: &[u8]| {
    // The packet log summarises whatever crosses the device, parsed or
    // not: it must never panic either.
    if let Some(summary) = PacketSummary::of(data) {
        let _ = summary.to_string();
    }
    let (ip, carried) = match Ipv6Repr::parse(data) {
        Ok(parsed) => parsed,
        Err(Ipv6Error::Problem { pointer, .. }) => {
            assert!((pointer as usize) < data.len(), "pointer {pointer} outside the packet");
            return;
        }
        Err(Ipv6Error::Drop(_)) => return,
    };
    let payload = match carried {
        Ipv6Payload::Upper(p) => p,
        Ipv6Payload::Fragment { info, data: frag } => {
            assert!(info.offset % 8 == 0);
            assert!(info.offset + frag.len() <= 65_535);
            frag
        }
        Ipv6Payload::Nothing => &[],
    };
    assert_eq!(ip.payload_len, payload.len());
    assert!(payload.len() + ipv6::HEADER_LEN <= data.len());

    // The fixed header we would emit with this payload parses back to the
    // same fields (extension headers are gone: the payload is the upper
    // layer's).
    if matches!(carried, Ipv6Payload::Upper(_))
        && !matches!(
            ip.next_header,
            next_header::HOP_BY_HOP
                | next_header::ROUTING
                | next_header::FRAGMENT
                | next_header::DEST_OPTIONS
                | next_header::NO_NEXT_HEADER
        )
    {
        let mut packet = vec![0u8; ip.buffer_len()];
        ip.emit(&mut packet).expect("a parsed header fits its own buffer");
        packet[ipv6::HEADER_LEN..].copy_from_slice(payload);
        let (again, again_payload) = Ipv6Repr::parse(&packet).expect("re-parse of an emitted header");
        assert_eq!(again, ip);
        assert_eq!(again_payload, Ipv6Payload::Upper(payload));
    }

    if ip.next_header == next_header::ICMPV6 {
        if let Ipv6Payload::Upper(message) = carried {
            if let Ok(m) = Icmpv6Repr::parse(ip.src, ip.dst, message) {
                let mut buf = vec![0u8; m.buffer_len()];
                let n = m.emit(ip.src, ip.dst, &mut buf).expect("emit a parsed message");
                if let (Ok(back), Icmpv6Repr::EchoRequest { .. } | Icmpv6Repr::EchoReply { .. }) =
                    (Icmpv6Repr::parse(ip.src, ip.dst, &buf[..n]), m)
                {
                    assert_eq!(back, m);
                }
            }
        }
    }
});
