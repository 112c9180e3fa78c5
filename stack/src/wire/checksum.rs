//! The Internet checksum (RFC 1071) and the TCP/UDP pseudo-header sum
//! (RFC 9293 §3.1, RFC 768).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The 16-bit one's complement sum of `data`, not yet folded or inverted.
/// Adding partial sums with [`combine`] gives the sum of the concatenation,
/// as long as every part but the last has an even length.
pub fn sum(data: &[u8]) -> u32 {
    // Summing 32-bit words into a 64-bit accumulator is equivalent to
    // summing 16-bit words (RFC 1071 §2 (B), "parallel summation") and about
    // twice as fast; the fold at the end brings it back to 16 bits.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    fold64(acc)
}

fn fold64(mut acc: u64) -> u32 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u32
}

/// Adds partial sums.
pub fn combine(sums: &[u32]) -> u32 {
    fold64(sums.iter().map(|&s| u64::from(s)).sum())
}

/// Folds a sum to 16 bits and takes its one's complement: the value that
/// goes in a checksum field.
pub fn finish(sum: u32) -> u16 {
    !(fold64(u64::from(sum)) as u16)
}

/// The checksum of `data` alone (IPv4 header, ICMP message).
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// The sum of the IPv4 pseudo-header for TCP and UDP: source, destination,
/// zero, protocol, and the transport length.
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u32) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    let acc = u64::from(u16::from_be_bytes([s[0], s[1]]))
        + u64::from(u16::from_be_bytes([s[2], s[3]]))
        + u64::from(u16::from_be_bytes([d[0], d[1]]))
        + u64::from(u16::from_be_bytes([d[2], d[3]]))
        + u64::from(protocol)
        + u64::from(len >> 16)
        + u64::from(len & 0xffff);
    fold64(acc)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1) for TCP, UDP and
/// ICMPv6: source, destination, the upper-layer length as 32 bits, three
/// zero bytes and the Next Header.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let words = |a: Ipv6Addr| a.segments().into_iter().map(u64::from).sum::<u64>();
    let acc = words(src)
        + words(dst)
        + u64::from(len >> 16)
        + u64::from(len & 0xffff)
        + u64::from(next_header);
    fold64(acc)
}

/// The pseudo-header sum for TCP or UDP of either family: IPv4's for two
/// IPv4 addresses, else IPv6's (RFC 8200 §8.1), with an IPv4 address in
/// its IPv4-mapped form should the families ever differ (they do not on
/// any packet we build or accept, but a mixed pair must not panic).
pub fn pseudo_header_ip(src: IpAddr, dst: IpAddr, protocol: u8, len: u32) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_header(s, d, protocol, len),
        _ => pseudo_header_v6(v6(src), v6(dst), protocol, len),
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// The checksum of an upper-layer message (TCP, UDP, ICMPv6) carried
/// over IPv6 from `src` to `dst`: 0 when `message` holds a right one, the
/// value for its checksum field when that field is zero.
pub fn upper_layer_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, message: &[u8]) -> u16 {
    // An IPv6 payload is at most 65,535 bytes (we take no jumbograms), so
    // the length fits u32 whatever `message` is; saturate rather than wrap.
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    finish(combine(&[
        pseudo_header_v6(src, dst, next_header, len),
        sum(message),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 §4.1's reference algorithm, 16 bits at a time.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            sum += u32::from(u16::from_be_bytes([data[i], data[i + 1]]));
            i += 2;
        }
        if i < data.len() {
            sum += u32::from(data[i]) << 8;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn a_header_with_its_checksum_sums_to_zero() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 10, 0, 0, 1,
            10, 0, 0, 2,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
    }

    proptest! {
        #[test]
        fn differential_against_rfc1071(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            prop_assert_eq!(checksum(&data), reference(&data));
        }

        #[test]
        fn split_sums_combine(data in proptest::collection::vec(any::<u8>(), 0..600), at in 0usize..300) {
            let at = (at.min(data.len())) & !1;
            let (a, b) = data.split_at(at);
            prop_assert_eq!(finish(combine(&[sum(a), sum(b)])), reference(&data));
        }

        #[test]
        fn v6_pseudo_header_sums_its_bytes(
            src in any::<[u8; 16]>(),
            dst in any::<[u8; 16]>(),
            next in any::<u8>(),
            len in any::<u32>(),
        ) {
            // RFC 8200 §8.1, as 40 bytes.
            let mut bytes = Vec::with_capacity(40);
            bytes.extend(src);
            bytes.extend(dst);
            bytes.extend(len.to_be_bytes());
            bytes.extend([0, 0, 0, next]);
            let got = pseudo_header_v6(src.into(), dst.into(), next, len);
            prop_assert_eq!(finish(got), reference(&bytes));
        }
    }
}
