//! `stats:`: where the statistics page listens, its path, who may read it
//! and who may act on it, each problem at its key.

use std::collections::HashSet;
use std::net::SocketAddr;

use serde::Deserialize;
use serde_yaml::Value;

use crate::diagnostic::Problems;
use crate::duration::DurationText;
use crate::model::AgentConfig;
use crate::positions::YamlPath;
use crate::proxy::{Bind, FrontendConfig, FrontendLog, LogFormat, ProxyConfig, ProxyMode};
use crate::raw::deserialize_all;
use crate::stats::{DEFAULT_NAME, MIN_REFRESH, StatsAdmin, StatsConfig, StatsUser};
use crate::validate::proxy::log::{RawLog, RawLogKeys, section};

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "stats page settings: `bind`, `uri`, `refresh`, `realm`, `auth`, `hide_version`, `admin`, `name`, `log`"
)]
struct RawStats {
    bind: Option<String>,
    uri: Option<String>,
    refresh: Option<DurationText>,
    realm: Option<String>,
    auth: Option<Vec<String>>,
    hide_version: Option<bool>,
    /// `true`, `false` or a list of user names: read by hand for a clear error.
    admin: Option<Value>,
    name: Option<String>,
    log: Option<RawLog>,
}

/// What the page's address and name may not share, and the log settings
/// it inherits.
pub(super) struct Context<'a> {
    pub agent: &'a AgentConfig,
    pub frontends: &'a [FrontendConfig],
    pub proxy: &'a ProxyConfig,
}

/// The `stats:` section; its defaults (no page) when absent or `null`.
pub(super) fn stats(
    raw: Option<Value>,
    at: &YamlPath,
    cx: &Context<'_>,
    p: &mut Problems,
) -> StatsConfig {
    let d = StatsConfig::default();
    let raw = match raw {
        None | Some(Value::Null) => return d,
        Some(v) => match deserialize_all::<RawStats>(v, at, p) {
            Some((raw, _)) => raw,
            None => return d,
        },
    };
    let users = raw
        .auth
        .map(|a| users(a, &at.key("auth"), p))
        .unwrap_or_default();
    let admin = raw.admin.map_or(StatsAdmin::Nobody, |a| {
        admin(a, &users, &at.key("admin"), p)
    });
    let bind = raw.bind.and_then(|b| bind(&b, &at.key("bind"), cx, p));
    if bind.is_none() && !p.has_errors() {
        p.warning_at_key(at, "stats has no `bind`: no statistics page is served");
    }
    if let Some(b) = bind.filter(|b| users.is_empty() && !b.addr.ip().is_loopback()) {
        p.warning_at_key(
            at,
            format!("stats has no `auth`: anyone who reaches {b} reads the page"),
        );
    }
    let log = log(raw.log, at, cx.proxy, p);
    if raw.name.is_none() {
        warn_default_name(&log, cx, at, p);
    }
    StatsConfig {
        bind,
        uri: raw.uri.map_or(d.uri, |u| uri(u, &at.key("uri"), p)),
        refresh: raw.refresh.map_or(d.refresh, |r| refresh(r, at, p)),
        realm: raw.realm.map_or(d.realm, |r| realm(r, &at.key("realm"), p)),
        users,
        hide_version: raw.hide_version.unwrap_or(d.hide_version),
        admin,
        log,
        name: match raw.name {
            Some(n) => name(n, &at.key("name"), cx, p),
            None => d.name,
        },
    }
}

/// The name in the page's log lines: a frontend's could be taken for it.
fn name(text: String, at: &YamlPath, cx: &Context<'_>, p: &mut Problems) -> String {
    if let Err(why) = crate::rules::check_name("stats", &text) {
        p.error(at, why);
    } else if cx.frontends.iter().any(|f| f.name == text) {
        p.error(
            at,
            format!("`{text}` is a frontend's name: the page's log lines would read as its"),
        );
    }
    text
}

/// The default name, when the page logs and a frontend has it too.
fn warn_default_name(log: &FrontendLog, cx: &Context<'_>, at: &YamlPath, p: &mut Problems) {
    let taken = cx.frontends.iter().any(|f| f.name == DEFAULT_NAME);
    if log.enabled() && taken {
        p.warning_at_key(
            at,
            format!(
                "the page's log lines name it `{DEFAULT_NAME}`, as the frontend of that name: \
                 give it another `name`"
            ),
        );
    }
}

/// `log`: as a frontend's (`global`, `false` or targets); absent, what
/// `proxy.defaults` says, as a HAProxy `listen` section inherits
/// `defaults`. Always httplog lines: the page speaks HTTP.
fn log(raw: Option<RawLog>, at: &YamlPath, proxy: &ProxyConfig, p: &mut Problems) -> FrontendLog {
    let keys = RawLogKeys {
        log: raw,
        ..RawLogKeys::default()
    };
    let log = section(
        keys,
        &proxy.defaults.log,
        &proxy.log,
        Some(ProxyMode::Http),
        at,
        p,
    );
    FrontendLog {
        format: LogFormat::Http,
        ..log
    }
}

/// An address of its own: not a frontend's, not another agent listener's.
fn bind(text: &str, at: &YamlPath, cx: &Context<'_>, p: &mut Problems) -> Option<Bind> {
    let b = match text.parse::<Bind>() {
        Ok(b) => b,
        Err(why) => {
            p.error(at, why);
            return None;
        }
    };
    let agent: [(&str, Option<SocketAddr>); 2] = [
        ("agent.metrics_listen", cx.agent.metrics_listen),
        ("agent.api_listen", cx.agent.api_listen),
    ];
    let taken = agent
        .into_iter()
        .filter_map(|(key, addr)| Some((key.to_owned(), addr?)))
        .chain(cx.frontends.iter().flat_map(|f| {
            f.binds
                .iter()
                .map(|fb| (format!("frontend `{}`", f.name), fb.addr))
        }))
        .find(|(_, addr)| b.overlaps(*addr));
    if let Some((owner, addr)) = taken {
        p.error(
            at,
            format!("`{b}` takes {owner}'s {addr}: give the stats page another port"),
        );
        return None;
    }
    Some(b)
}

/// `user:password` entries, each user once.
fn users(list: Vec<String>, at: &YamlPath, p: &mut Problems) -> Vec<StatsUser> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, entry) in list.into_iter().enumerate() {
        let at = at.index(i);
        let Some((name, password)) = entry.split_once(':') else {
            p.error(&at, "an `auth` entry is `user:password`");
            continue;
        };
        if name.is_empty() || password.is_empty() {
            p.error(
                &at,
                "an `auth` entry needs a user and a password: `user:password`",
            );
        } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            p.error(
                &at,
                format!("user `{name}`: no spaces or control characters"),
            );
        } else if !seen.insert(name.to_owned()) {
            p.error(&at, format!("user `{name}` is given twice"));
        } else {
            out.push(StatsUser {
                name: name.to_owned(),
                password: password.to_owned(),
            });
        }
    }
    out
}

/// `true`, `false` or a list of `auth` users.
fn admin(raw: Value, users: &[StatsUser], at: &YamlPath, p: &mut Problems) -> StatsAdmin {
    let names = || {
        users
            .iter()
            .map(|u| format!("`{}`", u.name))
            .collect::<Vec<_>>()
    };
    match raw {
        Value::Bool(false) => return StatsAdmin::Nobody,
        _ if users.is_empty() => {
            p.error(
                at,
                "`admin` needs `auth`: without users, anyone who reaches the page could act",
            );
            return StatsAdmin::Nobody;
        }
        Value::Bool(true) => {
            if users.len() > 1 {
                p.warning(
                    at,
                    format!(
                        "`admin: true` lets every `auth` user act ({}), as HAProxy's \
                         `stats admin if TRUE`; list the admins to keep the others read-only",
                        names().join(", ")
                    ),
                );
            }
            return StatsAdmin::Everyone;
        }
        Value::Sequence(list) => {
            let mut admins = Vec::new();
            for (i, v) in list.into_iter().enumerate() {
                match v.as_str() {
                    Some(n) if users.iter().any(|u| u.name == n) => admins.push(n.to_owned()),
                    Some(n) => p.error(
                        &at.index(i),
                        format!("`{n}` is not an `auth` user ({})", names().join(", ")),
                    ),
                    None => p.error(&at.index(i), "expected a user name"),
                }
            }
            return StatsAdmin::Users(admins);
        }
        _ => {}
    }
    p.error(
        at,
        "`admin` is `true`, `false` or a list of `auth` user names",
    );
    StatsAdmin::Nobody
}

/// A path of its own: the page's forms are under it.
fn uri(text: String, at: &YamlPath, p: &mut Problems) -> String {
    let ok = text.starts_with('/')
        && !text.contains(['?', '#', ';'])
        && !text.chars().any(|c| c.is_control() || c.is_whitespace());
    if !ok {
        p.error(
            at,
            format!("uri `{text}`: a path starting with `/`, without `?`, `#`, `;` or spaces"),
        );
    }
    text
}

fn refresh(r: DurationText, at: &YamlPath, p: &mut Problems) -> std::time::Duration {
    if !r.0.is_zero() && r.0 < MIN_REFRESH {
        p.error(
            &at.key("refresh"),
            "refresh must be at least 1s (or 0s: never)",
        );
    }
    r.0
}

/// The realm goes into `WWW-Authenticate: Basic realm="..."`, whole.
fn realm(text: String, at: &YamlPath, p: &mut Problems) -> String {
    if text.is_empty()
        || text.contains(['"', '\\'])
        || !text.chars().all(|c| c == ' ' || c.is_ascii_graphic())
    {
        p.error(
            at,
            "realm: printable ASCII without `\"` or `\\` (it is quoted in WWW-Authenticate)",
        );
    }
    text
}

#[cfg(test)]
mod tests;
