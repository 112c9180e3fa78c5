//! Out-of-order bookkeeping for the receive side: which byte ranges beyond
//! RCV.NXT have already arrived.
//!
//! RFC 9293 §3.10.7.4: "Segments with higher beginning sequence numbers may be
//! held for later processing". The [`Assembler`] records only *which* bytes are
//! held (the bytes themselves sit in the receive ring at their offset); its
//! ranges also feed SACK blocks (RFC 2018). Offsets are relative to the first
//! missing byte, RCV.NXT.
//!
//! DoS warning: a peer can send many tiny segments with holes between them.
//! The number of disjoint ranges is bounded by `max_ranges` (default
//! [`DEFAULT_MAX_RANGES`]); a segment that would need one more range is
//! refused with [`TooManyRanges`] and the caller drops it, exactly as if it
//! had been lost. The range list is allocated once in [`Assembler::new`].

use std::fmt;

/// The default bound on disjoint out-of-order ranges per connection.
pub const DEFAULT_MAX_RANGES: usize = 32;

/// Adding a range would exceed the assembler's bound on disjoint ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRanges;

impl fmt::Display for TooManyRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too many out-of-order ranges")
    }
}

impl std::error::Error for TooManyRanges {}

/// A sorted set of disjoint, non-adjacent byte ranges `[start, end)`.
#[derive(Debug, Clone)]
pub struct Assembler {
    /// Sorted by start; no two ranges overlap or touch; none is empty.
    /// Capacity is `max_ranges`, reserved up front so inserts never allocate.
    ranges: Vec<(usize, usize)>,
    max_ranges: usize,
}

impl Default for Assembler {
    fn default() -> Self {
        Assembler::new(DEFAULT_MAX_RANGES)
    }
}

impl Assembler {
    /// An empty assembler that holds at most `max_ranges` disjoint ranges.
    pub fn new(max_ranges: usize) -> Assembler {
        Assembler {
            ranges: Vec::with_capacity(max_ranges),
            max_ranges,
        }
    }

    /// The bound on disjoint ranges.
    pub fn max_ranges(&self) -> usize {
        self.max_ranges
    }

    /// Records that bytes `[offset, offset + len)` arrived. Overlapping and
    /// adjacent ranges merge; duplicates change nothing. An empty range is
    /// a no-op.
    ///
    /// # Errors
    ///
    /// [`TooManyRanges`] if the bytes touch no existing range and the
    /// assembler already holds `max_ranges` ranges; nothing is recorded.
    pub fn add(&mut self, offset: usize, len: usize) -> Result<(), TooManyRanges> {
        if len == 0 {
            return Ok(());
        }
        let start = offset;
        let end = offset.saturating_add(len);
        // First range that ends at or after `start` (overlaps or touches).
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        // One past the last range that starts at or before `end`.
        let last = self.ranges.partition_point(|&(s, _)| s <= end);
        if first >= last {
            // Touches nothing: a new range at `first`.
            if self.ranges.len() >= self.max_ranges {
                return Err(TooManyRanges);
            }
            self.ranges.insert(first, (start, end));
            return Ok(());
        }
        // Merge ranges first..last into one; `first < last <= len()`.
        let merged_start = start.min(self.ranges[first].0);
        let merged_end = end.max(self.ranges[last - 1].1);
        self.ranges[first] = (merged_start, merged_end);
        self.ranges.drain(first + 1..last);
        Ok(())
    }

    /// Whether [`add`](Self::add) of these bytes would succeed: they touch
    /// a held range, or there is room for one more.
    pub fn can_add(&self, offset: usize, len: usize) -> bool {
        if len == 0 || self.ranges.len() < self.max_ranges {
            return true;
        }
        let end = offset.saturating_add(len);
        let first = self.ranges.partition_point(|&(_, e)| e < offset);
        let last = self.ranges.partition_point(|&(s, _)| s <= end);
        first < last
    }

    /// The length of the range that starts at offset 0, or 0.
    pub fn front_len(&self) -> usize {
        match self.ranges.first() {
            Some(&(0, end)) => end,
            _ => 0,
        }
    }

    /// Forgets the range that starts at offset 0, if any, without moving
    /// the others; returns its length.
    pub fn discard_front(&mut self) -> usize {
        let n = self.front_len();
        if n > 0 {
            self.ranges.remove(0);
        }
        n
    }

    /// Forgets every byte at or beyond `from` (ranges beyond it go, a
    /// range straddling it is cut); returns how many bytes were forgotten.
    pub fn truncate(&mut self, from: usize) -> usize {
        let mut forgotten = 0;
        self.ranges.retain_mut(|range| {
            if range.0 >= from {
                forgotten += range.1 - range.0;
                return false;
            }
            if range.1 > from {
                forgotten += range.1 - from;
                range.1 = from;
            }
            true
        });
        forgotten
    }

    /// If a range starts at offset 0, removes it, shifts every other range
    /// down by its length and returns that length; otherwise returns 0.
    pub fn remove_front(&mut self) -> usize {
        match self.ranges.first() {
            Some(&(0, end)) => {
                self.ranges.remove(0);
                for range in &mut self.ranges {
                    range.0 -= end;
                    range.1 -= end;
                }
                end
            }
            _ => 0,
        }
    }

    /// Moves the origin forward by `n` bytes (the caller advanced RCV.NXT by
    /// `n` bytes of in-order data). Ranges entirely below the new origin
    /// are dropped, ranges straddling it are trimmed to start at 0.
    pub fn shift(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.ranges.retain_mut(|range| {
            if range.1 <= n {
                return false;
            }
            range.0 = range.0.saturating_sub(n);
            range.1 -= n;
            true
        });
    }

    /// The held ranges as `(start, end)`, end exclusive, in ascending order.
    pub fn ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.ranges.iter().copied()
    }

    /// How many disjoint ranges are held.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Total out-of-order bytes held.
    pub fn bytes(&self) -> usize {
        self.ranges.iter().map(|&(s, e)| e - s).sum()
    }

    /// Whether byte `offset` has arrived.
    pub fn contains(&self, offset: usize) -> bool {
        self.ranges.iter().any(|&(s, e)| s <= offset && offset < e)
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.ranges.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn collect(a: &Assembler) -> Vec<(usize, usize)> {
        a.ranges().collect()
    }

    #[test]
    fn merges_overlapping_and_adjacent() {
        let mut a = Assembler::new(8);
        a.add(10, 5).unwrap(); // 10..15
        a.add(20, 5).unwrap(); // 20..25
        assert_eq!(collect(&a), [(10, 15), (20, 25)]);
        a.add(15, 5).unwrap(); // touches both
        assert_eq!(collect(&a), [(10, 25)]);
        a.add(12, 3).unwrap(); // duplicate inside
        assert_eq!(collect(&a), [(10, 25)]);
        a.add(5, 30).unwrap(); // covers all
        assert_eq!(collect(&a), [(5, 35)]);
        assert_eq!(a.bytes(), 30);
    }

    #[test]
    fn empty_add_is_noop() {
        let mut a = Assembler::new(0);
        assert_eq!(a.add(3, 0), Ok(()));
        assert!(a.is_empty());
    }

    #[test]
    fn bound_rejects_new_range_but_allows_merges() {
        let mut a = Assembler::new(2);
        a.add(10, 1).unwrap();
        a.add(20, 1).unwrap();
        assert_eq!(a.add(30, 1), Err(TooManyRanges));
        assert_eq!(collect(&a), [(10, 11), (20, 21)]);
        // Extending or bridging existing ranges needs no new slot.
        a.add(11, 2).unwrap();
        a.add(13, 7).unwrap();
        assert_eq!(collect(&a), [(10, 21)]);
        a.add(30, 1).unwrap();
        assert_eq!(a.range_count(), 2);
    }

    #[test]
    fn remove_front_only_at_zero() {
        let mut a = Assembler::new(4);
        a.add(2, 3).unwrap();
        assert_eq!(a.remove_front(), 0);
        a.add(0, 2).unwrap(); // merges into 0..5
        a.add(8, 2).unwrap();
        assert_eq!(a.remove_front(), 5);
        assert_eq!(collect(&a), [(3, 5)]);
        assert_eq!(a.remove_front(), 0);
    }

    #[test]
    fn shift_drops_and_trims() {
        let mut a = Assembler::new(4);
        a.add(2, 2).unwrap(); // 2..4
        a.add(6, 4).unwrap(); // 6..10
        a.add(12, 2).unwrap(); // 12..14
        a.shift(8);
        assert_eq!(collect(&a), [(0, 2), (4, 6)]);
        a.shift(0);
        assert_eq!(collect(&a), [(0, 2), (4, 6)]);
        a.shift(100);
        assert!(a.is_empty());
    }

    #[test]
    fn can_add_matches_add() {
        let mut a = Assembler::new(1);
        assert!(a.can_add(10, 1));
        a.add(10, 1).unwrap();
        assert!(!a.can_add(20, 1));
        assert!(a.can_add(11, 5), "touching merges");
        assert!(a.can_add(20, 0));
    }

    #[test]
    fn truncate_and_discard_front() {
        let mut a = Assembler::new(4);
        a.add(0, 3).unwrap();
        a.add(5, 5).unwrap(); // 5..10
        a.add(12, 2).unwrap(); // 12..14
        assert_eq!(a.truncate(7), 3 + 2);
        assert_eq!(collect(&a), [(0, 3), (5, 7)]);
        assert_eq!(a.front_len(), 3);
        assert_eq!(a.discard_front(), 3);
        assert_eq!(collect(&a), [(5, 7)]);
        assert_eq!(a.discard_front(), 0);
        assert_eq!(a.truncate(0), 2);
        assert!(a.is_empty());
    }

    #[test]
    fn huge_offsets_do_not_overflow() {
        let mut a = Assembler::new(4);
        a.add(usize::MAX - 1, 10).unwrap();
        assert_eq!(collect(&a), [(usize::MAX - 1, usize::MAX)]);
        assert!(a.contains(usize::MAX - 1));
    }

    proptest! {
        /// The assembler agrees with a set of byte offsets, and its ranges
        /// stay sorted, disjoint and non-adjacent.
        #[test]
        fn matches_set_model(
            ops in proptest::collection::vec((0usize..4, 0usize..100, 0usize..20), 0..100),
        ) {
            let mut a = Assembler::new(1000);
            let mut model: BTreeSet<usize> = BTreeSet::new();
            for (kind, x, y) in ops {
                match kind {
                    0 | 1 => {
                        a.add(x, y).unwrap();
                        model.extend(x..x + y);
                    }
                    2 => {
                        let n = a.remove_front();
                        let mut expect = 0;
                        while model.contains(&expect) {
                            expect += 1;
                        }
                        prop_assert_eq!(n, expect);
                        model = model.iter().filter(|&&b| b >= n).map(|b| b - n).collect();
                    }
                    _ => {
                        a.shift(y);
                        model = model.iter().filter(|&&b| b >= y).map(|b| b - y).collect();
                    }
                }
                let from_ranges: BTreeSet<usize> =
                    a.ranges().flat_map(|(s, e)| s..e).collect();
                prop_assert_eq!(&from_ranges, &model);
                prop_assert_eq!(a.bytes(), model.len());
                let r = collect(&a);
                for w in r.windows(2) {
                    prop_assert!(w[0].1 < w[1].0);
                }
                for (s, e) in r {
                    prop_assert!(s < e);
                }
            }
        }
    }
}
