//! When each backend's first check runs: spread evenly over the interval
//! (HAProxy starts check `i` of `n` at `inter · i / n`), so ten thousand
//! backends are not all checked in the same millisecond, and then every
//! `Health::interval` after the previous check began.

use std::time::Duration;

/// Delay before the first check of the `position`-th of `count` backends
/// checked every `inter`.
pub fn first_delay(position: usize, count: usize, inter: Duration) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    let nanos = inter.as_nanos() * (position % count) as u128 / count as u128;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_checks_are_spread_evenly_over_one_interval() {
        let inter = Duration::from_secs(1);
        let n = 10_000;
        let delays: Vec<Duration> = (0..n).map(|i| first_delay(i, n, inter)).collect();
        assert_eq!(delays[0], Duration::ZERO);
        assert!(delays.iter().all(|d| *d < inter));
        // Every 10 ms slice of the second gets n / 100 starts.
        let mut slices = [0usize; 100];
        for d in &delays {
            slices[(d.as_millis() / 10) as usize] += 1;
        }
        assert!(slices.iter().all(|&c| c == n / 100), "{slices:?}");
    }

    #[test]
    fn one_backend_starts_at_once() {
        assert_eq!(first_delay(0, 1, Duration::from_secs(2)), Duration::ZERO);
        assert_eq!(first_delay(3, 0, Duration::from_secs(2)), Duration::ZERO);
    }
}
