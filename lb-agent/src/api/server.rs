//! The control API's HTTP server (hyper 1, HTTP/1.1) on a unix socket and,
//! optionally, on TCP with a bearer token: binding, the accept loop and
//! graceful shutdown. What each request means is in [`routes`].

mod routes;

use std::{
    convert::Infallible,
    fs::Permissions,
    future::Future,
    io,
    net::SocketAddr,
    os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    sync::watch,
    task::JoinSet,
};

use super::RequestSender;
use routes::{Ctx, handle};
pub use routes::{MAX_BODY, vip_matches};

/// How long open connections get to finish their request after shutdown.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// A client that sends no complete header in this time is dropped (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the API on a unix socket until `shutdown` completes.
pub async fn serve_unix(
    path: &Path,
    tx: RequestSender,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    UnixApi::bind(path).await?.serve(tx, shutdown).await
}

/// Serves the API on TCP until `shutdown` completes; every request must carry
/// `Authorization: Bearer <token>`.
pub async fn serve_tcp(
    addr: SocketAddr,
    token: String,
    tx: RequestSender,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    TcpApi::bind(addr, token).await?.serve(tx, shutdown).await
}

/// The API's unix socket, bound (mode 0600) but not yet serving: binding apart
/// from serving lets the agent fail at startup, and tests know when it is ready.
#[derive(Debug)]
pub struct UnixApi {
    listener: UnixListener,
    path: PathBuf,
    /// Inode of the socket file, to remove it at exit only if it is still ours.
    ino: u64,
}

impl UnixApi {
    /// Creates the parent directory (0755) if missing, replaces a stale socket
    /// (one nobody answers on), and binds. Refuses to replace a live socket or
    /// a file that is not a socket. The socket is bound under a temporary name,
    /// made 0600 and renamed into place, so it is never reachable with looser
    /// permissions.
    pub async fn bind(path: &Path) -> io::Result<UnixApi> {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(parent) = parent
            && !tokio::fs::try_exists(parent)
                .await
                .map_err(at("checking", parent))?
        {
            tokio::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .await
                .map_err(at("creating", parent))?;
        }
        remove_stale(path).await?;

        let Some(name) = path.file_name() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a socket file name", path.display()),
            ));
        };
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        match tokio::fs::remove_file(&tmp).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(at("removing", &tmp)(e)),
            _ => {}
        }
        let listener = UnixListener::bind(&tmp).map_err(at("binding", &tmp))?;
        let placed = async {
            tokio::fs::set_permissions(&tmp, Permissions::from_mode(0o600))
                .await
                .map_err(at("setting the mode of", &tmp))?;
            tokio::fs::rename(&tmp, path)
                .await
                .map_err(at("renaming the socket to", path))?;
            Ok(tokio::fs::symlink_metadata(path)
                .await
                .map_err(at("reading", path))?
                .ino())
        };
        match placed.await {
            Ok(ino) => Ok(UnixApi {
                listener,
                path: path.to_owned(),
                ino,
            }),
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    /// Serves until `shutdown`, then lets open requests finish (up to a
    /// deadline) and removes the socket file.
    pub async fn serve(
        self,
        tx: RequestSender,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let ctx = Arc::new(Ctx { tx, token: None });
        tracing::info!(socket = %self.path.display(), "control API listening");
        serve(&self.listener, ctx, shutdown).await;
        // Another agent may have replaced the socket meanwhile: leave theirs.
        if let Ok(m) = tokio::fs::symlink_metadata(&self.path).await
            && m.ino() == self.ino
        {
            tokio::fs::remove_file(&self.path)
                .await
                .map_err(at("removing", &self.path))?;
        }
        Ok(())
    }
}

/// Removes a socket file left by a process that is gone.
async fn remove_stale(path: &Path) -> io::Result<()> {
    let meta = match tokio::fs::symlink_metadata(path).await {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(at("reading", path)(e)),
        Ok(m) => m,
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; not replacing it",
                path.display()
            ),
        ));
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{}: another agent is answering on it", path.display()),
        ));
    }
    tracing::info!(socket = %path.display(), "removing stale control socket");
    tokio::fs::remove_file(path)
        .await
        .map_err(at("removing", path))
}

/// The API on TCP, bound but not yet serving.
#[derive(Debug)]
pub struct TcpApi {
    listener: TcpListener,
    token: String,
}

impl TcpApi {
    /// Binds `addr`. Whitespace around the token is dropped (a token file
    /// ends in a newline); an empty token is refused (it would let anyone in).
    pub async fn bind(addr: SocketAddr, token: String) -> io::Result<TcpApi> {
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the API token is empty; TCP access needs a token",
            ));
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
        Ok(TcpApi { listener, token })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`, then lets open requests finish (up to a deadline).
    pub async fn serve(
        self,
        tx: RequestSender,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let ctx = Arc::new(Ctx {
            tx,
            token: Some(self.token),
        });
        tracing::info!(addr = %self.listener.local_addr()?, "control API listening on TCP");
        serve(&self.listener, ctx, shutdown).await;
        Ok(())
    }
}

/// Adds what was being done, and to which path, to an I/O error.
fn at(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> io::Error {
    let path = path.display().to_string();
    move |e| io::Error::new(e.kind(), format!("{op} {path}: {e}"))
}

/// A listening socket the accept loop can take connections from.
trait Listen {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn next_conn(&self) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

impl Listen for UnixListener {
    type Io = UnixStream;
    async fn next_conn(&self) -> io::Result<UnixStream> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Listen for TcpListener {
    type Io = TcpStream;
    async fn next_conn(&self) -> io::Result<TcpStream> {
        let (s, _) = self.accept().await?;
        s.set_nodelay(true)?;
        Ok(s)
    }
}

/// The accept loop: one task per connection; on shutdown, stops accepting,
/// asks each connection to close after its current request, and waits for
/// them up to [`DRAIN_DEADLINE`] (so the answer to a teardown gets out).
async fn serve<L: Listen>(listener: &L, ctx: Arc<Ctx>, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done {
                    tracing::warn!(error = %e, "API connection task failed");
                }
            }
            accepted = listener.next_conn() => match accepted {
                Ok(io) => {
                    conns.spawn(serve_conn(io, ctx.clone(), stop_rx.clone()));
                }
                Err(e) => {
                    // EMFILE, ECONNABORTED, ...: the listener itself is fine;
                    // back off a little rather than spin.
                    tracing::warn!(error = %e, "accepting an API connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            "closing API connections still open at the drain deadline"
        );
    }
}

async fn serve_conn<I>(io: I, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(handle(&ctx, req).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "API connection ended with an error");
    }
}
