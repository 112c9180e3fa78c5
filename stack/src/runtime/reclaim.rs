//! Reclaiming receive memory across connections: when the memory budget
//! refused a charge (`tcp::memory`), every connection first gives up its
//! out-of-order data and then, if the pool is still above three quarters
//! of the budget, its drained rings' storage. Linux does the same under
//! `tcp_mem` pressure: it prunes out-of-order queues before anything a
//! reader is waiting for, and collapses idle buffers.
//!
//! A sweep locks every connection once or twice, so it runs at most once
//! per [`MIN_INTERVAL`] however often the budget refuses.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::socket::{Entry, TcpSocket};
use super::Inner;
use crate::time::Instant;

/// The shortest time between two sweeps.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// When the last sweep ran.
#[derive(Default)]
pub(crate) struct Reclaimer {
    last: Mutex<Option<Instant>>,
}

impl Reclaimer {
    /// Sweeps the connections if the budget refused a charge since the
    /// last sweep and that was at least [`MIN_INTERVAL`] ago.
    pub(crate) fn run(&self, inner: &Inner, now: Instant) {
        let memory = inner.stats.memory();
        {
            let mut last = self.last.lock();
            if last.is_some_and(|at| now < at + MIN_INTERVAL) || !memory.take_pressure() {
                return;
            }
            *last = Some(now);
        }
        let socks: Vec<Arc<TcpSocket>> = inner
            .entries()
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Tcp(sock) => Some(sock),
                _ => None,
            })
            .collect();
        for sock in &socks {
            let _ = sock.state.lock().conn.reclaim_memory(false);
        }
        if memory.in_use() <= memory.limit() / 4 * 3 {
            return;
        }
        for sock in &socks {
            let _ = sock.state.lock().conn.reclaim_memory(true);
        }
    }
}
