//! The client side of `mode http`: one task per connection reads request
//! heads strictly ([`head`]), hands each request with its body
//! ([`body`], [`chunked`]) to a [`Service`] (routing and the server side),
//! and writes the response back ([`write`]), keeping the connection alive
//! between requests as HTTP/1.1 and the client allow.
//!
//! Timeouts are HAProxy's: `timeout http-request` bounds the whole wait
//! for a complete head, from the accept for the first request (so a
//! connection that sends nothing, or a head a byte at a time, gets 408);
//! `timeout http-keep-alive` bounds the idle time before the next request
//! (then the connection closes silently); `timeout client` bounds each
//! write of a response and each wait for body bytes.

pub mod body;
pub mod chunked;
pub mod counters;
pub mod head;
pub mod write;

#[cfg(test)]
mod conn_tests;
#[cfg(test)]
mod head_tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt as _;
use hyper::body::Body;
use hyper::{Method, Request, Response, StatusCode, Version, header};
use tokio::sync::watch;
use tokio::time::Instant;

pub use body::{ClientBody, ClientBodyError, Reader};
pub use counters::{FrontCounters, FrontSnapshot};
use head::{Framing, Head, Refused};
use write::Writer;

/// What a frontend's connections need to know, read again before each
/// request so a reload applies to open connections too.
#[derive(Clone, Debug)]
pub struct Settings {
    pub limits: head::Limits,
    /// `timeout http-request`.
    pub http_request: Duration,
    /// `timeout http-keep-alive`.
    pub keep_alive: Duration,
    /// `timeout client`.
    pub client: Duration,
    pub counters: Arc<FrontCounters>,
}

/// A request's body as the client side hands it over.
#[derive(Debug)]
pub enum RequestBody {
    /// No body (the common case).
    Empty,
    /// A Content-Length body that had arrived whole with its head.
    Full(Bytes),
    /// A body still to be read from the client.
    Client(ClientBody),
}

/// The client as seen by the service.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

/// What serves the requests of one connection: routing and the server side.
pub trait Service: Send + 'static {
    type Body: Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin + 'static;
    /// The settings in force now; None when the frontend is gone (the
    /// connection then closes).
    fn settings(&mut self) -> Option<Settings>;
    /// Answers one request. The response carries no hop-by-hop header,
    /// except `Connection: close` when the client connection must close
    /// after it (the framing headers are the client side's to write).
    fn call(
        &mut self,
        req: Request<RequestBody>,
        client: Client,
    ) -> impl Future<Output = Response<Self::Body>> + Send;
    /// The proxy's own answer for `status` (400, 408, …).
    fn error(&self, status: StatusCode, close: bool) -> Response<Self::Body>;
}

/// How long the client may still send after an error answer, before the
/// connection is closed (so the answer is read rather than lost to a reset).
const LINGER: Duration = Duration::from_secs(1);
/// Bytes read and dropped at most while lingering.
const LINGER_BYTES: usize = 64 * 1024;

/// One client connection.
pub struct Conn<S: Service> {
    pub service: S,
    pub client: Client,
    pub writer: Writer,
    /// True when the listener closes: finish the request in flight, then close.
    pub closing: watch::Receiver<bool>,
    /// When the connection was accepted.
    pub accepted: Instant,
}

/// Why no request head came.
enum NoHead {
    /// The client closed, or stayed idle past `timeout http-keep-alive`,
    /// or the listener is closing: close without a word.
    Quiet,
    /// Past `timeout http-request`: 408.
    Timeout,
    Refused(Refused),
}

impl<S: Service> Conn<S> {
    /// Serves requests read through `reader` until the connection ends.
    pub async fn run(mut self, mut reader: Reader) {
        let mut scratch = Vec::new();
        let mut first = true;
        while let Some(settings) = self.service.settings() {
            self.writer.timeout = settings.client;
            let head = match self
                .next_head(&mut reader, &settings, first, &mut scratch)
                .await
            {
                Ok(h) => h,
                Err(NoHead::Quiet) => break,
                Err(NoHead::Timeout) => {
                    FrontCounters::inc(&settings.counters.timeouts);
                    self.fail(&mut reader, &settings, StatusCode::REQUEST_TIMEOUT)
                        .await;
                    break;
                }
                Err(NoHead::Refused(r)) => {
                    tracing::debug!(client = %self.client.peer, reason = r.reason, "request refused");
                    FrontCounters::inc(&settings.counters.requests);
                    FrontCounters::inc(&settings.counters.invalid);
                    self.fail(&mut reader, &settings, r.status).await;
                    break;
                }
            };
            first = false;
            FrontCounters::inc(&settings.counters.requests);
            match self.exchange(reader, &settings, head).await {
                Some(r) => reader = r,
                None => break,
            }
        }
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut self.writer.io).await;
    }

    /// Waits for and parses the next head.
    async fn next_head(
        &mut self,
        reader: &mut Reader,
        s: &Settings,
        first: bool,
        scratch: &mut Vec<httparse::Header<'static>>,
    ) -> Result<Head, NoHead> {
        let deadline = if first {
            self.accepted + s.http_request
        } else {
            self.idle(reader, s).await?;
            Instant::now() + s.http_request
        };
        loop {
            if let Some(end) = head::find_end(&reader.buf) {
                let bytes = reader.buf.split_to(end).freeze();
                return head::parse(&bytes, s.limits, scratch).map_err(NoHead::Refused);
            }
            if reader.buf.len() >= s.limits.max_size {
                return Err(NoHead::Refused(Refused {
                    status: StatusCode::BAD_REQUEST,
                    reason: "request head over proxy.max_header_size",
                }));
            }
            match read_within(reader, deadline).await {
                Err(_) => return Err(NoHead::Timeout),
                Ok(Ok(0) | Err(_)) => return Err(NoHead::Quiet),
                Ok(Ok(n)) => FrontCounters::add(&s.counters.bytes_in, n as u64),
            }
        }
    }

    /// Between requests: waits for the first byte of the next one, at
    /// most `timeout http-keep-alive`, and not past the listener closing.
    async fn idle(&mut self, reader: &mut Reader, s: &Settings) -> Result<(), NoHead> {
        if !reader.buf.is_empty() {
            return Ok(()); // pipelined
        }
        if *self.closing.borrow() {
            return Err(NoHead::Quiet);
        }
        let closing = self.closing.wait_for(|c| *c);
        tokio::select! {
            r = read_within(reader, Instant::now() + s.keep_alive) => match r {
                Ok(Ok(n)) if n > 0 => {
                    FrontCounters::add(&s.counters.bytes_in, n as u64);
                    Ok(())
                }
                _ => Err(NoHead::Quiet),
            },
            _ = closing => Err(NoHead::Quiet),
        }
    }

    /// One request and its response; the reader back when the connection
    /// can carry another request.
    async fn exchange(&mut self, reader: Reader, s: &Settings, head: Head) -> Option<Reader> {
        let Head {
            request,
            framing,
            keep_alive,
            expects_continue,
        } = head;
        let method_head = request.method() == Method::HEAD;
        let http11 = request.version() == Version::HTTP_11;
        let (body, kept) = attach_body(reader, framing, s.limits.max_size);
        if expects_continue && matches!(body, RequestBody::Client(_)) {
            // The body is read as the server side asks for it: tell the client to send it.
            if self
                .writer
                .raw(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
            {
                return None;
            }
        }
        let mut res = self.service.call(request.map(|()| body), self.client).await;
        let must_close = res
            .headers_mut()
            .remove(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        s.counters.response(res.status().as_u16());
        let framing = write::Framing {
            head_request: method_head,
            http11,
            keep_alive: keep_alive && !must_close && !*self.closing.borrow(),
        };
        let written = self.writer.response(res, framing).await;
        FrontCounters::add(&s.counters.bytes_out, self.writer.take_written());
        let reusable = match written {
            Ok(w) => w.reusable,
            Err(e) => {
                tracing::debug!(client = %self.client.peer, error = %e, "response not sent whole");
                FrontCounters::inc(&s.counters.client_errors);
                false
            }
        };
        let reader = match kept {
            Kept::Here(r) => r,
            Kept::InBody(rx) => match rx.await {
                Ok((r, true)) => r,
                _ => return None,
            },
        };
        reusable.then_some(reader)
    }

    /// Answers an error the client caused or suffered, then lingers a
    /// little so the answer is read before the connection closes.
    async fn fail(&mut self, reader: &mut Reader, s: &Settings, status: StatusCode) {
        s.counters.response(status.as_u16());
        let mut res = self.service.error(status, true);
        res.headers_mut().remove(header::CONNECTION);
        let framing = write::Framing {
            head_request: false,
            http11: true,
            keep_alive: false,
        };
        if self.writer.response(res, framing).await.is_ok() {
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut self.writer.io).await;
            linger(reader).await;
        }
        FrontCounters::add(&s.counters.bytes_out, self.writer.take_written());
    }
}

/// Reads more into `reader` by `deadline`. Data already waiting is taken
/// without arming a timer (the common case under load).
async fn read_within(
    reader: &mut Reader,
    deadline: Instant,
) -> Result<std::io::Result<usize>, tokio::time::error::Elapsed> {
    if let Some(r) = std::future::poll_fn(|cx| reader.poll_fill(cx)).now_or_never() {
        return Ok(r);
    }
    tokio::time::timeout_at(deadline, std::future::poll_fn(|cx| reader.poll_fill(cx))).await
}

/// Where the reader is while a request is forwarded.
enum Kept {
    Here(Reader),
    /// With the body, which sends it back with whether it was read whole.
    InBody(tokio::sync::oneshot::Receiver<body::Returned>),
}

/// The request's body; when it is still to be read, the reader goes with it.
fn attach_body(mut reader: Reader, framing: Framing, max_trailers: usize) -> (RequestBody, Kept) {
    match framing {
        Framing::Length(0) => (RequestBody::Empty, Kept::Here(reader)),
        Framing::Length(n) if n <= reader.buf.len() as u64 => {
            let bytes = reader.buf.split_to(n as usize).freeze();
            (RequestBody::Full(bytes), Kept::Here(reader))
        }
        Framing::Length(n) => {
            let (b, rx) = ClientBody::length(reader, n);
            (RequestBody::Client(b), Kept::InBody(rx))
        }
        Framing::Chunked => {
            let (b, rx) = ClientBody::chunked(reader, max_trailers);
            (RequestBody::Client(b), Kept::InBody(rx))
        }
    }
}

/// Reads and drops what the client still sends, briefly.
async fn linger(reader: &mut Reader) {
    let drain = async {
        let mut dropped = 0;
        while dropped < LINGER_BYTES {
            reader.buf.clear();
            match std::future::poll_fn(|cx| reader.poll_fill(cx)).await {
                Ok(0) | Err(_) => return,
                Ok(n) => dropped += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
