//! The log keys: `proxy.log` (HAProxy's global `log` lines), and in
//! `proxy.defaults` and each frontend `log` (`global`, `false` or its own
//! targets), `httplog`, `tcplog`, `dontlognull`, `log_separate_errors`,
//! `dontlog_normal`. A frontend's keys override the defaults' one by one.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::diagnostic::Problems;
use crate::positions::YamlPath;
use crate::proxy::*;
use crate::raw::{Each, Int};
use crate::validate::in_range;

/// One log target as written.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a log target: `address` or `file`, `facility`, `level`, `minlevel`, `format`, `len`"
)]
pub(crate) struct RawLogTarget {
    pub address: Option<String>,
    pub file: Option<String>,
    pub facility: Option<Facility>,
    pub level: Option<Severity>,
    pub minlevel: Option<Severity>,
    pub format: Option<SyslogFormat>,
    pub len: Option<Int>,
}

/// A section's `log:`.
pub(crate) enum RawLog {
    /// `global`: `proxy.log`'s targets.
    Global,
    /// `false`: none (HAProxy `no log`).
    Off,
    Targets(Vec<Each<RawLogTarget>>),
}

/// The log keys of `proxy.defaults` or a frontend, taken out of its raw struct.
#[derive(Default)]
pub(crate) struct RawLogKeys {
    pub log: Option<RawLog>,
    pub httplog: Option<LogOption>,
    pub tcplog: Option<LogOption>,
    pub dontlognull: Option<bool>,
    pub log_separate_errors: Option<bool>,
    pub dontlog_normal: Option<bool>,
}

/// Moves the log keys out of a raw struct that has them as fields.
macro_rules! take_log_keys {
    ($raw:expr) => {
        $crate::validate::proxy::log::RawLogKeys {
            log: $raw.log.take(),
            httplog: $raw.httplog.take(),
            tcplog: $raw.tcplog.take(),
            dontlognull: $raw.dontlognull.take(),
            log_separate_errors: $raw.log_separate_errors.take(),
            dontlog_normal: $raw.dontlog_normal.take(),
        }
    };
}
pub(crate) use take_log_keys;

/// `proxy.log`: the targets whose every key is right.
pub(super) fn targets(
    raw: Vec<Each<RawLogTarget>>,
    at: &YamlPath,
    p: &mut Problems,
) -> Vec<LogTarget> {
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, each)| {
            let t_at = at.index(i);
            let (t, broken) = each.parse(&t_at, p)?;
            target(t, &broken, &t_at, p)
        })
        .collect()
}

fn target(
    raw: RawLogTarget,
    broken: &crate::raw::Broken,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<LogTarget> {
    let destination = match (raw.address, raw.file) {
        (Some(_), Some(_)) => {
            p.error_at_key(
                &at.key("file"),
                "a log target has `address` or `file`, not both",
            );
            None
        }
        (Some(a), None) => LogDestination::parse_address(&a)
            .map_err(|why| p.error(&at.key("address"), why))
            .ok(),
        (None, Some(f)) if f.starts_with('/') => Some(LogDestination::File(f.into())),
        (None, Some(f)) => {
            p.error(
                &at.key("file"),
                format!(
                    "`{f}` is not an absolute path: the agent's working directory is not the file's"
                ),
            );
            None
        }
        (None, None) if broken.contains("address") || broken.contains("file") => None,
        (None, None) => {
            p.error(
                at,
                "missing `address` (e.g. `127.0.0.1`, `/dev/log`, `stdout`) or `file`",
            );
            None
        }
    };
    if raw.facility.is_none() && !broken.contains("facility") {
        p.error(
            at,
            "missing `facility` (e.g. `local2`), as HAProxy's `log` line requires",
        );
    }
    let len = match raw.len {
        None => Some(DEFAULT_LOG_LEN),
        Some(n) => in_range(n, LOG_LEN_RANGE, "len", &at.key("len"), p),
    };
    Some(LogTarget {
        destination: destination?,
        facility: raw.facility?,
        level: raw.level.unwrap_or(Severity::Debug),
        minlevel: raw.minlevel,
        format: raw.format.unwrap_or(SyslogFormat::Rfc3164),
        len: len?,
    })
    .filter(|_| broken.is_empty())
}

/// A section's log keys over `base` (the defaults'); `mode` is the
/// frontend's (None for `proxy.defaults`), `global` is `proxy.log`.
pub(crate) fn section(
    raw: RawLogKeys,
    base: &FrontendLog,
    global: &[LogTarget],
    mode: Option<ProxyMode>,
    at: &YamlPath,
    p: &mut Problems,
) -> FrontendLog {
    let (format, json) = format(&raw, base, mode, at, p);
    let targets = match raw.log {
        None => base.targets.clone(),
        Some(RawLog::Off) => Vec::new(),
        Some(RawLog::Global) => {
            if global.is_empty() {
                p.warning(
                    &at.key("log"),
                    "`log: global` with no `proxy.log` targets: nothing is logged",
                );
            }
            global.to_vec()
        }
        Some(RawLog::Targets(list)) => targets(list, &at.key("log"), p),
    };
    FrontendLog {
        targets,
        format,
        json,
        dontlognull: raw.dontlognull.unwrap_or(base.dontlognull),
        log_separate_errors: raw.log_separate_errors.unwrap_or(base.log_separate_errors),
        dontlog_normal: raw.dontlog_normal.unwrap_or(base.dontlog_normal),
    }
}

/// `httplog` / `tcplog`: the last word on the format. A TCP frontend has no
/// requests to log: `httplog` falls back to `tcplog` there, as in HAProxy.
fn format(
    raw: &RawLogKeys,
    base: &FrontendLog,
    mode: Option<ProxyMode>,
    at: &YamlPath,
    p: &mut Problems,
) -> (LogFormat, bool) {
    let on = |o: Option<LogOption>| o.filter(|o| *o != LogOption::Off);
    let (format, json) = match (on(raw.httplog), on(raw.tcplog)) {
        (Some(h), Some(_)) => {
            p.error_at_key(
                &at.key("tcplog"),
                "`httplog` and `tcplog` are both on: choose one",
            );
            (LogFormat::Http, h == LogOption::Json)
        }
        (Some(h), None) => (LogFormat::Http, h == LogOption::Json),
        (None, Some(t)) => (LogFormat::Tcp, t == LogOption::Json),
        // Turned off here: HAProxy's basic line at accept.
        (None, None) if raw.httplog.is_some() || raw.tcplog.is_some() => {
            (LogFormat::Connect, false)
        }
        (None, None) => (base.format, base.json),
    };
    if mode == Some(ProxyMode::Tcp) && format == LogFormat::Http {
        if raw.httplog.is_some() {
            p.warning_at_key(
                &at.key("httplog"),
                "`httplog` needs `mode: http`: this tcp frontend logs with `tcplog`",
            );
        }
        return (LogFormat::Tcp, json);
    }
    (format, json)
}

impl<'de> Deserialize<'de> for RawLog {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawLog;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`global`, `false`, or a list of log targets")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawLog, E> {
                match v {
                    false => Ok(RawLog::Off),
                    true => Err(E::invalid_value(de::Unexpected::Bool(true), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawLog, E> {
                match v {
                    "global" => Ok(RawLog::Global),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<RawLog, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(RawLog::Targets)
            }
        }
        d.deserialize_any(V)
    }
}
