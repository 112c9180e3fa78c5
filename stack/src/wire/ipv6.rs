//! The IPv6 header and its extension headers (RFC 8200).
//!
//! [`Ipv6Repr::parse`] validates the fixed header, then walks the chain of
//! extension headers as RFC 8200 §4 tells a host to: hop-by-hop options
//! only first (§4.3), destination options and hop-by-hop options by the
//! action bits of each unknown option (§4.2), a routing header ignored
//! when no segments are left and refused otherwise (§4.4: a host
//! implements no routing type), a fragment header handed to reassembly
//! (§4.5). What it hands back is the upper-layer protocol with its
//! payload, or a fragment, or nothing (No Next Header).
//!
//! Where RFC 8200 says "discard the packet and send an ICMP Parameter
//! Problem", the error carries that message's code and pointer
//! ([`Ipv6Error::Problem`]); the runtime answers (rate-limited) and
//! counts. Every other rejection is a plain [`Error`] to drop and count.
//!
//! A TUN device is a layer-3 link, so there is no Neighbor Discovery and
//! no link-layer address to resolve: a packet is written as it is.

use std::net::Ipv6Addr;

use super::Error;

/// The fixed header; we emit no extension headers but the fragment header.
pub const HEADER_LEN: usize = 40;
/// The fragment header's length (RFC 8200 §4.5).
pub const FRAGMENT_HEADER_LEN: usize = 8;
/// The largest payload an IPv6 packet carries without a jumbogram: the
/// Payload Length field has 16 bits (RFC 8200 §3).
pub const MAX_PAYLOAD_LEN: usize = 0xffff;
/// Every IPv6 link carries packets of this size (RFC 8200 §5).
pub const MIN_MTU: usize = 1280;
/// Our hop limit for packets we originate (Linux's default).
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// Next Header values of the extension headers we walk, and ICMPv6.
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ICMPV6: u8 = 58;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DEST_OPTIONS: u8 = 60;
}

/// ICMPv6 Parameter Problem codes (RFC 4443 §3.4, RFC 7112 §5).
pub mod problem_code {
    /// Erroneous header field encountered.
    pub const HEADER_FIELD: u8 = 0;
    /// Unrecognized Next Header type encountered.
    pub const NEXT_HEADER: u8 = 1;
    /// Unrecognized IPv6 option encountered.
    pub const OPTION: u8 = 2;
    /// The first fragment lacks the upper-layer header.
    pub const INCOMPLETE_CHAIN: u8 = 3;
}

/// A validated IPv6 header, with the outcome of its extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// The upper-layer protocol (TCP 6, UDP 17, ICMPv6 58, ...): the Next
    /// Header that follows the last extension header. For a fragment, the
    /// protocol the reassembled packet carries.
    pub next_header: u8,
    pub hop_limit: u8,
    /// Kept as received (RFC 8200 §7); emitted as the caller sets it.
    pub traffic_class: u8,
    /// 20 bits (RFC 6437).
    pub flow_label: u32,
    /// Bytes after the fixed header and any extension headers we emit
    /// (none): the upper-layer length when emitting.
    pub payload_len: usize,
}

/// A fragment header's fields (RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    pub id: u32,
    /// Where this fragment's data starts in the reassembled payload, in
    /// bytes (a multiple of 8).
    pub offset: usize,
    /// More Fragments.
    pub more: bool,
}

/// What a packet carries once its extension headers are processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Payload<'a> {
    /// The upper-layer payload of protocol `Ipv6Repr::next_header`.
    Upper(&'a [u8]),
    /// A fragment: the bytes after its fragment header, to reassemble
    /// under (src, dst, id). Once reassembled, the payload starts with the
    /// header `Ipv6Repr::next_header` names (walk it with
    /// [`walk_after_reassembly`]).
    Fragment { info: FragmentInfo, data: &'a [u8] },
    /// No Next Header (59): nothing follows (RFC 8200 §4.7).
    Nothing,
}

/// Why a packet was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Error {
    /// Drop it silently and count it.
    Drop(Error),
    /// Drop it, count `error`, and answer the source with an ICMPv6
    /// Parameter Problem of `code` whose pointer is `pointer`: the offset
    /// in the packet of the offending byte (RFC 4443 §3.4).
    Problem {
        error: Error,
        code: u8,
        pointer: u32,
    },
}

impl From<Error> for Ipv6Error {
    fn from(e: Error) -> Ipv6Error {
        Ipv6Error::Drop(e)
    }
}

impl Ipv6Error {
    /// The drop reason to count.
    pub fn error(self) -> Error {
        match self {
            Ipv6Error::Drop(e) | Ipv6Error::Problem { error: e, .. } => e,
        }
    }
}

impl Ipv6Repr {
    /// Validates an arriving packet and walks its extension headers.
    ///
    /// Checks the version, that the payload length fits the buffer (bytes
    /// past it are link padding and ignored), and that the source is an
    /// address a host may send from: not multicast (RFC 4291 §2.7), not
    /// loopback (RFC 4291 §2.5.3: never sent on a link), not unspecified
    /// (only Neighbor Discovery's duplicate address detection uses it,
    /// and a TUN link has none).
    ///
    /// # Errors
    ///
    /// `Drop(Truncated)`, `Drop(BadVersion)`, `Drop(BadAddress)`, and
    /// whatever the extension headers call for (see the module docs).
    pub fn parse(packet: &[u8]) -> Result<(Ipv6Repr, Ipv6Payload<'_>), Ipv6Error> {
        let header = packet.get(..HEADER_LEN).ok_or(Error::Truncated)?;
        if header[0] >> 4 != 6 {
            return Err(Error::BadVersion.into());
        }
        let traffic_class = (header[0] << 4) | (header[1] >> 4);
        let flow_label = u32::from_be_bytes([0, header[1] & 0x0f, header[2], header[3]]);
        let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
        let first = header[6];
        let hop_limit = header[7];
        let src = addr(&header[8..24]);
        let dst = addr(&header[24..40]);
        if src.is_multicast() || src.is_loopback() || src.is_unspecified() {
            return Err(Error::BadAddress.into());
        }
        let payload = packet
            .get(HEADER_LEN..HEADER_LEN + payload_len)
            .ok_or(Error::Truncated)?;
        let chain = Chain {
            dst_multicast: dst.is_multicast(),
            fragment_allowed: true,
        };
        let (next_header, carried) = chain.walk(first, payload, 6, HEADER_LEN)?;
        let repr = Ipv6Repr {
            src,
            dst,
            next_header,
            hop_limit,
            traffic_class,
            flow_label,
            payload_len: match carried {
                Ipv6Payload::Upper(p) => p.len(),
                Ipv6Payload::Fragment { data, .. } => data.len(),
                Ipv6Payload::Nothing => 0,
            },
        };
        Ok((repr, carried))
    }

    /// Header plus payload: the packet's length as emitted.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the 40-byte fixed header into `buf[..40]` with Next Header
    /// `next_header` and returns 40. The payload is the caller's to write
    /// after it.
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` when `buf` is shorter than 40 bytes; `BadLength`
    /// when `payload_len` does not fit the 16-bit payload length field.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(Error::BufferTooSmall)?;
        let len = u16::try_from(self.payload_len).map_err(|_| Error::BadLength)?;
        let flow = self.flow_label & 0x000f_ffff;
        header[0] = 0x60 | (self.traffic_class >> 4);
        header[1] = (self.traffic_class << 4) | (flow >> 16) as u8;
        header[2..4].copy_from_slice(&(flow as u16).to_be_bytes());
        header[4..6].copy_from_slice(&len.to_be_bytes());
        header[6] = self.next_header;
        header[7] = self.hop_limit;
        header[8..24].copy_from_slice(&self.src.octets());
        header[24..40].copy_from_slice(&self.dst.octets());
        Ok(HEADER_LEN)
    }
}

/// Writes a fragment header (RFC 8200 §4.5) into `buf[..8]`: `next` is the
/// protocol of the fragmented payload. Returns 8.
///
/// # Errors
///
/// `BufferTooSmall`; `BadLength` when `info.offset` is not a multiple of 8
/// or does not fit 13 bits of 8-byte units.
pub fn emit_fragment_header(next: u8, info: FragmentInfo, buf: &mut [u8]) -> Result<usize, Error> {
    let header = buf
        .get_mut(..FRAGMENT_HEADER_LEN)
        .ok_or(Error::BufferTooSmall)?;
    if !info.offset.is_multiple_of(8) || info.offset / 8 > 0x1fff {
        return Err(Error::BadLength);
    }
    let field = ((info.offset / 8) as u16) << 3 | u16::from(info.more);
    header[0] = next;
    header[1] = 0;
    header[2..4].copy_from_slice(&field.to_be_bytes());
    header[4..8].copy_from_slice(&info.id.to_be_bytes());
    Ok(FRAGMENT_HEADER_LEN)
}

/// Walks the headers of a reassembled payload, which starts with the
/// header `next` names (the fragment header's Next Header). A second
/// fragment header inside it is refused.
///
/// # Errors
///
/// As [`Ipv6Repr::parse`]; the Parameter Problem pointer is then an
/// offset into the reassembled payload, past the fixed header.
pub fn walk_after_reassembly(
    next: u8,
    payload: &[u8],
    dst_multicast: bool,
) -> Result<(u8, &[u8]), Ipv6Error> {
    let chain = Chain {
        dst_multicast,
        fragment_allowed: false,
    };
    match chain.walk(next, payload, 6, HEADER_LEN)? {
        (upper, Ipv6Payload::Upper(p)) => Ok((upper, p)),
        (upper, _) => Ok((upper, &[])),
    }
}

/// The longest head a reassembled IPv6 datagram is collected under: the
/// fixed header, the fragment header, and unfragmentable extension headers
/// with a 65,535-byte payload (RFC 8200 §4.5: the payload length field
/// bounds the reassembled packet). What `crate::reassembly` calls
/// `max_len` for IPv6.
pub const MAX_REASSEMBLED_LEN: usize = HEADER_LEN + FRAGMENT_HEADER_LEN + 0xffff;

/// Where [`finish_reassembled`] left a reassembled packet's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relinked {
    /// Where the fragmentable part starts: the fixed header and the
    /// unfragmentable extension headers come before.
    pub unfragmentable_len: usize,
    /// Where the Next Header field naming the fragmentable part's first
    /// header sits (6, or in the last unfragmentable extension header).
    pub next_header_at: usize,
    /// That Next Header: the fragment header's.
    pub next: u8,
}

/// Turns `packet`, the first fragment's headers up to and including its
/// fragment header (`head_len` bytes, as they arrived) followed by the
/// whole reassembled fragmentable part, into the packet RFC 8200 §4.5
/// describes: the unfragmentable part, its last Next Header now the
/// fragment header's, then the fragmentable part; the fragment header is
/// gone and the payload length covers the rest. Returns where its parts
/// are.
///
/// # Errors
///
/// `BadLength` when the reassembled payload is longer than 65,535 bytes
/// or `head_len` does not end on a fragment header after a chain of
/// extension headers.
pub fn finish_reassembled(packet: &mut Vec<u8>, head_len: usize) -> Result<Relinked, Error> {
    let frag_at = head_len
        .checked_sub(FRAGMENT_HEADER_LEN)
        .filter(|&at| at >= HEADER_LEN && head_len <= packet.len())
        .ok_or(Error::BadLength)?;
    // Find the Next Header field that names the fragment header: the
    // fixed header's, or the last extension header's before it.
    let (mut field, mut at) = (6, HEADER_LEN);
    while at < frag_at {
        let rest = packet.get(at..frag_at).ok_or(Error::BadLength)?;
        let len = ext_len(rest).map_err(|_| Error::BadLength)?;
        (field, at) = (at, at + len);
    }
    if at != frag_at || packet.get(field) != Some(&next_header::FRAGMENT) {
        return Err(Error::BadLength);
    }
    let next = packet[frag_at];
    let payload_len = packet.len() - HEADER_LEN - FRAGMENT_HEADER_LEN;
    let len = u16::try_from(payload_len).map_err(|_| Error::BadLength)?;
    packet[field] = next;
    packet.drain(frag_at..head_len);
    packet[4..6].copy_from_slice(&len.to_be_bytes());
    Ok(Relinked {
        unfragmentable_len: frag_at,
        next_header_at: field,
        next,
    })
}

/// How the extension-header walk goes for one packet.
struct Chain {
    /// The packet was sent to a multicast address: an unknown option of
    /// action 11 is then dropped without a Parameter Problem.
    dst_multicast: bool,
    /// False inside a reassembled payload.
    fragment_allowed: bool,
}

impl Chain {
    /// Walks from Next Header `next` over `bytes`, which start `base`
    /// bytes into the packet; `next_at` is where that Next Header field
    /// sits in the packet (for a Parameter Problem's pointer).
    fn walk<'a>(
        &self,
        mut next: u8,
        mut bytes: &'a [u8],
        mut next_at: usize,
        mut base: usize,
    ) -> Result<(u8, Ipv6Payload<'a>), Ipv6Error> {
        let mut first = true;
        loop {
            match next {
                next_header::HOP_BY_HOP if !first => {
                    // RFC 8200 §4.3: hop-by-hop options only right after
                    // the fixed header.
                    return Err(problem(problem_code::NEXT_HEADER, next_at));
                }
                next_header::HOP_BY_HOP | next_header::DEST_OPTIONS => {
                    let len = ext_len(bytes)?;
                    self.options(&bytes[..len], base)?;
                    next_at = base;
                    (next, bytes, base) = (bytes[0], &bytes[len..], base + len);
                }
                next_header::ROUTING => {
                    let len = ext_len(bytes)?;
                    // RFC 8200 §4.4: with segments left, a routing type
                    // we do not implement (a host implements none) is a
                    // Parameter Problem at the routing type; with none
                    // left the header is ignored.
                    if bytes.get(3).copied().unwrap_or(0) != 0 {
                        return Err(problem(problem_code::HEADER_FIELD, base + 2));
                    }
                    next_at = base;
                    (next, bytes, base) = (bytes[0], &bytes[len..], base + len);
                }
                next_header::FRAGMENT if self.fragment_allowed => {
                    return self.fragment(bytes, base);
                }
                next_header::FRAGMENT => {
                    return Err(problem(problem_code::NEXT_HEADER, next_at));
                }
                next_header::NO_NEXT_HEADER => return Ok((next, Ipv6Payload::Nothing)),
                upper => return Ok((upper, Ipv6Payload::Upper(bytes))),
            }
            first = false;
        }
    }

    /// A fragment header at the front of `bytes`, `base` bytes into the
    /// packet.
    fn fragment<'a>(
        &self,
        bytes: &'a [u8],
        base: usize,
    ) -> Result<(u8, Ipv6Payload<'a>), Ipv6Error> {
        let header = bytes.get(..FRAGMENT_HEADER_LEN).ok_or(Error::Truncated)?;
        let next = header[0];
        let field = u16::from_be_bytes([header[2], header[3]]);
        let info = FragmentInfo {
            id: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
            offset: usize::from(field >> 3) * 8,
            more: field & 1 == 1,
        };
        let data = &bytes[FRAGMENT_HEADER_LEN..];
        if info.offset == 0 && !info.more {
            // An atomic fragment (RFC 6946 §4): a whole packet, processed
            // at once and never mixed with a reassembly under its id.
            let chain = Chain {
                fragment_allowed: false,
                ..*self
            };
            return chain.walk(next, data, base, base + FRAGMENT_HEADER_LEN);
        }
        if info.more && !data.len().is_multiple_of(8) {
            // RFC 8200 §4.5: a fragment that is not the last must be a
            // multiple of 8 bytes long: point at the Payload Length.
            return Err(problem(problem_code::HEADER_FIELD, 4));
        }
        if info.offset + data.len() > usize::from(u16::MAX) {
            // RFC 8200 §4.5: it would reassemble beyond 65,535 bytes:
            // point at the Fragment Offset.
            return Err(problem(problem_code::HEADER_FIELD, base + 2));
        }
        if info.offset == 0 && !self.first_fragment_is_whole(next, data) {
            // RFC 8200 §4.5 (RFC 7112): the first fragment must hold the
            // whole header chain up to the upper-layer header.
            return Err(Ipv6Error::Problem {
                error: Error::Truncated,
                code: problem_code::INCOMPLETE_CHAIN,
                pointer: 0,
            });
        }
        Ok((next, Ipv6Payload::Fragment { info, data }))
    }

    /// Whether the chain of extension headers starting at `next` ends in
    /// `data` (the upper-layer header itself is the transport's to check).
    fn first_fragment_is_whole(&self, mut next: u8, mut data: &[u8]) -> bool {
        while matches!(
            next,
            next_header::HOP_BY_HOP | next_header::DEST_OPTIONS | next_header::ROUTING
        ) {
            let Ok(len) = ext_len(data) else {
                return false;
            };
            (next, data) = (data[0], &data[len..]);
        }
        true
    }

    /// The options of a hop-by-hop or destination options header
    /// (`header`, which starts `base` bytes into the packet), by RFC 8200
    /// §4.2.
    fn options(&self, header: &[u8], base: usize) -> Result<(), Ipv6Error> {
        let mut at = 2;
        while let Some(&kind) = header.get(at) {
            if kind == 0 {
                // Pad1.
                at += 1;
                continue;
            }
            let len = usize::from(*header.get(at + 1).ok_or(Error::BadOption)?);
            let end = at + 2 + len;
            if end > header.len() {
                return Err(Error::BadOption.into());
            }
            // PadN (1) is skipped like an unknown option of action 00;
            // we act on no option, so every other type is unknown to us
            // and its two high bits say what to do.
            if kind != 1 {
                match kind >> 6 {
                    0 => {}
                    1 => return Err(Error::BadOption.into()),
                    3 if self.dst_multicast => return Err(Error::BadOption.into()),
                    _ => {
                        return Err(Ipv6Error::Problem {
                            error: Error::BadOption,
                            code: problem_code::OPTION,
                            pointer: (base + at) as u32,
                        })
                    }
                }
            }
            at = end;
        }
        Ok(())
    }
}

/// The length in bytes of the extension header at the front of `bytes`
/// (RFC 8200 §4.3: Hdr Ext Len in 8-byte units, not counting the first 8),
/// checked to fit.
fn ext_len(bytes: &[u8]) -> Result<usize, Error> {
    let units = usize::from(*bytes.get(1).ok_or(Error::Truncated)?);
    let len = (units + 1) * 8;
    if len > bytes.len() {
        return Err(Error::Truncated);
    }
    Ok(len)
}

fn problem(code: u8, pointer: usize) -> Ipv6Error {
    let error = if code == problem_code::NEXT_HEADER {
        Error::Unsupported
    } else {
        Error::BadLength
    };
    Ipv6Error::Problem {
        error,
        code,
        pointer: pointer as u32,
    }
}

fn addr(bytes: &[u8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(bytes);
    Ipv6Addr::from(octets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
    const UDP: u8 = 17;

    fn repr(payload_len: usize) -> Ipv6Repr {
        Ipv6Repr {
            src: SRC,
            dst: DST,
            next_header: UDP,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0xabcde,
            payload_len,
        }
    }

    /// A packet whose payload is `chain` (extension headers and data),
    /// with `first` as the fixed header's Next Header.
    fn packet(first: u8, chain: &[u8]) -> Vec<u8> {
        let mut p = vec![0; HEADER_LEN + chain.len()];
        let r = Ipv6Repr {
            next_header: first,
            ..repr(chain.len())
        };
        r.emit(&mut p).unwrap();
        p[HEADER_LEN..].copy_from_slice(chain);
        p
    }

    /// The upper-layer protocol `p` comes to, or why it is refused.
    fn verdict(p: &[u8]) -> Result<u8, Ipv6Error> {
        Ipv6Repr::parse(p).map(|(r, _)| r.next_header)
    }

    /// An 8-byte options header whose option area is `options` (6 bytes).
    fn options_header(next: u8, options: [u8; 6]) -> Vec<u8> {
        let mut h = vec![next, 0];
        h.extend(options);
        h
    }

    #[test]
    fn emits_and_parses_the_fixed_header() {
        let p = packet(UDP, b"payload!");
        // Golden bytes: version 6, traffic class 0xb8, flow label 0xabcde.
        assert_eq!(&p[..8], &[0x6b, 0x8a, 0xbc, 0xde, 0, 8, UDP, 64]);
        let (r, carried) = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(r, repr(8));
        assert_eq!(carried, Ipv6Payload::Upper(b"payload!"));
    }

    #[test]
    fn link_padding_past_the_payload_length_is_ignored() {
        let mut p = packet(UDP, b"abcd");
        p.extend([0xee; 10]);
        let (_, carried) = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(carried, Ipv6Payload::Upper(b"abcd"));
        p.truncate(HEADER_LEN + 3);
        assert_eq!(verdict(&p), Err(Ipv6Error::Drop(Error::Truncated)));
    }

    #[test]
    fn rejects_wrong_version_and_bad_sources() {
        let mut p = packet(UDP, b"");
        p[0] = 0x45;
        assert_eq!(verdict(&p), Err(Ipv6Error::Drop(Error::BadVersion)));
        for src in [
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::UNSPECIFIED,
            "ff02::1".parse().unwrap(),
        ] {
            let mut p = packet(UDP, b"");
            p[8..24].copy_from_slice(&src.octets());
            assert_eq!(
                Ipv6Repr::parse(&p),
                Err(Ipv6Error::Drop(Error::BadAddress)),
                "{src}"
            );
        }
    }

    #[test]
    fn walks_hop_by_hop_routing_and_destination_options() {
        let mut chain = options_header(next_header::ROUTING, [1, 4, 0, 0, 0, 0]); // PadN
        chain.extend([next_header::DEST_OPTIONS, 0, 0, 0, 0, 0, 0, 0]); // routing, 0 left
        chain.extend(options_header(UDP, [0, 0, 1, 2, 0, 0])); // Pad1 Pad1 PadN
        chain.extend(b"data");
        let p = packet(next_header::HOP_BY_HOP, &chain);
        let (r, carried) = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(r.next_header, UDP);
        assert_eq!(r.payload_len, 4);
        assert_eq!(carried, Ipv6Payload::Upper(b"data"));
    }

    #[test]
    fn hop_by_hop_after_the_first_header_is_a_problem_at_its_next_header_field() {
        let mut chain = options_header(next_header::HOP_BY_HOP, [1, 4, 0, 0, 0, 0]);
        chain.extend(options_header(UDP, [1, 4, 0, 0, 0, 0]));
        let got = verdict(&packet(next_header::DEST_OPTIONS, &chain));
        assert_eq!(
            got,
            Err(Ipv6Error::Problem {
                error: Error::Unsupported,
                code: problem_code::NEXT_HEADER,
                pointer: 40,
            })
        );
    }

    #[test]
    fn unknown_options_act_by_their_high_bits() {
        // Option at offset 42 of the packet (40 + 2), type by action.
        let with = |kind: u8| options_header(UDP, [kind, 4, 0, 0, 0, 0]);
        let parse = |kind: u8, dst: Ipv6Addr| {
            let mut p = packet(next_header::DEST_OPTIONS, &with(kind));
            p[24..40].copy_from_slice(&dst.octets());
            verdict(&p)
        };
        let mcast: Ipv6Addr = "ff02::1".parse().unwrap();
        assert_eq!(parse(0x1e, DST), Ok(UDP), "00: skipped");
        assert_eq!(
            parse(0x5e, DST),
            Err(Ipv6Error::Drop(Error::BadOption)),
            "01"
        );
        let answered = Err(Ipv6Error::Problem {
            error: Error::BadOption,
            code: problem_code::OPTION,
            pointer: 42,
        });
        assert_eq!(parse(0x9e, DST), answered, "10");
        assert_eq!(parse(0x9e, mcast), answered, "10 even to multicast");
        assert_eq!(parse(0xde, DST), answered, "11");
        assert_eq!(
            parse(0xde, mcast),
            Err(Ipv6Error::Drop(Error::BadOption)),
            "11 to multicast"
        );
    }

    #[test]
    fn an_option_running_past_its_header_is_dropped() {
        let h = options_header(UDP, [1, 9, 0, 0, 0, 0]);
        let got = verdict(&packet(next_header::DEST_OPTIONS, &h));
        assert_eq!(got, Err(Ipv6Error::Drop(Error::BadOption)));
    }

    #[test]
    fn a_routing_header_with_segments_left_is_a_problem_at_its_type() {
        let chain = [UDP, 0, 0, 1, 0, 0, 0, 0];
        let got = verdict(&packet(next_header::ROUTING, &chain));
        assert_eq!(
            got,
            Err(Ipv6Error::Problem {
                error: Error::BadLength,
                code: problem_code::HEADER_FIELD,
                pointer: 42,
            })
        );
    }

    #[test]
    fn an_extension_header_longer_than_the_packet_is_truncated() {
        let chain = [UDP, 3, 0, 0, 0, 0, 0, 0];
        let got = verdict(&packet(next_header::DEST_OPTIONS, &chain));
        assert_eq!(got, Err(Ipv6Error::Drop(Error::Truncated)));
    }

    fn fragment(info: FragmentInfo, next: u8, data: &[u8]) -> Vec<u8> {
        let mut chain = vec![0; FRAGMENT_HEADER_LEN];
        emit_fragment_header(next, info, &mut chain).unwrap();
        chain.extend(data);
        packet(next_header::FRAGMENT, &chain)
    }

    #[test]
    fn a_fragment_is_handed_over_with_its_fields() {
        let info = FragmentInfo {
            id: 0xdead_beef,
            offset: 1448,
            more: true,
        };
        let p = fragment(info, UDP, &[7; 16]);
        let (r, carried) = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(r.next_header, UDP);
        assert_eq!(
            carried,
            Ipv6Payload::Fragment {
                info,
                data: &[7; 16]
            }
        );
    }

    #[test]
    fn an_atomic_fragment_is_a_whole_packet() {
        let info = FragmentInfo {
            id: 1,
            offset: 0,
            more: false,
        };
        let p = fragment(info, UDP, b"whole");
        let (r, carried) = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(r.next_header, UDP);
        assert_eq!(carried, Ipv6Payload::Upper(b"whole"));
    }

    #[test]
    fn fragment_rules_of_rfc_8200() {
        let more = |offset, len| FragmentInfo {
            id: 9,
            offset,
            more: len > 0,
        };
        // Not the last, and not a multiple of 8 long.
        let got = verdict(&fragment(more(0, 1), UDP, &[0; 12]));
        assert!(matches!(
            got,
            Err(Ipv6Error::Problem {
                code: 0,
                pointer: 4,
                ..
            })
        ));
        // Reaching past 65,535 bytes.
        let last = FragmentInfo {
            id: 9,
            offset: 65_528,
            more: false,
        };
        let got = verdict(&fragment(last, UDP, &[0; 16]));
        assert!(matches!(
            got,
            Err(Ipv6Error::Problem {
                code: 0,
                pointer: 42,
                ..
            })
        ));
        // A first fragment whose header chain does not end in it.
        let got = verdict(&fragment(
            more(0, 1),
            next_header::DEST_OPTIONS,
            &[UDP, 4, 0, 0, 0, 0, 0, 0],
        ));
        assert!(matches!(got, Err(Ipv6Error::Problem { code: 3, .. })));
    }

    #[test]
    fn a_reassembled_payload_is_walked_and_may_not_hold_another_fragment() {
        let mut payload = options_header(UDP, [1, 4, 0, 0, 0, 0]);
        payload.extend(b"datagram");
        let got = walk_after_reassembly(next_header::DEST_OPTIONS, &payload, false);
        assert_eq!(got, Ok((UDP, &b"datagram"[..])));
        let nested = [UDP, 0, 0, 0, 0, 0, 0, 0];
        let got = walk_after_reassembly(next_header::FRAGMENT, &nested, false);
        assert!(matches!(got, Err(Ipv6Error::Problem { code: 1, .. })));
    }

    #[test]
    fn finish_reassembled_drops_the_fragment_header_and_relinks_the_chain() {
        // Destination options (unfragmentable here), then the fragment
        // header naming UDP, then 16 bytes of reassembled payload.
        let info = FragmentInfo {
            id: 3,
            offset: 0,
            more: true,
        };
        let mut chain = options_header(next_header::FRAGMENT, [1, 4, 0, 0, 0, 0]);
        let mut frag = vec![0; FRAGMENT_HEADER_LEN];
        emit_fragment_header(UDP, info, &mut frag).unwrap();
        chain.extend(&frag);
        chain.extend([5; 16]);
        let mut p = packet(next_header::DEST_OPTIONS, &chain);
        let relinked = Relinked {
            unfragmentable_len: 48,
            next_header_at: 40,
            next: UDP,
        };
        assert_eq!(finish_reassembled(&mut p, 56), Ok(relinked));
        assert_eq!(p.len(), 64);
        let (r, carried) = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(r.next_header, UDP);
        assert_eq!(carried, Ipv6Payload::Upper(&[5; 16]));

        // Right after the fixed header.
        let mut p = fragment(info, UDP, &[6; 8]);
        let relinked = Relinked {
            unfragmentable_len: 40,
            next_header_at: 6,
            next: UDP,
        };
        assert_eq!(finish_reassembled(&mut p, 48), Ok(relinked));
        assert_eq!(verdict(&p), Ok(UDP));
        assert_eq!(p.len(), 48);
    }

    #[test]
    fn finish_reassembled_refuses_what_is_not_a_reassembled_packet() {
        let info = FragmentInfo {
            id: 3,
            offset: 0,
            more: true,
        };
        let mut p = fragment(info, UDP, &[6; 8]);
        // The head does not end on the fragment header.
        assert_eq!(
            finish_reassembled(&mut p.clone(), 47),
            Err(Error::BadLength)
        );
        assert_eq!(
            finish_reassembled(&mut p.clone(), 56),
            Err(Error::BadLength)
        );
        assert_eq!(finish_reassembled(&mut p.clone(), 4), Err(Error::BadLength));
        // The payload would pass 65,535 bytes.
        p.resize(MAX_REASSEMBLED_LEN + 1, 0);
        assert_eq!(finish_reassembled(&mut p, 48), Err(Error::BadLength));
    }

    #[test]
    fn emit_refuses_what_the_fields_cannot_hold() {
        let mut buf = [0; 40];
        assert_eq!(repr(70_000).emit(&mut buf), Err(Error::BadLength));
        assert_eq!(repr(0).emit(&mut buf[..39]), Err(Error::BufferTooSmall));
        let odd = FragmentInfo {
            id: 0,
            offset: 12,
            more: true,
        };
        assert_eq!(
            emit_fragment_header(UDP, odd, &mut buf),
            Err(Error::BadLength)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Ipv6Repr::parse(&bytes);
        }

        #[test]
        fn parse_of_a_mutated_chain_never_panics(
            chain in proptest::collection::vec(any::<u8>(), 0..120),
            first in prop_oneof![Just(0u8), Just(43u8), Just(44u8), Just(60u8), any::<u8>()],
        ) {
            let _ = Ipv6Repr::parse(&packet(first, &chain));
        }

        #[test]
        fn emit_then_parse_round_trips(
            tc in any::<u8>(),
            flow in 0u32..0x10_0000,
            hop in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let r = Ipv6Repr { traffic_class: tc, flow_label: flow, hop_limit: hop, ..repr(payload.len()) };
            let mut p = vec![0; r.buffer_len()];
            r.emit(&mut p).unwrap();
            p[HEADER_LEN..].copy_from_slice(&payload);
            let (back, carried) = Ipv6Repr::parse(&p).unwrap();
            prop_assert_eq!(back, r);
            prop_assert_eq!(carried, Ipv6Payload::Upper(&payload[..]));
        }
    }
}
