//! A connection to a server, driven by the task of the request using it:
//! no task of its own, no channel between the request and the socket. It
//! holds the socket, the bytes read but not used yet, and a write buffer
//! reused from one request to the next.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWriteExt as _, Interest};
use tokio::net::TcpStream;

use super::source::{self, Origin};

/// How much room a read asks the socket to fill at least.
const READ_CHUNK: usize = 16 * 1024;

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connecting to {addr}: {source}")]
    Io { addr: SocketAddr, source: io::Error },
    #[error("connecting to {addr}: no answer within `timeout connect` ({timeout:?})")]
    Timeout { addr: SocketAddr, timeout: Duration },
}

impl ConnectError {
    /// Whether the server answered at once with a refusal or a reset:
    /// HAProxy waits before trying the same server again after such errors
    /// (a timeout has waited already).
    pub(crate) fn is_immediate(&self) -> bool {
        matches!(self, ConnectError::Io { .. })
    }
}

/// An open connection to a server.
#[derive(Debug)]
pub(crate) struct ServerConn {
    io: TcpStream,
    /// Read from the server, not consumed yet.
    pub(crate) buf: BytesMut,
    /// The next request's head (and small body), kept for its capacity.
    pub(crate) wbuf: Vec<u8>,
    /// Exchanges completed on it.
    pub(crate) served: u32,
    /// How it was bound ([`Origin::key`]): only a request from the same
    /// origin may reuse it. Boxed: the common case (no `source`) is a null
    /// pointer, and every response body carries the connection.
    pub(crate) origin: Option<Box<SocketAddr>>,
}

impl ServerConn {
    /// Opens a connection to `addr` from `origin` within `timeout`;
    /// `warned`: whether a failure to bind was logged already.
    pub(crate) async fn connect(
        addr: SocketAddr,
        origin: Origin,
        timeout: Duration,
        warned: &AtomicBool,
    ) -> Result<ServerConn, ConnectError> {
        let connecting = source::connect(addr, origin, warned);
        let io = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => return Err(ConnectError::Timeout { addr, timeout }),
            Ok(Err(source)) => return Err(ConnectError::Io { addr, source }),
            Ok(Ok(io)) => io,
        };
        // Heads and bodies are written whole; waiting to coalesce small
        // writes only adds latency.
        let _ = io.set_nodelay(true);
        Ok(ServerConn {
            io,
            buf: BytesMut::new(),
            wbuf: Vec::new(),
            served: 0,
            origin: origin.key().map(Box::new),
        })
    }

    /// Whether an idle connection can carry a request: the server has not
    /// closed it nor sent anything unasked. Costs no system call unless the
    /// event loop saw it become readable.
    pub(crate) fn is_alive(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        if self.io.poll_read_ready(&mut cx).is_pending() {
            return true;
        }
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// The exchange is over and nothing more is expected: forget that the
    /// socket was readable, so that [`ServerConn::is_alive`] needs no system
    /// call unless the server sends something (a close) from now on. A close
    /// that came in the microseconds since the last read goes unseen; the
    /// next request then finds the connection closed and is retried like
    /// any request lost that way.
    pub(crate) fn settle(&self) {
        let _ = self.io.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }

    /// Reads more into `buf`; Ready(Ok(0)) when the server closed.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        loop {
            ready!(self.io.poll_read_ready(cx))?;
            match self.io.try_read_buf(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }

    /// Reads more into `buf`; Ok(0) when the server closed.
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// Writes `wbuf` whole and empties it.
    pub(crate) async fn flush_wbuf(&mut self) -> io::Result<()> {
        self.io.write_all(&self.wbuf).await?;
        self.wbuf.clear();
        Ok(())
    }

    /// Writes `bytes` whole.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await
    }
}
