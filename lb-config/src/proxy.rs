//! The L7 proxy as configured: `proxy:` (HAProxy's `global` limits and its
//! `defaults` section) and `frontends:` (HAProxy `frontend`s). Pools are the
//! proxy's backends: their L7 settings (`balance`, `cookie`, `retries`, …)
//! and their servers' `cookie` and `maxconn` live on the pool and backend
//! ([`PoolL7`], [`BackendL7`]), so a server used by an L4 service and a
//! frontend is drained and checked once.
//!
//! Every value here is resolved: what a frontend or pool leaves out is taken
//! from `proxy.defaults`, and what that leaves out has the default given on
//! its constant. Names follow HAProxy's keywords with `_` for `-`
//! (`http-request` → `http_request`), so a haproxy.cfg translates line by
//! line (docs/proxy.md).

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::model::{Config, spelled_enum};

mod balance;
mod log;
mod net;
mod reject;
mod source;

pub use balance::Balance;
pub use log::*;
pub use net::{Bind, IpNet};
pub use reject::*;
pub use source::{Source, UseSrc};

/// Default of `proxy.maxconn`: connections the whole proxy accepts at once
/// (HAProxy `global maxconn`); further ones wait in the kernel's backlog.
pub const DEFAULT_GLOBAL_MAXCONN: u32 = 4000;
/// Default of a frontend's `maxconn` (HAProxy's `defaults maxconn`).
pub const DEFAULT_FRONTEND_MAXCONN: u32 = 3000;
/// Default of `proxy.max_header_size`: the request or response head at most,
/// request line and headers (HAProxy's `tune.bufsize`, 16 KiB, bounds it).
pub const DEFAULT_MAX_HEADER_SIZE: u32 = 16 * 1024;
/// Default of `proxy.max_headers` (HAProxy `tune.http.maxhdr`).
pub const DEFAULT_MAX_HEADERS: u32 = 101;
/// Default of `retries` (HAProxy's).
pub const DEFAULT_RETRIES: u32 = 3;
/// Default of `forwardfor.header`.
pub const DEFAULT_FORWARDFOR_HEADER: &str = "X-Forwarded-For";
/// Accepted `maxconn` (global, per frontend, per backend).
pub const MAXCONN_RANGE: RangeInclusive<u32> = 1..=1_000_000;
/// Accepted `proxy.max_header_size`: hyper's HTTP/1 reader refuses (panics
/// on) a buffer limit under 8 KiB; 1 MiB is far past any sane head.
pub const MAX_HEADER_SIZE_RANGE: RangeInclusive<u32> = 8 * 1024..=1024 * 1024;
/// Accepted `proxy.max_headers` (HAProxy's `tune.http.maxhdr` range).
pub const MAX_HEADERS_RANGE: RangeInclusive<u32> = 1..=32767;
/// Accepted `retries`.
pub const RETRIES_RANGE: RangeInclusive<u32> = 0..=100;
/// The longest timeout: HAProxy's (2^31 - 1 ms, about 24.8 days). A timeout
/// cannot be 0: in HAProxy that means "never", which lb does not offer.
pub const MAX_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);
/// The statuses `deny deny_status N` accepts: those HAProxy 2.6 has a
/// built-in answer for (it refuses the others without an errorfile).
pub const DENY_STATUSES: [u16; 19] = [
    200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429, 500, 501, 502, 503, 504,
];
/// The status of `deny` without `deny_status` (HAProxy's).
pub const DEFAULT_DENY_STATUS: u16 = 403;

/// `proxy:`: the limits of the whole proxy and the defaults of every
/// frontend and pool. Present with its defaults when absent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProxyConfig {
    /// Connections accepted at once over all frontends. Default
    /// [`DEFAULT_GLOBAL_MAXCONN`].
    pub maxconn: u32,
    /// A request or response head larger than this is refused (400 for a
    /// request, 502 for a response). Default [`DEFAULT_MAX_HEADER_SIZE`].
    pub max_header_size: u32,
    /// Header lines per request or response at most. Default [`DEFAULT_MAX_HEADERS`].
    pub max_headers: u32,
    /// `proxy.defaults`: what frontends and pools leave out. Kept, resolved,
    /// for pools added at runtime.
    pub defaults: ProxyDefaults,
    /// `proxy.log` (HAProxy's global `log` lines): where `log: global` sends.
    pub log: Vec<LogTarget>,
    /// The program name in syslog headers (HAProxy `log-tag`). Default
    /// [`DEFAULT_LOG_TAG`].
    pub log_tag: String,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            maxconn: DEFAULT_GLOBAL_MAXCONN,
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            max_headers: DEFAULT_MAX_HEADERS,
            defaults: ProxyDefaults::default(),
            log: Vec::new(),
            log_tag: DEFAULT_LOG_TAG.to_owned(),
        }
    }
}

/// The L7 settings a pool gets when nothing sets them: `proxy.defaults` of
/// `config`. For pools added at runtime, which have no file entry.
pub fn pool_defaults(config: &Config) -> PoolL7 {
    config.proxy.defaults.pool.clone()
}

/// `proxy.defaults` (HAProxy `defaults`), resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProxyDefaults {
    /// A frontend's `maxconn`. Default [`DEFAULT_FRONTEND_MAXCONN`].
    pub maxconn: u32,
    pub forwardfor: Option<ForwardFor>,
    pub forwarded_proto: bool,
    /// Every pool's settings, `timeouts` included (the frontend-side ones
    /// are frontends' defaults).
    pub pool: PoolL7,
    /// A frontend's logging (`log`, `httplog`, `dontlognull`, …).
    pub log: FrontendLog,
}

impl Default for ProxyDefaults {
    fn default() -> Self {
        ProxyDefaults {
            maxconn: DEFAULT_FRONTEND_MAXCONN,
            forwardfor: None,
            forwarded_proto: false,
            pool: PoolL7::default(),
            log: FrontendLog::default(),
        }
    }
}

/// The timeouts, HAProxy's `timeout …` lines. Defaults are the seed
/// configuration's, which is what users run today.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// From a connection's accept, or the end of the previous response, to
    /// a complete request head; past it: 408 and close. Default 10 s.
    #[serde(with = "crate::duration::text")]
    pub http_request: Duration,
    /// Idle time between two requests of a keep-alive client connection
    /// (before the first byte of the next). Default 10 s.
    #[serde(with = "crate::duration::text")]
    pub http_keep_alive: Duration,
    /// Client inactivity while a request or response is in flight (reading
    /// its body, writing the response). Default 1 min.
    #[serde(with = "crate::duration::text")]
    pub client: Duration,
    /// Establishing a connection to a server, per attempt. Default 10 s.
    #[serde(with = "crate::duration::text")]
    pub connect: Duration,
    /// Server inactivity: waiting for the response head, or between two
    /// reads of its body; past it before the head: 504. Default 1 min.
    #[serde(with = "crate::duration::text")]
    pub server: Duration,
    /// Waiting in a queue for a server or pool slot (`maxconn`); past it:
    /// 503. Default 1 min.
    #[serde(with = "crate::duration::text")]
    pub queue: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            http_request: Duration::from_secs(10),
            http_keep_alive: Duration::from_secs(10),
            client: Duration::from_secs(60),
            connect: Duration::from_secs(10),
            server: Duration::from_secs(60),
            queue: Duration::from_secs(60),
        }
    }
}

/// One `frontends:` entry (HAProxy `frontend NAME`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrontendConfig {
    /// The key under `frontends:`; unique.
    pub name: String,
    /// Where it listens; at least one; no address:port twice in the file.
    pub binds: Vec<Bind>,
    /// `http` or `tcp`.
    pub mode: ProxyMode,
    /// Connections at once; the next wait in the listen backlog.
    pub maxconn: u32,
    /// The frontend-side timeouts in effect (`http_request`,
    /// `http_keep_alive`, `client`); the server-side ones come from the pool.
    pub timeouts: Timeouts,
    /// Named ACLs, in file order; lines with the same name are one ACL, true
    /// when any of its lines matches (HAProxy ORs them).
    pub acls: Vec<Acl>,
    /// `http_request:` rules (HAProxy `http-request deny [if …]`), in order;
    /// the first whose condition holds applies. HTTP mode only.
    pub http_request: Vec<HttpRequestRule>,
    /// `use_backend:` rules, in order; the first whose condition holds picks
    /// the pool. HTTP mode only.
    pub use_backend: Vec<UseBackend>,
    /// The pool when no `use_backend` rule applies; required in TCP mode.
    /// None: 503.
    pub default_backend: Option<String>,
    /// `option forwardfor`: add the client's address to this header.
    /// HTTP mode only: always `None` in TCP mode.
    pub forwardfor: Option<ForwardFor>,
    /// Add `X-Forwarded-Proto: http` (or `https`), replacing the client's.
    /// Always false in TCP mode.
    pub forwarded_proto: bool,
    /// `option http-server-close`: close the server connection after each
    /// response (clients keep theirs). Also set when the pool sets it.
    /// Always false in TCP mode.
    pub http_server_close: bool,
    /// Source deny/allow lists and per-source rate limits (`src_deny`,
    /// `src_allow`, `rate_limit`), applied before any rule.
    pub reject: Reject,
    /// Its access log: where, in which format, which connections.
    pub log: FrontendLog,
}

impl FrontendConfig {
    /// The pools its rules and `default_backend` name, each once, in order.
    pub fn pools(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let named = self.use_backend.iter().map(|u| u.pool.as_str());
        for pool in named.chain(self.default_backend.as_deref()) {
            if !out.contains(&pool) {
                out.push(pool);
            }
        }
        out
    }
}

spelled_enum!(
    /// A frontend's `mode`.
    ProxyMode, "`http` or `tcp`" {
        /// Requests parsed, routed by ACLs, balanced per request.
        Http = "http",
        /// Bytes relayed both ways; balanced per connection.
        Tcp = "tcp",
    }
);

/// One named ACL.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Acl {
    pub name: String,
    /// Its lines, ORed.
    pub tests: Vec<AclTest>,
}

/// One ACL line: `FETCH [-i] [-m METHOD] VALUE...`, true when the fetched
/// value matches any of the values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AclTest {
    /// What it reads from the request.
    pub fetch: Fetch,
    /// How the values are matched.
    pub matcher: Matcher,
    /// `-i`: case-insensitive.
    pub ignore_case: bool,
    /// At least one, except for [`Matcher::Found`] (none); for
    /// [`Matcher::Reg`], regular expressions that compile (the `regex`
    /// crate's syntax, with `-i` as its case-insensitive flag); for
    /// [`Matcher::Ip`], [`IpNet`]s written `ADDR/PREFIX` (a host as /32 or
    /// /128), so `value.parse::<IpNet>()` cannot fail.
    pub values: Vec<String>,
    /// Where the line is, `file:line:col`, for messages and `explain`.
    pub at: String,
}

/// A sample fetch (what HAProxy calls the part before `_beg`/`_end`…).
/// Every fetch but [`Fetch::Src`] gives text, matched with any
/// [`Matcher`] but [`Matcher::Ip`]; `src` takes only `Ip` and `Found`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "fetch", content = "name")]
pub enum Fetch {
    /// The path: the target up to `?`, without scheme and authority.
    Path,
    /// The whole target as sent (`url`).
    Url,
    /// The value of a query parameter (`url_param(NAME)`, `urlp(NAME)`);
    /// the name is case-sensitive; absent: no match.
    UrlParam(String),
    /// Every value of a header, each tested (`hdr(NAME)`), as sent: for
    /// `hdr(host)` the port too, when the client wrote one. Values are the
    /// header's comma-separated parts, as HAProxy's `hdr`. The name is
    /// stored lowercase.
    Hdr(String),
    /// The method, e.g. `GET`.
    Method,
    /// The client's address (`src`), matched as [`Matcher::Ip`].
    Src,
    /// The request's HTTP version as `1.0`, `1.1` or `2.0` (`req.ver`,
    /// and the predefined `HTTP_1.0`, `HTTP_1.1`, `HTTP_2.0`).
    ReqVer,
}

spelled_enum!(
    /// How an ACL compares: HAProxy's `-m` methods, or the suffix of the
    /// fetch's name (`path_beg` = `path` with `beg`).
    Matcher, "a match method" {
        /// Equal (`path`, `hdr(host)`, `method`).
        Str = "str",
        /// Starts with (`_beg`).
        Beg = "beg",
        /// Ends with (`_end`).
        End = "end",
        /// Contains (`_sub`).
        Sub = "sub",
        /// One of the `/`-delimited parts equals the value (`_dir`).
        Dir = "dir",
        /// One of the `.`-delimited parts equals the value, or a run of them
        /// (`_dom`: `hdr_dom(host) example.com` matches `www.example.com`).
        Dom = "dom",
        /// Regular expression search (`_reg`).
        Reg = "reg",
        /// Address in a network (`src 10.0.0.0/8`).
        Ip = "ip",
        /// The value is present at all (`-m found`).
        Found = "found",
    }
);

/// `if COND` / `unless COND`: a disjunction (`||`, `or`) of conjunctions
/// (juxtaposition) of possibly negated (`!`) ACLs. HAProxy has no
/// parentheses; neither has this.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Condition {
    /// `unless`: the rule applies when the expression is false.
    pub unless: bool,
    /// ORed terms, each the AND of its items.
    pub any: Vec<Vec<AclRef>>,
}

/// One item of a condition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AclRef {
    pub negated: bool,
    pub acl: AclUse,
}

/// A named ACL (its index in [`FrontendConfig::acls`]), an anonymous one
/// written in braces (`{ path_beg /api }`), or HAProxy's predefined `TRUE`,
/// `FALSE`, `METH_GET`, `HTTP_1.1`, … resolved to what they test.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AclUse {
    Named(usize),
    Inline(AclTest),
    Always(bool),
}

/// One `http_request:` rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpRequestRule {
    pub action: HttpRequestAction,
    /// None: always.
    pub cond: Option<Condition>,
}

/// What an `http_request:` rule does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpRequestAction {
    /// Answer with this status (403 by default, `deny deny_status 429`)
    /// and close.
    Deny { status: u16 },
    /// Stop evaluating `http_request:` rules; go on to routing.
    Allow,
}

/// One `use_backend:` rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UseBackend {
    /// A pool name.
    pub pool: String,
    /// None: always (a rule without condition ends the list).
    pub cond: Option<Condition>,
}

/// `option forwardfor [except NET] [header NAME]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForwardFor {
    /// Not added when the client's address is in this network (the seed:
    /// `except 127.0.0.0/8`).
    pub except: Option<IpNet>,
    /// Default [`DEFAULT_FORWARDFOR_HEADER`].
    pub header: String,
}

/// A pool's L7 settings (HAProxy `backend` lines), resolved against
/// `proxy.defaults`. Serde both ways: pools added at runtime are persisted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolL7 {
    /// Default [`Balance::RoundRobin`].
    pub balance: Balance,
    /// How a hash picks a server (hash balances only). Default map-based.
    pub hash_type: HashType,
    /// Cookie persistence; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<CookieConfig>,
    /// Further attempts after a failed connect (not after a request was
    /// sent). Default [`DEFAULT_RETRIES`].
    pub retries: u32,
    /// `option redispatch`: the last retry (and a persistent request whose
    /// server is down) goes to another server.
    pub redispatch: bool,
    /// `option abortonclose`: a queued request whose client closed is dropped.
    pub abortonclose: bool,
    /// `option http-server-close` for every frontend using the pool.
    pub http_server_close: bool,
    /// The server-side timeouts in effect (`connect`, `server`, `queue`).
    pub timeouts: Timeouts,
    /// Where connections to the servers come from (HAProxy `source`);
    /// none by default: the kernel picks the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

impl PoolL7 {
    /// Whether every setting is the built-in default (not written when
    /// persisting a pool added at runtime).
    pub fn is_default(&self) -> bool {
        *self == PoolL7::default()
    }
}

impl Default for PoolL7 {
    fn default() -> Self {
        PoolL7 {
            balance: Balance::RoundRobin,
            hash_type: HashType::MapBased,
            cookie: None,
            retries: DEFAULT_RETRIES,
            redispatch: false,
            abortonclose: false,
            http_server_close: false,
            timeouts: Timeouts::default(),
            source: None,
        }
    }
}

/// Whether `s` is an HTTP token (RFC 9110 §5.6.2): a method, a header or
/// cookie name.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header name, for `hdr(NAME)`: an HTTP token.
pub(crate) fn check_header_name(name: &str) -> Result<(), String> {
    if is_token(name) {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a header name (letters, digits and !#$%&'*+-.^_`|~)"
        ))
    }
}

/// A query parameter name, for `url_param(NAME)`: what can sit before `=`.
pub(crate) fn check_param_name(name: &str) -> Result<(), String> {
    match name
        .chars()
        .find(|c| matches!(c, '&' | '=' | '?' | '#') || c.is_whitespace() || c.is_control())
    {
        None if !name.is_empty() => Ok(()),
        None => Err("the query parameter name is empty".to_owned()),
        Some(c) => Err(format!("query parameter name `{name}` contains {c:?}")),
    }
}

spelled_enum!(
    /// HAProxy `hash-type`.
    HashType, "`map-based` or `consistent`" {
        /// Hash modulo the total weight of the servers up: cheap, but a
        /// server going down moves most clients.
        MapBased = "map-based",
        /// A ring of points per server: a server going down moves only its
        /// own clients.
        Consistent = "consistent",
    }
);

/// `cookie NAME [insert|rewrite|prefix] [indirect] [nocache] [httponly]
/// [secure]`. Without a mode (the seed's bare `cookie SERVERID`) the cookie
/// is only read: the application must set it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieConfig {
    pub name: String,
    #[serde(default)]
    pub mode: CookieMode,
    /// `insert`/`prefix`: the proxy's cookie (or crumb) is removed from the
    /// request before it reaches the server.
    #[serde(default)]
    pub indirect: bool,
    /// `insert`: a response that sets the cookie gets `Cache-Control:
    /// private` (and no caching proxy stores it).
    #[serde(default)]
    pub nocache: bool,
    #[serde(default)]
    pub httponly: bool,
    #[serde(default)]
    pub secure: bool,
}

spelled_enum!(
    /// What the proxy does with the persistence cookie.
    CookieMode, "`read`, `insert`, `rewrite` or `prefix`" {
        /// Only read it (HAProxy: `cookie NAME` with no mode).
        Read = "read",
        /// Set it on responses when the client did not send a valid one.
        Insert = "insert",
        /// Replace the value of a cookie the server sets.
        Rewrite = "rewrite",
        /// Prefix the server's own cookie value with `SERVER~`.
        Prefix = "prefix",
    }
);

#[expect(
    clippy::derivable_impls,
    reason = "spelled_enum! writes the derives; the default is given here"
)]
impl Default for CookieMode {
    fn default() -> Self {
        CookieMode::Read
    }
}

/// A backend's L7 settings (HAProxy `server … cookie VALUE maxconn N`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendL7 {
    /// Its value of the pool's cookie; default: none (a client is never
    /// pinned to it by cookie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// Requests in flight at once; more wait in its queue. None: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxconn: Option<u32>,
}

impl BackendL7 {
    pub fn is_default(&self) -> bool {
        *self == BackendL7::default()
    }
}
