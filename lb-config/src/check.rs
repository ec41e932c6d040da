//! Health checks as configured: the `health:` defaults, a pool's `check:`
//! and a backend's own `check:` settings. Timing follows HAProxy's
//! `inter`/`fastinter`/`downinter`/`rise`/`fall` and `timeout check`; the
//! check types are keepalived's checkers and HAProxy's `check` options.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// HAProxy's `inter` default (2000 ms).
pub const DEFAULT_INTER: Duration = Duration::from_secs(2);
/// HAProxy's `rise` default.
pub const DEFAULT_RISE: u32 = 2;
/// HAProxy's `fall` default.
pub const DEFAULT_FALL: u32 = 3;
/// Checks in flight at once, across all backends.
pub const DEFAULT_CONCURRENCY: u32 = 1000;
/// Accepted `rise` and `fall`.
pub const THRESHOLD_RANGE: RangeInclusive<u32> = 1..=100;
/// Shortest `inter`, `fastinter`, `downinter` and `timeout`.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// The `health:` section: defaults for every check, and how many checks
/// may run at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthConfig {
    /// Timing a pool's check takes unless it sets its own.
    pub defaults: CheckTiming,
    /// Checks in flight at most (a bound on sockets and processes); the
    /// rest wait their turn. Default [`DEFAULT_CONCURRENCY`].
    pub concurrency: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            defaults: CheckTiming::default(),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// When checks run and how many results change a backend's health
/// (HAProxy 2.x semantics, `server ... check inter 2000 rise 2 fall 3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckTiming {
    /// Between checks of a healthy backend.
    #[serde(with = "crate::duration::text")]
    pub inter: Duration,
    /// Between checks while health is changing (some failures of an up
    /// backend, some successes of a down one). Default: `inter`.
    #[serde(with = "crate::duration::text")]
    pub fastinter: Duration,
    /// Between checks of a backend that is down. Default: `inter`.
    #[serde(with = "crate::duration::text")]
    pub downinter: Duration,
    /// Consecutive successes that bring a down backend up.
    pub rise: u32,
    /// Consecutive failures that take an up backend down.
    pub fall: u32,
    /// How long one check may take (HAProxy `timeout check`). Default: `inter`.
    #[serde(with = "crate::duration::text")]
    pub timeout: Duration,
}

impl Default for CheckTiming {
    fn default() -> Self {
        CheckTiming {
            inter: DEFAULT_INTER,
            fastinter: DEFAULT_INTER,
            downinter: DEFAULT_INTER,
            rise: DEFAULT_RISE,
            fall: DEFAULT_FALL,
            timeout: DEFAULT_INTER,
        }
    }
}

/// A pool's `check:`: what to ask each backend, how often, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// What a check does.
    pub kind: CheckKind,
    /// When, and how many results count.
    pub timing: CheckTiming,
    /// Port to check instead of the backend's (HAProxy `port`, keepalived
    /// `connect_port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Address to check instead of the backend's (HAProxy `addr`,
    /// keepalived `connect_ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Direct routing: check this service's address (and, unless `port`
    /// says otherwise, its port) sent to the backend's MAC, as clients'
    /// packets are, so a backend that lost the VIP on its loopback fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_service: Option<String>,
}

/// What one check does, by type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckKind {
    /// ICMP echo (keepalived PING_CHECK): the backend's host answers.
    Icmp,
    /// A TCP connection succeeds (keepalived TCP_CHECK); optionally `send`
    /// a string and `expect` one in the reply (HAProxy `tcp-check`).
    Tcp {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<String>,
    },
    /// An HTTP request answered as expected (keepalived HTTP_GET, HAProxy
    /// `option httpchk`).
    Http(HttpCheck),
    /// The same over TLS (keepalived SSL_GET).
    Https(HttpsCheck),
    /// A MySQL/MariaDB server greets, optionally accepts a login, and is
    /// left with QUIT (HAProxy `mysql-check`).
    Mysql {
        /// Log in as this user (no password), as HAProxy's `mysql-check user`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    /// A command exits 0 (keepalived MISC_CHECK); it gets the backend in
    /// its environment and is killed with its process group at the timeout.
    Script {
        /// Program and arguments, never a shell line.
        command: Vec<String>,
    },
}

impl CheckKind {
    /// The type's name, as written in the file.
    pub const fn name(&self) -> &'static str {
        match self {
            CheckKind::Icmp => "icmp",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Http(_) => "http",
            CheckKind::Https(_) => "https",
            CheckKind::Mysql { .. } => "mysql",
            CheckKind::Script { .. } => "script",
        }
    }
}

/// An HTTP check: the request, and what the answer must be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// Default `GET`.
    pub method: String,
    /// Default `/`.
    pub path: String,
    /// `Host:` header; default the checked address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Statuses that pass; default 200–399 (HAProxy: 2xx and 3xx).
    pub status: Vec<StatusRange>,
    /// A substring the body must contain (HAProxy `http-check expect string`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// MD5 of the whole body, lowercase hex (keepalived `digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// An HTTPS check: an HTTP check over TLS (rustls).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsCheck {
    #[serde(flatten)]
    pub http: HttpCheck,
    /// Server name to send; default the `host`, else none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Verify the certificate against the system's roots and the name
    /// (default off, as keepalived's SSL_GET and HAProxy's `check-ssl`
    /// without `verify required`).
    pub verify: bool,
}

/// HTTP statuses that pass, `lo..=hi` (one status: `lo == hi`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRange {
    pub lo: u16,
    pub hi: u16,
}

impl StatusRange {
    pub const fn contains(self, status: u16) -> bool {
        self.lo <= status && status <= self.hi
    }
}

/// HAProxy's default: a 2xx or 3xx answer passes.
pub const DEFAULT_STATUS: StatusRange = StatusRange { lo: 200, hi: 399 };

/// A backend's own `check:` settings: off, or where to aim instead.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendCheck {
    /// `check: false` turns its pool's check off for this backend (HAProxy:
    /// a `server` line without `check`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// Port to check, over the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Address to check, over the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl BackendCheck {
    /// Whether nothing is set (the pool's check as it is).
    pub fn is_default(&self) -> bool {
        *self == BackendCheck::default()
    }
}
