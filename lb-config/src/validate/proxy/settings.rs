//! The settings `proxy.defaults` gives and frontends, pools and backends
//! override: timeouts, `forwardfor`, the cookie, balance and retries.
//! A key left out is inherited; a cookie or `forwardfor` set to `false`
//! (or `null`) turns an inherited one off, as HAProxy's `no option …`.

use std::time::Duration;

use super::raw::{RawCookie, RawDefaults, RawForwardFor, RawPoolL7, RawTimeouts};
use crate::diagnostic::Problems;
use crate::duration::{DurationText, format_duration};
use crate::positions::YamlPath;
use crate::proxy::*;
use crate::raw::Int;
use crate::validate::in_range;

/// Which timeouts a section may set.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// `proxy.defaults`: all of them.
    All,
    /// A frontend: `http_request`, `http_keep_alive`, `client`.
    Client,
    /// A pool: `connect`, `server`, `queue`.
    Server,
}

/// `timeout:` over `base`; keys of the other side are refused, saying
/// where they go.
pub(super) fn timeouts(
    raw: Option<RawTimeouts>,
    side: Side,
    base: &Timeouts,
    at: &YamlPath,
    p: &mut Problems,
) -> Timeouts {
    let mut t = *base;
    let Some(raw) = raw else { return t };
    if raw.check.is_some() {
        p.error_at_key(
            &at.key("check"),
            "HAProxy's `timeout check` is the health checks' timeout here: set `health.timeout` \
             (or a pool's `check.timeout`)",
        );
    }
    let fields: [(&str, Option<DurationText>, &mut Duration, Side); 6] = [
        (
            "http_request",
            raw.http_request,
            &mut t.http_request,
            Side::Client,
        ),
        (
            "http_keep_alive",
            raw.http_keep_alive,
            &mut t.http_keep_alive,
            Side::Client,
        ),
        ("client", raw.client, &mut t.client, Side::Client),
        ("connect", raw.connect, &mut t.connect, Side::Server),
        ("server", raw.server, &mut t.server, Side::Server),
        ("queue", raw.queue, &mut t.queue, Side::Server),
    ];
    for (key, value, slot, belongs) in fields {
        let Some(DurationText(d)) = value else {
            continue;
        };
        let key_at = at.key(key);
        if side != Side::All && side != belongs {
            let (what, place) = match belongs {
                Side::Client => ("client-side", "a frontend"),
                _ => ("server-side", "the pool"),
            };
            p.error_at_key(
                &key_at,
                format!(
                    "timeout.{key} is a {what} timeout: set it on {place}, or in proxy.defaults"
                ),
            );
        } else if let Some(d) = in_bounds(d, key, &key_at, p) {
            *slot = d;
        }
    }
    t
}

/// A timeout lb can keep: neither 0 (never, in HAProxy) nor past HAProxy's
/// longest.
fn in_bounds(d: Duration, key: &str, at: &YamlPath, p: &mut Problems) -> Option<Duration> {
    if d.is_zero() || d > MAX_TIMEOUT {
        p.error(
            at,
            format!(
                "timeout.{key} must be between 1ms and {} (HAProxy's 0, never, is not offered)",
                format_duration(MAX_TIMEOUT)
            ),
        );
        return None;
    }
    Some(d)
}

/// `forwardfor:` over `inherited`.
pub(super) fn forwardfor(
    raw: Option<Option<RawForwardFor>>,
    inherited: &Option<ForwardFor>,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<ForwardFor> {
    let options = match raw {
        None => return inherited.clone(),
        Some(None | Some(RawForwardFor::Enabled(false))) => return None,
        Some(Some(RawForwardFor::Enabled(true))) => Default::default(),
        Some(Some(RawForwardFor::With(o))) => o,
    };
    let except = options.except.and_then(|text| match text.parse::<IpNet>() {
        Ok(net) => Some(net),
        Err(why) => {
            p.error(&at.key("except"), why);
            None
        }
    });
    let header = match options.header {
        None => DEFAULT_FORWARDFOR_HEADER.to_owned(),
        Some(h) => {
            if let Err(why) = check_header_name(&h) {
                p.error(&at.key("header"), why);
            }
            h
        }
    };
    Some(ForwardFor { except, header })
}

/// `proxy.defaults`. What is wrong is reported and left at its default.
pub(super) fn defaults(raw: Option<RawDefaults>, at: &YamlPath, p: &mut Problems) -> ProxyDefaults {
    let d = ProxyDefaults::default();
    let Some(mut raw) = raw else { return d };
    let maxconn = raw
        .maxconn
        .and_then(|n| in_range(n, MAXCONN_RANGE, "maxconn", &at.key("maxconn"), p))
        .unwrap_or(d.maxconn);
    let forwardfor = forwardfor(raw.forwardfor.take(), &None, &at.key("forwardfor"), p);
    let pool = pool_l7(raw.pool_keys(), &d.pool, Side::All, at, p).unwrap_or(d.pool);
    ProxyDefaults {
        maxconn,
        forwardfor,
        forwarded_proto: raw.forwarded_proto.unwrap_or(d.forwarded_proto),
        pool,
        // Checked beside (`log: global` needs `proxy.log`).
        log: d.log,
    }
}

/// A pool's L7 keys over `proxy.defaults`; `None` if any is wrong.
pub(crate) fn pool_settings(
    raw: RawPoolL7,
    defaults: &PoolL7,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<PoolL7> {
    pool_l7(raw, defaults, Side::Server, at, p)
}

fn pool_l7(
    raw: RawPoolL7,
    base: &PoolL7,
    side: Side,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<PoolL7> {
    let written = raw.balance.is_some() || raw.hash_type.is_some();
    let balance = match raw.balance.map(|b| b.parse::<Balance>()) {
        None => Some(base.balance.clone()),
        Some(Ok(b)) => Some(b),
        Some(Err(why)) => {
            p.error(&at.key("balance"), why);
            None
        }
    };
    let retries = match raw.retries {
        None => Some(base.retries),
        Some(n) => in_range(n, RETRIES_RANGE, "retries", &at.key("retries"), p),
    };
    let cookie = cookie(raw.cookie, &base.cookie, &at.key("cookie"), p);
    let timeouts = timeouts(raw.timeout, side, &base.timeouts, &at.key("timeout"), p);
    let hash_type = raw.hash_type.unwrap_or(base.hash_type);
    let source = super::source::source(raw.source, &base.source, &at.key("source"), p);
    let (Some(balance), Some(retries), Some(cookie), Some(source)) =
        (balance, retries, cookie, source)
    else {
        return None;
    };
    if written && hash_type == HashType::Consistent && !balance.hashes() {
        p.warning(
            &at.key("hash_type"),
            format!("hash_type consistent has no effect with balance {balance}: only hash balances use it"),
        );
    }
    Some(PoolL7 {
        balance,
        hash_type,
        cookie,
        retries,
        redispatch: raw.redispatch.unwrap_or(base.redispatch),
        abortonclose: raw.abortonclose.unwrap_or(base.abortonclose),
        http_server_close: raw.http_server_close.unwrap_or(base.http_server_close),
        timeouts,
        source,
    })
}

/// `cookie:` over `inherited`: outer `None` when it is wrong (reported).
fn cookie(
    raw: Option<Option<RawCookie>>,
    inherited: &Option<CookieConfig>,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<Option<CookieConfig>> {
    let (o, name_at) = match raw {
        None => return Some(inherited.clone()),
        Some(None | Some(RawCookie::Off)) => return Some(None),
        Some(Some(RawCookie::Name(name))) => (
            super::raw::RawCookieOptions {
                name: Some(name),
                ..Default::default()
            },
            at.clone(),
        ),
        Some(Some(RawCookie::Full(o))) => (o, at.key("name")),
    };
    let Some(name) = o.name else {
        p.error(
            at,
            "missing required key `name` (the cookie's name, e.g. SERVERID)",
        );
        return None;
    };
    if !is_token(&name) {
        p.error(
            &name_at,
            format!("`{name}` is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)"),
        );
        return None;
    }
    let c = CookieConfig {
        name,
        mode: o.mode.unwrap_or_default(),
        indirect: o.indirect.unwrap_or(false),
        nocache: o.nocache.unwrap_or(false),
        httponly: o.httponly.unwrap_or(false),
        secure: o.secure.unwrap_or(false),
    };
    cookie_warnings(&c, at, p);
    Some(Some(c))
}

/// Options HAProxy accepts where they do nothing.
fn cookie_warnings(c: &CookieConfig, at: &YamlPath, p: &mut Problems) {
    if c.mode != CookieMode::Insert {
        for (set, key) in [
            (c.nocache, "nocache"),
            (c.httponly, "httponly"),
            (c.secure, "secure"),
        ] {
            if set {
                p.warning(
                    &at.key(key),
                    format!(
                        "`{key}` applies to a cookie lb inserts: it does nothing with mode {}",
                        c.mode
                    ),
                );
            }
        }
    }
    if c.mode == CookieMode::Prefix && c.indirect {
        p.warning(
            &at.key("indirect"),
            "`indirect` with mode prefix keeps the server's own cookie updates from reaching \
             clients (HAProxy's manual advises against it)",
        );
    }
}

/// A backend's `cookie` and `maxconn`; `None` if either is wrong.
pub(crate) fn backend_l7(
    cookie: Option<String>,
    maxconn: Option<Int>,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<BackendL7> {
    let maxconn = match maxconn {
        None => Some(None),
        Some(n) => in_range(n, MAXCONN_RANGE, "maxconn", &at.key("maxconn"), p).map(Some),
    };
    let cookie = match cookie {
        Some(v) if v.is_empty() || !v.bytes().all(is_cookie_octet) => {
            p.error(
                &at.key("cookie"),
                format!("`{v}` cannot be a cookie value: no spaces, quotes, commas, semicolons or backslashes"),
            );
            None
        }
        c => Some(c),
    };
    Some(BackendL7 {
        cookie: cookie?,
        maxconn: maxconn?,
    })
}

/// RFC 6265 §4.1.1 `cookie-octet`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}
