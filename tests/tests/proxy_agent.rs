//! The L7 proxy in the real agent: `lb-ctl agent` with frontends in its
//! configuration file, real HTTP backends in their namespaces, requests
//! from the client namespace, `lb-ctl` drains and reloads. Needs root.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use lb_tests::{
    agent::{Agent, agent_section},
    http::{HttpBackend, connect},
    lab::{Lab, LabSpec},
};

const PORT: u16 = 8080;
const T: Duration = Duration::from_secs(5);

fn lab() -> (Lab, Vec<HttpBackend>) {
    let lab = Lab::new(LabSpec {
        backends: 3,
        client_aliases: 0,
        ipv6: false,
    })
    .expect("building the lab (needs root)");
    let http = lab.start_http(80).expect("HTTP backends");
    (lab, http)
}

/// The seed's frontend: `/static`… and images go to pool `static` (b3),
/// the rest to `web` (b1, b2), with `option forwardfor except 127.0.0.0/8`.
fn config(lab: &Lab, extra_frontend: &str) -> String {
    config_with(lab, "", extra_frontend)
}

/// [`config`] with `web_extra` lines (indented 4) in pool `web`.
fn config_with(lab: &Lab, web_extra: &str, extra_frontend: &str) -> String {
    let b = |n: &str| lab.backend(n).ip(false);
    format!(
        "pools:
  web:
{web_extra}    backends:
      - {{name: b1, address: {b1}, port: 80}}
      - {{name: b2, address: {b2}, port: 80}}
  static:
    backends:
      - {{name: b3, address: {b3}, port: 80}}
proxy:
  defaults:
    forwardfor: {{except: 127.0.0.0/8}}
frontends:
  main:
    bind: \"*:{PORT}\"
    acl:
      url_static: [path_beg -i /static /images /javascript /stylesheets, path_end -i .jpg .gif .png .css .js]
    use_backend:
      - static if url_static
    default_backend: web
{extra_frontend}",
        b1 = b("b1"),
        b2 = b("b2"),
        b3 = b("b3"),
    )
}

/// The proxy's address, seen from the client namespace.
fn proxy_addr(lab: &Lab) -> SocketAddr {
    SocketAddr::new(lab.lb().ip(false), PORT)
}

/// Sends `raw` on a new connection from the client namespace; the status
/// and the body of the answer.
fn send(lab: &Lab, raw: &str) -> (u16, String) {
    let mut s = lab
        .client()
        .ns
        .try_run(|| connect(None, proxy_addr(lab), T))
        .expect("netns")
        .expect("connecting to the proxy");
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .trim()
        .to_owned();
    (status, body)
}

fn get(lab: &Lab, path: &str) -> String {
    let (status, body) = send(
        lab,
        &format!("GET {path} HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn served(http: &[HttpBackend]) -> u64 {
    http.iter().map(HttpBackend::requests).sum()
}

#[test]
fn the_seeds_frontend_routes_drains_and_refuses_smuggling() {
    let (lab, http) = lab();
    let agent = Agent::start(&lab, &config(&lab, "")).unwrap();
    for path in ["/static/app.js", "/images/a", "/x/logo.PNG", "/site.css"] {
        assert_eq!(get(&lab, path), "b3", "{path} is static");
    }
    for path in ["/", "/index.php", "/stat", "/a.jsx"] {
        let b = get(&lab, path);
        assert!(b == "b1" || b == "b2", "{path} went to {b}");
    }
    // A drain applies to the proxy at once, without a reload.
    agent.json(&["backend", "drain", "web", "b1"]);
    for _ in 0..6 {
        assert_eq!(get(&lab, "/"), "b2", "b1 is drained");
    }
    let metrics = agent.metrics(&lab).expect("metrics");
    assert!(
        metrics.contains(r#"lb_proxy_server_state{pool="web",server="b1",state="drain"} 1"#),
        "{metrics}"
    );
    agent.json(&["backend", "enable", "web", "b1"]);
    let seen: Vec<String> = (0..8).map(|_| get(&lab, "/")).collect();
    assert!(seen.iter().any(|b| b == "b1"), "b1 serves again: {seen:?}");
    // Smuggling attempts reach no server.
    let before = served(&http);
    for raw in [
        "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: lb\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\nHost: lb\n\n",
        "GET / HTTP/1.1\r\n\r\n",
    ] {
        let (status, _) = send(&lab, raw);
        assert_eq!(status, 400, "{raw:?}");
    }
    assert_eq!(served(&http), before, "no server saw any of them");
    let metrics = agent.metrics(&lab).expect("metrics");
    assert!(
        metrics.contains(r#"lb_proxy_frontend_rejected_total{frontend="main",reason="invalid"} 4"#),
        "{metrics}"
    );
}

#[test]
fn reloads_under_load_refuse_no_connection_and_keep_counters() {
    let (lab, _http) = lab();
    let mut agent = Agent::start(&lab, &config(&lab, "")).unwrap();
    let stop = AtomicBool::new(false);
    let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    // Each reload adds or removes a second frontend; `main` keeps its socket.
    let second = format!(
        "  other:\n    bind: \"*:{}\"\n    default_backend: web\n",
        PORT + 1
    );
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                match lb_tests::http::http_get(&lab.client().ns, None, proxy_addr(&lab), T) {
                    Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        eprintln!("request failed: {e:#}");
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
        });
        for i in 0..6 {
            let body = config(&lab, if i % 2 == 0 { &second } else { "" });
            let file = format!("{}{body}", agent_section(&agent.dir, &agent.bpffs));
            std::fs::write(&agent.config, file).unwrap();
            let out = agent.ctl(&["reload"]);
            assert!(out.status.success(), "reload {i}: {out:?}\n{}", agent.log());
            std::thread::sleep(Duration::from_millis(150));
        }
        stop.store(true, Ordering::SeqCst);
    });
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "requests failed across reloads:\n{}",
        agent.log()
    );
    let done = ok.load(Ordering::SeqCst);
    assert!(done > 20, "the load ran: {done} requests");
    let metrics = agent.metrics(&lab).expect("metrics");
    let line = metrics
        .lines()
        .find(|l| l.starts_with(r#"lb_proxy_frontend_requests_total{frontend="main"}"#))
        .unwrap_or_else(|| panic!("{metrics}"));
    let counted: u64 = line
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        counted >= done,
        "the frontend's counter survived the reloads: {counted} < {done}"
    );
    // A restarted agent serves again (its listener is bound before READY).
    agent.stop(libc::SIGTERM).unwrap();
    agent.spawn().unwrap();
    assert!(["b1", "b2"].contains(&get(&lab, "/").as_str()));
}

#[test]
fn a_failing_check_takes_a_server_out_of_a_frontend_only_pool() {
    let (lab, mut http) = lab();
    let check = "    check: {type: tcp, inter: 200ms, fall: 1, rise: 1}\n";
    let agent = Agent::start(&lab, &config_with(&lab, check, "")).unwrap();
    let state =
        |s: &str| format!(r#"lb_proxy_server_state{{pool="web",server="b1",state="{s}"}} 1"#);
    let wait_for = |want: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let m = agent.metrics(&lab).expect("metrics");
            if m.contains(want) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never {want}:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // The pool serves no L4 service: its backends are checked for the proxy.
    wait_for(&state("up"));
    let b1 = http.remove(0);
    assert_eq!(b1.name(), "b1");
    drop(b1);
    wait_for(&state("down"));
    for _ in 0..6 {
        assert_eq!(get(&lab, "/"), "b2", "b1's check fails");
    }
}
