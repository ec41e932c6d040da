//! Response-time histograms, per frontend, pool and server: fixed buckets
//! suited to HTTP (1 ms to 10 s), each a relaxed atomic the request path
//! bumps without a lock; the metrics read a [`TimesSnapshot`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds; one more bucket takes the rest
/// (+Inf).
pub const BOUNDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// [`BOUNDS`] in microseconds, what is compared.
const BOUNDS_US: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// Buckets: one per bound, then +Inf.
pub const BUCKETS: usize = BOUNDS.len() + 1;

/// Times observed, by bucket (not cumulative), and their sum.
#[derive(Debug, Default)]
pub struct ResponseTimes {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

/// A copy of [`ResponseTimes`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimesSnapshot {
    /// Per bucket, not cumulative: index i counts times in
    /// (`BOUNDS[i-1]`, `BOUNDS[i]`], the last those over 10 s.
    pub counts: [u64; BUCKETS],
    /// Every time observed, added up, in microseconds.
    pub sum_us: u64,
}

impl ResponseTimes {
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_US.partition_point(|&b| b < us);
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    pub fn snapshot(&self) -> TimesSnapshot {
        TimesSnapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Relaxed)),
            sum_us: self.sum_us.load(Relaxed),
        }
    }
}

impl TimesSnapshot {
    /// Times observed.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum in seconds.
    pub fn sum_secs(&self) -> f64 {
        self.sum_us as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_agree() {
        for (s, us) in BOUNDS.iter().zip(BOUNDS_US) {
            assert_eq!((s * 1e6).round() as u64, us);
        }
    }

    #[test]
    fn times_land_in_their_bucket_bounds_included() {
        let h = ResponseTimes::default();
        for ms in [0, 1, 2, 7, 1_000, 10_000, 60_000] {
            h.observe(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        let mut want = [0; BUCKETS];
        want[0] = 2; // 0 ms and exactly 1 ms
        want[1] = 1; // 2 ms
        want[4 - 1] = 1; // 7 ms: in (5, 10]
        want[9] = 1; // 1 s
        want[12] = 1; // 10 s
        want[13] = 1; // a minute: +Inf
        assert_eq!(s.counts, want);
        assert_eq!(s.count(), 7);
        assert_eq!(s.sum_us, 71_010_000);
    }
}
