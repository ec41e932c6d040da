//! Each kind of error, with its message at its line:col; several in one file;
//! syntax errors.

use super::errors;
use crate::parse;

/// Lines 1-3 of most cases: one interface, then the VIP list.
const HEAD: &str = "interfaces:\n  - name: eth0\nvips:\n";
/// A valid VIP at lines 4-7 (backend address value at 7:18).
const VIP: &str = "  - address: 10.0.0.1\n    port: 80\n    backends:\n      - address: 10.0.1.1\n";

#[test]
fn each_kind_of_error_is_located() {
    let cases: Vec<(&str, String, (usize, usize), &str)> = vec![
        (
            "unknown top-level key",
            format!("bogus: 1\n{HEAD}{VIP}"),
            (1, 1),
            "unknown key `bogus`, expected one of `agent`",
        ),
        (
            "unknown key in a backend",
            format!("{HEAD}{VIP}        wieght: 2\n"),
            (8, 9),
            "unknown key `wieght`",
        ),
        (
            "unknown agent key",
            format!("agent:\n  sockett: /x\n{HEAD}{VIP}"),
            (2, 3),
            "unknown key `sockett`",
        ),
        (
            "wrong type",
            format!("{HEAD}  - address: 10.0.0.1\n    port: eighty\n    backends: []\n"),
            (5, 11),
            "invalid type: string \"eighty\", expected an integer",
        ),
        (
            "wrong type for a list",
            format!("interfaces: eth0\nvips:\n{VIP}"),
            (1, 13),
            "expected a sequence",
        ),
        (
            "bad IP",
            format!("{HEAD}  - address: 10.0.0.300\n    port: 80\n"),
            (4, 14),
            "`10.0.0.300` is not an IPv4 or IPv6 address",
        ),
        (
            "bad enum value",
            format!("{HEAD}{VIP}    protocol: sctp\n"),
            (8, 15),
            "unknown variant `sctp`, expected `tcp` or `udp`",
        ),
        (
            "enum of the wrong type",
            format!("{HEAD}{VIP}    protocol: 6\n"),
            (8, 15),
            "invalid type: integer `6`, expected `tcp` or `udp`",
        ),
        (
            "unsupported mode",
            format!("{HEAD}{VIP}    mode: nat\n"),
            (8, 11),
            "mode `nat` is not supported yet",
        ),
        (
            "duplicate VIP",
            format!("{HEAD}{VIP}{VIP}"),
            (8, 14),
            "VIP 10.0.0.1:80/tcp is defined twice (first at line 4)",
        ),
        (
            "duplicate VIP name",
            format!(
                "{HEAD}  - {{name: a, address: 10.0.0.1, port: 80}}\n  - {{name: a, address: 10.0.0.2, port: 80}}\n"
            ),
            (5, 12),
            "VIP name `a` is used twice (first at line 4)",
        ),
        (
            "port mismatch in DR",
            format!("{HEAD}{VIP}        port: 8080\n"),
            (8, 15),
            "DR mode cannot change ports",
        ),
        (
            "port on an all-ports VIP",
            format!(
                "{HEAD}  - address: 10.0.0.1\n    port: 0\n    backends: [{{address: 10.0.1.1, port: 80}}]\n"
            ),
            (6, 42),
            "serves every port",
        ),
        (
            "non-prime ring",
            format!("{HEAD}{VIP}    ring_size: 65536\n"),
            (8, 16),
            "ring_size 65536 is not prime (Maglev needs a prime; the next one is 65537)",
        ),
        (
            "ring too large",
            format!("{HEAD}{VIP}    ring_size: 2000000\n"),
            (8, 16),
            "ring_size 2000000 is out of range 1..=1048573",
        ),
        (
            "ring too small",
            format!(
                "{HEAD}{VIP}      - address: 10.0.1.2\n      - address: 10.0.1.3\n    ring_size: 2\n"
            ),
            (10, 16),
            "ring_size 2 is smaller than the number of backends (3)",
        ),
        (
            "weight out of range",
            format!("{HEAD}{VIP}        weight: 70000\n"),
            (8, 17),
            "weight 70000 is out of range 0..=65535",
        ),
        (
            "negative weight",
            format!("{HEAD}{VIP}        weight: -1\n"),
            (8, 17),
            "weight -1 is out of range 0..=65535",
        ),
        (
            "unknown interface",
            format!("{HEAD}{VIP}        interface: eth9\n"),
            (8, 20),
            "unknown interface `eth9` (known: eth0)",
        ),
        (
            "reserved section",
            format!("health:\n  checks: []\n{HEAD}{VIP}"),
            (1, 1),
            "`health` is not supported yet",
        ),
        (
            "missing address",
            format!("{HEAD}  - port: 80\n"),
            (4, 5),
            "missing required key `address`",
        ),
        (
            "state down",
            format!("{HEAD}{VIP}        state: down\n"),
            (8, 16),
            "state `down` is set by health checks",
        ),
        (
            "link-local VIP",
            format!("{HEAD}  - {{address: 'fe80::1', port: 80}}\n"),
            (4, 15),
            "link-local",
        ),
        (
            "multicast backend",
            format!(
                "{HEAD}  - {{address: 10.0.0.1, port: 80, backends: [{{address: 224.0.0.5}}]}}\n"
            ),
            (4, 56),
            "multicast",
        ),
        (
            "broadcast VIP",
            format!("{HEAD}  - {{address: 255.255.255.255, port: 80}}\n"),
            (4, 15),
            "broadcast",
        ),
        (
            "unspecified VIP",
            format!("{HEAD}  - {{address: 0.0.0.0, port: 80}}\n"),
            (4, 15),
            "unspecified",
        ),
        (
            "IPv4-mapped VIP",
            format!("{HEAD}  - {{address: '::ffff:10.0.0.1', port: 80}}\n"),
            (4, 15),
            "write it as 10.0.0.1",
        ),
        (
            "family mismatch",
            format!(
                "{HEAD}  - {{address: 10.0.0.1, port: 80, backends: [{{address: '2001:db8::1'}}]}}\n"
            ),
            (4, 56),
            "is IPv6 but VIP",
        ),
        (
            "backend is the VIP",
            format!(
                "{HEAD}  - {{address: 10.0.0.1, port: 80, backends: [{{address: 10.0.0.1}}]}}\n"
            ),
            (4, 56),
            "the VIP's own address",
        ),
        (
            "duplicate backend",
            format!("{HEAD}{VIP}      - address: 10.0.1.1\n"),
            (8, 18),
            "backend 10.0.1.1 is listed twice in VIP `10.0.0.1:80/tcp` (first at line 7)",
        ),
        (
            "bad MAC",
            format!("{HEAD}{VIP}        mac: 02:00:00:00:01\n"),
            (8, 14),
            "`02:00:00:00:01` is not a MAC address",
        ),
        (
            "multicast MAC",
            format!("{HEAD}{VIP}        mac: 01:00:5e:00:00:01\n"),
            (8, 14),
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
            format!("vips:\n{VIP}"),
            (1, 1),
            "VIPs need at least one interface",
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
            format!("{HEAD}{VIP}    80: x\n"),
            (8, 5),
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
            format!("{HEAD}{VIP}      - 10.0.1.2\n"),
            (8, 9),
            "expected a backend",
        ),
        (
            "merged unknown key",
            format!("base: &b {{weight: 2}}\n{HEAD}{VIP}        <<: *b\n"),
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
vips:
  - address: 10.0.0.1
    port: 80
    backends:
      - address: 10.0.1.1
        weight: lots
        colour: red
      - address: 10.0.1.2
  - address: 10.0.0.2
    port: 80
    ring_size: 100
    backends:
      - address: 10.0.2.1
      - address: 10.0.2.2
      - address: 10.0.2.x
        state: sleeping
colour: blue
";
    let d = parse(text, "lb.yaml").expect_err("invalid");
    let rendered = d.to_string();
    let want = "\
lb.yaml:8:17: invalid type: string \"lots\", expected an integer
lb.yaml:9:9: unknown key `colour`, expected one of `address`, `name`, `port`, `weight`, `state`, `interface`, `mac`
lb.yaml:13:16: ring_size 100 is not prime (Maglev needs a prime; the next one is 101)
lb.yaml:17:18: `10.0.2.x` is not an IPv4 or IPv6 address
lb.yaml:18:16: unknown variant `sleeping`, expected one of `up`, `drain`, `maint`
lb.yaml:19:1: unknown key `colour`, expected one of `agent`, `interfaces`, `vips`, `health`, `vrrp`, `l7`, `notify`";
    assert_eq!(rendered, want);
    assert_eq!((d.error_count(), d.warning_count()), (6, 0));
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
vips:
  - name: web
    address: 192.168.60.88
    port: 80
    lb_algo: sh
    backends:
      - name: web1
        address: 192.168.31.66
        port: 8080
      - name: web1
        address: 192.168.31.355
  - name: web
    address: 192.168.60.88
    port: 80
    ring_size: 65536
    backends:
      - address: 192.168.31.66
        interface: eth1
";
    let got: Vec<(usize, usize, String)> = errors(text);
    let at: Vec<(usize, usize)> = got.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(
        at,
        [
            (7, 5),
            (11, 15),
            (12, 15),
            (13, 18),
            (14, 11),
            (15, 14),
            (17, 16),
            (20, 20)
        ],
        "{got:#?}"
    );
    assert!(
        got[2]
            .2
            .starts_with("backend name `web1` is used twice in VIP `web` (first at line 9)")
    );
    assert!(
        got[4]
            .2
            .starts_with("VIP name `web` is used twice (first at line 4)")
    );
    assert!(
        got[5]
            .2
            .starts_with("VIP 192.168.60.88:80/tcp is defined twice (first at line 5)")
    );
}

#[test]
fn limits_are_enforced_at_the_first_entry_past_them() {
    use lb_common::consts::{MAX_BACKENDS, MAX_VIPS};
    let ip = |i: u32| std::net::Ipv4Addr::from(0x0a01_0000 + i);

    let mut text = format!("{HEAD}  - address: 10.0.0.1\n    port: 80\n    backends:\n");
    for i in 0..=MAX_BACKENDS {
        text.push_str(&format!("      - address: {}\n", ip(i)));
    }
    let got = errors(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    // Backend i sits on line 7 + i.
    assert_eq!((got[0].0, got[0].1), (7 + MAX_BACKENDS as usize, 9));
    assert!(got[0].2.contains("too many backends"), "{}", got[0].2);

    let mut text = HEAD.to_owned();
    for i in 0..=MAX_VIPS {
        text.push_str(&format!("  - {{address: {}, port: 80}}\n", ip(i)));
    }
    let got = errors(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0, got[0].1), (4 + MAX_VIPS as usize, 5));
    assert!(got[0].2.contains("too many VIPs"), "{}", got[0].2);
}
