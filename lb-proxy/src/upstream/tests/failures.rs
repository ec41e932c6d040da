//! Failures: refused connections with retries and redispatch, a server
//! killed under load, servers that close early, stall or answer garbage,
//! and clients that stall.

use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream;
use http_body_util::StreamBody;
use hyper::Request;
use hyper::body::Frame;
use lb_config::proxy::{PoolL7, Timeouts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn redispatching() -> PoolL7 {
    PoolL7 {
        redispatch: true,
        ..PoolL7::default()
    }
}

fn with_timeouts(l7: PoolL7, f: impl FnOnce(&mut Timeouts)) -> PoolL7 {
    let mut timeouts = l7.timeouts;
    f(&mut timeouts);
    PoolL7 { timeouts, ..l7 }
}

#[tokio::test]
async fn a_refusing_server_is_skipped_by_redispatch() {
    let good = Server::start("good").await;
    let refusing = refusing_addr().await;
    let up = upstream(
        backends(&[("bad", refusing), ("good", good.addr)], None),
        redispatching(),
    );
    for _ in 0..6 {
        let (status, server, _) = read(up.forward(get("/"), &ctx()).await).await;
        assert_eq!((status, server.as_str()), (200, "good"));
    }
    let bad = up.links()[0].counters().snapshot();
    assert!(bad.connect_errors >= 3 && bad.redispatches >= 3, "{bad:?}");
    assert_eq!(up.counters().snapshot().responses[1], 6);
}

#[tokio::test]
async fn without_redispatch_the_retries_stay_on_the_server_then_503() {
    let refusing = refusing_addr().await;
    let good = Server::start("good").await;
    let l7 = with_timeouts(
        PoolL7 {
            retries: 2,
            ..PoolL7::default()
        },
        |t| {
            t.connect = Duration::from_millis(20);
        },
    );
    let up = upstream(
        backends(&[("bad", refusing), ("good", good.addr)], None),
        l7,
    );
    // Round robin sends one of two requests to `bad`.
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let res = up.forward(get("/"), &ctx()).await;
        if res.status() == 503 {
            assert_eq!(res.headers()["cache-control"], "no-cache");
        }
        statuses.push(read(res).await.0);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 503]);
    let bad = up.links()[0].counters().snapshot();
    assert_eq!(
        (bad.connect_errors, bad.retries, bad.redispatches),
        (3, 2, 0)
    );
    assert_eq!(good.requests(), 1);
}

#[tokio::test]
async fn no_usable_server_is_503() {
    let refusing = refusing_addr().await;
    let l7 = with_timeouts(
        PoolL7 {
            retries: 1,
            ..redispatching()
        },
        |t| {
            t.connect = Duration::from_millis(20);
        },
    );
    let up = upstream(backends(&[("only", refusing)], None), l7);
    assert_eq!(read(up.forward(get("/"), &ctx()).await).await.0, 503);
}

/// The promise: a server killed while clients loop costs no
/// idempotent request, whether the request was in flight on it, waiting on
/// one of its idle connections, or about to connect to it.
#[tokio::test]
async fn killing_a_server_under_load_fails_no_idempotent_request() {
    let a = Server::start("a").await;
    let b = Server::start("b").await;
    let up = upstream(
        backends(&[("a", a.addr), ("b", b.addr)], None),
        redispatching(),
    );
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let up = up.clone();
            tokio::spawn(async move {
                let mut failed = Vec::new();
                for i in 0..150 {
                    let mut req = get("/");
                    req.headers_mut().insert("x-delay-ms", (i % 3).into());
                    let (status, ..) = read(up.forward(req, &ctx()).await).await;
                    if status != 200 {
                        failed.push(status);
                    }
                }
                failed
            })
        })
        .collect();
    while a.requests() < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.kill().await;
    for client in clients {
        assert_eq!(client.await.expect("the client ran"), Vec::<u16>::new());
    }
    assert!(b.requests() > 600, "b took over: {}", b.requests());
}

#[tokio::test]
async fn a_connection_lost_before_the_response_is_502_for_a_post() {
    let s = Server::start("s1").await;
    let up = upstream(backends(&[("s1", s.addr)], None), PoolL7::default());
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "test")
        .header("x-drop", "1")
        .body(RequestBody::from(Bytes::from_static(b"data")))
        .expect("a request");
    assert_eq!(read(up.forward(req, &ctx()).await).await.0, 502);
    assert_eq!(s.requests(), 1, "a POST is never sent twice");
}

#[tokio::test]
async fn a_get_lost_on_every_attempt_is_502_after_the_retries() {
    let s = Server::start("s1").await;
    let up = upstream(
        backends(&[("s1", s.addr)], None),
        PoolL7 {
            retries: 2,
            ..PoolL7::default()
        },
    );
    let mut req = get("/");
    req.headers_mut()
        .insert("x-drop", "1".parse().expect("a value"));
    assert_eq!(read(up.forward(req, &ctx()).await).await.0, 502);
    assert_eq!(s.requests(), 3);
}

#[tokio::test]
async fn a_server_slower_than_timeout_server_is_504() {
    let s = Server::start("s1").await;
    let l7 = with_timeouts(PoolL7::default(), |t| t.server = Duration::from_millis(100));
    let up = upstream(backends(&[("s1", s.addr)], None), l7);
    let mut req = get("/");
    req.headers_mut()
        .insert("x-delay-ms", "3000".parse().expect("a value"));
    let res = up.forward(req, &ctx()).await;
    assert!(
        !res.headers().contains_key("connection"),
        "the client connection stays"
    );
    assert_eq!(read(res).await.0, 504);
    assert_eq!(up.links()[0].counters().snapshot().response_errors, 1);
}

/// A raw server answering every connection with `reply`, then holding it.
async fn raw_server(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(reply).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_invalid_response_is_502() {
    let addr = raw_server(b"HTTP/1.1 abc nonsense\r\n\r\n").await;
    let up = upstream(backends(&[("s1", addr)], None), PoolL7::default());
    assert_eq!(read(up.forward(get("/"), &ctx()).await).await.0, 502);
}

#[tokio::test]
async fn a_response_body_that_stalls_is_cut_after_timeout_server() {
    let addr = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc").await;
    let l7 = with_timeouts(PoolL7::default(), |t| t.server = Duration::from_millis(100));
    let up = upstream(backends(&[("s1", addr)], None), l7);
    let res = up.forward(get("/"), &ctx()).await;
    assert_eq!(res.status(), 200);
    let err = res
        .into_body()
        .collect()
        .await
        .expect_err("the body is cut");
    assert!(
        matches!(err, super::super::BodyError::ServerTimeout(_)),
        "{err}"
    );
    assert_eq!(up.links()[0].active(), 0, "the slot is given back");
    assert_eq!(
        up.links()[0].idle_connections(),
        0,
        "the connection is not reused"
    );
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_gets_408_and_a_close() {
    let s = Server::start("s1").await;
    let up = upstream(backends(&[("s1", s.addr)], None), PoolL7::default());
    let first = stream::iter([Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(
        b"part",
    )))]);
    let body = StreamBody::new(first.chain(stream::pending()));
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "test")
        .header("content-length", "100")
        .body(RequestBody::stream(body))
        .expect("a request");
    let ctx = Ctx {
        client_timeout: Duration::from_millis(100),
        ..ctx()
    };
    let res = up.forward(req, &ctx).await;
    assert_eq!(res.headers()["connection"], "close");
    assert_eq!(read(res).await.0, 408);
}

/// The server resets the connection right after the request head (it
/// answered early, or crashed) and the client's body then turns out to be
/// invalid: the client's fault wins, 400, whichever the proxy noticed
/// first.
#[tokio::test]
async fn an_invalid_body_is_400_even_when_the_server_left_first() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("an address");
    let (reset_tx, reset_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let Ok((mut tcp, _)) = listener.accept().await else {
            return;
        };
        let mut head = Vec::new();
        let mut chunk = [0u8; 4096];
        while crate::front::head::find_end(&head).is_none() {
            match tcp.read(&mut chunk).await {
                Ok(n @ 1..) => head.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        }
        let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
        drop(tcp);
        let _ = reset_tx.send(());
    });
    let up = upstream(backends(&[("s1", addr)], None), PoolL7::default());
    // A part of the body once the server is gone, then the client's error.
    let data = stream::once(reset_rx).map(|_| Ok(Frame::data(Bytes::from_static(b"part"))));
    let invalid = stream::iter([Err(std::io::Error::other("a bad chunk size"))]);
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "test")
        .body(RequestBody::stream(StreamBody::new(data.chain(invalid))))
        .expect("a request");
    let res = up.forward(req, &ctx()).await;
    assert_eq!(res.headers()["connection"], "close");
    assert_eq!(read(res).await.0, 400);
}
