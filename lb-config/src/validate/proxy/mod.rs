//! `proxy:` and `frontends:`, the L7 proxy's sections, and the L7 keys of
//! pools and backends: HAProxy's `global`/`defaults`, `frontend` and
//! `backend` lines, each problem at its key (or at its word inside an ACL
//! or rule line), with warnings for what HAProxy accepts silently but does
//! not work as written.

mod acl;
mod bind;
mod condition;
mod frontend;
pub(crate) mod log;
mod pool;
pub(crate) mod raw;
mod reject;
mod rules;
mod settings;
mod source;
mod words;

use serde_yaml::Value;

pub(crate) use settings::{backend_l7, pool_settings};

use super::in_range;
use super::pool::Pools;
use crate::diagnostic::Problems;
use crate::model::{AgentConfig, ServiceConfig};
use crate::positions::YamlPath;
use crate::proxy::*;
use crate::raw::deserialize_all;
use raw::RawProxy;

/// What frontends are checked against.
pub(super) struct Context<'a> {
    pub proxy: &'a ProxyConfig,
    pub pools: &'a Pools,
    pub services: &'a [ServiceConfig],
    pub agent: &'a AgentConfig,
}

/// `proxy:`; its defaults when absent. What is wrong is reported and left
/// at its default.
pub(super) fn proxy(raw: Option<Value>, at: &YamlPath, p: &mut Problems) -> ProxyConfig {
    let d = ProxyConfig::default();
    let mut raw = match raw {
        None | Some(Value::Null) => return d,
        Some(v) => match deserialize_all::<RawProxy>(v, at, p) {
            Some((raw, _)) => raw,
            None => return d,
        },
    };
    let global_log = raw.log.take().unwrap_or_default();
    let global_log = log::targets(global_log, &at.key("log"), p);
    let log_keys = raw.defaults.as_mut().map(|d| log::take_log_keys!(d));
    let defaults_at = at.key("defaults");
    let mut defaults = settings::defaults(raw.defaults, &defaults_at, p);
    defaults.log = log::section(
        log_keys.unwrap_or_default(),
        &FrontendLog::default(),
        &global_log,
        None,
        &defaults_at,
        p,
    );
    let maxconn = raw
        .maxconn
        .and_then(|n| in_range(n, MAXCONN_RANGE, "maxconn", &at.key("maxconn"), p))
        .unwrap_or(d.maxconn);
    let max_header_size = raw
        .max_header_size
        .and_then(|n| {
            let key_at = at.key("max_header_size");
            in_range(n.0, MAX_HEADER_SIZE_RANGE, "max_header_size", &key_at, p)
        })
        .unwrap_or(d.max_header_size);
    let max_headers = raw
        .max_headers
        .and_then(|n| {
            in_range(
                n,
                MAX_HEADERS_RANGE,
                "max_headers",
                &at.key("max_headers"),
                p,
            )
        })
        .unwrap_or(d.max_headers);
    ProxyConfig {
        maxconn,
        max_header_size,
        max_headers,
        defaults,
        log: global_log,
        log_tag: log_tag(raw.log_tag, &at.key("log_tag"), p).unwrap_or(d.log_tag),
    }
}

/// `log_tag`: what syslog takes as a program name (RFC 5424's APP-NAME:
/// printable ASCII, no spaces, at most 48 characters).
fn log_tag(raw: Option<String>, at: &YamlPath, p: &mut Problems) -> Option<String> {
    let tag = raw?;
    let fits = !tag.is_empty() && tag.len() <= 48 && tag.bytes().all(|b| b.is_ascii_graphic());
    if !fits || tag.contains([':', '[', ']']) {
        p.error(
            at,
            format!("`{tag}` cannot be a log tag: 1 to 48 printable characters, no spaces, `:`, `[` or `]`"),
        );
        return None;
    }
    Some(tag)
}

/// `frontends:`: name → frontend, checked, then against each other (binds)
/// and against the pools they use.
pub(super) fn frontends(
    raw: Option<Value>,
    at: &YamlPath,
    cx: &Context,
    p: &mut Problems,
) -> Vec<FrontendConfig> {
    let entries = match raw {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Mapping(m)) => m,
        Some(_) => {
            p.error(
                at,
                "`frontends` is a mapping of frontend name to frontend, e.g. \
                 `frontends: {main: {bind: \"*:80\", default_backend: web}}`",
            );
            return Vec::new();
        }
    };
    let mut list = Vec::new();
    let mut placed = Vec::new();
    for (key, value) in entries {
        let Some(name) = key.as_str() else { continue };
        let f_at = at.key(name);
        if let Err(why) = crate::rules::check_name("frontend", name) {
            p.error_at_key(&f_at, why);
            continue;
        }
        if let Some((f, binds)) = frontend::frontend(name, value, &f_at, cx, p) {
            placed.extend(binds.into_iter().map(|(bind, at)| bind::Placed {
                frontend: name.to_owned(),
                bind,
                at,
            }));
            list.push(f);
        }
    }
    bind::check_binds(&placed, cx.agent, cx.services, p);
    pool::check_pools(&list, cx, p);
    list
}
