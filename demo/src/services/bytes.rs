//! The `/bytes/N` body: N bytes where byte i is `i mod 251`, written from one
//! small precomputed pattern so the memory used does not grow with N.
//!
//! 251 is prime, so the pattern never lines up with powers of two (segment
//! sizes, buffer sizes): a byte that is lost, duplicated or reordered
//! anywhere in a transfer changes what the receiver sees at that offset.

use std::io::{self, Write};

/// The period of the pattern.
pub const PERIOD: usize = 251;

/// The most bytes handed to one `write` call. A multiple of nothing in
/// particular: large enough that a bulk transfer costs few system calls.
pub const CHUNK: usize = 64 * 1024;

/// `CHUNK + PERIOD` bytes of the pattern, so that a chunk can start at any
/// phase `p < PERIOD` and still be one contiguous slice.
static PATTERN: [u8; CHUNK + PERIOD] = build_pattern();

const fn build_pattern() -> [u8; CHUNK + PERIOD] {
    let mut out = [0u8; CHUNK + PERIOD];
    let mut i = 0;
    while i < out.len() {
        // `i % PERIOD` < 251, so the cast is exact.
        out[i] = (i % PERIOD) as u8;
        i += 1;
    }
    out
}

/// Byte `i` of the stream: `i mod 251`.
pub fn pattern_byte(i: u64) -> u8 {
    // The remainder is < 251, so it fits in a u8.
    (i % PERIOD as u64) as u8
}

/// The pattern bytes at stream offsets `offset..offset + len`, for
/// `len <= CHUNK`; a shorter slice if `len` is larger.
pub fn pattern_slice(offset: u64, len: usize) -> &'static [u8] {
    let phase = (offset % PERIOD as u64) as usize;
    let len = len.min(CHUNK);
    // phase < PERIOD and len <= CHUNK, so the range is inside PATTERN.
    PATTERN.get(phase..phase + len).unwrap_or(&[])
}

/// Writes stream bytes `offset..offset + n` to `out` in chunks of at most
/// [`CHUNK`] bytes.
///
/// # Errors
/// Any error from `out`; the bytes before it may have been written.
pub fn write_pattern<W: Write + ?Sized>(out: &mut W, offset: u64, n: u64) -> io::Result<()> {
    let mut pos = offset;
    let end = offset.saturating_add(n);
    while pos < end {
        let len = usize::try_from(end - pos).unwrap_or(CHUNK).min(CHUNK);
        out.write_all(pattern_slice(pos, len))?;
        pos += len as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matches_definition_across_chunk_edges() {
        let mut out = Vec::new();
        let n = (CHUNK * 2 + 1000) as u64;
        write_pattern(&mut out, 0, n).expect("vec write");
        assert_eq!(out.len() as u64, n);
        for (i, b) in out.iter().enumerate() {
            assert_eq!(*b, (i % 251) as u8, "byte {i}");
        }
    }

    #[test]
    fn pattern_at_an_offset_continues_the_stream() {
        let mut out = Vec::new();
        write_pattern(&mut out, 1_000_003, 600).expect("vec write");
        for (i, b) in out.iter().enumerate() {
            assert_eq!(*b, pattern_byte(1_000_003 + i as u64));
        }
    }

    #[test]
    fn zero_bytes_writes_nothing() {
        let mut out = Vec::new();
        write_pattern(&mut out, 5, 0).expect("vec write");
        assert!(out.is_empty());
    }
}
