//! The IPv4 header (RFC 791 §3.1, RFC 1122 §3.2.1).
//!
//! [`Ipv4Repr`] is a validated header: `parse` checks an arriving packet and
//! hands back its payload; `emit` writes the plain 20-byte header we send.
//!
//! # Fragments
//!
//! [`Ipv4Repr::parse`] rejects a fragment (More Fragments set or a
//! non-zero offset) with [`Error::Fragmented`];
//! [`Ipv4Repr::parse_fragment`] accepts it and returns its [`Ipv4Frag`],
//! for the runtime to hand to `crate::reassembly`, and
//! [`finish_reassembled`] turns the first fragment's header in front of a
//! reassembled payload into the header of a whole datagram.
//! [`Ipv4Repr::emit`] writes an unfragmented packet with Don't Fragment
//! set; [`Ipv4Repr::emit_fragment`] one fragment of a larger datagram.

use std::net::Ipv4Addr;

use etherparse::Ipv4HeaderSlice;

use super::checksum;
use super::Error;

/// IP protocol number of ICMP.
pub const PROTOCOL_ICMP: u8 = 0x01;
/// A header without options; the only kind we emit.
pub const HEADER_LEN: usize = 20;
/// Our default Time To Live for packets we originate (RFC 1700's
/// recommendation, and what Linux uses).
pub const DEFAULT_TTL: u8 = 64;
/// The largest datagram the 16-bit total length field can describe.
pub const MAX_PACKET_LEN: usize = 0xffff;

/// Flags and fragment offset (bytes 6..8): Don't Fragment.
const FLAG_DF: u16 = 0x4000;
/// Flags and fragment offset: More Fragments.
const FLAG_MF: u16 = 0x2000;
/// Flags and fragment offset: the offset, in units of 8 bytes.
const OFFSET_MASK: u16 = 0x1fff;

/// What makes a packet a fragment (RFC 791 §3.2): which datagram it is
/// part of (with the addresses and protocol of its [`Ipv4Repr`]), and
/// where its payload goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Frag {
    /// Identification.
    pub id: u16,
    /// The payload's offset in the datagram, in bytes (a multiple of 8).
    pub offset: usize,
    /// More Fragments: not the last one.
    pub more: bool,
    /// The header's length, options included: `packet[..header_len]` is
    /// the header a first fragment gives the reassembled datagram.
    pub header_len: usize,
}

/// A validated IPv4 header, without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    /// Bytes after the header, as the total length field says.
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Validates an arriving packet and returns its header and payload.
    ///
    /// Checks, in order: the version and IHL, that the header fits the
    /// buffer, that the total length lies within `[IHL * 4, packet.len()]`
    /// (bytes past the total length are link padding and are ignored,
    /// RFC 1122 §3.2.1.1 notwithstanding), the header checksum, that the
    /// packet is not a fragment, and that the source address is one a host
    /// may use (RFC 1122 §3.2.1.3: not broadcast, multicast or 0.0.0.0).
    /// Options are skipped (RFC 1122 §3.2.1.8 lets a host ignore those it
    /// does not implement).
    ///
    /// # Errors
    ///
    /// `Truncated` when the buffer is shorter than the header or than the
    /// total length; `BadVersion`; `BadLength` for IHL < 5 or a total
    /// length below the header length; `BadChecksum`; `Fragmented` (see
    /// [`Ipv4Repr::parse_fragment`]); `BadAddress`.
    pub fn parse(packet: &[u8]) -> Result<(Ipv4Repr, &[u8]), Error> {
        match Ipv4Repr::parse_fragment(packet)? {
            (repr, None, payload) => Ok((repr, payload)),
            (_, Some(_), _) => Err(Error::Fragmented),
        }
    }

    /// As [`Ipv4Repr::parse`], but a fragment is accepted: its
    /// [`Ipv4Frag`] comes back with it, and the payload is the fragment's.
    ///
    /// # Errors
    ///
    /// As [`Ipv4Repr::parse`], except `Fragmented`.
    pub fn parse_fragment(packet: &[u8]) -> Result<(Ipv4Repr, Option<Ipv4Frag>, &[u8]), Error> {
        use etherparse::err::ipv4::{HeaderError, HeaderSliceError};
        let header = Ipv4HeaderSlice::from_slice(packet).map_err(|e| match e {
            HeaderSliceError::Len(_) => Error::Truncated,
            HeaderSliceError::Content(HeaderError::UnexpectedVersion { .. }) => Error::BadVersion,
            HeaderSliceError::Content(HeaderError::HeaderLengthSmallerThanHeader { .. }) => {
                Error::BadLength
            }
        })?;
        let header_len = header.slice().len();
        let total_len = usize::from(header.total_len());
        if total_len < header_len {
            return Err(Error::BadLength);
        }
        let payload = packet.get(header_len..total_len).ok_or(Error::Truncated)?;
        // RFC 1122 §3.2.1.2: a host MUST verify the header checksum and
        // silently discard a datagram whose checksum is wrong.
        if checksum::checksum(header.slice()) != 0 {
            return Err(Error::BadChecksum);
        }
        let frag =
            (header.more_fragments() || header.fragments_offset().value() != 0).then(|| Ipv4Frag {
                id: header.identification(),
                offset: usize::from(header.fragments_offset().value()) * 8,
                more: header.more_fragments(),
                header_len,
            });
        let src = header.source_addr();
        // RFC 1122 §3.2.1.3: a source address of 0, a broadcast or a
        // multicast address MUST be discarded, and a loopback address
        // (127/8) "MUST NOT appear outside a host".
        if src.is_unspecified() || src.is_broadcast() || src.is_multicast() || src.is_loopback() {
            return Err(Error::BadAddress);
        }
        let repr = Ipv4Repr {
            src,
            dst: header.destination_addr(),
            protocol: header.protocol().0,
            ttl: header.ttl(),
            payload_len: payload.len(),
        };
        Ok((repr, frag, payload))
    }

    /// Header plus payload: the total length as emitted.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header into `buf[..20]`: no options, Don't Fragment
    /// set, identification 0 (RFC 6864 §4.1: the ID field is meaningless
    /// on an atomic datagram), TOS 0, and the header checksum filled in.
    /// The payload is the caller's to write after it. Returns 20.
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` when `buf` is shorter than 20 bytes; `BadLength`
    /// when `payload_len` does not fit the 16-bit total length field.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.emit_with(buf, 0, FLAG_DF)
    }

    /// Writes the 20-byte header of one fragment of a datagram
    /// (RFC 791 §3.2): `payload_len` is this fragment's payload,
    /// `offset` its place in the datagram in bytes (a multiple of 8),
    /// `more` the More Fragments flag; Don't Fragment is clear and the
    /// identification is `id`, the same for every fragment of the
    /// datagram. Returns 20.
    ///
    /// # Errors
    ///
    /// As [`Ipv4Repr::emit`]; `BadLength` also when `offset` is not a
    /// multiple of 8 or beyond what the 13-bit field holds.
    pub fn emit_fragment(
        &self,
        buf: &mut [u8],
        id: u16,
        offset: usize,
        more: bool,
    ) -> Result<usize, Error> {
        if !offset.is_multiple_of(8) {
            return Err(Error::BadLength);
        }
        let units = u16::try_from(offset / 8)
            .ok()
            .filter(|u| *u <= OFFSET_MASK)
            .ok_or(Error::BadLength)?;
        let flags = if more { FLAG_MF } else { 0 };
        self.emit_with(buf, id, flags | units)
    }

    fn emit_with(&self, buf: &mut [u8], id: u16, flags_offset: u16) -> Result<usize, Error> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(Error::BufferTooSmall)?;
        let total_len = u16::try_from(self.buffer_len()).map_err(|_| Error::BadLength)?;
        header[0] = 0x45; // version 4, IHL 5
        header[1] = 0x00; // DSCP 0, ECN not-ECT
        header[2..4].copy_from_slice(&total_len.to_be_bytes());
        header[4..6].copy_from_slice(&id.to_be_bytes());
        header[6..8].copy_from_slice(&flags_offset.to_be_bytes());
        header[8] = self.ttl;
        header[9] = self.protocol;
        header[10..12].copy_from_slice(&[0, 0]);
        header[12..16].copy_from_slice(&self.src.octets());
        header[16..20].copy_from_slice(&self.dst.octets());
        let sum = checksum::checksum(header);
        header[10..12].copy_from_slice(&sum.to_be_bytes());
        Ok(HEADER_LEN)
    }
}

/// Turns `packet`, the first fragment's header (`header_len` bytes, as
/// it arrived) followed by a whole reassembled payload, into a datagram
/// as if it had never been fragmented: the total length covers it all,
/// the fragment offset and More Fragments are cleared, the header
/// checksum is recomputed. Identification and options are kept.
///
/// # Errors
///
/// `BadLength` when the datagram is longer than 65,535 bytes or
/// `header_len` is not a header's length (20 to 60, and within `packet`).
pub fn finish_reassembled(packet: &mut [u8], header_len: usize) -> Result<(), Error> {
    if !(HEADER_LEN..=60).contains(&header_len) || !header_len.is_multiple_of(4) {
        return Err(Error::BadLength);
    }
    let total_len = u16::try_from(packet.len()).map_err(|_| Error::BadLength)?;
    let header = packet.get_mut(..header_len).ok_or(Error::BadLength)?;
    header[2..4].copy_from_slice(&total_len.to_be_bytes());
    let flags = u16::from_be_bytes([header[6], header[7]]) & FLAG_DF;
    header[6..8].copy_from_slice(&flags.to_be_bytes());
    header[10..12].copy_from_slice(&[0, 0]);
    let sum = checksum::checksum(header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A UDP datagram's IPv4 header (192.168.0.1 -> 192.168.0.199, total
    /// length 115, DF, TTL 64) whose checksum 0xb861 was computed by
    /// hand in the well-known worked example of RFC 1071 arithmetic.
    static GOLDEN_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn golden_packet() -> Vec<u8> {
        let mut p = GOLDEN_HEADER.to_vec();
        p.extend((0..95).map(|i| i as u8));
        p
    }

    /// Recomputes the header checksum after a test edits a field.
    fn fix_checksum(p: &mut [u8]) {
        let ihl = usize::from(p[0] & 0x0f) * 4;
        p[10] = 0;
        p[11] = 0;
        let c = checksum::checksum(&p[..ihl]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn parses_golden_header() {
        let p = golden_packet();
        let (repr, payload) = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(
            repr,
            Ipv4Repr {
                src: Ipv4Addr::new(192, 168, 0, 1),
                dst: Ipv4Addr::new(192, 168, 0, 199),
                protocol: 17,
                ttl: 64,
                payload_len: 95,
            }
        );
        assert_eq!(payload, &p[20..]);
    }

    #[test]
    fn emits_golden_header() {
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(192, 168, 0, 1),
            dst: Ipv4Addr::new(192, 168, 0, 199),
            protocol: 17,
            ttl: 64,
            payload_len: 95,
        };
        let mut buf = [0xaa; 20];
        assert_eq!(repr.emit(&mut buf), Ok(20));
        assert_eq!(buf, GOLDEN_HEADER);
        assert_eq!(repr.buffer_len(), 115);
        assert_eq!(repr.emit(&mut buf[..19]), Err(Error::BufferTooSmall));
        let huge = Ipv4Repr {
            payload_len: MAX_PACKET_LEN,
            ..repr
        };
        assert_eq!(huge.emit(&mut buf), Err(Error::BadLength));
    }

    #[test]
    fn ignores_link_padding_past_total_length() {
        let mut p = golden_packet();
        p.extend([0u8; 6]);
        let (repr, payload) = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(repr.payload_len, 95);
        assert_eq!(payload.len(), 95);
    }

    #[test]
    fn skips_options() {
        let mut p = GOLDEN_HEADER.to_vec();
        p[0] = 0x46; // IHL 6: one word of options
        p.extend([0x01, 0x01, 0x01, 0x00]); // NOP NOP NOP EOL
        p.extend(b"payload");
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        fix_checksum(&mut p);
        let (repr, payload) = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(payload, b"payload");
        assert_eq!(repr.payload_len, 7);
    }

    #[test]
    fn rejects_truncated() {
        let p = golden_packet();
        for len in 0..20 {
            assert_eq!(Ipv4Repr::parse(&p[..len]), Err(Error::Truncated), "{len}");
        }
        // Header fits but the total length runs past the buffer.
        assert_eq!(Ipv4Repr::parse(&p[..114]), Err(Error::Truncated));
        // IHL says 24 bytes of header, buffer has 22.
        let mut q = p.clone();
        q[0] = 0x46;
        assert_eq!(Ipv4Repr::parse(&q[..22]), Err(Error::Truncated));
    }

    #[test]
    fn rejects_bad_version_and_lengths() {
        let mut p = golden_packet();
        p[0] = 0x65;
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadVersion));
        p[0] = 0x44; // IHL 4
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadLength));
        let mut p = golden_packet();
        p[2..4].copy_from_slice(&19u16.to_be_bytes());
        fix_checksum(&mut p);
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadLength));
        // A total length equal to the header is an empty payload.
        p[2..4].copy_from_slice(&20u16.to_be_bytes());
        fix_checksum(&mut p);
        assert_eq!(Ipv4Repr::parse(&p).map(|(r, _)| r.payload_len), Ok(0));
    }

    #[test]
    fn rejects_bad_checksum() {
        let mut p = golden_packet();
        p[8] ^= 0x01; // TTL
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadChecksum));
        // The checksum covers the header only: payload damage passes here
        // and is the transport checksum's job.
        let mut p = golden_packet();
        p[50] ^= 0xff;
        assert!(Ipv4Repr::parse(&p).is_ok());
    }

    #[test]
    fn rejects_fragments() {
        // More Fragments set (first fragment).
        let mut p = golden_packet();
        p[6] = 0x20;
        fix_checksum(&mut p);
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::Fragmented));
        // Last fragment: offset 8 (in 8-byte units = 1), MF clear.
        p[6] = 0x00;
        p[7] = 0x01;
        fix_checksum(&mut p);
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::Fragmented));
    }

    #[test]
    fn parse_fragment_reads_the_fragment_fields() {
        let mut p = golden_packet();
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[6..8].copy_from_slice(&(FLAG_MF | 3).to_be_bytes());
        fix_checksum(&mut p);
        let (repr, frag, payload) = Ipv4Repr::parse_fragment(&p).unwrap();
        assert_eq!(
            frag,
            Some(Ipv4Frag {
                id: 0x1234,
                offset: 24,
                more: true,
                header_len: 20
            })
        );
        assert_eq!(repr.payload_len, 95);
        assert_eq!(payload, &p[20..]);
        // A whole packet has no fragment fields.
        let (_, frag, _) = Ipv4Repr::parse_fragment(&golden_packet()).unwrap();
        assert_eq!(frag, None);
    }

    #[test]
    fn fragments_emit_and_parse_back() {
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(10, 0, 0, 2),
            dst: Ipv4Addr::new(10, 0, 0, 1),
            protocol: 17,
            ttl: 64,
            payload_len: 1480,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit_fragment(&mut buf, 7, 2960, true), Ok(20));
        // DF clear, MF set, offset 2960 / 8 = 370.
        assert_eq!(u16::from_be_bytes([buf[6], buf[7]]), 0x2000 | 370);
        let (parsed, frag, _) = Ipv4Repr::parse_fragment(&buf).unwrap();
        assert_eq!(parsed, repr);
        assert_eq!(
            frag,
            Some(Ipv4Frag {
                id: 7,
                offset: 2960,
                more: true,
                header_len: 20
            })
        );
        assert_eq!(
            repr.emit_fragment(&mut buf, 7, 12, true),
            Err(Error::BadLength)
        );
        assert_eq!(
            repr.emit_fragment(&mut buf, 7, 8 * 0x2000, false),
            Err(Error::BadLength)
        );
    }

    #[test]
    fn finish_reassembled_makes_a_whole_datagram() {
        let mut first = golden_packet();
        first[4..6].copy_from_slice(&0x0101u16.to_be_bytes());
        first[6..8].copy_from_slice(&FLAG_MF.to_be_bytes());
        fix_checksum(&mut first);
        let mut whole = first[..20].to_vec();
        whole.extend(std::iter::repeat_n(9u8, 3000));
        finish_reassembled(&mut whole, 20).unwrap();
        let (repr, payload) = Ipv4Repr::parse(&whole).unwrap();
        assert_eq!(repr.payload_len, 3000);
        assert!(payload.iter().all(|&b| b == 9));
        assert_eq!(finish_reassembled(&mut whole, 19), Err(Error::BadLength));
        let mut huge = vec![0x45u8; 0x10000];
        assert_eq!(finish_reassembled(&mut huge, 20), Err(Error::BadLength));
    }

    #[test]
    fn rejects_sources_no_host_may_use() {
        for src in [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [224, 0, 0, 1],
            [127, 0, 0, 1],
            [127, 9, 8, 7],
        ] {
            let mut p = golden_packet();
            p[12..16].copy_from_slice(&src);
            fix_checksum(&mut p);
            assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadAddress), "{src:?}");
        }
    }

    fn host_addr() -> impl Strategy<Value = Ipv4Addr> {
        any::<u32>()
            .prop_map(Ipv4Addr::from)
            .prop_filter("a host source", |a| {
                !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
            })
    }

    proptest! {
        #[test]
        fn emit_then_parse_round_trips(
            src in host_addr(),
            dst in any::<u32>().prop_map(Ipv4Addr::from),
            protocol in any::<u8>(),
            ttl in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..1500),
        ) {
            let repr = Ipv4Repr { src, dst, protocol, ttl, payload_len: payload.len() };
            let mut buf = vec![0u8; repr.buffer_len()];
            prop_assert_eq!(repr.emit(&mut buf), Ok(HEADER_LEN));
            buf[HEADER_LEN..].copy_from_slice(&payload);
            let (parsed, body) = Ipv4Repr::parse(&buf).unwrap();
            prop_assert_eq!(parsed, repr);
            prop_assert_eq!(body, &payload[..]);
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok((repr, payload)) = Ipv4Repr::parse(&data) {
                prop_assert_eq!(repr.payload_len, payload.len());
                prop_assert!(payload.len() + HEADER_LEN <= data.len());
            }
        }
    }
}
