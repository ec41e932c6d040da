//! Each kind of error, with its message at its line:col; several in one file;
//! syntax errors.

use super::errors;
use crate::parse;

/// Lines 1-5 of most cases: one interface, then pool `p` up to its backend list.
const HEAD: &str = "interfaces:\n  - name: eth0\npools:\n  p:\n    backends:\n";
/// A valid backend at line 6 (address value at 6:18); keys of it can follow.
const BACKEND: &str = "      - address: 10.0.1.1\n";
/// `services:` with a valid service at lines `n..n+3` (address value at n+1:14),
/// keys of it can follow.
const SERVICE: &str = "services:\n  - address: 10.0.0.1\n    port: 80\n    pool: p\n";

/// The usual file: head, one backend (line 6), the service (lines 7-10), then `tail`
/// as more keys of the service.
fn file(backend_keys: &str, service_keys: &str) -> String {
    format!("{HEAD}{BACKEND}{backend_keys}{SERVICE}{service_keys}")
}

#[test]
fn each_kind_of_error_is_located() {
    let cases: Vec<(&str, String, (usize, usize), &str)> = vec![
        (
            "unknown top-level key",
            format!("bogus: 1\n{}", file("", "")),
            (1, 1),
            "unknown key `bogus`, expected one of `agent`, `interfaces`, `pools`, `services`",
        ),
        (
            "unknown key in a backend",
            file("        wieght: 2\n", ""),
            (7, 9),
            "unknown key `wieght`",
        ),
        (
            "unknown key in a pool",
            format!("{HEAD}{BACKEND}    checks: {{}}\n{SERVICE}"),
            (7, 5),
            "unknown key `checks`, expected one of `backends`, `check`, `notify_up`, `notify_down`",
        ),
        (
            "unknown agent key",
            format!("agent:\n  sockett: /x\n{}", file("", "")),
            (2, 3),
            "unknown key `sockett`",
        ),
        (
            "wrong type",
            format!("{HEAD}{BACKEND}services:\n  - address: 10.0.0.1\n    port: eighty\n    pool: p\n"),
            (9, 11),
            "invalid type: string \"eighty\", expected an integer",
        ),
        (
            "wrong type for a list",
            format!("interfaces: eth0\npools: {{p: {{backends: [{{address: 10.0.1.1}}]}}}}\n{SERVICE}"),
            (1, 13),
            "expected a sequence",
        ),
        (
            "pools not a mapping",
            format!("interfaces: [{{name: eth0}}]\npools: [web]\n{SERVICE}"),
            (2, 8),
            "`pools` is a mapping of pool name to pool",
        ),
        (
            "bad IP",
            format!("{HEAD}{BACKEND}services:\n  - address: 10.0.0.300\n    port: 80\n    pool: p\n"),
            (8, 14),
            "`10.0.0.300` is not an IPv4 or IPv6 address",
        ),
        (
            "bad enum value",
            file("", "    protocol: sctp\n"),
            (11, 15),
            "unknown variant `sctp`, expected `tcp` or `udp`",
        ),
        (
            "enum of the wrong type",
            file("", "    protocol: 6\n"),
            (11, 15),
            "invalid type: integer `6`, expected `tcp` or `udp`",
        ),
        (
            "unsupported mode",
            file("", "    mode: nat\n"),
            (11, 11),
            "mode `nat` is not supported yet",
        ),
        (
            "duplicate service",
            format!("{}{}", file("", ""), &SERVICE["services:\n".len()..]),
            (11, 14),
            "service 10.0.0.1:80/tcp is defined twice (first at line 8)",
        ),
        (
            "duplicate service name",
            format!(
                "{HEAD}{BACKEND}services:\n  - {{name: a, address: 10.0.0.1, port: 80, pool: p}}\n  - {{name: a, address: 10.0.0.2, port: 80, pool: p}}\n"
            ),
            (9, 12),
            "service name `a` is used twice (first at line 8)",
        ),
        (
            "missing pool",
            format!("{HEAD}{BACKEND}services:\n  - address: 10.0.0.1\n    port: 80\n"),
            (8, 5),
            "missing required key `pool`",
        ),
        (
            "unknown pool",
            format!("{HEAD}{BACKEND}services:\n  - {{address: 10.0.0.1, port: 80, pool: q}}\n"),
            (8, 41),
            "unknown pool `q` (pools: p)",
        ),
        (
            "bad pool name",
            "interfaces: [{name: eth0}]\npools:\n  'a b': {backends: []}\n".to_owned(),
            (3, 3),
            "pool name `a b` contains ' '",
        ),
        (
            "port mismatch in DR",
            file("        port: 8080\n", ""),
            (7, 15),
            "DR mode cannot change ports",
        ),
        (
            "port on an all-ports service",
            format!("{HEAD}      - {{address: 10.0.1.1, port: 80}}\nservices:\n  - {{address: 10.0.0.1, port: 0, pool: p}}\n"),
            (6, 35),
            "serves every port",
        ),
        (
            "non-prime ring",
            file("", "    ring_size: 65536\n"),
            (11, 16),
            "ring_size 65536 is not prime (Maglev needs a prime; the next one is 65537)",
        ),
        (
            "ring neither auto nor a number",
            file("", "    ring_size: big\n"),
            (11, 16),
            "expected `auto` or a prime number",
        ),
        (
            "ring too large",
            file("", "    ring_size: 2000000\n"),
            (11, 16),
            "ring_size 2000000 is out of range 1..=1048573",
        ),
        (
            "ring too small",
            file("      - address: 10.0.1.2\n      - address: 10.0.1.3\n", "    ring_size: 2\n"),
            (13, 16),
            "ring_size 2 of service `10.0.0.1:80/tcp` is smaller than its pool's number of backends (3)",
        ),
        (
            "weight out of range",
            file("        weight: 70000\n", ""),
            (7, 17),
            "weight 70000 is out of range 0..=65535",
        ),
        (
            "negative weight",
            file("        weight: -1\n", ""),
            (7, 17),
            "weight -1 is out of range 0..=65535",
        ),
        (
            "unknown interface",
            file("        interface: eth9\n", ""),
            (7, 20),
            "unknown interface `eth9` (known: eth0)",
        ),
        (
            "frontend without bind",
            format!("frontends:\n  web: {{default_backend: p}}\n{}", file("        port: 80\n", "")),
            (2, 3),
            "missing required key `bind`",
        ),
        (
            "missing address",
            format!("{HEAD}{BACKEND}services:\n  - {{port: 80, pool: p}}\n"),
            (8, 5),
            "missing required key `address`",
        ),
        (
            "state down",
            file("        state: down\n", ""),
            (7, 16),
            "state `down` is set by health checks",
        ),
        (
            "link-local service",
            format!("{HEAD}{BACKEND}services:\n  - {{address: 'fe80::1', port: 80, pool: p}}\n"),
            (8, 15),
            "link-local",
        ),
        (
            "multicast backend",
            format!("{HEAD}      - address: 224.0.0.5\n{SERVICE}"),
            (6, 18),
            "multicast",
        ),
        (
            "broadcast service",
            format!("{HEAD}{BACKEND}services:\n  - {{address: 255.255.255.255, port: 80, pool: p}}\n"),
            (8, 15),
            "broadcast",
        ),
        (
            "unspecified service",
            format!("{HEAD}{BACKEND}services:\n  - {{address: 0.0.0.0, port: 80, pool: p}}\n"),
            (8, 15),
            "unspecified",
        ),
        (
            "IPv4-mapped service",
            format!("{HEAD}{BACKEND}services:\n  - {{address: '::ffff:10.0.0.1', port: 80, pool: p}}\n"),
            (8, 15),
            "write it as 10.0.0.1",
        ),
        (
            "family mismatch",
            format!("{HEAD}      - address: '2001:db8::1'\n{SERVICE}"),
            (6, 18),
            "backend `2001:db8::1` (2001:db8::1) of pool `p` is IPv6 but service `10.0.0.1:80/tcp` is IPv4",
        ),
        (
            "backend is the service",
            format!("{HEAD}      - address: 10.0.0.1\n{SERVICE}"),
            (6, 18),
            "has the address of service",
        ),
        (
            "duplicate backend",
            file("      - address: 10.0.1.1\n", ""),
            (7, 18),
            "backend 10.0.1.1 is listed twice in pool `p` (first at line 6)",
        ),
        (
            "bad MAC",
            file("        mac: 02:00:00:00:01\n", ""),
            (7, 14),
            "`02:00:00:00:01` is not a MAC address",
        ),
        (
            "multicast MAC",
            file("        mac: 01:00:5e:00:00:01\n", ""),
            (7, 14),
            "not a unicast station address",
        ),
        (
            "interface name too long",
            "interfaces:\n  - name: eth0123456789abc\n".to_owned(),
            (2, 11),
            "invalid interface name `eth0123456789abc`: 16 bytes",
        ),
        (
            "interface name with a slash",
            "interfaces:\n  - name: a/b\n".to_owned(),
            (2, 11),
            "contains '/'",
        ),
        (
            "duplicate interface",
            "interfaces:\n  - name: eth0\n  - name: eth0\n".to_owned(),
            (3, 11),
            "interface `eth0` is listed twice (first at line 2)",
        ),
        (
            "no interface",
            format!("pools:\n  p:\n    backends:\n{BACKEND}{SERVICE}"),
            (5, 1),
            "services need at least one interface",
        ),
        (
            "schema v1",
            "interfaces: [{name: eth0}]\nvips:\n  - {name: web, address: 10.0.0.1, port: 80, backends: [{address: 10.0.1.1}]}\n".to_owned(),
            (2, 1),
            "`vips:` is the schema v1 layout",
        ),
        (
            "api without token",
            "agent:\n  api_listen: 127.0.0.1:9180\n".to_owned(),
            (2, 3),
            "api_listen requires api_token_file",
        ),
        (
            "bad socket address",
            "agent:\n  metrics_listen: localhost\n".to_owned(),
            (2, 19),
            "`localhost` is not an address:port",
        ),
        (
            "relative path",
            "agent:\n  bpffs: lb\n".to_owned(),
            (2, 10),
            "bpffs must be an absolute path",
        ),
        (
            "duration without unit",
            "agent:\n  flow_idle_timeout: 300\n".to_owned(),
            (2, 22),
            "duration `300` has no unit",
        ),
        (
            "duration too short",
            "agent:\n  flow_idle_timeout: 500ms\n".to_owned(),
            (2, 22),
            "at least 1s",
        ),
        (
            "log level off",
            "agent:\n  log_level: off\n".to_owned(),
            (2, 14),
            "log_level cannot be `off`",
        ),
        (
            "flow table too small",
            "agent:\n  flow_table_size: 10\n".to_owned(),
            (2, 20),
            "flow_table_size 10 is out of range 1024..=67108864",
        ),
        (
            "non-string key",
            file("", "    80: x\n"),
            (11, 5),
            "key `80` is not a name",
        ),
        (
            "document not a mapping",
            "- a\n".to_owned(),
            (1, 1),
            "expected a mapping with the keys",
        ),
        (
            "backend not a mapping",
            file("      - 10.0.1.2\n", ""),
            (7, 9),
            "expected a backend",
        ),
        (
            "merged unknown key",
            format!("base: &b {{weight: 2}}\n{}", file("        <<: *b\n", "")),
            (1, 1),
            "unknown key `base`",
        ),
    ];
    for (what, text, (line, col), want) in cases {
        let got = errors(&text);
        assert_eq!(
            got.len(),
            1,
            "{what}: expected one error, got {got:#?}\n{text}"
        );
        let (l, c, msg) = &got[0];
        assert!(msg.contains(want), "{what}: message {msg:?} lacks {want:?}");
        assert_eq!((*l, *c), (line, col), "{what}: {msg}\n{text}");
    }
}

#[test]
fn every_error_of_a_file_is_reported_in_order() {
    let text = "\
interfaces:
  - name: eth0
pools:
  a:
    backends:
      - address: 10.0.1.1
        weight: lots
        colour: red
      - address: 10.0.1.2
  b:
    backends:
      - address: 10.0.2.1
      - address: 10.0.2.x
        state: sleeping
services:
  - address: 10.0.0.2
    port: 80
    ring_size: 100
    pool: b
colour: blue
";
    let d = parse(text, "lb.yaml").expect_err("invalid");
    let rendered = d.to_string();
    let want = "\
lb.yaml:4:3: warning: pool `a` is used by no service or frontend
lb.yaml:7:17: invalid type: string \"lots\", expected an integer
lb.yaml:8:9: unknown key `colour`, expected one of `address`, `name`, `port`, `weight`, `state`, `interface`, `mac`, `check`, `cookie`, `maxconn`
lb.yaml:13:18: `10.0.2.x` is not an IPv4 or IPv6 address
lb.yaml:14:16: unknown variant `sleeping`, expected one of `up`, `drain`, `maint`
lb.yaml:18:16: ring_size 100 is not prime (Maglev needs a prime; the next one is 101)
lb.yaml:20:1: unknown key `colour`, expected one of `agent`, `interfaces`, `pools`, `services`, `health`, `vrrp`, `proxy`, `frontends`, `notify`, `stats`";
    assert_eq!(rendered, want);
    assert_eq!((d.error_count(), d.warning_count()), (6, 1));
}

#[test]
fn syntax_errors_are_located() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        ("vips: [1\n", (2, 1), "did not find expected ',' or ']'"),
        (
            "agent:\n  bpffs: /a\n  bpffs: /b\n",
            (3, 3),
            "duplicate entry with key \"bpffs\"",
        ),
        ("a:\n  b: 1\n c: 2\n", (3, 2), "did not find expected key"),
    ];
    for (text, (line, col), want) in cases {
        let d = parse(text, "t.yaml").expect_err(text);
        assert_eq!(d.0.len(), 1, "{text}: {d}");
        let e = &d.0[0];
        assert!(e.message.contains(want), "{text}: {}", e.message);
        let repeated = format!(" at line {line} column {col}");
        assert!(
            !e.message.contains(&repeated),
            "position not repeated: {}",
            e.message
        );
        assert_eq!((e.line, e.col), (*line, *col), "{text}: {}", e.message);
    }
}

/// Cross-checks (duplicates, references) still run on entries with errors of
/// their own, so fixing one error does not reveal the next.
#[test]
fn cross_checks_survive_other_errors() {
    let text = "\
interfaces:
  - name: eth0
pools:
  web:
    backends:
      - name: web1
        address: 192.168.31.66
        port: 8080
      - name: web1
        address: 192.168.31.355
        interface: eth1
services:
  - name: web
    address: 192.168.60.88
    port: 80
    lb_algo: sh
    pool: web
  - name: web
    address: 192.168.60.88
    port: 80
    ring_size: 65536
    pool: web
";
    let got: Vec<(usize, usize, String)> = errors(text);
    let at: Vec<(usize, usize)> = got.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(
        at,
        [
            (8, 15),
            (9, 15),
            (10, 18),
            (11, 20),
            (16, 5),
            (18, 11),
            (19, 14),
            (21, 16)
        ],
        "{got:#?}"
    );
    // The first service has an unknown key, yet its cross-check runs: web1's
    // port does not suit it.
    assert!(got[0].2.contains("DR mode cannot change ports"));
    assert!(
        got[1]
            .2
            .starts_with("backend name `web1` is used twice in pool `web` (first at line 6)")
    );
    assert!(
        got[5]
            .2
            .starts_with("service name `web` is used twice (first at line 13)")
    );
    assert!(
        got[6]
            .2
            .starts_with("service 192.168.60.88:80/tcp is defined twice (first at line 14)")
    );
}

#[test]
fn a_backend_that_cannot_serve_a_service_is_named_at_its_own_line() {
    // The pool is fine on its own; the DR service on 443 cannot reach web1's 80.
    let text = "\
interfaces: [{name: eth0}]
pools:
  web:
    backends:
      - {name: web1, address: 10.0.1.1, port: 80}
      - {name: web2, address: 10.0.1.2}
services:
  - {name: http, address: 10.0.0.1, port: 80, pool: web}
  - {name: https, address: 10.0.0.1, port: 443, pool: web}
";
    let got = errors(text);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!((got[0].0, got[0].1), (5, 47));
    assert!(
        got[0].2.contains(
            "backend `web1` of pool `web` listens on port 80 but service `https` is on port 443"
        ),
        "{}",
        got[0].2
    );
}

#[test]
fn limits_are_enforced_at_the_first_entry_past_them() {
    use lb_common::consts::{MAX_BACKENDS, MAX_VIPS};
    let ip = |i: u32| std::net::Ipv4Addr::from(0x0a01_0000 + i);

    // Two services over one pool of MAX_BACKENDS / 2 + 1 backends: the second
    // takes the data path past its limit.
    let half = MAX_BACKENDS / 2 + 1;
    let mut text = HEAD.to_owned();
    for i in 0..half {
        text.push_str(&format!("      - address: {}\n", ip(i)));
    }
    text.push_str("services:\n  - {address: 10.0.0.1, port: 80, pool: p}\n  - {address: 10.0.0.1, port: 443, pool: p}\n");
    let got = errors(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    let line = 5 + half as usize + 3;
    assert_eq!((got[0].0, got[0].1), (line, 42));
    assert!(got[0].2.contains("too many backends"), "{}", got[0].2);

    let mut text = format!("{HEAD}{BACKEND}services:\n");
    for i in 0..=MAX_VIPS {
        text.push_str(&format!("  - {{address: {}, port: 80, pool: p}}\n", ip(i)));
    }
    let got = errors(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0, got[0].1), (8 + MAX_VIPS as usize, 5));
    assert!(got[0].2.contains("too many services"), "{}", got[0].2);
}
