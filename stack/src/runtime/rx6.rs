//! The IPv6 side of the RX path, while the socket table holds IPv4
//! sockets only.
//!
//! With `Config::addr6` set the stack is an IPv6 host at that address:
//! it answers echo requests (`ping -6`), refuses TCP with a RST and UDP
//! with ICMPv6 port unreachable, as a host with nothing listening on IPv6
//! does (RFC 9293 §3.10.7.1, RFC 4443 §3.1), and answers extension headers
//! RFC 8200 §4 refuses with a Parameter Problem. Errors and RSTs share the
//! IPv4 rate limits. Fragments are counted and dropped until reassembly
//! covers IPv6. Without `addr6`, an IPv6 packet is a `drop_bad_version`,
//! as before the stack knew IPv6.
//!
//! A TUN device is a layer-3 link: no Neighbor Discovery runs, and the
//! kernel's own router solicitations and multicast listener reports to
//! link-local multicast groups are counted as `drop_not_ours`.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::device::RxMeta;
use crate::stats::bump;
use crate::tcp::reset::rst_for_closed;
use crate::time::Instant;
use crate::wire::checksum;
use crate::wire::icmpv6::{self, Icmpv6Repr, MAX_QUOTE};
use crate::wire::ipv6::{next_header, Ipv6Error, Ipv6Payload, Ipv6Repr};
use crate::wire::tcp::{self, TcpRepr};
use crate::wire::udp::{self, UdpRepr};
use crate::wire::Error;

use super::{rx, tx, Inner};

/// Handles one IPv6 packet of a batch.
pub(super) fn demux(inner: &Inner, now: Instant, packet: &[u8], meta: RxMeta) {
    let Some(ours) = inner.config.addr6 else {
        return inner.stats.count_drop(Error::BadVersion);
    };
    bump(&inner.stats.ip6_rx);
    let (ip, carried) = match Ipv6Repr::parse(packet) {
        Ok(parsed) => parsed,
        Err(e) => {
            inner.stats.count_drop(e.error());
            if let Ipv6Error::Problem { code, pointer, .. } = e {
                param_problem(inner, now, ours, packet, code, pointer);
            }
            return;
        }
    };
    if ip.dst != ours {
        return bump(&inner.stats.drop_not_ours);
    }
    let payload = match carried {
        Ipv6Payload::Upper(payload) => payload,
        Ipv6Payload::Fragment { .. } => return inner.stats.count_drop(Error::Fragmented),
        Ipv6Payload::Nothing => return,
    };
    match ip.next_header {
        next_header::ICMPV6 => icmp(inner, &ip, payload),
        tcp::PROTOCOL => refuse_tcp(inner, now, &ip, payload, meta),
        udp::PROTOCOL => refuse_udp(inner, now, &ip, payload, packet, meta),
        _ => bump(&inner.stats.drop_unsupported),
    }
}

fn icmp(inner: &Inner, ip: &Ipv6Repr, message: &[u8]) {
    let msg = match Icmpv6Repr::parse(ip.src, ip.dst, message) {
        Ok(msg) => msg,
        Err(e) => return inner.stats.count_drop(e),
    };
    let Icmpv6Repr::EchoRequest {
        ident,
        seq_no,
        data,
    } = msg
    else {
        return bump(&inner.stats.icmp_other);
    };
    // RFC 4443 §4.2: the reply carries the request's identifier, sequence
    // number and data.
    bump(&inner.stats.icmp_echo);
    let reply = Icmpv6Repr::EchoReply {
        ident,
        seq_no,
        data,
    };
    send_icmp(inner, ip.dst, ip.src, &reply);
}

/// Whether a TCP or UDP checksum over IPv6 must be, and is, right.
fn checksum_ok(inner: &Inner, ip: &Ipv6Repr, protocol: u8, message: &[u8], meta: RxMeta) -> bool {
    !rx::transport_checksum(inner, meta)
        || checksum::upper_layer_v6(ip.src, ip.dst, protocol, message) == 0
}

/// A segment for a port with no IPv6 listener: a RST (never to a RST).
fn refuse_tcp(inner: &Inner, now: Instant, ip: &Ipv6Repr, payload: &[u8], meta: RxMeta) {
    if !checksum_ok(inner, ip, tcp::PROTOCOL, payload, meta) {
        return inner.stats.count_drop(Error::BadChecksum);
    }
    // The checksum is checked above with the IPv6 pseudo-header; the
    // addresses given here are not used when it is not verified.
    let unused = Ipv4Addr::UNSPECIFIED;
    let seg = match TcpRepr::parse(unused, unused, payload, false) {
        Ok(seg) => seg,
        Err(e) => return inner.stats.count_drop(e),
    };
    bump(&inner.stats.tcp_rx);
    let Some(rst) = rst_for_closed(&seg) else {
        return;
    };
    if !inner.rst_limit.lock().allow(now) {
        return bump(&inner.stats.tcp_rst_rate_limited);
    }
    bump(&inner.stats.tcp_rst_tx);
    bump(&inner.stats.tcp_tx);
    let (src, dst) = (ip.dst, ip.src);
    tx::send_ip6(inner, src, dst, tcp::PROTOCOL, |buf| {
        let len = rst.emit_unchecksummed(buf)?;
        let sum = checksum::upper_layer_v6(src, dst, tcp::PROTOCOL, &buf[..len]);
        buf[16..18].copy_from_slice(&sum.to_be_bytes());
        Ok(len)
    });
}

/// A datagram for a port with no IPv6 socket: ICMPv6 port unreachable.
fn refuse_udp(
    inner: &Inner,
    now: Instant,
    ip: &Ipv6Repr,
    payload: &[u8],
    packet: &[u8],
    meta: RxMeta,
) {
    // RFC 8200 §8.1: over IPv6 a zero UDP checksum is not "none" but
    // wrong.
    if payload.get(6..8) == Some(&[0, 0]) || !checksum_ok(inner, ip, udp::PROTOCOL, payload, meta) {
        return inner.stats.count_drop(Error::BadChecksum);
    }
    let unused = Ipv4Addr::UNSPECIFIED;
    if let Err(e) = UdpRepr::parse(unused, unused, payload, false) {
        return inner.stats.count_drop(e);
    }
    let error = Icmpv6Repr::DestUnreachable {
        code: icmpv6::unreach_code::PORT,
        original: quote(packet),
    };
    send_error(
        inner,
        now,
        ip.dst,
        ip.src,
        &error,
        &inner.stats.icmp_unreachable_tx,
    );
}

/// The Parameter Problem RFC 8200 §4 asks for, to the packet's source,
/// for a packet sent to us.
fn param_problem(
    inner: &Inner,
    now: Instant,
    ours: Ipv6Addr,
    packet: &[u8],
    code: u8,
    pointer: u32,
) {
    // The parse got past the fixed header and its source check before it
    // found the problem, so both addresses are there to read.
    let (Some(src), Some(dst)) = (address(packet, 8), address(packet, 24)) else {
        return;
    };
    if dst != ours {
        return bump(&inner.stats.drop_not_ours);
    }
    let problem = Icmpv6Repr::ParamProblem {
        code,
        pointer,
        original: quote(packet),
    };
    send_error(
        inner,
        now,
        ours,
        src,
        &problem,
        &inner.stats.icmp_param_problem_tx,
    );
}

/// An error message under the ICMP rate limit (RFC 4443 §2.4 (f)),
/// counted in `sent` when it goes.
fn send_error(
    inner: &Inner,
    now: Instant,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    msg: &Icmpv6Repr<'_>,
    sent: &std::sync::atomic::AtomicU64,
) {
    if inner.icmp_limit.lock().allow(now) {
        bump(sent);
        send_icmp(inner, src, dst, msg);
    } else {
        bump(&inner.stats.icmp_rate_limited);
    }
}

fn send_icmp(inner: &Inner, src: Ipv6Addr, dst: Ipv6Addr, msg: &Icmpv6Repr<'_>) {
    tx::send_ip6(inner, src, dst, next_header::ICMPV6, |buf| {
        msg.emit(src, dst, buf)
    });
}

/// As much of `packet` as an error message quotes.
fn quote(packet: &[u8]) -> &[u8] {
    &packet[..packet.len().min(MAX_QUOTE)]
}

fn address(packet: &[u8], at: usize) -> Option<Ipv6Addr> {
    let bytes: [u8; 16] = packet.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(bytes))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::device::mem::{MemDevice, MemPair};
    use crate::device::{Device, PacketBatch};
    use crate::runtime::rx::Rx;
    use crate::wire::ipv6::{self, HEADER_LEN};
    use crate::wire::tcp::{TcpFlags, TcpOptions};
    use crate::wire::SeqNumber;

    const US: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    const PEER: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);

    /// An IPv6 packet from PEER to `dst` whose payload is `chain` after a
    /// fixed header with Next Header `first`.
    fn packet_to(dst: Ipv6Addr, first: u8, chain: &[u8]) -> Vec<u8> {
        let ip = Ipv6Repr {
            src: PEER,
            dst,
            next_header: first,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: chain.len(),
        };
        let mut p = vec![0; ip.buffer_len()];
        ip.emit(&mut p).unwrap();
        p[HEADER_LEN..].copy_from_slice(chain);
        p
    }

    fn echo_request() -> Vec<u8> {
        let req = Icmpv6Repr::EchoRequest {
            ident: 0x77,
            seq_no: 3,
            data: b"ping6",
        };
        let mut m = vec![0; req.buffer_len()];
        req.emit(PEER, US, &mut m).unwrap();
        packet_to(US, next_header::ICMPV6, &m)
    }

    fn syn(port: u16) -> Vec<u8> {
        let seg = TcpRepr {
            src_port: 40000,
            dst_port: port,
            seq: SeqNumber(1000),
            ack: SeqNumber(0),
            flags: TcpFlags::SYN,
            window: 64_000,
            urgent: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        let mut m = vec![0; seg.buffer_len()];
        let n = seg.emit_unchecksummed(&mut m).unwrap();
        let sum = checksum::upper_layer_v6(PEER, US, tcp::PROTOCOL, &m[..n]);
        m[16..18].copy_from_slice(&sum.to_be_bytes());
        packet_to(US, tcp::PROTOCOL, &m)
    }

    fn udp_to(port: u16) -> Vec<u8> {
        let mut m = vec![0x9c, 0x40, 0, 0, 0, 12, 0, 0, b'h', b'e', b'l', b'o'];
        m[2..4].copy_from_slice(&port.to_be_bytes());
        let sum = checksum::upper_layer_v6(PEER, US, udp::PROTOCOL, &m);
        m[6..8].copy_from_slice(&sum.to_be_bytes());
        packet_to(US, udp::PROTOCOL, &m)
    }

    /// Runs `packets` through a stack owning 10.0.0.2 and, with `addr6`,
    /// fd00::2; returns its counters and the packets it sent.
    fn run(
        addr6: Option<Ipv6Addr>,
        packets: &[Vec<u8>],
    ) -> (Vec<(&'static str, u64)>, Vec<Vec<u8>>) {
        let (ours, peer) = MemPair::new(64, 1500);
        let config = Config {
            addr6,
            ..Config::default()
        };
        let inner = Inner::threadless(Box::new(ours), config);
        let mut batch = PacketBatch::new(packets.len(), 1500);
        for p in packets {
            assert!(batch.push(p));
        }
        Rx::new(packets.len()).process(&inner, &batch);
        (inner.stats.snapshot(), sent(&peer))
    }

    fn sent(peer: &MemDevice) -> Vec<Vec<u8>> {
        let mut batch = PacketBatch::new(64, 1500);
        let n = peer.recv_batch(&mut batch, Duration::ZERO).unwrap_or(0);
        (0..n)
            .filter_map(|i| batch.get(i).map(<[u8]>::to_vec))
            .collect()
    }

    fn count(stats: &[(&'static str, u64)], name: &str) -> u64 {
        stats
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// The one packet sent, parsed: its header and upper-layer bytes.
    fn reply(sent: &[Vec<u8>]) -> (Ipv6Repr, Vec<u8>) {
        assert_eq!(sent.len(), 1, "one reply");
        let (ip, carried) = Ipv6Repr::parse(&sent[0]).unwrap();
        let Ipv6Payload::Upper(body) = carried else {
            panic!("not an upper-layer packet: {carried:?}");
        };
        assert_eq!((ip.src, ip.dst), (US, PEER));
        (ip, body.to_vec())
    }

    #[test]
    fn without_addr6_ipv6_is_a_bad_version_as_before() {
        let (stats, sent) = run(None, &[echo_request()]);
        assert_eq!(count(&stats, "drop_bad_version"), 1);
        assert_eq!(count(&stats, "ip6_rx"), 0);
        assert!(sent.is_empty());
    }

    #[test]
    fn echo_request_is_answered_with_its_data() {
        let (stats, sent) = run(Some(US), &[echo_request()]);
        let (ip, body) = reply(&sent);
        assert_eq!(ip.next_header, next_header::ICMPV6);
        let msg = Icmpv6Repr::parse(US, PEER, &body).unwrap();
        assert_eq!(
            msg,
            Icmpv6Repr::EchoReply {
                ident: 0x77,
                seq_no: 3,
                data: b"ping6"
            }
        );
        assert_eq!(count(&stats, "icmp_echo"), 1);
        assert_eq!(count(&stats, "ip6_rx"), 1);
    }

    #[test]
    fn a_syn_is_refused_with_a_rst_checksummed_over_ipv6() {
        let (stats, sent) = run(Some(US), &[syn(80)]);
        let (ip, body) = reply(&sent);
        assert_eq!(ip.next_header, tcp::PROTOCOL);
        assert_eq!(checksum::upper_layer_v6(US, PEER, tcp::PROTOCOL, &body), 0);
        let rst =
            TcpRepr::parse(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &body, false).unwrap();
        assert!(rst.flags.rst() && rst.flags.ack());
        assert_eq!(rst.ack, SeqNumber(1001), "RFC 9293 §3.10.7.1: ACKs the SYN");
        assert_eq!((rst.src_port, rst.dst_port), (80, 40000));
        assert_eq!(count(&stats, "tcp_rst_tx"), 1);
    }

    #[test]
    fn a_datagram_gets_port_unreachable_quoting_it() {
        let dgram = udp_to(9999);
        let (stats, sent) = run(Some(US), std::slice::from_ref(&dgram));
        let (_, body) = reply(&sent);
        let msg = Icmpv6Repr::parse(US, PEER, &body).unwrap();
        assert_eq!(
            msg,
            Icmpv6Repr::DestUnreachable {
                code: icmpv6::unreach_code::PORT,
                original: &dgram
            }
        );
        assert_eq!(count(&stats, "icmp_unreachable_tx"), 1);
    }

    #[test]
    fn an_unknown_option_of_action_10_gets_a_parameter_problem() {
        // Destination options holding option type 0x9e, then UDP.
        let chain = [udp::PROTOCOL, 0, 0x9e, 4, 0, 0, 0, 0];
        let p = packet_to(US, next_header::DEST_OPTIONS, &chain);
        let (stats, sent) = run(Some(US), std::slice::from_ref(&p));
        let (_, body) = reply(&sent);
        let msg = Icmpv6Repr::parse(US, PEER, &body).unwrap();
        assert_eq!(
            msg,
            Icmpv6Repr::ParamProblem {
                code: ipv6::problem_code::OPTION,
                pointer: 42,
                original: &p
            }
        );
        assert_eq!(count(&stats, "icmp_param_problem_tx"), 1);
        assert_eq!(count(&stats, "drop_bad_option"), 1);
    }

    #[test]
    fn packets_for_other_addresses_and_bad_checksums_are_dropped_silently() {
        let other = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 9);
        let mut corrupt = syn(80);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0x40;
        let mut zero_sum = udp_to(53);
        zero_sum[HEADER_LEN + 6..HEADER_LEN + 8].fill(0);
        let packets = [
            packet_to(other, next_header::ICMPV6, &[128, 0, 0, 0, 0, 0, 0, 0]),
            corrupt,
            zero_sum,
        ];
        let (stats, sent) = run(Some(US), &packets);
        assert!(sent.is_empty(), "{sent:?}");
        assert_eq!(count(&stats, "drop_not_ours"), 1);
        assert_eq!(count(&stats, "drop_bad_checksum"), 2);
    }
}
