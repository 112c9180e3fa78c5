//! A 128-bit secret and SipHash-2-4 under it: the keyed pseudo-random
//! function behind initial sequence numbers (RFC 6528 §3) and SYN cookies
//! (RFC 4987 §3.6).
//!
//! SipHash (Aumasson and Bernstein, 2012) is a keyed PRF designed for
//! short inputs such as a four-tuple. It is written out here because std's
//! `DefaultHasher` cannot be given a key (and its algorithm is
//! unspecified), and the stack takes no hashing dependency for 30 lines.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};

/// A secret key. Its `Debug` never prints it.
#[derive(Clone)]
pub struct SecretKey {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey { .. }")
    }
}

impl SecretKey {
    /// A fresh random key from `/dev/urandom`; if that cannot be read,
    /// from the OS-seeded keys of std's `RandomState` (which come from the
    /// same kernel source).
    pub fn random() -> SecretKey {
        SecretKey::from_bytes(random_key())
    }

    /// A fixed key, for tests and reproducible simulations.
    pub fn from_bytes(key: [u8; 16]) -> SecretKey {
        let (k0, k1) = split_key(&key);
        SecretKey { k0, k1 }
    }

    /// SipHash-2-4 of `msg` under this key.
    pub fn hash(&self, msg: &[u8]) -> u64 {
        siphash24(self.k0, self.k1, msg)
    }
}

/// A short message for [`SecretKey::hash`], built on the stack: at most
/// [`Message::CAPACITY`] bytes, the most a use here needs (an IPv6
/// four-tuple and two 32-bit words).
#[derive(Clone, Copy)]
pub struct Message {
    buf: [u8; Message::CAPACITY],
    len: usize,
}

impl Message {
    pub const CAPACITY: usize = 48;

    pub fn new() -> Message {
        Message {
            buf: [0; Message::CAPACITY],
            len: 0,
        }
    }

    /// Appends `bytes`; what would pass the capacity is left off (no
    /// caller comes near it).
    pub fn put(&mut self, bytes: &[u8]) -> &mut Message {
        let room = Message::CAPACITY - self.len;
        let n = bytes.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        self
    }

    /// Appends an address and port: 6 bytes for IPv4, 18 for IPv6.
    pub fn put_endpoint(&mut self, addr: SocketAddr) -> &mut Message {
        match addr.ip() {
            IpAddr::V4(ip) => self.put(&ip.octets()),
            IpAddr::V6(ip) => self.put(&ip.octets()),
        };
        self.put(&addr.port().to_be_bytes())
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for Message {
    fn default() -> Self {
        Message::new()
    }
}

/// The four-tuple as bytes: local ip, local port, remote ip, remote port.
pub fn four_tuple_bytes(local: SocketAddr, remote: SocketAddr) -> Message {
    let mut msg = Message::new();
    msg.put_endpoint(local).put_endpoint(remote);
    msg
}

/// A 128-bit key derived from `seed` for one `purpose` (a short label such
/// as `b"isn"`), so one seed gives a reproducible simulation different,
/// unrelated keys for each use. Not for production: a seed is not secret.
pub fn seeded_key(seed: u64, purpose: &[u8]) -> [u8; 16] {
    // SipHash keyed with the seed is a PRF of the label; the two halves
    // hash the label under two domain bytes.
    let mut msg = purpose.to_vec();
    msg.push(0);
    let lo = siphash24(seed, !seed, &msg);
    if let Some(last) = msg.last_mut() {
        *last = 1;
    }
    let hi = siphash24(seed, !seed, &msg);
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&lo.to_le_bytes());
    key[8..].copy_from_slice(&hi.to_le_bytes());
    key
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
    use super::*;

    const KEY: [u8; 16] = [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
        0x0f,
    ];

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
    fn seeded_keys_are_reproducible_and_differ_by_seed_and_purpose() {
        assert_eq!(seeded_key(7, b"isn"), seeded_key(7, b"isn"));
        assert_ne!(seeded_key(7, b"isn"), seeded_key(8, b"isn"));
        assert_ne!(seeded_key(7, b"isn"), seeded_key(7, b"ports"));
        let key = seeded_key(7, b"isn");
        assert_ne!(key[..8], key[8..], "the two halves are independent");
    }

    #[test]
    fn keyed_hash_matches_the_reference_and_hides_the_key() {
        let key = SecretKey::from_bytes(KEY);
        assert_eq!(key.hash(&[]), 0x726f_db47_dd0e_0e31);
        assert_eq!(format!("{key:?}"), "SecretKey { .. }");
        assert_ne!(
            SecretKey::random().hash(b"x"),
            SecretKey::random().hash(b"x")
        );
    }
}
