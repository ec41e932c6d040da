//! What one log line says, as the request path fills it in: the client,
//! the frontend, the pool and server, HAProxy's timers, the status, the
//! bytes, the termination state and the connection and queue counts.
//! Plain data: it is formatted on the log thread, off the request path.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use lb_config::proxy::{LogFormat, ProxyMode};

use super::cookie::CookieTrace;

/// One line's facts.
#[derive(Clone, Debug)]
pub struct Record {
    pub format: LogFormat,
    pub mode: ProxyMode,
    pub client: SocketAddr,
    /// The listening address (the `connect` format's "to").
    pub local: SocketAddr,
    /// HTTP: when the request's first byte came; TCP: the accept.
    pub date: SystemTime,
    pub frontend: Box<str>,
    /// None: no pool took the request (logged as the frontend's name).
    pub backend: Option<Box<str>>,
    /// None: no server was reached (`<NOSRV>`).
    pub server: Option<Box<str>>,
    pub timers: Timers,
    /// 0 when no status was sent (TCP).
    pub status: u16,
    /// Bytes sent to the client (HTTP: head and body).
    pub bytes: u64,
    pub term: Termination,
    pub conns: Conns,
    /// The request line; None: no valid request came (`<BADREQ>`).
    pub request: Option<String>,
}

/// A request as its line quotes it: `METHOD URI VERSION`.
pub fn request_line<B>(req: &hyper::Request<B>) -> String {
    format!("{} {} {:?}", req.method(), req.uri(), req.version())
}

/// HAProxy's timers; None is its `-1` (the event never happened).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timers {
    /// `TR`: from the request's first byte to its complete head.
    pub request: Option<Duration>,
    /// `Tw`: in queues, waiting for a server slot.
    pub queue: Option<Duration>,
    /// `Tc`: establishing the server connection.
    pub connect: Option<Duration>,
    /// `Tr`: from the connection to the complete response head.
    pub response: Option<Duration>,
    /// `Ta` (HTTP: first byte of the request to last byte of the response)
    /// or `Tt` (TCP: accept to close).
    pub total: Duration,
}

/// The connection counts at the line's time, and the retries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conns {
    /// `actconn`: the whole proxy's connections.
    pub active: u64,
    /// `feconn`: the frontend's.
    pub frontend: u64,
    /// `beconn`: the pool's requests, in flight and queued.
    pub backend: u64,
    /// `srv_conn`: the server's requests in flight.
    pub server: u64,
    /// `retries`: further connection attempts.
    pub retries: u32,
    /// The request went to another server after failures (`+` before retries).
    pub redispatched: bool,
    /// `srv_queue`: requests ahead of this one in the server's queue.
    pub srv_queue: u32,
    /// `backend_queue`: ahead of it in the pool's queue.
    pub backend_queue: u32,
}

/// Which side or event ended the stream (HAProxy's first character).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cause {
    /// `-`: a normal end.
    #[default]
    Normal,
    /// `C`: the client aborted.
    ClientAbort,
    /// `S`: the server aborted or refused.
    ServerAbort,
    /// `P`: the proxy refused (invalid request or response, deny).
    Proxy,
    /// `L`: answered locally, never passed to a server (the stats page).
    Local,
    /// `c`: `timeout client` / `timeout http-request`.
    ClientTimeout,
    /// `s`: `timeout server` / `timeout connect` / `timeout queue`.
    ServerTimeout,
}

/// Where the stream was when it ended (HAProxy's second character).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// `-`: after the end of the data.
    #[default]
    Done,
    /// `R`: waiting for the request.
    Request,
    /// `Q`: in a queue.
    Queue,
    /// `C`: connecting to the server.
    Connect,
    /// `H`: waiting for the response head.
    Headers,
    /// `D`: moving data.
    Data,
}

/// The termination state: cause and phase, then the persistence cookie's
/// two characters (`--` when the pool has no cookie).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termination {
    pub cause: Cause,
    pub phase: Phase,
    pub cookie: [u8; 2],
}

impl Default for Termination {
    fn default() -> Self {
        Termination {
            cause: Cause::Normal,
            phase: Phase::Done,
            cookie: *b"--",
        }
    }
}

impl Termination {
    pub fn new(cause: Cause, phase: Phase) -> Self {
        Termination {
            cause,
            phase,
            ..Termination::default()
        }
    }

    /// Its characters: two in TCP mode, four in HTTP.
    pub fn chars(&self, mode: ProxyMode) -> ([u8; 4], usize) {
        let cause = match self.cause {
            Cause::Normal => b'-',
            Cause::ClientAbort => b'C',
            Cause::ServerAbort => b'S',
            Cause::Proxy => b'P',
            Cause::Local => b'L',
            Cause::ClientTimeout => b'c',
            Cause::ServerTimeout => b's',
        };
        let phase = match self.phase {
            Phase::Done => b'-',
            Phase::Request => b'R',
            Phase::Queue => b'Q',
            Phase::Connect => b'C',
            Phase::Headers => b'H',
            Phase::Data => b'D',
        };
        let n = if mode == ProxyMode::Http { 4 } else { 2 };
        ([cause, phase, self.cookie[0], self.cookie[1]], n)
    }

    /// Whether the stream failed (HAProxy's "not normal": logged at `err`
    /// with `log-separate-errors`, kept with `dontlog-normal`). A local
    /// answer is normal, as HAProxy counts it.
    pub fn failed(&self) -> bool {
        !matches!(self.cause, Cause::Normal | Cause::Local)
    }
}

/// What the server side of one request tells the log: filled in by
/// [`crate::upstream::Upstream::forward_logged`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerTrace {
    /// The server's index in the pool, once one was given a slot.
    pub server: Option<usize>,
    pub queue: Option<Duration>,
    pub connect: Option<Duration>,
    pub response: Option<Duration>,
    /// Set when the server side ended the request (no response, or its own).
    pub term: Option<Termination>,
    pub conns: Conns,
    /// The pool's persistence cookie, when it has one.
    pub cookie: Option<CookieTrace>,
}
