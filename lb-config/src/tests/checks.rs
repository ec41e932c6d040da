//! Health checks in the file: every type, timing defaults as HAProxy gives
//! them, a backend's own settings, and each kind of mistake at its line:col.

use std::time::Duration;

use super::{errors, ok};
use crate::check::*;

/// A pool `web` with the given `check:` lines (indented under it), used by
/// service `web`; backend `b1` takes `backend_keys`.
fn with_check(check: &str, backend_keys: &str) -> String {
    format!(
        "interfaces: [{{name: eth0}}]
pools:
  web:
    check:
{check}    backends:
      - name: b1
        address: 10.0.1.1
{backend_keys}services:
  - {{name: web, address: 10.0.0.1, port: 80, pool: web}}
"
    )
}

fn check_of(text: &str) -> CheckConfig {
    ok(text).config.pools[0].check.clone().expect("a check")
}

#[test]
fn the_seeds_http_check_with_haproxy_timing() {
    // HAProxy: `option httpchk GET /index.php` and `check inter 2000 rise 2 fall 3`.
    let c = check_of(&with_check(
        "      type: http\n      path: /index.php\n      inter: 2s\n      rise: 2\n      fall: 3\n",
        "",
    ));
    let CheckKind::Http(h) = &c.kind else {
        panic!("{c:?}")
    };
    assert_eq!((h.method.as_str(), h.path.as_str()), ("GET", "/index.php"));
    assert_eq!(h.status, vec![DEFAULT_STATUS]);
    let s = Duration::from_secs(2);
    assert_eq!(
        c.timing,
        CheckTiming {
            inter: s,
            fastinter: s,
            downinter: s,
            rise: 2,
            fall: 3,
            timeout: s,
        }
    );
}

#[test]
fn timing_defaults_come_from_health_then_from_the_checks_own_inter() {
    let text = format!(
        "health:\n  inter: 5s\n  downinter: 30s\n  timeout: 1s\n  rise: 4\n  concurrency: 50\n{}",
        with_check("      type: tcp\n      inter: 1s\n", "")
    );
    let parsed = ok(&text).config;
    assert_eq!(parsed.health.concurrency, 50);
    let t = parsed.pools[0].check.as_ref().unwrap().timing;
    assert_eq!(t.inter, Duration::from_secs(1), "the check's own");
    assert_eq!(
        t.fastinter,
        Duration::from_secs(1),
        "fastinter: the check's inter"
    );
    assert_eq!(t.downinter, Duration::from_secs(30), "health's downinter");
    assert_eq!(t.timeout, Duration::from_secs(1), "health's timeout");
    assert_eq!((t.rise, t.fall), (4, DEFAULT_FALL));
}

#[test]
fn every_check_type_builds_its_model() {
    let cases: &[(&str, CheckKind)] = &[
        ("      type: icmp\n", CheckKind::Icmp),
        (
            "      type: tcp\n      send: \"PING\\r\\n\"\n      expect: \"+PONG\"\n",
            CheckKind::Tcp {
                send: Some("PING\r\n".into()),
                expect: Some("+PONG".into()),
            },
        ),
        (
            "      type: mysql\n      user: haproxy_check\n",
            CheckKind::Mysql {
                user: Some("haproxy_check".into()),
            },
        ),
        (
            "      type: script\n      command: [/usr/local/bin/chk, --web]\n",
            CheckKind::Script {
                command: vec!["/usr/local/bin/chk".into(), "--web".into()],
            },
        ),
    ];
    for (lines, want) in cases {
        assert_eq!(&check_of(&with_check(lines, "")).kind, want, "{lines}");
    }
    let c = check_of(&with_check(
        "      type: https\n      host: www.example.com\n      status: [200, 301-302]\n      body: ok\n      digest: 0123456789abcdef0123456789abcdef\n      sni: api.example.com\n      verify: true\n",
        "",
    ));
    let CheckKind::Https(h) = c.kind else {
        panic!()
    };
    assert!(h.verify);
    assert_eq!(h.sni.as_deref(), Some("api.example.com"));
    assert_eq!(
        h.http.status,
        [
            StatusRange { lo: 200, hi: 200 },
            StatusRange { lo: 301, hi: 302 }
        ]
    );
    assert!(h.http.status.iter().any(|r| r.contains(302)));
    assert!(!h.http.status.iter().any(|r| r.contains(303)));
}

#[test]
fn a_backend_can_leave_the_check_or_aim_it_elsewhere() {
    let c = ok(&with_check(
        "      type: tcp\n      port: 8080\n",
        "        check: {port: 9090, address: 10.0.9.9}\n      - {name: b2, address: 10.0.1.2, check: false}\n",
    ))
    .config;
    let (b1, b2) = (&c.pools[0].backends[0], &c.pools[0].backends[1]);
    assert_eq!(b1.check.port, Some(9090));
    assert_eq!(b1.check.address, Some("10.0.9.9".parse().unwrap()));
    assert!(!b1.check.disabled && b2.check.disabled);
    assert_eq!(c.pools[0].check.as_ref().unwrap().port, Some(8080));
}

#[test]
fn check_mistakes_are_located() {
    // `with_check` puts the check's first line on line 5.
    let cases: &[(&str, &str, (usize, usize), &str)] = &[
        (
            "no type",
            "      port: 80\n",
            (5, 7),
            "missing required key `type`",
        ),
        (
            "unknown type",
            "      type: dns\n",
            (5, 13),
            "unknown check type `dns`",
        ),
        (
            "a key of another type",
            "      type: tcp\n      path: /\n",
            (6, 7),
            "`path` does not apply to `type: tcp` checks (it is for http and https)",
        ),
        (
            "a port for icmp",
            "      type: icmp\n      port: 80\n",
            (6, 13),
            "`port` does not apply to `type: icmp`",
        ),
        (
            "rise out of range",
            "      type: tcp\n      rise: 0\n",
            (6, 13),
            "rise 0 is out of range 1..=100",
        ),
        (
            "inter too short",
            "      type: tcp\n      inter: 1ms\n",
            (6, 14),
            "inter must be at least 10ms",
        ),
        (
            "bad status",
            "      type: http\n      status: 2xx\n",
            (6, 15),
            "`2xx` is not a status",
        ),
        (
            "bad digest",
            "      type: http\n      digest: ABC\n",
            (6, 15),
            "32 lowercase hex digits",
        ),
        (
            "bad path",
            "      type: http\n      path: index.php\n",
            (6, 13),
            "must start with `/`",
        ),
        (
            "relative script",
            "      type: script\n      command: [chk.sh]\n",
            (6, 16),
            "must be an absolute path",
        ),
        (
            "script without command",
            "      type: script\n",
            (5, 7),
            "missing required key `command`",
        ),
        (
            "via a service not using the pool",
            "      type: tcp\n      via_service: other\n",
            (6, 20),
            "via_service `other` is not a service using pool `web`",
        ),
    ];
    for (what, lines, (line, col), want) in cases {
        let text = with_check(lines, "");
        let got = errors(&text);
        assert_eq!(got.len(), 1, "{what}: {got:#?}\n{text}");
        let (l, c, msg) = &got[0];
        assert!(msg.contains(want), "{what}: {msg:?} lacks {want:?}");
        assert_eq!((*l, *c), (*line, *col), "{what}: {msg}\n{text}");
    }
}
