//! The server side of the proxy, one [`Upstream`] per pool: which server a
//! request or connection goes to (cookie persistence first, then the
//! pool's balancer), waiting for a slot when servers are at `maxconn`,
//! connecting with retries and redispatch, keeping idle server connections
//! for reuse, and streaming bodies both ways under `timeout server` /
//! `timeout client`.
//!
//! The client side calls [`Upstream::forward`] once a request is routed to
//! the pool (`mode http`), or [`Upstream::relay`] with an accepted
//! connection (`mode tcp`). Both are cancel-safe: dropping the future (the
//! client went away) gives back the queue place or the server slot at once
//! and closes a server connection left mid-exchange.
//!
//! Bodies: requests come in as a [`RequestBody`] (any streaming body via
//! [`RequestBody::stream`]), responses go out as a [`ResponseBody`], an
//! `http_body::Body` the client side writes out frame by frame; neither is
//! ever buffered whole.

pub mod body;
mod choose;
mod conn;
pub mod counters;
mod exchange;
mod forward;
mod from_server;
mod link;
mod pool;
mod queue;
pub mod reply;
mod request;
mod response;
mod retry;
mod select;
mod source;
mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use lb_config::proxy::{Balance, PoolL7};

pub use body::{BodyError, RequestBody, ResponseBody};
pub use choose::{Answered, Chooser, Persisted, Pick, Subject};
pub use counters::{Counters, Snapshot};
pub use link::Link;
pub use reply::error_response;
pub use tcp::{RelayError, Relayed};

use queue::Queues;

/// What the server side needs to know about the client and its frontend,
/// besides the request itself.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// The client's address (`balance source`; logs).
    pub client: SocketAddr,
    /// The frontend's `option http-server-close`: close the server
    /// connection after this exchange. The pool's own setting applies too.
    pub server_close: bool,
    /// The frontend's `timeout client`: the longest the client may go
    /// silent in the middle of its request body (then 408 if no response
    /// has started, else the exchange is aborted). In TCP mode: the longest
    /// the client may send nothing while the server is silent too.
    pub client_timeout: Duration,
}

/// Limits on what a server may send, from `proxy:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLimits {
    /// A response head larger than this is refused with 502.
    pub max_header_size: usize,
    /// Header lines per response at most.
    pub max_headers: usize,
}

impl HeadLimits {
    pub fn from_config(proxy: &lb_config::proxy::ProxyConfig) -> Self {
        HeadLimits {
            max_header_size: proxy.max_header_size as usize,
            max_headers: proxy.max_headers as usize,
        }
    }
}

/// A pool's settings as the server side uses them.
#[derive(Clone, Copy, Debug)]
struct Settings {
    rules: retry::Rules,
    /// `roundrobin`, `static-rr`: a new request joins the pool queue
    /// behind those already waiting instead of asking the balancer
    /// (HAProxy 2.6's `assign_server`).
    queue_first: bool,
    abortonclose: bool,
    server_close: bool,
    connect: Duration,
    server: Duration,
    queue: Duration,
    /// Where connections to the servers come from.
    source: Option<lb_config::proxy::Source>,
}

impl Settings {
    fn new(cfg: &PoolL7) -> Self {
        Settings {
            rules: retry::Rules {
                retries: cfg.retries,
                redispatch: cfg.redispatch,
                hash: matches!(
                    cfg.balance,
                    Balance::Source | Balance::Uri | Balance::UrlParam(_) | Balance::Hdr(_)
                ),
                connect_timeout: cfg.timeouts.connect,
            },
            queue_first: matches!(cfg.balance, Balance::RoundRobin | Balance::StaticRr),
            abortonclose: cfg.abortonclose,
            server_close: cfg.http_server_close,
            connect: cfg.timeouts.connect,
            server: cfg.timeouts.server,
            queue: cfg.timeouts.queue,
            source: cfg.source,
        }
    }
}

/// One pool's server side. Cheap to share: the runtime holds one per pool
/// and every request borrows it.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    name: Box<str>,
    links: Box<[Arc<Link>]>,
    chooser: Box<dyn Chooser>,
    /// Carried across rebuilds with the pool, like the links.
    queues: Arc<Queues>,
    counters: Arc<Counters>,
    settings: Settings,
    limits: HeadLimits,
    /// A failure to bind to the pool's `source` was logged.
    source_warned: AtomicBool,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.inner.name)
            .field("servers", &self.inner.links.len())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Where a connection for `client` comes from.
    pub(crate) fn origin(&self, client: SocketAddr) -> source::Origin {
        source::Origin::of(self.settings.source.as_ref(), client)
    }
}

impl Upstream {
    /// The server side of pool `name`: `links` are its servers in the
    /// chooser's order (see [`Upstream::link`] to keep them across a
    /// reload), `chooser` its cookie, balancer and server states.
    /// `previous` is the same pool before a rebuild or reload, whose pool
    /// counters and queues carry on.
    pub fn new(
        name: &str,
        cfg: &PoolL7,
        links: Vec<Arc<Link>>,
        chooser: Box<dyn Chooser>,
        limits: HeadLimits,
        previous: Option<&Upstream>,
    ) -> Self {
        let counters = previous.map_or_else(Arc::default, |p| p.inner.counters.clone());
        let queues = previous.map_or_else(Arc::default, |p| p.inner.queues.clone());
        Upstream {
            inner: Arc::new(Inner {
                name: name.into(),
                queues,
                links: links.into(),
                chooser,
                counters,
                settings: Settings::new(cfg),
                limits,
                source_warned: AtomicBool::new(false),
            }),
        }
    }

    /// The link for server `name` at `addr`: the one `previous` had under
    /// that name and address (its connections, load and counters go on),
    /// else a new one. Its `maxconn` is set to the new configuration's.
    pub fn link(
        previous: Option<&Upstream>,
        name: &str,
        addr: SocketAddr,
        maxconn: Option<u32>,
    ) -> Arc<Link> {
        let kept = previous.and_then(|p| {
            p.inner
                .links
                .iter()
                .find(|l| l.name() == name && l.addr() == addr)
        });
        match kept {
            Some(link) => {
                link.set_maxconn(maxconn);
                link.clone()
            }
            None => Arc::new(Link::new(name, addr, maxconn)),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The servers, in the chooser's order.
    pub fn links(&self) -> &[Arc<Link>] {
        &self.inner.links
    }

    /// The pool's own counters (every server's requests together, and the
    /// requests that got no server).
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// `option abortonclose`: a request whose client closed its side
    /// while the request waits (in a queue, or for the response) is
    /// dropped. Without it, HAProxy still forwards the request of a client
    /// that only half-closed; the client side reads this to decide whether
    /// a client's end of stream drops the request.
    pub fn abort_on_close(&self) -> bool {
        self.inner.settings.abortonclose
    }

    /// Requests waiting for any server of the pool.
    pub fn queued(&self) -> u32 {
        self.inner.queues.pool_len()
    }

    /// Server `server` went down or into maintenance: its idle connections
    /// are closed and, with `option redispatch`, the requests waiting for it
    /// choose again (without, they wait for it or `timeout queue`).
    pub fn server_down(&self, server: usize) {
        let Some(link) = self.inner.links.get(server) else {
            return;
        };
        link.idle.clear();
        if self.inner.settings.rules.redispatch {
            self.inner.queues.redistribute(link.name());
        }
    }

    /// Server `server` is usable again (up, enabled, weight raised): it
    /// takes waiting requests up to its `maxconn`.
    pub fn server_up(&self, server: usize) {
        if let Some(link) = self.inner.links.get(server) {
            self.inner.queues.grab(link);
        }
    }
}

#[cfg(test)]
mod tests;
