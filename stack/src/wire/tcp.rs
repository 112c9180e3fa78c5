//! The TCP header and its options (RFC 9293 §3.1, RFC 7323, RFC 2018).
//!
//! [`TcpRepr`] is a parsed segment that borrows its payload. `parse` checks
//! the header against the buffer and, when asked, the checksum over the
//! pseudo-header; `emit` writes the header, options and payload and fills in
//! the checksum.

use std::net::IpAddr;

use etherparse::TcpHeaderSlice;

use super::checksum;
use super::{Error, SeqNumber};

/// IP protocol number of TCP.
pub const PROTOCOL: u8 = 0x06;
/// A header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// The data offset field is four bits of 32-bit words.
pub const MAX_HEADER_LEN: usize = 60;
/// How many SACK blocks we parse and emit (RFC 2018 §3: at most 4 fit, 3
/// with timestamps).
pub const MAX_SACK_BLOCKS: usize = 4;

/// The control bits (RFC 9293 §3.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);

    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }
    pub const fn fin(self) -> bool {
        self.contains(TcpFlags::FIN)
    }
    pub const fn syn(self) -> bool {
        self.contains(TcpFlags::SYN)
    }
    pub const fn rst(self) -> bool {
        self.contains(TcpFlags::RST)
    }
    pub const fn psh(self) -> bool {
        self.contains(TcpFlags::PSH)
    }
    pub const fn ack(self) -> bool {
        self.contains(TcpFlags::ACK)
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.union(rhs)
    }
}

impl std::fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// The timestamps option (RFC 7323 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamps {
    pub tsval: u32,
    pub tsecr: u32,
}

/// A SACK block: the left edge and the sequence number just past the right
/// edge (RFC 2018 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackBlock {
    pub left: SeqNumber,
    pub right: SeqNumber,
}

/// The options we understand. Unknown options are skipped by their length
/// as RFC 9293 §3.2 requires ("a TCP implementation MUST be able to receive
/// a TCP Option in any segment" and ignore those it does not know).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), only meaningful on a SYN.
    pub mss: Option<u16>,
    /// Window scale shift (kind 3, RFC 7323 §2), only on a SYN; values above
    /// 14 are clamped to 14 as §2.3 says.
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4), only on a SYN.
    pub sack_permitted: bool,
    /// Timestamps (kind 8).
    pub timestamps: Option<Timestamps>,
    /// SACK blocks (kind 5); the first `sack_len` are valid.
    pub sack: [SackBlock; MAX_SACK_BLOCKS],
    pub sack_len: u8,
}

impl TcpOptions {
    /// The valid SACK blocks.
    pub fn sack_blocks(&self) -> &[SackBlock] {
        &self.sack[..usize::from(self.sack_len).min(MAX_SACK_BLOCKS)]
    }

    /// Appends a SACK block; returns false when there is no room.
    pub fn push_sack(&mut self, block: SackBlock) -> bool {
        let n = usize::from(self.sack_len);
        if n >= MAX_SACK_BLOCKS {
            return false;
        }
        self.sack[n] = block;
        self.sack_len += 1;
        true
    }

    fn parse(mut data: &[u8]) -> Result<TcpOptions, Error> {
        let mut opts = TcpOptions::default();
        while let Some((&kind, rest)) = data.split_first() {
            match kind {
                0x00 => break,
                0x01 => {
                    data = rest;
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*rest.first().ok_or(Error::BadOption)?);
            if len < 2 || len > data.len() {
                return Err(Error::BadOption);
            }
            let body = &data[2..len];
            match (kind, body.len()) {
                (0x02, 2) => opts.mss = Some(u16::from_be_bytes([body[0], body[1]])),
                (0x03, 1) => opts.window_scale = Some(body[0].min(14)),
                (0x04, 0) => opts.sack_permitted = true,
                (0x05, n) if n % 8 == 0 => {
                    for b in body.chunks_exact(8) {
                        let left = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                        let right = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                        opts.push_sack(SackBlock {
                            left: SeqNumber(left),
                            right: SeqNumber(right),
                        });
                    }
                }
                (0x08, 8) => {
                    opts.timestamps = Some(Timestamps {
                        tsval: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                        tsecr: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
                    })
                }
                // A known kind with the wrong length, or an unknown kind:
                // skip it (RFC 9293 §3.2, MUST-6).
                _ => {}
            }
            data = &data[len..];
        }
        Ok(opts)
    }

    /// Writes the options into `buf`, which is exactly `wire_len()` long.
    fn emit(&self, buf: &mut [u8]) {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            buf[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        if let Some(mss) = self.mss {
            let m = mss.to_be_bytes();
            put(&[0x02, 0x04, m[0], m[1]]);
        }
        if let Some(ws) = self.window_scale {
            put(&[0x01, 0x03, 0x03, ws]);
        }
        if self.sack_permitted {
            put(&[0x01, 0x01, 0x04, 0x02]);
        }
        if let Some(ts) = self.timestamps {
            put(&[0x01, 0x01, 0x08, 0x0a]);
            put(&ts.tsval.to_be_bytes());
            put(&ts.tsecr.to_be_bytes());
        }
        if self.sack_len > 0 {
            let blocks = self.sack_blocks();
            put(&[0x01, 0x01, 0x05, (2 + 8 * blocks.len()) as u8]);
            for b in blocks {
                put(&b.left.0.to_be_bytes());
                put(&b.right.0.to_be_bytes());
            }
        }
        // Pad with end-of-list (only reached if a caller sized `buf` larger).
        buf[at..].fill(0x00);
    }

    /// The length of the options as emitted: NOPs align each option on a
    /// 4-byte boundary, as the Linux kernel does, so this is a multiple of 4.
    pub fn wire_len(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.window_scale.is_some() {
            len += 4;
        }
        if self.sack_permitted {
            len += 4;
        }
        if self.timestamps.is_some() {
            len += 12;
        }
        if self.sack_len > 0 {
            len += 4 + 8 * self.sack_blocks().len();
        }
        len
    }
}

/// A parsed TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNumber,
    /// Meaningful only when `flags.ack()`.
    pub ack: SeqNumber,
    pub flags: TcpFlags,
    /// The raw window field; the connection applies the scale.
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parses `segment` (the IP payload) sent from `src` to `dst`. With
    /// `verify_checksum`, a checksum that does not verify is an error.
    ///
    /// # Errors
    ///
    /// `Truncated` or `BadLength` for a header that does not fit,
    /// `BadOption` for a malformed option, `BadChecksum`.
    pub fn parse(
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        segment: &'a [u8],
        verify_checksum: bool,
    ) -> Result<TcpRepr<'a>, Error> {
        use etherparse::err::tcp::HeaderSliceError;
        let header = TcpHeaderSlice::from_slice(segment).map_err(|e| match e {
            HeaderSliceError::Len(_) => Error::Truncated,
            HeaderSliceError::Content(_) => Error::BadLength,
        })?;
        if verify_checksum {
            let len = u32::try_from(segment.len()).map_err(|_| Error::BadLength)?;
            let sum = checksum::combine(&[
                checksum::pseudo_header_ip(src.into(), dst.into(), PROTOCOL, len),
                checksum::sum(segment),
            ]);
            if checksum::finish(sum) != 0 {
                return Err(Error::BadChecksum);
            }
        }
        let header_len = header.slice().len();
        let options = TcpOptions::parse(header.options())?;
        Ok(TcpRepr {
            src_port: header.source_port(),
            dst_port: header.destination_port(),
            seq: SeqNumber(header.sequence_number()),
            ack: SeqNumber(header.acknowledgment_number()),
            flags: TcpFlags(segment[13]),
            window: header.window_size(),
            urgent: header.urgent_pointer(),
            options,
            payload: segment.get(header_len..).ok_or(Error::Truncated)?,
        })
    }

    /// The length in sequence space: payload plus one each for SYN and FIN.
    pub fn seg_len(&self) -> usize {
        self.payload.len() + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }

    /// Header length with options, as emitted.
    pub fn header_len(&self) -> usize {
        MIN_HEADER_LEN + self.options.wire_len()
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment into the front of `buf` with its checksum for the
    /// pseudo-header `src -> dst`, and returns the number of bytes written.
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` when `buf` is shorter than [`Self::buffer_len`], or
    /// the options do not fit in 40 bytes.
    pub fn emit(
        &self,
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        let total = self.emit_unchecksummed(buf)?;
        let buf = &mut buf[..total];
        let len = u32::try_from(total).map_err(|_| Error::BufferTooSmall)?;
        let sum = checksum::combine(&[
            checksum::pseudo_header_ip(src.into(), dst.into(), PROTOCOL, len),
            checksum::sum(buf),
        ]);
        buf[16..18].copy_from_slice(&checksum::finish(sum).to_be_bytes());
        Ok(total)
    }

    /// Like [`Self::emit`], but leaves the checksum field zero: for a
    /// super-segment handed to `Device::send_tso`, whose device fills in
    /// the checksum of every packet it cuts (summing 64 KiB here would be
    /// wasted).
    ///
    /// # Errors
    ///
    /// As [`Self::emit`].
    pub fn emit_unchecksummed(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let header_len = self.header_len();
        let total = self.buffer_len();
        if header_len > MAX_HEADER_LEN || buf.len() < total {
            return Err(Error::BufferTooSmall);
        }
        let buf = &mut buf[..total];
        buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[4..8].copy_from_slice(&self.seq.0.to_be_bytes());
        let ack = if self.flags.ack() { self.ack.0 } else { 0 };
        buf[8..12].copy_from_slice(&ack.to_be_bytes());
        buf[12] = ((header_len / 4) as u8) << 4;
        buf[13] = self.flags.0;
        buf[14..16].copy_from_slice(&self.window.to_be_bytes());
        buf[16..18].copy_from_slice(&[0, 0]);
        buf[18..20].copy_from_slice(&self.urgent.to_be_bytes());
        self.options.emit(&mut buf[MIN_HEADER_LEN..header_len]);
        buf[header_len..].copy_from_slice(self.payload);
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

    /// A SYN shaped like the ones Linux 6.x sends (`nc 10.0.0.2 80`), but
    /// written by hand, not captured: Linux's window (64240) and option
    /// layout (MSS 1460, SACK permitted, timestamps, NOP, window scale 7),
    /// with made-up source port, ISN and TSval. The checksum is left zero
    /// for `with_checksum` to fill in.
    static LINUX_SYN: [u8; 40] = [
        0xd4, 0x31, 0x00, 0x50, 0x6b, 0x8b, 0x45, 0x67, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01,
        0xe2, 0x40, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    fn with_checksum(mut seg: Vec<u8>) -> Vec<u8> {
        seg[16] = 0;
        seg[17] = 0;
        let sum = checksum::combine(&[
            checksum::pseudo_header(SRC, DST, PROTOCOL, seg.len() as u32),
            checksum::sum(&seg),
        ]);
        seg[16..18].copy_from_slice(&checksum::finish(sum).to_be_bytes());
        seg
    }

    #[test]
    fn parses_a_linux_syn() {
        let seg = with_checksum(LINUX_SYN.to_vec());
        let repr = TcpRepr::parse(SRC, DST, &seg, true).unwrap();
        assert_eq!(repr.src_port, 54321);
        assert_eq!(repr.dst_port, 80);
        assert_eq!(repr.seq, SeqNumber(0x6b8b4567));
        assert_eq!(repr.flags, TcpFlags::SYN);
        assert_eq!(repr.window, 64240);
        assert_eq!(repr.options.mss, Some(1460));
        assert_eq!(repr.options.window_scale, Some(7));
        assert!(repr.options.sack_permitted);
        assert_eq!(
            repr.options.timestamps,
            Some(Timestamps {
                tsval: 0x0001_e240,
                tsecr: 0
            })
        );
        assert_eq!(repr.seg_len(), 1);
        assert!(repr.payload.is_empty());
    }

    #[test]
    fn rejects_bad_checksum() {
        let mut seg = with_checksum(LINUX_SYN.to_vec());
        seg[4] ^= 1;
        assert_eq!(
            TcpRepr::parse(SRC, DST, &seg, true),
            Err(Error::BadChecksum)
        );
        assert!(TcpRepr::parse(SRC, DST, &seg, false).is_ok());
    }

    #[test]
    fn rejects_truncated_and_bad_offset() {
        let seg = with_checksum(LINUX_SYN.to_vec());
        for len in 0..20 {
            assert_eq!(
                TcpRepr::parse(SRC, DST, &seg[..len], false),
                Err(Error::Truncated)
            );
        }
        // Data offset says 40 bytes of header, buffer has 30.
        assert_eq!(
            TcpRepr::parse(SRC, DST, &seg[..30], false),
            Err(Error::Truncated)
        );
        let mut bad = seg.clone();
        bad[12] = 0x40; // 16-byte header
        assert_eq!(TcpRepr::parse(SRC, DST, &bad, false), Err(Error::BadLength));
    }

    #[test]
    fn rejects_option_running_past_header() {
        let mut seg = LINUX_SYN.to_vec();
        seg[21] = 30; // MSS option claims 30 bytes
        assert_eq!(TcpRepr::parse(SRC, DST, &seg, false), Err(Error::BadOption));
        seg[21] = 0; // zero length would loop forever
        assert_eq!(TcpRepr::parse(SRC, DST, &seg, false), Err(Error::BadOption));
    }

    #[test]
    fn skips_unknown_options() {
        let mut seg = LINUX_SYN.to_vec();
        // Turn the SACK-permitted option (04 02) into an unknown kind 0x1e.
        seg[24] = 0x1e;
        let repr = TcpRepr::parse(SRC, DST, &seg, false).unwrap();
        assert!(!repr.options.sack_permitted);
        assert_eq!(repr.options.window_scale, Some(7));
    }

    #[test]
    fn emit_then_parse_round_trips() {
        let mut options = TcpOptions {
            mss: Some(1460),
            window_scale: Some(9),
            sack_permitted: true,
            timestamps: Some(Timestamps { tsval: 7, tsecr: 9 }),
            ..TcpOptions::default()
        };
        options.push_sack(SackBlock {
            left: SeqNumber(100),
            right: SeqNumber(200),
        });
        let repr = TcpRepr {
            src_port: 80,
            dst_port: 50000,
            seq: SeqNumber(1),
            ack: SeqNumber(2),
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 1000,
            urgent: 0,
            options,
            payload: b"hello",
        };
        let mut buf = [0u8; 100];
        let n = repr.emit(DST, SRC, &mut buf).unwrap();
        assert_eq!(n, repr.buffer_len());
        assert_eq!(TcpRepr::parse(DST, SRC, &buf[..n], true), Ok(repr));
        assert_eq!(
            repr.emit(DST, SRC, &mut buf[..n - 1]),
            Err(Error::BufferTooSmall)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = TcpRepr::parse(SRC, DST, &data, true);
            let _ = TcpRepr::parse(SRC, DST, &data, false);
        }
    }
}
