//! Initial sequence numbers per RFC 6528 (also RFC 9293 §3.4.1):
//! ISN = M + F(localip, localport, remoteip, remoteport, secretkey).
//!
//! M is a 4-microsecond timer, so successive connections on one 4-tuple get
//! increasing ISNs (old duplicates stay below the new ISN). F is SipHash-2-4
//! keyed with a 128-bit secret: an off-path attacker who does not know the key
//! cannot predict the ISN of another 4-tuple from ones it observes
//! (RFC 6528 §3). See [`super::secret`].
//!
//! The key lives as long as the generator; RFC 6528 §3 suggests changing it
//! only across reboots, which a new `IsnGenerator` per stack does.

use std::net::SocketAddr;

use super::secret::{four_tuple_bytes, SecretKey};
use crate::time::Instant;
use crate::wire::SeqNumber;

/// Produces RFC 6528 initial sequence numbers under one secret key.
#[derive(Clone, Debug)]
pub struct IsnGenerator {
    key: SecretKey,
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
        IsnGenerator {
            key: SecretKey::random(),
        }
    }

    /// A generator with a fixed key, for tests and reproducible simulations.
    pub fn with_key(key: [u8; 16]) -> Self {
        IsnGenerator {
            key: SecretKey::from_bytes(key),
        }
    }

    /// The ISN for a connection from `local` to `remote` opened at `now`.
    pub fn isn(&self, now: Instant, local: SocketAddr, remote: SocketAddr) -> SeqNumber {
        let msg = four_tuple_bytes(local, remote);
        // Truncation is intended: both terms live in the 32-bit sequence
        // space and wrap (RFC 6528 §3).
        let m = (now.total_micros() / 4) as u32;
        let f = self.key.hash(msg.as_slice()) as u32;
        SeqNumber(m.wrapping_add(f))
    }
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

    fn addr(a: u8, port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(10, 0, 0, a), port))
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
