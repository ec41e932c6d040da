//! The exposition, line by line, and docs/metrics.md against it.

use std::{collections::BTreeSet, path::PathBuf};

use super::*;
use lb_api::{
    events::{Cause, EventKind},
    types::{
        BackendStats, PoolStatus, Rates, ReloadInfo, RingSizeSetting, ServiceBackend, ServiceStats,
        ServiceStatus, Source,
    },
};
use lb_config::{AdminState, HashMode, Protocol, RingSize};

/// A backend name that needs every escape the text format has.
const ODD_NAME: &str = "a\"b\\c\nd";

const fn counters(packets: u64, bytes: u64, new_flows: u64) -> Counters {
    Counters {
        packets,
        bytes,
        new_flows,
    }
}

fn status(pools: Vec<PoolStatus>, services: Vec<ServiceStatus>, reloads: ReloadInfo) -> Status {
    Status {
        version: "test".into(),
        config_file: PathBuf::from("/etc/lb/lb.yaml"),
        state_file: PathBuf::from("/var/lib/lb/overrides.json"),
        precedence: "file, then runtime changes".into(),
        bpffs: PathBuf::from("/sys/fs/bpf/lb"),
        adopted: false,
        interfaces: vec![],
        reloads,
        pools,
        services,
    }
}

fn empty_stats() -> Stats {
    Stats {
        interval_secs: 1.0,
        services: vec![],
        reasons: Default::default(),
        checks: Vec::new(),
    }
}

/// (name, address, state, weight) of a backend.
type Be = (&'static str, &'static str, BackendState, u32);

fn backend(&(name, address, state, weight): &Be) -> BackendStatus {
    let check = (name == "web-1").then(|| lb_api::types::CheckStatus {
        check: "http".into(),
        healthy: true,
        progress: 0,
        threshold: 3,
        last: None,
        since: None,
    });
    BackendStatus {
        name: name.into(),
        address: address.parse().expect("backend address"),
        port: None,
        weight,
        config_weight: Some(weight),
        weight_override: None,
        admin: AdminState::Up,
        config_state: None,
        state_override: None,
        state,
        down_reason: None,
        check,
        since: None,
        source: Source::Config,
        next_hop: None,
        counters: Counters::default(),
    }
}

const WEB: [Be; 3] = [
    ("web-1", "10.0.1.1", BackendState::Up, 100),
    ("web-2", "10.0.1.2", BackendState::Drain, 50),
    (ODD_NAME, "10.0.1.3", BackendState::Down, 1),
];
const DNS: [Be; 1] = [("dns-1", "2001:db8::1:1", BackendState::Maint, 10)];

fn pool(name: &str, backends: &[Be]) -> PoolStatus {
    PoolStatus {
        name: name.into(),
        source: Source::Config,
        services: vec![],
        backends: backends.iter().map(backend).collect(),
    }
}

/// A service: (name, address, port, pool, the pool's backends, what each
/// backend carried for it).
type Svc = (
    &'static str,
    &'static str,
    u16,
    &'static str,
    &'static [Be],
    Counters,
);

/// `web` serves two services, `dns-pool` one.
const SERVICES: [Svc; 3] = [
    (
        "web",
        "10.0.0.1",
        80,
        "web",
        &WEB,
        counters(600, 90_000, 25),
    ),
    ("web-tls", "10.0.0.1", 443, "web", &WEB, counters(1, 100, 1)),
    (
        "dns",
        "2001:db8::53",
        53,
        "dns-pool",
        &DNS,
        counters(7, 700, 7),
    ),
];

fn protocol(port: u16) -> Protocol {
    if port == 53 {
        Protocol::Udp
    } else {
        Protocol::Tcp
    }
}

/// What the service carried: its backends' sum.
fn total(&(.., backends, each): &Svc) -> Counters {
    backends
        .iter()
        .fold(Counters::default(), |t, _| t.plus(each))
}

fn service_status(svc: &Svc) -> ServiceStatus {
    let &(name, address, port, pool, backends, each) = svc;
    ServiceStatus {
        name: name.into(),
        address: address.parse().expect("service address"),
        port,
        protocol: protocol(port),
        hash: HashMode::Source,
        ring_size: RingSizeSetting::from(RingSize::Auto),
        ring_slots: 8191,
        pool: pool.into(),
        source: Source::Config,
        counters: total(svc),
        backends: backends
            .iter()
            .map(|&(name, _, state, weight)| ServiceBackend {
                name: name.into(),
                state,
                weight,
                counters: each,
            })
            .collect(),
    }
}

fn service_stats(svc: &Svc) -> ServiceStats {
    let &(name, address, port, pool, backends, each) = svc;
    ServiceStats {
        name: name.into(),
        address: address.parse().expect("service address"),
        port,
        protocol: protocol(port),
        pool: pool.into(),
        counters: total(svc),
        rates: Rates::default(),
        backends: backends
            .iter()
            .map(|&(name, address, state, weight)| BackendStats {
                name: name.into(),
                address: address.parse().expect("backend address"),
                state,
                weight,
                counters: each,
                rates: Rates::default(),
            })
            .collect(),
    }
}

/// An agent start and one backend drained.
fn events() -> Counts {
    let mut events = Counts::default();
    events.count(&EventKind::AgentStarted {
        version: "1.2.3".into(),
        adopted: false,
    });
    events.count(&EventKind::BackendState {
        pool: "web".into(),
        backend: "web-2".into(),
        address: [10, 0, 0, 2].into(),
        port: Some(80),
        from: Some(BackendState::Up),
        to: BackendState::Drain,
        cause: Cause::Operator,
        reason: "drained by an operator".into(),
    });
    events
}

/// [`SERVICES`] seen by `Status` and `Stats`, a reload history, verdicts
/// (one this build does not know) and events.
fn fixture() -> (Status, Stats, Counts) {
    let reloads = ReloadInfo {
        count: 5,
        failures: 2,
        last_result: Some("error".into()),
        last_error: Some("lb.yaml:3:7: unknown key".into()),
        last_at: Some(1_700_000_000),
    };
    let pools = vec![pool("web", &WEB), pool("dns-pool", &DNS)];
    let reasons = [("tx", 900), ("redirect", 100), ("pass_not_vip", 12)]
        .into_iter()
        .chain([("from_the_future", 3)])
        .map(|(r, n)| (r.to_owned(), n))
        .collect();
    let stats = Stats {
        interval_secs: 1.0,
        services: SERVICES.iter().map(service_stats).collect(),
        reasons,
        checks: vec![lb_api::types::PoolCheckStats {
            pool: "web".into(),
            duration_buckets: vec![(Some(0.001), 3), (Some(0.01), 1), (None, 1)],
            duration_sum_secs: 1.5,
            failures: [("timeout".to_owned(), 1)].into(),
        }],
    };
    let services = SERVICES.iter().map(service_status).collect();
    (status(pools, services, reloads), stats, events())
}

fn build() -> BuildInfo {
    BuildInfo {
        version: "1.2.3".into(),
    }
}

fn render_fixture() -> String {
    let (status, stats, events) = fixture();
    render(&status, &stats, &events, &build())
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
            let mut sample = line.split(['{', ' ']).next().unwrap_or_default();
            if kind == "histogram" {
                sample = histogram_part(sample);
            }
            assert_eq!(
                sample,
                sample_name(name, kind),
                "sample {line:?} under family {name} ({kind})"
            );
        }
        previous = line;
    }
    families
}

/// The name samples of a family carry (a histogram's: its `_bucket`, then
/// `_sum` and `_count`, which [`histogram_part`] folds back).
fn sample_name(family: &str, kind: &str) -> String {
    match kind {
        "counter" => format!("{family}_total"),
        "info" => format!("{family}_info"),
        _ => family.to_owned(),
    }
}

/// A histogram's sample name without its `_bucket`/`_sum`/`_count` suffix.
fn histogram_part(sample: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| sample.strip_suffix(s))
        .unwrap_or(sample)
}

#[test]
fn renders_inventory_and_state() {
    assert_lines(
        &render_fixture(),
        &[
            r#"lb_build_info{version="1.2.3"} 1"#,
            "lb_services 3",
            "lb_pools 2",
            r#"lb_backends{state="up"} 1"#,
            r#"lb_backends{state="drain"} 1"#,
            r#"lb_backends{state="down"} 1"#,
            r#"lb_backends{state="maint"} 1"#,
            r#"lb_backend_state{pool="web",backend="web-1",state="up"} 1"#,
            r#"lb_backend_state{pool="web",backend="web-1",state="drain"} 0"#,
            r#"lb_backend_state{pool="web",backend="web-2",state="drain"} 1"#,
            r#"lb_backend_state{pool="web",backend="a\"b\\c\nd",state="down"} 1"#,
            r#"lb_backend_state{pool="dns-pool",backend="dns-1",state="maint"} 1"#,
            r#"lb_backend_state{pool="dns-pool",backend="dns-1",state="up"} 0"#,
            r#"lb_backend_weight{pool="web",backend="web-1"} 100"#,
            r#"lb_backend_weight{pool="web",backend="a\"b\\c\nd"} 1"#,
            r#"lb_backend_weight{pool="dns-pool",backend="dns-1"} 10"#,
        ],
    );
}

#[test]
fn renders_traffic_per_service_and_backend() {
    let out = render_fixture();
    assert_lines(
        &out,
        &[
            r#"lb_service_packets_total{service="web"} 1800"#,
            r#"lb_service_bytes_total{service="web"} 270000"#,
            r#"lb_service_new_flows_total{service="web"} 75"#,
            r#"lb_service_packets_total{service="web-tls"} 3"#,
            r#"lb_service_packets_total{service="dns"} 7"#,
            r#"lb_backend_packets_total{service="web",pool="web",backend="web-1"} 600"#,
            r#"lb_backend_bytes_total{service="web",pool="web",backend="web-2"} 90000"#,
            r#"lb_backend_new_flows_total{service="web-tls",pool="web",backend="web-2"} 1"#,
            r#"lb_backend_packets_total{service="web",pool="web",backend="a\"b\\c\nd"} 600"#,
            r#"lb_backend_bytes_total{service="dns",pool="dns-pool",backend="dns-1"} 700"#,
            r#"lb_datapath_packets_total{reason="tx"} 900"#,
            r#"lb_datapath_packets_total{reason="pass_not_vip"} 12"#,
            r#"lb_datapath_packets_total{reason="drop_no_backend"} 0"#,
            r#"lb_datapath_packets_total{reason="from_the_future"} 3"#,
        ],
    );
    // One series per reason the data path knows, plus the unknown one.
    let reasons = out
        .lines()
        .filter(|l| l.starts_with("lb_datapath_packets_total{"))
        .count();
    assert_eq!(reasons, Reason::ALL.len() + 1);
}

#[test]
fn renders_reloads_and_events() {
    assert_lines(
        &render_fixture(),
        &[
            r#"lb_reloads_total{result="ok"} 3"#,
            r#"lb_reloads_total{result="error"} 2"#,
            "lb_last_reload_success 0",
            "lb_last_reload_timestamp_seconds 1700000000",
            r#"lb_events_total{type="agent_started"} 1"#,
            r#"lb_events_total{type="backend_state"} 1"#,
            r#"lb_backend_transitions_total{pool="web",backend="web-2",to="drain",cause="operator"} 1"#,
            r#"lb_backend_check_healthy{pool="web",backend="web-1"} 1"#,
            r#"lb_check_duration_seconds_bucket{le="0.001",pool="web"} 3"#,
            r#"lb_check_duration_seconds_bucket{le="0.01",pool="web"} 4"#,
            r#"lb_check_duration_seconds_bucket{le="+Inf",pool="web"} 5"#,
            r#"lb_check_duration_seconds_sum{pool="web"} 1.5"#,
            r#"lb_check_duration_seconds_count{pool="web"} 5"#,
            r#"lb_check_failures_total{pool="web",reason="timeout"} 1"#,
        ],
    );
}

#[test]
fn families_in_order_with_their_types() {
    let families = check_structure(&render_fixture());
    let kinds: Vec<(&str, &str)> = families
        .iter()
        .map(|(n, k)| (n.as_str(), k.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("lb_build", "info"),
            ("lb_services", "gauge"),
            ("lb_pools", "gauge"),
            ("lb_backends", "gauge"),
            ("lb_backend_state", "gauge"),
            ("lb_backend_weight", "gauge"),
            ("lb_service_packets", "counter"),
            ("lb_service_bytes", "counter"),
            ("lb_service_new_flows", "counter"),
            ("lb_backend_packets", "counter"),
            ("lb_backend_bytes", "counter"),
            ("lb_backend_new_flows", "counter"),
            ("lb_datapath_packets", "counter"),
            ("lb_reloads", "counter"),
            ("lb_last_reload_success", "gauge"),
            ("lb_last_reload_timestamp_seconds", "gauge"),
            ("lb_backend_check_healthy", "gauge"),
            ("lb_check_duration_seconds", "histogram"),
            ("lb_check_failures", "counter"),
            ("lb_events", "counter"),
            ("lb_backend_transitions", "counter"),
            ("lb_notifications", "counter"),
            ("lb_notification_retries", "counter"),
        ]
    );
}

#[test]
fn empty_status_renders_build_info_and_zeroes() {
    let out = render(
        &status(vec![], vec![], ReloadInfo::default()),
        &empty_stats(),
        &Counts::default(),
        &build(),
    );
    assert_lines(
        &out,
        &[
            r#"lb_build_info{version="1.2.3"} 1"#,
            "lb_services 0",
            "lb_pools 0",
            r#"lb_backends{state="up"} 0"#,
            r#"lb_backends{state="maint"} 0"#,
            r#"lb_datapath_packets_total{reason="drop_internal"} 0"#,
            r#"lb_reloads_total{result="error"} 0"#,
            "lb_last_reload_success 1",
        ],
    );
    check_structure(&out);
    // Families with no series are left out, not written bare.
    for absent in [
        "lb_service_",
        "lb_backend_",
        "lb_events",
        "lb_last_reload_timestamp_seconds",
    ] {
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
        let out = render(
            &status(vec![], vec![], reloads),
            &empty_stats(),
            &Counts::default(),
            &build(),
        );
        assert_lines(&out, &[&format!("lb_last_reload_success {expected}")]);
    }
}

#[test]
fn build_info_is_this_crate() {
    assert_eq!(BuildInfo::current().version, env!("CARGO_PKG_VERSION"));
}

/// The metric names in the first column of docs/metrics.md's tables.
fn documented() -> BTreeSet<String> {
    include_str!("../../../docs/metrics.md")
        .lines()
        .filter_map(|l| l.strip_prefix("| `lb_"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| format!("lb_{name}"))
        .collect()
}

#[test]
fn docs_list_exactly_the_metrics_rendered() {
    // VRRP families exist only with instances: the fixture's are rendered apart.
    let vrrp = encode::text(vrrp::families(&vrrp::tests::fixture()));
    // So do the proxy's, with a running proxy.
    let proxy = encode::text(proxy::families(&proxy::tests::fixture()));
    let rendered: BTreeSet<String> = check_structure(&render_fixture())
        .iter()
        .chain(&check_structure(&vrrp))
        .chain(&check_structure(&proxy))
        .map(|(name, kind)| sample_name(name, kind))
        .collect();
    assert_eq!(
        documented(),
        rendered,
        "docs/metrics.md's tables and the exposition differ"
    );
}
