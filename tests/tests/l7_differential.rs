//! lb against Debian's HAProxy 2.6 on the same servers: the seed's frontend
//! and backends plus one backend per balance algorithm and cookie mode,
//! written once ([`Setup`]) and run by both. The same table of requests,
//! in the same order and from the same source addresses, goes through each;
//! every request must reach the same server and carry the same
//! `X-Forwarded-For`, `Cookie` and `Set-Cookie` lines, except where
//! docs/proxy.md says lb differs on purpose, which is asserted as
//! documented. Needs root (lb's agent pins its maps) and haproxy.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use lb_tests::l7::diff::{Case, Seen, observe_all};
use lb_tests::l7::echo::EchoServer;
use lb_tests::l7::procs::{Haproxy, Lb, free_port, wait_until};
use lb_tests::l7::seed;
use lb_tests::l7::setup::{
    Backend, Balance, Check, Cookie, CookieMode, Defaults, ForwardFor, Frontend, Server, Setup,
};

fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn any() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// The echo servers both proxies share: `static`, `s1`, `s2`, `s3`.
struct Servers(Vec<EchoServer>);

impl Servers {
    fn start() -> Servers {
        let names = ["static", "s1", "s2", "s3"];
        Servers(
            names
                .iter()
                .map(|n| EchoServer::start(n, any()).expect("echo server"))
                .collect(),
        )
    }

    fn addr(&self, name: &str) -> SocketAddr {
        self.0
            .iter()
            .find(|s| s.name() == name)
            .map(EchoServer::addr)
            .expect("known server")
    }
}

fn cookie(name: &str, mode: CookieMode, flags: &[&str]) -> Cookie {
    let mut c = Cookie::new(name, mode);
    c.indirect = flags.contains(&"indirect");
    c.nocache = flags.contains(&"nocache");
    c.httponly = flags.contains(&"httponly");
    c.secure = flags.contains(&"secure");
    c
}

/// A backend of `s1`, `s2` (and `s3` when `weights` has three) with
/// weights and cookie values `c1`, `c2`, `c3`.
fn trio(sv: &Servers, name: &str, balance: Balance, weights: &[u32]) -> Backend {
    let servers = ["s1", "s2", "s3"]
        .iter()
        .zip(weights)
        .enumerate()
        .map(|(i, (s, w))| {
            Server::new(&format!("{name}{}", i + 1), sv.addr(s))
                .weight(*w)
                .cookie(&format!("c{}", i + 1))
        })
        .collect();
    Backend::new(name, balance, servers)
}

/// `webx`: the seed's `web` plus a server that is down (its port is
/// closed; checks find it) and one in maintenance, with `insert`.
fn webx(sv: &Servers) -> Backend {
    let dead = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port().expect("port")));
    let mut maint = Server::new("web4", sv.addr("s3")).cookie("server4");
    maint.maint = true;
    let mut b = Backend::new(
        "webx",
        Balance::RoundRobin,
        vec![
            Server::new("web1", sv.addr("s1")).cookie("server1"),
            Server::new("web2", sv.addr("s2")).cookie("server2"),
            Server::new("web3", dead).cookie("server3"),
            maint,
        ],
    );
    b.cookie = Some(cookie("SERVERID", CookieMode::Insert, &[]));
    b.check = Some(Check {
        inter: Duration::from_millis(100),
        rise: 1,
        fall: 1,
    });
    b
}

/// The frontends and backends of the seed run, in frontend order; each
/// frontend is named after its backend.
fn seed_setup(sv: &Servers) -> Setup {
    let mut backends = seed::backends(sv.addr("static"), sv.addr("s1"), sv.addr("s2"));
    backends.push(webx(sv));
    let with_cookie = |mut b: Backend, c: Cookie| {
        b.cookie = Some(c);
        b
    };
    let rr = |b| trio(sv, b, Balance::RoundRobin, &[1, 1]);
    backends.extend([
        with_cookie(
            rr("ins"),
            cookie("SERVERID", CookieMode::Insert, &["indirect", "nocache"]),
        ),
        with_cookie(
            rr("ins2"),
            cookie("SRV", CookieMode::Insert, &["httponly", "secure"]),
        ),
        with_cookie(rr("rw"), cookie("SERVERID", CookieMode::Rewrite, &[])),
        with_cookie(rr("pfx"), cookie("JSESSIONID", CookieMode::Prefix, &[])),
        with_cookie(
            Backend::new(
                "insst",
                Balance::RoundRobin,
                vec![Server::new("st", sv.addr("static"))],
            ),
            cookie("SERVERID", CookieMode::Insert, &[]),
        ),
        trio(sv, "rr", Balance::RoundRobin, &[1, 2, 3]),
        trio(sv, "srr", Balance::StaticRr, &[1, 2, 3]),
    ]);
    for (name, balance) in [
        ("src", Balance::Source),
        ("uri", Balance::Uri),
        ("urlp", Balance::UrlParam("user".into())),
        ("hdr", Balance::Hdr("X-User".into())),
    ] {
        backends.push(trio(sv, name, balance.clone(), &[1, 2, 3]));
        let mut c = trio(sv, &format!("{name}c"), balance, &[1, 2, 3]);
        c.consistent = true;
        backends.push(c);
    }
    let mut frontends = vec![seed::main_frontend()];
    for b in &backends[2..] {
        frontends.push(Frontend::to(&b.name, &b.name));
    }
    // Path ACLs without -i: case matters.
    let mut cased = Frontend::to("cased", "web");
    cased.acls.push(("st".into(), "path_beg /Static".into()));
    cased.acls.push(("st".into(), "path_end .PNG".into()));
    cased.use_backend.push("static if st".into());
    frontends.push(cased);
    Setup {
        maxconn: 4000,
        threads: None,
        defaults: Defaults::seed(),
        frontends,
        backends,
    }
}

fn fe(setup: &Setup, name: &str) -> usize {
    setup
        .frontends
        .iter()
        .position(|f| f.name == name)
        .unwrap_or_else(|| panic!("no frontend {name}"))
}

const ROUTED: &[&str] = &[
    "/static/app.js",
    "/STATIC/x",
    "/Images/a.png",
    "/javascript",
    "/stylesheets/site",
    "/x/logo.JPG",
    "/a.gif",
    "/b.png?x=1",
    "/c.css",
    "/d.js",
    "/static?q",
    "/statics",
    "/stat",
    "/a.jsx",
    "/a.js/",
    "/img/a.jpeg",
    "/index.php?f=a.css",
    "/",
    "/x.CSS",
    "//static/a",
    "/a/static/b",
    "/javascripts",
    "/a.pn",
    "/images",
    "/Stylesheets/../a",
    "/.js",
];

/// Path routing and the seed's bare (read-only) cookie on `main`.
fn main_cases(s: &Setup) -> Vec<Case> {
    let main = fe(s, "main");
    let mut cases: Vec<Case> = ROUTED
        .iter()
        .map(|p| Case::new(format!("main {p}"), main, lo(1), p))
        .collect();
    let cased = fe(s, "cased");
    for p in [
        "/Static/a",
        "/static/a",
        "/STATIC/a",
        "/a.PNG",
        "/a.png",
        "/Static",
    ] {
        cases.push(Case::new(format!("cased {p}"), cased, lo(1), p));
    }
    for c in [
        "SERVERID=server1",
        "SERVERID=server2",
        "SERVERID=server9",
        "SERVERID=",
        "a=1; SERVERID=server2; b=2",
        "serverid=server1",
        "SERVERID=server1|x1y2",
        "SERVERID=\"server2\"",
        "a=1, SERVERID=server1",
    ] {
        let case = Case::new(format!("main Cookie: {c}"), main, lo(1), "/app");
        cases.push(case.header(&format!("Cookie: {c}")));
    }
    let two = Case::new("main two Cookie lines", main, lo(1), "/app");
    cases.push(two.header("Cookie: a=1").header("Cookie: SERVERID=server2"));
    cases
}

/// Insert, rewrite and prefix cookies; servers down and in maintenance.
fn cookie_cases(s: &Setup) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |front: &str, target: &str, headers: &[&str]| {
        let label = format!("{front} {target} {}", headers.join(" | "));
        let mut c = Case::new(label, fe(s, front), lo(1), target);
        for h in headers {
            c = c.header(h);
        }
        cases.push(c);
    };
    for v in [
        "", "server1", "server2", "server3", "server4", "nosuch", "server1",
    ] {
        let h = format!("Cookie: SERVERID={v}");
        let headers: &[&str] = if v.is_empty() { &[] } else { &[h.as_str()] };
        add("webx", "/", headers);
    }
    let cache = "X-Reply: Cache-Control: max-age=60";
    let app = "X-Reply: Set-Cookie: SERVERID=app; path=/";
    add("ins", "/", &[]);
    add("ins", "/", &[cache]);
    add(
        "ins",
        "/",
        &["X-Reply: Cache-Control: private", "X-Reply: ETag: \"x\""],
    );
    add("ins", "/", &["Cookie: a=1; SERVERID=c2; b=2", cache]);
    add("ins", "/", &["Cookie: SERVERID=c1", app]);
    add("ins", "/", &["Cookie: SERVERID=zz", app, cache]);
    add("ins", "/", &[app]);
    add("ins", "/", &["Cookie: SERVERID=nosuch; SERVERID=c2"]);
    add("ins", "/", &["Cookie: a=1;SERVERID=c2;b=2"]);
    add("ins", "/", &["Cookie: a = 1 ; SERVERID = c1"]);
    add("main", "/app", &["Cookie: a = 1; SERVERID = server2"]);
    add("ins2", "/", &[]);
    add("ins2", "/", &["Cookie: SRV=c2"]);
    add("rw", "/", &[app]);
    add("rw", "/", &[]);
    add("rw", "/", &["Cookie: SERVERID=c2", app]);
    add("pfx", "/", &["X-Reply: Set-Cookie: JSESSIONID=abc; path=/"]);
    add(
        "pfx",
        "/",
        &[
            "Cookie: JSESSIONID=c2~xyz",
            "X-Reply: Set-Cookie: JSESSIONID=xyz",
        ],
    );
    add("pfx", "/", &["Cookie: JSESSIONID=zz~xyz; o=1"]);
    add("insst", "/", &["Cookie: SERVERID=server1"]);
    cases
}

/// Round robins over two periods, and each hash with and without a key.
fn balance_cases(s: &Setup) -> Vec<Case> {
    let mut cases = Vec::new();
    for b in ["rr", "srr"] {
        for i in 0..12 {
            cases.push(Case::new(format!("{b} #{i}"), fe(s, b), lo(1), "/"));
        }
    }
    for b in ["src", "srcc"] {
        for i in 1..=12 {
            cases.push(Case::new(
                format!("{b} from {}", lo(i)),
                fe(s, b),
                lo(i),
                "/",
            ));
        }
    }
    let mut targets: Vec<String> = (0..10).map(|i| format!("/p/{i}")).collect();
    targets.extend([
        "/p/1?x=2".into(),
        "/P/1".into(),
        "/p/1/".into(),
        "http://lb/p/1".into(),
    ]);
    for b in ["uri", "uric"] {
        for t in &targets {
            cases.push(Case::new(format!("{b} {t}"), fe(s, b), lo(1), t));
        }
    }
    let mut params: Vec<String> = (0..10).map(|i| format!("/?user=u{i}")).collect();
    params.extend([
        "/?a=1&user=u3".into(),
        "/?user=u1&user=u2".into(),
        "/?x=1".into(),
        "/?user=".into(),
        "/a?users=u1".into(),
    ]);
    for b in ["urlp", "urlpc"] {
        for t in &params {
            cases.push(Case::new(format!("{b} {t}"), fe(s, b), lo(1), t));
        }
    }
    for b in ["hdr", "hdrc"] {
        for i in 0..10 {
            let c = Case::new(format!("{b} X-User: u{i}"), fe(s, b), lo(1), "/");
            cases.push(c.header(&format!("X-User: u{i}")));
        }
        cases.push(Case::new(format!("{b} no header"), fe(s, b), lo(1), "/"));
        let two = Case::new(format!("{b} X-User: a, b"), fe(s, b), lo(1), "/");
        cases.push(two.header("X-User: a, b"));
        let lines = Case::new(format!("{b} two X-User lines"), fe(s, b), lo(1), "/");
        cases.push(lines.header("X-User: u7").header("X-User: u2"));
        let blank = Case::new(format!("{b} X-User blank"), fe(s, b), lo(1), "/");
        cases.push(blank.header("X-User:  u4 "));
    }
    cases
}

/// Where lb differs on purpose (docs/proxy.md, "Where lb differs from
/// HAProxy 2.6"): asserts lb's documented behaviour and names the difference.
fn intended(case: &Case, haproxy: &Seen, lb: &Seen) -> Option<&'static str> {
    if case.label.starts_with("insst") {
        // "cookie … insert: a server without a cookie value".
        let expired = haproxy
            .set_cookie
            .iter()
            .any(|c| c.contains("Expires=Thu, 01-Jan-1970"));
        assert!(expired, "HAProxy expires the cookie: {haproxy:?}");
        assert!(lb.set_cookie.is_empty(), "lb sets nothing: {lb:?}");
        assert_eq!(haproxy.server, lb.server);
        return Some("a server without a cookie value does not expire the client's cookie");
    }
    let sent: Vec<&str> = case
        .headers
        .iter()
        .filter_map(|h| h.strip_prefix("Cookie: "))
        .collect();
    if sent.iter().any(|c| c.contains(" = ")) && lb.cookie == sent {
        // "every Cookie line of a pool with a cookie has its blanks around
        // = removed": lb passes a line it has nothing to take out of as sent.
        let unblanked: Vec<String> = sent.iter().map(|c| c.replace(" = ", "=")).collect();
        assert_eq!(haproxy.cookie, unblanked);
        assert_eq!(
            Seen {
                cookie: Vec::new(),
                ..haproxy.clone()
            },
            Seen {
                cookie: Vec::new(),
                ..lb.clone()
            }
        );
        return Some("Cookie lines lb takes nothing from are passed as sent");
    }
    None
}

/// A step of a run: what is done to both proxies, then requests.
type Phase<'a> = (&'a dyn Fn(&Haproxy, &Lb), Vec<Case>);

/// Runs the phases through fresh HAProxy and lb on `setup` and compares
/// the answers one by one; `sane` first checks that HAProxy's answers
/// exercise what the table means to (so agreement means something).
fn compare_phases(setup: &Setup, phases: &[Phase], sane: impl Fn(&[Case], &[Seen])) {
    let haproxy = Haproxy::start(setup).expect("HAProxy");
    let lb = Lb::start(setup).expect("lb");
    let (mut cases, mut h, mut l) = (Vec::new(), Vec::new(), Vec::new());
    for (before, phase) in phases {
        before(&haproxy, &lb);
        h.extend(observe_all(phase, &haproxy.binds).expect("requests through HAProxy"));
        let seen = observe_all(phase, &lb.binds);
        l.extend(seen.unwrap_or_else(|e| panic!("through lb: {e:#}\n{}", lb.log())));
        cases.extend(phase.iter().cloned());
    }
    sane(&cases, &h);
    let mut wrong = Vec::new();
    for ((case, h), l) in cases.iter().zip(&h).zip(&l) {
        assert_eq!(h.status, 200, "HAProxy answers {}: {h:?}", case.label);
        if h == l {
            continue;
        }
        match intended(case, h, l) {
            Some(why) => eprintln!("{}: differs on purpose: {why}", case.label),
            None => wrong.push(format!("{}:\n  HAProxy {h:?}\n  lb      {l:?}", case.label)),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases differ:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// [`compare_phases`] with one phase after `ready`.
fn compare(
    setup: &Setup,
    cases: &[Case],
    ready: impl Fn(&Haproxy, &Lb),
    sane: impl Fn(&[Case], &[Seen]),
) {
    compare_phases(setup, &[(&ready, cases.to_vec())], sane);
}

#[test]
fn the_seed_and_every_balance_and_cookie_mode_agree_with_haproxy() {
    let sv = Servers::start();
    let setup = seed_setup(&sv);
    let mut cases = balance_cases(&setup);
    cases.extend(main_cases(&setup));
    cases.extend(cookie_cases(&setup));
    let ready = |h: &Haproxy, l: &Lb| {
        wait_until("HAProxy: webx/web3 DOWN", || {
            h.server_status("webx", "web3")
                .is_ok_and(|s| s.starts_with("DOWN"))
        })
        .expect("HAProxy's check");
        wait_until("lb: webx/web3 down", || {
            l.server_state("webx", "web3").ok().flatten().as_deref() == Some("down")
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", l.log()));
    };
    compare(&setup, &cases, ready, seed_table_is_sane);
}

/// Static paths reach `static`, every balancer spreads its requests, the
/// seed's bare cookie sets nothing and `insert` does.
fn seed_table_is_sane(cases: &[Case], seen: &[Seen]) {
    let servers = |prefix: &str| {
        let mut s: Vec<&str> = cases
            .iter()
            .zip(seen)
            .filter(|(c, _)| c.label.starts_with(prefix))
            .filter_map(|(_, s)| s.server.as_deref())
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    assert_eq!(servers("main /static/app.js"), ["static"]);
    assert_eq!(servers("main /"), ["s1", "s2", "static"]);
    assert_eq!(servers("cased /Static"), ["static"]);
    assert!(
        !servers("cased /static").contains(&"static"),
        "case matters"
    );
    for b in [
        "rr ", "srr ", "src ", "srcc ", "uri ", "uric ", "urlp ", "urlpc ", "hdr ", "hdrc ",
    ] {
        assert_eq!(servers(b), ["s1", "s2", "s3"], "{b}spreads");
    }
    let set = |prefix: &str| {
        cases
            .iter()
            .zip(seen)
            .filter(|(c, s)| c.label.starts_with(prefix) && !s.set_cookie.is_empty())
            .count()
    };
    assert_eq!(set("main "), 0, "the seed's bare cookie sets nothing");
    assert!(set("ins ") > 0 && set("webx ") > 0 && set("pfx ") > 0 && set("rw ") > 0);
}

/// Frontends with `option forwardfor`, `except` a host and a network, and
/// `header X-Client`, over `defaults`; requests from three addresses, each
/// with and without an `X-Forwarded-For` of the client's own.
fn forwardfor_run(defaults: Defaults, sane: impl Fn(&[Case], &[Seen])) {
    let sv = Servers::start();
    let p1 = Server::new("p1", sv.addr("s1"));
    let plain = Backend::new("plain", Balance::RoundRobin, vec![p1]);
    let mut frontends = Vec::new();
    for (name, except, header) in [
        ("xff", None, None),
        ("xffex", Some("127.0.0.2/32"), None),
        ("xffnet", Some("127.0.0.0/30"), None),
        ("xffh", None, Some("X-Client")),
    ] {
        let mut f = Frontend::to(name, "plain");
        f.forwardfor = Some(ForwardFor {
            except: except.map(str::to_owned),
            header: header.map(str::to_owned),
        });
        frontends.push(f);
    }
    let setup = Setup {
        maxconn: 4000,
        threads: None,
        defaults,
        frontends,
        backends: vec![plain],
    };
    let mut cases = Vec::new();
    for (i, f) in setup.frontends.iter().enumerate() {
        for src in [2, 3, 4] {
            let label = format!("{} from {}", f.name, lo(src));
            cases.push(Case::new(label.clone(), i, lo(src), "/"));
            let given = Case::new(format!("{label} with its own"), i, lo(src), "/");
            cases.push(given.header("X-Forwarded-For: 203.0.113.9"));
        }
    }
    compare(&setup, &cases, |_, _| {}, sane);
}

/// How many cases brought the server a line with the client's address.
fn with_client_address(cases: &[Case], seen: &[Seen]) -> usize {
    let added = cases.iter().zip(seen);
    added
        .filter(|(_, s)| s.forwarded.iter().any(|v| v.starts_with("127.")))
        .count()
}

#[test]
fn forwardfor_and_its_exceptions_agree_with_haproxy() {
    forwardfor_run(Defaults::plain(), |cases, seen| {
        assert!(with_client_address(cases, seen) >= cases.len() / 2);
    });
}

/// The seed's `defaults` hold `option forwardfor except 127.0.0.0/8`; in
/// HAProxy every backend inherits it, and a frontend's own `option
/// forwardfor` does not lift the backend's exception.
#[test]
fn a_frontends_forwardfor_under_the_seeds_defaults_agrees_with_haproxy() {
    forwardfor_run(Defaults::seed(), |cases, seen| {
        assert_eq!(with_client_address(cases, seen), 0, "HAProxy adds none");
    });
}

/// Applies a runtime change to both: HAProxy's stats socket command, lb's
/// `lb-ctl` command; then waits until lb's proxy shows `metric`.
fn change(h: &Haproxy, l: &Lb, haproxy_cmd: &str, lb_args: &[&str], metric: &str) {
    let out = h.command(haproxy_cmd).expect("HAProxy's stats socket");
    assert!(out.trim().is_empty(), "{haproxy_cmd}: {out}");
    l.ctl(lb_args).unwrap_or_else(|e| panic!("{e:#}"));
    wait_until(metric, || l.metrics().is_ok_and(|m| m.contains(metric)))
        .unwrap_or_else(|e| panic!("{e}\n{}", l.log()));
}

/// Drains and weight changes at runtime, in the middle of a round robin's
/// period: the turns that follow, and a drained server keeping its
/// persistent clients.
#[test]
fn runtime_drain_and_weight_changes_agree_with_haproxy() {
    let sv = Servers::start();
    let mut d = trio(&sv, "d", Balance::RoundRobin, &[1, 1, 1]);
    d.cookie = Some(cookie("SRV", CookieMode::Insert, &[]));
    let w = trio(&sv, "w", Balance::RoundRobin, &[1, 2, 3]);
    let setup = Setup {
        maxconn: 4000,
        threads: None,
        defaults: Defaults::plain(),
        frontends: vec![Frontend::to("d", "d"), Frontend::to("w", "w")],
        backends: vec![d, w],
    };
    let phase = |tag: &str, sticky: bool| {
        let mut cases = Vec::new();
        for i in 0..7 {
            cases.push(Case::new(format!("{tag} d #{i}"), 0, lo(1), "/"));
            cases.push(Case::new(format!("{tag} w #{i}"), 1, lo(1), "/"));
            cases.push(Case::new(format!("{tag} w #{i}b"), 1, lo(1), "/"));
        }
        if sticky {
            for c in ["SRV=c2", "SRV=c1", "SRV=c2"] {
                let case = Case::new(format!("{tag} d {c}"), 0, lo(1), "/");
                cases.push(case.header(&format!("Cookie: {c}")));
            }
        }
        cases
    };
    let state = |s: &str, st: &str| {
        format!(r#"lb_proxy_server_state{{pool="d",server="{s}",state="{st}"}} 1"#)
    };
    let weight =
        |s: &str, n: u32| format!(r#"lb_proxy_server_weight{{pool="w",server="{s}"}} {n}"#);
    let drain = |h: &Haproxy, l: &Lb| {
        change(
            h,
            l,
            "set server d/d2 state drain",
            &["backend", "drain", "d", "d2"],
            &state("d2", "drain"),
        );
        change(
            h,
            l,
            "set weight w/w3 1",
            &["backend", "set-weight", "w", "w3", "1"],
            &weight("w3", 1),
        );
    };
    let restore = |h: &Haproxy, l: &Lb| {
        change(
            h,
            l,
            "set server d/d2 state ready",
            &["backend", "enable", "d", "d2"],
            &state("d2", "up"),
        );
        change(
            h,
            l,
            "set weight w/w3 3",
            &["backend", "set-weight", "w", "w3", "3"],
            &weight("w3", 3),
        );
    };
    let nothing = |_: &Haproxy, _: &Lb| {};
    let phases: [Phase; 3] = [
        (&nothing, phase("before", false)),
        (&drain, phase("drained", true)),
        (&restore, phase("restored", false)),
    ];
    compare_phases(&setup, &phases, |cases, seen| {
        for (c, s) in cases.iter().zip(seen) {
            if c.label.starts_with("drained d #") {
                assert_ne!(s.server.as_deref(), Some("s2"), "HAProxy: d2 drained");
            }
            if c.label.starts_with("drained d SRV=c2") {
                assert_eq!(s.server.as_deref(), Some("s2"), "HAProxy: sticky on d2");
            }
        }
    });
}
