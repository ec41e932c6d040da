//! Writing a request to a server in HTTP/1.1: the head as the client side
//! handed it over (origin-form target, headers in order), then the body,
//! framed by its `Content-Length` when it has one, else chunked (the
//! client's own chunked framing was decoded by the client side, and is
//! re-encoded here, so nothing ambiguous reaches the server).

use std::io;

use bytes::Bytes;
use futures_util::FutureExt as _;
use http_body_util::BodyExt as _;
use hyper::header::CONTENT_LENGTH;
use hyper::http::request::Parts;

use super::body::{BodyError, ToServer};
use super::conn::ServerConn;

/// A body this small goes out in the same write as the head.
const INLINE_BODY: usize = 16 * 1024;

/// Why a request could not be written whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("writing the request to the server: {0}")]
    Server(#[source] io::Error),
    #[error(transparent)]
    Client(BodyError),
}

/// Writes the request `head` and `body` to `conn`.
pub(crate) async fn send(
    conn: &mut ServerConn,
    head: &Parts,
    body: &mut ToServer,
) -> Result<(), SendError> {
    let chunked = !body.is_empty() && !head.headers.contains_key(CONTENT_LENGTH);
    encode_head(&mut conn.wbuf, head, chunked);
    if let Some(bytes) = body.take_full() {
        return send_full(conn, bytes, chunked).await;
    }
    if body.is_empty() {
        return conn.flush_wbuf().await.map_err(SendError::Server);
    }
    match stream(conn, body, chunked).await {
        Err(SendError::Server(e)) => Err(blame(body, e)),
        sent => sent,
    }
}

/// Streams a body the client is still sending, after the head.
async fn stream(
    conn: &mut ServerConn,
    body: &mut ToServer,
    chunked: bool,
) -> Result<(), SendError> {
    conn.flush_wbuf().await.map_err(SendError::Server)?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(SendError::Client)?;
        let Ok(data) = frame.into_data() else {
            continue;
        }; // trailers: dropped
        if data.is_empty() {
            continue;
        }
        if chunked {
            chunk_line(&mut conn.wbuf, data.len());
            conn.flush_wbuf().await.map_err(SendError::Server)?;
        }
        conn.write_all(&data).await.map_err(SendError::Server)?;
        if chunked {
            conn.write_all(b"\r\n").await.map_err(SendError::Server)?;
        }
    }
    if chunked {
        conn.write_all(b"0\r\n\r\n")
            .await
            .map_err(SendError::Server)?;
    }
    Ok(())
}

/// Frames of the client's body looked at, at most, to tell whose fault a
/// failed upload is.
const BLAME_FRAMES: usize = 64;

/// The server stopped taking a streamed body (`error`: it answered early
/// and closed, or crashed). When the rest of the client's body, as far as
/// it has already arrived, turns out to be invalid, the request is the
/// client's fault (400), not the server's (502): the answer must not depend
/// on which side the proxy happened to notice first. Only what is ready
/// now is read; nothing waits for the client.
fn blame(body: &mut ToServer, error: io::Error) -> SendError {
    for _ in 0..BLAME_FRAMES {
        match body.frame().now_or_never() {
            Some(Some(Err(e))) => return SendError::Client(e),
            Some(Some(Ok(_))) => {}
            Some(None) | None => break,
        }
    }
    SendError::Server(error)
}

/// A body held whole: with the head in one write when small.
async fn send_full(conn: &mut ServerConn, bytes: Bytes, chunked: bool) -> Result<(), SendError> {
    if chunked {
        chunk_line(&mut conn.wbuf, bytes.len());
    }
    if bytes.len() <= INLINE_BODY {
        conn.wbuf.extend_from_slice(&bytes);
    } else {
        conn.flush_wbuf().await.map_err(SendError::Server)?;
        conn.write_all(&bytes).await.map_err(SendError::Server)?;
    }
    if chunked {
        conn.wbuf.extend_from_slice(b"\r\n0\r\n\r\n");
    }
    conn.flush_wbuf().await.map_err(SendError::Server)
}

/// The request line and headers; `chunked` adds the framing header.
fn encode_head(out: &mut Vec<u8>, head: &Parts, chunked: bool) {
    out.clear();
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    let target = head.uri.path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &head.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A chunk's size line.
fn chunk_line(out: &mut Vec<u8>, len: usize) {
    use std::io::Write as _;
    let _ = write!(out, "{len:x}\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Request;

    fn head(req: Request<()>) -> Parts {
        req.into_parts().0
    }

    #[test]
    fn head_is_origin_form_with_headers_in_order() {
        let h = head(
            Request::builder()
                .method("POST")
                .uri("http://example.com/a/b?x=1")
                .header("host", "example.com")
                .header("x-a", "1")
                .header("x-a", "2")
                .body(())
                .expect("a request"),
        );
        let mut out = Vec::new();
        encode_head(&mut out, &h, true);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "POST /a/b?x=1 HTTP/1.1\r\nhost: example.com\r\nx-a: 1\r\nx-a: 2\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn asterisk_form_and_chunk_lines() {
        let h = head(
            Request::builder()
                .method("OPTIONS")
                .uri("*")
                .body(())
                .expect("a request"),
        );
        let mut out = Vec::new();
        encode_head(&mut out, &h, false);
        assert!(out.starts_with(b"OPTIONS * HTTP/1.1\r\n"));
        out.clear();
        chunk_line(&mut out, 300);
        assert_eq!(out, b"12c\r\n");
    }
}
