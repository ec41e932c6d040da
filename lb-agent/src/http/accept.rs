//! The accept loop every listener runs: one task per connection, a timeout
//! on reading request heads, and on shutdown a drain with a deadline.

use std::{convert::Infallible, future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    task::JoinSet,
};

use super::{Policy, Shared, body::HttpRequest, handle};

/// How long open connections get to finish their answer after shutdown.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// A client that sends no complete request head in this time is dropped (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (EMFILE and the like) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A TCP connection's two ends, in each of its requests' extensions (the
/// stats page's access log names the client).
#[derive(Clone, Copy, Debug)]
pub(super) struct Addrs {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

/// A listening socket the accept loop can take connections from.
pub(super) trait Listen {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn next_conn(&self) -> impl Future<Output = io::Result<(Self::Io, Option<Addrs>)>> + Send;
}

impl Listen for UnixListener {
    type Io = UnixStream;
    async fn next_conn(&self) -> io::Result<(UnixStream, Option<Addrs>)> {
        self.accept().await.map(|(s, _)| (s, None))
    }
}

impl Listen for TcpListener {
    type Io = TcpStream;
    async fn next_conn(&self) -> io::Result<(TcpStream, Option<Addrs>)> {
        let (s, peer) = self.accept().await?;
        s.set_nodelay(true)?;
        let addrs = s.local_addr().ok().map(|local| Addrs { peer, local });
        Ok((s, addrs))
    }
}

/// Serves `listener` under `policy` until the agent stops; then stops
/// accepting, asks each connection to close after its current answer, and
/// waits for them up to [`DRAIN_DEADLINE`] (so the answer to a teardown gets out).
pub(super) async fn run<L: Listen>(listener: &L, policy: Policy, shared: Arc<Shared>) {
    let policy = Arc::new(policy);
    let mut stop = std::pin::pin!(shared.stopped());
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done {
                    tracing::warn!(error = %e, "HTTP connection task failed");
                }
            }
            accepted = listener.next_conn() => match accepted {
                Ok((io, addrs)) => {
                    conns.spawn(serve_conn(io, addrs, policy.clone(), shared.clone()));
                }
                Err(e) => {
                    // EMFILE, ECONNABORTED, ...: the listener itself is fine.
                    tracing::warn!(error = %e, "accepting an HTTP connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            "closing HTTP connections still open at the drain deadline"
        );
    }
}

async fn serve_conn<I>(io: I, addrs: Option<Addrs>, policy: Arc<Policy>, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stop = shared.stopped();
    let svc = service_fn(move |mut req: HttpRequest| {
        if let Some(a) = addrs {
            req.extensions_mut().insert(a);
        }
        let (policy, shared) = (policy.clone(), shared.clone());
        async move { Ok::<_, Infallible>(handle(&shared, &policy, req).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stop => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}
