//! Fixed-bucket histograms with the reference server's bounds (`RequestLatency`,
//! `OutgoingMessageSize`), written by one shard and read by any.
//!
//! A sample lands in the first bucket whose bound is at least the sample (the last bucket holds
//! everything above the last bound), as the reference's expvar histograms and Prometheus's `le`
//! buckets count. Recording is a binary search over the bounds and two single-writer stores:
//! no read-modify-write instruction, no shared cache line between shards.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The reference's `RequestLatency` bounds, milliseconds.
pub const LATENCY_BOUNDS_MS: &[u64] = &[
    1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200, 250, 300, 400,
    500, 650, 800, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
];

/// The reference's `OutgoingMessageSize` bounds, bytes.
pub const SIZE_BOUNDS: &[u64] = &[
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 16384, 65536, 262144, 1048576,
    4194304, 16777216, 67108864, 268435456, 1073741824, 4294967296,
];

/// One histogram. Samples are recorded in `1/scale` of the bounds' unit (latency: microseconds
/// against millisecond bounds, so sub-millisecond replies keep their precision in the sum).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    scale: u64,
    /// `bounds.len() + 1` buckets; the last one is above every bound.
    counts: Box<[AtomicU64]>,
    /// Sum of the samples, in recorded units.
    sum: AtomicU64,
}

/// A histogram as read: counts per bucket (not cumulative), their total, and the sum in the
/// bounds' unit.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    pub bounds: &'static [u64],
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending), recording values `scale` times finer.
    pub fn new(bounds: &'static [u64], scale: u64) -> Histogram {
        Histogram {
            bounds,
            scale: scale.max(1),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Request latency in microseconds against the reference's millisecond bounds.
    pub fn latency() -> Histogram {
        Histogram::new(LATENCY_BOUNDS_MS, 1000)
    }

    /// Outgoing message size in bytes.
    pub fn size() -> Histogram {
        Histogram::new(SIZE_BOUNDS, 1)
    }

    /// Records one sample. Only the owning shard calls this (single writer).
    pub fn record(&self, v: u64) {
        let scale = self.scale;
        let i = self
            .bounds
            .partition_point(|&b| b.saturating_mul(scale) < v);
        super::bump(&self.counts[i], 1);
        super::bump(&self.sum, v);
    }

    /// Reads the histogram (relaxed: a reader may see a sample's bucket before its sum).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        HistogramSnapshot {
            bounds: self.bounds,
            count: counts.iter().sum(),
            counts,
            sum: self.sum.load(Relaxed) as f64 / self.scale as f64,
        }
    }
}

impl HistogramSnapshot {
    /// Adds another shard's snapshot of the same histogram.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_at_least_as_large() {
        let h = Histogram::size();
        for v in [0, 1, 2, 3, 4096, 4097, u64::MAX] {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.counts.len(), SIZE_BOUNDS.len() + 1);
        assert_eq!(s.counts[0], 2, "0 and 1 are ≤ 1");
        assert_eq!(s.counts[1], 1, "2");
        assert_eq!(s.counts[2], 1, "3 is ≤ 4");
        assert_eq!(s.counts[12], 1, "4096");
        assert_eq!(s.counts[13], 1, "4097 is ≤ 16384");
        assert_eq!(s.counts[SIZE_BOUNDS.len()], 1, "above every bound");
        assert_eq!(s.count, 7);
    }

    #[test]
    fn latency_is_recorded_in_microseconds_and_read_in_milliseconds() {
        let h = Histogram::latency();
        h.record(250); // 0.25 ms
        h.record(1000); // 1 ms: the first bucket (≤ 1)
        h.record(1001); // just above 1 ms
        h.record(200_000_000); // 200 s
        let mut s = h.snapshot();
        assert_eq!(s.counts[0], 2);
        assert_eq!(s.counts[1], 1);
        assert_eq!(s.counts[LATENCY_BOUNDS_MS.len()], 1);
        assert!((s.sum - 200_002.251).abs() < 1e-6, "{}", s.sum);
        let again = s.clone();
        s.merge(&again);
        assert_eq!(s.count, 8);
        assert_eq!(s.counts[0], 4);
    }
}
