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
use tokio::time::Instant;

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
    /// The core whose event loop watches it ([`crate::cores::home`]): only
    /// a request on that core reuses it.
    pub(crate) home: u32,
    /// Set until the handshake is known to have ended.
    connecting: Option<Box<Connecting>>,
}

/// A handshake that may still be under way.
#[derive(Debug)]
struct Connecting {
    addr: SocketAddr,
    timeout: Duration,
    /// When `timeout connect` runs out.
    deadline: Instant,
}

impl ServerConn {
    /// Starts a connection to `addr` from `origin` for a request that is
    /// ready to go; the handshake may still be under way, within `timeout`,
    /// until [`ServerConn::finish_connect`]. `warned`: whether a failure to
    /// bind was logged already.
    pub(crate) fn open(
        addr: SocketAddr,
        origin: Origin,
        timeout: Duration,
        warned: &AtomicBool,
    ) -> Result<ServerConn, ConnectError> {
        let io = source::start(addr, origin, warned)
            .map_err(|source| ConnectError::Io { addr, source })?;
        Ok(ServerConn {
            io,
            buf: BytesMut::new(),
            wbuf: Vec::new(),
            served: 0,
            origin: origin.key().map(Box::new),
            home: crate::cores::home(),
            connecting: Some(Box::new(Connecting {
                addr,
                timeout,
                deadline: Instant::now() + timeout,
            })),
        })
    }

    /// Ends the handshake of a new connection, sending what `wbuf` holds
    /// (the request's head) as it does: at once when the connection is up,
    /// as it usually is on a fast network by the time the request is
    /// ready — the request then costs no wait for writability and leaves
    /// with the handshake's last ACK — else once the handshake ends, within
    /// `timeout connect`. Ok: when the connection came up (now for one
    /// that was up already). An error here means nothing was sent: the
    /// request may go to another server.
    pub(crate) async fn finish_connect(&mut self) -> Result<Instant, ConnectError> {
        let Some(c) = self.connecting.take() else {
            return Ok(Instant::now());
        };
        let io_error = |source| ConnectError::Io {
            addr: c.addr,
            source,
        };
        // Past tokio's readiness, which knows nothing until the event loop
        // has seen the socket.
        let sock = socket2::SockRef::from(&self.io);
        match sock.send_with_flags(&self.wbuf, libc::MSG_NOSIGNAL) {
            Ok(n) => {
                self.wbuf.drain(..n);
                return Ok(Instant::now());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(io_error(e)),
        }
        match tokio::time::timeout_at(c.deadline, self.io.writable()).await {
            Err(_) => Err(ConnectError::Timeout {
                addr: c.addr,
                timeout: c.timeout,
            }),
            Ok(Err(e)) => Err(io_error(e)),
            Ok(Ok(())) => match self.io.take_error() {
                Ok(None) => Ok(Instant::now()),
                Ok(Some(e)) | Err(e) => Err(io_error(e)),
            },
        }
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
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let wbuf = std::mem::take(&mut self.wbuf);
        let (wbuf, sent) = crate::cork::write(&self.io, wbuf).await;
        self.wbuf = wbuf;
        self.io.write_all(&self.wbuf[sent?..]).await?;
        self.wbuf.clear();
        Ok(())
    }

    /// Writes `bytes` whole.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;
    use tokio::net::TcpListener;

    use super::*;

    fn open(addr: SocketAddr) -> Result<ServerConn, ConnectError> {
        let warned = AtomicBool::new(false);
        ServerConn::open(addr, Origin::Any, Duration::from_secs(5), &warned)
    }

    /// The request staged before the handshake ends leaves with it: the
    /// server reads it, and the caller learns when the connection came up.
    #[tokio::test]
    async fn the_first_write_ends_the_handshake_and_carries_the_request() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut conn = open(listener.local_addr().expect("an address")).expect("opened");
        conn.wbuf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let opened = Instant::now();
        let up = conn.finish_connect().await.expect("connected");
        assert!(up >= opened, "it came up after it was opened");
        conn.flush_wbuf().await.expect("the rest, if any");
        let (mut server, _) = listener.accept().await.expect("accept");
        let mut got = vec![0; 18];
        server.read_exact(&mut got).await.expect("the request");
        assert_eq!(got, b"GET / HTTP/1.1\r\n\r\n");
        conn.finish_connect().await.expect("a no-op once up");
    }

    /// A server that refuses is a connect error, which lets the request go
    /// elsewhere: nothing was sent.
    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("an address")
        }; // closed: nothing listens there now
        let mut conn = open(addr).expect("the connect starts");
        conn.wbuf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        match conn.finish_connect().await {
            Err(e @ ConnectError::Io { .. }) => assert!(e.is_immediate(), "{e}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
