//! The page's access log (`stats.log`): one HAProxy httplog line per
//! request, made and sent by lb-proxy's log module (the same record,
//! format, queue and targets as a frontend's). HAProxy names its stats
//! answers `NAME NAME/<STATS>` with the termination state `LR--` (answered
//! locally, never passed to a server); `stats.name` is the NAME.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use hyper::body::Body as _;
use hyper::{Method, Version, header};
use lb_config::proxy::{LogFormat, ProxyMode};
use lb_config::stats::StatsConfig;
use lb_proxy::log::{Cause, Conns, Phase, Record, Setup, Termination, Timers, request_line};
use tokio::time::Instant;

use super::super::accept::Addrs;
use super::super::body::HttpResponse;

/// HAProxy's server name for its stats page.
const STATS_SERVER: &str = "<STATS>";
/// The `date:` line the HTTP server adds to every answer.
const DATE_LINE: usize = "date: Mon, 30 Nov 2026 04:13:58 GMT\r\n".len();

/// Who answered, as the line tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answered {
    /// The page (`<STATS>`): `Tr` is how long it took.
    Page,
    /// The page asked for credentials: `<STATS>` without `Tr`, as HAProxy
    /// logs its `stats auth` challenge.
    Challenge,
    /// A path that is not the page's: `<NOSRV>`, no `Tw`, `Tc` or `Tr`.
    Elsewhere,
}

/// How the page logs, and the requests it is answering.
#[derive(Debug)]
pub(super) struct PageLog {
    setup: Arc<Setup>,
    /// Requests being answered: the lines' `actconn` and `feconn`.
    answering: Arc<AtomicU64>,
}

impl PageLog {
    /// None when `stats.log` has no target.
    pub(super) fn new(cfg: &StatsConfig, tag: &str) -> Option<PageLog> {
        let setup = Setup::named(&cfg.name, ProxyMode::Http, &cfg.log, tag)?;
        Some(PageLog {
            setup,
            answering: Arc::default(),
        })
    }

    /// A request came: its line is made when [`Entry::end`] is called.
    pub(super) fn begin<B>(&self, req: &hyper::Request<B>) -> Entry {
        self.answering.fetch_add(1, Relaxed);
        Entry {
            setup: self.setup.clone(),
            answering: self.answering.clone(),
            started: Instant::now(),
            date: SystemTime::now(),
            addrs: req.extensions().get::<Addrs>().copied(),
            request: request_line(req),
            head_only: *req.method() == Method::HEAD,
            connection: connection_line(req),
        }
    }
}

/// One request being answered. Dropped without [`Entry::end`] (the client
/// went away first), it logs nothing.
pub(super) struct Entry {
    setup: Arc<Setup>,
    answering: Arc<AtomicU64>,
    started: Instant,
    date: SystemTime,
    addrs: Option<Addrs>,
    request: String,
    head_only: bool,
    /// The length of the `connection` line the HTTP server will add.
    connection: usize,
}

impl Entry {
    /// The answer is ready: its line is queued.
    pub(super) fn end(mut self, resp: &HttpResponse, answered: Answered) {
        let record = self.record(resp, answered);
        self.setup.submit(record);
    }

    fn record(&mut self, resp: &HttpResponse, answered: Answered) -> Record {
        let took = self.started.elapsed();
        let zero = Some(Duration::ZERO);
        let (queue, connect, response) = match answered {
            Answered::Page => (zero, zero, Some(took)),
            Answered::Challenge => (zero, zero, None),
            Answered::Elsewhere => (None, None, None),
        };
        let unknown = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let answering = self.answering.load(Relaxed);
        Record {
            format: LogFormat::Http,
            mode: ProxyMode::Http,
            client: self.addrs.map_or(unknown, |a| a.peer),
            local: self.addrs.map_or(unknown, |a| a.local),
            date: self.date,
            frontend: self.setup.frontend.clone(),
            backend: Some(self.setup.frontend.clone()),
            server: (answered != Answered::Elsewhere).then(|| STATS_SERVER.into()),
            // The HTTP server hands the request over with its head whole:
            // when its first byte came is not known, and it took no time
            // worth telling for a page's small requests.
            timers: Timers {
                request: zero,
                queue,
                connect,
                response,
                total: took,
            },
            status: resp.status().as_u16(),
            bytes: sent(resp, self.head_only, self.connection),
            term: Termination::new(Cause::Local, Phase::Request),
            conns: Conns {
                active: answering,
                frontend: answering,
                ..Conns::default()
            },
            request: Some(std::mem::take(&mut self.request)),
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.answering.fetch_sub(1, Relaxed);
    }
}

/// The `connection` line the HTTP server (hyper) adds to an answer
/// without one: `close` for an HTTP/1.1 client that asked to close,
/// `keep-alive` for an HTTP/1.0 one that asked to keep the connection.
fn connection_line<B>(req: &hyper::Request<B>) -> usize {
    let asks = |token: &str| {
        let values = req.headers().get_all(header::CONNECTION).iter();
        values
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    match req.version() {
        Version::HTTP_11 if asks("close") => "connection: close\r\n".len(),
        Version::HTTP_10 if asks("keep-alive") => "connection: keep-alive\r\n".len(),
        _ => 0,
    }
}

/// The bytes the answer takes on the wire: its status line and headers,
/// the `date`, `content-length` and `connection` (`connection`, as
/// [`connection_line`] says) lines the HTTP server adds, and the body
/// (none for a HEAD).
fn sent(resp: &HttpResponse, head_only: bool, connection: usize) -> u64 {
    let reason = resp.status().canonical_reason().unwrap_or("");
    let mut head = "HTTP/1.1 200 \r\n".len() + reason.len();
    for (name, value) in resp.headers() {
        head += name.as_str().len() + ": \r\n".len() + value.len();
    }
    let body = resp.body().size_hint().exact().unwrap_or(0);
    if !resp.headers().contains_key(header::CONTENT_LENGTH) {
        head += "content-length: \r\n".len() + body.to_string().len();
    }
    if !resp.headers().contains_key(header::DATE) {
        head += DATE_LINE;
    }
    if !resp.headers().contains_key(header::CONNECTION) {
        head += connection;
    }
    head += "\r\n".len();
    let body = if head_only { 0 } else { body };
    head as u64 + body
}

#[cfg(test)]
mod tests;
