//! The L7 proxy when things go wrong, with real servers on loopback: a
//! server killed under load (lb alone: it must cost no request), then each
//! timeout's answer, per-server `maxconn` and its queue, frontend and
//! global `maxconn`, each run on HAProxy 2.6 first, which the expectations
//! must hold for, then on lb. Needs root (lb's agent pins its maps).

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lb_tests::l7::client::{Conn, get};
use lb_tests::l7::echo::EchoServer;
use lb_tests::l7::procs::{Haproxy, Lb, wait_until};
use lb_tests::l7::setup::{Backend, Balance, Check, Defaults, Frontend, Server, Setup};

const SRC: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn echo(name: &str) -> EchoServer {
    EchoServer::start(name, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("echo server")
}

/// Frontend `fe` to `pool`, on the seed's timeouts without its options.
fn setup(pool: Backend) -> Setup {
    Setup {
        maxconn: 4000,
        threads: None,
        defaults: Defaults::plain(),
        frontends: vec![Frontend::to("fe", &pool.name)],
        backends: vec![pool],
    }
}

fn start(setup: &Setup) -> Lb {
    Lb::start(setup).expect("lb")
}

/// Runs `scenario` against HAProxy 2.6 first, the reference its
/// expectations must hold for, then against lb, each fresh on `setup`;
/// returns lb, still running. On a failure with lb, its log is printed.
fn on_both(setup: &Setup, scenario: impl Fn(SocketAddr)) -> Lb {
    let haproxy = Haproxy::start(setup).expect("HAProxy");
    scenario(haproxy.binds[0]);
    drop(haproxy);
    let lb = start(setup);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(lb.binds[0])));
    if let Err(e) = run {
        eprintln!("with lb; its log:\n{}", lb.log());
        std::panic::resume_unwind(e);
    }
    lb
}

/// `GET /` with `headers` to `bind`: the status.
fn status(bind: SocketAddr, headers: &[&str]) -> u16 {
    match get(SRC, bind, "/", headers) {
        Ok(r) => r.status,
        Err(e) => panic!("request to {bind} failed: {e:#}"),
    }
}

/// Runs `f` on `n` threads at once; their results.
fn parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let f = &f;
        let hs: Vec<_> = (0..n).map(|i| s.spawn(move || f(i))).collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

/// Keep-alive clients loop GETs while one of two servers is killed.
fn killed_mid_load(server_close: bool) {
    let (s1, s2) = (echo("s1"), echo("s2"));
    let mut pool = Backend::new(
        "web",
        Balance::RoundRobin,
        vec![Server::new("w1", s1.addr()), Server::new("w2", s2.addr())],
    );
    pool.check = Some(Check {
        inter: Duration::from_millis(100),
        rise: 1,
        fall: 1,
    });
    pool.retries = Some(3);
    pool.redispatch = Some(true);
    let mut setup = setup(pool);
    setup.defaults.http_server_close = server_close;
    let lb = start(&setup);
    let (stop, ok, failed) = (AtomicBool::new(false), AtomicU64::new(0), AtomicU64::new(0));
    let before = std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| client_loop(&lb, &stop, &ok, &failed));
        }
        let loaded = wait_until("load on both servers", || {
            s1.requests() > 50 && s2.requests() > 50
        });
        let before = s2.requests();
        if loaded.is_ok() {
            s1.kill();
            std::thread::sleep(Duration::from_millis(1500));
        }
        // The clients stop in every case, so a failure cannot hang the scope.
        stop.store(true, Ordering::SeqCst);
        loaded.map(|()| before)
    });
    let before = before.unwrap_or_else(|e| panic!("{e}\n{}", lb.log()));
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "failed requests:\n{}",
        lb.log()
    );
    assert!(
        s2.requests() > before + 50,
        "s2 took the load after the kill"
    );
    assert!(ok.load(Ordering::SeqCst) > 200);
}

/// GETs on keep-alive connections until `stop`; a failed request (error or
/// status other than 200) counts and opens a new connection.
fn client_loop(lb: &Lb, stop: &AtomicBool, ok: &AtomicU64, failed: &AtomicU64) {
    let raw = "GET / HTTP/1.1\r\nHost: lb\r\n\r\n";
    let mut conn = None;
    while !stop.load(Ordering::SeqCst) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => conn.insert(Conn::open(SRC, lb.binds[0]).expect("connecting to lb")),
        };
        match c.send(raw) {
            Ok(r) if r.status == 200 => {
                ok.fetch_add(1, Ordering::SeqCst);
            }
            other => {
                eprintln!("failed: {other:?}");
                failed.fetch_add(1, Ordering::SeqCst);
                conn = None;
            }
        }
    }
}

#[test]
fn a_server_killed_under_load_costs_no_request_with_server_close() {
    killed_mid_load(true);
}

#[test]
fn a_server_killed_under_load_costs_no_request_with_server_keep_alive() {
    killed_mid_load(false);
}

#[test]
fn a_silent_server_gets_504_after_timeout_server() {
    let s1 = echo("s1");
    let mut pool = Backend::new("p", Balance::RoundRobin, vec![Server::new("a", s1.addr())]);
    pool.server_timeout = Some(Duration::from_millis(300));
    on_both(&setup(pool), |proxy| {
        assert_eq!(status(proxy, &["X-Delay-Ms: 3000"]), 504);
        assert_eq!(status(proxy, &[]), 200, "a prompt answer passes");
    });
}

#[test]
fn a_black_holed_server_is_retried_then_503() {
    // A listener whose accept queue is full drops further SYNs: connecting
    // to it times out, as to a host that went silent.
    let hole = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    // SAFETY: listen(2) on a socket we own; no pointers.
    unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&hole), 0) };
    let addr = hole.local_addr().expect("addr");
    let _filler: Vec<_> = (0..2)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()
        })
        .collect();
    let mut pool = Backend::new("bh", Balance::RoundRobin, vec![Server::new("a", addr)]);
    pool.connect = Some(Duration::from_millis(200));
    pool.retries = Some(2);
    pool.redispatch = Some(false);
    let lb = on_both(&setup(pool), |proxy| assert_eq!(status(proxy, &[]), 503));
    let m = |s: &str| lb.metric(s).expect("metrics");
    assert_eq!(
        m(r#"lb_proxy_server_retries_total{pool="bh",server="a"}"#),
        2.0,
        "{}",
        lb.metrics().unwrap_or_default()
    );
    assert_eq!(
        m(r#"lb_proxy_server_connect_errors_total{pool="bh",server="a"}"#),
        3.0
    );
}

fn http_request_timeout_setup(s1: &EchoServer) -> Setup {
    let pool = Backend::new("p", Balance::RoundRobin, vec![Server::new("a", s1.addr())]);
    let mut setup = setup(pool);
    setup.defaults.timeouts.http_request = Duration::from_millis(500);
    setup
}

#[test]
fn silent_and_slowloris_clients_get_408() {
    let s1 = echo("s1");
    on_both(&http_request_timeout_setup(&s1), |proxy| {
        let before = s1.requests();
        let mut silent = Conn::open(SRC, proxy).expect("connect");
        assert_eq!(silent.read().expect("an answer").status, 408);
        assert_eq!(slowloris(proxy), 408);
        assert_eq!(s1.requests(), before, "no server saw either");
        assert_eq!(status(proxy, &[]), 200);
    });
}

/// Sends a head a line every 100 ms (for 5 s at most); the status of the
/// answer it gets meanwhile.
fn slowloris(proxy: SocketAddr) -> u16 {
    let mut slow = Conn::open(SRC, proxy).expect("connect");
    let mut w = slow.writer().expect("socket");
    let stop = AtomicBool::new(false);
    let answer = std::thread::scope(|scope| {
        scope.spawn(|| {
            let _ = w.write_all(b"GET / HTTP/1.1\r\nHost: lb\r\n");
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(100));
                if w.write_all(b"X-Slow: 1\r\n").is_err() {
                    return;
                }
            }
        });
        let answer = slow.read();
        stop.store(true, Ordering::SeqCst);
        answer
    });
    answer.expect("an answer").status
}

#[test]
fn a_full_server_queues_until_timeout_queue_then_503() {
    let s1 = echo("s1");
    let mut server = Server::new("a", s1.addr());
    server.maxconn = Some(1);
    let mut pool = Backend::new("p", Balance::RoundRobin, vec![server]);
    pool.queue = Some(Duration::from_millis(300));
    on_both(&setup(pool), |proxy| {
        let got = parallel(2, |i| {
            std::thread::sleep(Duration::from_millis(100 * i as u64));
            status(proxy, &["X-Delay-Ms: 1500"])
        });
        assert_eq!(got, [200, 503]);
    });
    assert_eq!(s1.max_in_flight(), 1);
}

#[test]
fn per_server_maxconn_is_never_exceeded() {
    let (s1, s2) = (echo("s1"), echo("s2"));
    let servers = [("a", &s1), ("b", &s2)].map(|(n, s)| {
        let mut srv = Server::new(n, s.addr());
        srv.maxconn = Some(2);
        srv
    });
    let pool = Backend::new("p", Balance::RoundRobin, servers.to_vec());
    on_both(&setup(pool), |proxy| {
        let got = parallel(12, |_| status(proxy, &["X-Delay-Ms: 200"]));
        assert!(got.iter().all(|s| *s == 200), "{got:?}");
    });
    assert_eq!((s1.max_in_flight(), s2.max_in_flight()), (2, 2));
}

/// `n` slow requests at once through a proxy limited to 2 connections:
/// the others wait in the backlog, and all are answered.
fn connections_wait_at_maxconn(setup: &Setup, s1: &EchoServer) {
    on_both(setup, |proxy| {
        let got = parallel(6, |_| status(proxy, &["X-Delay-Ms: 300"]));
        assert_eq!(got, [200; 6]);
        assert!(s1.max_in_flight() <= 2, "{} at once", s1.max_in_flight());
        assert_eq!(status(proxy, &[]), 200, "still serving");
    });
}

#[test]
fn frontend_maxconn_makes_connections_wait() {
    let s1 = echo("s1");
    let mut setup = setup(Backend::new(
        "p",
        Balance::RoundRobin,
        vec![Server::new("a", s1.addr())],
    ));
    setup.frontends[0].maxconn = Some(2);
    connections_wait_at_maxconn(&setup, &s1);
}

#[test]
fn global_maxconn_makes_connections_wait() {
    let s1 = echo("s1");
    let mut setup = setup(Backend::new(
        "p",
        Balance::RoundRobin,
        vec![Server::new("a", s1.addr())],
    ));
    setup.maxconn = 2;
    connections_wait_at_maxconn(&setup, &s1);
}
