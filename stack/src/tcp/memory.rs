//! The memory budget: one pool of bytes that every connection's receive
//! side charges before it allocates and releases when it frees.
//!
//! A peer decides how much a receiver must hold: in-order data waits for
//! the reader, out-of-order data for the hole before it. Each connection's
//! window bounds it alone (`TcpConfig::recv_buffer`), but not the sum over
//! thousands of connections; the pool does. A charge that would take the
//! pool past its limit is refused: the connection then prunes its own
//! out-of-order data, stores less (a segment dropped is a segment lost, the
//! peer retransmits) and advertises no window it cannot back. A refusal
//! also raises the pool's *pressure* flag, on which the runtime reclaims
//! across connections (out-of-order data first, then the storage of
//! drained rings), as Linux prunes its out-of-order queues under
//! `tcp_mem` pressure.
//!
//! The pool counts bytes of storage (ring storage and out-of-order
//! chunks), not the bytes held in them, and besides them only the
//! fragments under reassembly (`crate::reassembly`, charged quietly: see
//! [`MemoryBudget::try_charge_quietly`]). The send side is filled by our
//! own application and bounded by `send_buffer`.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A shared memory budget; clones share one pool. `Default` is a pool
/// without a limit, for a connection outside a stack.
#[derive(Clone)]
pub struct MemoryBudget {
    pool: Arc<Pool>,
}

struct Pool {
    limit: usize,
    in_use: AtomicUsize,
    pressure: AtomicBool,
    ooo_pruned: AtomicU64,
    rings_shrunk: AtomicU64,
    drops: AtomicU64,
}

impl MemoryBudget {
    /// A pool of at most `limit` bytes.
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            pool: Arc::new(Pool {
                limit,
                in_use: AtomicUsize::new(0),
                pressure: AtomicBool::new(false),
                ooo_pruned: AtomicU64::new(0),
                rings_shrunk: AtomicU64::new(0),
                drops: AtomicU64::new(0),
            }),
        }
    }

    /// A pool that never refuses.
    pub fn unlimited() -> MemoryBudget {
        MemoryBudget::new(usize::MAX)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.pool.limit
    }

    /// Bytes charged and not yet released.
    pub fn in_use(&self) -> usize {
        self.pool.in_use.load(Ordering::Relaxed)
    }

    /// Bytes that may still be charged.
    pub fn available(&self) -> usize {
        self.limit().saturating_sub(self.in_use())
    }

    /// Charges `bytes` if the pool stays within its limit; otherwise
    /// charges nothing, raises the pressure flag and returns false.
    #[must_use]
    pub fn try_charge(&self, bytes: usize) -> bool {
        let ok = self.try_charge_quietly(bytes);
        if !ok {
            self.pool.pressure.store(true, Ordering::Relaxed);
        }
        ok
    }

    /// Charges `bytes` if the pool stays within its limit, as
    /// [`try_charge`](Self::try_charge), but a refusal leaves the
    /// pressure flag alone: for a user that makes room among its own
    /// (fragment reassembly, whose refusal must not make connections
    /// reclaim, see `crate::reassembly`).
    #[must_use]
    pub fn try_charge_quietly(&self, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let limit = self.pool.limit;
        self.pool
            .in_use
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&after| after <= limit)
            })
            .is_ok()
    }

    /// Returns `bytes` charged earlier.
    pub fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        // A release never exceeds what was charged; saturate regardless,
        // so a bookkeeping slip cannot wrap the gauge.
        let _ = self
            .pool
            .in_use
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    /// Whether a charge was refused since the last call; clears the flag.
    pub fn take_pressure(&self) -> bool {
        self.pool.pressure.swap(false, Ordering::Relaxed)
    }

    /// Counts out-of-order bytes discarded to free memory.
    pub fn count_pruned(&self, bytes: usize) {
        if bytes > 0 {
            self.pool
                .ooo_pruned
                .fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    /// Counts a drained ring that gave its storage back.
    pub fn count_shrunk(&self) {
        self.pool.rings_shrunk.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a segment whose data was not stored for lack of memory.
    pub fn count_drop(&self) {
        self.pool.drops.fetch_add(1, Ordering::Relaxed);
    }

    /// Out-of-order bytes pruned so far.
    pub fn ooo_pruned(&self) -> u64 {
        self.pool.ooo_pruned.load(Ordering::Relaxed)
    }

    /// Rings shrunk so far.
    pub fn rings_shrunk(&self) -> u64 {
        self.pool.rings_shrunk.load(Ordering::Relaxed)
    }

    /// Segments (or parts of them) dropped for lack of memory so far.
    pub fn drops(&self) -> u64 {
        self.pool.drops.load(Ordering::Relaxed)
    }

    /// Whether `self` and `other` are the same pool.
    pub fn same_pool(&self, other: &MemoryBudget) -> bool {
        Arc::ptr_eq(&self.pool, &other.pool)
    }
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget::unlimited()
    }
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("limit", &self.limit())
            .field("in_use", &self.in_use())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_within_the_limit_only() {
        let m = MemoryBudget::new(10_000);
        assert!(m.try_charge(6_000));
        assert!(!m.take_pressure());
        assert!(!m.try_charge(5_000), "would exceed the limit");
        assert_eq!(m.in_use(), 6_000);
        assert!(m.take_pressure());
        assert!(!m.take_pressure(), "the flag clears");
        assert!(m.try_charge(4_000));
        assert_eq!(m.available(), 0);
        assert!(!m.try_charge_quietly(1));
        assert!(!m.take_pressure(), "a quiet refusal raises no pressure");
        assert!(m.try_charge_quietly(0));
        m.release(10_000);
        assert_eq!(m.in_use(), 0);
        m.release(1);
        assert_eq!(m.in_use(), 0, "never below zero");
    }

    #[test]
    fn clones_share_one_pool() {
        let a = MemoryBudget::new(100);
        let b = a.clone();
        assert!(a.try_charge(60));
        assert!(!b.try_charge(60));
        assert!(a.same_pool(&b));
        assert!(!a.same_pool(&MemoryBudget::new(100)));
        assert!(MemoryBudget::unlimited().try_charge(usize::MAX));
    }
}
