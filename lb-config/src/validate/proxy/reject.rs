//! A frontend's `src_deny`, `src_allow` and `rate_limit` keys: networks
//! written in place or read from files (HAProxy's `-f` pattern files: one
//! address or network a line, `#` comments), and the per-source limits
//! with what a request over its rate gets.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::diagnostic::Problems;
use crate::duration::{DurationText, format_duration};
use crate::positions::YamlPath;
use crate::proxy::*;
use crate::raw::{Each, Int};
use crate::validate::in_range;

/// `rate_limit:` as written.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "rate limits: `period`, `conn_rate`, `http_req_rate`, `conn_cur`, `table_size`, `reply`"
)]
pub(crate) struct RawRateLimit {
    pub period: Option<DurationText>,
    pub conn_rate: Option<Int>,
    pub http_req_rate: Option<Int>,
    pub conn_cur: Option<Int>,
    pub table_size: Option<Int>,
    /// A status or `close`, told apart when checked.
    pub reply: Option<Value>,
}

/// The three keys as taken out of the frontend's raw struct.
pub(super) struct RawReject {
    pub src_deny: Option<Vec<Each<String>>>,
    pub src_allow: Option<Vec<Each<String>>>,
    pub rate_limit: Option<RawRateLimit>,
}

/// File lines reported at most per file: a wrong file is usually wrong on
/// every line.
const MAX_FILE_ERRORS: usize = 5;

/// The frontend's refusals; `http` is false for a `mode: tcp` frontend,
/// which has no requests to limit.
pub(super) fn reject(raw: RawReject, http: bool, at: &YamlPath, p: &mut Problems) -> Reject {
    let src_deny = raw
        .src_deny
        .map(|list| nets(list, &at.key("src_deny"), p))
        .unwrap_or_default();
    let allow_at = at.key("src_allow");
    let src_allow = raw.src_allow.map(|list| {
        if list.is_empty() {
            p.error(
                &allow_at,
                "an empty `src_allow` refuses every client; leave the key out to allow all",
            );
        }
        nets(list, &allow_at, p)
    });
    let rate_limit = raw
        .rate_limit
        .and_then(|r| rate_limit(r, http, &at.key("rate_limit"), p));
    Reject {
        src_deny,
        src_allow,
        rate_limit,
    }
}

/// The networks of a `src_deny`/`src_allow` list, files read.
fn nets(list: Vec<Each<String>>, at: &YamlPath, p: &mut Problems) -> Vec<IpNet> {
    let mut out = Vec::new();
    for (i, each) in list.into_iter().enumerate() {
        let at = at.index(i);
        let Some((text, _)) = each.parse(&at, p) else {
            continue;
        };
        if text.starts_with('/') {
            out.extend(file(&text, &at, p));
            continue;
        }
        match text.parse::<IpNet>() {
            Ok(net) => out.push(net),
            Err(why) => p.error(
                &at,
                format!(
                    "{why}; an entry is an address, a network (203.0.113.0/24) \
                     or the absolute path of a file of them"
                ),
            ),
        }
    }
    out
}

/// The networks listed in file `path`; its problems are reported at the
/// entry naming it, each with the file's line.
fn file(path: &str, at: &YamlPath, p: &mut Problems) -> Vec<IpNet> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            p.error(at, format!("cannot read `{path}`: {e}"));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        match entry.parse::<IpNet>() {
            Ok(net) => out.push(net),
            Err(why) => errors.push(format!("{path}:{}: {why}", n + 1)),
        }
    }
    let more = errors.len().saturating_sub(MAX_FILE_ERRORS);
    for e in errors.into_iter().take(MAX_FILE_ERRORS) {
        p.error(at, e);
    }
    if more > 0 {
        p.error(at, format!("{path}: {more} more lines are not networks"));
    }
    out
}

/// `rate_limit:`; None when it limits nothing or has errors (reported).
fn rate_limit(raw: RawRateLimit, http: bool, at: &YamlPath, p: &mut Problems) -> Option<RateLimit> {
    let mut ok = http || refuse_http_only(&raw, at, p);
    let mut limit = |n: Option<Int>, key: &str, p: &mut Problems| {
        let checked = n.map(|n| in_range(n, RATE_LIMIT_RANGE, key, &at.key(key), p));
        ok &= checked != Some(None);
        checked.flatten()
    };
    let conn_rate = limit(raw.conn_rate, "conn_rate", p);
    let http_req_rate = limit(raw.http_req_rate, "http_req_rate", p);
    let conn_cur = limit(raw.conn_cur, "conn_cur", p);
    let table_size = raw.table_size.map(|n| {
        in_range(
            n,
            RATE_TABLE_SIZE_RANGE,
            "table_size",
            &at.key("table_size"),
            p,
        )
    });
    let reply = raw.reply.map(|v| reply(v, &at.key("reply"), p));
    let period = period(raw.period, &at.key("period"), p);
    if raw.conn_rate.is_none() && raw.http_req_rate.is_none() && raw.conn_cur.is_none() {
        p.error_at_key(
            at,
            "`rate_limit` sets no limit: give `conn_rate`, `http_req_rate` or `conn_cur`",
        );
        ok = false;
    } else if http && reply.is_some() && raw.http_req_rate.is_none() {
        p.warning_at_key(
            &at.key("reply"),
            "`reply` answers requests over `http_req_rate`, which is not set: it is never sent",
        );
    }
    let limits = RateLimit {
        period: period?,
        conn_rate,
        http_req_rate,
        conn_cur,
        table_size: table_size.unwrap_or(Some(DEFAULT_RATE_TABLE_SIZE))?,
        reply: reply.unwrap_or(Some(DEFAULT_RATE_REPLY))?,
    };
    ok.then_some(limits)
}

/// A `mode: tcp` frontend's `http_req_rate` and `reply`, refused; false
/// when there was one.
fn refuse_http_only(raw: &RawRateLimit, at: &YamlPath, p: &mut Problems) -> bool {
    let mut ok = true;
    for (key, set) in [
        ("http_req_rate", raw.http_req_rate.is_some()),
        ("reply", raw.reply.is_some()),
    ] {
        if set {
            p.error_at_key(
                &at.key(key),
                format!("`rate_limit.{key}` applies to HTTP frontends; this one is `mode: tcp`"),
            );
            ok = false;
        }
    }
    ok
}

fn period(raw: Option<DurationText>, at: &YamlPath, p: &mut Problems) -> Option<Duration> {
    let Some(DurationText(d)) = raw else {
        return Some(DEFAULT_RATE_PERIOD);
    };
    if RATE_PERIOD_RANGE.contains(&d) {
        return Some(d);
    }
    p.error(
        at,
        format!(
            "rate_limit.period must be between {} and {}",
            format_duration(*RATE_PERIOD_RANGE.start()),
            format_duration(*RATE_PERIOD_RANGE.end())
        ),
    );
    None
}

/// `reply:` a status `deny` can answer with, or `close`.
fn reply(v: Value, at: &YamlPath, p: &mut Problems) -> Option<RateReply> {
    match &v {
        Value::String(s) if s == "close" => return Some(RateReply::Close),
        Value::Number(n) => {
            if let Some(s) = n.as_u64().and_then(|n| u16::try_from(n).ok())
                && DENY_STATUSES.contains(&s)
            {
                return Some(RateReply::Status(s));
            }
        }
        _ => {}
    }
    let list: Vec<String> = DENY_STATUSES.iter().map(u16::to_string).collect();
    p.error(
        at,
        format!(
            "`reply` is `close` (no answer) or a status: one of {}",
            list.join(", ")
        ),
    );
    None
}
