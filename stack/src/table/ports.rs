//! Ephemeral port selection for active opens (RFC 6056).
//!
//! Ports come from the IANA dynamic range 49152-65535 (RFC 6335 §6). The
//! first candidate is chosen as RFC 6056 §3.3.3 ("Algorithm 3") does: a
//! keyed hash of the destination picks an offset, and a per-allocator
//! counter moves it on, so a remote observer cannot predict the next port
//! and consecutive connections to one server do not reuse a port soon.
//! Candidates are then walked in order until one is free.

use std::net::SocketAddr;

use crate::tcp::secret::{Message, SecretKey};

pub const EPHEMERAL_FIRST: u16 = 49152;
pub const EPHEMERAL_LAST: u16 = 65535;
const RANGE: u32 = (EPHEMERAL_LAST - EPHEMERAL_FIRST) as u32 + 1;

/// Picks ephemeral ports; the table tells it which are in use.
#[derive(Debug)]
pub struct PortAllocator {
    /// RFC 6056 §3.3.3: the key of the hash F(remote, secret).
    secret: SecretKey,
    next_step: u32,
}

impl PortAllocator {
    /// An allocator under a fresh random key.
    pub fn new() -> PortAllocator {
        PortAllocator {
            secret: SecretKey::random(),
            next_step: 0,
        }
    }

    /// An allocator under a fixed key: the same key and the same sequence
    /// of calls give the same ports (tests and reproducible simulations).
    pub fn with_key(key: [u8; 16]) -> PortAllocator {
        PortAllocator {
            secret: SecretKey::from_bytes(key),
            next_step: 0,
        }
    }

    /// The first free port in the candidate order for `remote`, where
    /// `in_use(port)` says whether a port is taken. `None` when all 16,384
    /// are taken.
    pub fn allocate(
        &mut self,
        remote: SocketAddr,
        mut in_use: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let mut msg = Message::new();
        msg.put_endpoint(remote);
        // Truncation is intended: any 32 bits of the hash pick the offset.
        let offset = (self.secret.hash(msg.as_slice()) as u32) % RANGE;
        for i in 0..RANGE {
            let step = self.next_step.wrapping_add(i);
            let port = EPHEMERAL_FIRST as u32 + (offset.wrapping_add(step) % RANGE);
            // invariant: the value is below EPHEMERAL_FIRST + RANGE = 65536.
            let port = port as u16;
            if !in_use(port) {
                // RFC 6056 Algorithm 3 increments by one per connection; we
                // also skip what we just probed, so the next search starts
                // past the busy run.
                self.next_step = step.wrapping_add(1);
                return Some(port);
            }
        }
        None
    }
}

impl Default for PortAllocator {
    fn default() -> Self {
        PortAllocator::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr};

    const REMOTE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);

    #[test]
    fn ports_are_in_the_dynamic_range_and_distinct() {
        let mut alloc = PortAllocator::new();
        let mut used = HashSet::new();
        for _ in 0..RANGE {
            let p = alloc.allocate(REMOTE, |p| used.contains(&p)).unwrap();
            assert!((EPHEMERAL_FIRST..=EPHEMERAL_LAST).contains(&p));
            assert!(used.insert(p), "port {p} handed out twice");
        }
        assert_eq!(alloc.allocate(REMOTE, |p| used.contains(&p)), None);
    }

    #[test]
    fn same_key_same_ports_other_key_other_ports() {
        let run = |key: [u8; 16]| {
            let mut alloc = PortAllocator::with_key(key);
            (0..8)
                .map(|_| alloc.allocate(REMOTE, |_| false).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run([1; 16]), run([1; 16]));
        assert_ne!(run([1; 16]), run([2; 16]));
    }

    #[test]
    fn consecutive_ports_move_on() {
        let mut alloc = PortAllocator::new();
        let a = alloc.allocate(REMOTE, |_| false).unwrap();
        let b = alloc.allocate(REMOTE, |_| false).unwrap();
        assert_ne!(a, b);
    }
}
