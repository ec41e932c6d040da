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

/// What [`stage`] left for [`send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Staged {
    /// The whole request is in the write buffer (a small body with it).
    Whole,
    /// The body the proxy holds goes after the head, in writes of its own.
    Large { chunked: bool },
    /// The body is still to be read from the client.
    Stream { chunked: bool },
}

/// Puts the request's head, and its body when the proxy holds it and it
/// is small, in `conn.wbuf`, ready to go as soon as the connection is.
/// Nothing is taken from `body`: a request whose connection fails can go
/// to another server whole.
pub(crate) fn stage(conn: &mut ServerConn, head: &Parts, body: &ToServer) -> Staged {
    let chunked = !body.is_empty() && !head.headers.contains_key(CONTENT_LENGTH);
    let out = &mut conn.wbuf;
    encode_head(out, head, chunked);
    match body.full() {
        Some(bytes) if bytes.len() <= INLINE_BODY => {
            if chunked {
                chunk_line(out, bytes.len());
            }
            out.extend_from_slice(bytes);
            if chunked {
                out.extend_from_slice(b"\r\n0\r\n\r\n");
            }
            Staged::Whole
        }
        Some(_) => Staged::Large { chunked },
        None if body.is_empty() => Staged::Whole,
        None => Staged::Stream { chunked },
    }
}

/// Writes the request [`stage`] prepared in `conn.wbuf`, and what is left
/// of `body`.
pub(crate) async fn send(
    conn: &mut ServerConn,
    staged: Staged,
    body: &mut ToServer,
) -> Result<(), SendError> {
    match staged {
        Staged::Whole => {
            // Taken only now, so that it counts as sent.
            let _ = body.take_full();
            flush(conn).await
        }
        Staged::Large { chunked } => {
            let bytes = body.take_full().unwrap_or_default();
            send_large(conn, bytes, chunked).await
        }
        Staged::Stream { chunked } => match stream(conn, body, chunked).await {
            Err(SendError::Server(e)) => Err(blame(body, e)),
            sent => sent,
        },
    }
}

/// Streams a body the client is still sending, after the head.
async fn stream(
    conn: &mut ServerConn,
    body: &mut ToServer,
    chunked: bool,
) -> Result<(), SendError> {
    flush(conn).await?;
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
            flush(conn).await?;
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

/// A large body held whole, after the head.
async fn send_large(conn: &mut ServerConn, bytes: Bytes, chunked: bool) -> Result<(), SendError> {
    if chunked {
        chunk_line(&mut conn.wbuf, bytes.len());
    }
    flush(conn).await?;
    conn.write_all(&bytes).await.map_err(SendError::Server)?;
    if chunked {
        conn.wbuf.extend_from_slice(b"\r\n0\r\n\r\n");
    }
    flush(conn).await
}

/// Writes what `conn.wbuf` holds and empties it.
async fn flush(conn: &mut ServerConn) -> Result<(), SendError> {
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
