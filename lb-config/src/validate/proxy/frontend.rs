//! One `frontends:` entry (HAProxy `frontend NAME`): binds, limits and
//! timeouts over `proxy.defaults`, and in HTTP mode its ACLs and rules.
//! A TCP frontend relays bytes, so the HTTP keys are refused there.

use serde_yaml::Value;

use super::condition::{Acls, PREDEFINED};
use super::raw::RawFrontend;
use super::settings::{self, Side};
use super::words::Line;
use super::{Context, acl, bind, log, reject, rules};
use crate::diagnostic::Problems;
use crate::positions::YamlPath;
use crate::proxy::*;
use crate::raw::{Broken, deserialize_all};
use crate::validate::in_range;

/// The frontend named `name`, with where each of its binds is. `None` when
/// its shape is wrong; with errors in its lines the model comes back with
/// them left out (the file is refused anyway), so cross-checks still run.
pub(super) fn frontend(
    name: &str,
    value: Value,
    at: &YamlPath,
    cx: &Context,
    p: &mut Problems,
) -> Option<(FrontendConfig, Vec<(Bind, YamlPath)>)> {
    let (mut raw, broken) = match value {
        Value::Null => (RawFrontend::default(), Default::default()),
        v => deserialize_all::<RawFrontend>(v, at, p)?,
    };
    let mode = raw.mode.unwrap_or(ProxyMode::Http);
    if mode == ProxyMode::Tcp {
        refuse_http_keys(&mut raw, at, p);
    }
    let binds = binds(&mut raw, &broken, at, p);
    let written_default = raw.default_backend.is_some() || broken.contains("default_backend");
    if mode == ProxyMode::Tcp && !written_default {
        p.error_at_key(
            at,
            "a tcp frontend needs `default_backend`: the pool its connections go to",
        );
    }
    let maxconn = maxconn(&raw, at, cx, p);
    let d = &cx.proxy.defaults;
    let timeouts = raw.timeout.take();
    let timeouts = settings::timeouts(
        timeouts,
        Side::Client,
        &d.pool.timeouts,
        &at.key("timeout"),
        p,
    );
    let http = mode == ProxyMode::Http;
    let forwardfor = raw.forwardfor.take();
    let forwardfor = settings::forwardfor(forwardfor, &d.forwardfor, &at.key("forwardfor"), p);
    let (acls, http_request, use_backend) = routing(&mut raw, at, cx, p);
    let refusals = reject::RawReject {
        src_deny: raw.src_deny.take(),
        src_allow: raw.src_allow.take(),
        rate_limit: raw.rate_limit.take(),
    };
    let reject = reject::reject(refusals, http, at, p);
    let log_keys = log::take_log_keys!(raw);
    let log = log::section(log_keys, &d.log, &cx.proxy.log, Some(mode), at, p);
    let default_backend = raw.default_backend.take().filter(|n| {
        cx.pools
            .check_ref(n, |why| p.error(&at.key("default_backend"), why))
    });
    let f = FrontendConfig {
        name: name.to_owned(),
        binds: binds.iter().map(|(b, _)| *b).collect(),
        mode,
        maxconn,
        timeouts,
        acls,
        http_request,
        use_backend,
        default_backend,
        forwardfor: forwardfor.filter(|_| http),
        forwarded_proto: http && raw.forwarded_proto.unwrap_or(d.forwarded_proto),
        http_server_close: http && raw.http_server_close.unwrap_or(d.pool.http_server_close),
        reject,
        log,
    };
    if http && !written_default {
        warn_no_default(&f, at, p);
    }
    broken.is_empty().then_some((f, binds))
}

/// `bind:`, required.
fn binds(
    raw: &mut RawFrontend,
    broken: &Broken,
    at: &YamlPath,
    p: &mut Problems,
) -> Vec<(Bind, YamlPath)> {
    match raw.bind.take() {
        Some(b) => bind::binds(b, &at.key("bind"), p),
        None if broken.contains("bind") => Vec::new(),
        None => {
            p.error_at_key(at, "missing required key `bind` (e.g. `bind: \"*:80\"`)");
            Vec::new()
        }
    }
}

fn maxconn(raw: &RawFrontend, at: &YamlPath, cx: &Context, p: &mut Problems) -> u32 {
    let Some(n) = raw.maxconn else {
        return cx.proxy.defaults.maxconn;
    };
    let key_at = at.key("maxconn");
    let Some(m) = in_range(n, MAXCONN_RANGE, "maxconn", &key_at, p) else {
        return cx.proxy.defaults.maxconn;
    };
    if m > cx.proxy.maxconn {
        p.warning(
            &key_at,
            format!(
                "maxconn {m} is more than proxy.maxconn {} (all frontends together): that limit comes first",
                cx.proxy.maxconn
            ),
        );
    }
    m
}

/// The HTTP-only keys a TCP frontend has, reported and dropped.
fn refuse_http_keys(raw: &mut RawFrontend, at: &YamlPath, p: &mut Problems) {
    let timeout = raw.timeout.as_mut();
    let keys = [
        ("acl", raw.acl.take().is_some()),
        ("http_request", raw.http_request.take().is_some()),
        ("use_backend", raw.use_backend.take().is_some()),
        ("forwardfor", raw.forwardfor.take().is_some()),
        ("forwarded_proto", raw.forwarded_proto.take().is_some()),
        ("http_server_close", raw.http_server_close.take().is_some()),
    ];
    let mut refused: Vec<(YamlPath, &str)> = keys
        .iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| (at.key(k), *k))
        .collect();
    if let Some(t) = timeout {
        if t.http_request.take().is_some() {
            refused.push((
                at.key("timeout").key("http_request"),
                "timeout.http_request",
            ));
        }
        if t.http_keep_alive.take().is_some() {
            refused.push((
                at.key("timeout").key("http_keep_alive"),
                "timeout.http_keep_alive",
            ));
        }
    }
    for (key_at, key) in refused {
        p.error_at_key(
            &key_at,
            format!("`{key}` applies to HTTP frontends; this one is `mode: tcp` (it relays bytes)"),
        );
    }
}

type Routing = (Vec<Acl>, Vec<HttpRequestRule>, Vec<UseBackend>);

/// ACLs and the rules using them; what is never used or reached is warned.
fn routing(raw: &mut RawFrontend, at: &YamlPath, cx: &Context, p: &mut Problems) -> Routing {
    let acls = acl_section(raw.acl.take(), &at.key("acl"), p);
    let names: Vec<String> = acls.iter().map(|a| a.name.clone()).collect();
    let mut used = Acls {
        names: &names,
        used: vec![false; names.len()],
    };
    let deny = raw.http_request.take().unwrap_or_default();
    let deny = rules::http_request(deny, &at.key("http_request"), &mut used, p);
    let route = raw.use_backend.take().unwrap_or_default();
    let route = rules::use_backend(route, &at.key("use_backend"), cx.pools, &mut used, p);
    for (name, _) in names.iter().zip(&used.used).filter(|(_, u)| !**u) {
        p.warning_at_key(
            &at.key("acl").key(name),
            format!("ACL `{name}` is used by no rule"),
        );
    }
    rules::warn_unreachable(&deny, |r| &r.cond, "http_request", p);
    if let Some(always) = rules::warn_unreachable(&route, |r| &r.cond, "use_backend", p)
        && raw.default_backend.is_some()
    {
        let line = p.line_of(&always);
        p.warning(
            &at.key("default_backend"),
            format!("default_backend is never used: the use_backend rule at line {line} applies to every request"),
        );
    }
    fn strip<T>(rules: Vec<(T, YamlPath)>) -> Vec<T> {
        rules.into_iter().map(|(r, _)| r).collect()
    }
    (acls, strip(deny), strip(route))
}

/// An HTTP frontend whose rules can all miss needs a `default_backend`,
/// or those requests get 503 (HAProxy says nothing).
fn warn_no_default(f: &FrontendConfig, at: &YamlPath, p: &mut Problems) {
    if f.default_backend.is_none() && !f.use_backend.iter().any(|u| rules::always(&u.cond)) {
        p.warning_at_key(
            at,
            format!(
                "frontend `{}` has no default_backend: a request no use_backend rule takes is answered 503",
                f.name
            ),
        );
    }
}

/// `acl:`: name → a line or a list of lines (ORed). An ACL whose lines
/// have errors is kept with the good ones, so rules naming it do not also
/// report it unknown.
fn acl_section(raw: Option<Value>, at: &YamlPath, p: &mut Problems) -> Vec<Acl> {
    let map = match raw {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Mapping(m)) => m,
        Some(_) => {
            p.error(at, "`acl` is a mapping of ACL name to a line or a list of lines, e.g. `acl: {api: path_beg /api}`");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (key, value) in map {
        let Some(name) = key.as_str() else { continue };
        let name_at = at.key(name);
        if let Err(why) = check_acl_name(name) {
            p.error_at_key(&name_at, why);
            continue;
        }
        if PREDEFINED.contains(&name) {
            p.warning_at_key(
                &name_at,
                format!(
                    "ACL `{name}` replaces HAProxy's predefined one of that name in this frontend"
                ),
            );
        }
        let tests = acl_lines(name, value, &name_at, p)
            .into_iter()
            .filter_map(|(text, at)| {
                let words = rules::words(&text, &at, p)?;
                acl::test(&words, &mut Line { at: &at, p })
            })
            .collect();
        out.push(Acl {
            name: name.to_owned(),
            tests,
        });
    }
    out
}

/// The lines of ACL `name`, each with where it is.
fn acl_lines(name: &str, value: Value, at: &YamlPath, p: &mut Problems) -> Vec<(String, YamlPath)> {
    match value {
        Value::String(s) => vec![(s, at.clone())],
        Value::Sequence(seq) if seq.is_empty() => {
            p.error(at, format!("ACL `{name}` has no lines"));
            Vec::new()
        }
        Value::Sequence(seq) => seq
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Value::String(s) => Some((s, at.index(i))),
                _ => {
                    p.error(
                        &at.index(i),
                        "an ACL line is a string, e.g. `path_beg -i /static`",
                    );
                    None
                }
            })
            .collect(),
        _ => {
            p.error(
                at,
                format!("ACL `{name}` is a line (`path_beg /api`) or a list of lines"),
            );
            Vec::new()
        }
    }
}

/// HAProxy's rule for ACL names: letters, digits, `-`, `_`, `.`, `:`.
fn check_acl_name(name: &str) -> Result<(), String> {
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        None if !name.is_empty() => Ok(()),
        None => Err("an ACL name cannot be empty".to_owned()),
        Some(c) => Err(format!(
            "ACL name `{name}` contains {c:?} (letters, digits, '-', '_', '.' and ':')"
        )),
    }
}
