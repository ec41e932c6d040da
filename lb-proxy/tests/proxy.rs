//! The whole proxy through its public API, on 127.0.0.1 with real HTTP
//! backends (hyper servers that answer with their name): routing, header
//! rewriting, hostile requests that must reach no server, drains without a
//! reload, reloads that keep listeners, connection limits.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use lb_config::proxy::{Bind, FrontendConfig, ProxyConfig, ProxyMode, Timeouts};
use lb_config::{AdminState, BackendConfig, PoolConfig};
use lb_proxy::{Desired, PoolView, Proxy, ServerState};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A backend answering `<name>` and recording each request's X-Forwarded-For.
struct Backend {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    xff: Arc<Mutex<Vec<String>>>,
}

async fn backend(name: &'static str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let xff = Arc::new(Mutex::new(Vec::new()));
    let (r, x) = (requests.clone(), xff.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (r, x) = (r.clone(), x.clone());
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                r.fetch_add(1, Ordering::SeqCst);
                let seen = req
                    .headers()
                    .get_all("x-forwarded-for")
                    .iter()
                    .map(|v| v.to_str().unwrap_or("?").to_owned())
                    .collect::<Vec<_>>()
                    .join(",");
                x.lock().unwrap().push(seen);
                async move { Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(name)))) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc),
            );
        }
    });
    Backend {
        addr,
        requests,
        xff,
    }
}

fn server(name: &str, addr: SocketAddr, state: AdminState) -> BackendConfig {
    BackendConfig {
        name: name.into(),
        address: addr.ip(),
        port: Some(addr.port()),
        weight: 1,
        state,
        interface: None,
        mac: None,
        check: Default::default(),
        proxy: Default::default(),
    }
}

fn pool(name: &str, servers: &[(&str, &Backend, ServerState)]) -> PoolView {
    PoolView {
        config: PoolConfig {
            name: name.into(),
            backends: servers
                .iter()
                .map(|(n, b, _)| server(n, b.addr, AdminState::Up))
                .collect(),
            check: None,
            notify_up: None,
            notify_down: None,
            proxy: Default::default(),
        },
        states: servers.iter().map(|(_, _, s)| *s).collect(),
    }
}

fn frontend(name: &str, port: u16, default: &str) -> FrontendConfig {
    FrontendConfig {
        name: name.into(),
        binds: vec![Bind {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            v6only: false,
        }],
        mode: ProxyMode::Http,
        maxconn: 100,
        timeouts: Timeouts::default(),
        acls: Vec::new(),
        http_request: Vec::new(),
        use_backend: Vec::new(),
        default_backend: Some(default.into()),
        forwardfor: Some(lb_config::proxy::ForwardFor {
            except: None,
            header: "X-Forwarded-For".into(),
        }),
        forwarded_proto: false,
        http_server_close: false,
        reject: Default::default(),
        log: Default::default(),
    }
}

/// A free port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request on a new connection; the whole answer as text.
async fn get(port: u16, raw: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

const GET: &str = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

fn body(answer: &str) -> &str {
    answer.split("\r\n\r\n").nth(1).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_to_the_default_backend_with_forwardfor() {
    let b1 = backend("b1").await;
    let port = free_port();
    let desired = Desired {
        proxy: ProxyConfig::default(),
        frontends: vec![frontend("main", port, "web")],
        pools: vec![pool("web", &[("b1", &b1, ServerState::Up)])],
    };
    let proxy = Proxy::start(&desired).await.expect("start");
    let answer = get(
        port,
        "GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.9.9.9\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert_eq!(body(&answer), "b1");
    assert_eq!(b1.xff.lock().unwrap().as_slice(), ["10.9.9.9,127.0.0.1"]);
    let stats = lb_proxy::stats::of(&proxy.runtime());
    assert_eq!(stats.frontends[0].counters.requests, 1);
    assert_eq!(stats.frontends[0].counters.responses[1], 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_reach_no_server() {
    let b1 = backend("b1").await;
    let port = free_port();
    let desired = Desired {
        proxy: ProxyConfig::default(),
        frontends: vec![frontend("main", port, "web")],
        pools: vec![pool("web", &[("b1", &b1, ServerState::Up)])],
    };
    let proxy = Proxy::start(&desired).await.expect("start");
    let vectors = [
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 6\r\n\r\nGET / ",
        "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\nHost: t\n\n",
        "GET / HTTP/1.1\r\nHost: t\r\nX: a\0b\r\n\r\n",
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n",
        "GET http://u/ HTTP/1.1\r\nHost: t\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc\r\n0\r\n\r\n",
    ];
    for v in vectors {
        let answer = get(port, v).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{v:?} → {answer}"
        );
    }
    // The chunked one with a bad size reached the server side head first
    // (its body streams), but never a complete request: the server saw at
    // most that one request start.
    assert!(
        b1.requests.load(Ordering::SeqCst) <= 1,
        "{}",
        b1.requests.load(Ordering::SeqCst)
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_applies_without_a_reload_and_a_reload_keeps_the_listener() {
    let (b1, b2) = (backend("b1").await, backend("b2").await);
    let port = free_port();
    let mut desired = Desired {
        proxy: ProxyConfig::default(),
        frontends: vec![frontend("main", port, "web")],
        pools: vec![pool(
            "web",
            &[
                ("b1", &b1, ServerState::Up),
                ("b2", &b2, ServerState::Maint),
            ],
        )],
    };
    let proxy = Proxy::start(&desired).await.expect("start");
    for _ in 0..4 {
        assert_eq!(body(&get(port, GET).await), "b1");
    }
    // An open keep-alive connection, across the changes below.
    let mut kept = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    desired.pools = vec![pool(
        "web",
        &[
            ("b1", &b1, ServerState::Drain),
            ("b2", &b2, ServerState::Up),
        ],
    )];
    proxy.update_pools(&desired.pools);
    for _ in 0..4 {
        assert_eq!(body(&get(port, GET).await), "b2", "b1 drained, b2 back");
    }
    // A reload that changes the frontend's default pool keeps its socket.
    desired
        .pools
        .push(pool("other", &[("b1", &b1, ServerState::Up)]));
    desired.frontends = vec![frontend("main", port, "other")];
    proxy.apply(&desired).await.expect("reload");
    kept.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    kept.read_to_end(&mut out).await.unwrap();
    assert_eq!(
        body(&String::from_utf8_lossy(&out)),
        "b1",
        "the open connection follows the reload"
    );
    let stats = lb_proxy::stats::of(&proxy.runtime());
    assert_eq!(
        stats.frontends[0].counters.requests, 9,
        "counters survive the reload"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_connection_is_refused_while_reloading() {
    let b1 = backend("b1").await;
    let port = free_port();
    let mut desired = Desired {
        proxy: ProxyConfig::default(),
        frontends: vec![frontend("main", port, "web")],
        pools: vec![pool("web", &[("b1", &b1, ServerState::Up)])],
    };
    let proxy = Arc::new(Proxy::start(&desired).await.expect("start"));
    let load = tokio::spawn(async move {
        let mut failures = 0;
        for _ in 0..300 {
            if body(&get(port, GET).await) != "b1" {
                failures += 1;
            }
        }
        failures
    });
    // Reloads, each flipping the frontend's name and options.
    for i in 0..30 {
        desired.frontends = vec![frontend(if i % 2 == 0 { "a" } else { "b" }, port, "web")];
        desired.frontends[0].forwarded_proto = i % 3 == 0;
        proxy.apply(&desired).await.expect("reload");
        tokio::task::yield_now().await;
    }
    assert_eq!(
        load.await.unwrap(),
        0,
        "no request failed across 30 reloads"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_maxconn_connections_wait_and_a_removed_bind_closes() {
    let b1 = backend("b1").await;
    let port = free_port();
    let mut f = frontend("main", port, "web");
    f.maxconn = 1;
    let mut desired = Desired {
        proxy: ProxyConfig::default(),
        frontends: vec![f],
        pools: vec![pool("web", &[("b1", &b1, ServerState::Up)])],
    };
    let proxy = Proxy::start(&desired).await.expect("start");
    let mut first = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = first.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "the first is served and kept alive"
    );
    // The second waits in the backlog: connected by the kernel, not served.
    let second = tokio::spawn(get(port, GET));
    while proxy_active(&proxy) < 1 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !second.is_finished(),
        "no answer while the first holds the only slot"
    );
    assert_eq!(b1.requests.load(Ordering::SeqCst), 1);
    drop(first);
    let answer = second.await.unwrap();
    assert_eq!(
        body(&answer),
        "b1",
        "served once the slot is free: {answer}"
    );
    // Removing the frontend closes its socket: connecting is refused.
    desired.frontends.clear();
    proxy.apply(&desired).await.expect("reload");
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    proxy.stop().await;
}

fn proxy_active(p: &Proxy) -> u64 {
    lb_proxy::stats::of(&p.runtime())
        .frontends
        .first()
        .map_or(0, |f| f.counters.active)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_v6only_hands_the_port_over() {
    let b1 = backend("b1").await;
    let port = free_port();
    let mut f = frontend("main", port, "web");
    f.binds = vec![Bind {
        addr: SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), port),
        v6only: true,
    }];
    let mut desired = Desired {
        proxy: ProxyConfig::default(),
        frontends: vec![f],
        pools: vec![pool("web", &[("b1", &b1, ServerState::Up)])],
    };
    let proxy = Proxy::start(&desired).await.expect("start");
    let v6 = |p| async move {
        let mut s = TcpStream::connect(("::1", p)).await.expect("connect [::1]");
        s.write_all(GET.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    };
    assert_eq!(body(&v6(port).await), "b1");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "IPv6 only"
    );
    desired.frontends[0].binds[0].v6only = false;
    proxy.apply(&desired).await.expect("reload");
    assert_eq!(body(&v6(port).await), "b1", "still served on IPv6");
    assert_eq!(body(&get(port, GET).await), "b1", "and now on IPv4 too");
    proxy.stop().await;
}
