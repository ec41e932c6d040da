//! `mode tcp`: a client connection relayed to a server as bytes. Balanced
//! per connection (the balancer sees only the client's address), connected
//! with the same retries and redispatch as HTTP, then copied both ways;
//! a side that closes its half has that close passed on while the other
//! direction goes on (half-close, RFC 9293 §3.6). Idle in both directions
//! for the shorter of `timeout client` and `timeout server`, the relay
//! ends.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Ctx;
use super::Upstream;
use super::choose::Persisted;
use super::counters::Counters;
use super::exchange::Slot;
use super::select::{Failure, Selector};
use crate::log::{Cause, Phase, ServerTrace, Termination};

/// How a relay ended.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("no server of pool `{pool}` is usable, or none freed a slot within `timeout queue`")]
    NoServer { pool: String },
    #[error("no connection to a server of pool `{pool}` after the retries: {last}")]
    Connect { pool: String, last: io::Error },
    #[error("the connection was idle both ways for {0:?} (`timeout client` / `timeout server`)")]
    Idle(Duration),
    #[error("relaying: {0}")]
    Io(#[from] io::Error),
}

/// What a relay carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relayed {
    /// The server's index in the pool.
    pub server: usize,
    /// Client to server.
    pub bytes_in: u64,
    /// Server to client.
    pub bytes_out: u64,
}

impl Upstream {
    /// Relays a `mode tcp` client connection to a server of this pool
    /// until both sides have closed, or until it is idle for the shorter
    /// of `timeout client` (the frontend's, in `ctx`) and `timeout server`.
    /// The server slot is held for the whole connection, so a server's
    /// `maxconn` counts connections, as in HAProxy.
    pub async fn relay(&self, client: TcpStream, ctx: &Ctx) -> Result<Relayed, RelayError> {
        self.relay_logged(client, ctx, &mut ServerTrace::default())
            .await
    }

    /// [`Upstream::relay`], telling `trace` the server, the queue and
    /// connect times and how the connection ended, for the access log.
    pub async fn relay_logged(
        &self,
        client: TcpStream,
        ctx: &Ctx,
        trace: &mut ServerTrace,
    ) -> Result<Relayed, RelayError> {
        let inner = &self.inner;
        Counters::inc(&inner.counters.sessions);
        let mut select = Selector::new(inner, ctx.client, Persisted::No);
        let connected = connect(&mut select, trace).await;
        select.trace(trace);
        let (slot, server) = connected?;
        let idle = ctx.client_timeout.min(inner.settings.server);
        let result = pump(client, server, idle).await;
        trace.term = match &result.outcome {
            Ok(()) => None,
            Err(RelayError::Idle(_)) if ctx.client_timeout <= inner.settings.server => {
                Some(Termination::new(Cause::ClientTimeout, Phase::Data))
            }
            Err(RelayError::Idle(_)) => Some(Termination::new(Cause::ServerTimeout, Phase::Data)),
            // copy_bidirectional does not say which side failed.
            Err(_) => Some(Termination::new(Cause::ServerAbort, Phase::Data)),
        };
        let (up, down) = (result.up, result.down);
        let link = slot.link();
        for c in [&link.counters, &*inner.counters] {
            Counters::add(&c.bytes_in, up);
            Counters::add(&c.bytes_out, down);
        }
        result.outcome?;
        Ok(Relayed {
            server: slot.server(),
            bytes_in: up,
            bytes_out: down,
        })
    }
}

/// A server connection, with retries and redispatch on failure.
async fn connect(
    select: &mut Selector<'_>,
    trace: &mut ServerTrace,
) -> Result<(Slot, TcpStream), RelayError> {
    let inner = select.inner;
    let pool = || inner.name.to_string();
    loop {
        let waited = Instant::now();
        let assigned = select.assign(None).await;
        trace.queue = Some(trace.queue.unwrap_or_default() + waited.elapsed());
        let slot = assigned.map_err(|_| {
            trace.term = Some(select.unassigned());
            RelayError::NoServer { pool: pool() }
        })?;
        trace.server = Some(slot.server());
        let started = Instant::now();
        let addr = slot.link().addr();
        let origin = inner.origin(select.client());
        let connecting = super::source::connect(addr, origin, &inner.source_warned);
        let error = match tokio::time::timeout(select.connect_timeout(), connecting).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Counters::inc(&slot.link().counters.connections);
                trace.connect = Some(started.elapsed());
                return Ok((slot, stream));
            }
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(
                io::ErrorKind::TimedOut,
                "no answer within `timeout connect`",
            ),
        };
        tracing::debug!(pool = %pool(), server = %addr, %error, "connect failed");
        select.count(slot.server(), |c| &c.connect_errors);
        let immediate = error.kind() != io::ErrorKind::TimedOut;
        let cause = match immediate {
            true => Cause::ServerAbort,
            false => Cause::ServerTimeout,
        };
        trace.term = Some(Termination::new(cause, Phase::Connect));
        if !select
            .retry(
                slot,
                Failure {
                    immediate,
                    reused: false,
                },
            )
            .await
        {
            return Err(RelayError::Connect {
                pool: pool(),
                last: error,
            });
        }
    }
}

/// The last time anything moved, and the bytes moved each way.
#[derive(Debug)]
struct Activity {
    base: Instant,
    last: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let nanos = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(nanos, Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_nanos(self.last.load(Relaxed))
    }
}

/// A stream that records its reads in an [`Activity`] (`up`: it is the
/// client, else the server).
struct Watched<'a> {
    io: &'a mut TcpStream,
    activity: &'a Activity,
    up: bool,
}

impl AsyncRead for Watched<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut *this.io).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            this.activity.touch();
            let counter = if this.up {
                &this.activity.up
            } else {
                &this.activity.down
            };
            counter.fetch_add(n, Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Watched<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_shutdown(cx)
    }
}

/// What [`pump`] did.
struct Pumped {
    outcome: Result<(), RelayError>,
    up: u64,
    down: u64,
}

/// Copies both ways until both sides closed, or until nothing moved for
/// `idle`.
async fn pump(mut client: TcpStream, mut server: TcpStream, idle: Duration) -> Pumped {
    let activity = Activity {
        base: Instant::now(),
        last: AtomicU64::new(0),
        up: AtomicU64::new(0),
        down: AtomicU64::new(0),
    };
    let outcome = {
        let mut a = Watched {
            io: &mut client,
            activity: &activity,
            up: true,
        };
        let mut b = Watched {
            io: &mut server,
            activity: &activity,
            up: false,
        };
        let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
        tokio::select! {
            copied = copy => copied.map(drop).map_err(RelayError::from),
            () = idle_for(&activity, idle) => Err(RelayError::Idle(idle)),
        }
    };
    Pumped {
        outcome,
        up: activity.up.load(Relaxed),
        down: activity.down.load(Relaxed),
    }
}

/// Returns once nothing moved for `idle`.
async fn idle_for(activity: &Activity, idle: Duration) {
    loop {
        let deadline = activity.last() + idle;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}
