//! IP fragment reassembly (RFC 791 §3.2, RFC 815, RFC 1122 §3.3.2), sans-IO.
//!
//! A [`Reassembler`] collects the fragments of datagrams under a key
//! (for IPv4 [`FragKey::V4`]: source, destination, protocol and
//! identification, RFC 791; for IPv6 [`FragKey::V6`]: source, destination
//! and identification, RFC 8200 §4.5) and hands back each datagram once
//! its fragments cover it. Both families share one reassembler and its
//! bounds; each datagram keeps the [`Rules`] of its family (timeout,
//! longest datagram, shortest header). It knows nothing of header formats: the caller
//! passes the fragment's byte offset, its More Fragments flag, its data
//! and, with the first fragment (offset 0), the header bytes the datagram
//! is rebuilt with. Time is an argument ([`Reassembler::insert`],
//! [`Reassembler::expire`]); the runtime drives the timeout from its timer.
//!
//! The rules:
//!
//! - Fragments may arrive in any order. A fragment that repeats one
//!   already held (same offset and length) is ignored.
//! - A fragment that overlaps another without repeating it drops the
//!   whole datagram, and every fragment of it that arrives later until
//!   its timeout: RFC 5722 §4 for IPv6, applied to IPv4 too, since an
//!   overlap is either an error or an attempt to slip a different header
//!   past a filter.
//! - Inconsistent lengths drop the whole datagram the same way: a
//!   fragment other than the last whose length is not a multiple of 8
//!   (RFC 791), an empty fragment, two last fragments that disagree,
//!   data past the end a last fragment set, or a datagram that would be
//!   longer than `max_len` (65,535 bytes for IPv4).
//! - Each datagram has its `timeout` from its first fragment's arrival to
//!   complete (RFC 791's reassembly timer, RFC 1122 §3.3.2; 60 s for
//!   IPv6, RFC 8200 §4.5). On timeout
//!   [`Reassembler::expire`] reports the ones whose first fragment was
//!   received, so the caller can send ICMP (or ICMPv6) Time Exceeded.
//!
//! DoS warning: at most `max_datagrams` datagrams are held at once, and at
//! most `max_bytes` bytes are charged to them (their buffers and
//! bookkeeping, see [`datagram_charge`]). When a new datagram or a
//! growing one would pass a bound, the oldest datagram gives way (counted
//! by [`Inserted::evicted`]): a flood of fragments that never complete
//! pushes out only its own kind and cannot lock out real fragmented
//! traffic, which completes in the time a flood takes to cycle the table.
//!
//! Memory: the same bytes are charged to a [`MemoryBudget`]
//! ([`Reassembler::with_budget`]), in a stack the one its TCP connections'
//! receive storage is charged to, so that one number bounds both. A
//! charge the budget refuses is taken like one past `max_bytes`: the
//! oldest datagram gives way, and when none is left to, the fragment is
//! dropped ([`Outcome::NoMemory`]). `max_bytes` stays the reassembler's
//! own cap within the budget: fragments, which anyone can send and which
//! need not ever complete, take at most that much of it, and never the
//! room TCP's receivers need. What a datagram was charged is released
//! exactly once, when it completes, is dropped (overlap, inconsistency:
//! down to its bookkeeping; timeout, eviction: all of it), or the
//! reassembler is cleared or dropped. A refusal does not raise the
//! budget's pressure flag, on which connections give up out-of-order data
//! and ring storage: fragments, which anyone can forge, make room among
//! themselves and must not make TCP discard what it holds (Linux keeps
//! fragment memory, `ipfrag_high_thresh`, apart from `tcp_mem` for the
//! same reason).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::tcp::memory::MemoryBudget;
use crate::time::Instant;

/// Which datagram a fragment belongs to (RFC 791 §3.2: "the fragments of
/// a datagram are identified by source, destination, protocol and
/// identification"; RFC 8200 §4.5: IPv6's by source, destination and
/// the fragment header's identification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragKey {
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: u8,
        id: u16,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        id: u32,
    },
}

/// The bounds a [`Reassembler`] keeps, and the [`Rules`] of the datagrams
/// [`Reassembler::insert`] takes (others come with
/// [`Reassembler::insert_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Datagrams under reassembly at once, counting those dropped for an
    /// overlap that still wait out their timeout.
    pub max_datagrams: usize,
    /// Bytes charged to all datagrams under reassembly.
    pub max_bytes: usize,
    /// From a datagram's first fragment to its expiry.
    pub timeout: Duration,
    /// The longest datagram, header included (65,535 for IPv4).
    pub max_len: usize,
    /// The shortest header a datagram has (20 for IPv4): what a datagram
    /// whose first fragment is still missing is assumed to carry.
    pub min_head: usize,
}

impl Limits {
    /// The rules `insert` applies: `timeout`, `max_len` and `min_head`.
    pub fn rules(&self) -> Rules {
        Rules {
            timeout: self.timeout,
            max_len: self.max_len,
            min_head: self.min_head,
        }
    }
}

/// What a datagram's family decides, kept with each datagram: fragments
/// of IPv4 and IPv6 share one reassembler and its bounds, not their
/// timeout or lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// From the datagram's first fragment to its expiry.
    pub timeout: Duration,
    /// The longest datagram, its head included (65,535 for IPv4; for
    /// IPv6 the fixed header, the fragment header and a 65,535-byte
    /// payload).
    pub max_len: usize,
    /// The shortest head a datagram has (20 for IPv4, 48 for IPv6): what
    /// a datagram whose first fragment is still missing is assumed to
    /// carry.
    pub min_head: usize,
}

/// One fragment as the caller parsed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// Where `data` starts in the datagram's payload, in bytes.
    pub offset: usize,
    /// More Fragments: this is not the last one.
    pub more: bool,
    /// The header to rebuild the datagram with; read from the fragment at
    /// offset 0 only (RFC 791: the first fragment's header, options
    /// included, is the datagram's).
    pub head: &'a [u8],
    pub data: &'a [u8],
}

/// What became of a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Held; the datagram still misses fragments.
    Pending,
    /// A repeat of a fragment already held: ignored.
    Duplicate,
    /// The datagram is whole.
    Complete(Datagram),
    /// It overlaps a fragment already held: the datagram is dropped.
    Overlap,
    /// Its lengths are inconsistent (see the module docs): the datagram
    /// is dropped.
    Invalid,
    /// Its datagram was dropped earlier (overlap, inconsistency) and is
    /// remembered until its timeout: ignored.
    Discarded,
    /// Its datagram could not be kept within `max_bytes` even alone, or
    /// reassembly is off (`max_datagrams` is 0): dropped.
    TooLarge,
    /// The memory budget refused its bytes even once every other datagram
    /// had given way: dropped, and its datagram with it.
    NoMemory,
}

/// A reassembled datagram: `bytes[..head_len]` is the first fragment's
/// header (still as it arrived: the caller fixes its length and fragment
/// fields), the rest the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub bytes: Vec<u8>,
    pub head_len: usize,
}

/// The result of [`Reassembler::insert`].
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub struct Inserted {
    pub outcome: Outcome,
    /// Older datagrams dropped to make room for this fragment.
    pub evicted: usize,
}

/// A datagram whose timeout passed before it completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired<K> {
    pub key: K,
    /// When its first fragment (offset 0) had arrived: that fragment's
    /// header and up to 8 bytes of its data, the quote of an ICMP Time
    /// Exceeded message (RFC 792). `None` otherwise: no message is sent
    /// (RFC 1122 §3.3.2 "if fragment zero has not been received").
    pub quote: Option<Vec<u8>>,
}

/// Bytes charged to every datagram besides its buffers.
const BASE_CHARGE: usize = 128;
/// Bytes of bookkeeping per fragment held.
const RANGE_CHARGE: usize = std::mem::size_of::<(u32, u32)>();
/// The least data of each fragment but the last: RFC 791's unit.
const UNIT: usize = 8;

/// The most a datagram of at most `max_len` bytes can be charged: its
/// buffer and header with room to grow, and one range per 8 bytes with
/// room to grow.
/// A `max_bytes` below this could refuse a legitimate datagram.
pub const fn datagram_charge(max_len: usize) -> usize {
    BASE_CHARGE + 3 * max_len + 2 * (max_len / UNIT + 1) * RANGE_CHARGE
}

/// Datagrams under reassembly, oldest first.
#[derive(Debug)]
pub struct Reassembler<K> {
    limits: Limits,
    /// SipHash (std's default): the keys are chosen by peers, so a
    /// keyed hash keeps them from colliding on purpose.
    datagrams: HashMap<K, Entry>,
    /// Keys by arrival of their first fragment: the oldest first, for
    /// eviction.
    order: BTreeMap<u64, K>,
    /// (expiry, arrival) of every datagram: the first expires first (the
    /// families' timeouts differ, so this is not `order`).
    deadlines: BTreeSet<(Instant, u64)>,
    next_seq: u64,
    /// The sum of every entry's `charged`: what this reassembler holds of
    /// `budget`, to the byte.
    bytes: usize,
    /// Charged with `bytes` (see the module docs).
    budget: MemoryBudget,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    expires: Instant,
    rules: Rules,
    /// What this datagram is charged, in `bytes` and the budget: what its
    /// buffers were reserved for ([`Parts::charge`], or [`BASE_CHARGE`]
    /// once its parts are gone). Kept, not recomputed, so that what is
    /// released is exactly what was charged.
    charged: usize,
    /// `None`: dropped (overlap or inconsistency), remembered so its
    /// late fragments are discarded too.
    parts: Option<Parts>,
}

#[derive(Debug, Default)]
struct Parts {
    /// The first fragment's header; empty until it arrives.
    head: Vec<u8>,
    /// Payload bytes by offset; zero where nothing arrived yet.
    payload: Vec<u8>,
    /// Byte ranges held, sorted and disjoint.
    ranges: Vec<(u32, u32)>,
    /// The sum of the ranges' lengths.
    received: usize,
    /// The payload length, once the last fragment has arrived.
    total: Option<usize>,
}

impl Parts {
    fn charge(&self) -> usize {
        BASE_CHARGE
            + self.head.capacity()
            + self.payload.capacity()
            + self.ranges.capacity() * RANGE_CHARGE
    }
}

/// How a fragment fits the ranges held.
enum Fit {
    New(usize),
    Duplicate,
    Overlap,
}

impl<K: Clone + Eq + Hash> Reassembler<K> {
    /// A reassembler bounded by `limits` alone (its budget never refuses).
    pub fn new(limits: Limits) -> Reassembler<K> {
        Reassembler::with_budget(limits, MemoryBudget::unlimited())
    }

    /// A reassembler that charges what it holds to `budget` besides.
    pub fn with_budget(limits: Limits, budget: MemoryBudget) -> Reassembler<K> {
        Reassembler {
            limits,
            datagrams: HashMap::new(),
            order: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            next_seq: 0,
            bytes: 0,
            budget,
        }
    }

    /// The budget charged.
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// Datagrams held (including dropped ones waiting out their timeout).
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Bytes charged to the datagrams held, here and to the budget; at
    /// most `max_bytes`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// When the oldest datagram expires: the next call to
    /// [`expire`](Self::expire) that finds something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Takes one fragment of datagram `key`, arrived at `now`, under the
    /// rules of `Limits` ([`Limits::rules`]).
    pub fn insert(&mut self, now: Instant, key: K, frag: Fragment<'_>) -> Inserted {
        let rules = self.limits.rules();
        self.insert_with(now, key, rules, frag)
    }

    /// Takes one fragment of datagram `key`, arrived at `now`; `rules`
    /// are the datagram's when this fragment starts it, and ignored
    /// otherwise.
    pub fn insert_with(
        &mut self,
        now: Instant,
        key: K,
        rules: Rules,
        frag: Fragment<'_>,
    ) -> Inserted {
        let mut evicted = 0;
        if !self.datagrams.contains_key(&key) {
            if self.limits.max_datagrams == 0 {
                return Inserted {
                    outcome: Outcome::TooLarge,
                    evicted,
                };
            }
            while self.datagrams.len() >= self.limits.max_datagrams {
                if !self.evict_oldest(None) {
                    return Inserted {
                        outcome: Outcome::TooLarge,
                        evicted,
                    };
                }
                evicted += 1;
            }
            if let Err(outcome) = self.reserve(BASE_CHARGE, None, &mut evicted) {
                return Inserted { outcome, evicted };
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            let expires = now + rules.timeout;
            self.order.insert(seq, key.clone());
            self.deadlines.insert((expires, seq));
            self.datagrams.insert(
                key.clone(),
                Entry {
                    seq,
                    expires,
                    rules,
                    charged: BASE_CHARGE,
                    parts: Some(Parts::default()),
                },
            );
        }
        let outcome = self.place(&key, frag, &mut evicted);
        Inserted { outcome, evicted }
    }

    /// Puts `frag` into `key`'s datagram, which exists.
    fn place(&mut self, key: &K, frag: Fragment<'_>, evicted: &mut usize) -> Outcome {
        let Some(entry) = self.datagrams.get(key) else {
            return Outcome::Discarded;
        };
        let Some(parts) = &entry.parts else {
            return Outcome::Discarded;
        };
        let rules = entry.rules;
        let start = frag.offset;
        let end = start.saturating_add(frag.data.len());
        let head_len = if start == 0 {
            frag.head.len()
        } else if parts.head.is_empty() {
            rules.min_head
        } else {
            parts.head.len()
        };
        // The farthest byte the datagram will hold, for the length bound.
        let far = parts
            .ranges
            .last()
            .map_or(0, |r| r.1 as usize)
            .max(parts.total.unwrap_or(0))
            .max(end);
        let inconsistent = frag.data.is_empty()
            || (frag.more && !frag.data.len().is_multiple_of(UNIT))
            || head_len.saturating_add(far) > rules.max_len
            || u32::try_from(end).is_err()
            || match (parts.total, frag.more) {
                (Some(total), true) => end > total,
                (Some(total), false) => end != total,
                (None, true) => false,
                // The last fragment must end past everything held.
                (None, false) => parts.ranges.last().is_some_and(|r| r.1 as usize > end),
            };
        if inconsistent {
            self.kill(key);
            return Outcome::Invalid;
        }
        let at = match fit(&parts.ranges, start, end) {
            Fit::Duplicate => return Outcome::Duplicate,
            Fit::Overlap => {
                self.kill(key);
                return Outcome::Overlap;
            }
            Fit::New(at) => at,
        };

        // What the datagram will be charged once this fragment is in, and
        // room for it made by evicting older datagrams.
        let old_charge = entry.charged;
        let payload_cap = grown(parts.payload.capacity(), end, parts.total);
        let ranges_cap = if parts.ranges.len() == parts.ranges.capacity() {
            (parts.ranges.capacity() * 2).max(4)
        } else {
            parts.ranges.capacity()
        };
        let head_cap = if start == 0 {
            frag.head.len()
        } else {
            parts.head.capacity()
        };
        let new_charge = BASE_CHARGE + head_cap + payload_cap + ranges_cap * RANGE_CHARGE;
        let grow = new_charge.saturating_sub(old_charge);
        if let Err(outcome) = self.reserve(grow, Some(key), evicted) {
            self.remove(key);
            return outcome;
        }

        let Some(entry) = self.datagrams.get_mut(key) else {
            // invariant: `reserve` keeps `key`. Should it not, hand the
            // bytes reserved for it back.
            self.unreserve(grow);
            return Outcome::Discarded;
        };
        entry.charged += grow;
        let Some(parts) = entry.parts.as_mut() else {
            return Outcome::Discarded;
        };
        if start == 0 {
            parts.head = frag.head.to_vec();
        }
        if parts.payload.len() < end {
            let more = payload_cap.saturating_sub(parts.payload.len());
            parts.payload.reserve_exact(more);
            parts.payload.resize(end, 0);
        }
        parts.payload[start..end].copy_from_slice(frag.data);
        if parts.ranges.len() == parts.ranges.capacity() {
            parts.ranges.reserve_exact(ranges_cap - parts.ranges.len());
        }
        // invariant: `end` fits a u32 (checked above), and so does `start`.
        parts.ranges.insert(at, (start as u32, end as u32));
        parts.received += frag.data.len();
        if !frag.more {
            parts.total = Some(end);
        }
        let charge = parts.charge();
        let done = parts.total == Some(parts.received);
        // std's vectors get what `reserve_exact` and `to_vec` ask for, so
        // `charge` is what was reserved. Should an allocator round up, the
        // surplus is charged too, or the datagram goes; should it have
        // needed less, the rest goes back.
        let reserved = entry.charged;
        if charge < reserved {
            entry.charged = charge;
            self.unreserve(reserved - charge);
        } else if charge > reserved {
            if let Err(outcome) = self.reserve(charge - reserved, Some(key), evicted) {
                self.remove(key);
                return outcome;
            }
            if let Some(entry) = self.datagrams.get_mut(key) {
                entry.charged = charge;
            }
        }

        if !done {
            return Outcome::Pending;
        }
        let Some(entry) = self.remove(key) else {
            return Outcome::Discarded;
        };
        let Some(parts) = entry.parts else {
            return Outcome::Discarded;
        };
        let head_len = parts.head.len();
        let mut bytes = Vec::with_capacity(head_len + parts.received);
        bytes.extend_from_slice(&parts.head);
        bytes.extend_from_slice(&parts.payload[..parts.received]);
        Outcome::Complete(Datagram { bytes, head_len })
    }

    /// Drops every datagram whose timeout has passed at `now`, oldest
    /// first, and reports those that were still being collected.
    pub fn expire(&mut self, now: Instant, mut on_expired: impl FnMut(Expired<K>)) {
        while let Some(&(at, seq)) = self.deadlines.first() {
            if at > now {
                break;
            }
            let Some(key) = self.order.get(&seq).cloned() else {
                // invariant: `deadlines` and `order` hold the same
                // datagrams; should they not, forget the stray deadline.
                self.deadlines.pop_first();
                continue;
            };
            let Some(entry) = self.remove(&key) else {
                // invariant: `order` and `datagrams` hold the same keys;
                // should they not, forget the stray key.
                self.order.remove(&seq);
                self.deadlines.pop_first();
                continue;
            };
            if let Some(parts) = entry.parts {
                let quote = parts.ranges.first().filter(|r| r.0 == 0).map(|r| {
                    let data = (r.1 as usize).min(UNIT);
                    let mut q = parts.head.clone();
                    q.extend_from_slice(parts.payload.get(..data).unwrap_or(&[]));
                    q
                });
                on_expired(Expired { key, quote });
            }
        }
    }

    /// Drops every datagram, releasing all that was charged for them.
    pub fn clear(&mut self) {
        self.datagrams.clear();
        self.order.clear();
        self.deadlines.clear();
        self.unreserve(self.bytes);
    }

    /// Makes room for `grow` more bytes within `max_bytes` and the budget,
    /// the oldest datagrams other than `keep` giving way (counted in
    /// `evicted`), and charges them to both. The outcome of the fragment
    /// when there is no room even with every other datagram gone:
    /// `TooLarge` past `max_bytes`, `NoMemory` when the budget refused.
    fn reserve(
        &mut self,
        grow: usize,
        keep: Option<&K>,
        evicted: &mut usize,
    ) -> Result<(), Outcome> {
        loop {
            let within_cap = self
                .bytes
                .checked_add(grow)
                .is_some_and(|after| after <= self.limits.max_bytes);
            if within_cap && self.budget.try_charge_quietly(grow) {
                self.bytes += grow;
                return Ok(());
            }
            if !self.evict_oldest(keep) {
                return Err(if within_cap {
                    Outcome::NoMemory
                } else {
                    Outcome::TooLarge
                });
            }
            *evicted += 1;
        }
    }

    /// Releases `bytes` of what `reserve` charged.
    fn unreserve(&mut self, bytes: usize) {
        // Never more than is held: a bookkeeping slip here must not hand
        // back bytes that other users of the budget charged.
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        self.budget.release(bytes);
    }

    /// Frees `key`'s buffers and remembers it as dropped: it keeps only
    /// its bookkeeping's charge.
    fn kill(&mut self, key: &K) {
        let Some(entry) = self.datagrams.get_mut(key) else {
            return;
        };
        entry.parts = None;
        let freed = entry.charged.saturating_sub(BASE_CHARGE);
        entry.charged -= freed;
        self.unreserve(freed);
    }

    /// Forgets `key`'s datagram, releasing all it was charged.
    fn remove(&mut self, key: &K) -> Option<Entry> {
        let entry = self.datagrams.remove(key)?;
        self.order.remove(&entry.seq);
        self.deadlines.remove(&(entry.expires, entry.seq));
        self.unreserve(entry.charged);
        // Nothing held, nothing charged: the budget is back where it was
        // before the first fragment came.
        debug_assert!(!self.datagrams.is_empty() || self.bytes == 0);
        Some(entry)
    }

    /// Drops the oldest datagram other than `keep`. False when there is
    /// none.
    fn evict_oldest(&mut self, keep: Option<&K>) -> bool {
        let victim = self.order.values().find(|k| Some(*k) != keep).cloned();
        match victim {
            Some(k) => self.remove(&k).is_some(),
            None => false,
        }
    }
}

impl<K> Drop for Reassembler<K> {
    fn drop(&mut self) {
        // The budget outlives us when shared (a stack's, held by its
        // connections and stats too): give back what is still held.
        self.budget.release(self.bytes);
    }
}

/// Where `[start, end)` goes among the sorted, disjoint `ranges`.
fn fit(ranges: &[(u32, u32)], start: usize, end: usize) -> Fit {
    // The first range that ends after `start`: the only one that can
    // overlap it from the left, and anything it overlaps comes after.
    let at = ranges.partition_point(|r| (r.1 as usize) <= start);
    match ranges.get(at) {
        Some(&(s, e)) if (s as usize, e as usize) == (start, end) => Fit::Duplicate,
        Some(&(s, _)) if (s as usize) < end => Fit::Overlap,
        _ => Fit::New(at),
    }
}

/// The payload capacity once it must hold `end` bytes: the exact length
/// when it is known, else doubling (so fragments arriving in order do not
/// copy the buffer each time) but never more than twice `end`.
fn grown(cap: usize, end: usize, total: Option<usize>) -> usize {
    if end <= cap {
        return cap;
    }
    match total {
        Some(total) => total.max(end),
        None => (cap * 2).clamp(end, end * 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: Instant = Instant::ZERO;
    const HEAD: &[u8] = b"HEADER-OF-20-BYTES!!";

    fn limits() -> Limits {
        Limits {
            max_datagrams: 64,
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(30),
            max_len: 0xffff,
            min_head: 20,
        }
    }

    fn key(id: u16) -> FragKey {
        FragKey::V4 {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: 17,
            id,
        }
    }

    fn frag(offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            offset,
            more,
            head: if offset == 0 { HEAD } else { &[] },
            data,
        }
    }

    /// `payload` cut into fragments of `size` bytes (a multiple of 8).
    fn cut(payload: &[u8], size: usize) -> Vec<Fragment<'_>> {
        payload
            .chunks(size)
            .enumerate()
            .map(|(i, c)| frag(i * size, (i + 1) * size < payload.len(), c))
            .collect()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn whole(payload: &[u8]) -> Outcome {
        let mut bytes = HEAD.to_vec();
        bytes.extend_from_slice(payload);
        Outcome::Complete(Datagram {
            bytes,
            head_len: HEAD.len(),
        })
    }

    #[track_caller]
    fn put(r: &mut Reassembler<FragKey>, id: u16, f: Fragment<'_>) -> Outcome {
        r.insert(T0, key(id), f).outcome
    }

    // ---- arrival order and duplicates ----------------------------------

    #[test]
    fn in_order_fragments_complete_the_datagram() {
        let payload = pattern(4000);
        let mut r = Reassembler::new(limits());
        let frags = cut(&payload, 1480);
        assert_eq!(put(&mut r, 1, frags[0]), Outcome::Pending);
        assert_eq!(put(&mut r, 1, frags[1]), Outcome::Pending);
        assert_eq!(put(&mut r, 1, frags[2]), whole(&payload));
        assert!(r.is_empty());
        assert_eq!(r.bytes(), 0);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn reverse_order_completes_too() {
        let payload = pattern(4000);
        let mut r = Reassembler::new(limits());
        let frags = cut(&payload, 1480);
        assert_eq!(put(&mut r, 1, frags[2]), Outcome::Pending);
        assert_eq!(put(&mut r, 1, frags[1]), Outcome::Pending);
        assert_eq!(put(&mut r, 1, frags[0]), whole(&payload));
    }

    #[test]
    fn exact_duplicates_are_ignored() {
        let payload = pattern(100);
        let mut r = Reassembler::new(limits());
        let frags = cut(&payload, 48);
        assert_eq!(put(&mut r, 1, frags[1]), Outcome::Pending);
        assert_eq!(put(&mut r, 1, frags[1]), Outcome::Duplicate);
        assert_eq!(put(&mut r, 1, frags[0]), Outcome::Pending);
        assert_eq!(put(&mut r, 1, frags[0]), Outcome::Duplicate);
        assert_eq!(put(&mut r, 1, frags[2]), whole(&payload));
    }

    #[test]
    fn datagrams_are_kept_apart_by_key() {
        let a = pattern(64);
        let b: Vec<u8> = a.iter().map(|x| !x).collect();
        let mut r = Reassembler::new(limits());
        assert_eq!(put(&mut r, 1, frag(0, true, &a[..32])), Outcome::Pending);
        assert_eq!(put(&mut r, 2, frag(32, false, &b[32..])), Outcome::Pending);
        assert_eq!(put(&mut r, 2, frag(0, true, &b[..32])), whole(&b));
        assert_eq!(put(&mut r, 1, frag(32, false, &a[32..])), whole(&a));
    }

    // ---- overlaps and inconsistent lengths -----------------------------

    #[test]
    fn overlap_drops_the_datagram_and_its_late_fragments() {
        let payload = pattern(64);
        let mut r = Reassembler::new(limits());
        assert_eq!(
            put(&mut r, 1, frag(0, true, &payload[..32])),
            Outcome::Pending
        );
        assert_eq!(
            put(&mut r, 1, frag(24, true, &payload[24..40])),
            Outcome::Overlap
        );
        // Even the fragment that would have completed it is discarded.
        assert_eq!(
            put(&mut r, 1, frag(32, false, &payload[32..])),
            Outcome::Discarded
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r.bytes(), BASE_CHARGE);
        // It is forgotten at its timeout, silently.
        let mut expired = Vec::new();
        r.expire(T0 + Duration::from_secs(30), |e| expired.push(e));
        assert!(expired.is_empty());
        assert!(r.is_empty());
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn a_fragment_inside_another_or_covering_it_is_an_overlap() {
        let payload = pattern(64);
        for (start, end) in [(8, 16), (0, 64), (0, 16), (16, 40)] {
            let mut r = Reassembler::new(limits());
            assert_eq!(
                put(&mut r, 1, frag(8, true, &payload[8..24])),
                Outcome::Pending
            );
            assert_eq!(
                put(&mut r, 1, frag(start, true, &payload[start..end])),
                Outcome::Overlap,
                "{start}..{end}"
            );
        }
    }

    #[test]
    fn inconsistent_lengths_drop_the_datagram() {
        let p = pattern(200);
        let cases: [&[Fragment<'_>]; 6] = [
            // Not a multiple of 8, MF set.
            &[frag(0, true, &p[..12])],
            // Empty.
            &[frag(0, true, &[])],
            // Two last fragments that disagree.
            &[frag(64, false, &p[64..80]), frag(96, false, &p[96..104])],
            // Data past the end.
            &[frag(64, false, &p[64..80]), frag(80, true, &p[80..88])],
            // A last fragment ending before data already held.
            &[frag(96, true, &p[96..104]), frag(64, false, &p[64..80])],
            // Past 65,535 bytes with the header.
            &[frag(65_512, false, &p[..8])],
        ];
        for frags in cases {
            let mut r = Reassembler::new(limits());
            let (last, first) = frags.split_last().unwrap();
            for f in first {
                assert_eq!(put(&mut r, 1, *f), Outcome::Pending, "{frags:?}");
            }
            assert_eq!(put(&mut r, 1, *last), Outcome::Invalid, "{frags:?}");
            assert_eq!(put(&mut r, 1, frag(0, true, &p[..8])), Outcome::Discarded);
        }
    }

    #[test]
    fn the_largest_datagram_fits_and_one_byte_more_does_not() {
        // 65,535 - 20 bytes of header.
        let payload = pattern(65_515);
        let mut r = Reassembler::new(limits());
        let mut out = Outcome::Pending;
        for f in cut(&payload, 1480) {
            out = put(&mut r, 1, f);
        }
        assert_eq!(out, whole(&payload));
        let over = pattern(65_516);
        let frags = cut(&over, 1480);
        let (last, first) = frags.split_last().unwrap();
        for f in first {
            assert_eq!(put(&mut r, 2, *f), Outcome::Pending);
        }
        assert_eq!(put(&mut r, 2, *last), Outcome::Invalid);
    }

    // ---- bounds --------------------------------------------------------

    #[test]
    fn the_oldest_datagram_gives_way_at_the_count_bound() {
        let mut r = Reassembler::new(Limits {
            max_datagrams: 3,
            ..limits()
        });
        let p = pattern(16);
        for id in 1..=3 {
            let t = T0 + Duration::from_secs(u64::from(id));
            assert_eq!(r.insert(t, key(id), frag(0, true, &p[..8])).evicted, 0);
        }
        let new = r.insert(T0 + Duration::from_secs(4), key(4), frag(0, true, &p[..8]));
        assert_eq!((new.outcome, new.evicted), (Outcome::Pending, 1));
        assert_eq!(r.len(), 3);
        // Datagram 1 went: its last fragment starts it anew, evicting 2.
        let again = r.insert(T0, key(1), frag(8, false, &p[8..]));
        assert_eq!((again.outcome, again.evicted), (Outcome::Pending, 1));
        // 3 and 4 are still whole-able.
        assert_eq!(put(&mut r, 3, frag(8, false, &p[8..])), {
            let mut b = HEAD.to_vec();
            b.extend_from_slice(&p);
            Outcome::Complete(Datagram {
                bytes: b,
                head_len: 20,
            })
        });
    }

    #[test]
    fn the_oldest_datagram_gives_way_at_the_byte_bound() {
        let max_bytes = 3 * 4096;
        let mut r = Reassembler::new(Limits {
            max_bytes,
            ..limits()
        });
        let p = pattern(16_384);
        let mut evicted = 0;
        for id in 0..100 {
            let ins = r.insert(T0, key(id), frag(0, true, &p[..2048]));
            assert_eq!(ins.outcome, Outcome::Pending);
            evicted += ins.evicted;
            assert!(r.bytes() <= max_bytes, "{} bytes", r.bytes());
        }
        assert!(evicted >= 90, "{evicted}");
        // A datagram larger than the whole budget cannot be kept.
        let big = r.insert(T0, key(500), frag(0, true, &p));
        assert_eq!(big.outcome, Outcome::TooLarge);
        assert!(r.bytes() <= max_bytes);
        // A real one still completes after the flood.
        let real = pattern(3000);
        let mut out = Outcome::Pending;
        for f in cut(&real, 1480) {
            out = put(&mut r, 1000, f);
        }
        assert_eq!(out, whole(&real));
    }

    #[test]
    fn a_flood_of_first_fragments_cannot_lock_out_a_real_datagram() {
        let mut r = Reassembler::new(limits());
        let p = pattern(1480);
        for id in 0..1000 {
            let _ = r.insert(T0, key(id), frag(0, true, &p));
        }
        assert_eq!(r.len(), 64);
        let real = pattern(4000);
        let mut out = Outcome::Pending;
        for f in cut(&real, 1480) {
            out = put(&mut r, 5000, f);
        }
        assert_eq!(out, whole(&real));
    }

    #[test]
    fn zero_datagrams_turns_reassembly_off() {
        let mut r = Reassembler::new(Limits {
            max_datagrams: 0,
            ..limits()
        });
        assert_eq!(
            put(&mut r, 1, frag(0, true, &pattern(8))),
            Outcome::TooLarge
        );
        assert!(r.is_empty());
    }

    // ---- timeout -------------------------------------------------------

    #[test]
    fn timeout_reports_datagrams_whose_first_fragment_came() {
        let mut r = Reassembler::new(limits());
        let p = pattern(64);
        let _ = r.insert(T0, key(1), frag(0, true, &p[..16]));
        let _ = r.insert(
            T0 + Duration::from_secs(1),
            key(2),
            frag(16, false, &p[16..]),
        );
        assert_eq!(r.poll_timeout(), Some(T0 + Duration::from_secs(30)));
        let mut expired = Vec::new();
        r.expire(T0 + Duration::from_millis(29_999), |e| expired.push(e));
        assert!(expired.is_empty());
        r.expire(T0 + Duration::from_secs(30), |e| expired.push(e));
        let mut quote = HEAD.to_vec();
        quote.extend_from_slice(&p[..8]);
        assert_eq!(
            expired,
            vec![Expired {
                key: key(1),
                quote: Some(quote)
            }]
        );
        assert_eq!(r.poll_timeout(), Some(T0 + Duration::from_secs(31)));
        expired.clear();
        r.expire(T0 + Duration::from_secs(60), |e| expired.push(e));
        assert_eq!(
            expired,
            vec![Expired {
                key: key(2),
                quote: None
            }]
        );
        assert!(r.is_empty());
        assert_eq!(r.bytes(), 0);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn each_datagram_keeps_its_own_rules() {
        // An IPv6 datagram (60 s, a 48-byte head) arrives before an IPv4
        // one (30 s): the IPv4 one expires first all the same.
        let v6 = FragKey::V6 {
            src: "fd00::1".parse().unwrap(),
            dst: "fd00::2".parse().unwrap(),
            id: 0x1234_5678,
        };
        let rules6 = Rules {
            timeout: Duration::from_secs(60),
            max_len: 48 + 0xffff,
            min_head: 48,
        };
        let mut r = Reassembler::new(limits());
        let p = pattern(64);
        let head6 = [6u8; 48];
        let first6 = Fragment {
            head: &head6,
            ..frag(0, true, &p[..16])
        };
        let _ = r.insert_with(T0, v6, rules6, first6);
        let _ = r.insert(T0 + Duration::from_secs(1), key(1), frag(0, true, &p[..16]));
        assert_eq!(r.poll_timeout(), Some(T0 + Duration::from_secs(31)));
        let mut expired = Vec::new();
        r.expire(T0 + Duration::from_secs(59), |e| expired.push(e.key));
        assert_eq!(expired, vec![key(1)]);
        assert_eq!(r.poll_timeout(), Some(T0 + Duration::from_secs(60)));
        // The IPv6 datagram may be 65,535 bytes past its 48-byte head,
        // which IPv4's 65,535-byte bound would refuse.
        let big = pattern(0xffff);
        let last = r.insert_with(T0, v6, rules6, frag(16, false, &big[16..]));
        let Outcome::Complete(d) = last.outcome else {
            panic!("not complete: {:?}", last.outcome);
        };
        assert_eq!((d.head_len, d.bytes.len()), (48, 48 + 0xffff));
        r.expire(T0 + Duration::from_secs(60), |e| expired.push(e.key));
        assert!(r.is_empty());
    }

    // ---- the memory budget ---------------------------------------------

    /// Bytes some other user (TCP, in a stack) holds of the budget before
    /// any fragment comes.
    const OTHERS: usize = 10_000;

    /// A budget of `limit` bytes of which [`OTHERS`] are already held, and
    /// a reassembler charging it.
    fn budgeted(limit: usize) -> (MemoryBudget, Reassembler<FragKey>) {
        let budget = MemoryBudget::new(limit);
        assert!(budget.try_charge(OTHERS));
        let r = Reassembler::with_budget(limits(), budget.clone());
        (budget, r)
    }

    /// What the reassembler holds of the budget is what it says it holds,
    /// and each datagram's charge adds up to it.
    #[track_caller]
    fn balanced(budget: &MemoryBudget, r: &Reassembler<FragKey>) {
        assert_eq!(budget.in_use(), OTHERS + r.bytes());
        let sum: usize = r.datagrams.values().map(|e| e.charged).sum();
        assert_eq!(sum, r.bytes());
        for e in r.datagrams.values() {
            assert_eq!(
                e.charged,
                e.parts.as_ref().map_or(BASE_CHARGE, Parts::charge)
            );
        }
    }

    #[test]
    fn the_budget_is_charged_while_fragments_wait_and_released_on_completion() {
        let (budget, mut r) = budgeted(1 << 20);
        let payload = pattern(4000);
        let frags = cut(&payload, 1480);
        assert_eq!(put(&mut r, 1, frags[1]), Outcome::Pending);
        balanced(&budget, &r);
        assert!(budget.in_use() >= OTHERS + 1480, "{}", budget.in_use());
        assert_eq!(put(&mut r, 1, frags[0]), Outcome::Pending);
        balanced(&budget, &r);
        assert_eq!(put(&mut r, 1, frags[0]), Outcome::Duplicate);
        balanced(&budget, &r);
        assert_eq!(put(&mut r, 1, frags[2]), whole(&payload));
        assert_eq!(budget.in_use(), OTHERS);
        assert!(!budget.take_pressure());
    }

    #[test]
    fn an_overlap_releases_all_but_the_bookkeeping_until_the_timeout() {
        let (budget, mut r) = budgeted(1 << 20);
        let payload = pattern(64);
        assert_eq!(
            put(&mut r, 1, frag(0, true, &payload[..32])),
            Outcome::Pending
        );
        assert_eq!(
            put(&mut r, 1, frag(24, true, &payload[24..40])),
            Outcome::Overlap
        );
        balanced(&budget, &r);
        assert_eq!(budget.in_use(), OTHERS + BASE_CHARGE);
        assert_eq!(
            put(&mut r, 1, frag(32, false, &payload[32..])),
            Outcome::Discarded
        );
        assert_eq!(budget.in_use(), OTHERS + BASE_CHARGE);
        r.expire(T0 + Duration::from_secs(30), |_| {});
        assert!(r.is_empty());
        assert_eq!(budget.in_use(), OTHERS);
    }

    #[test]
    fn a_timeout_releases_what_the_datagram_held() {
        let (budget, mut r) = budgeted(1 << 20);
        let p = pattern(3000);
        let _ = r.insert(T0, key(1), frag(0, true, &p[..1480]));
        let _ = r.insert(T0, key(2), frag(1480, true, &p[1480..2960]));
        let _ = r.insert(T0, key(3), frag(0, true, &p[..8]));
        // An inconsistent one keeps its bookkeeping's charge, too.
        assert_eq!(put(&mut r, 3, frag(8, true, &p[8..13])), Outcome::Invalid);
        balanced(&budget, &r);
        r.expire(T0 + Duration::from_secs(30), |_| {});
        assert!(r.is_empty());
        assert_eq!(budget.in_use(), OTHERS);
    }

    #[test]
    fn eviction_clear_and_drop_release_what_was_held() {
        let mut r = Reassembler::with_budget(
            Limits {
                max_datagrams: 3,
                max_bytes: 16 * 1024,
                ..limits()
            },
            MemoryBudget::new(1 << 20),
        );
        let budget = r.budget().clone();
        assert!(budget.try_charge(OTHERS));
        let p = pattern(4096);
        let mut evicted = 0;
        for id in 0..20 {
            let ins = r.insert(
                T0,
                key(id),
                frag(0, true, &p[..(1 + id as usize % 4) * 1024]),
            );
            assert_eq!(ins.outcome, Outcome::Pending);
            evicted += ins.evicted;
            balanced(&budget, &r);
        }
        assert!(evicted >= 17, "{evicted}");
        // Too large for `max_bytes` alone: it evicts every other, and goes.
        let big = r.insert(T0, key(100), frag(0, true, &pattern(16 * 1024)));
        assert_eq!(big.outcome, Outcome::TooLarge);
        assert!(r.is_empty());
        assert_eq!(budget.in_use(), OTHERS);
        for id in 0..3 {
            let _ = r.insert(T0, key(id), frag(0, true, &p));
        }
        assert!(budget.in_use() > OTHERS);
        r.clear();
        assert!(r.is_empty());
        assert_eq!((r.bytes(), budget.in_use()), (0, OTHERS));
        let _ = r.insert(T0, key(1), frag(0, true, &p));
        assert!(budget.in_use() > OTHERS);
        drop(r);
        assert_eq!(budget.in_use(), OTHERS);
    }

    #[test]
    fn a_refusing_budget_evicts_the_oldest_then_drops_the_fragment() {
        // Room for about three 2 KiB first fragments besides the others'.
        let limit = OTHERS + 3 * (2048 + 400);
        let (budget, mut r) = budgeted(limit);
        let p = pattern(8192);
        let mut evicted = 0;
        for id in 0..10 {
            let ins = r.insert(T0, key(id), frag(0, true, &p[..2048]));
            assert_eq!(ins.outcome, Outcome::Pending, "{id}");
            evicted += ins.evicted;
            assert!(budget.in_use() <= limit);
            balanced(&budget, &r);
        }
        // Far below `max_bytes` (1 MiB): the budget made them give way,
        // without asking others to make room (see the module docs).
        assert_eq!(r.len(), 3);
        assert_eq!(evicted, 7);
        assert!(!budget.take_pressure());
        // One the budget cannot hold even alone: every other gives way
        // first, then it is dropped, and nothing stays charged for it.
        let ins = r.insert(T0, key(50), frag(0, true, &p));
        assert_eq!((ins.outcome, ins.evicted), (Outcome::NoMemory, 3));
        assert!(r.is_empty());
        assert_eq!(budget.in_use(), OTHERS);
        // With the budget all taken, not even a datagram's bookkeeping
        // fits: dropped at once.
        assert!(budget.try_charge(budget.available()));
        let ins = r.insert(T0, key(51), frag(0, true, &p[..8]));
        assert_eq!((ins.outcome, ins.evicted), (Outcome::NoMemory, 0));
        assert!(r.is_empty());
        budget.release(limit - OTHERS);
        // Room again: a datagram completes.
        let real = pattern(3000);
        let mut out = Outcome::Pending;
        for f in cut(&real, 1480) {
            out = put(&mut r, 1000, f);
        }
        assert_eq!(out, whole(&real));
        assert_eq!(budget.in_use(), OTHERS);
    }

    #[test]
    fn a_growing_datagram_refused_by_the_budget_goes_whole() {
        let (budget, mut r) = budgeted(OTHERS + 4096);
        let p = pattern(8192);
        assert_eq!(put(&mut r, 1, frag(0, true, &p[..1024])), Outcome::Pending);
        assert_eq!(
            put(&mut r, 1, frag(1024, true, &p[1024..6144])),
            Outcome::NoMemory
        );
        assert!(r.is_empty());
        assert_eq!(budget.in_use(), OTHERS);
        // A later fragment starts it anew, within the budget.
        assert_eq!(
            put(&mut r, 1, frag(1024, true, &p[1024..1032])),
            Outcome::Pending
        );
        balanced(&budget, &r);
    }

    // ---- properties ----------------------------------------------------

    /// A payload of `len` bytes cut at 8-byte multiples into fragments,
    /// in a shuffled order and with some repeated.
    fn shuffled() -> impl Strategy<Value = (Vec<u8>, Vec<(usize, usize)>)> {
        (1usize..6000)
            .prop_flat_map(|len| {
                let units = len.div_ceil(8);
                (
                    Just(len),
                    proptest::collection::btree_set(1..units.max(2), 0..12),
                    proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
                )
            })
            .prop_flat_map(|(len, cuts, dups)| {
                let mut bounds: Vec<usize> = vec![0];
                bounds.extend(cuts.into_iter().map(|c| c * 8).filter(|&c| c < len));
                bounds.push(len);
                let mut ranges: Vec<(usize, usize)> =
                    bounds.windows(2).map(|w| (w[0], w[1])).collect();
                for d in dups {
                    let r = ranges[d.index(ranges.len())];
                    ranges.push(r);
                }
                (
                    proptest::collection::vec(any::<u8>(), len),
                    Just(ranges).prop_shuffle(),
                )
            })
    }

    proptest! {
        #[test]
        fn any_order_with_duplicates_gives_back_the_datagram((payload, ranges) in shuffled()) {
            let mut r = Reassembler::new(limits());
            let mut complete = None;
            let mut held = std::collections::HashSet::new();
            for &(s, e) in &ranges {
                let f = frag(s, e < payload.len(), &payload[s..e]);
                let out = r.insert(T0, key(7), f).outcome;
                if complete.is_some() {
                    // A repeat after completion starts a new datagram.
                    prop_assert!(matches!(
                        out,
                        Outcome::Pending | Outcome::Duplicate | Outcome::Complete(_)
                    ));
                    continue;
                }
                match out {
                    Outcome::Pending => prop_assert!(held.insert((s, e))),
                    Outcome::Duplicate => prop_assert!(held.contains(&(s, e))),
                    Outcome::Complete(d) => complete = Some(d),
                    other => prop_assert!(false, "{:?}", other),
                }
                prop_assert!(r.bytes() <= limits().max_bytes);
            }
            let d = complete.expect("every fragment arrived");
            prop_assert_eq!(&d.bytes[..d.head_len], HEAD);
            prop_assert_eq!(&d.bytes[d.head_len..], &payload[..]);
        }

        #[test]
        fn any_overlap_drops_the_datagram(
            (payload, ranges) in shuffled(),
            start in 0usize..6000,
            len in 1usize..64,
        ) {
            let start = start.min(payload.len() - 1) / 8 * 8;
            let end = (start + len * 8).min(payload.len());
            let odd = (start, end);
            prop_assume!(!ranges.contains(&odd));
            // The whole payload in one piece is no fragment to overlap.
            prop_assume!(odd != (0, payload.len()));
            // An odd fragment that starts and ends where regular ones do
            // is the union of some of them: the datagram may then complete
            // with it, rightly, before any of those arrives. One edge
            // inside a regular fragment makes that fragment overlap it,
            // and it is needed to complete.
            let edges: std::collections::HashSet<usize> =
                ranges.iter().flat_map(|&(s, e)| [s, e]).collect();
            prop_assume!(!(edges.contains(&odd.0) && edges.contains(&odd.1)));
            let mut r = Reassembler::new(limits());
            // The odd fragment first, then the regular ones: one of them
            // overlaps it, and from then on nothing completes.
            let f = frag(start, end < payload.len(), &payload[start..end]);
            prop_assert_eq!(r.insert(T0, key(1), f).outcome, Outcome::Pending);
            let mut overlapped = false;
            for &(s, e) in &ranges {
                let f = frag(s, e < payload.len(), &payload[s..e]);
                match r.insert(T0, key(1), f).outcome {
                    Outcome::Overlap => overlapped = true,
                    Outcome::Complete(_) => prop_assert!(false, "completed despite an overlap"),
                    Outcome::Invalid => prop_assert!(!overlapped),
                    Outcome::Discarded => prop_assert!(true),
                    _ => {}
                }
            }
            prop_assert!(overlapped);
            prop_assert_eq!(r.bytes(), BASE_CHARGE);
        }

        #[test]
        fn bounds_hold_under_any_fragments(
            frags in proptest::collection::vec(
                (0u16..40, 0usize..8192, any::<bool>(), 0usize..1500, 0u64..40), 0..300),
            max_datagrams in 0usize..10,
            max_bytes in 0usize..200_000,
            budget_room in 0usize..200_000,
        ) {
            let lim = Limits { max_datagrams, max_bytes, ..limits() };
            let budget = MemoryBudget::new(OTHERS + budget_room);
            prop_assert!(budget.try_charge(OTHERS));
            let mut r = Reassembler::with_budget(lim, budget.clone());
            let data = pattern(1500);
            let mut now = T0;
            for (id, unit, more, len, dt) in frags {
                now += Duration::from_secs(dt);
                r.expire(now, |_| {});
                let f = frag(unit * 8, more, &data[..len]);
                let _ = r.insert(now, key(id), f);
                prop_assert!(r.len() <= max_datagrams);
                prop_assert!(r.bytes() <= max_bytes);
                prop_assert!(budget.in_use() <= budget.limit());
                prop_assert_eq!(budget.in_use(), OTHERS + r.bytes());
                let sum: usize = r.datagrams.values().map(|e| e.charged).sum();
                prop_assert_eq!(sum, r.bytes());
                prop_assert_eq!(r.len(), r.order.len());
                prop_assert_eq!(r.len(), r.deadlines.len());
                if let Some(at) = r.poll_timeout() {
                    prop_assert!(at > now);
                }
            }
            r.expire(now + Duration::from_secs(60), |_| {});
            prop_assert!(r.is_empty());
            prop_assert_eq!(budget.in_use(), OTHERS);
        }
    }
}
