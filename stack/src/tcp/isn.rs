//! Initial sequence numbers per RFC 6528 (also RFC 9293 §3.4.1):
//! ISN = M + F(localip, localport, remoteip, remoteport, secretkey).
//!
//! M is a 4-microsecond timer, so successive connections on one 4-tuple get
//! increasing ISNs (old duplicates stay below the new ISN). F is SipHash-2-4
//! keyed with a 128-bit secret: an off-path attacker who does not know the key
//! cannot predict the ISN of another 4-tuple from ones it observes
//! (RFC 6528 §3). SipHash is a keyed PRF designed for exactly this kind of
//! short-input use; it is written out here because std's `DefaultHasher`
//! cannot be given a key (and its algorithm is unspecified), and the stack
//! takes no hashing dependency for 30 lines of code.
//!
//! The key lives as long as the generator; RFC 6528 §3 suggests changing it
//! only across reboots, which a new `IsnGenerator` per stack does.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::net::SocketAddrV4;

use crate::time::Instant;
use crate::wire::SeqNumber;

/// Produces RFC 6528 initial sequence numbers under one secret key.
#[derive(Clone)]
pub struct IsnGenerator {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str("IsnGenerator { .. }")
    }
}

impl Default for IsnGenerator {
    fn default() -> Self {
        IsnGenerator::new()
    }
}

impl IsnGenerator {
    /// A generator with a fresh random 128-bit key, read from
    /// `/dev/urandom`; if that fails, from the OS-seeded keys of std's
    /// `RandomState` (which come from the same kernel source).
    pub fn new() -> Self {
        IsnGenerator::with_key(random_key())
    }

    /// A generator with a fixed key, for tests and reproducible simulations.
    pub fn with_key(key: [u8; 16]) -> Self {
        let (k0, k1) = split_key(&key);
        IsnGenerator { k0, k1 }
    }

    /// The ISN for a connection from `local` to `remote` opened at `now`.
    pub fn isn(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> SeqNumber {
        let mut msg = [0u8; 12];
        msg[0..4].copy_from_slice(&local.ip().octets());
        msg[4..6].copy_from_slice(&local.port().to_be_bytes());
        msg[6..10].copy_from_slice(&remote.ip().octets());
        msg[10..12].copy_from_slice(&remote.port().to_be_bytes());
        // Truncation is intended: both terms live in the 32-bit sequence
        // space and wrap (RFC 6528 §3).
        let m = (now.total_micros() / 4) as u32;
        let f = siphash24(self.k0, self.k1, &msg) as u32;
        SeqNumber(m.wrapping_add(f))
    }
}

fn split_key(key: &[u8; 16]) -> (u64, u64) {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&key[..8]);
    hi.copy_from_slice(&key[8..]);
    (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
}

fn random_key() -> [u8; 16] {
    let mut key = [0u8; 16];
    let from_urandom = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key));
    if from_urandom.is_err() {
        // Each RandomState carries random SipHash keys; hashing a constant
        // with two of them yields 128 unpredictable bits.
        let a = RandomState::new().build_hasher().finish();
        let mut h = RandomState::new().build_hasher();
        h.write_u64(a);
        let b = h.finish();
        key[..8].copy_from_slice(&a.to_le_bytes());
        key[8..].copy_from_slice(&b.to_le_bytes());
    }
    key
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012) of `msg` under key (k0, k1).
fn siphash24(k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = msg.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let m = u64::from_le_bytes(word);
        v[3] ^= m;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= m;
    }
    // The last block: remaining bytes, then the length's low byte on top.
    let mut last = [0u8; 8];
    let rest = chunks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    last[7] = msg.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    sip_round(&mut v);
    sip_round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    use super::*;

    const KEY: [u8; 16] = [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
        0x0f,
    ];

    fn addr(a: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, a), port)
    }

    #[test]
    fn siphash_reference_vectors() {
        // From the SipHash paper, Appendix A: key 00..0f, message 00..0e.
        let (k0, k1) = split_key(&KEY);
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(k0, k1, &msg), 0xa129_ca61_49be_45e5);
        // First entries of the reference implementation's vectors.h.
        assert_eq!(siphash24(k0, k1, &[]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(k0, k1, &[0]), 0x74f8_39c5_93dc_67fd);
        let msg: Vec<u8> = (0..8).collect();
        assert_eq!(siphash24(k0, k1, &msg), 0x93f5_f579_9a93_2462);
    }

    #[test]
    fn same_key_tuple_and_time_give_same_isn() {
        let a = IsnGenerator::with_key(KEY);
        let b = IsnGenerator::with_key(KEY);
        let now = Instant::from_millis(1234);
        assert_eq!(
            a.isn(now, addr(2, 80), addr(1, 40000)),
            b.isn(now, addr(2, 80), addr(1, 40000))
        );
    }

    #[test]
    fn differs_across_four_tuples() {
        let g = IsnGenerator::with_key(KEY);
        let now = Instant::from_millis(1);
        let mut seen = HashSet::new();
        for port in 40000..40100 {
            assert!(seen.insert(g.isn(now, addr(2, 80), addr(1, port)).0));
        }
        // Each element of the tuple matters, including its direction.
        let base = g.isn(now, addr(2, 80), addr(1, 40000));
        assert_ne!(base, g.isn(now, addr(2, 81), addr(1, 40000)));
        assert_ne!(base, g.isn(now, addr(3, 80), addr(1, 40000)));
        assert_ne!(base, g.isn(now, addr(2, 80), addr(4, 40000)));
        assert_ne!(base, g.isn(now, addr(1, 40000), addr(2, 80)));
    }

    #[test]
    fn key_changes_isn() {
        let mut other = KEY;
        other[0] ^= 1;
        let now = Instant::from_millis(1);
        assert_ne!(
            IsnGenerator::with_key(KEY).isn(now, addr(2, 80), addr(1, 40000)),
            IsnGenerator::with_key(other).isn(now, addr(2, 80), addr(1, 40000))
        );
    }

    #[test]
    fn increases_with_a_four_microsecond_clock() {
        let g = IsnGenerator::with_key(KEY);
        let (l, r) = (addr(2, 80), addr(1, 40000));
        let t0 = Instant::from_micros(1_000_000);
        let base = g.isn(t0, l, r);
        assert_eq!(g.isn(Instant::from_micros(1_000_003), l, r), base);
        assert_eq!(g.isn(Instant::from_micros(1_000_004), l, r), base + 1);
        let later = g.isn(Instant::from_micros(1_000_000 + 4_000_000), l, r);
        assert_eq!(later - base, 1_000_000);
        assert!(later > base);
    }

    #[test]
    fn random_keys_differ() {
        let now = Instant::from_millis(1);
        let a = IsnGenerator::new().isn(now, addr(2, 80), addr(1, 40000));
        let b = IsnGenerator::new().isn(now, addr(2, 80), addr(1, 40000));
        // 2^-32 chance of a false failure.
        assert_ne!(a, b);
    }
}
