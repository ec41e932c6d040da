//! The page's lines against HAProxy 2.6's for its stats page (Debian's
//! 2.6.12, `listen admin_status` with `option httplog`), and the bytes
//! against what the HTTP server really writes.

use std::convert::Infallible;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{StatusCode, header};
use hyper_util::rt::TokioIo;
use lb_config::proxy::{Facility, FrontendLog, LogDestination, LogTarget, Severity, SyslogFormat};
use lb_proxy::log::format::text;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;
use crate::http::body::full;

fn page_log() -> PageLog {
    let cfg = StatsConfig {
        name: "admin_status".into(),
        log: FrontendLog {
            targets: vec![LogTarget {
                destination: LogDestination::Stdout,
                facility: Facility::Local0,
                level: Severity::Info,
                minlevel: None,
                format: SyslogFormat::Raw,
                len: 1024,
            }],
            format: LogFormat::Http,
            ..FrontendLog::default()
        },
        ..StatsConfig::default()
    };
    PageLog::new(&cfg, "lb").expect("a target")
}

fn request(method: &str, path: &str) -> hyper::Request<()> {
    let addrs = Addrs {
        peer: "127.0.0.1:58496".parse().unwrap(),
        local: "127.0.0.1:9188".parse().unwrap(),
    };
    hyper::Request::builder()
        .method(method)
        .uri(path)
        .extension(addrs)
        .body(())
        .unwrap()
}

fn page(status: StatusCode, body: &'static str) -> HttpResponse {
    full(
        status,
        "text/html; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

/// The line's words, the date left out.
fn words(log: &PageLog, method: &str, path: &str, resp: &HttpResponse, a: Answered) -> Vec<String> {
    let mut entry = log.begin(&request(method, path));
    let line = text(&entry.record(resp, a));
    let mut w: Vec<String> = line.split(' ').map(str::to_owned).collect();
    assert!(w[1].starts_with('['), "{line}");
    w.remove(1);
    w
}

/// HAProxy's timers with the total (and `Tr`) left out: they are times.
fn timers(w: &[String]) -> String {
    let t: Vec<&str> = w[3].split('/').collect();
    assert_eq!(t.len(), 5, "{w:?}");
    t[..3].join("/") + if t[3] == "-1" { "/-1" } else { "/Tr" }
}

#[test]
fn a_page_view_is_haproxys_stats_line() {
    // HAProxy: `127.0.0.1:58496 [..] admin_status admin_status/<STATS>
    // 0/0/0/0/0 200 13469 - - LR-- 1/1/0/0/0 0/0 "GET /haproxy-status HTTP/1.1"`
    let log = page_log();
    let resp = page(StatusCode::OK, "<html></html>");
    let w = words(&log, "GET", "/haproxy-status", &resp, Answered::Page);
    assert_eq!(
        [&w[..3], &w[4..5], &w[6..]].concat(),
        [
            "127.0.0.1:58496",
            "admin_status",
            "admin_status/<STATS>",
            "200",
            "-",
            "-",
            "LR--",
            "1/1/0/0/0",
            "0/0",
            "\"GET",
            "/haproxy-status",
            "HTTP/1.1\""
        ]
    );
    assert_eq!(timers(&w), "0/0/0/Tr");
    assert_eq!(w[5], sent(&resp, false, 0).to_string());
}

#[test]
fn a_challenge_has_no_response_time_and_another_path_no_server() {
    // HAProxy: `admin_status/<STATS> 0/0/0/-1/0 ... LR--` for its 401 and
    // `admin_status/<NOSRV> 0/-1/-1/-1/0` for a path outside the page.
    let log = page_log();
    let resp = page(StatusCode::UNAUTHORIZED, "who?");
    let w = words(&log, "GET", "/haproxy-status", &resp, Answered::Challenge);
    assert_eq!(
        (w[2].as_str(), timers(&w), w[4].as_str()),
        ("admin_status/<STATS>", "0/0/0/-1".into(), "401")
    );
    let resp = page(StatusCode::NOT_FOUND, "no page");
    let w = words(&log, "GET", "/other", &resp, Answered::Elsewhere);
    assert_eq!(
        (w[2].as_str(), timers(&w), w[8].as_str()),
        ("admin_status/<NOSRV>", "0/-1/-1/-1".into(), "LR--")
    );
}

#[test]
fn requests_being_answered_are_the_connection_counts() {
    let log = page_log();
    let first = log.begin(&request("GET", "/haproxy-status"));
    let mut second = log.begin(&request("GET", "/haproxy-status"));
    let resp = page(StatusCode::OK, "x");
    assert_eq!(second.record(&resp, Answered::Page).conns.active, 2);
    drop(first);
    assert_eq!(second.record(&resp, Answered::Page).conns.frontend, 1);
}

/// What the HTTP server writes for `resp` to the request `head` (its
/// first line and headers).
async fn written(resp: fn() -> HttpResponse, head: &str) -> usize {
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let svc = service_fn(move |_req| async move { Ok::<_, Infallible>(resp()) });
    tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(server), svc));
    client
        .write_all(format!("{head}\r\n").as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = client.read(&mut buf).await.unwrap();
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        let Some(end) = text.find("\r\n\r\n") else {
            assert!(n > 0, "the head ended early: {text}");
            continue;
        };
        let length: usize = text[..end]
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.parse().unwrap());
        let whole = end + 4 + if head.starts_with("HEAD") { 0 } else { length };
        if got.len() >= whole || n == 0 {
            return got.len();
        }
    }
}

#[tokio::test]
async fn the_bytes_are_what_the_http_server_writes() {
    fn secured() -> HttpResponse {
        let mut r = page(StatusCode::OK, "<html><body>the page</body></html>");
        let deny = header::HeaderValue::from_static("DENY");
        r.headers_mut().insert(header::X_FRAME_OPTIONS, deny);
        r
    }
    fn refused() -> HttpResponse {
        page(StatusCode::FORBIDDEN, "403 Forbidden: no token\n")
    }
    type Answer = fn() -> HttpResponse;
    let cases: [(Answer, Method, Version, Option<&str>); 6] = [
        (secured, Method::GET, Version::HTTP_11, None),
        (secured, Method::GET, Version::HTTP_11, Some("close")),
        (secured, Method::HEAD, Version::HTTP_11, None),
        (refused, Method::POST, Version::HTTP_11, Some("Keep-Alive")),
        (secured, Method::GET, Version::HTTP_10, None),
        (secured, Method::GET, Version::HTTP_10, Some("keep-alive")),
    ];
    for (resp, method, version, connection) in cases {
        let mut head = format!("{method} /haproxy-status {version:?}\r\nHost: lb\r\n");
        let mut req = hyper::Request::builder()
            .method(method.clone())
            .version(version);
        if let Some(c) = connection {
            head += &format!("Connection: {c}\r\n");
            req = req.header(header::CONNECTION, c);
        }
        let req = req.body(()).unwrap();
        assert_eq!(
            written(resp, &head).await as u64,
            sent(&resp(), method == Method::HEAD, connection_line(&req)),
            "{head}"
        );
    }
}
