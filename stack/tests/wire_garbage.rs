//! The wire layer's no-panic contract under 100,000 hostile packets.
//!
//! Valid IPv4 packets (UDP, ICMP echo, TCP with options, IPv4 options) are
//! mutated with a seeded generator: bit flips, truncation, extension,
//! length and offset fields set to extremes, checksums repaired so the
//! damage reaches the deeper checks, or replaced by random bytes. Each is
//! fed through `Ipv4Repr::parse` and then the transport parser, as the
//! runtime does. Nothing may panic; every rejection must be a reason that
//! parser can give; every acceptance must describe bytes inside the input.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::Ipv4Addr;

use stack::wire::icmp::IcmpRepr;
use stack::wire::ipv4::{self, Ipv4Repr};
use stack::wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use stack::wire::udp::{self, UdpRepr};
use stack::wire::{checksum, Error, SeqNumber};

const PACKETS: usize = 100_000;
const SEED: u64 = 0x5eed_f00d_cafe_0001;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// SplitMix64: a seed reproduces the whole run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn ip_packet(protocol: u8, transport: &[u8]) -> Vec<u8> {
    let ip = Ipv4Repr {
        src: SRC,
        dst: DST,
        protocol,
        ttl: 64,
        payload_len: transport.len(),
    };
    let mut p = vec![0u8; ip.buffer_len()];
    ip.emit(&mut p).unwrap();
    p[ipv4::HEADER_LEN..].copy_from_slice(transport);
    p
}

/// The valid packets every mutation starts from.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();

    let udp = UdpRepr {
        src_port: 40000,
        dst_port: 7,
        payload: b"hello, echo",
    };
    let mut d = vec![0u8; udp.buffer_len()];
    udp.emit(SRC, DST, &mut d).unwrap();
    out.push(ip_packet(udp::PROTOCOL, &d));

    let echo = IcmpRepr::EchoRequest {
        ident: 0x1c2d,
        seq_no: 1,
        data: &[0x10; 56],
    };
    let mut m = vec![0u8; echo.buffer_len()];
    echo.emit(&mut m).unwrap();
    out.push(ip_packet(ipv4::PROTOCOL_ICMP, &m));

    let quoted = out[0].clone();
    let unreach = IcmpRepr::DestUnreachable {
        code: 3,
        original: &quoted,
    };
    let mut m = vec![0u8; unreach.buffer_len()];
    unreach.emit(&mut m).unwrap();
    out.push(ip_packet(ipv4::PROTOCOL_ICMP, &m));

    let syn = TcpRepr {
        src_port: 54321,
        dst_port: 80,
        seq: SeqNumber(1),
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 64240,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some(Timestamps { tsval: 1, tsecr: 0 }),
            ..TcpOptions::default()
        },
        payload: &[],
    };
    let mut s = vec![0u8; syn.buffer_len()];
    syn.emit(SRC, DST, &mut s).unwrap();
    out.push(ip_packet(tcp::PROTOCOL, &s));

    let data = TcpRepr {
        flags: TcpFlags::ACK | TcpFlags::PSH,
        ack: SeqNumber(99),
        options: TcpOptions::default(),
        payload: b"GET / HTTP/1.1\r\n\r\n",
        ..syn
    };
    let mut s = vec![0u8; data.buffer_len()];
    data.emit(SRC, DST, &mut s).unwrap();
    out.push(ip_packet(tcp::PROTOCOL, &s));

    // UDP inside a header with options (IHL 6).
    let mut p = out[0].clone();
    p.splice(20..20, [0x01, 0x01, 0x01, 0x00]);
    p[0] = 0x46;
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    fix_ip_checksum(&mut p);
    out.push(p);

    for p in &out {
        assert!(Ipv4Repr::parse(p).is_ok(), "a seed packet must be valid");
    }
    out
}

fn ihl(p: &[u8]) -> usize {
    p.first().map_or(20, |b| usize::from(b & 0x0f) * 4).max(20)
}

fn fix_ip_checksum(p: &mut [u8]) {
    let len = ihl(p);
    if p.len() < len {
        return;
    }
    p[10] = 0;
    p[11] = 0;
    let c = checksum::checksum(&p[..len]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Recomputes the transport checksum so mutations reach the checks
/// behind it.
fn fix_transport_checksum(p: &mut [u8]) {
    let start = ihl(p);
    if p.len() < start + 8 {
        return;
    }
    let (at, protocol) = match p[9] {
        udp::PROTOCOL => (6, udp::PROTOCOL),
        tcp::PROTOCOL if p.len() >= start + 18 => (16, tcp::PROTOCOL),
        ipv4::PROTOCOL_ICMP => (2, 0),
        _ => return,
    };
    let body = &mut p[start..];
    body[at] = 0;
    body[at + 1] = 0;
    let sum = if protocol == 0 {
        checksum::sum(body)
    } else {
        checksum::combine(&[
            checksum::pseudo_header(SRC, DST, protocol, body.len() as u32),
            checksum::sum(body),
        ])
    };
    body[at..at + 2].copy_from_slice(&checksum::finish(sum).to_be_bytes());
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut p = seeds[rng.below(seeds.len())].clone();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        match rng.below(10) {
            // Flip 1 to 8 bits anywhere.
            0 | 1 => {
                for _ in 0..=rng.below(8) {
                    if !p.is_empty() {
                        let bit = rng.below(p.len() * 8);
                        p[bit / 8] ^= 1 << (bit % 8);
                    }
                }
            }
            2 => p.truncate(rng.below(p.len() + 1)),
            3 => {
                let extra = rng.below(64);
                p.extend((0..extra).map(|_| rng.byte()));
            }
            // IPv4 total length to an extreme.
            4 if p.len() >= 4 => {
                let extremes = [0, 1, 19, 20, 21, p.len() - 1, p.len(), p.len() + 1, 0xffff];
                let v = extremes[rng.below(extremes.len())] as u16;
                p[2..4].copy_from_slice(&v.to_be_bytes());
            }
            // Version / IHL.
            5 if !p.is_empty() => {
                let v = [0x40, 0x44, 0x45, 0x46, 0x4f, 0x60, 0x00, 0xff][rng.below(8)];
                p[0] = v;
            }
            // Transport length fields: UDP length, TCP data offset.
            6 => {
                let start = ihl(&p);
                if p.len() >= start + 13 {
                    match p[9] {
                        udp::PROTOCOL => {
                            let v = [0u16, 7, 8, 9, 0xffff][rng.below(5)];
                            p[start + 4..start + 6].copy_from_slice(&v.to_be_bytes());
                        }
                        tcp::PROTOCOL => p[start + 12] = [0x00, 0x40, 0x50, 0xf0][rng.below(4)],
                        _ => {}
                    }
                }
            }
            // Fragment bits, addresses, protocol.
            7 if p.len() >= 20 => match rng.below(4) {
                0 => p[6] |= 0x20,
                1 => p[7] = rng.byte(),
                2 => p[12..16]
                    .copy_from_slice(&[[0, 0, 0, 0], [255; 4], [224, 0, 0, 5]][rng.below(3)]),
                _ => p[9] = [1, 6, 17, 0, 255][rng.below(5)],
            },
            // Pure garbage.
            8 => {
                let len = rng.below(120);
                p = (0..len).map(|_| rng.byte()).collect();
            }
            _ => {}
        }
    }
    // Half the time repair the checksums so the damage gets past them.
    if rng.below(2) == 0 {
        fix_transport_checksum(&mut p);
        fix_ip_checksum(&mut p);
    }
    p
}

/// True if `inner` lies within `outer`.
fn within(inner: &[u8], outer: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    o.start <= i.start && i.end <= o.end
}

fn record(
    seen: &mut HashMap<&'static str, usize>,
    layer: &'static str,
    e: Error,
    allowed: &[Error],
) {
    assert!(
        allowed.contains(&e),
        "{layer} rejected with unexpected {e:?}"
    );
    *seen.entry(e.as_str()).or_default() += 1;
    *seen.entry(layer).or_default() += 1;
}

#[test]
fn hundred_thousand_mutated_packets_never_panic() {
    use Error::*;
    let seeds = seeds();
    let mut rng = Rng(SEED);
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    let mut accepted = 0usize;

    for _ in 0..PACKETS {
        let packet = mutate(&mut rng, &seeds);
        let (ip, payload) = match Ipv4Repr::parse(&packet) {
            Ok(ok) => ok,
            Err(e) => {
                let allowed = [
                    Truncated,
                    BadLength,
                    BadVersion,
                    BadChecksum,
                    Fragmented,
                    BadAddress,
                ];
                record(&mut seen, "ipv4", e, &allowed);
                continue;
            }
        };
        assert_eq!(ip.payload_len, payload.len());
        assert!(within(payload, &packet));
        assert!(ip.buffer_len() <= packet.len());

        let result = match ip.protocol {
            udp::PROTOCOL => {
                let _ = UdpRepr::parse(ip.src, ip.dst, payload, false);
                UdpRepr::parse(ip.src, ip.dst, payload, true)
                    .map(|u| assert!(within(u.payload, payload)))
                    .map_err(|e| record(&mut seen, "udp", e, &[Truncated, BadLength, BadChecksum]))
            }
            tcp::PROTOCOL => {
                let _ = TcpRepr::parse(ip.src, ip.dst, payload, false);
                TcpRepr::parse(ip.src, ip.dst, payload, true)
                    .map(|t| assert!(within(t.payload, payload)))
                    .map_err(|e| {
                        record(
                            &mut seen,
                            "tcp",
                            e,
                            &[Truncated, BadLength, BadOption, BadChecksum],
                        )
                    })
            }
            ipv4::PROTOCOL_ICMP => IcmpRepr::parse(payload)
                .map(|m| match m {
                    IcmpRepr::EchoRequest { data, .. } | IcmpRepr::EchoReply { data, .. } => {
                        assert!(within(data, payload))
                    }
                    IcmpRepr::DestUnreachable { original, .. }
                    | IcmpRepr::FragNeeded { original, .. }
                    | IcmpRepr::TimeExceeded { original, .. } => {
                        assert!(within(original, payload));
                        // The quote is itself untrusted: parse it too.
                        let _ = Ipv4Repr::parse(original);
                    }
                    IcmpRepr::Other { .. } => {}
                })
                .map_err(|e| record(&mut seen, "icmp", e, &[Truncated, BadChecksum])),
            _ => Ok(()),
        };
        if result.is_ok() {
            accepted += 1;
        }
    }

    // The mutations must reach every rejection path, or this test proves
    // less than it claims.
    for reason in [
        "truncated",
        "bad_length",
        "bad_version",
        "bad_checksum",
        "fragmented",
        "bad_address",
        "bad_option",
        "udp",
        "tcp",
        "icmp",
    ] {
        assert!(
            seen.get(reason).copied().unwrap_or(0) > 0,
            "never saw {reason}: {seen:?}"
        );
    }
    assert!(
        accepted > 1000,
        "only {accepted} packets got through: {seen:?}"
    );
}
