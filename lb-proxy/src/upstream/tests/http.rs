//! Requests that go well: keep-alive reuse, `http-server-close`, request
//! and response bodies, hop-by-hop headers, cookie insertion, reloads.

use bytes::Bytes;
use hyper::Request;
use lb_config::proxy::{CookieConfig, CookieMode, PoolL7};

use super::*;

#[tokio::test]
async fn keep_alive_carries_sequential_requests_on_one_connection() {
    let s = Server::start("s1").await;
    let up = upstream(backends(&[("s1", s.addr)], None), PoolL7::default());
    for _ in 0..20 {
        assert_eq!(read(up.forward(get("/"), &ctx()).await).await.0, 200);
    }
    assert_eq!((s.requests(), s.connections()), (20, 1));
    let link = up.links()[0].counters().snapshot();
    assert_eq!((link.connections, link.reused), (1, 19));
    assert_eq!(up.links()[0].idle_connections(), 1);
}

#[tokio::test]
async fn http_server_close_opens_a_connection_per_request_and_says_so() {
    let s = Server::start("s1").await;
    let close = PoolL7 {
        http_server_close: true,
        ..PoolL7::default()
    };
    let up = upstream(backends(&[("s1", s.addr)], None), close);
    for _ in 0..5 {
        let res = up.forward(get("/"), &ctx()).await;
        assert_eq!(res.headers()["x-saw-connection"], "close");
        assert_eq!(read(res).await.0, 200);
    }
    assert_eq!((s.requests(), s.connections()), (5, 5));
    assert_eq!(up.links()[0].idle_connections(), 0);
}

#[tokio::test]
async fn the_frontends_server_close_applies_too() {
    let s = Server::start("s1").await;
    let up = upstream(backends(&[("s1", s.addr)], None), PoolL7::default());
    let ctx = Ctx {
        server_close: true,
        ..ctx()
    };
    for _ in 0..3 {
        assert_eq!(read(up.forward(get("/"), &ctx).await).await.0, 200);
    }
    assert_eq!(s.connections(), 3);
}

#[tokio::test]
async fn round_robin_alternates_between_servers() {
    let (a, b) = (Server::start("a").await, Server::start("b").await);
    let up = upstream(
        backends(&[("a", a.addr), ("b", b.addr)], None),
        PoolL7::default(),
    );
    let mut order = Vec::new();
    for _ in 0..6 {
        order.push(read(up.forward(get("/"), &ctx()).await).await.1);
    }
    assert_eq!((a.requests(), b.requests()), (3, 3));
    assert!(
        order.windows(2).all(|w| w[0] != w[1]),
        "interleaved: {order:?}"
    );
}

#[tokio::test]
async fn request_bodies_reach_the_server_and_are_counted() {
    let s = Server::start("s1").await;
    let up = upstream(backends(&[("s1", s.addr)], None), PoolL7::default());
    let body = Bytes::from(vec![b'x'; 100_000]);
    let req = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "test")
        .header("content-length", body.len())
        .body(RequestBody::stream(Full::new(body)))
        .expect("a request");
    let res = up.forward(req, &ctx()).await;
    assert_eq!(res.headers()["x-body-len"], "100000");
    let (status, _, text) = read(res).await;
    assert_eq!((status, text.as_str()), (200, "s1"));
    let c = up.links()[0].counters().snapshot();
    assert_eq!((c.bytes_in, c.bytes_out), (100_000, 2));
    assert_eq!(
        up.counters().snapshot().responses[1],
        1,
        "one 2xx for the pool"
    );
}

#[tokio::test]
async fn hop_by_hop_headers_of_the_response_are_removed() {
    let s = Server::start("s1").await;
    let up = upstream(backends(&[("s1", s.addr)], None), PoolL7::default());
    let res = up.forward(get("/"), &ctx()).await;
    assert!(!res.headers().contains_key("keep-alive"));
    assert_eq!(res.headers()["x-server"], "s1");
}

#[tokio::test]
async fn cookie_insert_pins_the_client_to_its_server() {
    let (a, b) = (Server::start("a").await, Server::start("b").await);
    let cookie = CookieConfig {
        name: "SERVERID".into(),
        mode: CookieMode::Insert,
        indirect: true,
        nocache: false,
        httponly: false,
        secure: false,
    };
    let l7 = PoolL7 {
        cookie: Some(cookie),
        ..PoolL7::default()
    };
    let up = upstream(backends(&[("a", a.addr), ("b", b.addr)], None), l7);
    let first = up.forward(get("/"), &ctx()).await;
    let set = first.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let server = read(first).await.1;
    assert!(set.starts_with(&format!("SERVERID={server}")), "{set}");
    for _ in 0..4 {
        let mut req = get("/");
        req.headers_mut().insert(
            "cookie",
            format!("SERVERID={server}").parse().expect("a value"),
        );
        let res = up.forward(req, &ctx()).await;
        assert!(
            !res.headers().contains_key("set-cookie"),
            "a valid cookie is not set again"
        );
        assert!(
            !res.headers().contains_key("x-saw-cookie"),
            "indirect: the server never sees it"
        );
        assert_eq!(read(res).await.1, server);
    }
}

#[tokio::test]
async fn a_reload_keeps_warm_connections_and_counters() {
    let s = Server::start("s1").await;
    let view = || PoolView {
        config: pool_config(backends(&[("s1", s.addr)], None), PoolL7::default()),
        states: vec![ServerState::Up],
    };
    let before = Runtime::default();
    let pools = runtime::pools(&ProxyConfig::default(), &[view()], &before);
    let old = Runtime {
        pools,
        ..Runtime::default()
    };
    let up = old.pools["web"].upstream.clone();
    assert_eq!(read(up.forward(get("/"), &ctx()).await).await.0, 200);
    let reloaded = view_upstream(view(), &old);
    assert_eq!(read(reloaded.forward(get("/"), &ctx()).await).await.0, 200);
    assert_eq!(
        s.connections(),
        1,
        "the new pool reused the old pool's connection"
    );
    assert_eq!(reloaded.links()[0].counters().snapshot().sessions, 2);
    assert_eq!(reloaded.counters().snapshot().sessions, 2);
}
