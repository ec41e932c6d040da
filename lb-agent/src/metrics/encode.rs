//! One scrape's metric families and how they are written: through
//! prometheus-client's OpenMetrics text encoder, which owns the format
//! (suffixes, label escaping, `# EOF`).

use std::fmt;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, text::encode},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

/// Label name/value pairs, in the order they are written.
pub(super) type Labels = Vec<(&'static str, String)>;

/// A family's series.
#[derive(Debug)]
pub(super) enum Points {
    /// Absolute totals; the encoder appends `_total` to the family name.
    Counter(Vec<(Labels, u64)>),
    Gauge(Vec<(Labels, u64)>),
    /// One series of value 1; the encoder appends `_info` to the family name.
    Info(Labels),
    /// Histograms; the encoder writes cumulative `_bucket`, `_sum` and `_count`.
    Histogram(Vec<HistogramSeries>),
}

/// One histogram series: labels, the sum, and (upper bound, count in that
/// bucket) with the last bound `f64::INFINITY` (+Inf).
pub(super) type HistogramSeries = (Labels, f64, Vec<(f64, u64)>);

#[derive(Debug)]
pub(super) struct Family {
    /// Without the `_total`/`_info` suffix the encoder adds.
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) points: Points,
}

pub(super) fn counter(
    name: &'static str,
    help: &'static str,
    points: Vec<(Labels, u64)>,
) -> Family {
    Family {
        name,
        help,
        points: Points::Counter(points),
    }
}

pub(super) fn gauge(name: &'static str, help: &'static str, points: Vec<(Labels, u64)>) -> Family {
    Family {
        name,
        help,
        points: Points::Gauge(points),
    }
}

/// A gauge with one series and no labels.
pub(super) fn single(name: &'static str, help: &'static str, value: u64) -> Family {
    gauge(name, help, vec![(vec![], value)])
}

/// `n` as a gauge value.
pub(super) fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The OpenMetrics text of `families`, `# EOF` included.
pub(super) fn text(families: Vec<Family>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(families)));
    let mut out = String::new();
    // Writing into a String cannot fail, and every family is well formed.
    let _ = encode(&mut out, &registry);
    out
}

/// One scrape's families as a prometheus-client collector.
#[derive(Debug)]
struct Snapshot(Vec<Family>);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        for family in &self.0 {
            let metric_type = match &family.points {
                // Like prometheus-client's Registry, a family with no series
                // (no services yet) is left out rather than written bare.
                Points::Counter(p) | Points::Gauge(p) if p.is_empty() => continue,
                Points::Histogram(p) if p.is_empty() => continue,
                Points::Counter(_) => MetricType::Counter,
                Points::Gauge(_) => MetricType::Gauge,
                Points::Info(_) => MetricType::Info,
                Points::Histogram(_) => MetricType::Histogram,
            };
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, metric_type)?;
            match &family.points {
                Points::Counter(points) => {
                    for (labels, value) in points {
                        ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
                    }
                }
                Points::Gauge(points) => {
                    for (labels, value) in points {
                        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
                    }
                }
                Points::Info(labels) => metric.encode_info(labels)?,
                Points::Histogram(series) => {
                    for (labels, sum, buckets) in series {
                        let count = buckets.iter().map(|(_, n)| n).sum();
                        metric
                            .encode_family(labels)?
                            .encode_histogram::<Labels>(*sum, count, buckets, None)?;
                    }
                }
            }
        }
        Ok(())
    }
}
