//! Building a connection's or a request's [`Record`] as it goes: the
//! client side tells what it saw of each exchange ([`Exchange`]), the
//! routing and the server side the rest ([`RequestLog`]); a TCP connection
//! and HAProxy's accept-time line are made whole at once ([`tcp`],
//! [`connect`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lb_config::proxy::{LogFormat, ProxyMode};
use tokio::time::Instant;

use super::Setup;
use super::record::{Cause, Conns, Phase, Record, ServerTrace, Termination, Timers};
use crate::front::{Client, FrontCounters};
use crate::listen::Limit;
use crate::upstream::{RelayError, Relayed, Upstream};

/// What the client side saw of one exchange, or of a request that never
/// came whole.
#[derive(Clone, Copy, Debug)]
pub struct Exchange {
    /// The request's first byte; None: nothing came.
    pub started: Option<Instant>,
    /// The request head complete; None: it never was.
    pub head: Option<Instant>,
    /// The status sent (or, with nothing sent, HAProxy's for the case).
    pub status: u16,
    /// Bytes written to the client.
    pub bytes: u64,
    /// How the client side ended it, when it failed there.
    pub term: Option<Termination>,
}

/// The gauges every line carries, read when it is made.
#[derive(Clone, Debug)]
pub(crate) struct Gauges {
    /// The whole proxy's connections (`actconn`).
    pub global: Arc<Limit>,
    /// The frontend's (`feconn`).
    pub counters: Arc<FrontCounters>,
}

impl Gauges {
    fn conns(&self, server_side: Conns) -> Conns {
        Conns {
            active: u64::from(self.global.used()),
            frontend: self
                .counters
                .active
                .load(std::sync::atomic::Ordering::Relaxed),
            ..server_side
        }
    }
}

/// One HTTP connection's log: what the current request met.
#[derive(Debug)]
pub(crate) struct RequestLog {
    setup: Arc<Setup>,
    client: Client,
    gauges: Gauges,
    request: Option<String>,
    backend: Option<Box<str>>,
    server: Option<Box<str>>,
    /// Filled in by the server side.
    pub trace: ServerTrace,
    /// Set when routing ended the request (a deny rule).
    routed: Option<Termination>,
}

impl RequestLog {
    pub(crate) fn new(setup: Arc<Setup>, client: Client, gauges: Gauges) -> Self {
        RequestLog {
            setup,
            client,
            gauges,
            request: None,
            backend: None,
            server: None,
            trace: ServerTrace::default(),
            routed: None,
        }
    }

    /// A new request: what the last one met is forgotten.
    pub(crate) fn begin<B>(&mut self, req: &hyper::Request<B>) {
        self.request = Some(super::record::request_line(req));
        self.backend = None;
        self.server = None;
        self.trace = ServerTrace::default();
        self.routed = None;
    }

    /// A deny rule answered (HAProxy's `PR`).
    pub(crate) fn denied(&mut self) {
        self.routed = Some(Termination::new(Cause::Proxy, Phase::Request));
    }

    /// The request went to `pool`; its server side has filled in `trace`.
    pub(crate) fn forwarded(&mut self, pool: &Upstream) {
        self.backend = Some(pool.name().into());
        self.server = self
            .trace
            .server
            .and_then(|i| pool.links().get(i))
            .map(|l| l.name().into());
    }

    /// The exchange ended: its line is queued (unless `dontlognull`
    /// drops a connection that sent nothing).
    pub(crate) fn end(&mut self, x: Exchange) {
        let Some(started) = x.started else {
            if !self.setup.dontlognull {
                let r = self.record(x, Instant::now(), None);
                self.setup.submit(r);
            }
            return;
        };
        let request = if x.head.is_some() {
            self.request.take()
        } else {
            None
        };
        let r = self.record(x, started, request);
        self.setup.submit(r);
    }

    fn record(&mut self, x: Exchange, started: Instant, request: Option<String>) -> Record {
        let t = &self.trace;
        let mut term = x.term.or(self.routed).or(t.term).unwrap_or_default();
        if let Some(c) = t.cookie {
            term.cookie = c.letters(t.server);
        }
        Record {
            format: self.setup.format,
            mode: ProxyMode::Http,
            client: self.client.peer,
            local: self.client.local,
            date: SystemTime::now() - started.elapsed(),
            frontend: self.setup.frontend.clone(),
            backend: self.backend.take(),
            server: self.server.take(),
            timers: Timers {
                request: x.head.map(|h| h.saturating_duration_since(started)),
                queue: t.queue,
                connect: t.connect,
                response: t.response,
                total: started.elapsed(),
            },
            status: x.status,
            bytes: x.bytes,
            term,
            conns: self.gauges.conns(t.conns),
            request,
        }
    }
}

/// A `mode tcp` connection's line, once it ended (`dontlognull`: none for
/// one whose client sent nothing).
pub(crate) struct TcpEnd<'a> {
    pub setup: &'a Arc<Setup>,
    pub client: Client,
    pub gauges: &'a Gauges,
    pub accepted: Instant,
    pub pool: Option<&'a Upstream>,
    pub trace: &'a ServerTrace,
    pub result: Option<&'a Result<Relayed, RelayError>>,
}

pub(crate) fn tcp(end: TcpEnd) {
    let relayed = end.result.and_then(|r| r.as_ref().ok());
    let sent = relayed.map_or(0, |r| r.bytes_in);
    if end.setup.dontlognull && sent == 0 {
        return;
    }
    let t = end.trace;
    let server = end
        .pool
        .zip(t.server)
        .and_then(|(p, i)| p.links().get(i))
        .map(|l| l.name().into());
    end.setup.submit(Record {
        format: end.setup.format,
        mode: ProxyMode::Tcp,
        client: end.client.peer,
        local: end.client.local,
        date: SystemTime::now() - end.accepted.elapsed(),
        frontend: end.setup.frontend.clone(),
        backend: end.pool.map(|p| p.name().into()),
        server,
        timers: Timers {
            queue: t.queue,
            connect: t.connect,
            total: end.accepted.elapsed(),
            ..Timers::default()
        },
        status: 0,
        bytes: relayed.map_or(0, |r| r.bytes_out),
        term: t.term.unwrap_or_default(),
        conns: end.gauges.conns(t.conns),
        request: None,
    });
}

/// HAProxy's default line, at accept, for a frontend with `log` targets
/// but neither `httplog` nor `tcplog`.
pub(crate) fn connect(setup: &Arc<Setup>, client: Client) {
    setup.submit(Record {
        format: LogFormat::Connect,
        mode: setup.mode,
        client: client.peer,
        local: client.local,
        date: SystemTime::now(),
        frontend: setup.frontend.clone(),
        backend: None,
        server: None,
        timers: Timers {
            total: Duration::ZERO,
            ..Timers::default()
        },
        status: 0,
        bytes: 0,
        term: Termination::default(),
        conns: Conns::default(),
        request: None,
    });
}

/// How a response that could not be written whole ended: the client went
/// away (`CD`) or silent (`cD`), or the server's body failed (`SD`, `sD`).
pub(crate) fn write_failed(e: &crate::front::write::WriteError) -> Termination {
    use crate::front::write::WriteError;
    let cause = match e {
        WriteError::Io(_) => Cause::ClientAbort,
        WriteError::Timeout(_) => Cause::ClientTimeout,
        WriteError::Body {
            server_timeout: true,
            ..
        } => Cause::ServerTimeout,
        WriteError::Body { .. } | WriteError::Length { .. } => Cause::ServerAbort,
    };
    Termination::new(cause, Phase::Data)
}
