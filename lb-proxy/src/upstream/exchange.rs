//! One attempt at one server: a slot on it ([`Slot`]), a connection (an
//! idle one reused, else a new one), the request sent and the response
//! head read under `timeout server`; and what the response body hands back
//! when it ends ([`Finish`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::http::request::Parts;
use tokio::time::Instant;

use super::Inner;
use super::body::{BodyError, Progress, ToServer};
use super::conn::{ConnectError, ServerConn};
use super::counters::Counters;
use super::link::{Active, Link};
use super::request::{SendError, send, stage};
use super::response::{Head, HeadError, read_head};

/// A slot on a server (one of its `maxconn`), given back on drop: to the
/// oldest request waiting for it, or freed.
pub(crate) struct Slot {
    inner: Arc<Inner>,
    server: usize,
    /// Always Some until dropped.
    active: Option<Active>,
}

impl Slot {
    /// The slot `active` on `server`, taken or handed over.
    pub(crate) fn new(inner: &Arc<Inner>, server: usize, active: Active) -> Self {
        if let Some(link) = inner.links.get(server) {
            Counters::raise(&link.counters.active_max, link.active());
        }
        Slot {
            inner: inner.clone(),
            server,
            active: Some(active),
        }
    }

    pub(crate) fn server(&self) -> usize {
        self.server
    }

    pub(crate) fn link(&self) -> &Link {
        &self.inner.links[self.server]
    }

    pub(crate) fn link_arc(&self) -> &Arc<Link> {
        &self.inner.links[self.server]
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(active) = self.active.take() else {
            return;
        };
        let usable = self.inner.chooser.usable(self.server);
        self.inner
            .queues
            .release(&self.inner.links[self.server], active, usable);
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("server", &self.server)
            .finish()
    }
}

/// What a response body gives back when it ends: the connection (to the
/// idle set, when it may carry another request) and then the slot, in that
/// order so a request woken by the slot finds the connection.
#[derive(Debug)]
pub(crate) struct Finish {
    slot: Slot,
}

impl Finish {
    pub(crate) fn new(slot: Slot) -> Self {
        Finish { slot }
    }

    /// The body ended after `bytes` body bytes; `conn`: the connection
    /// when it is to be kept (else it was closed).
    pub(crate) fn done(self, bytes: u64, conn: Option<ServerConn>) {
        let link = self.slot.link();
        Counters::add(&link.counters.bytes_out, bytes);
        Counters::add(&self.slot.inner().counters.bytes_out, bytes);
        if let Some(mut conn) = conn {
            conn.served += 1;
            conn.settle();
            link.idle.put(conn, self.slot.link_arc());
        }
    }
}

/// Closes a server connection that is not kept, after the response in
/// hand has gone to the client: the close (a FIN the server must handle)
/// stays off the response's path, as HAProxy orders it. On a core's
/// single-threaded runtime the task spawned here runs once the current one
/// waits, which is after its writes to the client. Outside a runtime (a
/// body dropped at shutdown) it closes at once.
pub(crate) fn close_later(conn: ServerConn) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move { drop(conn) });
    }
}

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) enum Failed {
    /// No connection could be made; nothing was sent.
    Connect(ConnectError),
    /// The connection ended before a complete response head, after the
    /// request was (at least partly) written; `answered`: part of a
    /// response had come.
    Lost {
        reused: bool,
        answered: bool,
        error: String,
    },
    /// No response head within `timeout server`.
    Timeout,
    /// The response is not valid HTTP/1.1, or its head is too large.
    Invalid(&'static str),
    /// The client's request body failed: it went silent for `timeout
    /// client` (`timed_out`), or it was invalid or cut.
    Client { timed_out: bool, error: BodyError },
}

/// A response head and the connection its body is to be read from.
pub(crate) struct Exchanged {
    pub(crate) head: Head,
    pub(crate) conn: ServerConn,
}

/// Sends the request (`head`, `body`) of `client` to the slot's server and
/// waits for the response head; `connected` is set to when a connection
/// was in hand (for the access log's `Tc` and `Tr`).
pub(crate) async fn attempt(
    slot: &Slot,
    head: &Parts,
    body: &mut ToServer,
    client: SocketAddr,
    connected: &mut Option<Instant>,
) -> Result<Exchanged, Failed> {
    let inner = slot.inner();
    let link = slot.link();
    let origin = inner.origin(client);
    let (mut conn, reused) = match take_alive(link, origin.key()) {
        Some(conn) => (conn, true),
        None => match ServerConn::open(
            link.addr(),
            origin,
            inner.settings.connect,
            &inner.source_warned,
        ) {
            Ok(conn) => (conn, false),
            Err(e) => return Err(Failed::Connect(e)),
        },
    };
    let staged = stage(&mut conn, head, body);
    if reused {
        Counters::inc(&link.counters.reused);
        *connected = Some(Instant::now());
    } else {
        // The head leaves as the handshake ends, under `timeout connect`.
        let up = conn.finish_connect().await.map_err(Failed::Connect)?;
        Counters::inc(&link.counters.connections);
        *connected = Some(up);
    }
    let progress = body.progress();
    let exchange = async {
        send(&mut conn, staged, body).await?;
        Ok::<_, ExchangeError>(read_head(&mut conn, &head.method, inner.limits).await?)
    };
    match head_within(exchange, inner.settings.server, progress.as_deref()).await {
        None => Err(Failed::Timeout),
        Some(Ok(head)) => Ok(Exchanged { head, conn }),
        Some(Err(e)) => Err(e.failed(reused)),
    }
}

/// The most recently used idle connection from `origin` the server has
/// not closed.
fn take_alive(link: &Link, origin: Option<SocketAddr>) -> Option<ServerConn> {
    while let Some(mut conn) = link.idle.take(origin) {
        if conn.is_alive() {
            return Some(conn);
        }
    }
    None
}

/// What went wrong in an exchange.
enum ExchangeError {
    Send(SendError),
    Head(HeadError),
}

impl From<SendError> for ExchangeError {
    fn from(e: SendError) -> Self {
        ExchangeError::Send(e)
    }
}

impl From<HeadError> for ExchangeError {
    fn from(e: HeadError) -> Self {
        ExchangeError::Head(e)
    }
}

impl ExchangeError {
    fn failed(self, reused: bool) -> Failed {
        match self {
            ExchangeError::Send(SendError::Client(error)) => {
                let timed_out = matches!(error, BodyError::ClientTimeout(_));
                Failed::Client { timed_out, error }
            }
            ExchangeError::Send(SendError::Server(e)) => Failed::Lost {
                reused,
                answered: false,
                error: e.to_string(),
            },
            ExchangeError::Head(HeadError::Closed(closed)) => Failed::Lost {
                reused,
                answered: closed.answered,
                error: closed.to_string(),
            },
            ExchangeError::Head(HeadError::Invalid(what)) => Failed::Invalid(what),
        }
    }
}

/// Awaits a response head under `timeout server`, counted from the last
/// progress of the request body when one is streamed: a long upload that
/// keeps moving is not cut, a server that stops reading it is.
async fn head_within<F, T>(fut: F, limit: Duration, progress: Option<&Progress>) -> Option<T>
where
    F: Future<Output = T>,
{
    let mut fut = std::pin::pin!(fut);
    let mut deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, fut.as_mut()).await {
            Ok(out) => return Some(out),
            Err(_) => {
                let moved = progress.map(|p| p.last() + limit).filter(|d| *d > deadline);
                deadline = moved?;
            }
        }
    }
}
