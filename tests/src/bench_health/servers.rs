//! The rig's servers: one TCP listener per server in the client namespace,
//! all served by one thread. A TCP check only needs the handshake, which the
//! kernel completes, but each listener still accepts its connections (a
//! queue of unaccepted ones would hold memory and, once full, drop SYNs) and
//! closes each when the checker has closed its side, as a server waiting
//! for a request does. Closing first instead would leave the server in
//! TIME_WAIT, and a later check that happens to reuse the same source port
//! would get its SYN answered by that old connection and retried a second
//! later: a failed check that real servers do not cause.
//!
//! A listener holds one connection at a time (the kernel queues the next
//! ones, handshake done), and takes one only while the descriptors allow
//! (a semaphore sized by the open-file limit), so the process never runs
//! out. A task per connection did: after any stall each listener accepted
//! a whole queue before those tasks ran, accepts failed for want of
//! descriptors, and the queues overflowed into dropped SYNs (failed checks
//! that were the rig's fault).
//!
//! Killing a server closes its listener, so the next check gets a reset;
//! restoring it listens again.

use std::{
    collections::BTreeMap,
    net::TcpListener as StdListener,
    sync::{Arc, mpsc},
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, ensure};
use tokio::{
    io::{AsyncReadExt as _, Interest, unix::AsyncFd},
    net::TcpStream,
    sync::{Semaphore, oneshot},
};

use super::{
    fds,
    layout::{Layout, Server},
    unix_ms,
};
use crate::netns::NetNs;

/// How long a listener task may take to close its socket when asked.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a server holds one connection waiting for the peer to close.
const HOLD: Duration = Duration::from_secs(2);

/// Descriptors left for everything else this process opens (maps, pipes).
const RESERVE: usize = 1024;

/// The fewest connections worth holding at once.
const MIN_HELD: usize = 256;

/// How many connections the listeners may hold at once: one per server if
/// the open-file limit allows, else what it leaves after the listeners.
fn held_connections(servers: usize) -> Result<usize> {
    let want = 2 * servers + RESERVE;
    let limit = fds::raise_to(want)?;
    let held = limit.saturating_sub(servers + RESERVE).min(servers);
    ensure!(
        held >= MIN_HELD.min(servers),
        "the open-file limit ({limit}) leaves no room for the connections of {servers} servers: \
         raise the hard limit (`ulimit -Hn`) to {want}"
    );
    Ok(held)
}

/// A request to close: the task answers with the time its socket closed.
type CloseRequest = mpsc::Sender<(Server, u64)>;

/// The listeners, alive until dropped.
pub struct Servers {
    ns: String,
    runtime: tokio::runtime::Handle,
    /// Per listening server, the way to ask its task to close it.
    open: BTreeMap<Server, oneshot::Sender<CloseRequest>>,
    /// One per connection the listeners may hold at once.
    permits: Arc<Semaphore>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Servers {
    /// Listens on every server of `layout` inside `ns`.
    pub fn start(ns: &NetNs, layout: &Layout) -> Result<Servers> {
        let permits = Arc::new(Semaphore::new(held_connections(layout.servers)?));
        let (tx, rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench-servers".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build();
                match rt {
                    Ok(rt) => {
                        let _ = tx.send(Ok(rt.handle().clone()));
                        let _ = rt.block_on(stopped);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
            .context("starting the servers' thread")?;
        let runtime = rx
            .recv()
            .context("the servers' thread ended at start")?
            .context("building the servers' runtime")?;
        let mut s = Servers {
            ns: ns.name().to_owned(),
            runtime,
            open: BTreeMap::new(),
            permits,
            stop: Some(stop),
            thread: Some(thread),
        };
        s.listen(layout.all().collect())?;
        Ok(s)
    }

    /// Listens on `servers` (again).
    pub fn listen(&mut self, servers: Vec<Server>) -> Result<()> {
        let ns = NetNs::open(&self.ns)?;
        let bound = ns.try_run(|| {
            servers
                .iter()
                .map(|s| {
                    let l = StdListener::bind(s.socket())
                        .with_context(|| format!("listening on {}", s.socket()))?;
                    l.set_nonblocking(true)?;
                    Ok((*s, l))
                })
                .collect::<Result<Vec<_>>>()
        })??;
        for (server, listener) in bound {
            let (close, closing) = oneshot::channel();
            self.runtime
                .spawn(serve(server, listener, self.permits.clone(), closing));
            self.open.insert(server, close);
        }
        Ok(())
    }

    /// Closes the listeners of `servers`; returns when each closed (Unix ms).
    pub fn close(&mut self, servers: &[Server]) -> Result<BTreeMap<Server, u64>> {
        let (tx, rx) = mpsc::channel();
        for s in servers {
            let close = self
                .open
                .remove(s)
                .with_context(|| format!("server {} is not listening", s.socket()))?;
            close
                .send(tx.clone())
                .map_err(|_| anyhow!("the task of server {} is gone", s.socket()))?;
        }
        let mut closed = BTreeMap::new();
        while closed.len() < servers.len() {
            let (s, at) = rx
                .recv_timeout(CLOSE_TIMEOUT)
                .context("a listener did not close within 5 s")?;
            closed.insert(s, at);
        }
        Ok(closed)
    }

    /// How many servers listen.
    pub fn listening(&self) -> usize {
        self.open.len()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves the listener until asked to close it; answers with the time it
/// closed (the listener and any connection it held are gone by then).
async fn serve(
    server: Server,
    listener: StdListener,
    permits: Arc<Semaphore>,
    closing: oneshot::Receiver<CloseRequest>,
) {
    // SAFETY: the listener owns its descriptor, which stays open and the
    // same until the AsyncFd (which owns the listener) is dropped.
    let registered = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) };
    let Ok(listener) = registered else {
        eprintln!("lb-lab: cannot serve {}", server.socket());
        return;
    };
    let asked = tokio::select! {
        biased;
        asked = closing => asked.ok(),
        () = accept_forever(listener, permits) => None,
    };
    if let Some(reply) = asked {
        let _ = reply.send((server, unix_ms()));
    }
}

/// Accepts one connection at a time, once a connection is waiting and a
/// permit is free, and holds it until the peer closes it (or [`HOLD`]
/// passed: a peer cut off by the black hole never says).
async fn accept_forever(listener: AsyncFd<StdListener>, permits: Arc<Semaphore>) {
    loop {
        let Ok(mut ready) = listener.readable().await else {
            return;
        };
        let Ok(_permit) = permits.acquire().await else {
            return;
        };
        let stream = match ready.try_io(|l| l.get_ref().accept()) {
            Ok(Ok((s, _))) => s
                .set_nonblocking(true)
                .and_then(|()| TcpStream::from_std(s)),
            Ok(Err(e)) => Err(e),
            // Someone else's readiness: wait again.
            Err(_) => continue,
        };
        match stream {
            Ok(s) => {
                let _ = tokio::time::timeout(HOLD, until_closed(s)).await;
            }
            // Out of file descriptors or the like: let it pass, try again.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Waits until the peer closes or resets the connection.
async fn until_closed(mut stream: TcpStream) {
    let mut buf = [0u8; 512];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}
