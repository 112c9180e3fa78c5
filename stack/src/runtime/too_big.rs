//! Path MTU discovery (RFC 1191 for IPv4, RFC 8201 for IPv6): what the
//! stack does with an ICMP Fragmentation Needed or an ICMPv6 Packet Too
//! Big about a packet it sent.
//!
//! The report quotes the packet that was too big. It is acted on only if
//! that packet can be ours: its source one of our addresses and, for TCP,
//! its four-tuple a connection of ours whose unacknowledged data holds
//! the quoted sequence number (RFC 5927 §4.1), so an off-path attacker
//! cannot shrink a connection's segments by guessing. A report about UDP
//! or ICMP is taken on its word: it can lower the estimate no further
//! than the floors of `pmtu` (1280 bytes for IPv6, 552 for IPv4), and
//! only for a while (`pmtu::PMTU_TIMEOUT`). A report that passes lowers
//! the destination's entry in the stack's path MTU cache (`pmtu`), which
//! then sizes our fragments to it, and a quoted connection's MSS, which
//! resends what it has in flight in segments that fit
//! (`Connection::cap_path_mss`). Other connections to the same place
//! learn from their own reports, and new ones from the cache.
//!
//! Counted: `pmtu_lowered` (reports acted on), `pmtu_ignored` (reports
//! that failed the checks).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::stats::bump;
use crate::table::{FourTuple, TcpLookup};
use crate::tcp::connection::Connection;
use crate::time::Instant;
use crate::wire::{ipv4, ipv6, tcp, SeqNumber};

use super::socket::{Entry, TcpSocket};
use super::Inner;

/// Bytes of TCP fixed header, which the MSS does not count.
const TCP_HEADER: usize = 20;

/// What the quoted packet was, as far as the checks need.
struct Quoted {
    src: IpAddr,
    dst: IpAddr,
    /// Of a TCP segment: its ports and sequence number.
    tcp: Option<(u16, u16, SeqNumber)>,
}

/// An ICMP Fragmentation Needed (type 3 code 4) quoting `original`.
pub(super) fn on_frag_needed(inner: &Inner, now: Instant, next_hop_mtu: u16, original: &[u8]) {
    let Some((quoted, total_len)) = quoted_v4(original) else {
        return bump(&inner.stats.pmtu_ignored);
    };
    let Some(sock) = check(inner, &quoted) else {
        return bump(&inner.stats.pmtu_ignored);
    };
    let IpAddr::V4(dst) = quoted.dst else {
        return bump(&inner.stats.pmtu_ignored);
    };
    let link = inner.config.mtu;
    inner
        .pmtu
        .lock()
        .learn_frag_needed(dst, next_hop_mtu, total_len, now, link);
    apply(inner, now, quoted.dst, sock);
}

/// An ICMPv6 Packet Too Big with `mtu`, quoting `original`.
pub(super) fn on_packet_too_big(inner: &Inner, now: Instant, mtu: u32, original: &[u8]) {
    let Some(quoted) = quoted_v6(original) else {
        return bump(&inner.stats.pmtu_ignored);
    };
    let Some(sock) = check(inner, &quoted) else {
        return bump(&inner.stats.pmtu_ignored);
    };
    let reported = usize::try_from(mtu).unwrap_or(usize::MAX);
    let link = inner.config.mtu;
    inner.pmtu.lock().learn(quoted.dst, reported, now, link);
    apply(inner, now, quoted.dst, sock);
}

/// Whether a report about `quoted` may be acted on: `Some` with the
/// quoted TCP connection (`None` inside for UDP and ICMP), `None` when it
/// fails the checks in the module documentation.
fn check(inner: &Inner, quoted: &Quoted) -> Option<Option<Arc<TcpSocket>>> {
    if !inner.answers_for_ip(quoted.src) {
        return None;
    }
    let Some((src_port, dst_port, seq)) = quoted.tcp else {
        return Some(None);
    };
    let tuple = FourTuple {
        local: SocketAddr::new(quoted.src, src_port),
        remote: SocketAddr::new(quoted.dst, dst_port),
    };
    let sock = match inner.table.read().lookup_tcp(tuple.local, tuple.remote) {
        TcpLookup::Connection(Entry::Tcp(sock)) => Arc::clone(sock),
        _ => return None,
    };
    let in_flight = sock.state.lock().conn.quotes_in_flight(seq);
    in_flight.then_some(Some(sock))
}

/// Counts an accepted report and brings the quoted connection, if any,
/// down to what the cache now says for `dst`.
fn apply(inner: &Inner, now: Instant, dst: IpAddr, sock: Option<Arc<TcpSocket>>) {
    bump(&inner.stats.pmtu_lowered);
    let Some(sock) = sock else {
        return;
    };
    let mss = mss_for(dst, inner.path_mtu(dst, now));
    let mut st = sock.state.lock();
    if st.conn.cap_path_mss(mss) {
        tracing::debug!(%dst, mss, "path MTU: segments to {dst} now carry at most {mss} bytes");
    }
    inner.finish_activity(&sock, st);
    super::tx::flush(inner);
}

/// Caps a new connection's MSS by what the cache knows of the path to
/// its peer, so it does not have to learn it again.
pub(crate) fn cap_new(inner: &Inner, conn: &mut Connection, now: Instant) {
    let dst = conn.remote().ip();
    let mtu = inner.path_mtu(dst, now);
    if mtu < inner.config.mtu {
        conn.cap_path_mss(mss_for(dst, mtu));
    }
}

/// The MSS (options and payload) that fits a path MTU of `mtu` to `dst`.
pub(crate) fn mss_for(dst: IpAddr, mtu: usize) -> usize {
    mtu.saturating_sub(super::tx::ip_header_len(dst) + TCP_HEADER)
}

/// The quoted IPv4 packet (RFC 792: its header and at least 8 bytes of
/// payload) and its total length.
fn quoted_v4(original: &[u8]) -> Option<(Quoted, u16)> {
    let ihl = usize::from(original.first()? & 0x0f) * 4;
    if original.first()? >> 4 != 4 || ihl < ipv4::HEADER_LEN {
        return None;
    }
    let total_len = u16::from_be_bytes([*original.get(2)?, *original.get(3)?]);
    let addr = |at: usize| -> Option<IpAddr> {
        let b: [u8; 4] = original.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(b).into())
    };
    let (src, dst) = (addr(12)?, addr(16)?);
    let protocol = *original.get(9)?;
    let transport = original.get(ihl..)?;
    Some((
        Quoted {
            src,
            dst,
            tcp: tcp_fields(protocol, transport)?,
        },
        total_len,
    ))
}

/// The quoted IPv6 packet: its fixed header and what follows. We send no
/// extension header but a fragment header (on UDP and ICMPv6 only), so a
/// quote of ours is TCP right after the fixed header, or anything else.
fn quoted_v6(original: &[u8]) -> Option<Quoted> {
    if original.first()? >> 4 != 6 {
        return None;
    }
    let addr = |at: usize| -> Option<IpAddr> {
        let b: [u8; 16] = original.get(at..at + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(b).into())
    };
    let (src, dst) = (addr(8)?, addr(24)?);
    let next = *original.get(6)?;
    let transport = original.get(ipv6::HEADER_LEN..)?;
    Some(Quoted {
        src,
        dst,
        tcp: tcp_fields(next, transport)?,
    })
}

/// For a quoted TCP segment, `Some(Some((source port, destination port,
/// sequence number)))`; `Some(None)` for another protocol; `None` when
/// the quote is too short to tell (RFC 792 and RFC 4443 quote at least 8
/// bytes, which hold all three).
fn tcp_fields(protocol: u8, transport: &[u8]) -> Option<Option<(u16, u16, SeqNumber)>> {
    if protocol != tcp::PROTOCOL {
        return Some(None);
    }
    let b = transport.get(..8)?;
    Some(Some((
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
        SeqNumber(u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
    )))
}
