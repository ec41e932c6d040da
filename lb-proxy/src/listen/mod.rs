//! Listening sockets and their accept loops: one socket per bind
//! (`*:80`, `[::]:80` IPv6-only, `ADDR:PORT`), opened with `SO_REUSEPORT`
//! so a replacement can be bound beside a running one during a reload,
//! accepting only while the connection limits allow (see [`limit`]).
//!
//! A listener feeds whichever frontend has its address among its binds in
//! the runtime in force, so a reload may hand the socket to another
//! frontend, or change the frontend's limit, without touching the socket.

pub mod limit;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use lb_config::proxy::Bind;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use limit::{Limit, Slot};

/// Kernel backlog of a listening socket at least (HAProxy sizes it to the
/// frontend's `maxconn`; Linux caps it at `net.core.somaxconn`).
const MIN_BACKLOG: u32 = 1024;
/// Pause after an accept failure that a retry cannot fix at once (out of
/// file descriptors): the backlog holds the connection meanwhile.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Opens a listening socket for `bind`, with `SO_REUSEADDR` and
/// `SO_REUSEPORT`, `IPV6_V6ONLY` as the bind says, and `IP_FREEBIND`: a
/// frontend on a VRRP address listens on a backup too, where the address
/// is not (yet) local, and serves as soon as this node becomes master.
pub fn open(bind: &Bind, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(bind.addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if bind.addr.is_ipv6() {
        socket.set_only_v6(bind.v6only)?;
        socket.set_freebind_v6(true)?;
    } else {
        socket.set_freebind_v4(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&bind.addr.into())?;
    let backlog = backlog.max(MIN_BACKLOG).min(i32::MAX as u32) as i32;
    socket.listen(backlog)?;
    TcpListener::from_std(socket.into())
}

/// What an accept loop hands its frontend.
pub struct Accepted {
    /// The listening address (a bind's), which names the frontend.
    pub bind: SocketAddr,
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// The frontend's and the global connection slots, freed when dropped.
    pub slots: [Slot; 2],
    /// Turns true when the listener is removed or the proxy stops: finish
    /// the request in flight, then close instead of keeping alive.
    pub closing: watch::Receiver<bool>,
}

/// Where accepted connections go: the proxy behind the listeners.
pub trait Acceptor: Send + Sync + 'static {
    /// The connection limit of the frontend listening on `bind`; None when
    /// there is none (the listener is about to be closed).
    fn limit(&self, bind: SocketAddr) -> Option<Arc<Limit>>;
    /// Starts serving a connection accepted on `conn.bind`.
    fn serve(self: Arc<Self>, conn: Accepted);
}

/// How a listener ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    Accepting,
    /// Removed: stop accepting, close the socket, let connections finish.
    Close,
    /// Replaced by another socket on the same address: first accept what
    /// already waits in this one's backlog, then close it.
    HandOver,
}

/// A running listener: its socket's accept loop.
pub struct Listener {
    pub bind: Bind,
    run: watch::Sender<Run>,
    closing: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Listener {
    /// Starts accepting on `socket`.
    pub fn start(
        bind: Bind,
        socket: TcpListener,
        global: Arc<Limit>,
        acceptor: Arc<dyn Acceptor>,
    ) -> Listener {
        let (run, run_rx) = watch::channel(Run::Accepting);
        let (closing, closing_rx) = watch::channel(false);
        let task = tokio::spawn(
            Loop {
                bind: bind.addr,
                socket,
                acceptor,
                global,
                run: run_rx,
                closing: closing_rx,
            }
            .run(),
        );
        Listener {
            bind,
            run,
            closing,
            task,
        }
    }

    /// Stops accepting and closes the socket; connections already accepted
    /// finish their request in flight, then close.
    pub async fn close(self) {
        self.run.send_replace(Run::Close);
        self.closing.send_replace(true);
        let _ = self.task.await;
    }

    /// Closes the socket once a replacement is listening: what waits in
    /// its backlog is accepted first; connections carry on as usual.
    pub async fn hand_over(self) {
        self.run.send_replace(Run::HandOver);
        let _ = self.task.await;
    }
}

/// The accept loop's state.
struct Loop {
    bind: SocketAddr,
    socket: TcpListener,
    acceptor: Arc<dyn Acceptor>,
    global: Arc<Limit>,
    run: watch::Receiver<Run>,
    closing: watch::Receiver<bool>,
}

impl Loop {
    async fn run(mut self) {
        loop {
            let Some(slots) = self.slots().await else {
                break;
            };
            let accepted = tokio::select! {
                biased;
                _ = self.run.wait_for(|r| *r != Run::Accepting) => break,
                r = self.socket.accept() => r,
            };
            match accepted {
                Ok((stream, peer)) => self.serve(stream, peer, slots),
                Err(e) => {
                    tracing::warn!(error = %e, bind = %self.bind, "accepting a connection");
                    if e.raw_os_error().is_some_and(is_fd_exhaustion) {
                        tokio::time::sleep(ACCEPT_PAUSE).await;
                    }
                }
            }
        }
        if *self.run.borrow() == Run::HandOver {
            self.drain_backlog().await;
        }
    }

    /// Both slots, waiting while either limit is reached; None: stop.
    async fn slots(&mut self) -> Option<[Slot; 2]> {
        let limit = self.acceptor.limit(self.bind);
        tokio::select! {
            biased;
            _ = self.run.wait_for(|r| *r != Run::Accepting) => None,
            slots = take_both(limit, &self.global) => Some(slots),
        }
    }

    fn serve(&self, stream: TcpStream, peer: SocketAddr, slots: [Slot; 2]) {
        let Ok(local) = stream.local_addr() else {
            return;
        };
        // Small requests and answers go out at once (as HAProxy does).
        let _ = stream.set_nodelay(true);
        self.acceptor.clone().serve(Accepted {
            bind: self.bind,
            stream,
            peer,
            local,
            slots,
            closing: self.closing.clone(),
        });
    }

    /// Accepts what the kernel already queued for this socket, so a
    /// hand-over refuses none of it.
    async fn drain_backlog(&mut self) {
        loop {
            let Some(limit) = self.acceptor.limit(self.bind) else {
                return;
            };
            let slots = take_both(Some(limit), &self.global).await;
            match self.socket.accept().now_or_never() {
                Some(Ok((stream, peer))) => self.serve(stream, peer, slots),
                Some(Err(_)) | None => return,
            }
        }
    }
}

/// Waits for a slot of the frontend's limit, then of the global one (in
/// that order, so a frontend at its own limit holds no global slot).
/// Without a frontend it waits forever (the caller also waits for a change).
async fn take_both(frontend: Option<Arc<Limit>>, global: &Arc<Limit>) -> [Slot; 2] {
    let Some(frontend) = frontend else {
        return std::future::pending().await;
    };
    let mine = frontend.take().await;
    [mine, global.take().await]
}

/// EMFILE / ENFILE: out of file descriptors; accepting again at once fails again.
fn is_fd_exhaustion(errno: i32) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    errno == EMFILE || errno == ENFILE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(addr: &str, v6only: bool) -> Bind {
        Bind {
            addr: addr.parse().unwrap(),
            v6only,
        }
    }

    #[tokio::test]
    async fn ipv4_and_ipv6_only_wildcards_share_a_port() {
        let v4 = open(&bind("0.0.0.0:0", false), 10).expect("*:0");
        let port = v4.local_addr().unwrap().port();
        let v6 = open(&bind(&format!("[::]:{port}"), true), 10).expect("[::] v6only beside *");
        assert_eq!(v6.local_addr().unwrap().port(), port);
        let v6 = socket2::SockRef::from(&v6);
        assert!(v6.only_v6().unwrap(), "IPv4 clients stay on the `*` socket");
    }

    #[tokio::test]
    async fn a_second_socket_binds_beside_a_running_one() {
        let first = open(&bind("127.0.0.1:0", false), 10).unwrap();
        let addr = first.local_addr().unwrap();
        let second = open(&bind(&addr.to_string(), false), 10).expect("SO_REUSEPORT");
        assert_eq!(second.local_addr().unwrap(), addr);
        // A plain socket without SO_REUSEPORT cannot.
        assert!(std::net::TcpListener::bind(addr).is_err());
    }

    #[tokio::test]
    async fn an_address_this_host_does_not_hold_yet_can_be_bound() {
        // A VRRP backup's frontend: the VIP arrives when it becomes master.
        for addr in ["192.0.2.77:0", "[2001:db8::77]:0"] {
            assert!(
                std::net::TcpListener::bind(addr).is_err(),
                "{addr} is not local"
            );
            let l = open(&bind(addr, addr.starts_with('[')), 10).expect(addr);
            assert_eq!(
                l.local_addr().unwrap().ip(),
                addr.parse::<SocketAddr>().unwrap().ip()
            );
        }
    }
}
