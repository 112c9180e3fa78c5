//! ICMPv6 messages (RFC 4443).
//!
//! [`Icmpv6Repr`] is a parsed message that borrows its data. The checksum
//! covers the IPv6 pseudo-header (RFC 4443 §2.3), so parse and emit take
//! the packet's addresses. The error messages a host sends (destination
//! unreachable, packet too big, time exceeded, parameter problem) quote as
//! much of the offending packet as keeps the whole reply within the IPv6
//! minimum MTU (RFC 4443 §2.4 (c)).
//!
//! There is no Neighbor Discovery here: a TUN device is a layer-3 link, so
//! no address is ever resolved to a link-layer one. Its messages (types
//! 133-137) parse as [`Icmpv6Repr::Other`] and are counted, not answered.

use std::net::Ipv6Addr;

use super::checksum;
use super::ipv6::{self, next_header};
use super::Error;

/// Type, code, checksum and four bytes whose meaning depends on the type.
pub const HEADER_LEN: usize = 8;
/// The most of an offending packet an error message quotes: the reply
/// (40-byte IPv6 header, 8-byte ICMPv6 header, quote) is then at most the
/// minimum MTU, 1280 bytes (RFC 4443 §2.4 (c)).
pub const MAX_QUOTE: usize = ipv6::MIN_MTU - ipv6::HEADER_LEN - HEADER_LEN;

pub const TYPE_DEST_UNREACHABLE: u8 = 1;
pub const TYPE_PACKET_TOO_BIG: u8 = 2;
pub const TYPE_TIME_EXCEEDED: u8 = 3;
pub const TYPE_PARAM_PROBLEM: u8 = 4;
pub const TYPE_ECHO_REQUEST: u8 = 128;
pub const TYPE_ECHO_REPLY: u8 = 129;

/// Destination unreachable codes (RFC 4443 §3.1).
pub mod unreach_code {
    pub const NO_ROUTE: u8 = 0;
    pub const ADMIN_PROHIBITED: u8 = 1;
    pub const ADDRESS: u8 = 3;
    /// No socket is bound to the destination port.
    pub const PORT: u8 = 4;
}

/// Time exceeded codes (RFC 4443 §3.3).
pub mod time_exceeded_code {
    pub const HOP_LIMIT: u8 = 0;
    /// Fragment reassembly time exceeded (RFC 8200 §4.5).
    pub const REASSEMBLY: u8 = 1;
}

/// A parsed ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// Type 1. `original` is the start of the offending packet.
    DestUnreachable { code: u8, original: &'a [u8] },
    /// Type 2: the next hop's MTU for the packet quoted (RFC 8201).
    PacketTooBig { mtu: u32, original: &'a [u8] },
    /// Type 3.
    TimeExceeded { code: u8, original: &'a [u8] },
    /// Type 4: `pointer` is the offset in the offending packet of the
    /// byte that was wrong.
    ParamProblem {
        code: u8,
        pointer: u32,
        original: &'a [u8],
    },
    /// Any other type, counted and not acted on.
    Other { icmp_type: u8, code: u8 },
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses `message` (the upper-layer payload of a packet from `src` to
    /// `dst`) and verifies its checksum (mandatory, RFC 4443 §2.3).
    ///
    /// # Errors
    ///
    /// `Truncated` when shorter than the 8-byte header; `BadChecksum`.
    pub fn parse(src: Ipv6Addr, dst: Ipv6Addr, message: &'a [u8]) -> Result<Icmpv6Repr<'a>, Error> {
        let header = message.get(..HEADER_LEN).ok_or(Error::Truncated)?;
        if checksum::upper_layer_v6(src, dst, next_header::ICMPV6, message) != 0 {
            return Err(Error::BadChecksum);
        }
        let (icmp_type, code) = (header[0], header[1]);
        let rest = [header[4], header[5], header[6], header[7]];
        let word = u32::from_be_bytes(rest);
        let ident = u16::from_be_bytes([rest[0], rest[1]]);
        let seq_no = u16::from_be_bytes([rest[2], rest[3]]);
        let body = &message[HEADER_LEN..];
        Ok(match icmp_type {
            TYPE_ECHO_REQUEST => Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data: body,
            },
            TYPE_ECHO_REPLY => Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data: body,
            },
            TYPE_DEST_UNREACHABLE => Icmpv6Repr::DestUnreachable {
                code,
                original: body,
            },
            TYPE_PACKET_TOO_BIG => Icmpv6Repr::PacketTooBig {
                mtu: word,
                original: body,
            },
            TYPE_TIME_EXCEEDED => Icmpv6Repr::TimeExceeded {
                code,
                original: body,
            },
            TYPE_PARAM_PROBLEM => Icmpv6Repr::ParamProblem {
                code,
                pointer: word,
                original: body,
            },
            _ => Icmpv6Repr::Other { icmp_type, code },
        })
    }

    /// Whether this is an error message (type below 128, RFC 4443 §2.1):
    /// never answered with another error (RFC 4443 §2.4 (e)).
    pub fn is_error(&self) -> bool {
        match self {
            Icmpv6Repr::EchoRequest { .. } | Icmpv6Repr::EchoReply { .. } => false,
            Icmpv6Repr::Other { icmp_type, .. } => *icmp_type < 128,
            _ => true,
        }
    }

    /// The message length as emitted.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.parts().3.len()
    }

    /// Writes the message for a packet from `src` to `dst` into the front
    /// of `buf` with its checksum; returns the bytes written. `Other` is a
    /// bare 8-byte header.
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` when `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, src: Ipv6Addr, dst: Ipv6Addr, buf: &mut [u8]) -> Result<usize, Error> {
        let (icmp_type, code, rest, body) = self.parts();
        let buf = buf
            .get_mut(..HEADER_LEN + body.len())
            .ok_or(Error::BufferTooSmall)?;
        buf[0] = icmp_type;
        buf[1] = code;
        buf[2..4].copy_from_slice(&[0, 0]);
        buf[4..8].copy_from_slice(&rest);
        buf[HEADER_LEN..].copy_from_slice(body);
        let sum = checksum::upper_layer_v6(src, dst, next_header::ICMPV6, buf);
        buf[2..4].copy_from_slice(&sum.to_be_bytes());
        Ok(buf.len())
    }

    /// Type, code, the four bytes after the checksum, and the body as
    /// emitted (a quote cut to [`MAX_QUOTE`]).
    fn parts(&self) -> (u8, u8, [u8; 4], &'a [u8]) {
        let quote = |original: &'a [u8]| original.get(..MAX_QUOTE).unwrap_or(original);
        let echo = |ident: u16, seq_no: u16| {
            let [a, b] = ident.to_be_bytes();
            let [c, d] = seq_no.to_be_bytes();
            [a, b, c, d]
        };
        match *self {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (TYPE_ECHO_REQUEST, 0, echo(ident, seq_no), data),
            Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (TYPE_ECHO_REPLY, 0, echo(ident, seq_no), data),
            Icmpv6Repr::DestUnreachable { code, original } => {
                (TYPE_DEST_UNREACHABLE, code, [0; 4], quote(original))
            }
            Icmpv6Repr::PacketTooBig { mtu, original } => {
                (TYPE_PACKET_TOO_BIG, 0, mtu.to_be_bytes(), quote(original))
            }
            Icmpv6Repr::TimeExceeded { code, original } => {
                (TYPE_TIME_EXCEEDED, code, [0; 4], quote(original))
            }
            Icmpv6Repr::ParamProblem {
                code,
                pointer,
                original,
            } => (
                TYPE_PARAM_PROBLEM,
                code,
                pointer.to_be_bytes(),
                quote(original),
            ),
            Icmpv6Repr::Other { icmp_type, code } => (icmp_type, code, [0; 4], &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

    fn emitted(repr: &Icmpv6Repr<'_>) -> Vec<u8> {
        let mut buf = vec![0; repr.buffer_len()];
        assert_eq!(repr.emit(A, B, &mut buf), Ok(buf.len()));
        buf
    }

    #[test]
    fn echo_request_golden_bytes() {
        // A `ping -6` request from fd00::1 to fd00::2, id 0x1234 seq 1,
        // 4 data bytes, checksummed over the pseudo-header by hand:
        // addresses 0xfd00*2 + 1 + 2, length 12, next header 58, then the
        // message 0x8000 + 0x1234 + 0x0001 + 0x6162 + 0x6364.
        let repr = Icmpv6Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data: b"abcd",
        };
        let bytes = emitted(&repr);
        let sum: u32 = 0xfd00 * 2 + 1 + 2 + 12 + 58 + 0x8000 + 0x1234 + 1 + 0x6162 + 0x6364;
        let folded = (sum & 0xffff) + (sum >> 16);
        let expect = !(folded as u16);
        assert_eq!(&bytes[..2], &[128, 0]);
        assert_eq!(u16::from_be_bytes([bytes[2], bytes[3]]), expect);
        assert_eq!(Icmpv6Repr::parse(A, B, &bytes), Ok(repr));
    }

    #[test]
    fn the_checksum_covers_the_addresses() {
        let bytes = emitted(&Icmpv6Repr::EchoReply {
            ident: 7,
            seq_no: 9,
            data: b"x",
        });
        assert!(Icmpv6Repr::parse(A, B, &bytes).is_ok());
        let elsewhere = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3);
        assert_eq!(
            Icmpv6Repr::parse(A, elsewhere, &bytes),
            Err(Error::BadChecksum)
        );
        let mut flipped = bytes.clone();
        flipped[8] ^= 1;
        assert_eq!(Icmpv6Repr::parse(A, B, &flipped), Err(Error::BadChecksum));
        assert_eq!(Icmpv6Repr::parse(A, B, &bytes[..7]), Err(Error::Truncated));
    }

    #[test]
    fn errors_round_trip_and_quote_at_most_to_the_minimum_mtu() {
        let big = vec![0x5a; 2000];
        for repr in [
            Icmpv6Repr::DestUnreachable {
                code: unreach_code::PORT,
                original: &big,
            },
            Icmpv6Repr::PacketTooBig {
                mtu: 1280,
                original: &big,
            },
            Icmpv6Repr::TimeExceeded {
                code: time_exceeded_code::REASSEMBLY,
                original: &big,
            },
            Icmpv6Repr::ParamProblem {
                code: 2,
                pointer: 42,
                original: &big,
            },
        ] {
            let bytes = emitted(&repr);
            assert_eq!(ipv6::HEADER_LEN + bytes.len(), ipv6::MIN_MTU);
            let back = Icmpv6Repr::parse(A, B, &bytes).unwrap();
            assert!(back.is_error());
            assert_eq!(back.buffer_len(), bytes.len());
            match (repr, back) {
                (
                    Icmpv6Repr::ParamProblem { pointer, .. },
                    Icmpv6Repr::ParamProblem { pointer: p, .. },
                ) => {
                    assert_eq!(pointer, p)
                }
                (Icmpv6Repr::PacketTooBig { mtu, .. }, Icmpv6Repr::PacketTooBig { mtu: m, .. }) => {
                    assert_eq!(mtu, m)
                }
                _ => {}
            }
        }
    }

    #[test]
    fn neighbor_discovery_is_other_and_informational() {
        let bytes = emitted(&Icmpv6Repr::Other {
            icmp_type: 135,
            code: 0,
        });
        let back = Icmpv6Repr::parse(A, B, &bytes).unwrap();
        assert_eq!(
            back,
            Icmpv6Repr::Other {
                icmp_type: 135,
                code: 0
            }
        );
        assert!(!back.is_error());
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Icmpv6Repr::parse(A, B, &bytes);
        }

        #[test]
        fn echo_round_trips(ident in any::<u16>(), seq_no in any::<u16>(), data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let repr = Icmpv6Repr::EchoRequest { ident, seq_no, data: &data };
            let bytes = emitted(&repr);
            prop_assert_eq!(Icmpv6Repr::parse(A, B, &bytes), Ok(repr));
        }
    }
}
