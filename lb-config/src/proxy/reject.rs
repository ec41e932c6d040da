//! A frontend's refusals of abusive clients, resolved: source deny and
//! allow lists (HAProxy `tcp-request connection reject if { src … }`) and
//! per-source rate limits (a stick table with `conn_rate`, `conn_cur` and
//! `http_req_rate`, and the `reject`/`deny` rules reading it).

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::IpNet;

/// Default of `rate_limit.period`, the window the rates are counted over.
pub const DEFAULT_RATE_PERIOD: Duration = Duration::from_secs(10);
/// Accepted `rate_limit.period`.
pub const RATE_PERIOD_RANGE: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);
/// Accepted `conn_rate`, `http_req_rate` and `conn_cur`.
pub const RATE_LIMIT_RANGE: RangeInclusive<u32> = 1..=100_000_000;
/// Default of `rate_limit.table_size`: sources tracked at once (HAProxy's
/// `stick-table … size 100k` of the usual recipe).
pub const DEFAULT_RATE_TABLE_SIZE: u32 = 100_000;
/// Accepted `rate_limit.table_size`.
pub const RATE_TABLE_SIZE_RANGE: RangeInclusive<u32> = 1..=10_000_000;
/// IPv6 sources are tracked by their /64: one host gets a whole /64 from
/// its provider, so counting each address would let it rotate past any limit.
pub const RATE_IPV6_PREFIX: u8 = 64;

/// What a frontend refuses before its rules run. Empty (refuses nothing)
/// by default.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reject {
    /// `src_deny`: connections from these networks are closed at accept.
    pub src_deny: Vec<IpNet>,
    /// `src_allow`: when set, connections from anywhere else are closed at
    /// accept (`src_deny` still applies inside them).
    pub src_allow: Option<Vec<IpNet>>,
    pub rate_limit: Option<RateLimit>,
}

impl Reject {
    /// Whether it refuses anything at all.
    pub fn is_empty(&self) -> bool {
        self.src_deny.is_empty() && self.src_allow.is_none() && self.rate_limit.is_none()
    }
}

/// `rate_limit:`: per-source limits, counted over a sliding `period` as
/// HAProxy's frequency counters do. At least one limit is set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateLimit {
    #[serde(with = "crate::duration::text")]
    pub period: Duration,
    /// New connections per source per period; over it, closed at accept.
    pub conn_rate: Option<u32>,
    /// Requests per source per period; over it, answered with `reply`.
    /// HTTP mode only.
    pub http_req_rate: Option<u32>,
    /// Connections of one source open at once; over it, closed at accept.
    pub conn_cur: Option<u32>,
    /// Sources tracked at once; when full, the one seen least recently is
    /// forgotten.
    pub table_size: u32,
    /// The answer to a request over `http_req_rate`.
    pub reply: RateReply,
}

/// What a request over `http_req_rate` gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateReply {
    /// This status (one of [`super::DENY_STATUSES`]), then the connection closes.
    Status(u16),
    /// No answer: the connection is closed at once.
    Close,
}

/// Default of `rate_limit.reply`.
pub const DEFAULT_RATE_REPLY: RateReply = RateReply::Status(429);

impl fmt::Display for RateReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateReply::Status(s) => write!(f, "{s}"),
            RateReply::Close => f.write_str("close"),
        }
    }
}

impl Serialize for RateReply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RateReply::Status(n) => s.serialize_u16(*n),
            RateReply::Close => s.serialize_str("close"),
        }
    }
}
