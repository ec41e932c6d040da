//! `health:` defaults, a pool's `check:` and a backend's `check:`: required
//! keys, keys that belong to another check type, ranges, and the defaults
//! HAProxy gives (`fastinter`, `downinter` and `timeout` default to `inter`).

use std::net::IpAddr;
use std::time::Duration;

use serde_yaml::Value;

use super::address::address;
use super::in_range;
use crate::check::*;
use crate::diagnostic::Problems;
use crate::positions::YamlPath;
use crate::raw::{RawBackendCheck, RawCheck, RawHealth, RawTiming};

/// `health:` as given: what a check inherits when it says nothing.
#[derive(Clone, Copy)]
pub(super) struct Defaults {
    inter: Duration,
    fastinter: Option<Duration>,
    downinter: Option<Duration>,
    rise: u32,
    fall: u32,
    timeout: Option<Duration>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            inter: DEFAULT_INTER,
            fastinter: None,
            downinter: None,
            rise: DEFAULT_RISE,
            fall: DEFAULT_FALL,
            timeout: None,
        }
    }
}

impl Defaults {
    /// The timing of a check that sets `raw` over these defaults.
    fn resolve(&self, raw: &RawTiming, at: &YamlPath, p: &mut Problems) -> CheckTiming {
        let inter = interval(raw.inter, "inter", at, p).unwrap_or(self.inter);
        let own = |v, key, fallback: Option<Duration>, p: &mut Problems| {
            interval(v, key, at, p).or(fallback).unwrap_or(inter)
        };
        CheckTiming {
            inter,
            fastinter: own(raw.fastinter, "fastinter", self.fastinter, p),
            downinter: own(raw.downinter, "downinter", self.downinter, p),
            rise: threshold(raw.rise, "rise", at, p).unwrap_or(self.rise),
            fall: threshold(raw.fall, "fall", at, p).unwrap_or(self.fall),
            timeout: own(raw.timeout, "timeout", self.timeout, p),
        }
    }
}

/// `health:`: the defaults for checks, and the model's view of them.
pub(super) fn health(
    raw: Option<RawHealth>,
    at: &YamlPath,
    p: &mut Problems,
) -> (Defaults, HealthConfig) {
    let Some(raw) = raw else {
        return (Defaults::default(), HealthConfig::default());
    };
    let t = raw.timing();
    let base = Defaults::default();
    let d = Defaults {
        inter: interval(t.inter, "inter", at, p).unwrap_or(base.inter),
        fastinter: interval(t.fastinter, "fastinter", at, p),
        downinter: interval(t.downinter, "downinter", at, p),
        rise: threshold(t.rise, "rise", at, p).unwrap_or(base.rise),
        fall: threshold(t.fall, "fall", at, p).unwrap_or(base.fall),
        timeout: interval(t.timeout, "timeout", at, p),
    };
    let concurrency = raw
        .concurrency
        .and_then(|n| {
            in_range(
                n,
                1..=1_000_000u32,
                "concurrency",
                &at.key("concurrency"),
                p,
            )
        })
        .unwrap_or(DEFAULT_CONCURRENCY);
    let config = HealthConfig {
        defaults: d.resolve(&RawTiming::default(), at, p),
        concurrency,
    };
    (d, config)
}

fn interval(
    v: Option<crate::duration::DurationText>,
    key: &str,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<Duration> {
    let d = v?.0;
    if d < MIN_INTERVAL {
        p.error(
            &at.key(key),
            format!("{key} must be at least {}ms", MIN_INTERVAL.as_millis()),
        );
        return None;
    }
    Some(d)
}

fn threshold(
    v: Option<crate::raw::Int>,
    key: &str,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<u32> {
    in_range(v?, THRESHOLD_RANGE, key, &at.key(key), p)
}

/// Which check types a key belongs to, for "does not apply" errors.
const TYPED_KEYS: [(&str, &[&str]); 12] = [
    ("send", &["tcp"]),
    ("expect", &["tcp"]),
    ("method", &["http", "https"]),
    ("path", &["http", "https"]),
    ("host", &["http", "https"]),
    ("status", &["http", "https"]),
    ("body", &["http", "https"]),
    ("digest", &["http", "https"]),
    ("sni", &["https"]),
    ("verify", &["https"]),
    ("user", &["mysql"]),
    ("command", &["script"]),
];

/// A pool's `check:`; `None` when something is wrong (reported).
pub(super) fn check(
    raw: RawCheck,
    d: &Defaults,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<CheckConfig> {
    let timing = d.resolve(&raw.timing(), at, p);
    let port = raw
        .port
        .and_then(|n| in_range(n, 1..=u16::MAX, "port", &at.key("port"), p));
    let addr = raw
        .address
        .as_deref()
        .and_then(|s| address(s, "check", &at.key("address"), p));
    let Some(type_name) = raw.kind.clone() else {
        p.error(
            at,
            "missing required key `type` (icmp, tcp, http, https, mysql or script)",
        );
        return None;
    };
    foreign_keys(&raw, &type_name, at, p);
    if type_name == "icmp" && raw.port.is_some() {
        p.error(
            &at.key("port"),
            "`port` does not apply to `type: icmp` checks",
        );
    }
    let via_service = raw.via_service.clone();
    let kind = kind(raw, &type_name, at, p)?;
    Some(CheckConfig {
        kind,
        timing,
        port,
        address: addr,
        via_service,
    })
}

/// Reports the keys set that belong to other check types.
fn foreign_keys(raw: &RawCheck, type_name: &str, at: &YamlPath, p: &mut Problems) {
    let set = [
        raw.send.is_some(),
        raw.expect.is_some(),
        raw.method.is_some(),
        raw.path.is_some(),
        raw.host.is_some(),
        raw.status.is_some(),
        raw.body.is_some(),
        raw.digest.is_some(),
        raw.sni.is_some(),
        raw.verify.is_some(),
        raw.user.is_some(),
        raw.command.is_some(),
    ];
    for ((key, types), set) in TYPED_KEYS.iter().zip(set) {
        if set && !types.contains(&type_name) {
            p.error_at_key(
                &at.key(key),
                format!(
                    "`{key}` does not apply to `type: {type_name}` checks (it is for {})",
                    types.join(" and ")
                ),
            );
        }
    }
}

/// The type and its own keys.
fn kind(raw: RawCheck, type_name: &str, at: &YamlPath, p: &mut Problems) -> Option<CheckKind> {
    Some(match type_name {
        "icmp" => CheckKind::Icmp,
        "tcp" => CheckKind::Tcp {
            send: raw.send,
            expect: raw.expect,
        },
        "http" => CheckKind::Http(http(&raw, at, p)?),
        "https" => CheckKind::Https(HttpsCheck {
            http: http(&raw, at, p)?,
            sni: raw.sni,
            verify: raw.verify.unwrap_or(false),
        }),
        "mysql" => match raw.user {
            Some(u) if u.is_empty() => {
                p.error(&at.key("user"), "user is empty");
                return None;
            }
            user => CheckKind::Mysql { user },
        },
        "script" => CheckKind::Script {
            command: command(raw.command, at, p)?,
        },
        other => {
            p.error(
                &at.key("type"),
                format!("unknown check type `{other}`, expected one of `icmp`, `tcp`, `http`, `https`, `mysql`, `script`"),
            );
            return None;
        }
    })
}

fn http(raw: &RawCheck, at: &YamlPath, p: &mut Problems) -> Option<HttpCheck> {
    let method = raw.method.clone().unwrap_or_else(|| "GET".to_owned());
    let method_ok = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    if !method_ok {
        p.error(
            &at.key("method"),
            format!("method `{method}` is not an HTTP method (e.g. `GET`, `HEAD`)"),
        );
    }
    let path = raw.path.clone().unwrap_or_else(|| "/".to_owned());
    let path_ok = path.starts_with('/') && !path.bytes().any(|b| b <= b' ' || b == 0x7f);
    if !path_ok {
        p.error(
            &at.key("path"),
            format!("path `{path}` must start with `/` and hold no spaces or control characters"),
        );
    }
    let host_ok = raw
        .host
        .as_deref()
        .is_none_or(|h| !h.is_empty() && !h.bytes().any(|b| b <= b' ' || b == 0x7f));
    if !host_ok {
        p.error(
            &at.key("host"),
            "host must be a name without spaces or control characters",
        );
    }
    let digest_ok = raw.digest.as_deref().is_none_or(|d| {
        d.len() == 32
            && d.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    });
    if !digest_ok {
        p.error(
            &at.key("digest"),
            "digest is the body's MD5 as 32 lowercase hex digits (as `md5sum` prints it)",
        );
    }
    let status = match &raw.status {
        None => Some(vec![DEFAULT_STATUS]),
        Some(v) => statuses(v, &at.key("status"), p),
    };
    (method_ok && path_ok && host_ok && digest_ok).then_some(())?;
    Some(HttpCheck {
        method,
        path,
        host: raw.host.clone(),
        status: status?,
        body: raw.body.clone(),
        digest: raw.digest.clone(),
    })
}

/// `status: 200`, `status: 200-399`, or a list of those.
fn statuses(v: &Value, at: &YamlPath, p: &mut Problems) -> Option<Vec<StatusRange>> {
    let items: Vec<&Value> = match v {
        Value::Sequence(s) => s.iter().collect(),
        one => vec![one],
    };
    let mut out = Vec::new();
    for item in items {
        let text = match item {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        };
        match status_range(&text) {
            Some(r) => out.push(r),
            None => {
                p.error(
                    at,
                    format!(
                        "`{text}` is not a status or range of statuses (e.g. `200`, `200-399`)"
                    ),
                );
                return None;
            }
        }
    }
    if out.is_empty() {
        p.error(at, "status lists no status");
        return None;
    }
    Some(out)
}

fn status_range(text: &str) -> Option<StatusRange> {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    ((100..=599).contains(&lo) && (lo..=599).contains(&hi)).then_some(StatusRange { lo, hi })
}

/// A script's command: a program given by absolute path, then its arguments.
fn command(raw: Option<Vec<String>>, at: &YamlPath, p: &mut Problems) -> Option<Vec<String>> {
    let Some(cmd) = raw else {
        p.error(
            at,
            "missing required key `command` (the program and its arguments, as a list)",
        );
        return None;
    };
    match cmd.first() {
        None => p.error(&at.key("command"), "command is empty"),
        Some(prog) if !prog.starts_with('/') => p.error(
            &at.key("command"),
            format!("the program `{prog}` must be an absolute path (the agent runs from `/`)"),
        ),
        Some(_) => return Some(cmd),
    }
    None
}

/// A backend's `check:`.
pub(super) fn backend_check(
    raw: Option<RawBackendCheck>,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<BackendCheck> {
    match raw {
        None | Some(RawBackendCheck::Enabled(true)) => Some(BackendCheck::default()),
        Some(RawBackendCheck::Enabled(false)) => Some(BackendCheck {
            disabled: true,
            ..BackendCheck::default()
        }),
        Some(RawBackendCheck::Aim(aim)) => {
            let port = match aim.port {
                None => Some(None),
                Some(n) => in_range(n, 1..=u16::MAX, "port", &at.key("port"), p).map(Some),
            };
            let addr: Option<Option<IpAddr>> = match aim.address.as_deref() {
                None => Some(None),
                Some(s) => address(s, "check", &at.key("address"), p).map(Some),
            };
            Some(BackendCheck {
                disabled: false,
                port: port?,
                address: addr?,
            })
        }
    }
}
