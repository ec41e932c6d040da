//! The persistence cookie's letters in the access log, lb against Debian's
//! HAProxy 2.6: the same requests through both, each proxy sending its
//! httplog lines to a UDP socket of the test, and every request's
//! termination state the same. The table reaches every letter lb writes:
//! `N`, `I`, `D`, `V` for the request's cookie; `N`, `I`, `P`, `R`, `D`
//! for the response's; `--` for a pool without `cookie` and for a bare
//! `cookie NAME`, which HAProxy leaves out too. Needs root (lb's agent pins
//! its maps) and haproxy.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use lb_tests::l7::diff::{Case, observe_all};
use lb_tests::l7::echo::EchoServer;
use lb_tests::l7::procs::{Haproxy, Lb, free_port, wait_until};
use lb_tests::l7::setup::{
    Backend, Balance, Check, Cookie, CookieMode, Defaults, Frontend, Server, Setup,
};

/// The application's own cookie of the pools' name, set by the server.
const APP: &str = "X-Reply: Set-Cookie: SERVERID=app; path=/";
/// The application's session cookie, for `prefix`.
const SESSION: &str = "X-Reply: Set-Cookie: JSESSIONID=abc; path=/";

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A pool of s1 (`c1`) and s2 (`c2`) with `cookie`, behind a frontend of
/// its name.
fn pool(name: &str, s1: SocketAddr, s2: SocketAddr, cookie: Option<Cookie>) -> Backend {
    let servers = vec![
        Server::new(&format!("{name}1"), s1).cookie("c1"),
        Server::new(&format!("{name}2"), s2).cookie("c2"),
    ];
    let mut b = Backend::new(name, Balance::RoundRobin, servers);
    b.cookie = cookie;
    b
}

/// `ins` (insert indirect, with `ins3`, `c3`, down), `rw` (rewrite), `pfx`
/// (prefix), `rd` (read), `rdi` (read indirect) and `plain` (no cookie).
fn setup(s1: SocketAddr, s2: SocketAddr) -> Setup {
    let mode = |name: &str, mode, indirect| {
        let mut c = Cookie::new(name, mode);
        c.indirect = indirect;
        Some(c)
    };
    let mut ins = pool("ins", s1, s2, mode("SERVERID", CookieMode::Insert, true));
    let dead = localhost(free_port().expect("a free port"));
    ins.servers.push(Server::new("ins3", dead).cookie("c3"));
    ins.check = Some(Check {
        inter: Duration::from_millis(100),
        rise: 1,
        fall: 1,
    });
    let backends = vec![
        ins,
        pool("rw", s1, s2, mode("SERVERID", CookieMode::Rewrite, false)),
        pool("pfx", s1, s2, mode("JSESSIONID", CookieMode::Prefix, false)),
        pool("rd", s1, s2, mode("SERVERID", CookieMode::Read, false)),
        pool("rdi", s1, s2, mode("SERVERID", CookieMode::Read, true)),
        pool("plain", s1, s2, None),
    ];
    Setup {
        maxconn: 4000,
        threads: None,
        defaults: Defaults::plain(),
        frontends: backends
            .iter()
            .map(|b| Frontend::to(&b.name, &b.name))
            .collect(),
        backends,
    }
}

/// The requests, each to a path of its own (`/case/N`) so its line is found.
fn cases(s: &Setup) -> Vec<Case> {
    let table: [(&str, &[&str]); 18] = [
        ("ins", &[]),
        ("ins", &["Cookie: SERVERID=c1"]),
        ("ins", &["Cookie: SERVERID=zz"]),
        ("ins", &["Cookie: SERVERID="]),
        ("ins", &["Cookie: SERVERID=c3"]),
        ("ins", &["Cookie: SERVERID=c1", APP]),
        ("ins", &[APP]),
        ("rw", &[APP]),
        ("rw", &["Cookie: SERVERID=c2", APP]),
        ("rw", &[]),
        ("pfx", &[SESSION]),
        ("pfx", &["Cookie: JSESSIONID=c2~xyz", SESSION]),
        ("pfx", &["Cookie: JSESSIONID=zz~xyz"]),
        ("rd", &[APP]),
        ("rd", &["Cookie: SERVERID=c1"]),
        ("rdi", &["Cookie: SERVERID=c1", APP]),
        ("rdi", &[APP]),
        ("plain", &["Cookie: SERVERID=c1", APP]),
    ];
    let frontend = |name: &str| s.frontends.iter().position(|f| f.name == name).unwrap();
    let lo = std::net::IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut out = Vec::new();
    for (i, (front, headers)) in table.into_iter().enumerate() {
        let target = format!("/case/{i}");
        let label = format!("{front} {}", headers.join(" | "));
        let mut c = Case::new(label, frontend(front), lo, &target);
        for h in headers {
            c = c.header(h);
        }
        out.push(c);
    }
    out
}

/// The termination state of each request's httplog line, by path, once
/// all `n` came (other lines, such as HAProxy's server state changes, are
/// skipped).
fn states(rx: &UdpSocket, n: usize) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut buf = [0u8; 4096];
    while out.len() < n {
        let got = rx.recv(&mut buf).expect("a log line within 5 s");
        let line = String::from_utf8_lossy(&buf[..got]).into_owned();
        let Some(request) = line.split('"').nth(1).filter(|r| r.starts_with("GET ")) else {
            continue;
        };
        let (_, fields) = line.split_once(": ").expect("a syslog tag");
        let state = fields.split(' ').nth(9).unwrap_or_default().to_owned();
        let path = request.split(' ').nth(1).unwrap_or_default().to_owned();
        out.insert(path, state);
    }
    out
}

fn receiver() -> UdpSocket {
    let rx = UdpSocket::bind(localhost(0)).expect("binding a receiver");
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    rx
}

#[test]
fn the_cookie_letters_agree_with_haproxy() {
    let s1 = EchoServer::start("s1", localhost(0)).expect("echo server");
    let s2 = EchoServer::start("s2", localhost(0)).expect("echo server");
    let mut setup = setup(s1.addr(), s2.addr());
    let cases = cases(&setup);
    let (h_rx, l_rx) = (receiver(), receiver());
    setup.defaults.log = Some(h_rx.local_addr().unwrap());
    let haproxy = Haproxy::start(&setup).expect("HAProxy");
    setup.defaults.log = Some(l_rx.local_addr().unwrap());
    let lb = Lb::start(&setup).expect("lb");
    wait_until("HAProxy: ins/ins3 DOWN", || {
        haproxy
            .server_status("ins", "ins3")
            .is_ok_and(|s| s.starts_with("DOWN"))
    })
    .expect("HAProxy's check");
    wait_until("lb: ins/ins3 down", || {
        lb.server_state("ins", "ins3").ok().flatten().as_deref() == Some("down")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lb.log()));
    observe_all(&cases, &haproxy.binds).expect("requests through HAProxy");
    observe_all(&cases, &lb.binds).unwrap_or_else(|e| panic!("through lb: {e:#}\n{}", lb.log()));
    let (h, l) = (states(&h_rx, cases.len()), states(&l_rx, cases.len()));
    // The table means something: HAProxy wrote every letter lb can.
    let letters =
        |at: usize| -> BTreeSet<char> { h.values().filter_map(|s| s.chars().nth(at)).collect() };
    assert_eq!(letters(2), "-DINV".chars().collect(), "{h:#?}");
    assert_eq!(letters(3), "-DINPR".chars().collect(), "{h:#?}");
    let wrong: Vec<String> = cases
        .iter()
        .filter(|c| h.get(&c.target) != l.get(&c.target))
        .map(|c| {
            format!(
                "{}: HAProxy {:?}, lb {:?}",
                c.label,
                h[&c.target],
                l.get(&c.target)
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
