//! `vrrp:` as written, with keepalived's key names: every key optional,
//! unknown keys refused; checked into [`crate::vrrp::VrrpConfig`] by the
//! parent module. Times are keepalived's bare seconds (`1`, `0.1`) or
//! durations (`100ms`); commands a keepalived line (`"/bin/x arg"`) or a list.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::duration::parse_duration;
use crate::raw::Int;

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "VRRP settings: `instances`, `track_scripts`, `sync_groups`, `version`"
)]
pub(super) struct RawVrrp {
    pub version: Option<Int>,
    /// Name → [`RawScript`], walked entry by entry.
    pub track_scripts: Option<serde_yaml::Value>,
    /// Name → list of instance names.
    pub sync_groups: Option<serde_yaml::Value>,
    /// Name → [`RawInstance`], walked entry by entry.
    pub instances: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a VRRP instance: `interface`, `virtual_router_id`, `priority`, `virtual_ipaddress`, …"
)]
pub(super) struct RawInstance {
    pub state: Option<String>,
    pub interface: Option<String>,
    pub virtual_router_id: Option<Int>,
    pub version: Option<Int>,
    pub priority: Option<Int>,
    pub advert_int: Option<Seconds>,
    pub mcast_src_ip: Option<String>,
    pub unicast_src_ip: Option<String>,
    pub unicast_peer: Option<Vec<String>>,
    pub peers: Option<Vec<String>>,
    pub nopreempt: Option<bool>,
    pub preempt_delay: Option<Seconds>,
    pub authentication: Option<RawAuth>,
    pub virtual_ipaddress: Option<Vec<String>>,
    pub garp_master_delay: Option<Seconds>,
    pub garp_master_repeat: Option<Int>,
    pub garp_master_refresh: Option<Seconds>,
    pub use_vmac: Option<bool>,
    pub track_script: Option<Vec<RawTrack>>,
    pub track_interface: Option<Vec<RawTrack>>,
    pub track_pool: Option<Vec<RawTrack>>,
    pub notify_master: Option<Command>,
    pub notify_backup: Option<Command>,
    pub notify_fault: Option<Command>,
    pub notify_stop: Option<Command>,
    pub notify: Option<Command>,
    pub smtp_alert: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "`auth_type` and `auth_pass`")]
pub(super) struct RawAuth {
    pub auth_type: Option<String>,
    pub auth_pass: Option<String>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a track script: `script`, `interval`, `weight`, `rise`, `fall`, `timeout`"
)]
pub(super) struct RawScript {
    pub script: Option<Command>,
    pub interval: Option<Seconds>,
    pub timeout: Option<Seconds>,
    pub weight: Option<Int>,
    pub rise: Option<Int>,
    pub fall: Option<Int>,
}

/// A tracked thing: its name, or `{name, weight}`.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a name, or a mapping with `name` and `weight`")]
pub(super) enum RawTrack {
    Name(String),
    Weighted(RawWeighted),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeighted {
    pub name: String,
    pub weight: Option<Int>,
}

impl RawTrack {
    pub fn name(&self) -> &str {
        match self {
            RawTrack::Name(n) => n,
            RawTrack::Weighted(w) => &w.name,
        }
    }

    pub fn weight(&self) -> Option<Int> {
        match self {
            RawTrack::Name(_) => None,
            RawTrack::Weighted(w) => w.weight,
        }
    }
}

/// A command: keepalived's line, split at whitespace, or a list.
pub(super) struct Command(pub Vec<String>);

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command: `\"/path/prog arg\"` or `[/path/prog, arg]`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Command, E> {
                Ok(Command(v.split_whitespace().map(str::to_owned).collect()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Command, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Command(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A time: keepalived's seconds (`1`, `0.1`) or a duration (`100ms`).
#[derive(Clone, Copy)]
pub(super) struct Seconds(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("seconds (`1`, `0.1`) or a duration (`100ms`)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                if !(0.0..=86_400.0).contains(&v) {
                    return Err(E::custom(format!("{v} seconds is out of range 0..=86400")));
                }
                Ok(Seconds(Duration::from_millis((v * 1000.0).round() as u64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                parse_duration(v).map(Seconds).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}
