//! Building packets and writing them to the device.
//!
//! Every transmit path ends in [`send_ip`]: it writes the IPv4 header and
//! lets the caller emit the transport part behind it, into a per-thread
//! buffer so sending allocates nothing.
//!
//! # Fragmentation
//!
//! UDP datagrams and ICMP messages (an echo reply is as long as its
//! request, which may have been reassembled) are built whole, up to
//! 65,535 bytes, and sent as IPv4 fragments when longer than the MTU
//! (RFC 791 §3.2): each fragment but the last carries a multiple of 8
//! payload bytes, all share one identification, More Fragments is set on
//! all but the last, and Don't Fragment is clear. A datagram that fits
//! the MTU is sent whole with Don't Fragment set, as is every TCP
//! segment: TCP sizes its segments by the MSS and never fragments. "The
//! MTU" here is the path MTU to the destination: the link's, or less
//! where a Packet Too Big or Fragmentation Needed said so (`too_big`).
//!
//! Every IPv6 packet goes through [`send_ip6`], built whole (up to a
//! 65,535-byte payload) and, when longer than the MTU, sent in fragments
//! with a fragment header (RFC 8200 §4.5): we emit no extension headers,
//! so the unfragmentable part is the fixed header alone; the fragmentable
//! part is cut into pieces of a multiple of 8 bytes but the last, each
//! behind a copy of the fixed header (Next Header 44, its payload length
//! its own) and a fragment header carrying the upper-layer protocol, the
//! piece's offset, More Fragments on all but the last, and one 32-bit
//! identification from the stack's counter.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::stats::bump;
use crate::tcp::connection::Connection;
use crate::time::Instant;
use crate::wire::icmp::IcmpRepr;
use crate::wire::ipv4::{self, Ipv4Repr};
use crate::wire::ipv6::{self, FragmentInfo, Ipv6Repr};
use crate::wire::tcp::{self, TcpRepr};
use crate::wire::udp::{self, UdpRepr};
use crate::wire::Error;

use super::txq::Packet;
use super::Inner;

/// Room for the largest payload we build (a full-size IPv4 packet, or a
/// TCP super-segment).
const BUF_LEN: usize = ipv4::MAX_PACKET_LEN;

/// The largest TCP super-segment we build, IP header included, in either
/// family: what a device's `send_tso` takes at most.
const MAX_SUPER_PACKET: usize = ipv4::MAX_PACKET_LEN;

/// Room for the largest packet we build: an IPv6 packet with a
/// 65,535-byte payload, before it is fragmented.
const PACKET_LEN: usize = ipv6::HEADER_LEN + 0xffff;

thread_local! {
    /// (payload scratch, packet) buffers for this thread's transmissions.
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = RefCell::new((vec![0; BUF_LEN], vec![0; PACKET_LEN]));
}

/// Writes an IP packet of either family, `src -> dst`, of at most `limit`
/// bytes into `packet`, whose transport part (`protocol`) `emit` writes
/// into the buffer it is given (returning its length); returns the
/// packet's length, or `None` (counted) if it could not be built. The two
/// addresses are of one family on every path here; a mixed pair is
/// counted as a transmit error rather than sent.
fn build_packet(
    inner: &Inner,
    packet: &mut [u8],
    limit: usize,
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    emit: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Option<usize> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => build_ip(inner, packet, limit, s, d, protocol, emit),
        (IpAddr::V6(s), IpAddr::V6(d)) => build_ip6(inner, packet, limit, s, d, protocol, emit),
        _ => built(inner, Err(Error::BadAddress), dst),
    }
}

/// Writes an IPv4 packet of at most `limit` bytes into `packet` (see
/// [`build_packet`]); returns its length, or `None` (counted) if it could
/// not be built.
fn build_ip(
    inner: &Inner,
    packet: &mut [u8],
    limit: usize,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    emit: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Option<usize> {
    let header = |payload_len, packet: &mut [u8]| {
        let ip = Ipv4Repr {
            src,
            dst,
            protocol,
            ttl: inner.config.ttl,
            payload_len,
        };
        ip.emit(packet)?;
        Ok(ip.buffer_len())
    };
    let result = build_behind(packet, limit, ipv4::HEADER_LEN, emit, header)?;
    built(inner, result, dst)
}

/// Writes an IPv6 packet of at most `limit` bytes into `packet`: the
/// fixed header (hop limit `Config::ttl`, traffic class and flow label 0)
/// and behind it the upper-layer part `emit` writes. See [`build_ip`].
fn build_ip6(
    inner: &Inner,
    packet: &mut [u8],
    limit: usize,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    emit: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Option<usize> {
    let header = |payload_len, packet: &mut [u8]| {
        let ip = ip6_header(inner, src, dst, next_header, payload_len);
        ip.emit(packet)?;
        Ok(ip.buffer_len())
    };
    let result = build_behind(packet, limit, ipv6::HEADER_LEN, emit, header)?;
    built(inner, result, dst)
}

/// The part both families share: `emit` writes the payload behind
/// `header_len` bytes, within `limit` (and `packet`), then `header`
/// writes the header for that payload length and returns the packet's
/// length. `None` when `limit` leaves no room behind the header.
fn build_behind(
    packet: &mut [u8],
    limit: usize,
    header_len: usize,
    emit: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
    header: impl FnOnce(usize, &mut [u8]) -> Result<usize, Error>,
) -> Option<Result<usize, Error>> {
    let limit = limit.min(packet.len());
    let body = packet.get_mut(header_len..limit)?;
    Some(emit(body).and_then(|len| header(len, packet)))
}

/// The fixed header of an IPv6 packet we send.
fn ip6_header(
    inner: &Inner,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    payload_len: usize,
) -> Ipv6Repr {
    Ipv6Repr {
        src,
        dst,
        next_header,
        hop_limit: inner.config.ttl,
        traffic_class: 0,
        flow_label: 0,
        payload_len,
    }
}

/// The length of a packet that was built, or `None` (counted and logged)
/// when it could not be.
fn built(
    inner: &Inner,
    result: Result<usize, Error>,
    dst: impl std::fmt::Display,
) -> Option<usize> {
    match result {
        Ok(len) => Some(len),
        Err(e) => {
            bump(&inner.stats.tx_errors);
            tracing::warn!("could not build a packet to {dst}: {e}");
            None
        }
    }
}

/// Counts the outcome of one device write.
fn sent(inner: &Inner, result: std::io::Result<()>) {
    match result {
        Ok(()) => bump(&inner.stats.ip_tx),
        Err(e) => {
            bump(&inner.stats.tx_errors);
            tracing::debug!("device send failed: {e}");
        }
    }
}

/// The payload limit for one TCP super-segment from `local` on this
/// stack's device (`Connection::set_max_segment_payload`): the device's
/// `max_segment()` less the IP header of `local`'s family and the largest
/// TCP header, 0 (one MSS per segment) when the device segments no bigger
/// than its MTU.
pub(crate) fn max_segment_payload(inner: &Inner, local: IpAddr) -> usize {
    let max = inner.device.max_segment().min(MAX_SUPER_PACKET);
    if max <= inner.device.mtu() {
        return 0;
    }
    max.saturating_sub(ip_header_len(local) + tcp::MAX_HEADER_LEN)
}

/// The length of the IP header we put before a packet of `addr`'s family.
pub(crate) fn ip_header_len(addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(_) => ipv4::HEADER_LEN,
        IpAddr::V6(_) => ipv6::HEADER_LEN,
    }
}

/// Queues every segment `conn` owes now on the transmit queue; the caller
/// writes them out with [`flush`] once it has released the socket's lock
/// (see [`super::txq`]). A segment whose payload exceeds the connection's
/// MSS is a super-segment: it goes to the device's `send_tso`, which cuts
/// it into MSS-sized packets (in the kernel, with an offload TUN device,
/// or in software).
pub(crate) fn transmit_tcp(inner: &Inner, conn: &mut Connection, now: Instant) {
    let (src, dst) = (conn.local().ip(), conn.remote().ip());
    let mss = conn.effective_mss();
    BUFFERS.with(|cell| {
        let payload = &mut cell.borrow_mut().0;
        while let Some(seg) = conn.poll_transmit(now, payload) {
            let tso = seg.payload.len() > mss;
            let (limit, tso_mss) = if tso {
                // The MSS came from a 16-bit option: it fits.
                let mss = u16::try_from(mss).unwrap_or(u16::MAX);
                (MAX_SUPER_PACKET, Some(mss))
            } else {
                (inner.config.mtu, None)
            };
            let build = |packet: &mut [u8]| {
                build_packet(inner, packet, limit, src, dst, tcp::PROTOCOL, |buf| {
                    // The device checksums each packet it cuts a
                    // super-segment into.
                    if tso {
                        seg.emit_unchecksummed(buf)
                    } else {
                        seg.emit(src, dst, buf)
                    }
                })
            };
            inner.txq.push(limit, tso_mss, build, |p| write(inner, p));
            bump(&inner.stats.tcp_tx);
        }
    });
}

/// Writes out the transmit queue (see [`super::txq`]). Call it after
/// releasing a socket's lock whenever [`transmit_tcp`] may have run.
pub(crate) fn flush(inner: &Inner) {
    inner.txq.flush(|p| write(inner, p));
}

fn write(inner: &Inner, p: Packet<'_>) {
    let result = match p.tso_mss {
        Some(mss) => inner.device.send_tso(p.bytes, mss),
        None => inner.device.send(p.bytes),
    };
    sent(inner, result);
}

/// Sends one TCP segment that belongs to no connection (a RST, a SYN
/// cookie's SYN-ACK).
pub(crate) fn send_tcp(inner: &Inner, src: IpAddr, dst: IpAddr, seg: &TcpRepr<'_>) {
    with_packet(|packet| {
        let limit = inner.config.mtu;
        let emit = |buf: &mut [u8]| seg.emit(src, dst, buf);
        if let Some(len) = build_packet(inner, packet, limit, src, dst, tcp::PROTOCOL, emit) {
            sent(inner, inner.device.send(&packet[..len]));
        }
    });
    bump(&inner.stats.tcp_tx);
}

/// Sends one UDP datagram, in fragments when it is longer than the MTU
/// (IPv4 fragments, or IPv6 ones behind a fragment header).
pub(crate) fn send_udp(inner: &Inner, src: IpAddr, dst: IpAddr, dgram: &UdpRepr<'_>) {
    let emit = |buf: &mut [u8]| dgram.emit(src, dst, buf);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => send_fragmentable(inner, s, d, udp::PROTOCOL, emit),
        (IpAddr::V6(s), IpAddr::V6(d)) => send_ip6(inner, s, d, udp::PROTOCOL, emit),
        _ => return bump(&inner.stats.tx_errors),
    }
    bump(&inner.stats.udp_tx);
}

/// Sends one ICMP message, in fragments when it is longer than the MTU.
pub(crate) fn send_icmp(inner: &Inner, src: Ipv4Addr, dst: Ipv4Addr, msg: &IcmpRepr<'_>) {
    send_fragmentable(inner, src, dst, ipv4::PROTOCOL_ICMP, |buf| msg.emit(buf));
}

/// Builds a datagram of up to 65,535 bytes and sends it whole when it
/// fits the MTU, else in fragments (see the module docs).
fn send_fragmentable(
    inner: &Inner,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    emit: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) {
    BUFFERS.with(|cell| {
        let (scratch, packet) = &mut *cell.borrow_mut();
        let limit = ipv4::MAX_PACKET_LEN;
        let Some(len) = build_ip(inner, packet, limit, src, dst, protocol, emit) else {
            return;
        };
        let mtu = inner.path_mtu(dst.into(), inner.now());
        if len <= mtu {
            return sent(inner, inner.device.send(&packet[..len]));
        }
        let payload = packet.get(ipv4::HEADER_LEN..len).unwrap_or(&[]);
        let ip = Ipv4Repr {
            src,
            dst,
            protocol,
            ttl: inner.config.ttl,
            payload_len: 0,
        };
        fragment(inner, &ip, payload, scratch, mtu);
    });
}

/// Writes an IPv6 packet `src -> dst` whose upper-layer part (protocol
/// `next_header`, at most 65,535 bytes) `emit` writes into the buffer it
/// is given, returning its length, and sends it: whole when it fits the
/// MTU, else in fragments (see the module docs). Hop limit
/// `Config::ttl`, traffic class and flow label 0.
pub(crate) fn send_ip6(
    inner: &Inner,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    emit: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) {
    BUFFERS.with(|cell| {
        let (scratch, packet) = &mut *cell.borrow_mut();
        let limit = packet.len();
        let Some(len) = build_ip6(inner, packet, limit, src, dst, next_header, emit) else {
            return;
        };
        let mtu = inner.path_mtu(dst.into(), inner.now());
        if len <= mtu {
            return sent(inner, inner.device.send(&packet[..len]));
        }
        let payload = packet.get(ipv6::HEADER_LEN..len).unwrap_or(&[]);
        let ip = ip6_header(inner, src, dst, next_header, 0);
        fragment6(inner, &ip, payload, scratch, mtu);
    });
}

/// Sends `payload`, the upper-layer part of the packet `ip` heads, in
/// fragments of at most `mtu` bytes (RFC 8200 §4.5), built one after the
/// other in `buf`.
fn fragment6(inner: &Inner, ip: &Ipv6Repr, payload: &[u8], buf: &mut [u8], mtu: usize) {
    // Each fragment but the last carries a multiple of 8 bytes behind the
    // fixed and fragment headers. An IPv6 link's MTU is at least 1280
    // (RFC 8200 §5); a smaller configured one still leaves 8.
    let overhead = ipv6::HEADER_LEN + ipv6::FRAGMENT_HEADER_LEN;
    let unit = (mtu.saturating_sub(overhead) & !7).max(8);
    let id = inner.next_ip6_id(ip.dst);
    for (i, part) in payload.chunks(unit).enumerate() {
        let offset = i * unit;
        let info = FragmentInfo {
            id,
            offset,
            more: offset + part.len() < payload.len(),
        };
        let frag = Ipv6Repr {
            next_header: ipv6::next_header::FRAGMENT,
            payload_len: ipv6::FRAGMENT_HEADER_LEN + part.len(),
            ..*ip
        };
        let len = frag.buffer_len();
        let built = buf
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall)
            .and_then(|b| {
                frag.emit(b)?;
                ipv6::emit_fragment_header(ip.next_header, info, &mut b[ipv6::HEADER_LEN..])?;
                b[overhead..].copy_from_slice(part);
                Ok(b)
            });
        if !send_fragment(inner, built, ip.dst) {
            return;
        }
    }
}

/// Sends a fragment that was built, or counts and logs one that could not
/// be; false when the rest of its datagram should not follow.
fn send_fragment(
    inner: &Inner,
    built: Result<&mut [u8], Error>,
    dst: impl std::fmt::Display,
) -> bool {
    match built {
        Ok(b) => {
            bump(&inner.stats.ip_frag_tx);
            sent(inner, inner.device.send(b));
            true
        }
        Err(e) => {
            bump(&inner.stats.tx_errors);
            tracing::warn!("could not build a fragment to {dst}: {e}");
            false
        }
    }
}

/// Sends `payload`, the payload of the datagram `ip` heads, in fragments
/// of at most `mtu` bytes, built one after the other in `buf`.
fn fragment(inner: &Inner, ip: &Ipv4Repr, payload: &[u8], buf: &mut [u8], mtu: usize) {
    // RFC 791: every fragment but the last carries a multiple of 8 bytes.
    // `Config::validate` holds the MTU to at least 68, so this is >= 48.
    let unit = (mtu.saturating_sub(ipv4::HEADER_LEN) & !7).max(8);
    let id = inner.next_ip_id();
    for (i, part) in payload.chunks(unit).enumerate() {
        let offset = i * unit;
        let more = offset + part.len() < payload.len();
        let frag = Ipv4Repr {
            payload_len: part.len(),
            ..*ip
        };
        let len = frag.buffer_len();
        let built = buf
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall)
            .and_then(|b| {
                frag.emit_fragment(b, id, offset, more)?;
                b[ipv4::HEADER_LEN..].copy_from_slice(part);
                Ok(b)
            });
        if !send_fragment(inner, built, ip.dst) {
            return;
        }
    }
}

fn with_packet(f: impl FnOnce(&mut [u8])) {
    BUFFERS.with(|cell| f(&mut cell.borrow_mut().1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::device::mem::MemPair;

    #[test]
    fn super_segment_payload_follows_the_device() {
        let addr = Ipv4Addr::new(10, 0, 0, 2);
        let (ours, _peer) = MemPair::new(4, 1500);
        let inner = Inner::threadless(Box::new(ours), Config::with_addr(addr));
        assert_eq!(
            max_segment_payload(&inner, addr.into()),
            0,
            "one MSS per segment"
        );
        let (ours, _peer) = MemPair::with_max_segment(4, 1500, 0xffff);
        let inner = Inner::threadless(Box::new(ours), Config::with_addr(addr));
        // 65535 less 20 bytes of IPv4 and 60 of TCP header with options;
        // over IPv6, 40 bytes of IP header.
        assert_eq!(max_segment_payload(&inner, addr.into()), 65_455);
        let addr6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
        assert_eq!(max_segment_payload(&inner, addr6.into()), 65_435);
    }
}
