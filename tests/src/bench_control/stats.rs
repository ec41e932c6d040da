//! Medians and percentiles of samples.

use serde::Serialize;

/// The median (mean of the middle two for an even count); 0 for no samples.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => s[n / 2],
        _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The `p`-th percentile by nearest rank (`p` in 0..=100): the smallest
/// sample with at least `p`% of the samples at or below it. Of 100 samples,
/// p99 is the second largest. 0 for no samples.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

/// The largest sample; 0 for none.
pub fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// `{"median": …, "p99": …}` of a set of times.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Summary {
    pub median: f64,
    pub p99: f64,
}

impl Summary {
    pub fn of(v: &[f64]) -> Summary {
        Summary {
            median: median(v),
            p99: percentile(v, 99.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 99.0), 99.0);
        assert_eq!(percentile(&hundred, 100.0), 100.0);
        assert_eq!(percentile(&[5.0], 99.0), 5.0);
        assert_eq!(max(&hundred), 100.0);
        assert_eq!(median(&[]), 0.0);
    }
}
