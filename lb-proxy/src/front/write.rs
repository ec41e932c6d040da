//! Writing a response to the client in HTTP/1.1: the head, then the body
//! framed as the client can read it (the server's Content-Length kept,
//! else chunked for HTTP/1.1, else delimited by closing). Head and small
//! bodies leave in one write; a body whose next piece is not ready yet is
//! flushed so the client is never kept waiting for bytes the proxy holds.

use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt as _;
use http_body_util::BodyExt as _;
use hyper::body::Body;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::io::AsyncWriteExt as _;
use tokio::net::tcp::OwnedWriteHalf;

/// Bytes held before a write is forced.
const FLUSH_AT: usize = 32 * 1024;

/// The write side of a client connection.
#[derive(Debug)]
pub struct Writer {
    pub io: OwnedWriteHalf,
    buf: Vec<u8>,
    /// `timeout client`: the longest one write may wait for the client.
    pub timeout: Duration,
    /// Bytes written since [`Writer::take_written`] was last called.
    written: u64,
}

/// Why a response could not be written whole.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("writing to the client: {0}")]
    Io(#[from] std::io::Error),
    #[error("the client read nothing for `timeout client` ({0:?})")]
    Timeout(Duration),
    #[error("the response body failed: {message}")]
    Body {
        message: String,
        /// The server went silent (`timeout server`) rather than failed.
        server_timeout: bool,
    },
    #[error("the response body has {got} bytes where Content-Length says {want}")]
    Length { want: u64, got: u64 },
}

impl WriteError {
    /// A failed response body; the server side's own error says whether
    /// the server went silent (the access log tells `sD` from `SD`).
    fn body<E: std::fmt::Display + 'static>(e: &E) -> WriteError {
        let server_timeout = (e as &dyn std::any::Any)
            .downcast_ref::<crate::upstream::BodyError>()
            .is_some_and(|e| matches!(e, crate::upstream::BodyError::ServerTimeout(_)));
        WriteError::Body {
            message: e.to_string(),
            server_timeout,
        }
    }
}

/// How the exchange is to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    /// The request was HEAD: no body, whatever the headers say.
    pub head_request: bool,
    /// The client speaks HTTP/1.1 (can read chunked).
    pub http11: bool,
    /// The connection stays open after this response.
    pub keep_alive: bool,
}

/// What was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// Body bytes sent.
    pub body: u64,
    /// The connection may carry another request (the body had a known end).
    pub reusable: bool,
}

enum BodyMode {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl Writer {
    pub fn new(io: OwnedWriteHalf, timeout: Duration) -> Writer {
        Writer {
            io,
            buf: Vec::with_capacity(4096),
            timeout,
            written: 0,
        }
    }

    /// Writes bytes the proxy made itself (an error page, `100 Continue`).
    pub async fn raw(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.buf.extend_from_slice(bytes);
        self.flush().await
    }

    /// Writes `res` (hop-by-hop headers already removed).
    pub async fn response<B>(&mut self, res: Response<B>, f: Framing) -> Result<Written, WriteError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display + 'static,
    {
        let (parts, mut body) = res.into_parts();
        let mode = body_mode(parts.status, &parts.headers, &body, f);
        let keep_alive = f.keep_alive && !matches!(mode, BodyMode::UntilClose);
        self.head(parts.status, &parts.headers, &mode, keep_alive, f.http11);
        let sent = match mode {
            BodyMode::None => 0,
            BodyMode::Length(want) => {
                let got = self.body(&mut body, false).await?;
                if got != want {
                    self.flush().await?;
                    return Err(WriteError::Length { want, got });
                }
                got
            }
            BodyMode::Chunked => self.body(&mut body, true).await?,
            BodyMode::UntilClose => self.body(&mut body, false).await?,
        };
        self.flush().await?;
        Ok(Written {
            body: sent,
            reusable: keep_alive,
        })
    }

    fn head(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        mode: &BodyMode,
        keep_alive: bool,
        http11: bool,
    ) {
        let b = &mut self.buf;
        let _ = write!(
            b,
            "HTTP/1.1 {} {}\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or("")
        );
        for (name, value) in headers {
            if name == header::CONTENT_LENGTH
                && !matches!(mode, BodyMode::Length(_) | BodyMode::None)
            {
                continue;
            }
            b.extend_from_slice(name.as_str().as_bytes());
            b.extend_from_slice(b": ");
            b.extend_from_slice(value.as_bytes());
            b.extend_from_slice(b"\r\n");
        }
        match mode {
            BodyMode::Length(n) if !headers.contains_key(header::CONTENT_LENGTH) => {
                let _ = write!(b, "content-length: {n}\r\n");
            }
            BodyMode::Chunked => b.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            _ => {}
        }
        if !keep_alive {
            b.extend_from_slice(b"connection: close\r\n");
        } else if !http11 {
            b.extend_from_slice(b"connection: keep-alive\r\n");
        }
        b.extend_from_slice(b"\r\n");
    }

    /// Copies the body, chunk-encoded or not; returns its length.
    async fn body<B>(&mut self, body: &mut B, chunked: bool) -> Result<u64, WriteError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display + 'static,
    {
        let mut sent = 0u64;
        loop {
            let frame = match body.frame().now_or_never() {
                Some(f) => f,
                None => {
                    self.flush().await?;
                    body.frame().await
                }
            };
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| WriteError::body(&e))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers are not forwarded
            };
            if data.is_empty() {
                continue;
            }
            sent += data.len() as u64;
            if chunked {
                let _ = write!(self.buf, "{:x}\r\n", data.len());
            }
            if data.len() >= FLUSH_AT {
                self.flush().await?;
                self.write_out(&data).await?;
            } else {
                self.buf.extend_from_slice(&data);
            }
            if chunked {
                self.buf.extend_from_slice(b"\r\n");
            }
            if self.buf.len() >= FLUSH_AT {
                self.flush().await?;
            }
        }
        if chunked {
            self.buf.extend_from_slice(b"0\r\n\r\n");
        }
        Ok(sent)
    }

    /// Sends what is buffered.
    pub async fn flush(&mut self) -> Result<(), WriteError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let (buf, sent) = crate::cork::write(self.io.as_ref(), buf).await;
        let r = self.finish(&buf, sent).await;
        self.buf = buf;
        self.buf.clear();
        r
    }

    async fn write_out(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let sent = crate::cork::taken(self.io.try_write(bytes));
        self.finish(bytes, sent).await
    }

    /// Writes what the first attempt left of `bytes` (`sent`: the count it
    /// took, 0 when none). Most answers fit the socket buffer: then no timer
    /// is armed at all.
    async fn finish(
        &mut self,
        bytes: &[u8],
        sent: std::io::Result<usize>,
    ) -> Result<(), WriteError> {
        let rest = &bytes[sent?..];
        if !rest.is_empty() {
            match tokio::time::timeout(self.timeout, self.io.write_all(rest)).await {
                Ok(r) => r?,
                Err(_) => return Err(WriteError::Timeout(self.timeout)),
            }
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written since the last call (for the counters).
    pub fn take_written(&mut self) -> u64 {
        std::mem::take(&mut self.written)
    }
}

/// How the body is delimited towards the client (RFC 9112 §6.3).
fn body_mode<B: Body>(status: StatusCode, headers: &HeaderMap, body: &B, f: Framing) -> BodyMode {
    if f.head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return BodyMode::None;
    }
    if let Some(n) = headers.get(header::CONTENT_LENGTH).and_then(parse_length) {
        return BodyMode::Length(n);
    }
    if let Some(n) = body.size_hint().exact() {
        return BodyMode::Length(n);
    }
    if f.http11 {
        BodyMode::Chunked
    } else {
        BodyMode::UntilClose
    }
}

fn parse_length(v: &HeaderValue) -> Option<u64> {
    std::str::from_utf8(v.as_bytes()).ok()?.parse().ok()
}
