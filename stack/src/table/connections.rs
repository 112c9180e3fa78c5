//! The connections' map, keyed by four-tuple, with the hash computed
//! apart from the probe.
//!
//! The RX thread looks up a whole batch of segments at once
//! (`runtime::rx`): it hashes every four-tuple first, then probes. Split
//! so, each probe is a short loop body with no dependency on the one
//! before, and the processor keeps several probes' cache misses in flight
//! at once instead of waiting for each in turn, which is what keeps a
//! lookup flat when the table has outgrown the caches.
//!
//! The hash is keyed with a per-table random seed (hashbrown's default,
//! foldhash): a peer chooses every part of a four-tuple it sends, and a
//! predictable hash would let it pile its tuples into one probe chain.
//! foldhash is one folded multiply per word against SipHash-2-4's rounds,
//! which matters at tens of nanoseconds per segment; its seed is secret to
//! the peer, which is the defence that counts against such flooding.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::FourTuple;

/// Connections by four-tuple. See the module documentation.
#[derive(Debug)]
pub(super) struct Connections<T> {
    map: HashTable<(FourTuple, T)>,
    hasher: DefaultHashBuilder,
}

impl<T> Connections<T> {
    pub(super) fn new() -> Connections<T> {
        Connections {
            map: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// The hash `get_hashed` takes for `tuple`.
    #[inline]
    pub(super) fn hash(&self, tuple: &FourTuple) -> u64 {
        self.hasher.hash_one(tuple)
    }

    /// The connection with this four-tuple, whose [`hash`](Self::hash) is
    /// `hash`.
    #[inline]
    pub(super) fn get_hashed(&self, hash: u64, tuple: &FourTuple) -> Option<&T> {
        self.map.find(hash, |(k, _)| k == tuple).map(|(_, t)| t)
    }

    #[inline]
    pub(super) fn get(&self, tuple: &FourTuple) -> Option<&T> {
        self.get_hashed(self.hash(tuple), tuple)
    }

    /// Adds a connection whose four-tuple the map does not hold.
    pub(super) fn insert_new(&mut self, tuple: FourTuple, socket: T) {
        let hasher = &self.hasher;
        self.map
            .insert_unique(hasher.hash_one(tuple), (tuple, socket), |(k, _)| {
                hasher.hash_one(k)
            });
    }

    pub(super) fn remove(&mut self, tuple: &FourTuple) -> Option<T> {
        let hash = self.hash(tuple);
        let entry = self.map.find_entry(hash, |(k, _)| k == tuple).ok()?;
        Some(entry.remove().0 .1)
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&FourTuple, &T)> + '_ {
        self.map.iter().map(|(k, t)| (k, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

    fn tuple(port: u16) -> FourTuple {
        FourTuple {
            local: SocketAddr::from((Ipv4Addr::new(10, 0, 0, 2), 80)),
            remote: SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), port)),
        }
    }

    /// The same ports over IPv6.
    fn tuple6(port: u16) -> FourTuple {
        FourTuple {
            local: SocketAddr::from((Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2), 80)),
            remote: SocketAddr::from((Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1), port)),
        }
    }

    #[test]
    fn both_families_live_side_by_side() {
        let mut m = Connections::new();
        for p in 0..1000 {
            m.insert_new(tuple(p), p);
            m.insert_new(tuple6(p), p + 10_000);
        }
        assert_eq!(m.len(), 2000);
        for p in 0..1000 {
            assert_eq!(m.get(&tuple(p)), Some(&p));
            assert_eq!(m.get(&tuple6(p)), Some(&(p + 10_000)));
        }
        assert_eq!(m.remove(&tuple6(5)), Some(10_005));
        assert_eq!(m.get(&tuple6(5)), None);
        assert_eq!(m.get(&tuple(5)), Some(&5));
    }

    #[test]
    fn inserts_finds_and_removes_through_growth() {
        let mut m = Connections::new();
        for p in 0..5000 {
            m.insert_new(tuple(p), p);
        }
        assert_eq!(m.len(), 5000);
        for p in 0..5000 {
            assert_eq!(m.get(&tuple(p)), Some(&p));
            let h = m.hash(&tuple(p));
            assert_eq!(m.get_hashed(h, &tuple(p)), Some(&p));
        }
        assert_eq!(m.get(&tuple(6000)), None);
        for p in (0..5000).step_by(2) {
            assert_eq!(m.remove(&tuple(p)), Some(p));
        }
        assert_eq!(m.remove(&tuple(0)), None);
        assert_eq!(m.len(), 2500);
        assert!((0..5000).all(|p| m.get(&tuple(p)).is_some() == (p % 2 == 1)));
        assert_eq!(m.iter().count(), 2500);
    }

    #[test]
    fn two_tables_hash_the_same_tuple_differently() {
        // The seed is per table and secret: a peer cannot precompute
        // colliding tuples for one run from another.
        let (a, b) = (Connections::<()>::new(), Connections::<()>::new());
        let differ = (0..8).any(|p| a.hash(&tuple(p)) != b.hash(&tuple(p)));
        assert!(differ);
    }
}
