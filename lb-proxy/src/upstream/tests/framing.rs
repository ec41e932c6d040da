//! Responses as servers frame them (length, chunks, until close, interim
//! 1xx) and servers that close idle connections, against raw sockets that
//! send exactly the bytes under test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use http_body_util::BodyExt;
use lb_config::proxy::PoolL7;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// When a raw server closes a connection.
#[derive(Clone, Copy)]
enum Close {
    /// When the client does.
    Never,
    /// Right after its reply.
    AfterReply,
    /// When idle this long.
    Idle(Duration),
}

/// A raw server: for each request head read on a connection, writes
/// `reply`; counts connections.
struct Raw {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
}

impl Raw {
    async fn start(reply: &'static [u8], close: Close) -> Raw {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("an address");
        let connections = Arc::new(AtomicU64::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, SeqCst);
                tokio::spawn(serve_raw(tcp, reply, close));
            }
        });
        Raw { addr, connections }
    }

    fn connections(&self) -> u64 {
        self.connections.load(SeqCst)
    }
}

async fn serve_raw(mut tcp: TcpStream, reply: &'static [u8], close: Close) {
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let read = match close {
            Close::Idle(idle) => tokio::time::timeout(idle, tcp.read(&mut chunk))
                .await
                .unwrap_or(Ok(0)),
            Close::Never | Close::AfterReply => tcp.read(&mut chunk).await,
        };
        let Ok(n @ 1..) = read else { return };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = crate::front::head::find_end(&buf) {
            buf.drain(..end);
            if tcp.write_all(reply).await.is_err() || matches!(close, Close::AfterReply) {
                return;
            }
        }
    }
}

async fn body_of(up: &Upstream, req: Request<RequestBody>) -> (u16, String) {
    let res = up.forward(req, &ctx()).await;
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .expect("the whole body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn post() -> Request<RequestBody> {
    Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "test")
        .header("content-length", "2")
        .body(RequestBody::from(bytes::Bytes::from_static(b"hi")))
        .expect("a request")
}

#[tokio::test]
async fn chunked_bodies_are_decoded_and_the_connection_kept() {
    let raw = Raw::start(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", Close::Never).await;
    let up = upstream(backends(&[("s1", raw.addr)], None), PoolL7::default());
    for _ in 0..3 {
        assert_eq!(body_of(&up, get("/")).await, (200, "hello world".into()));
    }
    assert_eq!(raw.connections(), 1);
}

#[tokio::test]
async fn a_body_without_length_ends_with_the_connection() {
    let raw = Raw::start(b"HTTP/1.1 200 OK\r\n\r\nuntil close", Close::AfterReply).await;
    let up = upstream(backends(&[("s1", raw.addr)], None), PoolL7::default());
    for _ in 0..2 {
        assert_eq!(body_of(&up, get("/")).await, (200, "until close".into()));
    }
    assert_eq!(raw.connections(), 2, "such a connection is never reused");
    assert_eq!(up.links()[0].counters().snapshot().response_errors, 0);
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let raw = Raw::start(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        Close::Never,
    )
    .await;
    let up = upstream(backends(&[("s1", raw.addr)], None), PoolL7::default());
    assert_eq!(body_of(&up, post()).await, (201, "ok".into()));
}

/// The server closes idle connections after 50 ms: the next request,
/// even a POST that could not be retried, goes on a new connection.
#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_not_used() {
    let raw = Raw::start(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        Close::Idle(Duration::from_millis(50)),
    )
    .await;
    let up = upstream(backends(&[("s1", raw.addr)], None), PoolL7::default());
    assert_eq!(body_of(&up, get("/")).await, (200, "ok".into()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(body_of(&up, post()).await, (200, "ok".into()));
    assert_eq!(raw.connections(), 2);
    let c = up.links()[0].counters().snapshot();
    assert_eq!((c.response_errors, c.retries, c.reused), (0, 0, 0));
}

#[tokio::test]
async fn a_head_over_the_size_limit_is_502() {
    let raw = Raw::start(
        Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\nx-big: {}\r\ncontent-length: 0\r\n\r\n",
                "a".repeat(20_000)
            )
            .into_bytes()
            .into_boxed_slice(),
        ),
        Close::Never,
    )
    .await;
    let up = upstream(backends(&[("s1", raw.addr)], None), PoolL7::default());
    assert_eq!(body_of(&up, get("/")).await.0, 502);
}
