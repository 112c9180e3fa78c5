//! Software segmentation of TCP super-segments: what a NIC with TCP
//! segmentation offload (TSO) does in hardware, for devices without it.
//!
//! A super-segment is one IPv4 packet carrying one TCP segment whose
//! payload is larger than the MSS. [`segment`] splits it into packets of
//! at most `mss` payload bytes, exactly as if the sender had built them
//! one by one: each has its own IPv4 total length, identification (the
//! first's plus its index) and header checksum, a sequence number advanced
//! by the payload before it, and a full TCP checksum. Of the flags, FIN
//! and PSH go only on the last segment (they apply to the end of the
//! data) and CWR only on the first (RFC 3168 §6.1.2: set on one packet per
//! window reduction); the rest are copied, as are IP and TCP options.
//!
//! The input's own checksums are ignored, so a caller that hands
//! super-segments to [`super::Device::send_tso`] need not compute them.
//! Nothing here panics on any input: malformed packets are a
//! [`GsoError`].

use std::fmt;
use std::io;
use std::net::Ipv4Addr;

use crate::wire::checksum;

/// IPv4 protocol number of TCP.
const PROTO_TCP: u8 = 0x06;
/// Minimum IPv4 and TCP header lengths.
const IPV4_MIN: usize = 20;
const TCP_MIN: usize = 20;

/// TCP flag bits in byte 13 of the header (RFC 9293 §3.1, RFC 3168 §6.1).
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const CWR: u8 = 0x80;

/// Why a packet cannot be segmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoError {
    /// A segment size of zero.
    ZeroMss,
    /// Too short for an IPv4 header, or not version 4.
    NotIpv4,
    /// The IPv4 header length or total length does not fit the packet.
    BadIpLength,
    /// A fragment: only whole packets can be segmented.
    Fragment,
    /// The IPv4 payload is not TCP.
    NotTcp,
    /// The TCP header length does not fit the packet.
    BadTcpLength,
}

impl fmt::Display for GsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GsoError::ZeroMss => "segment size is zero",
            GsoError::NotIpv4 => "not an IPv4 packet",
            GsoError::BadIpLength => "IPv4 header or total length does not fit the packet",
            GsoError::Fragment => "an IPv4 fragment cannot be segmented",
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

/// A checked view of an IPv4 + TCP packet: the header lengths are known
/// to fit, so the accessors index without panicking.
#[derive(Clone, Copy, Debug)]
pub struct TcpSuperSegment<'a> {
    /// The packet up to its IPv4 total length.
    packet: &'a [u8],
    ip_len: usize,
    tcp_len: usize,
}

impl<'a> TcpSuperSegment<'a> {
    /// Checks that `packet` is an unfragmented IPv4 packet carrying TCP
    /// with consistent lengths. Bytes past the IPv4 total length are
    /// ignored; checksums are not checked.
    ///
    /// # Errors
    ///
    /// The first [`GsoError`] found.
    pub fn parse(packet: &'a [u8]) -> Result<Self, GsoError> {
        let (Some(&ver_ihl), Some(len_bytes)) = (packet.first(), packet.get(2..4)) else {
            return Err(GsoError::NotIpv4);
        };
        if ver_ihl >> 4 != 4 || packet.len() < IPV4_MIN {
            return Err(GsoError::NotIpv4);
        }
        let ip_len = usize::from(ver_ihl & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if ip_len < IPV4_MIN || total < ip_len || total > packet.len() {
            return Err(GsoError::BadIpLength);
        }
        let packet = &packet[..total];
        // Flags and fragment offset: MF set or a non-zero offset.
        if u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0 {
            return Err(GsoError::Fragment);
        }
        if packet[9] != PROTO_TCP {
            return Err(GsoError::NotTcp);
        }
        let data_offset = packet.get(ip_len + 12).ok_or(GsoError::BadTcpLength)?;
        let tcp_len = usize::from(data_offset >> 4) * 4;
        if tcp_len < TCP_MIN || ip_len + tcp_len > total {
            return Err(GsoError::BadTcpLength);
        }
        Ok(TcpSuperSegment {
            packet,
            ip_len,
            tcp_len,
        })
    }

    /// The IPv4 header length.
    pub fn ip_header_len(&self) -> usize {
        self.ip_len
    }

    /// IPv4 plus TCP header length: where the payload starts (the
    /// virtio-net header's `hdr_len`).
    pub fn headers_len(&self) -> usize {
        self.ip_len + self.tcp_len
    }

    /// The packet up to its IPv4 total length.
    pub fn packet(&self) -> &'a [u8] {
        self.packet
    }

    /// The TCP payload.
    pub fn payload(&self) -> &'a [u8] {
        &self.packet[self.headers_len()..]
    }

    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(
            self.packet[12],
            self.packet[13],
            self.packet[14],
            self.packet[15],
        )
    }

    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(
            self.packet[16],
            self.packet[17],
            self.packet[18],
            self.packet[19],
        )
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
    /// pseudo-header over the whole TCP length. The kernel adds the sum of
    /// the TCP header and payload to it and inverts (and when it segments,
    /// adjusts it for each segment's length).
    pub fn partial_checksum(&self) -> u16 {
        let tcp_total = (self.packet.len() - self.ip_len) as u32;
        !checksum::finish(checksum::pseudo_header(
            self.src(),
            self.dst(),
            PROTO_TCP,
            tcp_total,
        ))
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
/// unfragmented IPv4 + TCP packet or `mss` is zero, before anything is
/// emitted; else the first error `emit` returns.
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
    let id = u16::from_be_bytes([headers[4], headers[5]]);
    let seq = u32::from_be_bytes([
        headers[ip_len + 4],
        headers[ip_len + 5],
        headers[ip_len + 6],
        headers[ip_len + 7],
    ]);
    let flags = seg.tcp_flags();
    let (src, dst) = (seg.src(), seg.dst());

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

        // IPv4: this packet's length and identification, then the checksum.
        // invariant: total <= the input's total length, which fit 16 bits.
        buf[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        buf[4..6].copy_from_slice(&id.wrapping_add(i as u16).to_be_bytes());
        fill_ipv4_checksum(&mut buf[..ip_len]);

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
        let sum = checksum::combine(&[
            checksum::pseudo_header(src, dst, PROTO_TCP, tcp.len() as u32),
            checksum::sum(tcp),
        ]);
        tcp[16..18].copy_from_slice(&checksum::finish(sum).to_be_bytes());
        emit(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Ipv4HeaderSlice, PacketBuilder, TcpHeaderSlice};
    use proptest::prelude::*;

    const SEQ: u32 = 0xffff_f000; // wraps within the first 4 KiB

    /// A super-segment from 10.0.0.2:80 to 10.0.0.1:40000 with timestamps
    /// (a 32-byte TCP header, as the stack sends), the given flags and
    /// payload. Its checksums are deliberately left wrong.
    fn super_segment(payload: &[u8], fin: bool, cwr: bool) -> Vec<u8> {
        let mut b = PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
            .tcp(80, 40000, SEQ, 1024)
            .ack(7)
            .psh()
            .options(&[
                etherparse::TcpOptionElement::Noop,
                etherparse::TcpOptionElement::Noop,
                etherparse::TcpOptionElement::Timestamp(1, 2),
            ])
            .expect("options fit");
        if fin {
            b = b.fin();
        }
        if cwr {
            b = b.cwr();
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).expect("fits");
        out[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        // Break both checksums: segment must not rely on them.
        out[10] ^= 0xff;
        let tcp_check = 20 + 16;
        out[tcp_check] ^= 0xff;
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
    /// field and both checksums, and returns the reassembled payload.
    fn check_segments(segs: &[Vec<u8>], mss: u16, fin: bool, cwr: bool) -> Vec<u8> {
        let mut data = Vec::new();
        let last = segs.len() - 1;
        for (i, seg) in segs.iter().enumerate() {
            let ip = Ipv4HeaderSlice::from_slice(seg).unwrap();
            assert_eq!(usize::from(ip.total_len()), seg.len());
            assert_eq!(ip.identification(), 0x1234u16.wrapping_add(i as u16));
            assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
            let tcp = TcpHeaderSlice::from_slice(&seg[20..]).unwrap();
            let payload = &seg[20 + tcp.slice().len()..];
            assert!(payload.len() <= usize::from(mss));
            assert_eq!(tcp.sequence_number(), SEQ.wrapping_add(data.len() as u32));
            assert_eq!(tcp.acknowledgment_number(), 7);
            assert_eq!(
                tcp.checksum(),
                tcp.calc_checksum_ipv4(&ip, payload).unwrap(),
                "segment {i}"
            );
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
        assert_eq!(split(&[], 100), Err(GsoError::NotIpv4));
        assert_eq!(split(&good[..19], 100), Err(GsoError::NotIpv4));
        let mut v6 = good.clone();
        v6[0] = 0x65;
        assert_eq!(split(&v6, 100), Err(GsoError::NotIpv4));
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
        fn split_then_reassemble(payload_len in 0usize..6000, mss in 1u16..2000, fin: bool, cwr: bool) {
            let payload = pattern(payload_len);
            let segs = split(&super_segment(&payload, fin, cwr), mss).unwrap();
            prop_assert_eq!(segs.len(), payload_len.div_ceil(usize::from(mss)).max(1));
            prop_assert_eq!(check_segments(&segs, mss, fin, cwr), payload);
        }
    }
}
