//! The balance algorithms (HAProxy `balance`), spelled as in the file
//! wherever they are shown or stored.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::{check_header_name, check_param_name};

/// A balance algorithm (HAProxy `balance`). Written, displayed and
/// serialized as in the file: `roundrobin`, `static-rr`, `leastconn`,
/// `source`, `uri`, `url_param(NAME)`, `hdr(NAME)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Balance {
    /// Weighted, smoothly interleaved, weights changeable at runtime.
    RoundRobin,
    /// Weighted, in a fixed order; weight changes apply on the next cycle.
    StaticRr,
    /// Fewest (active + queued + 1) / weight; ties rotate.
    LeastConn,
    /// Hash of the client's address.
    Source,
    /// Hash of the path (the target before `?`).
    Uri,
    /// Hash of a query parameter's value; absent: round robin.
    UrlParam(String),
    /// Hash of a header's value; absent: round robin. The name is stored
    /// lowercase.
    Hdr(String),
}

impl Balance {
    /// Whether it hashes something of the request (and `hash_type` applies).
    pub fn hashes(&self) -> bool {
        matches!(
            self,
            Balance::Source | Balance::Uri | Balance::UrlParam(_) | Balance::Hdr(_)
        )
    }

    /// Whether it reads the request (not only the connection), so a TCP
    /// frontend cannot use it and falls back to round robin.
    pub fn reads_request(&self) -> bool {
        matches!(self, Balance::Uri | Balance::UrlParam(_) | Balance::Hdr(_))
    }
}

/// The algorithms, as `balance` spells them, for messages.
const BALANCES: &str = "roundrobin, static-rr, leastconn, source, uri, url_param(NAME), hdr(NAME)";

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Balance::RoundRobin => f.write_str("roundrobin"),
            Balance::StaticRr => f.write_str("static-rr"),
            Balance::LeastConn => f.write_str("leastconn"),
            Balance::Source => f.write_str("source"),
            Balance::Uri => f.write_str("uri"),
            Balance::UrlParam(name) => write!(f, "url_param({name})"),
            Balance::Hdr(name) => write!(f, "hdr({name})"),
        }
    }
}

impl FromStr for Balance {
    type Err = String;

    /// As [`Balance`] is written; also HAProxy's `url_param NAME`.
    fn from_str(s: &str) -> Result<Self, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let (algo, arg) = match words.as_slice() {
            [w] => match w.split_once('(') {
                Some((a, rest)) => match rest.strip_suffix(')') {
                    Some(arg) => (a, Some(arg)),
                    None => return Err(format!("balance `{s}`: missing `)`")),
                },
                None => (*w, None),
            },
            ["url_param", name] => ("url_param", Some(*name)),
            [a, ..] => {
                return Err(format!(
                    "balance `{s}`: options after `{a}` are not supported (balance is one of {BALANCES})"
                ));
            }
            [] => return Err(format!("balance is empty; it is one of {BALANCES}")),
        };
        match (algo, arg) {
            ("roundrobin", None) => Ok(Balance::RoundRobin),
            ("static-rr", None) => Ok(Balance::StaticRr),
            ("leastconn", None) => Ok(Balance::LeastConn),
            ("source", None) => Ok(Balance::Source),
            ("uri", None) => Ok(Balance::Uri),
            ("url_param", Some(n)) => check_param_name(n).map(|()| Balance::UrlParam(n.to_owned())),
            ("hdr", Some(n)) => check_header_name(n).map(|()| Balance::Hdr(n.to_ascii_lowercase())),
            ("url_param" | "hdr", None) => {
                Err(format!("balance `{algo}` needs a name: `{algo}(NAME)`"))
            }
            _ => Err(format!("unknown balance `{s}`; supported: {BALANCES}")),
        }
    }
}

impl Serialize for Balance {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Balance {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}
