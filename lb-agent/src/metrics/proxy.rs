//! L7 proxy families, from the proxy's statistics (`crate::proxy::stats`):
//! per frontend (connections, requests, responses by class, bytes,
//! refusals), per pool and per server (requests, responses, bytes, errors,
//! retries, redispatches, load, state). Absent when no proxy runs.

use std::time::UNIX_EPOCH;

use lb_api::types::BackendState;
use lb_proxy::front::counters::RESPONSE_CLASSES as CLASSES;
use lb_proxy::histogram::{BOUNDS, TimesSnapshot};
use lb_proxy::reject::Reason;
use lb_proxy::stats::{FrontendStats, PoolStats, ServerStats, Stats};
use lb_proxy::upstream::Snapshot;

use super::encode::{Family, HistogramSeries, Labels, Points, counter, gauge};

pub(super) fn families(s: &Stats) -> Vec<Family> {
    let mut out = frontends(s);
    out.extend(upstream(
        Prefix::POOL,
        s.pools
            .iter()
            .map(|p| (vec![("pool", p.name.clone())], &p.counters))
            .collect(),
    ));
    out.push(gauge(
        "lb_proxy_pool_queued",
        "Requests waiting for any server of the pool.",
        s.pools
            .iter()
            .map(|p| (vec![("pool", p.name.clone())], u64::from(p.queued)))
            .collect(),
    ));
    let servers: Vec<(&PoolStats, &ServerStats)> = s
        .pools
        .iter()
        .flat_map(|p| p.servers.iter().map(move |sv| (p, sv)))
        .collect();
    let label = |p: &PoolStats, sv: &ServerStats| -> Labels {
        vec![("pool", p.name.clone()), ("server", sv.name.clone())]
    };
    out.extend(upstream(
        Prefix::SERVER,
        servers
            .iter()
            .map(|(p, sv)| (label(p, sv), &sv.counters))
            .collect(),
    ));
    out.extend(server_state(&servers, label));
    out.extend(access_log());
    out
}

/// The access log's losses: lines dropped on a full queue, lines a target
/// did not take.
fn access_log() -> [Family; 2] {
    [
        counter(
            "lb_proxy_log_dropped",
            "Access log lines dropped because the log queue was full.",
            vec![(Vec::new(), lb_proxy::log::dropped())],
        ),
        counter(
            "lb_proxy_log_send_errors",
            "Access log lines a target did not take (send or write failed, socket missing).",
            vec![(Vec::new(), lb_proxy::log::send_failures())],
        ),
    ]
}

fn frontends(s: &Stats) -> Vec<Family> {
    let rows: Vec<(Labels, &FrontendStats)> = s
        .frontends
        .iter()
        .map(|f| (vec![("frontend", f.name.clone())], f))
        .collect();
    vec![
        counter(
            "lb_proxy_frontend_connections",
            "Client connections accepted by the frontend.",
            each(&rows, |f| f.counters.connections),
        ),
        gauge(
            "lb_proxy_frontend_active_connections",
            "Client connections open now.",
            each(&rows, |f| f.counters.active),
        ),
        gauge(
            "lb_proxy_frontend_maxconn",
            "The frontend's connection limit.",
            each(&rows, |f| u64::from(f.maxconn)),
        ),
        counter(
            "lb_proxy_frontend_requests",
            "Request heads read whole.",
            each(&rows, |f| f.counters.requests),
        ),
        counter(
            "lb_proxy_frontend_responses",
            "Responses sent to clients, by status class (the proxy's own answers included).",
            split(&rows, "class", &CLASSES, |f, i| f.counters.responses[i]),
        ),
        counter(
            "lb_proxy_frontend_bytes",
            "Bytes read from (in) and written to (out) clients.",
            split(&rows, "direction", &["in", "out"], |f, i| {
                [f.counters.bytes_in, f.counters.bytes_out][i]
            }),
        ),
        counter(
            "lb_proxy_frontend_rejected",
            "Requests answered by the proxy itself: invalid (400/501), timeout (408 at `timeout http-request`), denied (`http_request` deny).",
            split(
                &rows,
                "reason",
                &["invalid", "timeout", "denied"],
                |f, i| [f.counters.invalid, f.counters.timeouts, f.counters.denied][i],
            ),
        ),
        counter(
            "lb_proxy_frontend_client_errors",
            "Exchanges cut short on the client side (closed early, write failed, `timeout client`).",
            each(&rows, |f| f.counters.client_errors),
        ),
        counter(
            "lb_proxy_frontend_denied",
            "Connections closed at accept (deny_list: src_deny/src_allow; conn_rate, conn_cur) and requests refused (http_req_rate) by the frontend's rate_limit.",
            split(&rows, "reason", &Reason::ALL.map(Reason::as_str), |f, i| {
                f.counters.rejected[i]
            }),
        ),
        histogram(
            "lb_proxy_frontend_response_time_seconds",
            "From a request head read whole to its response head ready to send.",
            &rows,
            |f| &f.counters.response_time,
        ),
    ]
}

/// A response-time histogram per row.
fn histogram<T>(
    name: &'static str,
    help: &'static str,
    rows: &[(Labels, T)],
    times: impl Fn(&T) -> &TimesSnapshot,
) -> Family {
    let series: Vec<HistogramSeries> = rows
        .iter()
        .map(|(l, t)| {
            let t = times(t);
            let bounds = BOUNDS.iter().copied().chain([f64::INFINITY]);
            (l.clone(), t.sum_secs(), bounds.zip(t.counts).collect())
        })
        .collect();
    Family {
        name,
        help,
        points: Points::Histogram(series),
    }
}

/// One value per row.
fn each<T>(rows: &[(Labels, T)], f: impl Fn(&T) -> u64) -> Vec<(Labels, u64)> {
    rows.iter().map(|(l, t)| (l.clone(), f(t))).collect()
}

/// One value per row and per `values`, labelled `key`.
fn split<T>(
    rows: &[(Labels, T)],
    key: &'static str,
    values: &[&'static str],
    f: impl Fn(&T, usize) -> u64,
) -> Vec<(Labels, u64)> {
    let f = &f;
    rows.iter()
        .flat_map(|(l, t)| {
            values.iter().enumerate().map(move |(i, v)| {
                let mut l = l.clone();
                l.push((key, (*v).to_owned()));
                (l, f(t, i))
            })
        })
        .collect()
}

/// Family names for pools or servers (the same counters at two levels).
struct Prefix {
    requests: &'static str,
    responses: &'static str,
    bytes: &'static str,
    connect_errors: &'static str,
    response_errors: &'static str,
    retries: &'static str,
    redispatches: &'static str,
    queue_timeouts: &'static str,
    response_time: &'static str,
}

impl Prefix {
    const POOL: Prefix = Prefix {
        requests: "lb_proxy_pool_requests",
        responses: "lb_proxy_pool_responses",
        bytes: "lb_proxy_pool_bytes",
        connect_errors: "lb_proxy_pool_connect_errors",
        response_errors: "lb_proxy_pool_response_errors",
        retries: "lb_proxy_pool_retries",
        redispatches: "lb_proxy_pool_redispatches",
        queue_timeouts: "lb_proxy_pool_queue_timeouts",
        response_time: "lb_proxy_pool_response_time_seconds",
    };
    const SERVER: Prefix = Prefix {
        requests: "lb_proxy_server_requests",
        responses: "lb_proxy_server_responses",
        bytes: "lb_proxy_server_bytes",
        connect_errors: "lb_proxy_server_connect_errors",
        response_errors: "lb_proxy_server_response_errors",
        retries: "lb_proxy_server_retries",
        redispatches: "lb_proxy_server_redispatches",
        queue_timeouts: "lb_proxy_server_queue_timeouts",
        response_time: "lb_proxy_server_response_time_seconds",
    };
}

/// The server side's counters, at the pool or server level.
fn upstream(p: Prefix, rows: Vec<(Labels, &Snapshot)>) -> Vec<Family> {
    let rows = &rows;
    vec![
        counter(
            p.requests,
            "Requests (mode tcp: connections) given a server.",
            each(rows, |s| s.sessions),
        ),
        counter(
            p.responses,
            "Responses by status class, the proxy's own 502/503/504 included.",
            split(rows, "class", &CLASSES, |s, i| s.responses[i]),
        ),
        counter(
            p.bytes,
            "Body bytes sent to (in) and received from (out) servers.",
            split(rows, "direction", &["in", "out"], |s, i| {
                [s.bytes_in, s.bytes_out][i]
            }),
        ),
        counter(
            p.connect_errors,
            "Connection attempts that failed.",
            each(rows, |s| s.connect_errors),
        ),
        counter(
            p.response_errors,
            "Responses that failed (invalid, cut, timed out).",
            each(rows, |s| s.response_errors),
        ),
        counter(
            p.retries,
            "Attempts made again on the same server.",
            each(rows, |s| s.retries),
        ),
        counter(
            p.redispatches,
            "Requests moved to another server.",
            each(rows, |s| s.redispatches),
        ),
        counter(
            p.queue_timeouts,
            "Requests that waited `timeout queue` and got 503.",
            each(rows, |s| s.queue_timeouts),
        ),
        histogram(
            p.response_time,
            "Pool: from a request's arrival to its response head (queue, retries and the proxy's own 502/503/504 included). Server: from an attempt's start (connect included) to the response head it sent.",
            rows,
            |s| &s.response_time,
        ),
    ]
}

/// Each server's state (1 for the one it is in), weight, load and when its
/// state last changed.
fn server_state(
    servers: &[(&PoolStats, &ServerStats)],
    label: impl Fn(&PoolStats, &ServerStats) -> Labels,
) -> Vec<Family> {
    let each = |f: &dyn Fn(&ServerStats) -> u64| -> Vec<(Labels, u64)> {
        servers.iter().map(|(p, s)| (label(p, s), f(s))).collect()
    };
    let states = servers
        .iter()
        .flat_map(|(p, s)| {
            BackendState::ALL.map(|st| {
                let mut l = label(p, s);
                l.push(("state", st.as_str().to_owned()));
                (l, u64::from(s.state == st))
            })
        })
        .collect();
    vec![
        gauge(
            "lb_proxy_server_state",
            "1 for the server's state in the proxy, 0 for the others.",
            states,
        ),
        gauge(
            "lb_proxy_server_weight",
            "The server's weight in effect.",
            each(&|s| u64::from(s.weight)),
        ),
        gauge(
            "lb_proxy_server_active",
            "Requests (mode tcp: connections) in flight now.",
            each(&|s| u64::from(s.active)),
        ),
        gauge(
            "lb_proxy_server_queued",
            "Requests waiting for this server now.",
            each(&|s| u64::from(s.queued)),
        ),
        gauge(
            "lb_proxy_server_last_change_seconds",
            "When the server's state last changed (or it appeared), unix seconds.",
            each(&|s| {
                s.since
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            }),
        ),
    ]
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::{Duration, SystemTime};

    use lb_config::proxy::ProxyMode;
    use lb_proxy::front::FrontSnapshot;
    use lb_proxy::stats::FrontendStats;

    use super::*;

    /// One frontend, one pool with one server, every counter set.
    pub(in crate::metrics) fn fixture() -> Stats {
        let snap = Snapshot {
            sessions: 7,
            responses: [0, 5, 1, 0, 1, 0],
            bytes_in: 10,
            bytes_out: 700,
            connect_errors: 1,
            retries: 1,
            redispatches: 1,
            ..Snapshot::default()
        };
        Stats {
            frontends: vec![FrontendStats {
                name: "main".into(),
                mode: ProxyMode::Http,
                binds: vec!["*:80".parse().unwrap()],
                maxconn: 3000,
                counters: FrontSnapshot {
                    connections: 3,
                    active: 1,
                    requests: 8,
                    responses: [0, 5, 1, 1, 1, 0],
                    bytes_in: 400,
                    bytes_out: 900,
                    invalid: 1,
                    rejected: [0, 2, 0, 1],
                    response_time: TimesSnapshot {
                        counts: [3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                        sum_us: 12_010_000,
                    },
                    ..FrontSnapshot::default()
                },
            }],
            pools: vec![PoolStats {
                name: "web".into(),
                counters: snap,
                queued: 0,
                servers: vec![ServerStats {
                    name: "web1".into(),
                    addr: "192.0.2.1:80".parse().unwrap(),
                    state: BackendState::Drain,
                    weight: 6,
                    counters: snap,
                    active: 1,
                    queued: 0,
                    maxconn: None,
                    since: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                }],
            }],
        }
    }

    #[test]
    fn server_rows_carry_pool_server_and_state() {
        let text = super::super::encode::text(families(&fixture()));
        assert!(
            text.contains(r#"lb_proxy_server_state{pool="web",server="web1",state="drain"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"lb_proxy_server_state{pool="web",server="web1",state="up"} 0"#));
        assert!(
            text.contains(r#"lb_proxy_frontend_responses_total{frontend="main",class="4xx"} 1"#)
        );
        assert!(
            text.contains(
                r#"lb_proxy_frontend_rejected_total{frontend="main",reason="invalid"} 1"#
            )
        );
        assert!(text.contains(
            r#"lb_proxy_server_last_change_seconds{pool="web",server="web1"} 1700000000"#
        ));
        assert!(text.contains(r#"lb_proxy_pool_redispatches_total{pool="web"} 1"#));
    }

    #[test]
    fn refusals_and_response_times_are_rendered() {
        let text = super::super::encode::text(families(&fixture()));
        for line in [
            r#"lb_proxy_frontend_denied_total{frontend="main",reason="conn_rate"} 2"#,
            r#"lb_proxy_frontend_denied_total{frontend="main",reason="http_req_rate"} 1"#,
            r#"lb_proxy_frontend_denied_total{frontend="main",reason="deny_list"} 0"#,
            r#"lb_proxy_frontend_response_time_seconds_bucket{le="0.001",frontend="main"} 3"#,
            r#"lb_proxy_frontend_response_time_seconds_bucket{le="0.01",frontend="main"} 4"#,
            r#"lb_proxy_frontend_response_time_seconds_bucket{le="10.0",frontend="main"} 4"#,
            r#"lb_proxy_frontend_response_time_seconds_bucket{le="+Inf",frontend="main"} 5"#,
            r#"lb_proxy_frontend_response_time_seconds_count{frontend="main"} 5"#,
            r#"lb_proxy_frontend_response_time_seconds_sum{frontend="main"} 12.01"#,
            r#"lb_proxy_server_response_time_seconds_count{pool="web",server="web1"} 0"#,
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
