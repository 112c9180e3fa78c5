//! The IPv6 side of the RX path.
//!
//! With `Config::addr6` set the stack is an IPv6 host at that address
//! (and, with `Config::any_address`, at every unicast address routed to
//! it): it answers echo requests (`ping -6`), and hands TCP segments and
//! UDP datagrams to the same demultiplexing as IPv4's (`rx`), whose
//! socket table holds both families; a segment for no socket gets a RST
//! and a datagram for no socket an ICMPv6 port unreachable (RFC 9293
//! §3.10.7.1, RFC 4443 §3.1). Extension headers RFC 8200 §4 refuses get a
//! Parameter Problem. Errors and RSTs share the IPv4 rate limits. Without
//! `addr6`, an IPv6 packet is a `drop_bad_version`.
//!
//! # Fragments
//!
//! A fragment addressed to us goes to the reassembler (`reasm`, shared
//! with IPv4 and its bounds, RFC 8200 §4.5) under (source, destination,
//! identification). The packet it completes is the first fragment's
//! unfragmentable part followed by the reassembled fragmentable part,
//! which starts with the header the fragment header's Next Header names:
//! that chain is walked ([`walk_after_reassembly`], which refuses a
//! second fragment header) and the packet handled exactly as an
//! unfragmented one. Overlapping fragments drop the datagram (RFC 5722);
//! a datagram not complete within 60 s is dropped with an ICMPv6 Time
//! Exceeded when its first fragment came. What we send is fragmented in
//! turn when longer than the MTU (`tx::send_ip6`).
//!
//! A TUN device is a layer-3 link: no Neighbor Discovery runs, and the
//! kernel's own router solicitations and multicast listener reports to
//! link-local multicast groups are counted as `drop_not_ours`.

use std::net::Ipv6Addr;

use crate::device::RxMeta;
use crate::stats::bump;
use crate::time::Instant;
use crate::wire::icmpv6::{self, Icmpv6Repr, MAX_QUOTE};
use crate::wire::ipv6::{
    next_header, walk_after_reassembly, FragmentInfo, Ipv6Error, Ipv6Payload, Ipv6Repr, HEADER_LEN,
};
use crate::wire::tcp;
use crate::wire::udp;
use crate::wire::Error;

use super::rx::{self, Rx};
use super::{reasm, tx, Inner};

/// Handles the IPv6 packet `index` of a batch.
pub(super) fn demux(
    rx: &mut Rx,
    inner: &Inner,
    now: Instant,
    index: usize,
    packet: &[u8],
    meta: RxMeta,
) {
    let Some(ours) = inner.config.addr6 else {
        return inner.stats.count_drop(Error::BadVersion);
    };
    bump(&inner.stats.ip6_rx);
    let (ip, carried) = match Ipv6Repr::parse(packet) {
        Ok(parsed) => parsed,
        Err(e) => {
            inner.stats.count_drop(e.error());
            if let Ipv6Error::Problem { code, pointer, .. } = e {
                param_problem(inner, now, packet, code, pointer);
            }
            return;
        }
    };
    if !inner.answers_for6(ip.dst) {
        return bump(&inner.stats.drop_not_ours);
    }
    if ip.src == ours || ip.src == ip.dst {
        // Our own address as the source: a reply would come back to us
        // (as for IPv4 in `rx`).
        return bump(&inner.stats.drop_bad_address);
    }
    match carried {
        Ipv6Payload::Upper(payload) => {
            dispatch(rx, inner, now, Some(index), &ip, payload, packet, meta)
        }
        Ipv6Payload::Fragment { info, data } => fragment(rx, inner, now, &ip, info, packet, data),
        Ipv6Payload::Nothing => {}
    }
}

/// Hands a whole packet (`packet`, parsed into `ip` and its upper-layer
/// `payload`) to its protocol. `index` is its place in the batch; `None`
/// for a reassembled packet, which is not in the batch.
#[allow(clippy::too_many_arguments)]
fn dispatch(
    rx: &mut Rx,
    inner: &Inner,
    now: Instant,
    index: Option<usize>,
    ip: &Ipv6Repr,
    payload: &[u8],
    packet: &[u8],
    meta: RxMeta,
) {
    let (src, dst) = (ip.src.into(), ip.dst.into());
    match ip.next_header {
        next_header::ICMPV6 => icmp(inner, now, ip, payload),
        tcp::PROTOCOL => rx.demux_tcp(inner, now, index, src, dst, payload, meta),
        udp::PROTOCOL => {
            let no_socket = || port_unreachable(inner, now, ip, packet);
            rx::demux_udp(inner, src, dst, payload, meta, no_socket);
        }
        _ => bump(&inner.stats.drop_unsupported),
    }
}

/// A fragment for us: into the reassembler, and the packet it completes,
/// if any, on to [`dispatch`] (see "Fragments" above).
fn fragment(
    rx: &mut Rx,
    inner: &Inner,
    now: Instant,
    ip: &Ipv6Repr,
    info: FragmentInfo,
    packet: &[u8],
    data: &[u8],
) {
    let Some(whole) = reasm::on_fragment6(inner, now, ip, info, packet, data) else {
        return;
    };
    let parts = whole.parts;
    let fragmentable = whole.packet.get(parts.unfragmentable_len..).unwrap_or(&[]);
    match walk_after_reassembly(parts.next, fragmentable, ip.dst.is_multicast()) {
        // No Next Header (RFC 8200 §4.7): nothing to hand on, as for an
        // unfragmented packet.
        Ok((next_header::NO_NEXT_HEADER, _)) => {}
        Ok((upper, payload)) => {
            let ip = Ipv6Repr {
                next_header: upper,
                payload_len: payload.len(),
                ..*ip
            };
            // Not in the batch: the device vouched for no checksum.
            dispatch(
                rx,
                inner,
                now,
                None,
                &ip,
                payload,
                &whole.packet,
                RxMeta::default(),
            );
        }
        Err(e) => {
            inner.stats.count_drop(e.error());
            if let Ipv6Error::Problem { code, pointer, .. } = e {
                // The walk counts as if the fragmentable part followed
                // the fixed header (its first Next Header at 6); the
                // unfragmentable part sits in between.
                let pointer = if (pointer as usize) < HEADER_LEN {
                    parts.next_header_at as u32
                } else {
                    pointer + parts.unfragmentable_len.saturating_sub(HEADER_LEN) as u32
                };
                param_problem(inner, now, &whole.packet, code, pointer);
            }
        }
    }
}

fn icmp(inner: &Inner, now: Instant, ip: &Ipv6Repr, message: &[u8]) {
    let msg = match Icmpv6Repr::parse(ip.src, ip.dst, message) {
        Ok(msg) => msg,
        Err(e) => return inner.stats.count_drop(e),
    };
    if let Icmpv6Repr::PacketTooBig { mtu, original } = msg {
        return super::too_big::on_packet_too_big(inner, now, mtu, original);
    }
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

/// The ICMPv6 port unreachable for a datagram (`packet`) to a port with
/// no socket.
fn port_unreachable(inner: &Inner, now: Instant, ip: &Ipv6Repr, packet: &[u8]) {
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
fn param_problem(inner: &Inner, now: Instant, packet: &[u8], code: u8, pointer: u32) {
    // The parse got past the fixed header and its source check before it
    // found the problem, so both addresses are there to read.
    let (Some(src), Some(dst)) = (address(packet, 8), address(packet, 24)) else {
        return;
    };
    if !inner.answers_for6(dst) {
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
        dst,
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
    if inner.icmp_error_allowed(now, sent) {
        send_icmp(inner, src, dst, msg);
    }
}

/// Sends one ICMPv6 message, in fragments when longer than the MTU.
pub(super) fn send_icmp(inner: &Inner, src: Ipv6Addr, dst: Ipv6Addr, msg: &Icmpv6Repr<'_>) {
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
    use crate::wire::checksum;
    use crate::wire::ipv6::{self, HEADER_LEN};
    use crate::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
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
        let rst = TcpRepr::parse(US, PEER, &body, true).unwrap();
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

    // ---- path MTU ------------------------------------------------------

    /// A Packet Too Big from a router on the way, saying `mtu`, quoting a
    /// packet from `src` to PEER whose upper layer is `next` with `body`.
    fn too_big(mtu: u32, src: Ipv6Addr, next: u8, body: &[u8]) -> Vec<u8> {
        let quoted = Ipv6Repr {
            src,
            dst: PEER,
            next_header: next,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 1400,
        };
        let mut original = vec![0; HEADER_LEN];
        quoted.emit(&mut original).unwrap();
        original.extend_from_slice(body);
        let msg = Icmpv6Repr::PacketTooBig {
            mtu,
            original: &original,
        };
        let mut m = vec![0; msg.buffer_len()];
        msg.emit(PEER, US, &mut m).unwrap();
        packet_to(US, next_header::ICMPV6, &m)
    }

    #[test]
    fn packet_too_big_about_our_packets_lowers_the_path_mtu_and_fragments_follow() {
        let (inner, peer) = stack6();
        let other = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 9);
        let udp_head = [0x00, 0x07, 0x9c, 0x40, 0x05, 0x78, 0, 0];
        // A TCP segment of no connection of ours: RFC 5927 says ignore it.
        let tcp_head = [0x9c, 0x40, 0x00, 0x50, 0, 0, 0x10, 0, 0x50, 0x10, 0, 0];
        feed(
            &inner,
            &[
                too_big(1280, other, udp::PROTOCOL, &udp_head),
                too_big(1280, US, tcp::PROTOCOL, &tcp_head),
                too_big(1280, US, udp::PROTOCOL, &udp_head),
            ],
        );
        let stats = inner.stats.snapshot();
        assert_eq!(count(&stats, "pmtu_ignored"), 2);
        assert_eq!(count(&stats, "pmtu_lowered"), 1);
        let now = inner.now();
        assert_eq!(inner.path_mtu(PEER.into(), now), 1280);
        assert_eq!(inner.path_mtu(other.into(), now), 1500);
        // 1400 bytes of UDP to PEER now leave in fragments of at most
        // 1280 bytes.
        let sock = inner
            .bind_udp(std::net::SocketAddr::from((US, 7)))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let to = std::net::SocketAddr::from((PEER, 9));
        assert_eq!(inner.send_datagram(&sock, &[0u8; 1400], to, None), Ok(()));
        let out = sent(&peer);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out.iter().all(|p| p.len() <= 1280));
    }

    // ---- fragments -----------------------------------------------------

    /// A stack owning fd00::2 on a MemPair, and the peer's end.
    fn stack6() -> (Inner, MemDevice) {
        let (ours, peer) = MemPair::new(64, 1500);
        let config = Config {
            addr6: Some(US),
            ..Config::default()
        };
        (Inner::threadless(Box::new(ours), config), peer)
    }

    fn feed(inner: &Inner, packets: &[Vec<u8>]) {
        let mut batch = PacketBatch::new(packets.len(), 1500);
        for p in packets {
            assert!(batch.push(p));
        }
        Rx::new(packets.len()).process(inner, &batch);
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn big_echo_request(data: &[u8]) -> Vec<u8> {
        let req = Icmpv6Repr::EchoRequest {
            ident: 0x66,
            seq_no: 9,
            data,
        };
        let mut m = vec![0; req.buffer_len()];
        req.emit(PEER, US, &mut m).unwrap();
        packet_to(US, next_header::ICMPV6, &m)
    }

    /// `packet` (a fixed header and its upper-layer payload) cut into
    /// fragments of `unit` payload bytes (a multiple of 8) under `id`.
    fn fragments6(packet: &[u8], unit: usize, id: u32) -> Vec<Vec<u8>> {
        let (ip, carried) = Ipv6Repr::parse(packet).unwrap();
        let Ipv6Payload::Upper(payload) = carried else {
            panic!("not a whole packet");
        };
        payload
            .chunks(unit)
            .enumerate()
            .map(|(i, part)| {
                let info = ipv6::FragmentInfo {
                    id,
                    offset: i * unit,
                    more: i * unit + part.len() < payload.len(),
                };
                let mut chain = vec![0; ipv6::FRAGMENT_HEADER_LEN];
                ipv6::emit_fragment_header(ip.next_header, info, &mut chain).unwrap();
                chain.extend_from_slice(part);
                packet_to(US, next_header::FRAGMENT, &chain)
            })
            .collect()
    }

    /// Our fragments put back together after checking them against RFC
    /// 8200 §4.5: each fits the MTU, all share one identification, each
    /// but the last carries a multiple of 8 bytes with More Fragments set.
    /// The upper-layer protocol and payload.
    fn reassemble_ours(sent: &[Vec<u8>]) -> (u8, Vec<u8>) {
        let mut id = None;
        let mut whole = Vec::new();
        let mut protocol = None;
        for (i, p) in sent.iter().enumerate() {
            assert!(p.len() <= 1500, "fragment {i} is {} bytes", p.len());
            assert_eq!(p[6], next_header::FRAGMENT);
            let (ip, carried) = Ipv6Repr::parse(p).unwrap();
            assert_eq!((ip.src, ip.dst), (US, PEER));
            let Ipv6Payload::Fragment { info, data } = carried else {
                panic!("not a fragment: {carried:?}");
            };
            assert_eq!(*id.get_or_insert(info.id), info.id);
            assert_eq!(*protocol.get_or_insert(ip.next_header), ip.next_header);
            assert_eq!(info.offset, whole.len(), "in order, no gap");
            let last = i + 1 == sent.len();
            assert_eq!(info.more, !last);
            if !last {
                assert_eq!(data.len() % 8, 0);
            }
            whole.extend_from_slice(data);
        }
        (protocol.expect("fragments"), whole)
    }

    #[test]
    fn fragmented_echo_request_out_of_order_is_answered_in_fragments() {
        let (inner, peer) = stack6();
        let data = pattern(4000);
        let frags = fragments6(&big_echo_request(&data), 1232, 0xabcd_0001);
        assert_eq!(frags.len(), 4);
        // Out of order, with a repeat.
        let order = [frags[3].clone(), frags[1].clone(), frags[1].clone()];
        feed(&inner, &order);
        assert!(sent(&peer).is_empty());
        feed(&inner, &[frags[2].clone(), frags[0].clone()]);
        let out = sent(&peer);
        // 4008 bytes of ICMPv6 in 1448-byte pieces behind 48 bytes of
        // headers.
        assert_eq!(out.len(), 3);
        let (protocol, body) = reassemble_ours(&out);
        assert_eq!(protocol, next_header::ICMPV6);
        let reply = Icmpv6Repr::parse(US, PEER, &body).unwrap();
        assert_eq!(
            reply,
            Icmpv6Repr::EchoReply {
                ident: 0x66,
                seq_no: 9,
                data: &data
            }
        );
        let stats = inner.stats.snapshot();
        assert_eq!(count(&stats, "ip_frag_received"), 5);
        assert_eq!(count(&stats, "ip_reassembled"), 1);
        assert_eq!(count(&stats, "icmp_echo"), 1);
        assert_eq!(count(&stats, "ip_frag_tx"), 3);
        assert_eq!(inner.reasm.usage(), (0, 0));
    }

    #[test]
    fn a_reassembled_datagram_is_handled_as_an_unfragmented_one() {
        // Destination options (unfragmentable, before the fragment
        // header), then UDP to a closed port in two fragments: port
        // unreachable quotes the packet as rebuilt, options included.
        let (inner, peer) = stack6();
        let whole = udp_to(9999);
        let frags = fragments6(&whole, 8, 7);
        let with_options: Vec<Vec<u8>> = frags
            .iter()
            .map(|f| {
                let mut chain = vec![next_header::FRAGMENT, 0, 1, 4, 0, 0, 0, 0];
                chain.extend_from_slice(&f[HEADER_LEN..]);
                packet_to(US, next_header::DEST_OPTIONS, &chain)
            })
            .collect();
        feed(&inner, &with_options);
        let (_, body) = reply(&sent(&peer));
        let Icmpv6Repr::DestUnreachable { code, original } =
            Icmpv6Repr::parse(US, PEER, &body).unwrap()
        else {
            panic!("not port unreachable");
        };
        assert_eq!(code, icmpv6::unreach_code::PORT);
        let mut rebuilt = packet_to(
            US,
            next_header::DEST_OPTIONS,
            &[udp::PROTOCOL, 0, 1, 4, 0, 0, 0, 0],
        );
        rebuilt.extend_from_slice(&whole[HEADER_LEN..]);
        let len = (rebuilt.len() - HEADER_LEN) as u16;
        rebuilt[4..6].copy_from_slice(&len.to_be_bytes());
        assert_eq!(original, &rebuilt[..]);
        let stats = inner.stats.snapshot();
        assert_eq!(count(&stats, "ip_reassembled"), 1);
        assert_eq!(count(&stats, "icmp_unreachable_tx"), 1);
    }

    #[test]
    fn a_fragment_header_inside_a_reassembled_packet_is_a_parameter_problem() {
        // Destination options (unfragmentable), then fragments whose
        // reassembled payload starts with a second fragment header: the
        // pointer names the destination options' Next Header field (40).
        let (inner, peer) = stack6();
        let mut nested = vec![udp::PROTOCOL, 0, 0, 0, 0, 0, 0, 1];
        nested.extend_from_slice(&[0; 8]);
        let frags: Vec<Vec<u8>> = nested
            .chunks(8)
            .enumerate()
            .map(|(i, part)| {
                let info = ipv6::FragmentInfo {
                    id: 77,
                    offset: i * 8,
                    more: i == 0,
                };
                let mut chain = vec![next_header::FRAGMENT, 0, 1, 4, 0, 0, 0, 0];
                let mut frag = vec![0; ipv6::FRAGMENT_HEADER_LEN];
                ipv6::emit_fragment_header(next_header::FRAGMENT, info, &mut frag).unwrap();
                chain.extend_from_slice(&frag);
                chain.extend_from_slice(part);
                packet_to(US, next_header::DEST_OPTIONS, &chain)
            })
            .collect();
        feed(&inner, &frags);
        let (_, body) = reply(&sent(&peer));
        let Icmpv6Repr::ParamProblem { code, pointer, .. } =
            Icmpv6Repr::parse(US, PEER, &body).unwrap()
        else {
            panic!("not a parameter problem");
        };
        assert_eq!((code, pointer), (ipv6::problem_code::NEXT_HEADER, 40));
        assert_eq!(count(&inner.stats.snapshot(), "icmp_param_problem_tx"), 1);
    }

    #[test]
    fn overlapping_fragments_drop_the_datagram() {
        // RFC 5722 §4: the datagram and its later fragments are dropped.
        let (inner, peer) = stack6();
        let data = pattern(3000);
        let frags = fragments6(&big_echo_request(&data), 1232, 42);
        let shifted = fragments6(&big_echo_request(&data), 1224, 42);
        feed(&inner, &[frags[0].clone(), shifted[1].clone()]);
        feed(&inner, &frags[1..]);
        assert!(sent(&peer).is_empty());
        let stats = inner.stats.snapshot();
        assert_eq!(count(&stats, "ip_reasm_overlap_dropped"), 1);
        assert_eq!(count(&stats, "icmp_echo"), 0);
        assert_eq!(count(&stats, "ip_reassembled"), 0);
    }

    #[test]
    fn timeout_sends_time_exceeded_when_the_first_fragment_came() {
        let (inner, peer) = stack6();
        let data = pattern(3000);
        let a = fragments6(&big_echo_request(&data), 1232, 1);
        let b = fragments6(&big_echo_request(&data), 1232, 2);
        let start = inner.now();
        // A's first fragment; B's second only.
        feed(&inner, &[a[0].clone(), b[1].clone()]);
        let due = start + Duration::from_secs(60);
        reasm::expire(&inner, start + Duration::from_secs(59), due);
        assert!(sent(&peer).is_empty(), "60 s, not IPv4's 30");
        reasm::expire(&inner, inner.now() + Duration::from_secs(60), due);
        let (ip, body) = reply(&sent(&peer));
        assert_eq!(ip.next_header, next_header::ICMPV6);
        let msg = Icmpv6Repr::parse(US, PEER, &body).unwrap();
        // RFC 8200 §4.5: code 1, quoting the first fragment (its headers
        // and the start of its data).
        let quote = &a[0][..HEADER_LEN + ipv6::FRAGMENT_HEADER_LEN + 8];
        assert_eq!(
            msg,
            Icmpv6Repr::TimeExceeded {
                code: icmpv6::time_exceeded_code::REASSEMBLY,
                original: quote
            }
        );
        let stats = inner.stats.snapshot();
        assert_eq!(count(&stats, "ip_reasm_timeout"), 2);
        assert_eq!(count(&stats, "icmp_time_exceeded_tx"), 1);
        assert_eq!(inner.reasm.usage(), (0, 0));
    }

    #[test]
    fn a_flood_of_fragments_does_not_lock_out_a_real_datagram() {
        let (inner, peer) = stack6();
        // 1,000 first fragments that never complete, each its own id.
        let flood: Vec<Vec<u8>> = (0..1000)
            .map(|id| fragments6(&big_echo_request(&pattern(3000)), 1232, id)[0].clone())
            .collect();
        for chunk in flood.chunks(100) {
            feed(&inner, chunk);
        }
        assert!(sent(&peer).is_empty());
        let data = pattern(4000);
        feed(&inner, &fragments6(&big_echo_request(&data), 1232, 5000));
        let (protocol, body) = reassemble_ours(&sent(&peer));
        assert_eq!(protocol, next_header::ICMPV6);
        assert!(matches!(
            Icmpv6Repr::parse(US, PEER, &body).unwrap(),
            Icmpv6Repr::EchoReply { data: d, .. } if d == &data[..]
        ));
        let stats = inner.stats.snapshot();
        assert!(count(&stats, "ip_reasm_evicted") >= 900);
        let (held, bytes) = inner.reasm.usage();
        assert!(held <= Config::default().reassembly_max_datagrams);
        assert!(bytes <= Config::default().reassembly_max_bytes);
    }

    #[test]
    fn fragments_are_dropped_and_counted_when_reassembly_is_off() {
        let (ours, peer) = MemPair::new(64, 1500);
        let config = Config {
            addr6: Some(US),
            reassembly_max_datagrams: 0,
            ..Config::default()
        };
        let inner = Inner::threadless(Box::new(ours), config);
        feed(
            &inner,
            &fragments6(&big_echo_request(&pattern(3000)), 1232, 3),
        );
        assert!(sent(&peer).is_empty());
        assert_eq!(count(&inner.stats.snapshot(), "drop_fragmented"), 3);
    }
}
