//! A frontend's refusals in the real agent: `src_deny`/`src_allow` and
//! `rate_limit` against clients of the lab's client namespace, from its
//! main address and from an alias (another source, which must stay
//! unaffected); the counters in the metrics and in `lb-ctl frontend
//! list`; the response-time histograms. Needs root.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lb_tests::{
    agent::Agent,
    http::{HttpBackend, HttpConn, connect},
    lab::{Lab, LabSpec},
};

const T: Duration = Duration::from_secs(5);

/// A lab with one client alias (a second source address) and HTTP
/// backends on b1 and b2.
fn lab() -> (Lab, Vec<HttpBackend>) {
    let lab = Lab::new(LabSpec {
        backends: 2,
        client_aliases: 1,
        ipv6: false,
    })
    .expect("building the lab (needs root)");
    let http = lab.start_http(80).expect("HTTP backends");
    (lab, http)
}

/// Pool `web` (b1, b2), used by no L4 service, and `frontends` (each
/// entry's lines indented by 2, `default_backend: web` to be written).
fn config(lab: &Lab, frontends: &str) -> String {
    let b = |n: &str| lab.backend(n).ip(false);
    format!(
        "pools:\n  web:\n    backends:\n      - {{name: b1, address: {}, port: 80}}\n      - {{name: b2, address: {}, port: 80}}\nfrontends:\n{frontends}",
        b("b1"),
        b("b2")
    )
}

/// The client's two source addresses: its own, and its alias.
fn sources(lab: &Lab) -> (IpAddr, IpAddr) {
    (lab.client().ip(false), lab.client_aliases4()[0].into())
}

fn at(lab: &Lab, port: u16) -> SocketAddr {
    SocketAddr::new(lab.lb().ip(false), port)
}

/// `GET /` on a new connection from `src`: the status, or None when the
/// connection was closed (or reset) without an answer.
fn get(lab: &Lab, src: IpAddr, port: u16) -> Option<u16> {
    let mut s = lab
        .client()
        .ns
        .try_run(|| connect(Some(src), at(lab, port), T))
        .expect("netns")
        .expect("connecting to the proxy");
    let req = "GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n";
    // A connection closed at accept may refuse the write already.
    let _ = s.write_all(req.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

/// The value of the sample starting with `series` (labels included).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
}

fn denied(agent: &Agent, lab: &Lab, frontend: &str, reason: &str) -> f64 {
    let m = agent.metrics(lab).expect("metrics");
    sample(
        &m,
        &format!(r#"lb_proxy_frontend_denied_total{{frontend="{frontend}",reason="{reason}"}}"#),
    )
}

/// The stats page's CSV row of frontend `name` as (column → value), from
/// `stats:` on port 9188 (user admin:admin).
fn stats_row(lab: &Lab, name: &str) -> std::collections::HashMap<String, String> {
    let mut s = lab
        .client()
        .ns
        .try_run(|| connect(None, at(lab, 9188), T))
        .expect("netns")
        .expect("connecting to the stats page");
    let req = "GET /haproxy-status;csv HTTP/1.1\r\nHost: lb\r\n\
               Authorization: Basic YWRtaW46YWRtaW4=\r\nConnection: close\r\n\r\n";
    s.write_all(req.as_bytes()).expect("asking for the CSV");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("reading the CSV");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let header = body.lines().next().unwrap_or_default();
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let row = body
        .lines()
        .find(|l| l.starts_with(&format!("{name},FRONTEND,")))
        .unwrap_or_else(|| panic!("no FRONTEND row for {name}:\n{text}"));
    columns
        .iter()
        .zip(row.split(','))
        .map(|(c, v)| (c.to_string(), v.to_string()))
        .collect()
}

/// `lb-ctl frontend list -o json`'s entry for `name`.
fn frontend(agent: &Agent, name: &str) -> serde_json::Value {
    let list = agent.json(&["frontend", "list"]);
    list["frontends"]
        .as_array()
        .expect("frontends")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no frontend {name}: {list}"))
        .clone()
}

#[test]
fn requests_over_the_rate_get_the_reply_and_other_sources_do_not() {
    let (lab, _http) = lab();
    let front = |name: &str, port: u16, reply: &str| {
        format!(
            "  {name}:\n    bind: \"*:{port}\"\n    rate_limit: {{period: 1m, http_req_rate: 3, reply: {reply}}}\n    default_backend: web\n"
        )
    };
    let fronts = [
        ("r429", 8081, "429"),
        ("r403", 8082, "403"),
        ("rclose", 8083, "close"),
    ];
    let text: String = fronts.iter().map(|(n, p, r)| front(n, *p, r)).collect();
    let stats = "stats:\n  bind: \"*:9188\"\n  auth: [\"admin:admin\"]\n";
    let agent = Agent::start(&lab, &(config(&lab, &text) + stats)).unwrap();
    let (me, other) = sources(&lab);
    for (name, port, reply) in fronts {
        for i in 0..3 {
            assert_eq!(
                get(&lab, me, port),
                Some(200),
                "{name}: request {i} is within the rate"
            );
        }
        let want = reply.parse().ok();
        for _ in 0..2 {
            assert_eq!(get(&lab, me, port), want, "{name}: over the rate");
        }
        assert_eq!(
            get(&lab, other, port),
            Some(200),
            "{name}: another source is unaffected"
        );
        assert_eq!(denied(&agent, &lab, name, "http_req_rate"), 2.0, "{name}");
        let f = frontend(&agent, name);
        assert_eq!(f["denied"]["http_req_rate"], 2, "{f}");
        assert_eq!(f["responses"]["2xx"], 4, "{f}");
        // The stats page counts them too: HAProxy's denied requests.
        let row = stats_row(&lab, name);
        assert_eq!(row["dreq"], "2", "{name} on the stats page: {row:?}");
    }
    // A keep-alive connection is cut too, between two of its requests.
    let mut conn = HttpConn::open(&lab.client().ns, Some(other), at(&lab, 8083)).unwrap();
    assert!(conn.get().is_ok(), "the second request of `other`");
    assert!(conn.get().is_ok(), "the third");
    assert!(
        conn.get().is_err(),
        "the fourth is over the rate: closed unanswered"
    );
}

#[test]
fn connections_over_the_rate_or_concurrency_are_closed_at_accept() {
    let (lab, _http) = lab();
    let text = "  rate:\n    bind: \"*:8081\"\n    rate_limit: {period: 1m, conn_rate: 3}\n    default_backend: web\n  \
                cur:\n    bind: \"*:8082\"\n    rate_limit: {conn_cur: 2}\n    default_backend: web\n";
    let agent = Agent::start(&lab, &config(&lab, text)).unwrap();
    let (me, other) = sources(&lab);
    for _ in 0..3 {
        assert_eq!(get(&lab, me, 8081), Some(200));
    }
    assert_eq!(
        get(&lab, me, 8081),
        None,
        "the 4th connection of the minute"
    );
    assert_eq!(get(&lab, me, 8081), None, "refused attempts count too");
    assert_eq!(get(&lab, other, 8081), Some(200), "another source");
    assert_eq!(denied(&agent, &lab, "rate", "conn_rate"), 2.0);
    let f = frontend(&agent, "rate");
    assert_eq!(
        f["connections"], 4,
        "refused connections are not counted: {f}"
    );

    let ns = &lab.client().ns;
    let mut held: Vec<HttpConn> = (0..2)
        .map(|_| HttpConn::open(ns, Some(me), at(&lab, 8082)).unwrap())
        .collect();
    for c in &mut held {
        c.get().expect("held connections are served");
    }
    assert_eq!(get(&lab, me, 8082), None, "a third connection at once");
    assert_eq!(get(&lab, other, 8082), Some(200), "another source");
    drop(held.pop());
    // The proxy sees the close a moment later: then a connection fits again.
    let deadline = Instant::now() + T;
    while get(&lab, me, 8082) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "conn_cur never went down:\n{}",
            agent.log()
        );
    }
    assert!(denied(&agent, &lab, "cur", "conn_cur") >= 1.0);
}

#[test]
fn deny_and_allow_lists_close_at_accept() {
    let (lab, _http) = lab();
    let (me, other) = sources(&lab);
    let list = std::env::temp_dir().join(format!("lb-blocklist-{}", std::process::id()));
    std::fs::write(&list, format!("# scanners\n{me}\n192.0.2.0/24\n")).unwrap();
    let text = format!(
        "  deny:\n    bind: \"*:8081\"\n    src_deny: [{}]\n    default_backend: web\n  \
         allow:\n    bind: \"*:8082\"\n    src_allow: [{other}/32]\n    default_backend: web\n",
        list.display()
    );
    let agent = Agent::start(&lab, &config(&lab, &text));
    std::fs::remove_file(&list).unwrap();
    let agent = agent.unwrap();
    assert_eq!(get(&lab, me, 8081), None, "listed in the file");
    assert_eq!(get(&lab, other, 8081), Some(200));
    assert_eq!(get(&lab, me, 8082), None, "not in src_allow");
    assert_eq!(get(&lab, other, 8082), Some(200));
    assert_eq!(denied(&agent, &lab, "deny", "deny_list"), 1.0);
    assert_eq!(denied(&agent, &lab, "allow", "deny_list"), 1.0);
    assert_eq!(frontend(&agent, "allow")["denied"]["deny_list"], 1);
}

#[test]
fn response_times_and_the_frontend_list_count_every_request() {
    let (lab, _http) = lab();
    let text = "  main:\n    bind: \"*:8081\"\n    default_backend: web\n";
    let agent = Agent::start(&lab, &config(&lab, text)).unwrap();
    let (me, _) = sources(&lab);
    const N: u32 = 10;
    for _ in 0..N {
        assert_eq!(get(&lab, me, 8081), Some(200));
    }
    let m = agent.metrics(&lab).expect("metrics");
    let n = f64::from(N);
    let front = r#"lb_proxy_frontend_response_time_seconds"#;
    assert_eq!(
        sample(&m, &format!(r#"{front}_count{{frontend="main"}}"#)),
        n
    );
    assert_eq!(
        sample(
            &m,
            &format!(r#"{front}_bucket{{le="+Inf",frontend="main"}}"#)
        ),
        n
    );
    let sum = sample(&m, &format!(r#"{front}_sum{{frontend="main"}}"#));
    assert!(
        sum > 0.0 && sum < n,
        "{N} local requests took {sum} s in all"
    );
    let ten_s = sample(
        &m,
        &format!(r#"{front}_bucket{{le="10.0",frontend="main"}}"#),
    );
    assert_eq!(ten_s, n, "every local request took less than 10 s");
    let pool = r#"lb_proxy_pool_response_time_seconds_count{pool="web"}"#;
    assert_eq!(sample(&m, pool), n);
    let servers: f64 = ["b1", "b2"]
        .iter()
        .map(|s| {
            let series = format!(
                r#"lb_proxy_server_response_time_seconds_count{{pool="web",server="{s}"}}"#
            );
            sample(&m, &series)
        })
        .sum();
    assert_eq!(servers, n, "each response came from one server");

    let f = frontend(&agent, "main");
    assert_eq!(f["mode"], "http", "{f}");
    assert_eq!(f["binds"], serde_json::json!(["*:8081"]), "{f}");
    assert_eq!(f["state"], "open", "{f}");
    assert_eq!(
        (f["requests"].clone(), f["responses"]["2xx"].clone()),
        (N.into(), N.into()),
        "{f}"
    );
    assert_eq!(f["maxconn"], 3000, "{f}");
    let table = agent.ctl(&["frontend", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("main") && table.contains("0/3000"),
        "{table}"
    );
    // The pool serves no L4 service, and `backend list` shows it all the same.
    let pools = agent.json(&["backend", "list"]);
    let web = pools
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "web"))
        .unwrap_or_else(|| panic!("no pool web: {pools}"));
    let names: Vec<&str> = web["backends"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["b1", "b2"]);
}

#[test]
fn config_check_places_bad_values() {
    let dir = std::env::temp_dir().join(format!("lb-reject-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lb.yaml");
    let text = "pools:\n  web:\n    backends: [{address: 10.0.1.1, port: 80}]\nfrontends:\n  main:\n    bind: \"*:80\"\n    src_deny: [10.0.0.0/33]\n    rate_limit:\n      http_req_rate: 0\n      reply: 302\n    default_backend: web\n";
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(lb_tests::agent::lb_ctl_bin())
        .args(["config", "check"])
        .arg(&file)
        .output()
        .expect("running lb-ctl");
    std::fs::remove_dir_all(&dir).unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{said}");
    let path = file.display();
    for want in [
        format!("{path}:7:16"),
        "the prefix length is 0..=32".to_owned(),
        format!("{path}:9:22"),
        "http_req_rate 0 is out of range 1..=100000000".to_owned(),
        format!("{path}:10:14"),
        "`reply` is `close` (no answer) or a status".to_owned(),
    ] {
        assert!(said.contains(&want), "{want:?} in:\n{said}");
    }
}
