//! The UDP header (RFC 768, RFC 1122 §4.1).
//!
//! [`UdpRepr`] is a parsed datagram that borrows its payload. `parse` checks
//! the length field against the buffer and, when asked, the checksum over
//! the pseudo-header; `emit` writes header and payload and always fills in
//! the checksum.

use std::net::IpAddr;

use super::checksum;
use super::Error;

/// IP protocol number of UDP.
pub const PROTOCOL: u8 = 0x11;
/// Source port, destination port, length, checksum.
pub const HEADER_LEN: usize = 8;
/// The largest payload the 16-bit length field can describe.
pub const MAX_PAYLOAD_LEN: usize = 0xffff - HEADER_LEN;

/// A parsed UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// Parses `datagram` (the IP payload) sent from `src` to `dst`.
    ///
    /// The length field must lie within `[8, datagram.len()]`; bytes past it
    /// are ignored. A checksum field of zero means the sender computed none
    /// and is accepted (RFC 768; RFC 1122 §4.1.3.4). Otherwise, with
    /// `verify_checksum`, it is verified over the pseudo-header.
    ///
    /// # Errors
    ///
    /// `Truncated` when the buffer is shorter than the header or than the
    /// length field; `BadLength` when the length field is below 8;
    /// `BadChecksum`.
    pub fn parse(
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        datagram: &'a [u8],
        verify_checksum: bool,
    ) -> Result<UdpRepr<'a>, Error> {
        let header = datagram.get(..HEADER_LEN).ok_or(Error::Truncated)?;
        let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
        if length < HEADER_LEN {
            return Err(Error::BadLength);
        }
        let datagram = datagram.get(..length).ok_or(Error::Truncated)?;
        let sent_checksum = u16::from_be_bytes([header[6], header[7]]);
        if verify_checksum && sent_checksum != 0 {
            // `length` came from a u16, so the conversion is lossless.
            let sum = checksum::combine(&[
                checksum::pseudo_header_ip(src.into(), dst.into(), PROTOCOL, length as u32),
                checksum::sum(datagram),
            ]);
            if checksum::finish(sum) != 0 {
                return Err(Error::BadChecksum);
            }
        }
        Ok(UdpRepr {
            src_port: u16::from_be_bytes([header[0], header[1]]),
            dst_port: u16::from_be_bytes([header[2], header[3]]),
            payload: datagram.get(HEADER_LEN..).ok_or(Error::Truncated)?,
        })
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram into the front of `buf` with its checksum for
    /// the pseudo-header `src -> dst`, and returns the number of bytes
    /// written. A computed checksum of zero is sent as 0xffff, since zero
    /// on the wire means "no checksum" (RFC 768).
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` when `buf` is shorter than [`Self::buffer_len`];
    /// `BadLength` when the payload is longer than [`MAX_PAYLOAD_LEN`].
    pub fn emit(
        &self,
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        let total = self.buffer_len();
        let length = u16::try_from(total).map_err(|_| Error::BadLength)?;
        let buf = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[4..6].copy_from_slice(&length.to_be_bytes());
        buf[6..8].copy_from_slice(&[0, 0]);
        buf[HEADER_LEN..].copy_from_slice(self.payload);
        let sum = checksum::combine(&[
            checksum::pseudo_header_ip(src.into(), dst.into(), PROTOCOL, u32::from(length)),
            checksum::sum(buf),
        ]);
        let sum = match checksum::finish(sum) {
            0 => 0xffff,
            s => s,
        };
        buf[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// `echo hi | nc -u 10.0.0.2 7` from 10.0.0.1:40000; checksum 0xdd24
    /// computed independently (Python, RFC 1071 over the pseudo-header).
    static ECHO_HI: [u8; 11] = [
        0x9c, 0x40, 0x00, 0x07, 0x00, 0x0b, 0xdd, 0x24, 0x68, 0x69, 0x0a,
    ];

    #[test]
    fn parses_golden_datagram() {
        let repr = UdpRepr::parse(SRC, DST, &ECHO_HI, true).unwrap();
        assert_eq!(
            repr,
            UdpRepr {
                src_port: 40000,
                dst_port: 7,
                payload: b"hi\n"
            }
        );
    }

    #[test]
    fn emits_golden_datagram() {
        let repr = UdpRepr {
            src_port: 40000,
            dst_port: 7,
            payload: b"hi\n",
        };
        let mut buf = [0u8; 20];
        assert_eq!(repr.emit(SRC, DST, &mut buf), Ok(11));
        assert_eq!(buf[..11], ECHO_HI);
        assert_eq!(
            repr.emit(SRC, DST, &mut buf[..10]),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn rejects_bad_checksum_unless_not_verifying() {
        let mut d = ECHO_HI;
        d[8] ^= 0x20; // 'h' -> 'H'
        assert_eq!(UdpRepr::parse(SRC, DST, &d, true), Err(Error::BadChecksum));
        assert!(UdpRepr::parse(SRC, DST, &d, false).is_ok());
        // The pseudo-header is covered: a different destination fails.
        assert_eq!(
            UdpRepr::parse(SRC, Ipv4Addr::new(10, 0, 0, 3), &ECHO_HI, true),
            Err(Error::BadChecksum)
        );
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut d = ECHO_HI;
        d[6] = 0;
        d[7] = 0;
        d[8] ^= 0x20;
        let repr = UdpRepr::parse(SRC, DST, &d, true).unwrap();
        assert_eq!(repr.payload, b"Hi\n");
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // With payload [0, 0] the checksum is c; a payload word equal to c
        // makes the one's complement sum 0xffff, so the checksum is 0.
        let mut buf = [0u8; 10];
        let probe = UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload: &[0, 0],
        };
        probe.emit(SRC, DST, &mut buf).unwrap();
        let payload = [buf[6], buf[7]];
        let repr = UdpRepr {
            payload: &payload,
            ..probe
        };
        repr.emit(SRC, DST, &mut buf).unwrap();
        assert_eq!(buf[6..8], [0xff, 0xff]);
        assert_eq!(UdpRepr::parse(SRC, DST, &buf, true), Ok(repr));
    }

    #[test]
    fn rejects_truncated_and_bad_length() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                UdpRepr::parse(SRC, DST, &ECHO_HI[..len], false),
                Err(Error::Truncated)
            );
        }
        // Length field says 11, buffer has 10.
        assert_eq!(
            UdpRepr::parse(SRC, DST, &ECHO_HI[..10], false),
            Err(Error::Truncated)
        );
        for bad in [0u16, 7] {
            let mut d = ECHO_HI;
            d[4..6].copy_from_slice(&bad.to_be_bytes());
            assert_eq!(UdpRepr::parse(SRC, DST, &d, false), Err(Error::BadLength));
        }
    }

    #[test]
    fn ignores_bytes_past_length_field() {
        let mut d = ECHO_HI.to_vec();
        d.extend([0xee; 5]);
        let repr = UdpRepr::parse(SRC, DST, &d, true).unwrap();
        assert_eq!(repr.payload, b"hi\n");
    }

    #[test]
    fn rejects_payload_too_long_for_length_field() {
        let payload = vec![0u8; MAX_PAYLOAD_LEN + 1];
        let repr = UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload: &payload,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(SRC, DST, &mut buf), Err(Error::BadLength));
    }

    proptest! {
        #[test]
        fn emit_then_parse_round_trips(
            src_port in any::<u16>(),
            dst_port in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..1500),
        ) {
            let repr = UdpRepr { src_port, dst_port, payload: &payload };
            let mut buf = vec![0u8; repr.buffer_len()];
            prop_assert_eq!(repr.emit(SRC, DST, &mut buf), Ok(buf.len()));
            prop_assert_ne!(&buf[6..8], &[0u8, 0][..]);
            prop_assert_eq!(UdpRepr::parse(SRC, DST, &buf, true), Ok(repr));
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(repr) = UdpRepr::parse(SRC, DST, &data, true) {
                prop_assert!(repr.buffer_len() <= data.len());
            }
            let _ = UdpRepr::parse(SRC, DST, &data, false);
        }
    }
}
