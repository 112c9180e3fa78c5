//! Retired connections: those in TIME-WAIT, and orphans (dropped by the
//! application, still closing). They hold their place in the table on a
//! cap of their own, `Config::max_retired`, so that a peer closing
//! connections faster than TIME-WAIT ends (about 1,100 a second would
//! fill 65,536 places in 60 s) cannot lock new connections out: live
//! connections count against `Config::max_connections` alone. Past the
//! cap the oldest retired connection goes first: TIME-WAIT ends silently,
//! as Linux drops a TIME-WAIT bucket when `tcp_max_tw_buckets` overflows,
//! and an orphan is reset.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::socket::{TcpSocket, TcpState};
use super::Inner;
use crate::stats::bump;
use crate::tcp::state::State;

/// Retired connections, oldest first.
#[derive(Default)]
pub(crate) struct Retired {
    /// May hold sockets that have closed since (skipped when met); kept
    /// below twice the live count by [`Retired::push`].
    queue: Mutex<VecDeque<Weak<TcpSocket>>>,
    /// Retired connections still in the table.
    count: AtomicUsize,
}

impl Retired {
    /// Retired connections still in the table.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Marks `sock` (whose lock the caller holds as `st`) retired if it
    /// has just entered TIME-WAIT or been orphaned.
    pub(crate) fn note(&self, sock: &Arc<TcpSocket>, st: &mut TcpState) {
        let retiring = st.conn.state() == State::TimeWait || st.orphan_deadline.is_some();
        if st.retired || st.removed || st.conn.is_closed() || !retiring {
            return;
        }
        st.retired = true;
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut queue = self.queue.lock();
        queue.push_back(Arc::downgrade(sock));
        if queue.len() > 2 * self.count() + 64 {
            queue.retain(|w| w.strong_count() > 0);
        }
    }

    /// `st`'s connection left the table.
    pub(crate) fn removed(&self, st: &TcpState) {
        if st.retired {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Ends the oldest retired connection still in the table; false when
    /// there is none. Call it holding no socket's lock.
    fn evict_oldest(&self, inner: &Inner) -> bool {
        loop {
            let Some(weak) = self.queue.lock().pop_front() else {
                return false;
            };
            let Some(sock) = weak.upgrade() else { continue };
            let mut st = sock.state.lock();
            if st.removed || st.conn.is_closed() {
                continue;
            }
            if st.conn.state() == State::TimeWait {
                st.conn.end_time_wait();
                bump(&inner.stats.tcp_time_wait_evicted);
            } else {
                st.conn.abort();
                bump(&inner.stats.tcp_orphans_evicted);
            }
            inner.finish_activity(&sock, st);
            return true;
        }
    }

    /// Ends the oldest retired connections while there are more than
    /// `Config::max_retired`. Call it holding no socket's lock.
    pub(crate) fn trim(&self, inner: &Inner) {
        while self.count() > inner.config.max_retired {
            if !self.evict_oldest(inner) {
                break;
            }
        }
    }

    /// Before a new connection goes into the table: brings the retired
    /// ones back under their cap, and makes room among them if the table
    /// is full. Returns false when the live connections are at
    /// `Config::max_connections` (the new one must be refused). Call it
    /// holding no socket's lock.
    pub(crate) fn make_room(&self, inner: &Inner) -> bool {
        self.trim(inner);
        let total = inner.table.read().connection_count();
        if total.saturating_sub(self.count()) >= inner.config.max_connections {
            return false;
        }
        if total
            >= inner
                .config
                .max_connections
                .saturating_add(inner.config.max_retired)
        {
            self.evict_oldest(inner);
        }
        true
    }
}
