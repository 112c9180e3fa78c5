//! The `/bytes/N` body: N bytes where byte i is `i mod 251`, written from one
//! small precomputed pattern so the memory used does not grow with N.
//!
//! 251 is prime, so the pattern never lines up with powers of two (segment
//! sizes, buffer sizes): a byte that is lost, duplicated or reordered
//! anywhere in a transfer changes what the receiver sees at that offset.

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

/// The `n` bytes of the pattern from `offset` on, as slices of at most
/// [`CHUNK`] bytes of the static pattern (nothing is copied).
pub fn chunks(offset: u64, n: u64) -> impl Iterator<Item = &'static [u8]> {
    let end = offset.saturating_add(n);
    let mut pos = offset;
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let len = usize::try_from(end - pos).unwrap_or(CHUNK).min(CHUNK);
        let chunk = pattern_slice(pos, len);
        pos += chunk.len() as u64;
        (!chunk.is_empty()).then_some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matches_definition_across_chunk_edges() {
        let n = (CHUNK * 2 + 1000) as u64;
        let out: Vec<u8> = chunks(0, n).flatten().copied().collect();
        assert_eq!(out.len() as u64, n);
        for (i, b) in out.iter().enumerate() {
            assert_eq!(*b, (i % 251) as u8, "byte {i}");
        }
    }

    #[test]
    fn pattern_at_an_offset_continues_the_stream() {
        let out: Vec<u8> = chunks(1_000_003, 600).flatten().copied().collect();
        assert_eq!(out.len(), 600);
        for (i, b) in out.iter().enumerate() {
            assert_eq!(*b, pattern_byte(1_000_003 + i as u64));
        }
    }

    #[test]
    fn zero_bytes_writes_nothing() {
        assert_eq!(chunks(5, 0).count(), 0);
    }
}
