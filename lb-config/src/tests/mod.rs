//! The configuration pipeline end to end: models built, defaults applied,
//! warnings; `errors` has each kind of error at its line:col.

mod acl;
mod checks;
mod errors;
mod proxy;
mod proxy_errors;
mod proxy_log;
mod proxy_settings;
mod reject;
mod source;

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::check::HealthConfig;

/// Errors of `text` as (line, col, message), in report order.
pub(super) fn errors(text: &str) -> Vec<(usize, usize, String)> {
    match parse(text, "t.yaml") {
        Ok(c) => panic!("expected errors, got {:#?}", c.config),
        Err(d) => d
            .errors()
            .map(|d| (d.line, d.col, d.message.clone()))
            .collect(),
    }
}

pub(super) fn ok(text: &str) -> Checked {
    parse(text, "t.yaml").unwrap_or_else(|d| panic!("unexpected problems:\n{d}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

const FULL: &str = "\
agent:
  bpffs: /sys/fs/bpf/lb2
  state_dir: /var/lib/lb2
  socket: /run/lb2.sock
  api_listen: 127.0.0.1:9180
  api_token_file: /etc/lb/token
  metrics_listen: null
  flow_table_size: 2048
  flow_idle_timeout: 1m30s
  ebpf_log: debug
  log_level: warn
interfaces:
  - name: eth0
  - {name: eth1, xdp_mode: generic}
pools:
  web:
    backends:
      - {address: 10.77.0.101, name: b1, port: 80, weight: 3, interface: eth1, mac: '02:00:00:00:00:01'}
      - {address: 10.77.0.102, state: drain, weight: 0}
  dns6:
    backends:
      - address: 2001:db8::10
        state: maint
        port: 0
      - address: 2001:db8::11
services:
  - name: web
    address: 10.77.100.1
    port: 80
    hash: source-port
    ring_size: 1009
    pool: web
  - address: 2001:db8::1
    port: 0
    protocol: udp
    pool: dns6
";

fn backend(name: &str, address: &str) -> BackendConfig {
    BackendConfig {
        name: name.into(),
        address: ip(address),
        port: None,
        weight: 1,
        state: AdminState::Up,
        interface: None,
        mac: None,
        check: Default::default(),
        proxy: Default::default(),
    }
}

#[test]
fn full_file_builds_the_expected_model() {
    let checked = ok(FULL);
    let want = Config {
        agent: AgentConfig {
            bpffs: "/sys/fs/bpf/lb2".into(),
            state_dir: "/var/lib/lb2".into(),
            socket: "/run/lb2.sock".into(),
            api_listen: Some("127.0.0.1:9180".parse().expect("addr")),
            api_token_file: Some("/etc/lb/token".into()),
            metrics_listen: None,
            flow_table_size: 2048,
            flow_idle_timeout: Duration::from_secs(90),
            ebpf_log: LogLevel::Debug,
            log_level: LogLevel::Warn,
        },
        interfaces: vec![
            InterfaceConfig {
                name: "eth0".into(),
                xdp_mode: XdpMode::Native,
            },
            InterfaceConfig {
                name: "eth1".into(),
                xdp_mode: XdpMode::Generic,
            },
        ],
        pools: vec![
            PoolConfig {
                name: "web".into(),
                backends: vec![
                    BackendConfig {
                        port: Some(80),
                        weight: 3,
                        interface: Some("eth1".into()),
                        mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
                        ..backend("b1", "10.77.0.101")
                    },
                    BackendConfig {
                        weight: 0,
                        state: AdminState::Drain,
                        ..backend("10.77.0.102", "10.77.0.102")
                    },
                ],
                check: None,
                notify_up: None,
                notify_down: None,
                proxy: Default::default(),
            },
            PoolConfig {
                name: "dns6".into(),
                backends: vec![
                    BackendConfig {
                        port: Some(0),
                        state: AdminState::Maint,
                        ..backend("2001:db8::10", "2001:db8::10")
                    },
                    backend("2001:db8::11", "2001:db8::11"),
                ],
                check: None,
                notify_up: None,
                notify_down: None,
                proxy: Default::default(),
            },
        ],
        services: vec![
            ServiceConfig {
                name: "web".into(),
                address: ip("10.77.100.1"),
                port: 80,
                protocol: Protocol::Tcp,
                mode: Mode::Dr,
                hash: HashMode::SourcePort,
                ring_size: RingSize::Fixed(1009),
                pool: "web".into(),
            },
            ServiceConfig {
                name: "[2001:db8::1]:0/udp".into(),
                address: ip("2001:db8::1"),
                port: 0,
                protocol: Protocol::Udp,
                mode: Mode::Dr,
                hash: HashMode::Source,
                ring_size: RingSize::Auto,
                pool: "dns6".into(),
            },
        ],
        health: HealthConfig::default(),
        notify: Default::default(),
        vrrp: Default::default(),
        proxy: Default::default(),
        frontends: Vec::new(),
        stats: Default::default(),
    };
    assert_eq!(checked.config, want);
    // 1009 slots for 2 backends is fine; no other warning applies.
    assert_eq!(checked.warnings, vec![]);
    assert_eq!(want.services[1].key().to_string(), "[2001:db8::1]:0/udp");
    assert_eq!(
        "[2001:db8::1]:0/udp".parse::<ServiceKey>(),
        Ok(want.services[1].key())
    );
    assert_eq!(
        "2001:db8::1:0/udp".parse::<ServiceKey>(),
        Ok(want.services[1].key())
    );
    assert_eq!(want.services[0].protocol.number(), 6);
    assert_eq!(want.services[1].protocol.number(), 17);
    assert_eq!(
        want.services[1].ring_slots(2),
        lb_common::ring_size::auto(2)
    );
    assert_eq!(want.services[0].ring_slots(2), 1009);
}

#[test]
fn defaults_apply() {
    let c = ok(
        "interfaces: [{name: eth0}]\npools: {p: {backends: [{address: 10.0.1.1}]}}\nservices:\n  - {address: 10.0.0.1, port: 443, pool: p}\n",
    );
    assert_eq!(c.config.agent, AgentConfig::default());
    let v = &c.config.services[0];
    assert_eq!(v.name, "10.0.0.1:443/tcp");
    assert_eq!(
        (v.protocol, v.mode, v.hash),
        (Protocol::Tcp, Mode::Dr, HashMode::Source)
    );
    assert_eq!(v.ring_size, RingSize::Auto);
    let b = &c.config.pools[0].backends[0];
    assert_eq!(
        (b.name.as_str(), b.port, b.weight, b.state),
        ("10.0.1.1", None, DEFAULT_WEIGHT, AdminState::Up)
    );
    assert_eq!(c.config.interfaces[0].xdp_mode, XdpMode::Native);
}

#[test]
fn a_pool_shared_by_two_services_is_defined_once() {
    let c = ok("interfaces: [{name: eth0}]
pools:
  web:
    backends: [{name: web1, address: 10.0.1.1}, {name: web2, address: 10.0.1.2, state: drain}]
services:
  - {name: http, address: 10.0.0.1, port: 80, pool: web}
  - {name: https, address: 10.0.0.1, port: 443, pool: web}
");
    assert_eq!(c.config.pools.len(), 1);
    assert!(c.config.services.iter().all(|s| s.pool == "web"));
    let pool = c.config.pool("web").expect("pool");
    assert_eq!(
        pool.backend("web2").map(|b| b.state),
        Some(AdminState::Drain)
    );
    assert_eq!(c.config.services[1].backend_port(&pool.backends[0]), 443);
}

#[test]
fn defaults_doc_parses_into_the_defaults() {
    let c = ok(DEFAULTS_DOC);
    assert_eq!(c.config.agent, AgentConfig::default());
    let v = &c.config.services[0];
    assert_eq!(
        (v.protocol, v.mode, v.hash),
        (Protocol::Tcp, Mode::Dr, HashMode::Source)
    );
    assert_eq!(v.ring_size, RingSize::Auto);
    let b = &c.config.pools[0].backends[0];
    assert_eq!(
        (b.port, b.weight, b.state, &b.interface, b.mac),
        (None, DEFAULT_WEIGHT, AdminState::Up, &None, None)
    );
    for limit in [
        lb_common::consts::MAX_RING_SIZE,
        lb_common::consts::MAX_VIPS,
        lb_common::consts::MAX_BACKENDS,
    ] {
        assert!(
            DEFAULTS_DOC.contains(&limit.to_string()),
            "DEFAULTS_DOC mentions {limit}"
        );
    }
    assert!(DEFAULTS_DOC.contains(&format!(
        "{}..={}",
        FLOW_TABLE_SIZE_RANGE.start(),
        FLOW_TABLE_SIZE_RANGE.end()
    )));
    l7_defaults_doc(&c.config);
}

/// The reference's `proxy:` section is the defaults, its frontend and pools
/// are what the defaults make of them, and it states the L7 ranges.
fn l7_defaults_doc(c: &Config) {
    use crate::proxy::*;
    assert_eq!(c.proxy, ProxyConfig::default());
    assert!(c.pools.iter().all(|p| p.proxy == PoolL7::default()));
    assert!(
        c.pools
            .iter()
            .flat_map(|p| &p.backends)
            .all(|b| b.proxy.is_default())
    );
    let [f] = &c.frontends[..] else {
        panic!("one frontend: {:?}", c.frontends)
    };
    let d = ProxyDefaults::default();
    assert_eq!(
        (
            f.mode,
            f.maxconn,
            f.timeouts,
            &f.forwardfor,
            f.forwarded_proto,
            f.http_server_close
        ),
        (
            ProxyMode::Http,
            d.maxconn,
            d.pool.timeouts,
            &d.forwardfor,
            d.forwarded_proto,
            d.pool.http_server_close
        )
    );
    assert_eq!(f.default_backend.as_deref(), Some("static"));
    let range = |lo: &dyn std::fmt::Display, hi: &dyn std::fmt::Display| format!("{lo}..={hi}");
    for r in [
        &MAXCONN_RANGE,
        &MAX_HEADER_SIZE_RANGE,
        &MAX_HEADERS_RANGE,
        &RETRIES_RANGE,
    ] {
        let text = range(r.start(), r.end());
        assert!(DEFAULTS_DOC.contains(&text), "DEFAULTS_DOC mentions {text}");
    }
    let longest = range(&"1ms", &crate::duration::format_duration(MAX_TIMEOUT));
    assert!(
        DEFAULTS_DOC.contains(&longest),
        "DEFAULTS_DOC mentions {longest}"
    );
}

#[test]
fn empty_file_is_valid_with_a_warning() {
    let c = ok("# nothing yet\n");
    assert_eq!(c.config, Config::default());
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(
        c.warnings[0].to_string(),
        "t.yaml:1:1: warning: no services are configured: the data path will balance nothing"
    );
}

#[test]
fn warnings_are_located_and_do_not_fail() {
    let text = "interfaces: [{name: eth0}]
pools:
  a:
    backends:
      - {address: 10.0.1.1, state: drain}
      - {address: 10.0.1.2, weight: 0}
  empty: {backends: []}
  spare:
services:
  - {address: 10.0.0.1, port: 80, ring_size: 101, pool: a}
  - {address: 10.0.0.2, port: 80, pool: empty}
";
    let c = ok(text);
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        vec![
            "t.yaml:8:3: warning: pool `spare` is used by no service or frontend",
            "t.yaml:10:46: warning: ring_size 101 of service `10.0.0.1:80/tcp` is under 100 slots per backend (2 backends): Maglev's spread will be uneven (`auto` sizes it)",
            "t.yaml:10:57: warning: no backend of pool `a` takes new flows (all drained, in maintenance or weight 0): service `10.0.0.1:80/tcp` drops new connections",
            "t.yaml:11:41: warning: service `10.0.0.2:80/tcp` uses pool `empty`, which has no backends: its traffic is dropped",
        ]
    );
}

#[test]
fn warnings_accompany_errors() {
    let d = parse("interfaces: [{name: eth0}]\npools: {p: }\nservices:\n  - {address: 10.0.0.1, port: 80, pool: p}\n  - {address: 10.0.0.1, port: 80, pool: p}\n", "t.yaml")
        .expect_err("duplicate");
    assert_eq!((d.error_count(), d.warning_count()), (1, 2));
}

#[test]
fn optional_sections_may_be_empty() {
    let c = ok("health:\nvrrp: {}\nproxy:\nfrontends: {}\nnotify: null\n");
    assert_eq!(c.config, Config::default());
}

#[test]
fn merge_keys_apply() {
    let text = "interfaces: [{name: eth0}]\npools:\n  p:\n    backends:\n      - &b {address: 10.0.1.1, weight: 5}\n      - {<<: *b, address: 10.0.1.2}\nservices: [{address: 10.0.0.1, port: 80, pool: p}]\n";
    let c = ok(text);
    assert_eq!(c.config.pools[0].backends[1].weight, 5);
}

#[test]
fn io_errors_name_the_file() {
    let e = load(std::path::Path::new("/nonexistent/lb.yaml")).expect_err("missing");
    assert!(matches!(e, LoadError::Io { .. }));
    assert_eq!(e.to_string(), "cannot read /nonexistent/lb.yaml");
}

#[test]
fn model_serializes_to_json() {
    let v = serde_json::to_value(ok(FULL).config).expect("json");
    assert_eq!(v["agent"]["flow_idle_timeout"], "1m30s");
    assert_eq!(v["services"][0]["hash"], "source-port");
    assert_eq!(v["services"][0]["ring_size"], 1009);
    assert_eq!(v["services"][1]["ring_size"], "auto");
    assert_eq!(v["pools"][0]["backends"][0]["mac"], "02:00:00:00:00:01");
    assert_eq!(v["services"][0]["address"], "10.77.100.1");
}

#[test]
fn enums_display_as_spelled() {
    assert_eq!(HashMode::SourcePort.to_string(), "source-port");
    assert_eq!(AdminState::Maint.to_string(), "maint");
    assert_eq!(LogLevel::Off.to_string(), "off");
    assert_eq!(XdpMode::Generic.to_string(), "generic");
    assert_eq!(Mode::Dr.to_string(), "dr");
    assert_eq!(
        log::LevelFilter::from(LogLevel::Warn),
        log::LevelFilter::Warn
    );
    assert_eq!(
        "02-00-00-00-00-0a".parse::<MacAddr>(),
        Ok(MacAddr([2, 0, 0, 0, 0, 10]))
    );
    assert!("02:00:00:00:00:0g".parse::<MacAddr>().is_err());
    assert!("+2:00:00:00:00:01".parse::<MacAddr>().is_err());
}
