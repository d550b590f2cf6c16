//! How long the store's fsyncs take: a histogram of lock-free counters,
//! filled by the writer and read by the server's metrics at any time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the buckets, in nanoseconds, with the bound as the
/// metrics text writes it (seconds); a last bucket takes everything above.
pub const BUCKETS: [(u64, &str); 11] = [
    (500_000, "0.0005"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
    (500_000_000, "0.5"),
    (1_000_000_000, "1"),
];

/// Durations counted by bucket, and their sum.
#[derive(Debug, Default)]
pub struct Latency {
    /// Observations by bucket (not cumulative); the last one is above
    /// every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    /// Every observation's nanoseconds, summed.
    sum_ns: AtomicU64,
}

/// What a [`Latency`] held when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencySnapshot {
    /// Observations at or below each bound of [`BUCKETS`] (cumulative).
    pub cumulative: [u64; BUCKETS.len()],
    /// Every observation: the `+Inf` bucket.
    pub count: u64,
    /// Their nanoseconds, summed.
    pub sum_ns: u64,
}

impl Latency {
    /// Counts one duration.
    pub fn observe(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS
            .iter()
            .position(|&(bound, _)| ns <= bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The counts so far. The total is the sum of the buckets, so the
    /// `+Inf` bucket and the count always agree.
    pub fn snapshot(&self) -> LatencySnapshot {
        let mut snapshot = LatencySnapshot::default();
        let mut running = 0u64;
        for (i, count) in self.counts.iter().enumerate() {
            running += count.load(Ordering::Relaxed);
            if let Some(slot) = snapshot.cumulative.get_mut(i) {
                *slot = running;
            }
        }
        snapshot.count = running;
        snapshot.sum_ns = self.sum_ns.load(Ordering::Relaxed);
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_the_first_bucket_that_holds_them() {
        let latency = Latency::default();
        latency.observe(Duration::from_micros(100));
        latency.observe(Duration::from_micros(500));
        latency.observe(Duration::from_millis(3));
        latency.observe(Duration::from_secs(2));
        let s = latency.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.cumulative[0], 2, "0.0005 holds 100 µs and exactly 500 µs");
        assert_eq!(s.cumulative[1], 2);
        assert_eq!(s.cumulative[2], 2, "3 ms is above 0.0025");
        assert_eq!(s.cumulative[3], 3);
        assert_eq!(s.cumulative[BUCKETS.len() - 1], 3, "2 s is above 1");
        assert_eq!(s.sum_ns, 100_000 + 500_000 + 3_000_000 + 2_000_000_000);
    }
}
