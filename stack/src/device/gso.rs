//! Software segmentation of TCP super-segments: what a NIC with TCP
//! segmentation offload (TSO) does in hardware, for devices without it.
//!
//! A super-segment is one IPv4 or IPv6 packet carrying one TCP segment
//! whose payload is larger than the MSS. [`segment`] splits it into
//! packets of at most `mss` payload bytes, exactly as if the sender had
//! built them one by one: each has its own IP length (the IPv4 total
//! length, or the IPv6 payload length), a sequence number advanced by the
//! payload before it, and a full TCP checksum over the pseudo-header of
//! its family (RFC 9293 §3.1, RFC 8200 §8.1). An IPv4 piece also gets its
//! own identification (the first's plus its index) and header checksum;
//! IPv6 has neither. Of the flags, FIN and PSH go only on the last
//! segment (they apply to the end of the data) and CWR only on the first
//! (RFC 3168 §6.1.2: set on one packet per window reduction); the rest
//! are copied, as are IPv4 and TCP options.
//!
//! An IPv6 super-segment must carry TCP directly after its 40-byte fixed
//! header: the stack never puts extension headers on TCP, and a device
//! would have to know each one to copy or split it (a NIC's TSO does not
//! take them either), so they are a [`GsoError`].
//!
//! The input's own checksums are ignored, so a caller that hands
//! super-segments to [`super::Device::send_tso`] need not compute them.
//! Nothing here panics on any input: malformed packets are a
//! [`GsoError`].

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::checksum;

/// The IP protocol number (IPv4) and Next Header (IPv6) of TCP.
const PROTO_TCP: u8 = 0x06;
/// Minimum IPv4 and TCP header lengths, and the IPv6 fixed header's.
const IPV4_MIN: usize = 20;
const IPV6_HEADER: usize = 40;
const TCP_MIN: usize = 20;

/// The IPv6 Next Header values that name an extension header rather than
/// an upper layer (RFC 8200 §4 and the IANA "IPv6 Extension Header
/// Types" registry): Hop-by-Hop, Routing, Fragment, ESP, AH, Destination
/// Options, Mobility, HIP, Shim6 and the two experimental values.
const IPV6_EXTENSION_HEADERS: [u8; 11] = [
    0x00, 0x2b, 0x2c, 0x32, 0x33, 0x3c, 0x87, 0x8b, 0x8c, 0xfd, 0xfe,
];
/// The Fragment header's Next Header value (RFC 8200 §4.5).
const IPV6_FRAGMENT: u8 = 0x2c;

/// TCP flag bits in byte 13 of the header (RFC 9293 §3.1, RFC 3168 §6.1).
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const CWR: u8 = 0x80;

/// Why a packet cannot be segmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoError {
    /// A segment size of zero.
    ZeroMss,
    /// Too short for an IP header, or neither version 4 nor 6.
    NotIp,
    /// The IPv4 header length or total length, or the IPv6 payload
    /// length, does not fit the packet.
    BadIpLength,
    /// A fragment (IPv4, or an IPv6 Fragment header): only whole packets
    /// can be segmented.
    Fragment,
    /// An IPv6 packet with extension headers before its TCP header.
    Ipv6ExtensionHeaders,
    /// The IP payload is not TCP.
    NotTcp,
    /// The TCP header length does not fit the packet.
    BadTcpLength,
}

impl fmt::Display for GsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GsoError::ZeroMss => "segment size is zero",
            GsoError::NotIp => "not an IPv4 or IPv6 packet",
            GsoError::BadIpLength => "IP header or packet length does not fit the packet",
            GsoError::Fragment => "an IP fragment cannot be segmented",
            GsoError::Ipv6ExtensionHeaders => {
                "an IPv6 packet with extension headers cannot be segmented"
            }
            GsoError::NotTcp => "not a TCP segment",
            GsoError::BadTcpLength => "TCP header length does not fit the packet",
        })
    }
}

impl std::error::Error for GsoError {}

impl From<GsoError> for io::Error {
    fn from(err: GsoError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, err)
    }
}

/// The IP version of a super-segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpVersion {
    V4,
    V6,
}

/// A checked view of an IPv4 + TCP or IPv6 + TCP packet: the header
/// lengths are known to fit, so the accessors index without panicking.
#[derive(Clone, Copy, Debug)]
pub struct TcpSuperSegment<'a> {
    /// The packet up to the end of its IP payload.
    packet: &'a [u8],
    version: IpVersion,
    ip_len: usize,
    tcp_len: usize,
}

impl<'a> TcpSuperSegment<'a> {
    /// Checks that `packet` is an unfragmented IPv4 packet, or an IPv6
    /// packet without extension headers, carrying TCP with consistent
    /// lengths. Bytes past the IP length (IPv4 total length, IPv6 40 plus
    /// the payload length) are ignored; checksums are not checked.
    ///
    /// # Errors
    ///
    /// The first [`GsoError`] found.
    pub fn parse(packet: &'a [u8]) -> Result<Self, GsoError> {
        let (version, ip_len, total) = match packet.first().map(|b| b >> 4) {
            Some(4) => parse_ipv4(packet)?,
            Some(6) => parse_ipv6(packet)?,
            _ => return Err(GsoError::NotIp),
        };
        // invariant: total <= packet.len(), checked by parse_ipv4/6.
        let packet = &packet[..total];
        let data_offset = packet.get(ip_len + 12).ok_or(GsoError::BadTcpLength)?;
        let tcp_len = usize::from(data_offset >> 4) * 4;
        if tcp_len < TCP_MIN || ip_len + tcp_len > total {
            return Err(GsoError::BadTcpLength);
        }
        Ok(TcpSuperSegment {
            packet,
            version,
            ip_len,
            tcp_len,
        })
    }

    /// IPv4 or IPv6.
    pub fn version(&self) -> IpVersion {
        self.version
    }

    /// The IP header length: the IPv4 header with its options, or the
    /// 40-byte IPv6 fixed header. Where the TCP header, and so the
    /// checksum (the virtio-net `csum_start`), starts.
    pub fn ip_header_len(&self) -> usize {
        self.ip_len
    }

    /// IP plus TCP header length: where the payload starts (the
    /// virtio-net header's `hdr_len`).
    pub fn headers_len(&self) -> usize {
        self.ip_len + self.tcp_len
    }

    /// The packet up to the end of its IP payload.
    pub fn packet(&self) -> &'a [u8] {
        self.packet
    }

    /// The TCP payload.
    pub fn payload(&self) -> &'a [u8] {
        &self.packet[self.headers_len()..]
    }

    /// The source address, of either family.
    pub fn src(&self) -> IpAddr {
        match self.version {
            IpVersion::V4 => IpAddr::V4(self.ipv4_addr(12)),
            IpVersion::V6 => IpAddr::V6(self.ipv6_addr(8)),
        }
    }

    /// The destination address, of either family.
    pub fn dst(&self) -> IpAddr {
        match self.version {
            IpVersion::V4 => IpAddr::V4(self.ipv4_addr(16)),
            IpVersion::V6 => IpAddr::V6(self.ipv6_addr(24)),
        }
    }

    /// The four bytes at `at` (inside the checked IPv4 header).
    fn ipv4_addr(&self, at: usize) -> Ipv4Addr {
        let b = &self.packet[at..at + 4];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The sixteen bytes at `at` (inside the checked IPv6 header).
    fn ipv6_addr(&self, at: usize) -> Ipv6Addr {
        let mut b = [0u8; 16];
        b.copy_from_slice(&self.packet[at..at + 16]);
        Ipv6Addr::from(b)
    }

    /// The TCP flags byte.
    pub fn tcp_flags(&self) -> u8 {
        self.packet[self.ip_len + 13]
    }

    /// How many packets [`segment`] makes of it with this `mss`: one for
    /// an empty payload.
    pub fn segments(&self, mss: u16) -> usize {
        self.payload()
            .len()
            .div_ceil(usize::from(mss).max(1))
            .max(1)
    }

    /// The value a partially checksummed packet (`NEEDS_CSUM`) carries in
    /// its TCP checksum field: the folded, *not* inverted, sum of the
    /// pseudo-header of its family over the whole TCP length. The kernel
    /// adds the sum of the TCP header and payload to it and inverts (and
    /// when it segments, adjusts it for each segment's length).
    pub fn partial_checksum(&self) -> u16 {
        let tcp_total = (self.packet.len() - self.ip_len) as u32;
        !checksum::finish(self.pseudo_header(tcp_total))
    }

    /// The sum of the pseudo-header for a TCP segment of `tcp_len` bytes
    /// (header and payload) between this packet's addresses: RFC 9293
    /// §3.1 for IPv4, RFC 8200 §8.1 for IPv6.
    fn pseudo_header(&self, tcp_len: u32) -> u32 {
        match self.version {
            IpVersion::V4 => {
                checksum::pseudo_header(self.ipv4_addr(12), self.ipv4_addr(16), PROTO_TCP, tcp_len)
            }
            IpVersion::V6 => checksum::pseudo_header_v6(
                self.ipv6_addr(8),
                self.ipv6_addr(24),
                PROTO_TCP,
                tcp_len,
            ),
        }
    }
}

/// Checks the IPv4 header of `packet` (version 4 already seen): its
/// header and total lengths fit, it is no fragment and carries TCP.
/// Returns the version, header length and total length.
fn parse_ipv4(packet: &[u8]) -> Result<(IpVersion, usize, usize), GsoError> {
    if packet.len() < IPV4_MIN {
        return Err(GsoError::NotIp);
    }
    let ip_len = usize::from(packet[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if ip_len < IPV4_MIN || total < ip_len || total > packet.len() {
        return Err(GsoError::BadIpLength);
    }
    // Flags and fragment offset: MF set or a non-zero offset.
    if u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0 {
        return Err(GsoError::Fragment);
    }
    if packet[9] != PROTO_TCP {
        return Err(GsoError::NotTcp);
    }
    Ok((IpVersion::V4, ip_len, total))
}

/// Checks the IPv6 fixed header of `packet` (version 6 already seen): the
/// payload length fits and the Next Header is TCP itself. Returns the
/// version, header length (40) and the packet's length.
fn parse_ipv6(packet: &[u8]) -> Result<(IpVersion, usize, usize), GsoError> {
    if packet.len() < IPV6_HEADER {
        return Err(GsoError::NotIp);
    }
    // RFC 8200 §3: the payload length counts everything after the fixed
    // header, extension headers included. Zero would mean a jumbogram
    // (RFC 2675), which needs a Hop-by-Hop header and is refused below.
    let total = IPV6_HEADER + usize::from(u16::from_be_bytes([packet[4], packet[5]]));
    if total > packet.len() {
        return Err(GsoError::BadIpLength);
    }
    match packet[6] {
        PROTO_TCP => Ok((IpVersion::V6, IPV6_HEADER, total)),
        IPV6_FRAGMENT => Err(GsoError::Fragment),
        next if IPV6_EXTENSION_HEADERS.contains(&next) => Err(GsoError::Ipv6ExtensionHeaders),
        _ => Err(GsoError::NotTcp),
    }
}

/// Sets the IPv4 header checksum of `header` (a whole IPv4 header).
pub fn fill_ipv4_checksum(header: &mut [u8]) {
    if header.len() < IPV4_MIN {
        return;
    }
    header[10..12].fill(0);
    let sum = checksum::checksum(header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// Splits the super-segment `packet` into packets of at most `mss`
/// payload bytes and hands each, complete with checksums, to `emit`, in
/// order. A payload of at most `mss` bytes (or none) gives one packet,
/// the input with its checksums recomputed.
///
/// # Errors
///
/// A [`GsoError`] (converted into `E`) if `packet` is not a well-formed
/// unfragmented IPv4 + TCP packet or IPv6 + TCP packet without extension
/// headers, or `mss` is zero, before anything is emitted; else the first
/// error `emit` returns.
pub fn segment<E: From<GsoError>>(
    packet: &[u8],
    mss: u16,
    mut emit: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    if mss == 0 {
        return Err(GsoError::ZeroMss.into());
    }
    let seg = TcpSuperSegment::parse(packet)?;
    let headers = &seg.packet[..seg.headers_len()];
    let ip_len = seg.ip_len;
    let payload = seg.payload();
    let count = seg.segments(mss);
    let seq = u32::from_be_bytes([
        headers[ip_len + 4],
        headers[ip_len + 5],
        headers[ip_len + 6],
        headers[ip_len + 7],
    ]);
    let flags = seg.tcp_flags();

    let mut buf = Vec::with_capacity(headers.len() + usize::from(mss).min(payload.len()));
    for i in 0..count {
        let start = i * usize::from(mss);
        let chunk = payload
            .get(start..payload.len().min(start + usize::from(mss)))
            .unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(headers);
        buf.extend_from_slice(chunk);
        let total = buf.len();

        match seg.version {
            IpVersion::V4 => {
                // This packet's total length and identification, then the
                // header checksum.
                // invariant: total <= the input's total length, which fit
                // 16 bits.
                let id = u16::from_be_bytes([headers[4], headers[5]]);
                buf[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                buf[4..6].copy_from_slice(&id.wrapping_add(i as u16).to_be_bytes());
                fill_ipv4_checksum(&mut buf[..ip_len]);
            }
            IpVersion::V6 => {
                // Only the payload length changes: IPv6 has no header
                // checksum, and an identification only in a Fragment
                // header (RFC 8200 §3, §4.5).
                // invariant: total - 40 <= the input's payload length,
                // which fit 16 bits.
                buf[4..6].copy_from_slice(&((total - ip_len) as u16).to_be_bytes());
            }
        }

        // TCP: sequence number of this chunk's first byte and the flags.
        let tcp = &mut buf[ip_len..];
        tcp[4..8].copy_from_slice(&seq.wrapping_add(start as u32).to_be_bytes());
        let mut f = flags;
        if i + 1 < count {
            f &= !(FIN | PSH);
        }
        if i > 0 {
            f &= !CWR;
        }
        tcp[13] = f;
        tcp[16..18].fill(0);
        let sum = checksum::combine(&[seg.pseudo_header(tcp.len() as u32), checksum::sum(tcp)]);
        tcp[16..18].copy_from_slice(&checksum::finish(sum).to_be_bytes());
        emit(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice, PacketBuilder, TcpHeaderSlice};
    use proptest::prelude::*;

    const SEQ: u32 = 0xffff_f000; // wraps within the first 4 KiB

    /// The TCP options the stack sends: NOP, NOP, timestamps (a 32-byte
    /// TCP header).
    const OPTIONS: [etherparse::TcpOptionElement; 3] = [
        etherparse::TcpOptionElement::Noop,
        etherparse::TcpOptionElement::Noop,
        etherparse::TcpOptionElement::Timestamp(1, 2),
    ];

    /// Builds a super-segment from `builder`'s addresses, port 80 to
    /// 40000, with timestamps, the given flags and payload.
    fn build(
        builder: etherparse::PacketBuilderStep<etherparse::IpHeaders>,
        payload: &[u8],
        fin: bool,
        cwr: bool,
    ) -> Vec<u8> {
        let mut b = builder
            .tcp(80, 40000, SEQ, 1024)
            .ack(7)
            .psh()
            .options(&OPTIONS)
            .expect("options fit");
        if fin {
            b = b.fin();
        }
        if cwr {
            b = b.cwr();
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).expect("fits");
        out
    }

    /// A super-segment from 10.0.0.2:80 to 10.0.0.1:40000 with timestamps
    /// (a 32-byte TCP header, as the stack sends), the given flags and
    /// payload. Its checksums are deliberately left wrong.
    fn super_segment(payload: &[u8], fin: bool, cwr: bool) -> Vec<u8> {
        let ip = PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64);
        let mut out = build(ip, payload, fin, cwr);
        out[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        // Break both checksums: segment must not rely on them.
        out[10] ^= 0xff;
        let tcp_check = 20 + 16;
        out[tcp_check] ^= 0xff;
        out
    }

    const SRC6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const DST6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const FLOW_LABEL: u32 = 0xabcde;

    /// As [`super_segment`], over IPv6 from [fd00::2]:80 to
    /// [fd00::1]:40000, with a flow label that every piece must keep. Its
    /// TCP checksum is deliberately left wrong.
    fn super_segment_v6(payload: &[u8], fin: bool, cwr: bool) -> Vec<u8> {
        let ip = PacketBuilder::ipv6(SRC6, DST6, 64);
        let mut out = build(ip, payload, fin, cwr);
        out[1] |= (FLOW_LABEL >> 16) as u8;
        out[2..4].copy_from_slice(&(FLOW_LABEL as u16).to_be_bytes());
        out[40 + 16] ^= 0xff;
        out
    }

    fn split(packet: &[u8], mss: u16) -> Result<Vec<Vec<u8>>, GsoError> {
        let mut out = Vec::new();
        segment(packet, mss, |p| {
            out.push(p.to_vec());
            Ok::<(), GsoError>(())
        })?;
        Ok(out)
    }

    /// Re-parses each segment with etherparse, checks every per-segment
    /// field and the checksums (IPv4 header and TCP, or TCP over the
    /// IPv6 pseudo-header), and returns the reassembled payload.
    fn check_segments(segs: &[Vec<u8>], mss: u16, fin: bool, cwr: bool) -> Vec<u8> {
        let mut data = Vec::new();
        let last = segs.len() - 1;
        for (i, seg) in segs.iter().enumerate() {
            let (ip_len, tcp, payload) = match seg[0] >> 4 {
                4 => {
                    let ip = Ipv4HeaderSlice::from_slice(seg).unwrap();
                    assert_eq!(usize::from(ip.total_len()), seg.len());
                    assert_eq!(ip.identification(), 0x1234u16.wrapping_add(i as u16));
                    assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
                    let tcp = TcpHeaderSlice::from_slice(&seg[20..]).unwrap();
                    let payload = &seg[20 + tcp.slice().len()..];
                    let want = tcp.calc_checksum_ipv4(&ip, payload).unwrap();
                    assert_eq!(tcp.checksum(), want, "segment {i}");
                    (20, tcp, payload)
                }
                6 => {
                    let ip = Ipv6HeaderSlice::from_slice(seg).unwrap();
                    assert_eq!(usize::from(ip.payload_length()) + 40, seg.len());
                    assert_eq!(ip.next_header(), etherparse::IpNumber::TCP);
                    assert_eq!(ip.hop_limit(), 64);
                    assert_eq!(ip.flow_label().value(), FLOW_LABEL);
                    let tcp = TcpHeaderSlice::from_slice(&seg[40..]).unwrap();
                    let payload = &seg[40 + tcp.slice().len()..];
                    let want = tcp.calc_checksum_ipv6(&ip, payload).unwrap();
                    assert_eq!(tcp.checksum(), want, "segment {i}");
                    // And by our own RFC 8200 §8.1 sum: a right checksum
                    // makes the whole come to zero.
                    let ours = checksum::upper_layer_v6(
                        ip.source_addr(),
                        ip.destination_addr(),
                        PROTO_TCP,
                        &seg[40..],
                    );
                    assert_eq!(ours, 0, "segment {i}");
                    (40, tcp, payload)
                }
                v => panic!("segment {i} is IP version {v}"),
            };
            assert_eq!(seg.len(), ip_len + tcp.slice().len() + payload.len());
            assert!(payload.len() <= usize::from(mss));
            assert_eq!(tcp.sequence_number(), SEQ.wrapping_add(data.len() as u32));
            assert_eq!(tcp.acknowledgment_number(), 7);
            assert_eq!(tcp.fin(), fin && i == last, "FIN on segment {i}");
            assert_eq!(tcp.psh(), i == last, "PSH on segment {i}");
            assert_eq!(tcp.cwr(), cwr && i == 0, "CWR on segment {i}");
            assert!(tcp.ack());
            assert_eq!(tcp.options(), [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
            data.extend_from_slice(payload);
        }
        data
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn splits_64k_into_full_segments_and_a_tail() {
        let payload = pattern(65535 - 52);
        let packet = super_segment(&payload, true, true);
        let segs = split(&packet, 1448).unwrap();
        assert_eq!(segs.len(), payload.len().div_ceil(1448));
        assert!(segs[..segs.len() - 1].iter().all(|s| s.len() == 52 + 1448));
        assert_eq!(check_segments(&segs, 1448, true, true), payload);
    }

    #[test]
    fn payload_smaller_than_mss_is_one_segment() {
        let payload = pattern(100);
        let segs = split(&super_segment(&payload, false, false), 1448).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(check_segments(&segs, 1448, false, false), payload);
    }

    #[test]
    fn exact_multiple_of_mss_has_no_empty_tail() {
        let payload = pattern(3 * 500);
        let segs = split(&super_segment(&payload, true, false), 500).unwrap();
        assert_eq!(segs.len(), 3);
        assert!(segs.iter().all(|s| s.len() == 52 + 500));
        assert_eq!(check_segments(&segs, 500, true, false), payload);
    }

    #[test]
    fn zero_payload_is_one_header_only_segment() {
        let packet = super_segment(&[], true, false);
        let segs = split(&packet, 1448).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].len(), 52);
        assert!(check_segments(&segs, 1448, true, false).is_empty());
    }

    #[test]
    fn trailing_bytes_past_total_length_are_ignored() {
        let payload = pattern(3000);
        let mut packet = super_segment(&payload, false, false);
        packet.extend_from_slice(&[0xee; 7]);
        let segs = split(&packet, 1000).unwrap();
        assert_eq!(check_segments(&segs, 1000, false, false), payload);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let good = super_segment(&pattern(2000), false, false);
        assert_eq!(split(&good, 0), Err(GsoError::ZeroMss));
        assert_eq!(split(&[], 100), Err(GsoError::NotIp));
        assert_eq!(split(&good[..19], 100), Err(GsoError::NotIp));
        let mut v7 = good.clone();
        v7[0] = 0x75;
        assert_eq!(split(&v7, 100), Err(GsoError::NotIp));
        let mut short_ihl = good.clone();
        short_ihl[0] = 0x44;
        assert_eq!(split(&short_ihl, 100), Err(GsoError::BadIpLength));
        assert_eq!(
            split(&good[..good.len() - 1], 100),
            Err(GsoError::BadIpLength)
        );
        let mut frag = good.clone();
        frag[6] |= 0x20; // MF
        assert_eq!(split(&frag, 100), Err(GsoError::Fragment));
        let mut udp = good.clone();
        udp[9] = 17;
        assert_eq!(split(&udp, 100), Err(GsoError::NotTcp));
        let mut big_doff = good.clone();
        big_doff[20 + 12] = 0xf0; // 60 bytes: fits
        assert!(split(&big_doff, 100).is_ok());
        big_doff[20 + 12] = 0x40; // 16 bytes: too small
        assert_eq!(split(&big_doff, 100), Err(GsoError::BadTcpLength));
        let mut no_tcp = good[..40].to_vec();
        no_tcp[2..4].copy_from_slice(&30u16.to_be_bytes());
        assert_eq!(split(&no_tcp, 100), Err(GsoError::BadTcpLength));
        let io = io::Error::from(GsoError::NotTcp);
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn emit_errors_stop_segmentation() {
        let packet = super_segment(&pattern(5000), false, false);
        let mut seen = 0;
        let r = segment(&packet, 1000, |_| {
            seen += 1;
            if seen == 2 {
                Err(io::Error::other("link down"))
            } else {
                Ok(())
            }
        });
        assert!(r.is_err());
        assert_eq!(seen, 2);
    }

    #[test]
    fn partial_checksum_completes_to_the_full_checksum() {
        // What the kernel does with NEEDS_CSUM: sum from csum_start with
        // the partial value in the field, invert, store.
        let payload = pattern(777);
        let packet = super_segment(&payload, false, false);
        let seg = TcpSuperSegment::parse(&packet).unwrap();
        let mut tcp = packet[20..].to_vec();
        tcp[16..18].copy_from_slice(&seg.partial_checksum().to_be_bytes());
        let completed = checksum::checksum(&tcp);
        let ip = Ipv4HeaderSlice::from_slice(&packet).unwrap();
        let th = TcpHeaderSlice::from_slice(&tcp).unwrap();
        assert_eq!(completed, th.calc_checksum_ipv4(&ip, &payload).unwrap());
    }

    #[test]
    fn v6_splits_64k_payload_length_into_full_segments_and_a_tail() {
        // The largest IPv6 payload without a jumbogram: 65535 bytes after
        // the fixed header, so the packet is 65575 bytes long.
        let payload = pattern(65535 - 32);
        let packet = super_segment_v6(&payload, true, true);
        assert_eq!(packet.len(), 40 + 65535);
        let segs = split(&packet, 1428).unwrap();
        assert_eq!(segs.len(), payload.len().div_ceil(1428));
        assert!(segs[..segs.len() - 1].iter().all(|s| s.len() == 1500));
        assert_eq!(check_segments(&segs, 1428, true, true), payload);
    }

    #[test]
    fn v6_small_exact_and_empty_payloads() {
        let payload = pattern(100);
        let segs = split(&super_segment_v6(&payload, false, false), 1428).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(check_segments(&segs, 1428, false, false), payload);

        let payload = pattern(3 * 500);
        let segs = split(&super_segment_v6(&payload, true, false), 500).unwrap();
        assert_eq!(segs.len(), 3);
        assert!(segs.iter().all(|s| s.len() == 72 + 500));
        assert_eq!(check_segments(&segs, 500, true, false), payload);

        let segs = split(&super_segment_v6(&[], true, false), 1428).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].len(), 72);
        assert!(check_segments(&segs, 1428, true, false).is_empty());
    }

    #[test]
    fn v6_trailing_bytes_past_payload_length_are_ignored() {
        let payload = pattern(3000);
        let mut packet = super_segment_v6(&payload, false, false);
        packet.extend_from_slice(&[0xee; 7]);
        let seg = TcpSuperSegment::parse(&packet).unwrap();
        assert_eq!(seg.packet().len(), packet.len() - 7);
        let segs = split(&packet, 1000).unwrap();
        assert_eq!(check_segments(&segs, 1000, false, false), payload);
    }

    #[test]
    fn v6_view_reports_its_family_addresses_and_lengths() {
        let packet = super_segment_v6(&pattern(10), false, false);
        let seg = TcpSuperSegment::parse(&packet).unwrap();
        assert_eq!(seg.version(), IpVersion::V6);
        assert_eq!(seg.src(), IpAddr::V6(Ipv6Addr::from(SRC6)));
        assert_eq!(seg.dst(), IpAddr::V6(Ipv6Addr::from(DST6)));
        assert_eq!(seg.ip_header_len(), 40);
        assert_eq!(seg.headers_len(), 72);
        assert_eq!(seg.payload(), &pattern(10)[..]);
        assert_eq!(seg.tcp_flags() & PSH, PSH);
        let packet = super_segment(&pattern(10), false, false);
        let seg = TcpSuperSegment::parse(&packet).unwrap();
        assert_eq!(seg.version(), IpVersion::V4);
        assert_eq!(seg.src(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(seg.dst(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn v6_malformed_input_is_an_error_not_a_panic() {
        let good = super_segment_v6(&pattern(2000), false, false);
        assert!(split(&good, 100).is_ok());
        assert_eq!(split(&good, 0), Err(GsoError::ZeroMss));
        assert_eq!(split(&good[..39], 100), Err(GsoError::NotIp));
        assert_eq!(split(&good[..40], 100), Err(GsoError::BadIpLength));
        assert_eq!(
            split(&good[..good.len() - 1], 100),
            Err(GsoError::BadIpLength)
        );
        // Next Header: a Fragment header, other extension headers, UDP.
        let with_next = |next: u8| {
            let mut p = good.clone();
            p[6] = next;
            split(&p, 100)
        };
        assert_eq!(with_next(44), Err(GsoError::Fragment));
        for ext in [0, 43, 50, 51, 60, 135, 139, 140, 253, 254] {
            assert_eq!(
                with_next(ext),
                Err(GsoError::Ipv6ExtensionHeaders),
                "next header {ext}"
            );
        }
        assert_eq!(with_next(17), Err(GsoError::NotTcp));
        assert_eq!(with_next(59), Err(GsoError::NotTcp)); // No Next Header
                                                          // A zero payload length (a jumbogram's) leaves no room for TCP.
        let mut jumbo = good.clone();
        jumbo[4..6].fill(0);
        assert_eq!(split(&jumbo, 100), Err(GsoError::BadTcpLength));
        let mut big_doff = good.clone();
        big_doff[40 + 12] = 0xf0; // 60 bytes: fits
        assert!(split(&big_doff, 100).is_ok());
        big_doff[40 + 12] = 0x40; // 16 bytes: too small
        assert_eq!(split(&big_doff, 100), Err(GsoError::BadTcpLength));
        let mut short_tcp = good[..60].to_vec();
        short_tcp[4..6].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(split(&short_tcp, 100), Err(GsoError::BadTcpLength));
    }

    #[test]
    fn v6_partial_checksum_completes_to_the_full_checksum() {
        let payload = pattern(777);
        let packet = super_segment_v6(&payload, false, false);
        let seg = TcpSuperSegment::parse(&packet).unwrap();
        let mut tcp = packet[40..].to_vec();
        tcp[16..18].copy_from_slice(&seg.partial_checksum().to_be_bytes());
        let completed = checksum::checksum(&tcp);
        let ip = Ipv6HeaderSlice::from_slice(&packet).unwrap();
        let th = TcpHeaderSlice::from_slice(&tcp).unwrap();
        assert_eq!(completed, th.calc_checksum_ipv6(&ip, &payload).unwrap());
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), mss: u16) {
            let _ = split(&bytes, mss);
            if let Ok(seg) = TcpSuperSegment::parse(&bytes) {
                let _ = seg.partial_checksum();
                prop_assert!(seg.headers_len() <= seg.packet().len());
            }
        }

        #[test]
        fn corrupted_headers_never_panic(
            payload_len in 0usize..3000,
            at in 0usize..60,
            byte: u8,
            mss in 0u16..2000,
        ) {
            let mut packet = super_segment(&pattern(payload_len), false, false);
            if let Some(b) = packet.get_mut(at) {
                *b = byte;
            }
            let _ = split(&packet, mss);
        }

        #[test]
        fn any_v6_bytes_never_panic(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
            mss: u16,
        ) {
            // Force version 6 (and sometimes Next Header TCP and a
            // payload length that fits) so the IPv6 path is explored.
            if let Some(b) = bytes.first_mut() {
                *b = 0x60 | (*b & 0x0f);
            }
            if bytes.len() >= 40 && bytes[7] & 1 == 0 {
                bytes[6] = PROTO_TCP;
                let len = ((bytes.len() - 40) as u16).saturating_sub(u16::from(bytes[7] & 0x0e));
                bytes[4..6].copy_from_slice(&len.to_be_bytes());
            }
            let _ = split(&bytes, mss);
            if let Ok(seg) = TcpSuperSegment::parse(&bytes) {
                let _ = seg.partial_checksum();
                prop_assert_eq!(seg.version(), IpVersion::V6);
                prop_assert!(seg.headers_len() <= seg.packet().len());
            }
        }

        #[test]
        fn v6_corrupted_headers_never_panic(
            payload_len in 0usize..3000,
            at in 0usize..80,
            byte: u8,
            mss in 0u16..2000,
        ) {
            let mut packet = super_segment_v6(&pattern(payload_len), false, false);
            if let Some(b) = packet.get_mut(at) {
                *b = byte;
            }
            let _ = split(&packet, mss);
        }

        #[test]
        fn v6_split_then_reassemble(
            payload_len in 0usize..6000,
            mss in 1u16..2000,
            fin: bool,
            cwr: bool,
        ) {
            let payload = pattern(payload_len);
            let segs = split(&super_segment_v6(&payload, fin, cwr), mss).unwrap();
            prop_assert_eq!(segs.len(), payload_len.div_ceil(usize::from(mss)).max(1));
            prop_assert_eq!(check_segments(&segs, mss, fin, cwr), payload);
        }

        #[test]
        fn split_then_reassemble(payload_len in 0usize..6000, mss in 1u16..2000, fin: bool, cwr: bool) {
            let payload = pattern(payload_len);
            let segs = split(&super_segment(&payload, fin, cwr), mss).unwrap();
            prop_assert_eq!(segs.len(), payload_len.div_ceil(usize::from(mss)).max(1));
            prop_assert_eq!(check_segments(&segs, mss, fin, cwr), payload);
        }
    }
}
