//! The configuration pipeline end to end: models built, defaults applied,
//! warnings; `errors` has each kind of error at its line:col.

mod errors;

use std::net::IpAddr;
use std::time::Duration;

use super::*;

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
vips:
  - name: web
    address: 10.77.100.1
    port: 80
    hash: source-port
    ring_size: 1009
    backends:
      - {address: 10.77.0.101, name: b1, port: 80, weight: 3, interface: eth1, mac: '02:00:00:00:00:01'}
      - {address: 10.77.0.102, state: drain, weight: 0}
  - address: 2001:db8::1
    port: 0
    protocol: udp
    backends:
      - address: 2001:db8::10
        state: maint
        port: 0
      - address: 2001:db8::11
";

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
        vips: vec![
            VipConfig {
                name: "web".into(),
                address: ip("10.77.100.1"),
                port: 80,
                protocol: Protocol::Tcp,
                mode: Mode::Dr,
                hash: HashMode::SourcePort,
                ring_size: 1009,
                backends: vec![
                    BackendConfig {
                        name: "b1".into(),
                        address: ip("10.77.0.101"),
                        port: Some(80),
                        weight: 3,
                        state: AdminState::Up,
                        interface: Some("eth1".into()),
                        mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
                    },
                    BackendConfig {
                        name: "10.77.0.102".into(),
                        address: ip("10.77.0.102"),
                        port: None,
                        weight: 0,
                        state: AdminState::Drain,
                        interface: None,
                        mac: None,
                    },
                ],
            },
            VipConfig {
                name: "[2001:db8::1]:0/udp".into(),
                address: ip("2001:db8::1"),
                port: 0,
                protocol: Protocol::Udp,
                mode: Mode::Dr,
                hash: HashMode::Source,
                ring_size: lb_common::consts::DEFAULT_RING_SIZE,
                backends: vec![
                    BackendConfig {
                        name: "2001:db8::10".into(),
                        address: ip("2001:db8::10"),
                        port: Some(0),
                        weight: 1,
                        state: AdminState::Maint,
                        interface: None,
                        mac: None,
                    },
                    BackendConfig {
                        name: "2001:db8::11".into(),
                        address: ip("2001:db8::11"),
                        port: None,
                        weight: 1,
                        state: AdminState::Up,
                        interface: None,
                        mac: None,
                    },
                ],
            },
        ],
    };
    assert_eq!(checked.config, want);
    // 1009 slots for 2 backends is fine; no other warning applies.
    assert_eq!(checked.warnings, vec![]);
    assert_eq!(want.vips[1].key().to_string(), "[2001:db8::1]:0/udp");
    assert_eq!(want.vips[0].protocol.number(), 6);
    assert_eq!(want.vips[1].protocol.number(), 17);
}

#[test]
fn defaults_apply() {
    let c = ok(
        "interfaces: [{name: eth0}]\nvips:\n  - {address: 10.0.0.1, port: 443, backends: [{address: 10.0.1.1}]}\n",
    );
    assert_eq!(c.config.agent, AgentConfig::default());
    let v = &c.config.vips[0];
    assert_eq!(v.name, "10.0.0.1:443/tcp");
    assert_eq!(
        (v.protocol, v.mode, v.hash),
        (Protocol::Tcp, Mode::Dr, HashMode::Source)
    );
    assert_eq!(v.ring_size, lb_common::consts::DEFAULT_RING_SIZE);
    let b = &v.backends[0];
    assert_eq!(
        (b.name.as_str(), b.port, b.weight, b.state),
        ("10.0.1.1", None, DEFAULT_WEIGHT, AdminState::Up)
    );
    assert_eq!(c.config.interfaces[0].xdp_mode, XdpMode::Native);
}

#[test]
fn defaults_doc_parses_into_the_defaults() {
    let c = ok(DEFAULTS_DOC);
    assert_eq!(c.config.agent, AgentConfig::default());
    let v = &c.config.vips[0];
    assert_eq!(
        (v.protocol, v.mode, v.hash),
        (Protocol::Tcp, Mode::Dr, HashMode::Source)
    );
    assert_eq!(v.ring_size, lb_common::consts::DEFAULT_RING_SIZE);
    let b = &v.backends[0];
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
}

#[test]
fn empty_file_is_valid_with_a_warning() {
    let c = ok("# nothing yet\n");
    assert_eq!(c.config, Config::default());
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(
        c.warnings[0].to_string(),
        "t.yaml:1:1: warning: no VIPs are configured: the data path will balance nothing"
    );
}

#[test]
fn warnings_are_located_and_do_not_fail() {
    let text = "interfaces: [{name: eth0}]\nvips:\n  - address: 10.0.0.1\n    port: 80\n    ring_size: 101\n    backends:\n      - {address: 10.0.1.1, state: drain}\n      - {address: 10.0.1.2, weight: 0}\n  - {address: 10.0.0.2, port: 80, backends: []}\n";
    let c = ok(text);
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        vec![
            "t.yaml:5:16: warning: ring_size 101 is under 100 slots per backend (2 backends): Maglev's spread will be uneven",
            "t.yaml:6:5: warning: no backend of VIP `10.0.0.1:80/tcp` takes new flows (all drained, in maintenance or weight 0)",
            "t.yaml:9:35: warning: VIP `10.0.0.2:80/tcp` has no backends: its traffic is dropped",
        ]
    );
}

#[test]
fn warnings_accompany_errors() {
    let d = parse("interfaces: [{name: eth0}]\nvips:\n  - {address: 10.0.0.1, port: 80}\n  - {address: 10.0.0.1, port: 80}\n", "t.yaml")
        .expect_err("duplicate");
    assert_eq!((d.error_count(), d.warning_count()), (1, 2));
}

#[test]
fn reserved_sections_may_be_empty() {
    ok("health:\nvrrp: {}\nl7: []\nnotify: null\n");
}

#[test]
fn merge_keys_apply() {
    let text = "interfaces: [{name: eth0}]\nvips:\n  - address: 10.0.0.1\n    port: 80\n    backends:\n      - &b {address: 10.0.1.1, weight: 5}\n      - {<<: *b, address: 10.0.1.2}\n";
    let c = ok(text);
    assert_eq!(c.config.vips[0].backends[1].weight, 5);
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
    assert_eq!(v["vips"][0]["hash"], "source-port");
    assert_eq!(v["vips"][0]["backends"][0]["mac"], "02:00:00:00:00:01");
    assert_eq!(v["vips"][0]["address"], "10.77.100.1");
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
    assert_eq!(AdminState::Drain.abi(), lb_common::consts::state::DRAIN);
    assert_eq!(
        "02-00-00-00-00-0a".parse::<MacAddr>(),
        Ok(MacAddr([2, 0, 0, 0, 0, 10]))
    );
    assert!("02:00:00:00:00:0g".parse::<MacAddr>().is_err());
    assert!("+2:00:00:00:00:01".parse::<MacAddr>().is_err());
}
