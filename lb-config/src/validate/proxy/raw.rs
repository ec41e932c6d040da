//! `proxy:`, `frontends:` and the L7 keys of pools and backends as written:
//! every key optional, unknown keys refused; checked into
//! [`crate::proxy`]'s model by the sibling modules. Keys take HAProxy's
//! names with `_` for `-` (`http-server-close` → `http_server_close`).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_yaml::Value;

use crate::duration::DurationText;
use crate::proxy::{CookieMode, HashType, ProxyMode};
use crate::raw::{Each, Int};

pub(crate) use super::source::RawSource;

/// `proxy:`.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "proxy settings: `maxconn`, `max_header_size`, `max_headers`, `defaults`"
)]
pub(crate) struct RawProxy {
    pub maxconn: Option<Int>,
    pub max_header_size: Option<Size>,
    pub max_headers: Option<Int>,
    pub defaults: Option<RawDefaults>,
    /// HAProxy's global `log` lines.
    pub log: Option<Vec<Each<super::log::RawLogTarget>>>,
    pub log_tag: Option<String>,
}

/// `proxy.defaults:` (HAProxy `defaults`): a frontend's keys and a pool's.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "proxy defaults: `maxconn`, `timeout`, `retries`, `balance`, `cookie`, …"
)]
pub(crate) struct RawDefaults {
    pub maxconn: Option<Int>,
    pub timeout: Option<RawTimeouts>,
    pub retries: Option<Int>,
    pub redispatch: Option<bool>,
    pub abortonclose: Option<bool>,
    pub http_server_close: Option<bool>,
    #[serde(default, deserialize_with = "crate::raw::present")]
    pub forwardfor: Option<Option<RawForwardFor>>,
    pub forwarded_proto: Option<bool>,
    pub balance: Option<String>,
    pub hash_type: Option<HashType>,
    #[serde(default, deserialize_with = "crate::raw::present")]
    pub cookie: Option<Option<RawCookie>>,
    #[serde(default, deserialize_with = "crate::raw::present")]
    pub source: Option<Option<RawSource>>,
    pub log: Option<super::log::RawLog>,
    pub httplog: Option<crate::proxy::LogOption>,
    pub tcplog: Option<crate::proxy::LogOption>,
    pub dontlognull: Option<bool>,
    pub log_separate_errors: Option<bool>,
    pub dontlog_normal: Option<bool>,
}

impl RawDefaults {
    /// The keys a pool has too, taken out.
    pub fn pool_keys(&mut self) -> RawPoolL7 {
        take_pool_l7!(self)
    }
}

/// Moves the L7 keys of a pool out of a raw struct that has them as fields
/// (`RawDefaults`, the pool's own raw struct).
macro_rules! take_pool_l7 {
    ($raw:expr) => {
        $crate::validate::proxy::raw::RawPoolL7 {
            timeout: $raw.timeout.take(),
            retries: $raw.retries.take(),
            redispatch: $raw.redispatch.take(),
            abortonclose: $raw.abortonclose.take(),
            http_server_close: $raw.http_server_close.take(),
            balance: $raw.balance.take(),
            hash_type: $raw.hash_type.take(),
            cookie: $raw.cookie.take(),
            source: $raw.source.take(),
        }
    };
}
pub(crate) use take_pool_l7;

/// A pool's L7 keys (HAProxy `backend` lines), taken out of the pool's raw
/// struct (serde cannot flatten into a struct that refuses unknown keys).
pub(crate) struct RawPoolL7 {
    pub timeout: Option<RawTimeouts>,
    pub retries: Option<Int>,
    pub redispatch: Option<bool>,
    pub abortonclose: Option<bool>,
    pub http_server_close: Option<bool>,
    pub balance: Option<String>,
    pub hash_type: Option<HashType>,
    /// Outer `None`: absent (inherited); `Some(None)`: `null` (none).
    pub cookie: Option<Option<RawCookie>>,
    /// As `cookie`.
    pub source: Option<Option<RawSource>>,
}

/// `timeout:` (HAProxy's `timeout …` lines); which of them a section may
/// set is checked where it is used.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "timeouts: `http_request`, `http_keep_alive`, `client`, `connect`, `server`, `queue`"
)]
pub(crate) struct RawTimeouts {
    pub http_request: Option<DurationText>,
    pub http_keep_alive: Option<DurationText>,
    pub client: Option<DurationText>,
    pub connect: Option<DurationText>,
    pub server: Option<DurationText>,
    pub queue: Option<DurationText>,
    /// HAProxy's `timeout check`: refused with where it goes instead.
    pub check: Option<Value>,
}

/// `forwardfor:` `true`/`false`, or `{except, header}` (enabled).
pub(crate) enum RawForwardFor {
    Enabled(bool),
    With(RawForwardForOptions),
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "`except` and/or `header`")]
pub(crate) struct RawForwardForOptions {
    pub except: Option<String>,
    pub header: Option<String>,
}

/// `cookie:` a name (HAProxy's bare `cookie NAME`), a mapping, or `false`.
pub(crate) enum RawCookie {
    Off,
    Name(String),
    Full(RawCookieOptions),
}

#[derive(Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a cookie: `name`, `mode`, `indirect`, `nocache`, `httponly`, `secure`"
)]
pub(crate) struct RawCookieOptions {
    pub name: Option<String>,
    pub mode: Option<CookieMode>,
    pub indirect: Option<bool>,
    pub nocache: Option<bool>,
    pub httponly: Option<bool>,
    pub secure: Option<bool>,
}

/// One `frontends:` entry.
#[derive(Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a frontend: `bind`, `mode`, `acl`, `use_backend`, `default_backend`, …"
)]
pub(crate) struct RawFrontend {
    pub bind: Option<OneOrMore>,
    pub mode: Option<ProxyMode>,
    pub maxconn: Option<Int>,
    pub timeout: Option<RawTimeouts>,
    #[serde(default, deserialize_with = "crate::raw::present")]
    pub forwardfor: Option<Option<RawForwardFor>>,
    pub forwarded_proto: Option<bool>,
    pub http_server_close: Option<bool>,
    /// Name → a line or a list of lines, walked entry by entry.
    pub acl: Option<Value>,
    pub http_request: Option<Vec<Each<String>>>,
    pub use_backend: Option<Vec<Each<String>>>,
    pub default_backend: Option<String>,
    /// Networks or pattern files, checked in `reject`.
    pub src_deny: Option<Vec<Each<String>>>,
    pub src_allow: Option<Vec<Each<String>>>,
    pub rate_limit: Option<super::reject::RawRateLimit>,
    /// The log keys, checked in `log`.
    pub log: Option<super::log::RawLog>,
    pub httplog: Option<crate::proxy::LogOption>,
    pub tcplog: Option<crate::proxy::LogOption>,
    pub dontlognull: Option<bool>,
    pub log_separate_errors: Option<bool>,
    pub dontlog_normal: Option<bool>,
}

/// One string or a list of them (`bind: "*:80"` or `bind: ["*:80", …]`).
pub(crate) enum OneOrMore {
    One(String),
    List(Vec<Each<String>>),
}

/// A size in bytes: an integer, or `16k` / `1m` (KiB, MiB).
#[derive(Clone, Copy)]
pub(crate) struct Size(pub Int);

impl<'de> Deserialize<'de> for RawForwardFor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawForwardFor;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`true`, `false`, or a mapping with `except` and/or `header`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawForwardFor, E> {
                Ok(RawForwardFor::Enabled(v))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RawForwardFor, A::Error> {
                RawForwardForOptions::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawForwardFor::With)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawCookie {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCookie;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a cookie name, a mapping with `name` and `mode`, or `false`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawCookie, E> {
                match v {
                    false => Ok(RawCookie::Off),
                    true => Err(E::invalid_value(de::Unexpected::Bool(true), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawCookie, E> {
                Ok(RawCookie::Name(v.to_owned()))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RawCookie, A::Error> {
                RawCookieOptions::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawCookie::Full)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for OneOrMore {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMore;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address:port or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMore, E> {
                Ok(OneOrMore::One(v.to_owned()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<OneOrMore, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMore::List)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size in bytes, such as `16384` or `16k`")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                Ok(Size(Int(v.into())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(Int(v.into())))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                let (digits, unit) = v.split_at(v.trim_end_matches(char::is_alphabetic).len());
                let scale: i128 = match unit {
                    "k" | "K" => 1024,
                    "m" | "M" => 1024 * 1024,
                    _ => return Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                };
                match digits.parse::<i128>() {
                    Ok(n) => Ok(Size(Int(n.saturating_mul(scale)))),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}
