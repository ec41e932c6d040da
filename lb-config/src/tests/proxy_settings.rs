//! Mistakes in frontends' binds and modes, in pools' and backends' L7
//! keys and in `proxy:`, each at its line:col; and every mistake of a file
//! at once.

use super::errors;
use super::proxy_errors::{check, front, pool, proxy};

#[test]
fn frontends_binds_and_modes() {
    let tcp = |keys: &str| front(&format!("    mode: tcp\n{keys}"));
    let cases: Vec<(&str, String, (usize, usize), &str)> = vec![
        (
            "frontends not a mapping",
            "frontends: [main]\n".to_owned(),
            (1, 12),
            "`frontends` is a mapping of frontend name to frontend",
        ),
        (
            "bad frontend name",
            "frontends:\n  'a/b': {bind: '*:80'}\n".to_owned(),
            (2, 3),
            "frontend name `a/b` contains '/'",
        ),
        (
            "unknown key",
            front("    backend: web\n"),
            (9, 5),
            "unknown key `backend`, expected one of `bind`, `mode`",
        ),
        (
            "unknown mode",
            front("    mode: health\n"),
            (9, 11),
            "unknown variant `health`, expected `http` or `tcp`",
        ),
        (
            "empty bind list",
            front("").replace("bind: '*:80'", "bind: []"),
            (7, 11),
            "`bind` has no address",
        ),
        (
            "port 0",
            front("").replace("'*:80'", "'*:0'"),
            (7, 11),
            "port `0` is not in 1..=65535",
        ),
        (
            "port range",
            front("").replace("'*:80'", "'*:80-81'"),
            (7, 11),
            "port ranges are not supported",
        ),
        (
            "no port",
            front("").replace("'*:80'", "'80'"),
            (7, 11),
            "`80` has no port (e.g. `*:80`)",
        ),
        (
            "host name",
            front("").replace("'*:80'", "'localhost:80'"),
            (7, 11),
            "`localhost` is not an IP address (host names are not resolved",
        ),
        (
            "IPv6 without brackets",
            front("").replace("'*:80'", "'2001:db8::1:80'"),
            (7, 11),
            "write an IPv6 address in brackets: `[2001:db8::1]:PORT`",
        ),
        (
            "comma list",
            front("").replace("'*:80'", "'*:80,*:81'"),
            (7, 11),
            "one address per entry; write a list",
        ),
        (
            "multicast",
            front("").replace("'*:80'", "'224.0.0.1:80'"),
            (7, 11),
            "cannot listen on 224.0.0.1: a multicast address",
        ),
        (
            "IPv4-mapped",
            front("").replace("'*:80'", "'[::ffff:10.0.0.1]:80'"),
            (7, 11),
            "is IPv4-mapped; write the IPv4 address (`10.0.0.1:PORT`)",
        ),
        (
            "bad entry of a list",
            front("").replace("'*:80'", "['*:80', 'x']"),
            (7, 20),
            "`x` has no port",
        ),
        (
            "same bind twice",
            front("  other: {bind: '*:80', default_backend: web}\n"),
            (9, 17),
            "`*:80` is also `*:80` of frontend `main` (line 7)",
        ),
        (
            "wildcard overlap",
            front("  other: {bind: '10.0.0.1:80', default_backend: web}\n"),
            (9, 17),
            "`10.0.0.1:80` overlaps `*:80` of frontend `main` (line 7)",
        ),
        (
            "agent metrics",
            format!("agent: {{metrics_listen: 127.0.0.1:80}}\n{}", front("")),
            (8, 11),
            "`*:80` takes agent.metrics_listen (127.0.0.1:80)",
        ),
        (
            "a service's address",
            format!(
                "interfaces: [{{name: eth0}}]\nservices: [{{name: s, address: 10.0.0.1, port: 80, pool: web}}]\n{}",
                front("").replace("'*:80'", "'10.0.0.1:80'")
            ),
            (9, 11),
            "`10.0.0.1:80` is what service `s` serves in the data path",
        ),
        (
            "maxconn 0",
            front("    maxconn: 0\n"),
            (9, 14),
            "maxconn 0 is out of range 1..=1000000",
        ),
        (
            "tcp with http keys",
            tcp("    acl: {a: path /a}\n"),
            (10, 5),
            "`acl` applies to HTTP frontends; this one is `mode: tcp`",
        ),
        (
            "tcp with http timeout",
            tcp("    timeout: {http_request: 5s}\n"),
            (10, 15),
            "`timeout.http_request` applies to HTTP frontends",
        ),
        (
            "tcp without default_backend",
            front("    mode: tcp\n").replace("    default_backend: web\n", ""),
            (6, 3),
            "a tcp frontend needs `default_backend`",
        ),
        (
            "server-side timeout on a frontend",
            front("    timeout: {connect: 1s}\n"),
            (9, 15),
            "timeout.connect is a server-side timeout: set it on the pool, or in proxy.defaults",
        ),
        (
            "timeout check",
            front("    timeout: {check: 10s}\n"),
            (9, 15),
            "HAProxy's `timeout check` is the health checks' timeout here: set `health.timeout`",
        ),
        (
            "zero timeout",
            front("    timeout: {client: 0s}\n"),
            (9, 23),
            "timeout.client must be between 1ms and",
        ),
        (
            "bad forwardfor",
            front("    forwardfor: {except: 10.0.0.1/8}\n"),
            (9, 26),
            "has bits set past /8: write 10.0.0.0/8",
        ),
        (
            "bad forwardfor header",
            front("    forwardfor: {header: 'X Forwarded'}\n"),
            (9, 26),
            "is not a header name",
        ),
        (
            "forwardfor neither",
            front("    forwardfor: yes\n"),
            (9, 17),
            "expected `true`, `false`, or a mapping with `except` and/or `header`",
        ),
    ];
    check(cases);
}

#[test]
fn pools_backends_and_proxy_settings() {
    let cases: Vec<(&str, String, (usize, usize), &str)> = vec![
        (
            "backend without port",
            pool("", "").replace(", port: 80", ""),
            (4, 9),
            "backend `b1` of pool `p` needs a `port`: frontend `f` connects to address:port",
        ),
        (
            "backend port 0",
            pool("", "").replace("port: 80", "port: 0"),
            (4, 45),
            "needs a `port`",
        ),
        (
            "pool shared with a DR service",
            format!(
                "interfaces: [{{name: eth0}}]\nservices: [{{name: s, address: 10.0.0.1, port: 80, pool: p}}]\n{}",
                pool("", "").replace(", port: 80", "")
            ),
            (6, 9),
            "pool `p` is also used by service `s`, where direct routing keeps the port: a pool used by both needs each backend's `port` equal to the service's (80), else give the frontend a pool of its own",
        ),
        (
            "a backend that is the frontend",
            pool("", "").replace("10.0.1.1", "127.0.0.1"),
            (4, 29),
            "backend `b1` (127.0.0.1:80) is where frontend `f` listens (`*:80`): its requests would loop",
        ),
        (
            "duplicate cookie values",
            pool(
                "    cookie: {name: S, mode: insert}\n    redispatch: true\n",
                ", cookie: a}\n      - {name: b2, address: 10.0.1.2, port: 80, cookie: a",
            ),
            (7, 57),
            "cookie value `a` is also backend `b1`'s (line 6): each server of a pool needs its own",
        ),
        (
            "maxconn 0",
            pool("", ", maxconn: 0"),
            (4, 58),
            "maxconn 0 is out of range 1..=1000000",
        ),
        (
            "bad cookie value",
            pool("    cookie: S\n    redispatch: true\n", ", cookie: 'a;b'"),
            (6, 57),
            "`a;b` cannot be a cookie value",
        ),
        (
            "bad cookie name",
            pool("    cookie: 'SERVER ID'\n", ""),
            (3, 13),
            "`SERVER ID` is not a cookie name",
        ),
        (
            "cookie true",
            pool("    cookie: true\n", ""),
            (3, 13),
            "expected a cookie name, a mapping with `name` and `mode`, or `false`",
        ),
        (
            "cookie without name",
            pool("    cookie: {mode: insert}\n", ""),
            (3, 13),
            "missing required key `name`",
        ),
        (
            "unknown cookie mode",
            pool("    cookie: {name: S, mode: postonly}\n", ""),
            (3, 29),
            "unknown variant `postonly`, expected one of `read`, `insert`, `rewrite`, `prefix`",
        ),
        (
            "unknown balance",
            pool("    balance: random\n", ""),
            (3, 14),
            "unknown balance `random`; supported: roundrobin, static-rr, leastconn, source, uri, url_param(NAME), hdr(NAME)",
        ),
        (
            "balance options",
            pool("    balance: uri whole\n", ""),
            (3, 14),
            "options after `uri` are not supported",
        ),
        (
            "balance without name",
            pool("    balance: hdr\n", ""),
            (3, 14),
            "balance `hdr` needs a name: `hdr(NAME)`",
        ),
        (
            "bad balance header",
            pool("    balance: hdr(a b)\n", ""),
            (3, 14),
            "options after `hdr(a` are not supported",
        ),
        (
            "unknown hash type",
            pool("    hash_type: avalanche\n", ""),
            (3, 16),
            "unknown variant `avalanche`, expected `map-based` or `consistent`",
        ),
        (
            "retries",
            pool("    retries: 101\n", ""),
            (3, 14),
            "retries 101 is out of range 0..=100",
        ),
        (
            "client-side timeout on a pool",
            pool("    timeout: {client: 5s}\n", ""),
            (3, 15),
            "timeout.client is a client-side timeout: set it on a frontend, or in proxy.defaults",
        ),
        (
            "pool timeout too long",
            pool("    timeout: {server: 1000h}\n", ""),
            (3, 23),
            "timeout.server must be between 1ms and 596h31m23s647ms",
        ),
        (
            "global maxconn",
            proxy("  maxconn: 0\n"),
            (2, 12),
            "maxconn 0 is out of range 1..=1000000",
        ),
        (
            "header size too small",
            proxy("  max_header_size: 4k\n"),
            (2, 20),
            "max_header_size 4096 is out of range 8192..=1048576",
        ),
        (
            "header size unit",
            proxy("  max_header_size: 16q\n"),
            (2, 20),
            "expected a size in bytes, such as `16384` or `16k`",
        ),
        (
            "max headers",
            proxy("  max_headers: 0\n"),
            (2, 16),
            "max_headers 0 is out of range 1..=32767",
        ),
        (
            "unknown proxy key",
            proxy("  nbproc: 1\n"),
            (2, 3),
            "unknown key `nbproc`, expected one of `maxconn`, `max_header_size`, `max_headers`, `defaults`",
        ),
        (
            "defaults maxconn",
            proxy("  defaults: {maxconn: 0}\n"),
            (2, 23),
            "maxconn 0 is out of range",
        ),
        (
            "unknown defaults key",
            proxy("  defaults: {mode: http}\n"),
            (2, 14),
            "unknown key `mode`, expected one of `maxconn`, `timeout`",
        ),
        (
            "defaults balance",
            proxy("  defaults: {balance: rr}\n"),
            (2, 23),
            "unknown balance `rr`",
        ),
    ];
    check(cases);
}

/// Every mistake of a file, across the proxy's sections, in one run.

#[test]
fn every_error_is_reported_in_order() {
    let text = "\
proxy:
  maxconn: 0
  defaults: {balance: random}
frontends:
  main:
    bind: ['*:80', '*:80']
    acl:
      a: path_beg -q /x
      b: src 10.0.0.300
    use_backend:
      - web if a b c
      - nope
    default_backend: web
pools:
  web:
    cookie: {name: S, mode: insert}
    backends:
      - {name: w1, address: 10.0.1.1, cookie: x}
      - {name: w2, address: 10.0.1.2, port: 80, cookie: x}
";
    let got: Vec<(usize, usize)> = errors(text).iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(
        got,
        [
            (2, 12),
            (3, 23),
            (6, 20),
            (8, 19),
            (9, 14),
            (11, 20),
            (12, 9),
            (18, 9),
            (19, 57)
        ]
    );
}
