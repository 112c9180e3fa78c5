//! ICMP messages (RFC 792, RFC 1122 §3.2.2).
//!
//! [`IcmpRepr`] is a parsed message that borrows its data. We act on echo
//! requests (answered by echo replies, RFC 1122 §3.2.2.6) and emit
//! destination unreachable for closed ports and unknown protocols
//! (RFC 1122 §4.1.3.1, §3.2.2.1); every other type is parsed into
//! [`IcmpRepr::Other`] so the runtime can count it.

use super::checksum;
use super::Error;

/// Type, code, checksum and four bytes whose meaning depends on the type.
pub const HEADER_LEN: usize = 8;
/// The most of an offending datagram we quote in an error message: the
/// whole ICMP error then fits a 576-byte datagram (20 IP + 8 ICMP + 548),
/// as Linux does (RFC 1812 §4.3.2.3). RFC 792 asks for at least the IP
/// header and 8 bytes of its payload.
pub const MAX_QUOTE: usize = 548;

pub const TYPE_ECHO_REPLY: u8 = 0x00;
pub const TYPE_DEST_UNREACHABLE: u8 = 0x03;
pub const TYPE_ECHO_REQUEST: u8 = 0x08;
pub const TYPE_TIME_EXCEEDED: u8 = 0x0b;

/// Time exceeded codes (RFC 792).
pub mod time_exceeded_code {
    /// Time to live exceeded in transit.
    pub const TTL: u8 = 0;
    /// Fragment reassembly time exceeded (RFC 1122 §3.3.2).
    pub const REASSEMBLY: u8 = 1;
}

/// Destination unreachable codes (RFC 792; RFC 1122 §3.2.2.1).
pub mod unreach_code {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    /// The transport protocol is not implemented by the destination host.
    pub const PROTOCOL: u8 = 2;
    /// No socket is bound to the destination port (RFC 1122 §4.1.3.1).
    pub const PORT: u8 = 3;
    pub const FRAGMENTATION_NEEDED: u8 = 4;
    pub const SOURCE_ROUTE_FAILED: u8 = 5;
    /// RFC 1812 §5.2.7.1.
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// A parsed ICMP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpRepr<'a> {
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
    /// Type 3. `original` is the offending IP header plus at least 8 bytes
    /// of its payload (RFC 792). On emit we quote at most [`MAX_QUOTE`]
    /// bytes of it; on parse it is whatever the sender quoted, unchecked.
    DestUnreachable { code: u8, original: &'a [u8] },
    /// Type 3 code 4, Fragmentation Needed and DF Set, with the next-hop
    /// MTU RFC 1191 §4 puts in the low 16 bits of the unused field (0
    /// from a router older than RFC 1191). Quotes as `DestUnreachable`.
    FragNeeded {
        next_hop_mtu: u16,
        original: &'a [u8],
    },
    /// Type 11, quoting as `DestUnreachable` does.
    TimeExceeded { code: u8, original: &'a [u8] },
    /// Any other type we parse but do not act on.
    Other { icmp_type: u8, code: u8 },
}

impl<'a> IcmpRepr<'a> {
    /// Parses `message` (the IP payload) and verifies its checksum, which
    /// covers the whole message (RFC 792).
    ///
    /// # Errors
    ///
    /// `Truncated` when shorter than the 8-byte header; `BadChecksum`.
    pub fn parse(message: &'a [u8]) -> Result<IcmpRepr<'a>, Error> {
        let header = message.get(..HEADER_LEN).ok_or(Error::Truncated)?;
        if checksum::checksum(message) != 0 {
            return Err(Error::BadChecksum);
        }
        let icmp_type = header[0];
        let code = header[1];
        let ident = u16::from_be_bytes([header[4], header[5]]);
        let seq_no = u16::from_be_bytes([header[6], header[7]]);
        let body = message.get(HEADER_LEN..).ok_or(Error::Truncated)?;
        Ok(match icmp_type {
            TYPE_ECHO_REQUEST => IcmpRepr::EchoRequest {
                ident,
                seq_no,
                data: body,
            },
            TYPE_ECHO_REPLY => IcmpRepr::EchoReply {
                ident,
                seq_no,
                data: body,
            },
            TYPE_DEST_UNREACHABLE if code == unreach_code::FRAGMENTATION_NEEDED => {
                IcmpRepr::FragNeeded {
                    next_hop_mtu: seq_no,
                    original: body,
                }
            }
            TYPE_DEST_UNREACHABLE => IcmpRepr::DestUnreachable {
                code,
                original: body,
            },
            TYPE_TIME_EXCEEDED => IcmpRepr::TimeExceeded {
                code,
                original: body,
            },
            _ => IcmpRepr::Other { icmp_type, code },
        })
    }

    /// The message length as emitted.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                IcmpRepr::EchoRequest { data, .. } | IcmpRepr::EchoReply { data, .. } => data.len(),
                IcmpRepr::DestUnreachable { original, .. }
                | IcmpRepr::FragNeeded { original, .. }
                | IcmpRepr::TimeExceeded { original, .. } => original.len().min(MAX_QUOTE),
                IcmpRepr::Other { .. } => 0,
            }
    }

    /// Writes the message into the front of `buf` with its checksum and
    /// returns the number of bytes written. `Other` is written as a bare
    /// 8-byte header with the rest-of-header zero.
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` when `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let total = self.buffer_len();
        let buf = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        let (icmp_type, code, rest, body): (u8, u8, [u8; 4], &[u8]) = match *self {
            IcmpRepr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (TYPE_ECHO_REQUEST, 0, echo_rest(ident, seq_no), data),
            IcmpRepr::EchoReply {
                ident,
                seq_no,
                data,
            } => (TYPE_ECHO_REPLY, 0, echo_rest(ident, seq_no), data),
            // RFC 792: the four bytes after the checksum are unused (zero).
            IcmpRepr::DestUnreachable { code, original } => (
                TYPE_DEST_UNREACHABLE,
                code,
                [0; 4],
                original.get(..MAX_QUOTE).unwrap_or(original),
            ),
            IcmpRepr::FragNeeded {
                next_hop_mtu,
                original,
            } => (
                TYPE_DEST_UNREACHABLE,
                unreach_code::FRAGMENTATION_NEEDED,
                echo_rest(0, next_hop_mtu),
                original.get(..MAX_QUOTE).unwrap_or(original),
            ),
            IcmpRepr::TimeExceeded { code, original } => (
                TYPE_TIME_EXCEEDED,
                code,
                [0; 4],
                original.get(..MAX_QUOTE).unwrap_or(original),
            ),
            IcmpRepr::Other { icmp_type, code } => (icmp_type, code, [0; 4], &[]),
        };
        buf[0] = icmp_type;
        buf[1] = code;
        buf[2..4].copy_from_slice(&[0, 0]);
        buf[4..8].copy_from_slice(&rest);
        buf[HEADER_LEN..].copy_from_slice(body);
        let sum = checksum::checksum(buf);
        buf[2..4].copy_from_slice(&sum.to_be_bytes());
        Ok(total)
    }
}

fn echo_rest(ident: u16, seq_no: u16) -> [u8; 4] {
    let i = ident.to_be_bytes();
    let s = seq_no.to_be_bytes();
    [i[0], i[1], s[0], s[1]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An echo request as Linux `ping` sends it: ident 0x1c2d, seq 1,
    /// 16 bytes of timestamp then 0x10..0x37. Checksum 0xf910 computed
    /// independently (Python, RFC 1071).
    static PING: [u8; 64] = [
        0x08, 0x00, 0xf9, 0x10, 0x1c, 0x2d, 0x00, 0x01, 0x5f, 0x3c, 0x1a, 0x66, 0x00, 0x00, 0x00,
        0x00, 0x9d, 0x4b, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
        0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24,
        0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
        0x34, 0x35, 0x36, 0x37,
    ];

    #[test]
    fn parses_linux_ping() {
        let repr = IcmpRepr::parse(&PING).unwrap();
        assert_eq!(
            repr,
            IcmpRepr::EchoRequest {
                ident: 0x1c2d,
                seq_no: 1,
                data: &PING[8..]
            }
        );
        assert_eq!(repr.buffer_len(), 64);
    }

    #[test]
    fn reply_differs_from_request_only_in_type_and_checksum() {
        let reply = IcmpRepr::EchoReply {
            ident: 0x1c2d,
            seq_no: 1,
            data: &PING[8..],
        };
        let mut buf = [0u8; 64];
        assert_eq!(reply.emit(&mut buf), Ok(64));
        assert_eq!(buf[0], TYPE_ECHO_REPLY);
        // Type 8 -> 0 lowers the sum by 0x0800, so the checksum rises by
        // 0x0800 (one's complement, RFC 1624): 0xf910 + 0x0800 = 0x0111.
        assert_eq!(buf[2..4], [0x01, 0x11]);
        assert_eq!(buf[4..], PING[4..]);
        assert_eq!(IcmpRepr::parse(&buf), Ok(reply));
    }

    #[test]
    fn rejects_truncated_and_bad_checksum() {
        for len in 0..HEADER_LEN {
            assert_eq!(IcmpRepr::parse(&PING[..len]), Err(Error::Truncated));
        }
        let mut m = PING;
        m[40] ^= 0x01;
        assert_eq!(IcmpRepr::parse(&m), Err(Error::BadChecksum));
        // Cutting the data off breaks the checksum too.
        assert_eq!(IcmpRepr::parse(&PING[..63]), Err(Error::BadChecksum));
    }

    #[test]
    fn fragmentation_needed_carries_the_next_hop_mtu() {
        let original = [0x45u8; 28];
        let repr = IcmpRepr::FragNeeded {
            next_hop_mtu: 1400,
            original: &original,
        };
        let mut buf = [0u8; 36];
        assert_eq!(repr.emit(&mut buf), Ok(36));
        // RFC 1191 §4: type 3 code 4, the MTU in the low 16 bits.
        assert_eq!(buf[..2], [3, 4]);
        assert_eq!(buf[4..8], [0, 0, 0x05, 0x78]);
        assert_eq!(IcmpRepr::parse(&buf), Ok(repr));
    }

    #[test]
    fn port_unreachable_quotes_at_most_548_bytes() {
        let original = [0x45u8; 1000];
        let repr = IcmpRepr::DestUnreachable {
            code: unreach_code::PORT,
            original: &original,
        };
        assert_eq!(repr.buffer_len(), HEADER_LEN + MAX_QUOTE);
        let mut buf = [0u8; 1100];
        let n = repr.emit(&mut buf).unwrap();
        assert_eq!(n, 556);
        assert_eq!(buf[..2], [3, 3]);
        assert_eq!(buf[4..8], [0; 4]);
        assert_eq!(
            IcmpRepr::parse(&buf[..n]),
            Ok(IcmpRepr::DestUnreachable {
                code: 3,
                original: &original[..MAX_QUOTE]
            })
        );
        assert_eq!(repr.emit(&mut buf[..555]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn other_types_parse_as_other() {
        // Parameter problem (type 12), pointer 0.
        let mut m = [12u8, 0, 0, 0, 0, 0, 0, 0, 0x45, 0];
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            IcmpRepr::parse(&m),
            Ok(IcmpRepr::Other {
                icmp_type: 12,
                code: 0
            })
        );
    }

    /// One repr of each kind, chosen by `kind`, over `data`.
    fn repr_of(kind: u8, a: u16, b: u16, data: &[u8]) -> IcmpRepr<'_> {
        match kind % 6 {
            0 => IcmpRepr::EchoRequest {
                ident: a,
                seq_no: b,
                data,
            },
            1 => IcmpRepr::EchoReply {
                ident: a,
                seq_no: b,
                data,
            },
            // Code 4 parses as `FragNeeded`, below.
            2 if a as u8 == unreach_code::FRAGMENTATION_NEEDED => IcmpRepr::DestUnreachable {
                code: unreach_code::PORT,
                original: data.get(..MAX_QUOTE).unwrap_or(data),
            },
            2 => IcmpRepr::DestUnreachable {
                code: a as u8,
                original: data.get(..MAX_QUOTE).unwrap_or(data),
            },
            5 => IcmpRepr::FragNeeded {
                next_hop_mtu: a,
                original: data.get(..MAX_QUOTE).unwrap_or(data),
            },
            3 => IcmpRepr::TimeExceeded {
                code: a as u8,
                original: data.get(..MAX_QUOTE).unwrap_or(data),
            },
            // Types with no body we keep: skip 0, 3, 8 and 11.
            _ => IcmpRepr::Other {
                icmp_type: [4u8, 5, 12, 13, 14][usize::from(b % 5)],
                code: a as u8,
            },
        }
    }

    proptest! {
        #[test]
        fn emit_then_parse_round_trips(
            kind in any::<u8>(),
            a in any::<u16>(),
            b in any::<u16>(),
            data in proptest::collection::vec(any::<u8>(), 0..1500),
        ) {
            let repr = repr_of(kind, a, b, &data);
            let mut buf = vec![0u8; repr.buffer_len()];
            prop_assert_eq!(repr.emit(&mut buf), Ok(buf.len()));
            prop_assert_eq!(IcmpRepr::parse(&buf), Ok(repr));
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(repr) = IcmpRepr::parse(&data) {
                prop_assert!(repr.buffer_len() <= data.len().max(HEADER_LEN));
            }
        }
    }
}
