//! The proxy's access logs from the real agent: HAProxy's httplog line on a
//! UDP socket the test binds (one request, one line, local2.info), nothing
//! for a connection that sent nothing (`dontlognull`), requests served
//! while every target is dead, and Debian's rsyslogd parsing the lines.
//! Needs root.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use lb_tests::{
    agent::Agent,
    http::{HttpBackend, connect},
    lab::{Lab, LabSpec},
    rsyslog::Rsyslog,
    syslog::{self, next_line},
};

const PORT: u16 = 8080;
const T: Duration = Duration::from_secs(5);

/// The lab and its one HTTP backend (b1), which lives as long as they do.
fn lab() -> (Lab, Vec<HttpBackend>) {
    let lab = Lab::new(LabSpec {
        backends: 1,
        client_aliases: 0,
        ipv6: false,
    })
    .expect("building the lab (needs root)");
    let http = lab.start_http(80).expect("HTTP backend");
    (lab, http)
}

/// One pool `web` (b1) behind frontend `main`, logging to `targets`.
fn config(lab: &Lab, targets: &str) -> String {
    config_with(lab, targets, "", "")
}

/// [`config`] with more keys for the pool (whole lines) and for b1.
fn config_with(lab: &Lab, targets: &str, pool: &str, b1_keys: &str) -> String {
    format!(
        "pools:
  web:
{pool}    backends:
      - {{name: b1, address: {b1}, port: 80{b1_keys}}}
proxy:
  log: [{targets}]
  defaults:
    log: global
    httplog: true
    dontlognull: true
frontends:
  main:
    bind: \"*:{PORT}\"
    default_backend: web
",
        b1 = lab.backend("b1").ip(false),
    )
}

/// A GET from the client namespace; its status.
fn get(lab: &Lab, path: &str) -> u16 {
    let text = get_with(lab, path, "");
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A GET with more header lines (each ending in CRLF); the whole answer.
fn get_with(lab: &Lab, path: &str, headers: &str) -> String {
    let addr = SocketAddr::new(lab.lb().ip(false), PORT);
    let mut s = lab
        .client()
        .ns
        .try_run(|| connect(None, addr, T))
        .expect("netns")
        .expect("connecting to the proxy");
    s.set_read_timeout(Some(T)).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: lb\r\n{headers}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A connection from the client namespace that sends nothing and closes.
fn null_connection(lab: &Lab) {
    let addr = SocketAddr::new(lab.lb().ip(false), PORT);
    let s = lab
        .client()
        .ns
        .try_run(|| connect(None, addr, T))
        .expect("netns")
        .expect("connecting to the proxy");
    s.shutdown(std::net::Shutdown::Both).unwrap();
}

/// A UDP receiver in the agent's namespace.
fn receiver(lab: &Lab) -> UdpSocket {
    syslog::receiver(&lab.lb().ns)
}

#[test]
fn one_request_is_one_httplog_line_and_a_null_connection_none() {
    let (lab, _http) = lab();
    let rx = receiver(&lab);
    let port = rx.local_addr().unwrap().port();
    let targets = format!("{{address: \"127.0.0.1:{port}\", facility: local2, level: info}}");
    let _agent = Agent::start(&lab, &config(&lab, &targets)).unwrap();
    // The log thread sends in order: had the null connection been logged,
    // its line would come before the request's.
    null_connection(&lab);
    assert_eq!(get(&lab, "/a?b=c"), 200);
    let line = next_line(&rx);
    let client = lab.client().ip(false);
    // `<150>` is local2 (18) * 8 + info (6); RFC 3164 header, then the line.
    assert!(line.starts_with("<150>"), "{line}");
    let (_, fields) = line.split_once(": ").expect("a `lb[pid]: ` tag");
    let words: Vec<&str> = fields.split(' ').collect();
    assert!(words[0].starts_with(&format!("{client}:")), "{line}");
    assert!(words[1].starts_with('['), "{line}");
    assert_eq!(&words[2..4], ["main", "web/b1"], "{line}");
    assert_eq!(words[4].split('/').count(), 5, "TR/Tw/Tc/Tr/Ta: {line}");
    assert!(!words[4].contains("-1"), "{line}");
    assert_eq!(&words[5..6], ["200"], "{line}");
    assert_eq!(&words[7..10], ["-", "-", "----"], "{line}");
    assert!(
        line.trim_end().ends_with(r#""GET /a?b=c HTTP/1.1""#),
        "{line}"
    );
    assert!(line.ends_with('\n'));
    // Exactly one line for the one request.
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(rx.recv(&mut buf).is_err(), "a second line came");
}

/// The termination state of an httplog line.
fn termination(line: &str) -> &str {
    let (_, fields) = line.split_once(": ").expect("a `lb[pid]: ` tag");
    fields.split(' ').nth(9).unwrap_or_default()
}

#[test]
fn the_persistence_cookies_letters() {
    let (lab, _http) = lab();
    let rx = receiver(&lab);
    let port = rx.local_addr().unwrap().port();
    let targets = format!("{{address: \"127.0.0.1:{port}\", facility: local2}}");
    let pool = "    cookie: {name: SERVERID, mode: insert, indirect: true}\n";
    let _agent = Agent::start(&lab, &config_with(&lab, &targets, pool, ", cookie: s1")).unwrap();
    // As Debian's HAProxy 2.6 logs the same requests: a first visit gets
    // the cookie (`NI`), the next comes by it (`VN`), a stale one names no
    // server and gets a new one (`II`).
    let first = get_with(&lab, "/first", "").to_ascii_lowercase();
    assert!(first.contains("set-cookie: serverid=s1; path=/"), "{first}");
    let line = next_line(&rx);
    assert_eq!(termination(&line), "--NI", "{line}");
    for (cookie, want) in [("SERVERID=s1", "--VN"), ("SERVERID=gone", "--II")] {
        get_with(&lab, "/next", &format!("Cookie: {cookie}\r\n"));
        let line = next_line(&rx);
        assert_eq!(termination(&line), want, "{cookie}: {line}");
    }
}

#[test]
fn dead_receivers_never_hold_requests() {
    let (lab, _http) = lab();
    // A UDP port nobody listens on (taken, then freed) and a socket path
    // that does not exist.
    let port = receiver(&lab).local_addr().unwrap().port();
    let targets = format!(
        "{{address: \"127.0.0.1:{port}\", facility: local2}}, {{address: /nonexistent/lb-log.sock, facility: local2}}"
    );
    let agent = Agent::start(&lab, &config(&lab, &targets)).unwrap();
    let started = Instant::now();
    for i in 0..50 {
        assert_eq!(get(&lab, &format!("/{i}")), 200);
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    let metrics = agent.metrics(&lab).unwrap();
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("lb_proxy_log_send_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("lb_proxy_log_send_errors_total");
    assert!(failures > 0, "the missing socket counts: {failures}");
}

#[test]
fn rsyslog_parses_the_lines() {
    let (lab, _http) = lab();
    let addr: SocketAddr = "127.0.0.1:5514".parse().unwrap();
    // A fresh namespace: the port is free.
    let rsyslog = Rsyslog::start(&lab.lb().ns, addr).expect("rsyslogd");
    let targets = format!("{{address: \"{addr}\", facility: local2, level: info}}");
    let _agent = Agent::start(&lab, &config(&lab, &targets)).unwrap();
    assert_eq!(get(&lab, "/seen-by-rsyslog"), 200);
    let line = rsyslog
        .wait_for("/seen-by-rsyslog", T)
        .unwrap_or_else(|| panic!("rsyslog wrote: {:?}", rsyslog.lines()));
    assert!(line.starts_with("local2.info lb "), "{line}");
    assert!(line.contains(" main web/b1 "), "{line}");
    assert!(
        line.contains(r#""GET /seen-by-rsyslog HTTP/1.1""#),
        "{line}"
    );
}
