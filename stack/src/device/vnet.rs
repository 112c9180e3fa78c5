//! The virtio-net header (`struct virtio_net_hdr`) that a TUN device
//! opened with `IFF_VNET_HDR` puts before every packet it reads and
//! expects before every packet it is given.
//!
//! It says how the packet's checksum and segmentation stand: a packet
//! the kernel did not checksum (`NEEDS_CSUM`: the field at `csum_start +
//! csum_offset` holds only the pseudo-header sum), one whose checksum the
//! kernel has verified (`DATA_VALID`), and a TCP "super-segment" of up
//! to 64 KiB that stands for many segments of `gso_size` payload bytes
//! each (generic segmentation offload). Layout and semantics are those of
//! Linux's `include/uapi/linux/virtio_net.h`.
//!
//! Byte order: the legacy (pre-virtio-1.0) header is in the host's byte
//! order, so little-endian on x86. `TunDevice` asks the kernel for
//! little-endian headers explicitly (`TUNSETVNETLE`), so this module
//! always reads and writes little-endian, whatever the host.

/// Length of `struct virtio_net_hdr`, the header size we ask for with
/// `TUNSETVNETHDRSZ`.
pub const HDR_LEN: usize = 10;

/// `flags`: the checksum is partial; complete it over the bytes from
/// `csum_start` and store it at `csum_start + csum_offset`.
pub const F_NEEDS_CSUM: u8 = 0x01;
/// `flags`: the checksum has been verified (receive only).
pub const F_DATA_VALID: u8 = 0x02;

/// `gso_type`: not a super-segment.
pub const GSO_NONE: u8 = 0x00;
/// `gso_type`: an IPv4 TCP super-segment (TSO).
pub const GSO_TCPV4: u8 = 0x01;
/// `gso_type`: an IPv4 UDP super-datagram (UFO; never negotiated here).
pub const GSO_UDP: u8 = 0x03;
/// `gso_type`: an IPv6 TCP super-segment (TSO6).
pub const GSO_TCPV6: u8 = 0x04;
/// `gso_type` bit: the TCP segments carry ECN (CWR on the first only).
pub const GSO_ECN: u8 = 0x80;

/// One `struct virtio_net_hdr`, as plain values.
///
/// Any ten bytes are a header; whether the kernel accepts its values is
/// the kernel's business, so parsing cannot fail once there are ten.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioNetHdr {
    /// `F_NEEDS_CSUM`, `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_*`, possibly with `GSO_ECN`.
    pub gso_type: u8,
    /// Bytes of headers (IPv4 or IPv6, + TCP on a TUN device) before the
    /// payload.
    pub hdr_len: u16,
    /// Payload bytes per segment of a super-segment (the MSS).
    pub gso_size: u16,
    /// Where checksumming starts, from the start of the IP header.
    pub csum_start: u16,
    /// Where, counted from `csum_start`, the checksum goes.
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// The all-zero header: a complete packet with a valid checksum, not a
    /// super-segment. What a plain `send` writes.
    pub const PLAIN: VirtioNetHdr = VirtioNetHdr {
        flags: 0,
        gso_type: GSO_NONE,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// Reads a header from the first [`HDR_LEN`] bytes of `bytes`;
    /// `None` if there are fewer.
    pub fn parse(bytes: &[u8]) -> Option<VirtioNetHdr> {
        let b: &[u8; HDR_LEN] = bytes.get(..HDR_LEN)?.try_into().ok()?;
        Some(VirtioNetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16::from_le_bytes([b[2], b[3]]),
            gso_size: u16::from_le_bytes([b[4], b[5]]),
            csum_start: u16::from_le_bytes([b[6], b[7]]),
            csum_offset: u16::from_le_bytes([b[8], b[9]]),
        })
    }

    /// The header's wire form.
    pub fn to_bytes(&self) -> [u8; HDR_LEN] {
        let mut b = [0u8; HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// The checksum is partial (`F_NEEDS_CSUM`).
    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }

    /// The checksum was verified by the kernel (`F_DATA_VALID`).
    pub fn data_valid(&self) -> bool {
        self.flags & F_DATA_VALID != 0
    }

    /// The segment size if this is a super-segment of any kind.
    pub fn gso(&self) -> Option<u16> {
        (self.gso_type & !GSO_ECN != GSO_NONE).then_some(self.gso_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A TSO header as a Linux guest writes it for a 64 KiB IPv4 TCP
    /// super-segment with 20-byte IP and 32-byte TCP headers, MSS 1448:
    /// NEEDS_CSUM, TCPV4, hdr_len 52 (0x34), gso_size 1448 (0x05a8),
    /// csum_start 20, csum_offset 16 (the TCP checksum field).
    const TSO_BYTES: [u8; HDR_LEN] = [0x01, 0x01, 0x34, 0x00, 0xa8, 0x05, 0x14, 0x00, 0x10, 0x00];

    #[test]
    fn parses_golden_tso_header() {
        let hdr = VirtioNetHdr::parse(&TSO_BYTES).unwrap();
        assert_eq!(
            hdr,
            VirtioNetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_TCPV4,
                hdr_len: 52,
                gso_size: 1448,
                csum_start: 20,
                csum_offset: 16,
            }
        );
        assert!(hdr.needs_csum());
        assert!(!hdr.data_valid());
        assert_eq!(hdr.gso(), Some(1448));
        assert_eq!(hdr.to_bytes(), TSO_BYTES);
    }

    #[test]
    fn plain_header_is_ten_zero_bytes() {
        assert_eq!(VirtioNetHdr::PLAIN.to_bytes(), [0; HDR_LEN]);
        assert_eq!(VirtioNetHdr::default(), VirtioNetHdr::PLAIN);
        let hdr = VirtioNetHdr::parse(&[0; HDR_LEN]).unwrap();
        assert_eq!(hdr.gso(), None);
        assert!(!hdr.needs_csum() && !hdr.data_valid());
    }

    #[test]
    fn data_valid_and_ecn_flags() {
        let hdr =
            VirtioNetHdr::parse(&[F_DATA_VALID, GSO_TCPV4 | GSO_ECN, 0, 0, 0x10, 0, 0, 0, 0, 0])
                .unwrap();
        assert!(hdr.data_valid());
        assert_eq!(hdr.gso(), Some(16));
        // ECN alone is not a segmentation type.
        let ecn_only = VirtioNetHdr {
            gso_type: GSO_ECN,
            ..VirtioNetHdr::PLAIN
        };
        assert_eq!(ecn_only.gso(), None);
    }

    #[test]
    fn short_input_is_none_and_extra_is_ignored() {
        for n in 0..HDR_LEN {
            assert_eq!(VirtioNetHdr::parse(&TSO_BYTES[..n]), None);
        }
        let mut long = TSO_BYTES.to_vec();
        long.extend_from_slice(&[0x45, 0x00]);
        assert_eq!(VirtioNetHdr::parse(&long), VirtioNetHdr::parse(&TSO_BYTES));
    }

    proptest! {
        #[test]
        fn bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            match VirtioNetHdr::parse(&bytes) {
                Some(hdr) => prop_assert_eq!(&hdr.to_bytes()[..], &bytes[..HDR_LEN]),
                None => prop_assert!(bytes.len() < HDR_LEN),
            }
        }

        #[test]
        fn values_round_trip(
            flags: u8, gso_type: u8, hdr_len: u16, gso_size: u16,
            csum_start: u16, csum_offset: u16,
        ) {
            let hdr = VirtioNetHdr { flags, gso_type, hdr_len, gso_size, csum_start, csum_offset };
            prop_assert_eq!(VirtioNetHdr::parse(&hdr.to_bytes()), Some(hdr));
        }
    }
}
