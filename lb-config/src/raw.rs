//! The file as written: serde structs that reject unknown keys, and a
//! deserializer that reports every shape error of a node, not just the first.
//!
//! Every field is optional here; required keys and ranges are checked in
//! `validate`, where a missing key is one more located error rather than the end
//! of deserialization. Lists of structs are kept as YAML ([`Each`]) and
//! deserialized element by element, so an error in `backends[0]` does not hide
//! one in `backends[3]`.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_yaml::Value;

use super::diagnostic::Problems;
use super::duration::DurationText;
use super::model::{HashMode, LogLevel, Protocol, XdpMode};
use super::positions::{Segment, YamlPath};
use super::proxy::HashType;
use super::validate::proxy::raw::{RawCookie, RawPoolL7, RawSource, RawTimeouts, take_pool_l7};

/// The whole document.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with the keys `agent`, `interfaces`, `pools` and `services`"
)]
pub(super) struct RawConfig {
    pub agent: Option<RawAgent>,
    pub interfaces: Option<Vec<Each<RawInterface>>>,
    /// A mapping of pool name → pool, walked entry by entry.
    pub pools: Option<Value>,
    pub services: Option<Vec<Each<RawService>>>,
    pub health: Option<RawHealth>,
    /// Checked in `validate::vrrp`, which has the section's raw structs.
    pub vrrp: Option<Value>,
    /// Checked in `validate::proxy`, which has the L7 sections' raw structs.
    pub proxy: Option<Value>,
    pub frontends: Option<Value>,
    /// Checked in `validate::notify`, which has the section's raw structs.
    pub notify: Option<Value>,
    /// Checked in `validate::stats`, which has the section's raw struct.
    pub stats: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of agent settings")]
pub(super) struct RawAgent {
    pub bpffs: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    pub api_listen: Option<String>,
    pub api_token_file: Option<PathBuf>,
    /// Outer `None`: absent (default address); `Some(None)`: `null` (disabled).
    #[serde(default, deserialize_with = "present")]
    pub metrics_listen: Option<Option<String>>,
    pub flow_table_size: Option<Int>,
    pub flow_idle_timeout: Option<DurationText>,
    pub ebpf_log: Option<LogLevel>,
    pub log_level: Option<LogLevel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an interface: a mapping with `name`")]
pub(super) struct RawInterface {
    pub name: Option<String>,
    pub xdp_mode: Option<XdpMode>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a pool: a mapping with `backends`")]
pub(super) struct RawPool {
    pub backends: Option<Vec<Each<RawBackend>>>,
    pub check: Option<RawCheck>,
    pub notify_up: Option<Vec<String>>,
    pub notify_down: Option<Vec<String>>,
    // The L7 proxy's keys (HAProxy `backend` lines), checked in `validate::proxy`.
    pub balance: Option<String>,
    pub hash_type: Option<HashType>,
    #[serde(default, deserialize_with = "present")]
    pub cookie: Option<Option<RawCookie>>,
    pub retries: Option<Int>,
    pub redispatch: Option<bool>,
    pub abortonclose: Option<bool>,
    pub http_server_close: Option<bool>,
    pub timeout: Option<RawTimeouts>,
    #[serde(default, deserialize_with = "present")]
    pub source: Option<Option<RawSource>>,
}

impl RawPool {
    /// Its L7 keys, taken out.
    pub fn l7(&mut self) -> RawPoolL7 {
        take_pool_l7!(self)
    }
}

/// When checks run: `health:` defaults, or a check's own (the same keys in
/// both; serde cannot flatten a struct that refuses unknown keys).
#[derive(Clone, Copy, Default)]
pub(super) struct RawTiming {
    pub inter: Option<DurationText>,
    pub fastinter: Option<DurationText>,
    pub downinter: Option<DurationText>,
    pub rise: Option<Int>,
    pub fall: Option<Int>,
    pub timeout: Option<DurationText>,
}

/// `health:`.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "health-check defaults: `inter`, `rise`, `fall`, `timeout`, `concurrency`, …"
)]
pub(super) struct RawHealth {
    pub inter: Option<DurationText>,
    pub fastinter: Option<DurationText>,
    pub downinter: Option<DurationText>,
    pub rise: Option<Int>,
    pub fall: Option<Int>,
    pub timeout: Option<DurationText>,
    pub concurrency: Option<Int>,
}

impl RawHealth {
    pub fn timing(&self) -> RawTiming {
        RawTiming {
            inter: self.inter,
            fastinter: self.fastinter,
            downinter: self.downinter,
            rise: self.rise,
            fall: self.fall,
            timeout: self.timeout,
        }
    }
}

/// A pool's `check:`: every type's keys, checked against `type` in `validate`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a check: a mapping with `type`, …")]
pub(super) struct RawCheck {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub inter: Option<DurationText>,
    pub fastinter: Option<DurationText>,
    pub downinter: Option<DurationText>,
    pub rise: Option<Int>,
    pub fall: Option<Int>,
    pub timeout: Option<DurationText>,
    pub port: Option<Int>,
    pub address: Option<String>,
    pub via_service: Option<String>,
    pub send: Option<String>,
    pub expect: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub status: Option<Value>,
    pub body: Option<String>,
    pub digest: Option<String>,
    pub sni: Option<String>,
    pub verify: Option<bool>,
    pub user: Option<String>,
    pub command: Option<Vec<String>>,
}

impl RawCheck {
    pub fn timing(&self) -> RawTiming {
        RawTiming {
            inter: self.inter,
            fastinter: self.fastinter,
            downinter: self.downinter,
            rise: self.rise,
            fall: self.fall,
            timeout: self.timeout,
        }
    }
}

/// A backend's `check:`: `false` (no check), `true`, or where to aim.
pub(super) enum RawBackendCheck {
    Enabled(bool),
    Aim(RawCheckAim),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "`port` and/or `address`")]
pub(super) struct RawCheckAim {
    pub port: Option<Int>,
    pub address: Option<String>,
}

impl<'de> de::Deserialize<'de> for RawBackendCheck {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawBackendCheck;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`false`, `true`, or a mapping with `port` and/or `address`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawBackendCheck, E> {
                Ok(RawBackendCheck::Enabled(v))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RawBackendCheck, A::Error> {
                RawCheckAim::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawBackendCheck::Aim)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a service: a mapping with `address`, `port`, `pool`, …"
)]
pub(super) struct RawService {
    pub name: Option<String>,
    pub address: Option<String>,
    pub port: Option<Int>,
    pub protocol: Option<Protocol>,
    /// A string, not an enum, so `tunnel` and `nat` get "not supported yet".
    pub mode: Option<String>,
    pub hash: Option<HashMode>,
    pub ring_size: Option<RawRingSize>,
    pub pool: Option<String>,
}

/// `ring_size:` as written: `auto` or an integer (range-checked later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RawRingSize {
    Auto,
    Fixed(Int),
}

impl<'de> de::Deserialize<'de> for RawRingSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawRingSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`auto` or a prime number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawRingSize, E> {
                Ok(RawRingSize::Fixed(Int(v.into())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawRingSize, E> {
                Ok(RawRingSize::Fixed(Int(v.into())))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRingSize, E> {
                match v {
                    "auto" => Ok(RawRingSize::Auto),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a backend: a mapping with `address`, `weight`, …"
)]
pub(super) struct RawBackend {
    pub address: Option<String>,
    pub name: Option<String>,
    pub port: Option<Int>,
    pub weight: Option<Int>,
    /// A string, not an enum, so `down` gets "reserved for health checks".
    pub state: Option<String>,
    pub interface: Option<String>,
    pub mac: Option<String>,
    pub check: Option<RawBackendCheck>,
    /// L7: its value of the pool's cookie, and requests in flight at most.
    pub cookie: Option<String>,
    pub maxconn: Option<Int>,
}

/// An integer of any size YAML can write, range-checked in `validate` so that
/// the message names the key and its range instead of a Rust type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Int(pub i128);

impl<'de> de::Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `deserialize_with` for keys where `null` means something other than absent.
pub(super) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A list element kept as YAML until [`Each::parse`] deserializes it on its own.
pub(super) struct Each<T> {
    value: Value,
    _type: PhantomData<fn() -> T>,
}

impl<'de, T> Deserialize<'de> for Each<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Each {
            value: Value::deserialize(d)?,
            _type: PhantomData,
        })
    }
}

impl<T: DeserializeOwned> Each<T> {
    /// Deserializes the element found at `at`; `None` when it is unusable
    /// (reported).
    pub fn parse(self, at: &YamlPath, problems: &mut Problems) -> Option<(T, Broken)> {
        deserialize_all(self.value, at, problems)
    }
}

/// Keys of a node whose values were dropped for a shape error (already
/// reported): a missing required key among them is not reported again, and a
/// node with any yields no model, whose defaults in their place would mislead.
#[derive(Debug, Default)]
pub(super) struct Broken(Vec<String>);

impl Broken {
    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|k| k == key)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Deserializes `value`, found at `at`, into `T`, reporting every error instead of
/// the first: after each error the offending entry is removed and deserialization
/// retried, so a struct with three bad keys yields three diagnostics. Returns the
/// value built from what was left, or `None` when the node itself has the wrong
/// shape.
pub(super) fn deserialize_all<T: DeserializeOwned>(
    mut value: Value,
    at: &YamlPath,
    problems: &mut Problems,
) -> Option<(T, Broken)> {
    let mut broken = Broken::default();
    loop {
        let err = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(t) => return Some((t, broken)),
            Err(e) => e,
        };
        // Known segments only: an `Unknown` one (a non-string key) stops the walk.
        let mut relative = Vec::new();
        for s in err.path().iter() {
            match s {
                serde_path_to_error::Segment::Map { key } => {
                    relative.push(Segment::Key(key.clone()))
                }
                serde_path_to_error::Segment::Seq { index } => {
                    relative.push(Segment::Index(*index))
                }
                _ => break,
            }
        }
        let path = relative.iter().cloned().fold(at.clone(), |p, s| p.child(s));
        let message = err.inner().to_string();
        let unknown_key = match message.strip_prefix("unknown field") {
            // YAML has keys, not fields.
            Some(rest) => {
                problems.error_at_key(&path, format!("unknown key{rest}"));
                true
            }
            None => {
                problems.error(&path, message);
                false
            }
        };
        if !remove(&mut value, &relative) {
            return None;
        }
        // Dropping an unknown key changes no known value; dropping a bad value
        // leaves a default in its place.
        if let (false, Some(Segment::Key(k))) = (unknown_key, relative.first()) {
            broken.0.push(k.clone());
        }
    }
}

/// Removes the mapping entry at `path` (relative to `value`); false when there is
/// none, in which case retrying would fail the same way.
fn remove(value: &mut Value, path: &[Segment]) -> bool {
    let Some((Segment::Key(last), parents)) = path.split_last() else {
        return false;
    };
    let mut node = value;
    for s in parents {
        let next = match s {
            Segment::Key(k) => node.as_mapping_mut().and_then(|m| m.get_mut(k.as_str())),
            Segment::Index(i) => node.as_sequence_mut().and_then(|v| v.get_mut(*i)),
        };
        let Some(next) = next else { return false };
        node = next;
    }
    node.as_mapping_mut()
        .and_then(|m| m.shift_remove(last.as_str()))
        .is_some()
}

/// Removes, and reports, mapping keys that are not strings (`80: x`): serde
/// cannot say where they are, and no key of the schema is anything but a name.
pub(super) fn drop_non_string_keys(value: &mut Value, at: &YamlPath, problems: &mut Problems) {
    match value {
        Value::Mapping(m) => {
            m.retain(|k, _| {
                if k.is_string() {
                    return true;
                }
                let text = match k {
                    Value::Null => "null".to_owned(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => "…".to_owned(),
                };
                problems.error_at_key(
                    &at.key(&text),
                    format!("key `{text}` is not a name; keys are words like `port`"),
                );
                false
            });
            for (k, v) in m.iter_mut() {
                if let Some(k) = k.as_str() {
                    drop_non_string_keys(v, &at.key(k), problems);
                }
            }
        }
        Value::Sequence(s) => {
            for (i, v) in s.iter_mut().enumerate() {
                drop_non_string_keys(v, &at.index(i), problems);
            }
        }
        _ => {}
    }
}
