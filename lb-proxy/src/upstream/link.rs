//! What the server side keeps per server: its address and `maxconn`, its
//! load (requests in flight and waiting, which balancers read through
//! [`crate::servers::Load`]), its idle connections and its counters.
//! Shared by every request to the server and carried across rebuilds and
//! reloads by server name (and address), so connections stay warm, counts
//! stay right and counters keep running.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::counters::Counters;
use super::pool::IdleConns;

/// One server, as the server side sees it.
#[derive(Debug)]
pub struct Link {
    name: Box<str>,
    addr: SocketAddr,
    /// 0: none.
    maxconn: AtomicU32,
    active: AtomicU32,
    queued: AtomicU32,
    pub(crate) idle: IdleConns,
    pub(crate) counters: Counters,
}

impl Link {
    pub fn new(name: &str, addr: SocketAddr, maxconn: Option<u32>) -> Self {
        Link {
            name: name.into(),
            addr,
            maxconn: AtomicU32::new(maxconn.unwrap_or(0)),
            active: AtomicU32::new(0),
            queued: AtomicU32::new(0),
            idle: IdleConns::default(),
            counters: Counters::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests served at once at most; more wait.
    pub fn maxconn(&self) -> Option<u32> {
        Some(self.maxconn.load(Relaxed)).filter(|m| *m != 0)
    }

    /// Requests being served now (HAProxy's `served`).
    pub fn active(&self) -> u32 {
        self.active.load(Relaxed)
    }

    /// Requests waiting in this server's own queue.
    pub fn queued(&self) -> u32 {
        self.queued.load(Relaxed)
    }

    /// Counts a request as served until the guard is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> Active {
        self.active.fetch_add(1, Relaxed);
        Active(Arc::clone(self))
    }

    /// Takes one of the `maxconn` slots, atomically, if one is free (any
    /// number when there is no `maxconn`).
    pub(crate) fn try_start(self: &Arc<Self>) -> Option<Active> {
        let Some(max) = self.maxconn() else {
            return Some(self.start());
        };
        self.active
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Active(Arc::clone(self)))
    }

    /// Counts a request as waiting in this server's queue until the guard
    /// is dropped.
    pub(crate) fn wait(self: &Arc<Self>) -> Queued {
        self.queued.fetch_add(1, Relaxed);
        Queued(Arc::clone(self))
    }

    /// A reload changed `maxconn`: requests above a lowered limit finish,
    /// no new one starts until the count is under it.
    pub(crate) fn set_maxconn(&self, maxconn: Option<u32>) {
        self.maxconn.store(maxconn.unwrap_or(0), Relaxed);
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Idle connections kept for reuse now.
    pub fn idle_connections(&self) -> usize {
        self.idle.len()
    }
}

impl crate::servers::Load for Link {
    fn active(&self) -> u32 {
        Link::active(self)
    }

    fn queued(&self) -> u32 {
        Link::queued(self)
    }
}

/// A request served by a server (one of its slots); the count ends when
/// dropped. Handed from a finished request to a waiting one as is.
#[derive(Debug)]
pub(crate) struct Active(Arc<Link>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// A request waiting in a server's queue; the count ends when dropped.
#[derive(Debug)]
pub(crate) struct Queued(Arc<Link>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Relaxed);
    }
}
