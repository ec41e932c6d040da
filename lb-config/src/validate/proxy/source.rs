//! `source:` on `proxy.defaults` and pools (HAProxy's `source` line): read
//! as written, resolved over what is inherited, and checked against the
//! pool's servers (a fixed source address must be of their family).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::diagnostic::Problems;
use crate::model::PoolConfig;
use crate::positions::YamlPath;
use crate::proxy::Source;

/// `source:` as written: HAProxy's arguments as one string, or `false`.
pub(crate) enum RawSource {
    Off,
    Text(String),
}

impl<'de> Deserialize<'de> for RawSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`ADDR[:PORT] [usesrc clientip|client|ADDR[:PORT]]`, or `false`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawSource, E> {
                match v {
                    false => Ok(RawSource::Off),
                    true => Err(E::invalid_value(de::Unexpected::Bool(true), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSource, E> {
                Ok(RawSource::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `source:` over `inherited`: outer `None` when it is wrong (reported at
/// `at`); `false` or `null` turn an inherited one off.
pub(super) fn source(
    raw: Option<Option<RawSource>>,
    inherited: &Option<Source>,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<Option<Source>> {
    match raw {
        None => Some(*inherited),
        Some(None | Some(RawSource::Off)) => Some(None),
        Some(Some(RawSource::Text(text))) => match text.parse::<Source>() {
            Ok(s) => Some(Some(s)),
            Err(why) => {
                p.error(at, format!("source `{text}`: {why}"));
                None
            }
        },
    }
}

/// A fixed source address is of every server's family (a socket of one
/// family cannot bind an address of the other); a fixed port is one
/// connection per server at a time.
pub(super) fn check_source(pool: &PoolConfig, pool_at: &YamlPath, p: &mut Problems) {
    let Some(source) = pool.proxy.source else {
        return;
    };
    let at = pool_at.key("source");
    if let Some(ip) = source.fixed_ip()
        && let Some(b) = pool
            .backends
            .iter()
            .find(|b| b.address.is_ipv4() != ip.is_ipv4())
    {
        p.error_at_key(
            &at,
            format!(
                "source {ip} cannot reach backend `{}` ({}): a connection comes from an address \
                 of its server's family; give the pool a source of that family, or split the pool",
                b.name, b.address
            ),
        );
    }
    let fixed_port = match source.usesrc {
        Some(crate::proxy::UseSrc::Addr(a)) => a.port(),
        Some(_) => 0,
        None => source.addr.port(),
    };
    if fixed_port != 0 {
        p.warning_at_key(
            &at,
            format!(
                "source port {fixed_port} is fixed: each server gets one connection from it at a \
                 time, the next ones fail until it closes; leave the port out (any free port)"
            ),
        );
    }
}
