//! The idle connections of one server, kept for the next request
//! (keep-alive towards servers, HAProxy's default).
//!
//! The idle set is a stack behind a short mutex: the most recently used
//! connection is reused first (it is the least likely to have been closed
//! by the server's own keep-alive timeout), and the oldest ones are closed
//! from the bottom once idle longer than [`IDLE_LIFETIME`] or beyond
//! [`MAX_IDLE`]. A connection the server closed while idle is noticed when
//! taken ([`ServerConn::is_alive`]) and skipped.
//!
//! A request takes only a connection opened on its own core
//! ([`crate::cores::home`]): one from another core would be watched by
//! that core's event loop, which would then have to wake this one for
//! every response. With requests spread over the cores, each core keeps
//! connections of its own.
//!
//! While a server has idle connections, a sweeper task looks at them every
//! [`SWEEP_EVERY`] and closes those past their lifetime or closed by the
//! server, so a server that gets no more requests is not left with sockets
//! its side has closed (CLOSE_WAIT) or will close. The task ends when the
//! set is empty and starts again with the next connection kept.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::conn::ServerConn;
use super::link::Link;

/// Idle connections kept per server at most; the oldest are closed first.
/// Bounds file descriptors after a burst; a server's `maxconn`, when lower,
/// bounds them sooner since no more are ever busy at once.
pub(crate) const MAX_IDLE: usize = 1024;

/// An idle connection older than this is closed rather than reused
/// (HAProxy's `pool-purge-delay` default): servers close idle
/// connections on their own timers (nginx: 75 s by default, Apache 5 s), and
/// a request sent just as the server closes is lost.
pub(crate) const IDLE_LIFETIME: Duration = Duration::from_secs(5);

/// How often the sweeper looks at a server's idle connections.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Idle {
    conn: ServerConn,
    since: Instant,
}

/// One server's idle connections.
#[derive(Debug, Default)]
pub(crate) struct IdleConns {
    stack: Mutex<VecDeque<Idle>>,
    /// A sweeper task is running for them; changed under the lock.
    sweeping: AtomicBool,
}

impl IdleConns {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Idle>> {
        // Nothing panics while the lock is held; a poisoned stack is whole.
        self.stack.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used connection from `origin` opened on this
    /// core, still open and fresh, if any. Stale ones met on the way are
    /// dropped (closing them); whether the server closed the one returned
    /// is checked by the caller, outside the lock. The stack is searched
    /// from the top: without a `source` every connection has the same
    /// origin and the first of this core's is taken; with `usesrc
    /// clientip` it has to be the client's own.
    pub(crate) fn take(&self, origin: Option<SocketAddr>) -> Option<ServerConn> {
        let now = Instant::now();
        let home = crate::cores::home();
        let mut stack = self.lock();
        let at = stack.iter().rposition(|idle| {
            idle.conn.home == home && idle.conn.origin.as_deref() == origin.as_ref()
        })?;
        if now.duration_since(stack[at].since) <= IDLE_LIFETIME {
            return stack.remove(at).map(|idle| idle.conn);
        }
        // It is stale, so are the older ones: all are closed, outside the
        // lock.
        let stale: Vec<Idle> = stack.drain(..=at).collect();
        drop(stack);
        drop(stale);
        None
    }

    /// Keeps a connection whose exchange completed, for the next request;
    /// starts the sweeper of `link` (whose set this is) if none runs.
    pub(crate) fn put(&self, conn: ServerConn, link: &std::sync::Arc<Link>) {
        let now = Instant::now();
        let mut stale = Vec::new();
        let start_sweeper = {
            let mut stack = self.lock();
            while let Some(oldest) = stack.front() {
                let expired = now.duration_since(oldest.since) > IDLE_LIFETIME;
                if !expired && stack.len() < MAX_IDLE {
                    break;
                }
                stale.extend(stack.pop_front());
            }
            stack.push_back(Idle { conn, since: now });
            !self.sweeping.swap(true, Relaxed)
        };
        // Closed outside the lock.
        drop(stale);
        if start_sweeper {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn(sweep(std::sync::Arc::downgrade(link)))),
                Err(_) => self.sweeping.store(false, Relaxed),
            }
        }
    }

    /// Closes the connections past [`IDLE_LIFETIME`] or closed by the
    /// server; false when none is left (the sweeper then stops, and the
    /// next [`IdleConns::put`] starts another).
    fn sweep_once(&self) -> bool {
        let now = Instant::now();
        let mut stack = self.lock();
        let mut gone = Vec::new();
        let mut kept = VecDeque::with_capacity(stack.len());
        for mut idle in stack.drain(..) {
            if now.duration_since(idle.since) <= IDLE_LIFETIME && idle.conn.is_alive() {
                kept.push_back(idle);
            } else {
                gone.push(idle);
            }
        }
        *stack = kept;
        let more = !stack.is_empty();
        if !more {
            self.sweeping.store(false, Relaxed);
        }
        drop(stack);
        drop(gone);
        more
    }

    /// Closes every idle connection (the server went down, was put in
    /// maintenance, or left the pool).
    pub(crate) fn clear(&self) {
        let drained: Vec<Idle> = self.lock().drain(..).collect();
        drop(drained);
    }

    /// Idle connections kept now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The sweeper of one server's idle connections: runs while it has some
/// and the server is still part of a pool.
async fn sweep(link: Weak<Link>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(link) = link.upgrade() else {
            return;
        };
        if !link.idle.sweep_once() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::AsyncReadExt as _;
    use tokio::net::TcpListener;

    use super::*;

    /// A connection to a local listener, and the listener's side of it.
    async fn pair() -> (ServerConn, tokio::net::TcpStream, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("an address");
        let origin = super::super::source::Origin::Any;
        let warned = std::sync::atomic::AtomicBool::new(false);
        let mut conn =
            ServerConn::open(addr, origin, Duration::from_secs(5), &warned).expect("connect");
        conn.finish_connect().await.expect("connected");
        let (server, _) = listener.accept().await.expect("accept");
        (conn, server, addr)
    }

    #[tokio::test]
    async fn the_sweeper_closes_connections_past_their_lifetime() {
        // Connected before the clock is paused, so no connect timeout can
        // fire early.
        let (first, mut server1, addr) = pair().await;
        let (second, mut server2, _) = pair().await;
        let link = Arc::new(Link::new("s1", addr, None));
        tokio::time::pause();
        link.idle.put(first, &link);
        tokio::time::sleep(IDLE_LIFETIME - SWEEP_EVERY / 2).await;
        assert_eq!(link.idle.len(), 1, "still fresh");
        tokio::time::sleep(SWEEP_EVERY * 2).await;
        assert_eq!(link.idle.len(), 0, "closed without any new request");
        let mut byte = [0u8; 1];
        assert_eq!(server1.read(&mut byte).await.expect("a clean close"), 0);
        // The sweeper stopped with the set empty; the next connection kept
        // starts another.
        link.idle.put(second, &link);
        tokio::time::sleep(IDLE_LIFETIME + SWEEP_EVERY * 2).await;
        assert_eq!(link.idle.len(), 0);
        assert_eq!(server2.read(&mut byte).await.expect("a clean close"), 0);
    }

    #[tokio::test]
    async fn a_connection_is_reused_only_on_the_core_that_opened_it() {
        let (conn, _server, addr) = pair().await;
        let link = Arc::new(Link::new("s1", addr, None));
        link.idle.put(conn, &link);
        let other = std::thread::spawn({
            let link = link.clone();
            move || {
                crate::cores::pose_as(0);
                link.idle.take(None).is_some()
            }
        });
        assert!(!other.join().expect("the other core"), "not another core's");
        assert!(link.idle.take(None).is_some(), "its own core's");
    }

    #[tokio::test]
    async fn the_sweeper_closes_connections_the_server_closed() {
        let (conn, server, addr) = pair().await;
        let link = Arc::new(Link::new("s1", addr, None));
        link.idle.put(conn, &link);
        drop(server);
        // Real time: the close has to travel through the kernel.
        let deadline = Instant::now() + SWEEP_EVERY * 5;
        while link.idle.len() > 0 {
            assert!(
                Instant::now() < deadline,
                "the closed connection is dropped"
            );
            tokio::time::sleep(SWEEP_EVERY / 10).await;
        }
    }
}
