//! One L7 configuration, described once and written out twice: as
//! HAProxy's haproxy.cfg ([`super::haproxy_cfg`]) and as lb's lb.yaml
//! ([`super::lb_yaml`]). Only what the L7 tests and the benchmark compare
//! is modelled; every line each side gets is written explicitly, so
//! neither side's defaults decide anything.

use std::net::SocketAddr;
use std::time::Duration;

/// HAProxy's `global` + `defaults` + `frontend`s + `backend`s.
#[derive(Clone, Debug)]
pub struct Setup {
    /// `global maxconn` / `proxy.maxconn`.
    pub maxconn: u32,
    /// HAProxy `nbthread`; lb runs one worker per core and has no knob.
    pub threads: Option<u32>,
    pub defaults: Defaults,
    pub frontends: Vec<Frontend>,
    pub backends: Vec<Backend>,
}

/// The `defaults` section (`proxy.defaults`).
#[derive(Clone, Debug)]
pub struct Defaults {
    /// A frontend's `maxconn`.
    pub maxconn: u32,
    pub retries: u32,
    pub redispatch: bool,
    pub abortonclose: bool,
    pub http_server_close: bool,
    pub forwardfor: Option<ForwardFor>,
    pub cookie: Option<Cookie>,
    pub timeouts: Timeouts,
    /// `log ADDR local2 info` and `option httplog` (lb: `log` and
    /// `httplog: true`): an access log line per request to a UDP socket.
    pub log: Option<SocketAddr>,
}

impl Defaults {
    /// The seed's `defaults` section, line for line.
    pub fn seed() -> Defaults {
        Defaults {
            maxconn: 3000,
            retries: 3,
            redispatch: true,
            abortonclose: true,
            http_server_close: true,
            forwardfor: Some(ForwardFor::except("127.0.0.0/8")),
            cookie: Some(Cookie::read("SERVERID")),
            timeouts: Timeouts::seed(),
            log: None,
        }
    }

    /// The seed's timeouts and limits with nothing optional: no cookie, no
    /// forwardfor, no redispatch, server keep-alive.
    pub fn plain() -> Defaults {
        Defaults {
            maxconn: 3000,
            retries: 3,
            redispatch: false,
            abortonclose: false,
            http_server_close: false,
            forwardfor: None,
            cookie: None,
            timeouts: Timeouts::seed(),
            log: None,
        }
    }
}

/// The six timeouts the seed sets.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub http_request: Duration,
    pub http_keep_alive: Duration,
    pub client: Duration,
    pub connect: Duration,
    pub server: Duration,
    pub queue: Duration,
}

impl Timeouts {
    /// `timeout http-request 10s`, `connect 10s`, `client 1m`, `server 1m`,
    /// `http-keep-alive 10s`, `queue 1m`.
    pub fn seed() -> Timeouts {
        let s = Duration::from_secs;
        Timeouts {
            http_request: s(10),
            http_keep_alive: s(10),
            client: s(60),
            connect: s(10),
            server: s(60),
            queue: s(60),
        }
    }
}

/// `option forwardfor [except NET] [header NAME]`.
#[derive(Clone, Debug, Default)]
pub struct ForwardFor {
    pub except: Option<String>,
    pub header: Option<String>,
}

impl ForwardFor {
    pub fn except(net: &str) -> ForwardFor {
        ForwardFor {
            except: Some(net.to_owned()),
            header: None,
        }
    }
}

/// `cookie NAME [insert|rewrite|prefix] [indirect] [nocache] [httponly] [secure]`.
#[derive(Clone, Debug)]
pub struct Cookie {
    pub name: String,
    pub mode: CookieMode,
    pub indirect: bool,
    pub nocache: bool,
    pub httponly: bool,
    pub secure: bool,
}

impl Cookie {
    /// The bare `cookie NAME` (only read).
    pub fn read(name: &str) -> Cookie {
        Cookie::new(name, CookieMode::Read)
    }

    pub fn new(name: &str, mode: CookieMode) -> Cookie {
        Cookie {
            name: name.to_owned(),
            mode,
            indirect: false,
            nocache: false,
            httponly: false,
            secure: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieMode {
    Read,
    Insert,
    Rewrite,
    Prefix,
}

impl CookieMode {
    /// The word in both files (`read` is lb's name for HAProxy's bare form).
    pub fn word(self) -> &'static str {
        match self {
            CookieMode::Read => "read",
            CookieMode::Insert => "insert",
            CookieMode::Rewrite => "rewrite",
            CookieMode::Prefix => "prefix",
        }
    }
}

/// A `frontend`; it listens on one port per proxy (chosen when written).
#[derive(Clone, Debug)]
pub struct Frontend {
    pub name: String,
    /// `(name, line)`: `acl NAME LINE`, lines of one name ORed.
    pub acls: Vec<(String, String)>,
    /// `use_backend RULE` (`POOL [if|unless COND]`).
    pub use_backend: Vec<String>,
    pub default_backend: String,
    pub maxconn: Option<u32>,
    /// `option forwardfor …` in the frontend itself.
    pub forwardfor: Option<ForwardFor>,
}

impl Frontend {
    /// A frontend sending everything to `backend`.
    pub fn to(name: &str, backend: &str) -> Frontend {
        Frontend {
            name: name.to_owned(),
            acls: Vec::new(),
            use_backend: Vec::new(),
            default_backend: backend.to_owned(),
            maxconn: None,
            forwardfor: None,
        }
    }
}

/// A `backend` (an lb pool).
#[derive(Clone, Debug)]
pub struct Backend {
    pub name: String,
    pub balance: Balance,
    pub consistent: bool,
    /// Its own `cookie` line; `None` inherits the defaults'.
    pub cookie: Option<Cookie>,
    pub retries: Option<u32>,
    pub redispatch: Option<bool>,
    /// `timeout connect|server|queue` of its own.
    pub connect: Option<Duration>,
    pub server_timeout: Option<Duration>,
    pub queue: Option<Duration>,
    pub check: Option<Check>,
    pub servers: Vec<Server>,
}

impl Backend {
    pub fn new(name: &str, balance: Balance, servers: Vec<Server>) -> Backend {
        Backend {
            name: name.to_owned(),
            balance,
            consistent: false,
            cookie: None,
            retries: None,
            redispatch: None,
            connect: None,
            server_timeout: None,
            queue: None,
            check: None,
            servers,
        }
    }
}

/// `balance …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    StaticRr,
    LeastConn,
    Source,
    Uri,
    UrlParam(String),
    Hdr(String),
}

impl Balance {
    /// HAProxy's spelling.
    pub fn haproxy(&self) -> String {
        match self {
            Balance::UrlParam(p) => format!("url_param {p}"),
            other => other.lb(),
        }
    }

    /// lb's spelling.
    pub fn lb(&self) -> String {
        match self {
            Balance::RoundRobin => "roundrobin".into(),
            Balance::StaticRr => "static-rr".into(),
            Balance::LeastConn => "leastconn".into(),
            Balance::Source => "source".into(),
            Balance::Uri => "uri".into(),
            Balance::UrlParam(p) => format!("url_param({p})"),
            Balance::Hdr(h) => format!("hdr({h})"),
        }
    }
}

/// A TCP check of every server of a backend.
#[derive(Clone, Copy, Debug)]
pub struct Check {
    pub inter: Duration,
    pub rise: u32,
    pub fall: u32,
}

/// A `server` line (an lb backend).
#[derive(Clone, Debug)]
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    pub weight: Option<u32>,
    pub cookie: Option<String>,
    pub maxconn: Option<u32>,
    /// `disabled` / `state: maint`.
    pub maint: bool,
}

impl Server {
    pub fn new(name: &str, addr: SocketAddr) -> Server {
        Server {
            name: name.to_owned(),
            addr,
            weight: None,
            cookie: None,
            maxconn: None,
            maint: false,
        }
    }

    pub fn weight(mut self, w: u32) -> Server {
        self.weight = Some(w);
        self
    }

    pub fn cookie(mut self, value: &str) -> Server {
        self.cookie = Some(value.to_owned());
        self
    }
}

/// Milliseconds, as both files take them.
pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}
