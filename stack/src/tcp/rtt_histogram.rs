//! A histogram of the RTT samples of every connection of a stack, for
//! monitoring (`crate::metrics`).
//!
//! Each sample the RFC 6298 estimator takes (`tcp::rtt`) is also counted
//! here, in one of fixed buckets from 100 µs to 10 s. The estimator keeps
//! only a smoothed value per connection, which hides how RTTs spread
//! across connections and over time; the histogram keeps that spread at
//! a fixed cost. Like `tcp::memory`, one histogram is shared by every
//! connection of a stack (clones share it), and a connection outside a
//! stack has one of its own.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The buckets' upper bounds (inclusive, as Prometheus's `le`): 1-2.5-5
/// steps from 100 µs, below which the stack's clock (microseconds) and
/// timestamp granularity say little, to 10 s, above which the RTO has
/// long backed off. Samples above the last bound fall in an overflow
/// bucket.
pub const BUCKETS: [Duration; 16] = [
    Duration::from_micros(100),
    Duration::from_micros(250),
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_micros(2_500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(2_500),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// Slots: one per bound and the overflow bucket.
const SLOTS: usize = BUCKETS.len() + 1;

/// A shared RTT histogram. Recording is lock-free: a search over 16
/// bounds and two relaxed atomic additions, cheap on the ACK path that
/// takes the samples.
#[derive(Clone, Default)]
pub struct RttHistogram {
    cells: Arc<Cells>,
}

#[derive(Default)]
struct Cells {
    /// Samples per bucket, not cumulative: a sample touches one slot.
    counts: [AtomicU64; SLOTS],
    /// Sum of all samples, in microseconds (the clock's resolution):
    /// 2^64 µs is over 500,000 years of summed RTT.
    sum_micros: AtomicU64,
}

impl RttHistogram {
    /// An empty histogram of its own.
    pub fn new() -> RttHistogram {
        RttHistogram::default()
    }

    /// Counts one RTT sample.
    pub fn record(&self, rtt: Duration) {
        let slot = BUCKETS.partition_point(|bound| *bound < rtt);
        // invariant: partition_point returns at most BUCKETS.len(), and
        // `counts` has one slot more.
        if let Some(count) = self.cells.counts.get(slot) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.cells.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The counts so far. Taken while samples are recorded, a snapshot
    /// may count a sample in its bucket but not yet in the sum; the
    /// total count is the buckets' sum, so buckets and count always agree.
    pub fn snapshot(&self) -> RttSnapshot {
        RttSnapshot {
            counts: self
                .cells
                .counts
                .each_ref()
                .map(|c| c.load(Ordering::Relaxed)),
            sum: Duration::from_micros(self.cells.sum_micros.load(Ordering::Relaxed)),
        }
    }
}

impl fmt::Debug for RttHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RttHistogram")
            .field("count", &self.snapshot().count())
            .finish()
    }
}

/// The histogram's counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RttSnapshot {
    /// Samples per bucket (not cumulative), in the order of [`BUCKETS`],
    /// then the overflow bucket.
    pub counts: [u64; SLOTS],
    /// The sum of all samples.
    pub sum: Duration,
}

impl RttSnapshot {
    /// The number of samples.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Cumulative counts by upper bound, Prometheus's `_bucket` series:
    /// samples at most each bound of [`BUCKETS`], then `None` (+Inf) with
    /// every sample.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<Duration>, u64)> + '_ {
        let bounds = BUCKETS.iter().copied().map(Some).chain([None]);
        bounds.zip(self.counts.iter().scan(0u64, |total, n| {
            *total += n;
            Some(*total)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn a_sample_on_a_bound_counts_in_that_bucket() {
        let h = RttHistogram::new();
        h.record(us(100));
        h.record(us(101));
        h.record(us(0));
        let s = h.snapshot();
        assert_eq!(s.counts[0], 2, "0 and 100 µs are at most 100 µs");
        assert_eq!(s.counts[1], 1, "101 µs is in (100, 250]");
        assert_eq!(s.sum, us(201));
    }

    #[test]
    fn samples_above_ten_seconds_overflow() {
        let h = RttHistogram::new();
        h.record(Duration::from_secs(10));
        h.record(Duration::from_secs(11));
        let s = h.snapshot();
        assert_eq!(s.counts[BUCKETS.len() - 1], 1);
        assert_eq!(s.counts[BUCKETS.len()], 1);
        let last = s.cumulative().last();
        assert_eq!(last, Some((None, 2)));
    }

    #[test]
    fn cumulative_counts_rise_to_the_total() {
        let h = RttHistogram::new();
        for ms in [1, 1, 7, 30, 30, 30, 400] {
            h.record(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        let cumulative: Vec<_> = s.cumulative().collect();
        assert_eq!(cumulative.len(), BUCKETS.len() + 1);
        assert!(cumulative.windows(2).all(|w| w[0].1 <= w[1].1));
        let at = |bound: Duration| cumulative.iter().find(|(b, _)| *b == Some(bound));
        assert_eq!(
            at(Duration::from_millis(1)),
            Some(&(Some(Duration::from_millis(1)), 2))
        );
        assert_eq!(
            at(Duration::from_millis(10)),
            Some(&(Some(Duration::from_millis(10)), 3))
        );
        assert_eq!(
            at(Duration::from_millis(50)),
            Some(&(Some(Duration::from_millis(50)), 6))
        );
        assert_eq!(s.count(), 7);
        assert_eq!(s.sum, Duration::from_millis(499));
    }

    #[test]
    fn clones_share_one_histogram() {
        let h = RttHistogram::new();
        let other = h.clone();
        other.record(us(300));
        assert_eq!(h.snapshot().count(), 1);
        assert_eq!(RttHistogram::new().snapshot().count(), 0);
    }
}
