//! Prometheus metrics, rendered on each scrape from the reconciler's `Status`
//! and `Stats` answers and the event counts (docs/metrics.md lists every
//! family; a test checks). The HTTP side is `crate::http`.
//!
//! Nothing is cached here: the kernel keeps the counters as totals, so a
//! scrape reads them through the reconciler, the one owner of the data path,
//! and renders them as they are.

mod encode;
mod events;
mod notify;
mod proxy;
#[cfg(test)]
mod tests;
mod vrrp;

use lb_api::types::{BackendState, BackendStatus, Counters, Stats, Status};
use lb_common::consts::Reason;

use encode::{Family, Labels, Points, count, counter, gauge, single, text};
pub use events::{Counts, EventCounts, Transition};

/// What [`render`] produces (prometheus-client's OpenMetrics text encoder).
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the binary is: `lb_build_info{version}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: String,
}

impl BuildInfo {
    /// This build of lb.
    pub fn current() -> Self {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// The OpenMetrics text exposition of one scrape, `# EOF` included.
///
/// Traffic counters come from `stats` (one snapshot of the kernel's totals);
/// states, weights and reload history from `status`; event counts from
/// `events`.
pub fn render(status: &Status, stats: &Stats, events: &Counts, build: &BuildInfo) -> String {
    let mut families = vec![Family {
        name: "lb_build",
        help: "lb build; the value is always 1.",
        points: Points::Info(vec![("version", build.version.clone())]),
    }];
    families.extend(inventory(status));
    families.extend(traffic(stats));
    families.push(datapath(stats));
    families.extend(reloads(status));
    families.extend(checks(status, stats));
    families.extend(event_families(events));
    families.extend(notify::families(&crate::notify::COUNTERS.snapshot()));
    families.extend(vrrp::families(&crate::vrrp::snapshot()));
    if let Some(stats) = crate::proxy::stats() {
        families.extend(proxy::families(&stats));
    }
    text(families)
}

/// Services, pools and backends: how many, in which state, with which weight.
fn inventory(status: &Status) -> Vec<Family> {
    let backends: Vec<(&str, &BackendStatus)> = status
        .pools
        .iter()
        .flat_map(|p| p.backends.iter().map(move |b| (p.name.as_str(), b)))
        .collect();
    let services = count(status.services.len());
    vec![
        single("lb_services", "Number of services.", services),
        single("lb_pools", "Number of pools.", count(status.pools.len())),
        gauge(
            "lb_backends",
            "Number of backends, over all pools, by state.",
            by_state(&backends),
        ),
        gauge(
            "lb_backend_state",
            "1 for the backend's state in effect, 0 for the other three.",
            states(&backends),
        ),
        gauge(
            "lb_backend_weight",
            "Weight in effect (share of new flows).",
            weights(&backends),
        ),
    ]
}

/// Health checks: whether each checked backend's check holds it healthy,
/// how long checks take per pool, and why they fail.
fn checks(status: &Status, stats: &Stats) -> Vec<Family> {
    let healthy = status
        .pools
        .iter()
        .flat_map(|p| p.backends.iter().map(move |b| (p.name.as_str(), b)))
        .filter_map(|(pool, b)| {
            Some((
                backend_labels(pool, b),
                u64::from(b.check.as_ref()?.healthy),
            ))
        })
        .collect();
    let durations = stats
        .checks
        .iter()
        .map(|c| {
            let buckets = c
                .duration_buckets
                .iter()
                .map(|(bound, n)| (bound.unwrap_or(f64::INFINITY), *n))
                .collect();
            (vec![("pool", c.pool.clone())], c.duration_sum_secs, buckets)
        })
        .collect();
    let failures = stats
        .checks
        .iter()
        .flat_map(|c| {
            c.failures.iter().map(move |(reason, n)| {
                (
                    vec![("pool", c.pool.clone()), ("reason", reason.clone())],
                    *n,
                )
            })
        })
        .collect();
    vec![
        gauge(
            "lb_backend_check_healthy",
            "1 while the backend's health check holds it healthy (HAProxy: health >= rise), 0 while it holds it down.",
            healthy,
        ),
        Family {
            name: "lb_check_duration_seconds",
            help: "How long health checks took, per pool.",
            points: Points::Histogram(durations),
        },
        counter(
            "lb_check_failures",
            "Failed health checks, per pool and reason (refused, timeout, http_status, ...).",
            failures,
        ),
    ]
}

/// `{pool, backend}`.
fn backend_labels(pool: &str, b: &BackendStatus) -> Labels {
    vec![("pool", pool.to_owned()), ("backend", b.name.clone())]
}

/// Every state, 0 included, so alerts on `down` see a value rather than an
/// absent series.
fn by_state(backends: &[(&str, &BackendStatus)]) -> Vec<(Labels, u64)> {
    let n = |s: BackendState| count(backends.iter().filter(|(_, b)| b.state == s).count());
    BackendState::ALL
        .iter()
        .map(|s| (vec![("state", s.as_str().to_owned())], n(*s)))
        .collect()
}

/// Four series per backend, one per state.
fn states(backends: &[(&str, &BackendStatus)]) -> Vec<(Labels, u64)> {
    let one = |(pool, b): &(&str, &BackendStatus), s: BackendState| {
        let mut labels = backend_labels(pool, b);
        labels.push(("state", s.as_str().to_owned()));
        (labels, u64::from(b.state == s))
    };
    backends
        .iter()
        .flat_map(|pb| BackendState::ALL.iter().map(move |s| one(pb, *s)))
        .collect()
}

fn weights(backends: &[(&str, &BackendStatus)]) -> Vec<(Labels, u64)> {
    backends
        .iter()
        .map(|(pool, b)| (backend_labels(pool, b), u64::from(b.weight)))
        .collect()
}

/// Packets, bytes and new flows per service, and per backend of each service.
fn traffic(stats: &Stats) -> Vec<Family> {
    let services: Vec<(Labels, Counters)> = stats
        .services
        .iter()
        .map(|s| (vec![("service", s.name.clone())], s.counters))
        .collect();
    let backends: Vec<(Labels, Counters)> = stats
        .services
        .iter()
        .flat_map(|s| {
            s.backends.iter().map(move |b| {
                let labels = vec![
                    ("service", s.name.clone()),
                    ("pool", s.pool.clone()),
                    ("backend", b.name.clone()),
                ];
                (labels, b.counters)
            })
        })
        .collect();
    let mut families = per_counter(&services, SERVICE_TRAFFIC);
    families.extend(per_counter(&backends, BACKEND_TRAFFIC));
    families
}

/// Names and help of the packets, bytes and new-flows families of a service.
const SERVICE_TRAFFIC: [(&str, &str); 3] = [
    (
        "lb_service_packets",
        "Packets to the service forwarded to a backend.",
    ),
    (
        "lb_service_bytes",
        "IP bytes of the packets in lb_service_packets_total.",
    ),
    (
        "lb_service_new_flows",
        "Flows to the service assigned a backend by the ring.",
    ),
];

/// The same per backend of a service.
const BACKEND_TRAFFIC: [(&str, &str); 3] = [
    (
        "lb_backend_packets",
        "Packets of the service forwarded to the backend.",
    ),
    (
        "lb_backend_bytes",
        "IP bytes of the packets in lb_backend_packets_total.",
    ),
    (
        "lb_backend_new_flows",
        "Flows of the service assigned to the backend by the ring.",
    ),
];

/// One counter family per field of [`Counters`] (packets, bytes, new flows),
/// named by `names` in that order.
fn per_counter(
    series: &[(Labels, Counters)],
    names: [(&'static str, &'static str); 3],
) -> Vec<Family> {
    let fields: [fn(&Counters) -> u64; 3] = [|c| c.packets, |c| c.bytes, |c| c.new_flows];
    names
        .into_iter()
        .zip(fields)
        .map(|((name, help), field)| {
            let points = series.iter().map(|(l, c)| (l.clone(), field(c))).collect();
            counter(name, help, points)
        })
        .collect()
}

/// `lb_datapath_packets_total{reason}`: every reason the data path has, 0 when
/// the map lacks it, so rate() and alerts on drop reasons work from the first
/// scrape; then any name a newer data path reports that this build does not know.
fn datapath(stats: &Stats) -> Family {
    let known = Reason::ALL.iter().map(|r| {
        let n = stats.reasons.get(r.name()).copied().unwrap_or(0);
        (r.name().to_owned(), n)
    });
    let unknown = stats
        .reasons
        .iter()
        .filter(|(name, _)| !Reason::ALL.iter().any(|r| r.name() == name.as_str()))
        .map(|(name, n)| (name.clone(), *n));
    let points = known
        .chain(unknown)
        .map(|(reason, n)| (vec![("reason", reason)], n))
        .collect();
    counter(
        "lb_datapath_packets",
        "Packets seen by the XDP program, by verdict reason.",
        points,
    )
}

fn reloads(status: &Status) -> Vec<Family> {
    let r = &status.reloads;
    let last_ok = matches!(r.last_result.as_deref(), None | Some("ok"));
    let by_result = vec![
        (
            vec![("result", "ok".to_owned())],
            r.count.saturating_sub(r.failures),
        ),
        (vec![("result", "error".to_owned())], r.failures),
    ];
    let mut families = vec![
        counter("lb_reloads", "Configuration reloads, by result.", by_result),
        single(
            "lb_last_reload_success",
            "1 if the last reload succeeded or none was tried yet, 0 if it failed.",
            u64::from(last_ok),
        ),
    ];
    if let Some(at) = r.last_at {
        families.push(single(
            "lb_last_reload_timestamp_seconds",
            "Unix time of the last reload attempt.",
            at,
        ));
    }
    families
}

fn event_families(events: &Counts) -> Vec<Family> {
    let by_type = events
        .by_type
        .iter()
        .map(|(t, n)| (vec![("type", (*t).to_owned())], *n))
        .collect();
    let transitions = events
        .transitions
        .iter()
        .map(|(t, n)| {
            let labels = vec![
                ("pool", t.pool.clone()),
                ("backend", t.backend.clone()),
                ("to", t.to.as_str().to_owned()),
                ("cause", t.cause.as_str().to_owned()),
            ];
            (labels, *n)
        })
        .collect();
    vec![
        counter("lb_events", "Events the agent published, by type.", by_type),
        counter(
            "lb_backend_transitions",
            "Changes of a backend's state in effect, by new state and cause.",
            transitions,
        ),
    ]
}
