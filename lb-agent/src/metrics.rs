//! Prometheus metrics: `GET /metrics` over HTTP/1.1, rendered on each scrape
//! from the reconciler's `Status` and `Stats` answers (docs/metrics.md lists
//! every family).
//!
//! Nothing is cached here: the kernel keeps the counters as totals, so a
//! scrape reads them through the reconciler, the one owner of the data path,
//! and renders them as they are.

use std::{convert::Infallible, fmt, future::Future, io, net::SocketAddr, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    Method, Response, StatusCode,
    body::Incoming,
    header::{ALLOW, CONTENT_TYPE, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use lb_common::consts::Reason;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, text::encode},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{oneshot, watch},
    task::JoinSet,
};
use tracing::{debug, info, warn};

use lb_api::types::{ApiError, BackendStatus, Counters, Stats, Status};

use crate::api::{Reply, Request, RequestSender};

/// The one path served.
pub const METRICS_PATH: &str = "/metrics";

/// What [`render`] produces (prometheus-client's OpenMetrics text encoder).
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Backend states in the data path (lb-common `consts::state`). Each gets an
/// `lb_backends{state}` series even at 0, so alerts on `down` see a value
/// rather than an absent series.
const BACKEND_STATES: [&str; 4] = ["up", "drain", "down", "maint"];

/// How long a scrape waits for the reconciler. Prometheus' default scrape
/// timeout is 10s; answering 503 earlier says which side was slow.
const RECONCILER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long open connections get to finish their response after shutdown.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (EMFILE and the like) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the binary is: `lb_build_info{version}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: String,
}

impl BuildInfo {
    /// This build of lb-ctl.
    pub fn current() -> Self {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Serves `GET /metrics` on `addr` until `shutdown` completes.
///
/// Returns an error only if `addr` cannot be bound; once serving, failed
/// connections are logged and the server goes on.
pub async fn serve(
    addr: SocketAddr,
    tx: RequestSender,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve_on(listener, tx, shutdown).await
}

/// [`serve`] on a listener already bound (tests bind port 0 and read the
/// address back).
///
/// On `shutdown` it stops accepting at once, lets open connections finish the
/// response they are writing (idle keep-alive connections close), and gives
/// up on the rest after [`DRAIN_DEADLINE`].
pub async fn serve_on(
    listener: TcpListener,
    tx: RequestSender,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving metrics on http://{addr}{METRICS_PATH}");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, tx.clone(), stop_rx.clone()));
                }
                Err(e) => {
                    warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reap finished connections so the set holds only open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    stop_tx.send_replace(true);
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = connections.len(),
            "metrics: connections still open after the drain deadline; closing them"
        );
        connections.abort_all();
    }
    Ok(())
}

/// One HTTP/1.1 connection, until the peer closes it or the server stops.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tx: RequestSender,
    mut stop: watch::Receiver<bool>,
) {
    let service = service_fn(move |req| {
        let tx = tx.clone();
        async move { Ok::<_, Infallible>(respond(&req, &tx).await) }
    });
    let mut builder = http1::Builder::new();
    // A timer turns on hyper's header read timeout (30s), so a client that
    // never finishes its request does not hold a connection forever.
    builder.timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        // Only ever set to true (or the sender is gone): either way, stop.
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "metrics: connection ended with an error");
    }
}

/// Answers one request.
async fn respond(req: &hyper::Request<Incoming>, tx: &RequestSender) -> Response<Full<Bytes>> {
    if req.uri().path() != METRICS_PATH {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if req.method() != Method::GET {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match scrape(tx).await {
        Ok((status, stats)) => {
            let body = render(&status, &stats, &BuildInfo::current());
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS),
            );
            response
        }
        Err(e) => {
            warn!(error = %e, "metrics: scrape failed");
            // The reason names our side's state only, never internals.
            match e {
                ScrapeError::ReconcilerGone | ScrapeError::Timeout { .. } => {
                    plain(StatusCode::SERVICE_UNAVAILABLE, "reconciler unavailable\n")
                }
                ScrapeError::Api { .. } => plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "could not read the agent's state\n",
                ),
            }
        }
    }
}

fn plain(code: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = code;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Why a scrape got no data.
#[derive(Debug, thiserror::Error)]
enum ScrapeError {
    /// The reconciler's channel is closed, or it dropped our reply.
    #[error("the reconciler is gone")]
    ReconcilerGone,
    #[error("the reconciler did not answer {what} within {RECONCILER_TIMEOUT:?}")]
    Timeout { what: &'static str },
    #[error("the reconciler could not answer {what}")]
    Api {
        what: &'static str,
        #[source]
        source: ApiError,
    },
}

/// Asks the reconciler for `Status` and `Stats`: both are sent before either
/// is awaited, so they are answered back to back.
async fn scrape(tx: &RequestSender) -> Result<(Status, Stats), ScrapeError> {
    let status = ask(tx, Request::Status)?;
    let stats = ask(tx, Request::Stats)?;
    let (status, stats) = tokio::join!(answer(status, "status"), answer(stats, "stats"));
    Ok((status?, stats?))
}

type Answer<T> = oneshot::Receiver<Result<T, ApiError>>;

fn ask<T>(tx: &RequestSender, request: fn(Reply<T>) -> Request) -> Result<Answer<T>, ScrapeError> {
    let (reply, answer) = oneshot::channel();
    tx.send(request(reply))
        .map_err(|_| ScrapeError::ReconcilerGone)?;
    Ok(answer)
}

async fn answer<T>(answer: Answer<T>, what: &'static str) -> Result<T, ScrapeError> {
    match tokio::time::timeout(RECONCILER_TIMEOUT, answer).await {
        Err(_) => Err(ScrapeError::Timeout { what }),
        Ok(Err(_)) => Err(ScrapeError::ReconcilerGone),
        Ok(Ok(Err(source))) => Err(ScrapeError::Api { what, source }),
        Ok(Ok(Ok(value))) => Ok(value),
    }
}

/// The OpenMetrics text exposition of one scrape, `# EOF` included.
///
/// Counters and their labels come from `stats` (one snapshot of the kernel's
/// totals); state, weights and reload history from `status`.
pub fn render(status: &Status, stats: &Stats, build: &BuildInfo) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(families(status, stats, build))));
    let mut out = String::new();
    encode(&mut out, &registry).expect("encoding into a String cannot fail");
    out
}

/// Label name/value pairs, in the order they are written.
type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
enum Points {
    /// Absolute totals; the encoder appends `_total` to the family name.
    Counter(Vec<(Labels, u64)>),
    Gauge(Vec<(Labels, u64)>),
    /// One series of value 1; the encoder appends `_info` to the family name.
    Info(Labels),
}

#[derive(Debug)]
struct Family {
    /// Without the `_total`/`_info` suffix the encoder adds.
    name: &'static str,
    help: &'static str,
    points: Points,
}

fn counter(name: &'static str, help: &'static str, points: Vec<(Labels, u64)>) -> Family {
    Family {
        name,
        help,
        points: Points::Counter(points),
    }
}

fn gauge(name: &'static str, help: &'static str, points: Vec<(Labels, u64)>) -> Family {
    Family {
        name,
        help,
        points: Points::Gauge(points),
    }
}

/// Every family of one scrape, in exposition order. Series keep the order the
/// reconciler lists VIPs and backends in, so the output is stable.
fn families(status: &Status, stats: &Stats, build: &BuildInfo) -> Vec<Family> {
    let mut vips: Vec<(Labels, Counters)> = Vec::new();
    let mut backends: Vec<(Labels, Counters)> = Vec::new();
    for vip in &stats.vips {
        let labels = vec![
            ("vip", vip.name.clone()),
            ("address", vip.address.to_string()),
            ("port", vip.port.to_string()),
            ("protocol", vip.protocol.to_string()),
        ];
        vips.push((labels, vip.counters));
        for backend in &vip.backends {
            let labels = vec![
                ("vip", vip.name.clone()),
                ("backend", backend.name.clone()),
                ("address", backend.address.to_string()),
                ("state", backend.state.clone()),
            ];
            backends.push((labels, backend.counters));
        }
    }
    let each = |series: &[(Labels, Counters)], field: fn(&Counters) -> u64| {
        series
            .iter()
            .map(|(labels, c)| (labels.clone(), field(c)))
            .collect::<Vec<_>>()
    };

    let backend_series = |value: fn(&BackendStatus) -> u64| {
        status
            .vips
            .iter()
            .flat_map(|vip| vip.backends.iter().map(move |b| (vip, b)))
            .map(|(vip, b)| {
                let labels = vec![("vip", vip.name.clone()), ("backend", b.name.clone())];
                (labels, value(b))
            })
            .collect::<Vec<_>>()
    };

    let reloads = &status.reloads;
    let last_ok = matches!(reloads.last_result.as_deref(), None | Some("ok"));

    let mut families = vec![
        Family {
            name: "lb_build",
            help: "lb-ctl build; the value is always 1.",
            points: Points::Info(vec![("version", build.version.clone())]),
        },
        gauge(
            "lb_vips",
            "Number of VIPs.",
            vec![(vec![], u64::try_from(status.vips.len()).unwrap_or(u64::MAX))],
        ),
        gauge(
            "lb_backends",
            "Number of backends, over all VIPs, by state in the data path.",
            backends_by_state(status),
        ),
        gauge(
            "lb_backend_up",
            "1 if the backend's state is up, else 0.",
            backend_series(|b| u64::from(b.state == "up")),
        ),
        gauge(
            "lb_backend_weight",
            "Weight in effect (share of new flows).",
            backend_series(|b| u64::from(b.weight)),
        ),
        counter(
            "lb_vip_packets",
            "Packets to the VIP forwarded to a backend.",
            each(&vips, |c| c.packets),
        ),
        counter(
            "lb_vip_bytes",
            "IP bytes of the packets in lb_vip_packets_total.",
            each(&vips, |c| c.bytes),
        ),
        counter(
            "lb_vip_new_flows",
            "Flows to the VIP assigned a backend by the ring.",
            each(&vips, |c| c.new_flows),
        ),
        counter(
            "lb_backend_packets",
            "Packets forwarded to the backend.",
            each(&backends, |c| c.packets),
        ),
        counter(
            "lb_backend_bytes",
            "IP bytes of the packets in lb_backend_packets_total.",
            each(&backends, |c| c.bytes),
        ),
        counter(
            "lb_backend_new_flows",
            "Flows assigned to the backend by the ring.",
            each(&backends, |c| c.new_flows),
        ),
        counter(
            "lb_datapath_packets",
            "Packets seen by the XDP program, by verdict reason.",
            datapath_reasons(stats),
        ),
        counter(
            "lb_reloads",
            "Configuration reloads, by result.",
            vec![
                (
                    vec![("result", "ok".to_owned())],
                    reloads.count.saturating_sub(reloads.failures),
                ),
                (vec![("result", "error".to_owned())], reloads.failures),
            ],
        ),
        gauge(
            "lb_last_reload_success",
            "1 if the last reload succeeded or none was tried yet, 0 if it failed.",
            vec![(vec![], u64::from(last_ok))],
        ),
    ];
    if let Some(at) = reloads.last_at {
        families.push(gauge(
            "lb_last_reload_timestamp_seconds",
            "Unix time of the last reload attempt.",
            vec![(vec![], at)],
        ));
    }
    families
}

/// `lb_backends{state}`: every known state, 0 included, then any state this
/// build does not know yet.
fn backends_by_state(status: &Status) -> Vec<(Labels, u64)> {
    let mut by_state: Vec<(String, u64)> = BACKEND_STATES
        .iter()
        .map(|s| ((*s).to_owned(), 0))
        .collect();
    for backend in status.vips.iter().flat_map(|vip| &vip.backends) {
        match by_state.iter_mut().find(|(s, _)| *s == backend.state) {
            Some((_, n)) => *n += 1,
            None => by_state.push((backend.state.clone(), 1)),
        }
    }
    by_state
        .into_iter()
        .map(|(state, n)| (vec![("state", state)], n))
        .collect()
}

/// `lb_datapath_packets_total{reason}`: every reason the data path has, 0 when
/// the map lacks it, so rate() and alerts on drop reasons work from the first
/// scrape; then any name a newer data path reports that this build does not know.
fn datapath_reasons(stats: &Stats) -> Vec<(Labels, u64)> {
    let known = Reason::ALL.iter().map(|r| {
        (
            r.name().to_owned(),
            stats.reasons.get(r.name()).copied().unwrap_or(0),
        )
    });
    let unknown = stats
        .reasons
        .iter()
        .filter(|(name, _)| !Reason::ALL.iter().any(|r| r.name() == name.as_str()))
        .map(|(name, n)| (name.clone(), *n));
    known
        .chain(unknown)
        .map(|(reason, n)| (vec![("reason", reason)], n))
        .collect()
}

/// One scrape's families, written through prometheus-client's encoder (which
/// owns the format: suffixes, label escaping, `# EOF`).
#[derive(Debug)]
struct Snapshot(Vec<Family>);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        for family in &self.0 {
            let metric_type = match &family.points {
                // Like prometheus-client's Registry, a family with no series
                // (no VIPs yet) is left out rather than written bare.
                Points::Counter(p) | Points::Gauge(p) if p.is_empty() => continue,
                Points::Counter(_) => MetricType::Counter,
                Points::Gauge(_) => MetricType::Gauge,
                Points::Info(_) => MetricType::Info,
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
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, path::PathBuf};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use lb_api::types::{
        BackendStats, BackendStatus, Rates, ReloadInfo, Source, VipStats, VipStatus,
    };
    use lb_config::{HashMode, Protocol};

    /// A backend name that needs every escape the text format has.
    const ODD_NAME: &str = "a\"b\\c\nd";

    fn counters(packets: u64, bytes: u64, new_flows: u64) -> Counters {
        Counters {
            packets,
            bytes,
            new_flows,
        }
    }

    fn status(vips: Vec<VipStatus>, reloads: ReloadInfo) -> Status {
        Status {
            version: "test".into(),
            config_file: PathBuf::from("/etc/lb/lb.yaml"),
            state_file: PathBuf::from("/var/lib/lb/state.json"),
            precedence: "file, then runtime changes".into(),
            bpffs: PathBuf::from("/sys/fs/bpf/lb"),
            adopted: false,
            interfaces: vec![],
            reloads,
            vips,
        }
    }

    fn empty_stats() -> Stats {
        Stats {
            interval_secs: 1.0,
            vips: vec![],
            reasons: BTreeMap::new(),
        }
    }

    /// (name, address, state, weight, counters) of a backend.
    type Be = (&'static str, &'static str, &'static str, u32, Counters);
    /// (name, address, port, protocol, counters, backends) of a VIP.
    type Vip = (&'static str, &'static str, u16, Protocol, Counters, Vec<Be>);

    /// The same VIPs seen by `Status` and by `Stats`.
    fn fixture() -> (Status, Stats) {
        let vips: [Vip; 2] = [
            (
                "web",
                "10.0.0.1",
                80,
                Protocol::Tcp,
                counters(1000, 150_000, 40),
                vec![
                    ("web-1", "10.0.1.1", "up", 100, counters(600, 90_000, 25)),
                    ("web-2", "10.0.1.2", "drain", 50, counters(400, 60_000, 15)),
                    (ODD_NAME, "10.0.1.3", "down", 1, counters(0, 0, 0)),
                ],
            ),
            (
                "dns",
                "2001:db8::53",
                53,
                Protocol::Udp,
                counters(7, 700, 7),
                vec![("dns-1", "2001:db8::1:1", "maint", 10, counters(7, 700, 7))],
            ),
        ];
        let mut vip_status = Vec::new();
        let mut vip_stats = Vec::new();
        for (name, address, port, protocol, c, backends) in vips {
            let address = address.parse().expect("VIP address");
            vip_status.push(VipStatus {
                name: name.into(),
                address,
                port,
                protocol,
                hash: HashMode::Source,
                ring_size: 65_537,
                source: Source::Config,
                counters: c,
                backends: backends
                    .iter()
                    .map(|&(name, address, state, weight, c)| BackendStatus {
                        name: name.into(),
                        address: address.parse().expect("backend address"),
                        port,
                        weight,
                        config_weight: Some(weight),
                        weight_override: None,
                        state: state.into(),
                        config_state: None,
                        state_override: None,
                        down_reason: None,
                        source: Source::Config,
                        next_hop: None,
                        counters: c,
                    })
                    .collect(),
            });
            vip_stats.push(VipStats {
                name: name.into(),
                address,
                port,
                protocol,
                counters: c,
                rates: Rates::default(),
                backends: backends
                    .iter()
                    .map(|&(name, address, state, weight, c)| BackendStats {
                        name: name.into(),
                        address: address.parse().expect("backend address"),
                        state: state.into(),
                        weight,
                        counters: c,
                        rates: Rates::default(),
                    })
                    .collect(),
            });
        }
        let reloads = ReloadInfo {
            count: 5,
            failures: 2,
            last_result: Some("error".into()),
            last_error: Some("lb.yaml:3:7: unknown key".into()),
            last_at: Some(1_700_000_000),
        };
        let reasons = [
            ("tx", 900),
            ("redirect", 100),
            ("pass_not_vip", 12),
            ("from_the_future", 3),
        ]
        .into_iter()
        .map(|(r, n)| (r.to_owned(), n))
        .collect();
        (
            status(vip_status, reloads),
            Stats {
                interval_secs: 1.0,
                vips: vip_stats,
                reasons,
            },
        )
    }

    fn build() -> BuildInfo {
        BuildInfo {
            version: "1.2.3".into(),
        }
    }

    fn assert_lines(out: &str, expected: &[&str]) {
        for line in expected {
            assert!(
                out.lines().any(|l| l == *line),
                "missing line {line:?} in:\n{out}"
            );
        }
    }

    /// The structure every exposition must have: HELP then TYPE once per
    /// family, samples named after their family with the type's suffix, `# EOF`
    /// last. Returns the families as (name, type).
    fn check_structure(out: &str) -> Vec<(String, String)> {
        assert!(out.ends_with("\n# EOF\n"), "no # EOF at the end:\n{out}");
        let mut families: Vec<(String, String)> = Vec::new();
        let mut previous = "";
        for line in out.lines().filter(|l| *l != "# EOF") {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
                assert!(
                    previous.starts_with(&format!("# HELP {name} ")),
                    "# TYPE {name} not after its # HELP"
                );
                assert!(
                    families.iter().all(|(n, _)| n != name),
                    "two # TYPE lines for {name}:\n{out}"
                );
                families.push((name.to_owned(), kind.to_owned()));
            } else if !line.starts_with('#') {
                let (name, kind) = families.last().expect("a sample before any # TYPE");
                let sample = line.split(['{', ' ']).next().unwrap_or_default();
                let expected = match kind.as_str() {
                    "counter" => format!("{name}_total"),
                    "info" => format!("{name}_info"),
                    "gauge" => name.clone(),
                    other => panic!("unexpected type {other}"),
                };
                assert_eq!(
                    sample, expected,
                    "sample {line:?} under family {name} ({kind})"
                );
            }
            previous = line;
        }
        families
    }

    #[test]
    fn renders_every_family() {
        let (status, stats) = fixture();
        let out = render(&status, &stats, &build());
        assert_lines(
            &out,
            &[
                r#"lb_build_info{version="1.2.3"} 1"#,
                "lb_vips 2",
                r#"lb_backends{state="up"} 1"#,
                r#"lb_backends{state="drain"} 1"#,
                r#"lb_backends{state="down"} 1"#,
                r#"lb_backends{state="maint"} 1"#,
                r#"lb_backend_up{vip="web",backend="web-1"} 1"#,
                r#"lb_backend_up{vip="web",backend="web-2"} 0"#,
                r#"lb_backend_up{vip="dns",backend="dns-1"} 0"#,
                r#"lb_backend_weight{vip="web",backend="web-1"} 100"#,
                r#"lb_backend_weight{vip="web",backend="a\"b\\c\nd"} 1"#,
                r#"lb_backend_weight{vip="dns",backend="dns-1"} 10"#,
                r#"lb_vip_packets_total{vip="web",address="10.0.0.1",port="80",protocol="tcp"} 1000"#,
                r#"lb_vip_bytes_total{vip="web",address="10.0.0.1",port="80",protocol="tcp"} 150000"#,
                r#"lb_vip_new_flows_total{vip="web",address="10.0.0.1",port="80",protocol="tcp"} 40"#,
                r#"lb_vip_packets_total{vip="dns",address="2001:db8::53",port="53",protocol="udp"} 7"#,
                r#"lb_backend_packets_total{vip="web",backend="web-1",address="10.0.1.1",state="up"} 600"#,
                r#"lb_backend_bytes_total{vip="web",backend="web-2",address="10.0.1.2",state="drain"} 60000"#,
                r#"lb_backend_new_flows_total{vip="web",backend="web-2",address="10.0.1.2",state="drain"} 15"#,
                r#"lb_backend_packets_total{vip="web",backend="a\"b\\c\nd",address="10.0.1.3",state="down"} 0"#,
                r#"lb_backend_bytes_total{vip="dns",backend="dns-1",address="2001:db8::1:1",state="maint"} 700"#,
                r#"lb_datapath_packets_total{reason="tx"} 900"#,
                r#"lb_datapath_packets_total{reason="redirect"} 100"#,
                r#"lb_datapath_packets_total{reason="pass_not_vip"} 12"#,
                r#"lb_datapath_packets_total{reason="drop_no_backend"} 0"#,
                r#"lb_datapath_packets_total{reason="from_the_future"} 3"#,
                r#"lb_reloads_total{result="ok"} 3"#,
                r#"lb_reloads_total{result="error"} 2"#,
                "lb_last_reload_success 0",
                "lb_last_reload_timestamp_seconds 1700000000",
            ],
        );
        let families = check_structure(&out);
        let kinds: Vec<(&str, &str)> = families
            .iter()
            .map(|(n, k)| (n.as_str(), k.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("lb_build", "info"),
                ("lb_vips", "gauge"),
                ("lb_backends", "gauge"),
                ("lb_backend_up", "gauge"),
                ("lb_backend_weight", "gauge"),
                ("lb_vip_packets", "counter"),
                ("lb_vip_bytes", "counter"),
                ("lb_vip_new_flows", "counter"),
                ("lb_backend_packets", "counter"),
                ("lb_backend_bytes", "counter"),
                ("lb_backend_new_flows", "counter"),
                ("lb_datapath_packets", "counter"),
                ("lb_reloads", "counter"),
                ("lb_last_reload_success", "gauge"),
                ("lb_last_reload_timestamp_seconds", "gauge"),
            ]
        );
        // One series per reason the data path knows, plus the unknown one.
        let reasons = out
            .lines()
            .filter(|l| l.starts_with("lb_datapath_packets_total{"))
            .count();
        assert_eq!(reasons, Reason::ALL.len() + 1);
    }

    #[test]
    fn empty_status_renders_build_info_and_zeroes() {
        let out = render(
            &status(vec![], ReloadInfo::default()),
            &empty_stats(),
            &build(),
        );
        assert_lines(
            &out,
            &[
                r#"lb_build_info{version="1.2.3"} 1"#,
                "lb_vips 0",
                r#"lb_backends{state="up"} 0"#,
                r#"lb_backends{state="drain"} 0"#,
                r#"lb_backends{state="down"} 0"#,
                r#"lb_backends{state="maint"} 0"#,
                r#"lb_datapath_packets_total{reason="tx"} 0"#,
                r#"lb_datapath_packets_total{reason="drop_internal"} 0"#,
                r#"lb_reloads_total{result="ok"} 0"#,
                r#"lb_reloads_total{result="error"} 0"#,
                "lb_last_reload_success 1",
            ],
        );
        check_structure(&out);
        // Families with no series are left out, not written bare.
        for absent in ["lb_vip_", "lb_backend_", "lb_last_reload_timestamp_seconds"] {
            assert!(
                !out.contains(absent),
                "{absent} in an empty exposition:\n{out}"
            );
        }
    }

    #[test]
    fn last_reload_success_follows_the_last_result() {
        for (last_result, expected) in [(None, 1), (Some("ok"), 1), (Some("error"), 0)] {
            let reloads = ReloadInfo {
                count: 1,
                last_result: last_result.map(Into::into),
                ..Default::default()
            };
            let out = render(&status(vec![], reloads), &empty_stats(), &build());
            assert_lines(&out, &[&format!("lb_last_reload_success {expected}")]);
        }
    }

    #[test]
    fn build_info_is_this_crate() {
        assert_eq!(BuildInfo::current().version, env!("CARGO_PKG_VERSION"));
    }

    // --- the HTTP server ---

    /// Deadline for any one network step of a test.
    const STEP: Duration = Duration::from_secs(10);

    /// A reconciler thread answering `Status` and `Stats` with fixed values;
    /// it ends when every sender is gone.
    fn fake_reconciler(
        status: Status,
        stats: Stats,
    ) -> (RequestSender, std::thread::JoinHandle<()>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            for request in rx {
                match request {
                    Request::Status(reply) => drop(reply.send(Ok(status.clone()))),
                    Request::Stats(reply) => drop(reply.send(Ok(stats.clone()))),
                    other => panic!("metrics asked the reconciler for {other:?}"),
                }
            }
        });
        (tx, thread)
    }

    struct TestServer {
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<io::Result<()>>,
    }

    async fn start(tx: RequestSender) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_on(listener, tx, async move {
            let _ = stopped.await;
        }));
        TestServer { addr, stop, task }
    }

    impl TestServer {
        async fn stop(self) {
            self.stop.send(()).expect("server still running");
            tokio::time::timeout(STEP, self.task)
                .await
                .expect("server stops within the deadline")
                .expect("server task panicked")
                .expect("server returns Ok");
        }
    }

    /// One raw HTTP/1.1 request; returns (status code, head, body).
    async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
        let exchange = async {
            let mut stream = TcpStream::connect(addr)
                .await
                .expect("connect to the metrics server");
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream
                .write_all(request.as_bytes())
                .await
                .expect("write request");
            let mut response = Vec::new();
            stream
                .read_to_end(&mut response)
                .await
                .expect("read response");
            String::from_utf8(response).expect("UTF-8 response")
        };
        let response = tokio::time::timeout(STEP, exchange)
            .await
            .expect("response within the deadline");
        let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
        let code = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status code in {head:?}"));
        (code, head.to_owned(), body.to_owned())
    }

    #[tokio::test]
    async fn serves_metrics_and_404_elsewhere() {
        let (status, stats) = fixture();
        let (tx, reconciler) = fake_reconciler(status, stats);
        let server = start(tx).await;
        let addr = server.addr;

        let (code, head, body) = request(addr, "GET", "/metrics").await;
        assert_eq!(code, 200, "{head}\n\n{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("content-type: {CONTENT_TYPE_OPENMETRICS}")),
            "{head}"
        );
        assert!(body.contains("lb_vip_packets_total{"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");

        let (code, _, body) = request(addr, "GET", "/").await;
        assert_eq!(code, 404, "{body}");
        let (code, _, body) = request(addr, "GET", "/metricsx").await;
        assert_eq!(code, 404, "{body}");
        let (code, head, _) = request(addr, "POST", "/metrics").await;
        assert_eq!(code, 405, "{head}");
        assert!(head.to_ascii_lowercase().contains("allow: get"), "{head}");

        server.stop().await;
        // Stopped accepting: the listener is closed.
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "still accepting after shutdown"
        );
        // The server's senders are gone, so the reconciler thread ends.
        reconciler.join().expect("fake reconciler panicked");
    }

    #[tokio::test]
    async fn reconciler_gone_is_503() {
        let (tx, rx) = std::sync::mpsc::channel();
        drop(rx);
        let server = start(tx).await;
        let (code, _, body) = request(server.addr, "GET", "/metrics").await;
        assert_eq!(code, 503, "{body}");
        server.stop().await;
    }

    #[tokio::test]
    async fn serve_reports_a_bind_failure() {
        let taken = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = taken.local_addr().expect("listener address");
        let (tx, _rx) = std::sync::mpsc::channel();
        let err = tokio::time::timeout(STEP, serve(addr, tx, std::future::pending()))
            .await
            .expect("serve returns at once")
            .expect_err("the address is taken");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
