//! The live connections, each with the time it last made progress, so that
//! at the connection cap the one idle longest can be closed from the
//! accept loop (issue 12: "evict the longest-idle connection rather
//! than refuse the newest").
//!
//! A connection is closed from outside by its [`Closer`]: the demo aborts
//! the task serving it, which drops (closes) the stream. A trickling attacker makes progress too, but
//! a fresh client has just made more, so under a flood of slow peers the
//! newcomers push out the stalest of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Closes one connection from elsewhere: typically aborting the task that
/// serves it.
pub type Closer = Box<dyn Fn() + Send + Sync>;

/// Milliseconds since the registry started: the clock of `last_active`.
type Millis = u64;

struct Entry {
    last_active: Arc<AtomicU64>,
    close: Option<Closer>,
}

/// The live connections.
pub struct Registry {
    epoch: Instant,
    live: Mutex<HashMap<u64, Entry>>,
    next_id: AtomicU64,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            epoch: Instant::now(),
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }
}

/// Why [`Registry::admit`] did not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Registry {
    fn now(&self) -> Millis {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How many connections are registered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // A panic while holding the lock leaves a consistent map (every
        // operation is one insert or remove), so a poisoned lock is usable.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection, closable once it is given a closer
    /// ([`Registry::set_closer`]: its task is spawned after its slot is
    /// taken). With `max` already live, first closes the one that made
    /// progress least recently and has a closer; returns whether one was
    /// evicted. Without any to evict, refuses.
    ///
    /// # Errors
    /// [`Full`] when `max` connections are live and none can be closed.
    pub fn admit(self: &Arc<Self>, max: usize) -> Result<(Slot, bool), Full> {
        let now = self.now();
        let last_active = Arc::new(AtomicU64::new(now));
        let mut evicted = None;
        let id = {
            let mut live = self.lock();
            if live.len() >= max {
                let oldest = live
                    .iter()
                    .filter(|(_, e)| e.close.is_some())
                    .min_by_key(|(_, e)| e.last_active.load(Ordering::Relaxed))
                    .map(|(id, _)| *id);
                let Some(victim) = oldest.and_then(|id| live.remove(&id)) else {
                    return Err(Full);
                };
                evicted = Some(victim);
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            live.insert(
                id,
                Entry {
                    last_active: Arc::clone(&last_active),
                    close: None,
                },
            );
            id
        };
        let was_evicted = evicted.is_some();
        // Close outside the lock: a shutdown may take the socket's lock.
        if let Some(Entry {
            close: Some(close), ..
        }) = evicted
        {
            close();
        }
        Ok((
            Slot {
                id,
                registry: Arc::clone(self),
                last_active,
            },
            was_evicted,
        ))
    }
}

impl Registry {
    /// Gives the live connection `slot` its closer. Nothing if it is gone.
    pub fn set_closer(&self, slot: SlotId, close: Closer) {
        if let Some(entry) = self.lock().get_mut(&slot.0) {
            entry.close = Some(close);
        }
    }
}

/// Names a [`Slot`] without holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotId(u64);

/// One registered connection; leaving the registry on drop.
pub struct Slot {
    id: u64,
    registry: Arc<Registry>,
    last_active: Arc<AtomicU64>,
}

impl Slot {
    /// This slot's name, for [`Registry::set_closer`].
    pub fn id(&self) -> SlotId {
        SlotId(self.id)
    }

    /// Records progress now.
    pub fn touch(&self) {
        self.last_active
            .store(self.registry.now(), Ordering::Relaxed);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Already gone if it was evicted.
        self.registry.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn closer(count: &Arc<AtomicUsize>) -> Closer {
        let c = Arc::clone(count);
        Box::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Admits a connection under `max` and gives it `close`.
    fn admit_closable(reg: &Arc<Registry>, close: Closer, max: usize) -> Slot {
        let (slot, _) = reg.admit(max).expect("admitted");
        reg.set_closer(slot.id(), close);
        slot
    }

    #[test]
    fn at_the_cap_the_longest_idle_is_evicted() {
        let reg = Arc::new(Registry::default());
        let (a_closed, b_closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let a = admit_closable(&reg, closer(&a_closed), 2);
        let b = admit_closable(&reg, closer(&b_closed), 2);
        // b idles; a makes progress later.
        b.last_active.store(0, Ordering::Relaxed);
        a.last_active.store(1_000, Ordering::Relaxed);
        let (_c, evicted) = reg.admit(2).expect("c");
        assert!(evicted);
        assert_eq!(b_closed.load(Ordering::Relaxed), 1);
        assert_eq!(a_closed.load(Ordering::Relaxed), 0);
        assert_eq!(reg.len(), 2);
        drop(b);
        assert_eq!(reg.len(), 2, "an evicted slot is already gone");
        drop(a);
        assert_eq!(reg.len(), 1);
    }

    #[test]
    fn a_closer_given_after_admission_is_the_one_used() {
        let reg = Arc::new(Registry::default());
        let closed = Arc::new(AtomicUsize::new(0));
        let (a, _) = reg.admit(1).expect("a");
        reg.set_closer(a.id(), closer(&closed));
        let (_b, evicted) = reg.admit(1).expect("b evicts a");
        assert!(evicted);
        assert_eq!(closed.load(Ordering::Relaxed), 1);
        // A slot that is gone takes no closer.
        reg.set_closer(a.id(), closer(&closed));
        assert_eq!(reg.len(), 1);
    }

    #[test]
    fn without_a_closable_connection_the_newcomer_is_refused() {
        let reg = Arc::new(Registry::default());
        let _a = reg.admit(1).expect("a");
        assert_eq!(reg.admit(1).err(), Some(Full));
    }
}
