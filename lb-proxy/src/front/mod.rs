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
pub mod timer;
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

pub use crate::log::request::Exchange;
use crate::log::request::write_failed;
use crate::log::{Cause, Phase, Termination};
pub use body::{ClientBody, ClientBodyError, Reader};
pub use counters::{FrontCounters, FrontSnapshot};
use head::{Framing, Head, Refused};
use timer::Timer;
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
    /// Whether exchanges are logged: then each is told to [`Service::logged`].
    fn logs(&self) -> bool {
        false
    }
    /// An exchange ended, or a request that never came whole was given up.
    fn logged(&mut self, _exchange: Exchange) {}
}

/// Marks a response [`Service::call`] returns as not to be sent: the
/// connection is closed at once instead (`rate_limit.reply: close`).
#[derive(Clone, Copy, Debug)]
struct HangUp;

/// `res`, marked to be dropped unsent with its connection.
pub fn hang_up<B>(mut res: Response<B>) -> Response<B> {
    res.extensions_mut().insert(HangUp);
    res
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
        let mut timer = Timer::default();
        let mut first = true;
        while let Some(settings) = self.service.settings() {
            self.writer.timeout = settings.client;
            // The request's first byte (HAProxy's request date, and where `TR` starts).
            let mut begun = None;
            let head = match self
                .next_head(
                    &mut reader,
                    &settings,
                    first,
                    &mut timer,
                    &mut scratch,
                    &mut begun,
                )
                .await
            {
                Ok(h) => h,
                Err(NoHead::Quiet) => {
                    // As HAProxy: a first request that never came whole is
                    // logged (`CR`, 400), a later one only once it began.
                    if first || begun.is_some() {
                        let term = Termination::new(Cause::ClientAbort, Phase::Request);
                        self.unfinished(begun, StatusCode::BAD_REQUEST, 0, term);
                    }
                    break;
                }
                Err(NoHead::Timeout) => {
                    FrontCounters::inc(&settings.counters.timeouts);
                    let status = StatusCode::REQUEST_TIMEOUT;
                    let bytes = self.fail(&mut reader, &settings, status).await;
                    let term = Termination::new(Cause::ClientTimeout, Phase::Request);
                    self.unfinished(begun, status, bytes, term);
                    break;
                }
                Err(NoHead::Refused(r)) => {
                    tracing::debug!(client = %self.client.peer, reason = r.reason, "request refused");
                    FrontCounters::inc(&settings.counters.requests);
                    FrontCounters::inc(&settings.counters.invalid);
                    let bytes = self.fail(&mut reader, &settings, r.status).await;
                    let term = Termination::new(Cause::Proxy, Phase::Request);
                    self.unfinished(begun, r.status, bytes, term);
                    break;
                }
            };
            first = false;
            FrontCounters::inc(&settings.counters.requests);
            match self.exchange(reader, &settings, head, begun).await {
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
        timer: &mut Timer,
        scratch: &mut Vec<httparse::Header<'static>>,
        begun: &mut Option<Instant>,
    ) -> Result<Head, NoHead> {
        let deadline = if first {
            self.accepted + s.http_request
        } else {
            self.idle(reader, s, timer).await?;
            Instant::now() + s.http_request
        };
        loop {
            if begun.is_none() && !reader.buf.is_empty() {
                *begun = Some(Instant::now());
            }
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
            match read_within(reader, timer, deadline).await {
                None => return Err(NoHead::Timeout),
                Some(Ok(0) | Err(_)) => return Err(NoHead::Quiet),
                Some(Ok(n)) => FrontCounters::add(&s.counters.bytes_in, n as u64),
            }
        }
    }

    /// Between requests: waits for the first byte of the next one, at
    /// most `timeout http-keep-alive`, and not past the listener closing.
    async fn idle(
        &mut self,
        reader: &mut Reader,
        s: &Settings,
        timer: &mut Timer,
    ) -> Result<(), NoHead> {
        if !reader.buf.is_empty() {
            return Ok(()); // pipelined
        }
        if *self.closing.borrow() {
            return Err(NoHead::Quiet);
        }
        let closing = self.closing.wait_for(|c| *c);
        tokio::select! {
            r = read_within(reader, timer, Instant::now() + s.keep_alive) => match r {
                Some(Ok(n)) if n > 0 => {
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
    async fn exchange(
        &mut self,
        reader: Reader,
        s: &Settings,
        head: Head,
        begun: Option<Instant>,
    ) -> Option<Reader> {
        let parsed = Instant::now();
        let Head {
            request,
            framing,
            keep_alive,
            expects_continue,
        } = head;
        let method_head = request.method() == Method::HEAD;
        let http11 = request.version() == Version::HTTP_11;
        let (body, kept) = attach_body(reader, framing, s.limits.max_size);
        // The body is read as the server side asks for it: tell the client to send it.
        let go_on = b"HTTP/1.1 100 Continue\r\n\r\n";
        if expects_continue
            && matches!(body, RequestBody::Client(_))
            && self.writer.raw(go_on).await.is_err()
        {
            return None;
        }
        let started = Instant::now();
        let mut res = self.service.call(request.map(|()| body), self.client).await;
        if res.extensions().get::<HangUp>().is_some() {
            return None;
        }
        s.counters.response_time.observe(started.elapsed());
        let must_close = res
            .headers_mut()
            .remove(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let status = res.status().as_u16();
        s.counters.response(status);
        let framing = write::Framing {
            head_request: method_head,
            http11,
            keep_alive: keep_alive && !must_close && !*self.closing.borrow(),
        };
        let written = self.writer.response(res, framing).await;
        let bytes = self.writer.take_written();
        FrontCounters::add(&s.counters.bytes_out, bytes);
        if self.service.logs() {
            self.service.logged(Exchange {
                started: begun.or(Some(parsed)),
                head: Some(parsed),
                status,
                bytes,
                term: written.as_ref().err().map(write_failed),
            });
        }
        let reusable = match written {
            Ok(w) => w.reusable,
            Err(e) => {
                tracing::debug!(client = %self.client.peer, error = %e, "response not sent whole");
                FrontCounters::inc(&s.counters.client_errors);
                false
            }
        };
        let reader = kept.back().await?;
        reusable.then_some(reader)
    }

    /// Tells the log of a request given up before its head was whole.
    fn unfinished(
        &mut self,
        begun: Option<Instant>,
        status: StatusCode,
        bytes: u64,
        term: Termination,
    ) {
        if self.service.logs() {
            self.service.logged(Exchange {
                started: begun,
                head: None,
                status: status.as_u16(),
                bytes,
                term: Some(term),
            });
        }
    }

    /// Answers an error the client caused or suffered, then lingers a
    /// little so the answer is read before the connection closes; the
    /// bytes written.
    async fn fail(&mut self, reader: &mut Reader, s: &Settings, status: StatusCode) -> u64 {
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
        let bytes = self.writer.take_written();
        FrontCounters::add(&s.counters.bytes_out, bytes);
        bytes
    }
}

/// Reads more into `reader` by `deadline` (None: it passed). Data already
/// waiting is taken without touching the timer (the common case under
/// load).
async fn read_within(
    reader: &mut Reader,
    timer: &mut Timer,
    deadline: Instant,
) -> Option<std::io::Result<usize>> {
    let mut fill = std::future::poll_fn(|cx| reader.poll_fill(cx));
    if let Some(r) = (&mut fill).now_or_never() {
        return Some(r);
    }
    tokio::select! {
        biased;
        r = fill => Some(r),
        () = timer.until(deadline) => None,
    }
}

/// Where the reader is while a request is forwarded.
enum Kept {
    Here(Reader),
    /// With the body, which sends it back with whether it was read whole.
    InBody(tokio::sync::oneshot::Receiver<body::Returned>),
}

impl Kept {
    /// The reader, once the body is done with it; None when the body was
    /// not read whole (the connection cannot carry another request).
    async fn back(self) -> Option<Reader> {
        match self {
            Kept::Here(r) => Some(r),
            Kept::InBody(rx) => match rx.await {
                Ok((r, true)) => Some(r),
                _ => None,
            },
        }
    }
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
