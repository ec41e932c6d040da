//! The lines' fields and order against HAProxy 2.6's, whose lines (from
//! Debian's haproxy) the expected strings copy.

use std::time::{Duration, SystemTime};

use lb_config::proxy::{LogFormat, ProxyMode};

use super::format::{json, text};
use super::record::*;
use super::time::Local;

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

/// A request HAProxy logged as
/// `127.0.0.1:43330 [..] fe be/s1 0/0/0/1/1 200 2404 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"`.
fn served() -> Record {
    Record {
        format: LogFormat::Http,
        mode: ProxyMode::Http,
        client: "127.0.0.1:43330".parse().unwrap(),
        local: "127.0.0.1:8080".parse().unwrap(),
        date: SystemTime::now(),
        frontend: "fe".into(),
        backend: Some("be".into()),
        server: Some("s1".into()),
        timers: Timers {
            request: ms(0),
            queue: ms(0),
            connect: ms(0),
            response: ms(1),
            total: Duration::from_millis(1),
        },
        status: 200,
        bytes: 2404,
        term: Termination::default(),
        conns: Conns {
            active: 1,
            frontend: 1,
            ..Conns::default()
        },
        request: Some("GET / HTTP/1.1".into()),
    }
}

/// The line without its date (local time), checked apart.
fn undated(r: &Record) -> String {
    let line = text(r);
    let date = format!("[{}] ", Local::of(r.date).clf());
    assert!(line.contains(&date), "{line}");
    line.replacen(&date, "", 1)
}

#[test]
fn an_httplog_line_has_haproxys_fields_in_its_order() {
    assert_eq!(
        undated(&served()),
        r#"127.0.0.1:43330 fe be/s1 0/0/0/1/1 200 2404 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#
    );
}

#[test]
fn timers_never_reached_are_minus_one_and_redispatch_is_a_plus() {
    // HAProxy: `fe be/s2 0/0/-1/-1/3004 503 217 - - SC-- 1/1/0/0/3 0/0 "GET /x?a=#22b HTTP/1.1"`
    let mut r = served();
    r.server = Some("s2".into());
    r.timers.connect = None;
    r.timers.response = None;
    r.timers.total = Duration::from_millis(3004);
    r.status = 503;
    r.bytes = 217;
    r.term = Termination::new(Cause::ServerAbort, Phase::Connect);
    r.conns.retries = 3;
    r.request = Some("GET /x?a=\"b HTTP/1.1".into());
    assert_eq!(
        undated(&r),
        r#"127.0.0.1:43330 fe be/s2 0/0/-1/-1/3004 503 217 - - SC-- 1/1/0/0/3 0/0 "GET /x?a=#22b HTTP/1.1""#
    );
    r.conns.redispatched = true;
    assert!(undated(&r).contains(" 1/1/0/0/+3 0/0 "));
}

#[test]
fn a_bad_request_has_no_server_and_no_request_line() {
    // HAProxy: `fe fe/<NOSRV> -1/-1/-1/-1/0 400 0 - - CR-- 1/1/0/0/0 0/0 "<BADREQ>"`
    let mut r = served();
    r.backend = None;
    r.server = None;
    r.timers = Timers::default();
    r.status = 400;
    r.bytes = 0;
    r.term = Termination::new(Cause::ClientAbort, Phase::Request);
    r.request = None;
    assert_eq!(
        undated(&r),
        r#"127.0.0.1:43330 fe fe/<NOSRV> -1/-1/-1/-1/0 400 0 - - CR-- 1/1/0/0/0 0/0 "<BADREQ>""#
    );
}

#[test]
fn termination_codes_spell_haproxys_letters() {
    let cases = [
        (Cause::Normal, Phase::Done, "----"),
        (Cause::ClientAbort, Phase::Data, "CD--"),
        (Cause::ClientTimeout, Phase::Data, "cD--"),
        (Cause::ServerTimeout, Phase::Headers, "sH--"),
        (Cause::ServerAbort, Phase::Connect, "SC--"),
        (Cause::Proxy, Phase::Request, "PR--"),
        (Cause::ClientTimeout, Phase::Request, "cR--"),
        (Cause::ServerTimeout, Phase::Queue, "sQ--"),
        (Cause::ServerAbort, Phase::Headers, "SH--"),
        (Cause::Local, Phase::Request, "LR--"),
    ];
    for (cause, phase, want) in cases {
        let (chars, n) = Termination::new(cause, phase).chars(ProxyMode::Http);
        assert_eq!(std::str::from_utf8(&chars[..n]).unwrap(), want);
    }
    let (chars, n) = Termination::default().chars(ProxyMode::Tcp);
    assert_eq!(&chars[..n], b"--");
    // A pool with a cookie: its letters follow, in HTTP only.
    let with_cookie = Termination {
        cookie: *b"NI",
        ..Termination::new(Cause::ServerAbort, Phase::Connect)
    };
    assert_eq!(with_cookie.chars(ProxyMode::Http), (*b"SCNI", 4));
    assert_eq!(&with_cookie.chars(ProxyMode::Tcp).0[..2], b"SC");
}

#[test]
fn a_local_answer_is_not_a_failure() {
    assert!(!Termination::new(Cause::Local, Phase::Request).failed());
    assert!(Termination::new(Cause::Proxy, Phase::Request).failed());
}

#[test]
fn a_tcplog_line_has_haproxys_fields_in_its_order() {
    // HAProxy: `127.0.0.1:56256 [..] ft bt/s1 1/0/1 2405 -- 1/1/0/0/0 0/0`
    let mut r = served();
    r.format = LogFormat::Tcp;
    r.mode = ProxyMode::Tcp;
    r.client = "127.0.0.1:56256".parse().unwrap();
    r.frontend = "ft".into();
    r.backend = Some("bt".into());
    r.timers = Timers {
        queue: ms(1),
        connect: ms(0),
        total: Duration::from_millis(1),
        ..Timers::default()
    };
    r.status = 0;
    r.bytes = 2405;
    r.request = None;
    assert_eq!(
        undated(&r),
        "127.0.0.1:56256 ft bt/s1 1/0/1 2405 -- 1/1/0/0/0 0/0"
    );
}

#[test]
fn the_connect_line_and_ipv6_clients() {
    let mut r = served();
    r.format = LogFormat::Connect;
    r.client = "[::1]:5000".parse().unwrap();
    assert_eq!(
        text(&r),
        "Connect from ::1:5000 to 127.0.0.1:8080 (fe/HTTP)"
    );
}

#[test]
fn json_names_the_same_fields() {
    let mut r = served();
    r.request = Some("GET /\"q\" HTTP/1.1".into());
    let j = json(&r);
    let date = Local::of(r.date).iso();
    let want = format!(
        r#"{{"client_ip":"127.0.0.1","client_port":43330,"request_date":"{date}","frontend_name":"fe","backend_name":"be","server_name":"s1","TR":0,"Tw":0,"Tc":0,"Tr":1,"Ta":1,"status_code":200,"bytes_read":2404,"termination_state":"----","actconn":1,"feconn":1,"beconn":0,"srv_conn":0,"retries":0,"redispatched":false,"srv_queue":0,"backend_queue":0,"http_request":"GET /\"q\" HTTP/1.1"}}"#
    );
    assert_eq!(j, want);
    r.timers.connect = None;
    assert!(json(&r).contains(r#""Tc":-1,"#));
}
