//! The client side on real sockets: raw bytes to a connection served by a
//! recording service on 127.0.0.1, checking the answer and what reached
//! the service (which stands where the server side would be).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use super::*;
use crate::upstream::{ResponseBody, error_response};

/// What reached the service: method, target and body of each request.
type Seen = Arc<Mutex<Vec<(String, String, Bytes)>>>;

struct Recorder {
    settings: Settings,
    seen: Seen,
}

impl Service for Recorder {
    type Body = ResponseBody;

    fn settings(&mut self) -> Option<Settings> {
        Some(self.settings.clone())
    }

    async fn call(&mut self, req: Request<RequestBody>, _: Client) -> Response<ResponseBody> {
        let (parts, body) = req.into_parts();
        let bytes = match body {
            RequestBody::Empty => Bytes::new(),
            RequestBody::Full(b) => b,
            RequestBody::Client(b) => match b.collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => return error_response(StatusCode::BAD_REQUEST, true),
            },
        };
        let echo = format!("{} {} {}", parts.method, parts.uri, bytes.len());
        self.seen
            .lock()
            .unwrap()
            .push((parts.method.to_string(), parts.uri.to_string(), bytes));
        let mut res = Response::new(ResponseBody::full(Bytes::from(echo)));
        if parts.uri.path() == "/bye" {
            // The service's way to end the connection after this answer.
            res.headers_mut()
                .insert("connection", "close".parse().unwrap());
        }
        res
    }

    fn error(&self, status: StatusCode, close: bool) -> Response<ResponseBody> {
        error_response(status, close)
    }
}

fn settings(http_request: Duration, keep_alive: Duration) -> Settings {
    Settings {
        limits: head::Limits {
            max_size: 16 * 1024,
            max_headers: 101,
        },
        http_request,
        keep_alive,
        client: Duration::from_secs(5),
        counters: Arc::default(),
    }
}

/// A listener whose connections are served by a [`Recorder`].
async fn serve(s: Settings) -> (std::net::SocketAddr, Seen, Arc<FrontCounters>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let counters = s.counters.clone();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        let (_keep, closing) = watch::channel(false);
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let (r, w) = stream.into_split();
            let conn = Conn {
                service: Recorder {
                    settings: s.clone(),
                    seen: seen2.clone(),
                },
                client: Client { peer, local: addr },
                writer: write::Writer::new(w, s.client),
                closing: closing.clone(),
                accepted: Instant::now(),
            };
            let reader = Reader {
                io: r,
                buf: BytesMut::new(),
            };
            tokio::spawn(conn.run(reader));
        }
    });
    (addr, seen, counters)
}

/// Sends `raw` and reads until the server closes (or 60 s).
async fn exchange(addr: std::net::SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    read_all(&mut s).await
}

async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

const T10: Duration = Duration::from_secs(10);

#[tokio::test]
async fn keep_alive_pipelining_and_a_closing_answer() {
    let (addr, seen, counters) = serve(settings(T10, T10)).await;
    let out = exchange(
        addr,
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /bye HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{out}");
    assert!(
        out.contains("GET /a 0") && out.contains("POST /b 3"),
        "{out}"
    );
    assert!(
        out.ends_with("GET /bye 0"),
        "the closing answer is the last: {out}"
    );
    assert_eq!(out.matches("connection: close\r\n").count(), 1, "{out}");
    assert_eq!(seen.lock().unwrap().len(), 3);
    let c = counters.snapshot();
    assert_eq!((c.requests, c.responses[1]), (3, 3));
}

#[tokio::test]
async fn chunked_bodies_are_decoded_and_bad_ones_never_complete() {
    let (addr, seen, _) = serve(settings(T10, T10)).await;
    let out = exchange(
        addr,
        b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    assert!(out.contains("POST /u 11"), "{out}");
    assert_eq!(
        seen.lock().unwrap()[0].2,
        Bytes::from_static(b"hello world")
    );
    let out = exchange(
        addr,
        b"POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the bad body reached nobody whole"
    );
}

#[tokio::test]
async fn smuggling_heads_get_400_and_reach_nothing() {
    let (addr, seen, counters) = serve(settings(T10, T10)).await;
    let vectors: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET http://y/ HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for v in vectors {
        let out = exchange(addr, v).await;
        assert!(
            out.starts_with("HTTP/1.1 400 Bad Request\r\n") && out.contains("connection: close"),
            "{:?} → {out}",
            String::from_utf8_lossy(v)
        );
    }
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(counters.snapshot().invalid, vectors.len() as u64);
}

#[tokio::test]
async fn a_head_over_the_limit_gets_400() {
    let (addr, seen, _) = serve(settings(T10, T10)).await;
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 17 * 1024));
    raw.extend_from_slice(b"\r\n\r\n");
    let out = exchange(addr, &raw).await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_gets_408_at_timeout_http_request() {
    let (addr, _, counters) = serve(settings(Duration::from_secs(10), T10)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let out = read_all(&mut s).await;
    assert!(out.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{out}");
    assert_eq!(counters.snapshot().timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn slowloris_is_cut_at_timeout_http_request_however_it_trickles() {
    let (addr, seen, _) = serve(settings(Duration::from_secs(10), T10)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    // One byte a second: each read is well within any per-read timeout.
    for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa" {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let out = read_all(&mut s).await;
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(start.elapsed() <= Duration::from_secs(60));
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_closes_quietly() {
    let (addr, _, counters) = serve(settings(T10, Duration::from_secs(2))).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let out = read_all(&mut s).await;
    assert_eq!(
        out.matches("HTTP/1.1").count(),
        1,
        "one answer, then a quiet close: {out}"
    );
    assert!(out.starts_with("HTTP/1.1 200"));
    assert_eq!(
        counters.snapshot().timeouts,
        0,
        "keep-alive expiry is no 408"
    );
}

#[tokio::test]
async fn http10_closes_unless_kept_alive_and_expect_gets_100() {
    let (addr, _, _) = serve(settings(T10, T10)).await;
    let out = exchange(addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(
        out.contains("connection: close") && out.ends_with("GET / 0"),
        "{out}"
    );
    // The body is asked for only when it did not come with the head.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"ok").await.unwrap();
    let out = read_all(&mut s).await;
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("PUT /e 2"),
        "{out}"
    );
    let out = exchange(
        addr,
        b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    )
    .await;
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n"),
        "no 100 for a body already sent: {out}"
    );
}
