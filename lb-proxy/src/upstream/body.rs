//! The bodies that cross the proxy: [`RequestBody`] (what the client side
//! hands to [`super::Upstream::forward`]) and [`ResponseBody`] (what it
//! gets back and gives to hyper's server). Both stream frame by frame —
//! nothing is buffered whole — and both watch their peer's inactivity:
//! `timeout client` while the request body is read, `timeout server` while
//! the response body is.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use super::from_server::FromServer;

/// Why a body stopped before its end. hyper's server turns an error from a
/// response body into an aborted connection, which is what HAProxy does
/// when a transfer fails midway: the client sees a truncated message, never
/// a complete-looking one.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the client's request body: {0}")]
    Client(#[source] StreamError),
    #[error(
        "the client sent nothing for `timeout client` ({0:?}) in the middle of its request body"
    )]
    ClientTimeout(Duration),
    #[error("reading the server's response body: {0}")]
    Server(#[source] std::io::Error),
    #[error("the server closed the connection before the end of its response body")]
    ServerClosed,
    #[error("the server's response body is invalid: {0}")]
    ServerInvalid(&'static str),
    #[error(
        "the server sent nothing for `timeout server` ({0:?}) in the middle of its response body"
    )]
    ServerTimeout(Duration),
}

/// The error type of a streamed request body: whatever the client side's
/// reader reports.
pub type StreamError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed request body, boxed so the server side takes any reader.
pub type BoxedBody = Pin<Box<dyn Body<Data = Bytes, Error = StreamError> + Send>>;

/// A request body as the client side hands it over: nothing, bytes the
/// proxy already holds, or a stream read from the client as the server
/// side pulls it (boxed only when there is a body, so a GET allocates
/// nothing for it).
pub enum RequestBody {
    Empty,
    Full(Option<Bytes>),
    Stream(BoxedBody),
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Empty => f.write_str("Empty"),
            RequestBody::Full(b) => f.debug_tuple("Full").field(b).finish(),
            RequestBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl RequestBody {
    /// A body read as it is forwarded; `Empty` when it is known to be empty.
    pub fn stream<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<StreamError>,
    {
        if body.is_end_stream() {
            return RequestBody::Empty;
        }
        RequestBody::Stream(Box::pin(http_body_util::BodyExt::map_err(body, Into::into)))
    }

    /// Whether the body is known to be empty before any of it is read: only
    /// such requests can be sent again after a failed attempt.
    pub fn is_empty(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            RequestBody::Stream(body) => body.is_end_stream(),
        }
    }
}

impl From<Incoming> for RequestBody {
    fn from(body: Incoming) -> Self {
        RequestBody::stream(body)
    }
}

impl From<Bytes> for RequestBody {
    fn from(bytes: Bytes) -> Self {
        RequestBody::Full(Some(bytes).filter(|b| !b.is_empty()))
    }
}

/// An inactivity timer that costs nothing per frame: each frame only
/// records the time; the sleep is armed when the body first waits, and
/// when it fires before the deadline (data came meanwhile) it is re-armed.
#[derive(Debug)]
pub(crate) struct Inactivity {
    pub(crate) limit: Duration,
    last: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Inactivity {
    pub(crate) fn new(limit: Duration) -> Self {
        Inactivity {
            limit,
            last: Instant::now(),
            sleep: None,
        }
    }

    /// Something moved: the peer is alive.
    pub(crate) fn touch(&mut self) {
        self.last = Instant::now();
    }

    /// Called when the peer has nothing for us: Ready when it has been
    /// silent for the whole limit.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.last + self.limit;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            ready!(sleep.as_mut().poll(cx));
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
        }
    }
}

/// When a streamed request body last moved, shared between the body (in
/// hyper's hands) and the attempt waiting for the response head, so that
/// `timeout server` counts from the last progress of an upload.
#[derive(Debug)]
pub(crate) struct Progress {
    base: Instant,
    nanos: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Progress {
            base: Instant::now(),
            nanos: AtomicU64::new(0),
        }
    }

    fn mark(&self) {
        let nanos = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.store(nanos, Relaxed);
    }

    pub(crate) fn last(&self) -> Instant {
        self.base + Duration::from_nanos(self.nanos.load(Relaxed))
    }
}

/// The client's request body on its way to a server: counts bytes, cuts a
/// client silent for `timeout client`, and marks its progress.
#[derive(Debug)]
pub(crate) struct ToServer {
    body: RequestBody,
    idle: Inactivity,
    /// Only for streamed bodies: the others are sent in one go.
    progress: Option<Arc<Progress>>,
    /// Bytes passed on so far, added to `counters` when dropped.
    bytes: u64,
    counters: Option<Arc<super::Link>>,
}

impl ToServer {
    pub(crate) fn new(body: RequestBody, client_timeout: Duration) -> Self {
        let progress = matches!(body, RequestBody::Stream(_)).then(|| Arc::new(Progress::new()));
        ToServer {
            body,
            idle: Inactivity::new(client_timeout),
            progress,
            bytes: 0,
            counters: None,
        }
    }

    /// The body is about to go to this server: its bytes count there.
    pub(crate) fn count_for(&mut self, link: &Arc<super::Link>) {
        if self.counters.is_none() && !self.body.is_empty() {
            self.counters = Some(link.clone());
        }
    }

    pub(crate) fn progress(&self) -> Option<Arc<Progress>> {
        self.progress.clone()
    }

    /// Whether the body is known to be empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The whole body when the proxy holds it already, left in place.
    pub(crate) fn full(&self) -> Option<&Bytes> {
        match &self.body {
            RequestBody::Full(bytes) => bytes.as_ref(),
            _ => None,
        }
    }

    /// The whole body when the proxy holds it already (counted as sent).
    pub(crate) fn take_full(&mut self) -> Option<Bytes> {
        let RequestBody::Full(bytes) = &mut self.body else {
            return None;
        };
        let bytes = bytes.take()?;
        self.bytes += bytes.len() as u64;
        Some(bytes)
    }
}

impl Drop for ToServer {
    fn drop(&mut self) {
        if let Some(link) = &self.counters {
            super::Counters::add(&link.counters.bytes_in, self.bytes);
        }
    }
}

impl Body for ToServer {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = match &mut this.body {
            RequestBody::Empty => return Poll::Ready(None),
            RequestBody::Full(_) => {
                return Poll::Ready(this.take_full().map(|b| Ok(Frame::data(b))));
            }
            RequestBody::Stream(body) => body.as_mut().poll_frame(cx),
        };
        match polled {
            Poll::Pending => {
                ready!(this.idle.poll_expired(cx));
                Poll::Ready(Some(Err(BodyError::ClientTimeout(this.idle.limit))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                this.idle.touch();
                if let Some(p) = &this.progress {
                    p.mark();
                }
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Client(e)))),
            Poll::Ready(None) => {
                if let Some(p) = &this.progress {
                    p.mark();
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RequestBody::Stream(body) => body.size_hint(),
        }
    }
}

/// A response for the client: the proxy's own bytes (error pages, the
/// client side's answers) or a server's body streamed through.
#[derive(Debug)]
pub struct ResponseBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Server(FromServer),
}

impl ResponseBody {
    /// A body the proxy holds whole (an error page, a redirect).
    pub fn full(bytes: Bytes) -> Self {
        ResponseBody {
            kind: Kind::Full(Some(bytes).filter(|b| !b.is_empty())),
        }
    }

    /// No body (HEAD, 204, 304).
    pub fn empty() -> Self {
        ResponseBody {
            kind: Kind::Full(None),
        }
    }

    pub(crate) fn from_server(body: FromServer) -> Self {
        ResponseBody {
            kind: Kind::Server(body),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Server(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Server(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Server(body) => body.size_hint(),
        }
    }
}
