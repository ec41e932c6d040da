//! Choosing the server for one request or connection and getting a slot
//! on it: the persistence server or the balancer's pick, a place in a
//! queue when servers are full (`timeout queue`), and after a failed
//! attempt, the retry or redispatch HAProxy would make. Shared by HTTP
//! ([`super::forward`]) and TCP ([`super::tcp`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use hyper::StatusCode;
use hyper::http::request::Parts;

use super::Inner;
use super::choose::{Persisted, Pick, Subject};
use super::counters::Counters;
use super::exchange::Slot;
use super::queue::{Ticket, Wake};
use super::retry::{self, Next};
use crate::log::{Cause, Phase, ServerTrace, Termination};

/// Where the next attempt goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The balancer chooses, avoiding the server that just failed.
    Balance { avoid: Option<usize> },
    /// This server: the cookie's, or the one being retried.
    Server(usize),
}

/// How a failed attempt failed, for the retry rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Failure {
    /// Refused or reset rather than timed out.
    pub(crate) immediate: bool,
    /// On a connection taken from the idle pool.
    pub(crate) reused: bool,
}

/// One request's (or connection's) way to a server.
pub(crate) struct Selector<'a> {
    pub(crate) inner: &'a Arc<Inner>,
    client: SocketAddr,
    /// The current target comes from the persistence cookie.
    persistent: bool,
    target: Target,
    retries_done: u32,
    /// For the access log: what HAProxy reports of the way to a server.
    seen: Seen,
}

/// What a request met on its way to a server (the access log's fields).
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    redispatched: bool,
    /// Requests ahead of it in server queues, in the pool's queue.
    srv_queue: u32,
    backend_queue: u32,
    /// Its wait ended at `timeout queue`.
    queue_expired: bool,
}

impl<'a> Selector<'a> {
    pub(crate) fn new(inner: &'a Arc<Inner>, client: SocketAddr, persisted: Persisted) -> Self {
        let (target, persistent) = match persisted {
            Persisted::To(server) => (Target::Server(server), true),
            Persisted::No | Persisted::Invalid | Persisted::Down(_) => {
                (Target::Balance { avoid: None }, false)
            }
        };
        Selector {
            inner,
            client,
            persistent,
            target,
            retries_done: 0,
            seen: Seen::default(),
        }
    }

    /// A server and a slot on it, waiting in a queue if need be; the status
    /// to answer when there is none (503: no server usable, or `timeout
    /// queue`).
    pub(crate) async fn assign(&mut self, head: Option<&Parts>) -> Result<Slot, StatusCode> {
        loop {
            let (got, avoid) = match self.target {
                Target::Server(server) => (self.take(server).await?, None),
                Target::Balance { avoid } => match self.pick(head, avoid) {
                    Pick::Server(server) => (self.take(server).await?, avoid),
                    Pick::NoServer => return Err(StatusCode::SERVICE_UNAVAILABLE),
                    Pick::AllFull => (self.wait_any(head, avoid).await?, avoid),
                },
            };
            if let Some(slot) = got {
                return Ok(self.granted(slot, avoid));
            }
        }
    }

    /// A slot on `server`, at once or after waiting in its queue; None when
    /// the wait ended with a request to choose again.
    async fn take(&mut self, server: usize) -> Result<Option<Slot>, StatusCode> {
        let Some(seat) = self.inner.links.get(server) else {
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        };
        match self.inner.queues.acquire(seat) {
            Ok(active) => Ok(Some(Slot::new(self.inner, server, active))),
            Err(ticket) => {
                Counters::raise(&seat.counters.queue_max, seat.queued());
                self.seen.srv_queue += seat.queued().saturating_sub(1);
                self.wait(ticket).await
            }
        }
    }

    /// A slot on whichever server frees one first: waits in the pool queue.
    async fn wait_any(
        &mut self,
        head: Option<&Parts>,
        avoid: Option<usize>,
    ) -> Result<Option<Slot>, StatusCode> {
        let ticket = self.inner.queues.wait_any();
        Counters::raise(&self.inner.counters.queue_max, self.inner.queues.pool_len());
        self.seen.backend_queue += self.inner.queues.pool_len().saturating_sub(1);
        // A server may have freed a slot between the balancer's look and
        // this waiter's arrival, seeing nobody to hand it to.
        let subject = Subject {
            head,
            client: self.client,
        };
        if let Pick::Server(server) = self.inner.chooser.pick(subject, avoid)
            && let Some(link) = self.inner.links.get(server)
        {
            self.inner.queues.grab(link);
        }
        self.wait(ticket).await
    }

    /// Asks the balancer. A round robin whose pool queue is not empty
    /// sends the request to the back of it: every server is full, and
    /// first come is first served (HAProxy 2.6's `assign_server`).
    fn pick(&self, head: Option<&Parts>, avoid: Option<usize>) -> Pick {
        if self.inner.settings.queue_first && self.inner.queues.pool_len() > 0 {
            return Pick::AllFull;
        }
        let subject = Subject {
            head,
            client: self.client,
        };
        self.inner.chooser.pick(subject, avoid)
    }

    /// Counts the server given a request, and a redispatch when a retry
    /// ended up elsewhere than the server that failed.
    fn granted(&mut self, slot: Slot, avoided: Option<usize>) -> Slot {
        let server = slot.server();
        Counters::inc(&self.inner.links[server].counters.sessions);
        if let Some(prev) = avoided.filter(|prev| *prev != server) {
            Counters::inc(&self.inner.links[prev].counters.redispatches);
            Counters::inc(&self.inner.counters.redispatches);
        }
        slot
    }

    /// Waits in a queue for `timeout queue`: a slot (Some), or a request to
    /// choose again because the awaited server went down (None).
    async fn wait(&mut self, ticket: Ticket) -> Result<Option<Slot>, StatusCode> {
        let inner = self.inner;
        let mut waiting = Waiting {
            inner,
            ticket,
            settled: false,
        };
        let waited = tokio::time::timeout(inner.settings.queue, &mut waiting.ticket.rx).await;
        let Ok(Ok(wake)) = waited else {
            Counters::inc(&inner.counters.queue_timeouts);
            self.seen.queue_expired = waited.is_err();
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        };
        waiting.settled = true;
        let grant = match wake {
            Wake::Slot(grant) => grant,
            Wake::Redispatch => {
                self.target = Target::Balance { avoid: None };
                self.persistent = false;
                return Ok(None);
            }
        };
        match inner.links.iter().position(|l| Arc::ptr_eq(l, &grant.link)) {
            Some(server) => Ok(Some(Slot::new(inner, server, grant.active))),
            None => {
                // A server this generation of the pool no longer has: give
                // the slot back there and choose again here.
                inner.queues.release(&grant.link, grant.active, false);
                self.target = Target::Balance { avoid: None };
                Ok(None)
            }
        }
    }

    /// After a failed attempt on `slot`'s server: whether to try again
    /// (the target set, the slot given back, HAProxy's pause made) or give
    /// up (false).
    pub(crate) async fn retry(&mut self, slot: Slot, failure: Failure) -> bool {
        let server = slot.server();
        let chooser = &self.inner.chooser;
        let facts = retry::Failure {
            retries_done: self.retries_done,
            server_running: chooser.running(server),
            persistent: self.persistent,
            usable_servers: chooser.usable_count(),
            immediate: failure.immediate,
            reused: failure.reused,
        };
        let Next::Retry { redispatch, wait } =
            retry::after_failure(&self.inner.settings.rules, &facts)
        else {
            return false;
        };
        drop(slot);
        self.retries_done += 1;
        self.seen.redispatched |= redispatch;
        if redispatch {
            self.target = Target::Balance {
                avoid: Some(server),
            };
            self.persistent = false;
        } else {
            self.target = Target::Server(server);
            self.count(server, |c| &c.retries);
        }
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
        true
    }

    /// Adds one to a counter of the server and of the pool.
    pub(crate) fn count(&self, server: usize, which: impl Fn(&Counters) -> &AtomicU64) {
        if let Some(link) = self.inner.links.get(server) {
            Counters::inc(which(&link.counters));
        }
        Counters::inc(which(&self.inner.counters));
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.inner.settings.connect
    }

    /// The client's address.
    pub(crate) fn client(&self) -> SocketAddr {
        self.client
    }

    /// Tells the access log's record the retries, the queue positions and
    /// the pool's and last server's loads now.
    pub(crate) fn trace(&self, t: &mut ServerTrace) {
        let inner = self.inner;
        let server = t.server.and_then(|i| inner.links.get(i));
        let in_flight: u64 = inner.links.iter().map(|l| u64::from(l.active())).sum();
        t.conns.retries = self.retries_done;
        t.conns.redispatched = self.seen.redispatched;
        t.conns.srv_queue = self.seen.srv_queue;
        t.conns.backend_queue = self.seen.backend_queue;
        t.conns.backend = in_flight + u64::from(inner.queues.pool_len());
        t.conns.server = server.map_or(0, |l| u64::from(l.active()));
    }

    /// How a request no server was given to ends: `sQ` when its wait in a
    /// queue expired, else `SC` (no server usable), as HAProxy logs them.
    pub(crate) fn unassigned(&self) -> Termination {
        match self.seen.queue_expired {
            true => Termination::new(Cause::ServerTimeout, Phase::Queue),
            false => Termination::new(Cause::ServerAbort, Phase::Connect),
        }
    }
}

/// A place in a queue, left when the wait ends without a wake-up (timeout,
/// or the request dropped because its client went away).
struct Waiting<'a> {
    inner: &'a Inner,
    ticket: Ticket,
    settled: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let inner = self.inner;
        inner.queues.leave(&mut self.ticket, |link| {
            let at = inner.links.iter().position(|l| Arc::ptr_eq(l, link));
            at.is_some_and(|i| inner.chooser.usable(i))
        });
    }
}
