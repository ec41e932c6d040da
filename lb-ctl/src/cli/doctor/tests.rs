//! The checks against hand-made hosts: each wrong setting is found, with
//! its fix, and a healthy host yields no problem.

use std::collections::BTreeMap;

use lb_config::{Config, Protocol};

use super::{
    diagnose,
    finding::{Finding, Level},
    host::{Host, PinHolder},
    netlink::{AttachMode, LinkInfo, XdpAttachment},
    procfs::{Listener, Process},
};

fn listener(protocol: Protocol, addr: &str, comm: &str) -> (Listener, Vec<Process>) {
    let listener = Listener {
        protocol,
        addr: addr.parse().expect("test address"),
        inode: 1,
    };
    let owner = Process {
        pid: 42,
        comm: comm.to_owned(),
    };
    (listener, vec![owner])
}

const CONFIG: &str = r#"
interfaces:
  - name: eth0
  - name: eth1
pools:
  web:
    backends:
      - {name: web1, address: 192.0.2.11}
      - {name: web2, address: 192.0.2.12}
  web6:
    backends:
      - {name: web1, address: "2001:db8:1::11"}
  web_http:
    backends:
      - {name: web1, address: 192.0.2.11, port: 80}
services:
  - {name: web, address: 198.51.100.1, port: 80, pool: web}
  - {name: web6, address: "2001:db8::1", port: 80, pool: web6}
frontends:
  main:
    bind: "198.51.100.2:80"
    default_backend: web_http
"#;

fn config() -> Config {
    lb_config::parse(CONFIG, "test.yaml")
        .unwrap_or_else(|e| panic!("test config: {e}"))
        .config
}

fn link(ifindex: u32, name: &str, xdp: Option<XdpAttachment>) -> (String, LinkInfo) {
    let info = LinkInfo {
        ifindex,
        name: name.to_owned(),
        xdp,
    };
    (name.to_owned(), info)
}

/// A host where everything is as lb wants it.
fn healthy() -> Host {
    let sysctls = [
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.eth0.rp_filter", "2"),
        ("net.ipv4.conf.eth1.rp_filter", "0"),
        ("net.ipv4.ip_forward", "0"),
    ];
    Host {
        kernel_release: "6.18.44-fc-v669".into(),
        vmlinux_btf: true,
        pin_fs: Ok(("/sys/fs/bpf".into(), true)),
        links: Ok(BTreeMap::from([
            link(2, "eth0", None),
            link(3, "eth1", None),
        ])),
        xdp_features: Ok(Some(BTreeMap::from([(2, 0b111), (3, 0b111)]))),
        program_names: Ok(BTreeMap::new()),
        sysctls: sysctls
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        memlock: Some(8 << 20),
        mem_available: Some(8 << 30),
        processes: vec![Process {
            pid: 1,
            comm: "systemd".into(),
        }],
        listeners: vec![listener(Protocol::Tcp, "0.0.0.0:22", "sshd")],
        pin_lock: None,
    }
}

fn find<'a>(findings: &'a [Finding], check: &str, subject: Option<&str>) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.check == check && f.subject.as_deref() == subject)
        .unwrap_or_else(|| panic!("no {check} {subject:?} finding in {findings:#?}"))
}

fn problems(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.level == Level::Problem)
        .collect()
}

#[test]
fn a_healthy_host_has_no_problem_and_gets_dr_advice() {
    let findings = diagnose(&config(), &healthy());
    assert!(problems(&findings).is_empty(), "{findings:#?}");
    let advice = find(&findings, "dr_backend", Some("192.0.2.11"));
    assert_eq!(advice.level, Level::Info);
    assert_eq!(
        advice.fix.as_deref(),
        Some(
            "sysctl -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2\n\
             ip addr add 198.51.100.1/32 dev lo\n\
             (make them persistent: /etc/sysctl.d/, the network configuration)"
        )
    );
    let v6 = find(&findings, "dr_backend", Some("2001:db8:1::11"));
    assert_eq!(
        v6.fix.as_deref(),
        Some(
            "ip -6 addr add 2001:db8::1/128 dev lo\n(make them persistent: /etc/sysctl.d/, the network configuration)"
        )
    );
    assert_eq!(
        find(&findings, "transparent_proxy", None).level,
        Level::NotApplicable
    );
}

#[test]
fn old_kernel_missing_interface_and_no_native_xdp_are_problems() {
    let mut host = healthy();
    host.kernel_release = "6.1.0-28-amd64".into();
    host.links = Ok(BTreeMap::from([link(2, "eth0", None)]));
    host.xdp_features = Ok(Some(BTreeMap::from([(2, 0)])));
    let findings = diagnose(&config(), &host);
    assert_eq!(find(&findings, "kernel", None).level, Level::Problem);
    assert_eq!(
        find(&findings, "interface", Some("eth1")).level,
        Level::Problem
    );
    // Only the `interface` finding: a missing link has no sysctls to judge.
    let about_eth1 = findings
        .iter()
        .filter(|f| f.subject.as_deref() == Some("eth1"))
        .count();
    assert_eq!(about_eth1, 1, "{findings:#?}");
    let xdp = find(&findings, "xdp_mode", Some("eth0"));
    assert_eq!(xdp.level, Level::Problem);
    assert!(xdp.fix.as_deref().unwrap().contains("xdp_mode: generic"));
}

#[test]
fn generic_mode_on_a_native_driver_is_a_warning() {
    let cfg = CONFIG.replace("- name: eth1", "- {name: eth1, xdp_mode: generic}");
    let cfg = lb_config::parse(&cfg, "t.yaml").unwrap().config;
    let findings = diagnose(&cfg, &healthy());
    let f = find(&findings, "xdp_mode", Some("eth1"));
    assert_eq!(f.level, Level::Warning);
    assert_eq!(f.fix.as_deref(), Some("set `xdp_mode: native` for eth1"));
}

#[test]
fn another_program_is_a_problem_and_lbs_own_is_not() {
    let mut host = healthy();
    let att = |prog_id| XdpAttachment {
        mode: AttachMode::Driver,
        prog_id,
    };
    host.links = Ok(BTreeMap::from([
        link(2, "eth0", Some(att(7))),
        link(3, "eth1", Some(att(8))),
    ]));
    host.program_names = Ok(BTreeMap::from([
        (7, "lb_xdp".into()),
        (8, "xdp_dummy".into()),
    ]));
    let findings = diagnose(&config(), &host);
    assert_eq!(
        find(&findings, "xdp_program", Some("eth0")).level,
        Level::Ok
    );
    let other = find(&findings, "xdp_program", Some("eth1"));
    assert_eq!(other.level, Level::Problem);
    assert!(
        other.message.contains("xdp_dummy (id 8, native mode)"),
        "{other:?}"
    );
}

#[test]
fn strict_rp_filter_counts_from_all_or_the_interface() {
    let mut host = healthy();
    host.sysctls
        .insert("net.ipv4.conf.all.rp_filter".into(), "1".into());
    let findings = diagnose(&config(), &host);
    // eth0 has 2, which wins (the larger applies); eth1 has 0, so all=1 applies.
    assert_eq!(find(&findings, "rp_filter", Some("eth0")).level, Level::Ok);
    let eth1 = find(&findings, "rp_filter", Some("eth1"));
    assert_eq!(eth1.level, Level::Problem);
    assert!(
        eth1.fix
            .as_deref()
            .unwrap()
            .starts_with("sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.eth1.rp_filter=2")
    );
}

#[test]
fn memory_short_is_a_problem() {
    let mut host = healthy();
    host.mem_available = Some(1 << 20);
    let f = diagnose(&config(), &host);
    assert_eq!(find(&f, "memlock", None).level, Level::Problem);
    // 2^20 flows of each family (40 + 64 bytes) dominate.
    assert!(super::checks::map_bytes(&config()) > 104 << 20);
}

#[test]
fn haproxy_on_a_frontend_address_is_a_problem_on_a_service_a_warning() {
    let mut host = healthy();
    host.processes.push(Process {
        pid: 42,
        comm: "haproxy".into(),
    });
    host.listeners = vec![
        listener(Protocol::Tcp, "0.0.0.0:80", "haproxy"),
        listener(Protocol::Tcp, "127.0.0.1:8480", "lb-ctl"),
    ];
    let findings = diagnose(&config(), &host);
    let bind = find(&findings, "listener", Some("198.51.100.2:80"));
    assert_eq!(bind.level, Level::Problem);
    assert!(
        bind.message
            .starts_with("haproxy (pid 42) listens on 0.0.0.0:80")
    );
    let svc = find(&findings, "listener", Some("198.51.100.1:80"));
    assert_eq!(svc.level, Level::Warning);
    // lb's own metrics listener is no conflict.
    assert!(
        !findings
            .iter()
            .any(|f| f.subject.as_deref() == Some("127.0.0.1:8480"))
    );
    assert_eq!(find(&findings, "haproxy", None).level, Level::Info);
}

#[test]
fn keepalived_is_a_problem_only_beside_lbs_own_vrrp() {
    let mut host = healthy();
    host.processes.push(Process {
        pid: 7,
        comm: "keepalived".into(),
    });
    let findings = diagnose(&config(), &host);
    assert_eq!(find(&findings, "keepalived", None).level, Level::Warning);
}

#[test]
fn a_pin_holder_outside_the_unit_is_named() {
    let mut host = healthy();
    host.pin_lock = Some(PinHolder {
        pid: 99,
        cmdline: "lb-ctl agent --config /tmp/x.yaml".into(),
        unit: None,
    });
    let f = diagnose(&config(), &host);
    let w = find(&f, "lb_writer", None);
    assert_eq!(w.level, Level::Warning);
    assert!(
        w.message
            .contains("pid 99 (`lb-ctl agent --config /tmp/x.yaml`)")
    );
    host.pin_lock = Some(PinHolder {
        pid: 99,
        cmdline: String::new(),
        unit: Some("lb.service".into()),
    });
    let f = diagnose(&config(), &host);
    assert_eq!(find(&f, "lb_writer", None).level, Level::Ok);
}
