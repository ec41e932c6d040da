//! What the server side asks of the decision logic (the persistence
//! cookie, the pool's balancer, the servers' states): the only seam
//! between deciding and doing. Servers are named by their index in the
//! pool, the same index as [`super::Upstream`]'s links.

use std::net::SocketAddr;

use hyper::http::request::Parts;
use hyper::{HeaderMap, Method, StatusCode};

use crate::cookie::SetCookie;

/// What the persistence cookie of a request says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persisted {
    /// No cookie: balance (and, with `insert`, set the cookie on the
    /// response).
    No,
    /// A cookie naming no server of the pool (or empty): as `No`, logged
    /// apart.
    Invalid,
    /// The cookie names this server and it may take the request: usable,
    /// or draining (persistent clients keep a draining server, as HAProxy's
    /// drained servers keep their sticky sessions).
    To(usize),
    /// The cookie names this server but it is down or in maintenance: the
    /// request is balanced (HAProxy 2.6 does so with or without `option
    /// redispatch`) and, with `insert`, the cookie set anew.
    Down(usize),
}

/// What the balancer picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    Server(usize),
    /// Every usable server is at its `maxconn`: wait in the pool's queue.
    AllFull,
    /// No server is usable: 503.
    NoServer,
}

/// The request as the balancer sees it: an HTTP request's head, or for a
/// TCP connection only the client's address.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub head: Option<&'a Parts>,
    pub client: SocketAddr,
}

/// The decision logic of one pool, as the server side drives it.
pub trait Chooser: Send + Sync + 'static {
    /// Reads the persistence cookie, and removes it from the request when
    /// the mode says so (`indirect`, `prefix`).
    fn persisted(&self, headers: &mut HeaderMap) -> Persisted;

    /// Whether the access log gives the pool's cookie letters.
    fn logs_cookie(&self) -> bool;

    /// A server for the request, not `avoid` when another will do (the one
    /// that just failed). Skips servers that are full
    /// ([`crate::servers::Server::is_full`]) when the algorithm may choose
    /// freely (round robin, leastconn); a hash returns its server even when
    /// full, and the request waits for it.
    fn pick(&self, subject: Subject<'_>, avoid: Option<usize>) -> Pick;

    /// The server is up and not in maintenance (it may be draining).
    fn running(&self, server: usize) -> bool;

    /// The server takes new balanced requests: running, not draining,
    /// weight above 0. Only such a server takes requests from the pool's
    /// queue.
    fn usable(&self, server: usize) -> bool;

    /// Servers usable now.
    fn usable_count(&self) -> usize;

    /// Applies the cookie rules to a server's response (its `headers`):
    /// `Set-Cookie` insert, rewrite or prefix, `Cache-Control: private` for
    /// `nocache`. Returns what was done, for the access log.
    fn on_response(&self, answered: Answered<'_>, headers: &mut HeaderMap) -> SetCookie;
}

/// A server's response as the cookie rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Answered<'a> {
    /// The server that answered.
    pub server: usize,
    /// What the request's cookie said.
    pub persisted: Persisted,
    /// The request's method (only safe methods' responses are cacheable).
    pub method: &'a Method,
    pub status: StatusCode,
}
