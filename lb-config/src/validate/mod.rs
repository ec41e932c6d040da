//! Semantic checks over the raw file, building the typed model: required keys,
//! ranges, address kinds, uniqueness, cross-references. Every check reports and
//! carries on, so one run lists every problem; the model built alongside is only
//! handed out when no check failed.

mod address;
mod backend;
mod check;
mod notify;
mod pool;
pub(crate) mod proxy;
mod service;
mod stats;
mod vrrp;

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use serde_yaml::Value;

use super::diagnostic::Problems;
use super::model::*;
use super::positions::YamlPath;
use super::raw::{Broken, Each, Int, RawAgent, RawConfig, RawInterface};
use address::socket_addr;
use pool::pools;
use service::services;

/// Checks the whole document and builds the model (meaningful only if no error
/// was reported).
pub(super) fn config(raw: RawConfig, broken: &Broken, v1: bool, p: &mut Problems) -> Config {
    let root = YamlPath::root();
    let agent = agent(raw.agent, &root.key("agent"), p);
    let interfaces_at = root.key("interfaces");
    let has_interfaces_key = raw.interfaces.is_some();
    let mut interfaces = interfaces(raw.interfaces.unwrap_or_default(), &interfaces_at, p);
    interfaces.complete &= !broken.contains("interfaces");
    let (check_defaults, health) = check::health(raw.health, &root.key("health"), p);
    let proxy = proxy::proxy(raw.proxy, &root.key("proxy"), p);
    let mut pools = pools(
        raw.pools,
        &root.key("pools"),
        &interfaces,
        (&check_defaults, &proxy.defaults.pool),
        p,
    );
    pools.complete &= !broken.contains("pools");
    let services_at = root.key("services");
    let has_services_key = raw.services.is_some();
    let raw_services = raw.services.unwrap_or_default();
    let l7_only = raw
        .frontends
        .as_ref()
        .and_then(Value::as_mapping)
        .is_some_and(|m| !m.is_empty());
    if raw_services.is_empty() && !broken.contains("services") && !v1 && !l7_only {
        let at = if has_services_key {
            &services_at
        } else {
            &root
        };
        p.warning(
            at,
            "no services are configured: the data path will balance nothing",
        );
    } else if interfaces.names.is_empty() && interfaces.complete && !raw_services.is_empty() {
        let at = if has_interfaces_key {
            &interfaces_at
        } else {
            &services_at
        };
        p.error_at_key(at, "services need at least one interface for the XDP program (e.g. `interfaces: [{name: eth0}]`)");
    }
    let (services, referenced) = services(raw_services, &services_at, &pools, p);
    let proxy_cx = proxy::Context {
        proxy: &proxy,
        pools: &pools,
        services: &services,
        agent: &agent,
    };
    let frontends = proxy::frontends(raw.frontends, &root.key("frontends"), &proxy_cx, p);
    warn_unused_pools(&pools, &referenced, &frontends, p);
    check_via_service(&pools, &services, p);
    let notify = notify::notify(raw.notify, &root.key("notify"), p);
    let vrrp_cx = vrrp::Context {
        pools: pools.list.iter().map(|p| p.name.as_str()).collect(),
        pools_complete: pools.complete,
        notify: &notify,
    };
    let vrrp = vrrp::vrrp(raw.vrrp, &root.key("vrrp"), &vrrp_cx, p);
    let stats_cx = stats::Context {
        agent: &agent,
        frontends: &frontends,
        proxy: &proxy,
    };
    let stats = stats::stats(raw.stats, &root.key("stats"), &stats_cx, p);
    Config {
        agent,
        interfaces: interfaces.list,
        pools: pools.list,
        services,
        health,
        notify,
        vrrp,
        proxy,
        frontends,
        stats,
    }
}

/// A pool that no service or frontend names serves nothing.
fn warn_unused_pools(
    pools: &pool::Pools,
    services: &HashSet<String>,
    frontends: &[crate::proxy::FrontendConfig],
    p: &mut Problems,
) {
    for pool in &pools.list {
        let used = services.contains(&pool.name)
            || frontends
                .iter()
                .any(|f| f.pools().contains(&pool.name.as_str()));
        if !used && let Some((at, _)) = pools.at.get(&pool.name) {
            p.warning_at_key(
                at,
                format!("pool `{}` is used by no service or frontend", pool.name),
            );
        }
    }
}

/// A check `via_service` names a service that uses its pool.
fn check_via_service(pools: &pool::Pools, services: &[ServiceConfig], p: &mut Problems) {
    for pool in &pools.list {
        let (Some(via), Some((at, _))) = (
            pool.check.as_ref().and_then(|c| c.via_service.as_ref()),
            pools.at.get(&pool.name),
        ) else {
            continue;
        };
        if !services
            .iter()
            .any(|s| s.name == *via && s.pool == pool.name)
        {
            p.error(
                &at.key("check").key("via_service"),
                format!(
                    "via_service `{via}` is not a service using pool `{}`",
                    pool.name
                ),
            );
        }
    }
}

/// Takes the `vips:` section of a schema v1 file (backends inside each VIP)
/// out of the document, saying what replaced it; whether there was one.
pub(super) fn take_schema_v1(doc: &mut Value, p: &mut Problems) -> bool {
    let Some(vips) = doc.as_mapping_mut().and_then(|m| m.shift_remove("vips")) else {
        return false;
    };
    let at = YamlPath::root().key("vips");
    let first = vips
        .as_sequence()
        .and_then(|s| s.first())
        .and_then(Value::as_mapping);
    let name = first
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("web");
    p.error_at_key(
        &at,
        format!(
            "`vips:` is the schema v1 layout. Schema v2 names groups of backends once and lets \
             services share them: move each VIP's `backends:` to `pools: {{<name>: {{backends: [...]}}}}` \
             and list the VIP under `services:` with `pool: <name>` instead of `backends:` \
             (e.g. `pools: {{{name}: {{backends: [...]}}}}` and `services: [{{name: {name}, address: ..., \
             port: ..., pool: {name}}}]`). A backend's `state`, `weight`, `interface` and `mac` move \
             with it; `ring_size` now defaults to `auto`. `lb-ctl config defaults` prints the whole schema."
        ),
    );
    true
}

fn agent(raw: Option<RawAgent>, at: &YamlPath, p: &mut Problems) -> AgentConfig {
    let d = AgentConfig::default();
    let Some(raw) = raw else { return d };
    let path = |value: Option<PathBuf>, key: &str, default: PathBuf, p: &mut Problems| match value {
        Some(v) if v.is_absolute() => v,
        Some(v) => {
            // The agent runs from systemd with `/` as its working directory; a
            // relative path would silently mean something else elsewhere.
            p.error(
                &at.key(key),
                format!("{key} must be an absolute path, not `{}`", v.display()),
            );
            default
        }
        None => default,
    };
    let bpffs = path(raw.bpffs, "bpffs", d.bpffs, p);
    let state_dir = path(raw.state_dir, "state_dir", d.state_dir, p);
    let socket = path(raw.socket, "socket", d.socket, p);
    let api_token_file = raw
        .api_token_file
        .map(|f| path(Some(f), "api_token_file", PathBuf::new(), p));
    let api_listen = api_listen(raw.api_listen, api_token_file.is_some(), at, p);
    let metrics_listen = match raw.metrics_listen {
        None => d.metrics_listen,
        Some(None) => None,
        Some(Some(s)) => socket_addr(&s, &at.key("metrics_listen"), p),
    };
    let flow_table_size = raw
        .flow_table_size
        .and_then(|n| {
            in_range(
                n,
                FLOW_TABLE_SIZE_RANGE,
                "flow_table_size",
                &at.key("flow_table_size"),
                p,
            )
        })
        .unwrap_or(d.flow_table_size);
    let flow_idle_timeout = raw.flow_idle_timeout.map_or(d.flow_idle_timeout, |t| {
        if t.0 < MIN_FLOW_IDLE_TIMEOUT {
            p.error(
                &at.key("flow_idle_timeout"),
                "flow_idle_timeout must be at least 1s (flow timestamps have 1 s granularity)",
            );
            return d.flow_idle_timeout;
        }
        t.0
    });
    if raw.log_level == Some(LogLevel::Off) {
        p.error(
            &at.key("log_level"),
            "log_level cannot be `off`; `error` is the quietest",
        );
    }
    let log_level = raw
        .log_level
        .filter(|l| *l != LogLevel::Off)
        .unwrap_or(d.log_level);
    AgentConfig {
        bpffs,
        state_dir,
        socket,
        api_listen,
        api_token_file,
        metrics_listen,
        flow_table_size,
        flow_idle_timeout,
        ebpf_log: raw.ebpf_log.unwrap_or(d.ebpf_log),
        log_level,
    }
}

/// `api_listen`, which needs `api_token_file`: the TCP API is never open.
fn api_listen(
    raw: Option<String>,
    has_token: bool,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<SocketAddr> {
    if raw.is_none() && has_token {
        p.warning_at_key(
            &at.key("api_token_file"),
            "api_token_file is unused without api_listen",
        );
    }
    let listen = socket_addr(&raw?, &at.key("api_listen"), p)?;
    if !has_token {
        p.error_at_key(
            &at.key("api_listen"),
            "api_listen requires api_token_file: the TCP API is never unauthenticated",
        );
    }
    Some(listen)
}

/// The interfaces that parsed, for backends' `interface:` references.
struct Interfaces {
    list: Vec<InterfaceConfig>,
    names: HashMap<String, YamlPath>,
    /// False when some entry was unusable: an unknown name may then be that one.
    complete: bool,
}

fn interfaces(raw: Vec<Each<RawInterface>>, at: &YamlPath, p: &mut Problems) -> Interfaces {
    let mut out = Interfaces {
        list: Vec::new(),
        names: HashMap::new(),
        complete: true,
    };
    for (i, each) in raw.into_iter().enumerate() {
        let at = at.index(i);
        let Some((raw, broken)) = each.parse(&at, p) else {
            out.complete = false;
            continue;
        };
        let Some(name) = raw.name else {
            if !broken.contains("name") {
                p.error(&at, "missing required key `name`");
            }
            out.complete = false;
            continue;
        };
        let name_at = at.key("name");
        if let Err(why) = check_ifname(&name) {
            p.error(&name_at, format!("invalid interface name `{name}`: {why}"));
        }
        if let Some(first) = out.names.get(&name) {
            let line = p.line_of(first);
            p.error(
                &name_at,
                format!("interface `{name}` is listed twice (first at line {line})"),
            );
            continue;
        }
        out.names.insert(name.clone(), name_at);
        out.list.push(InterfaceConfig {
            name,
            xdp_mode: raw.xdp_mode.unwrap_or(XdpMode::Native),
        });
    }
    out
}

/// The kernel's rules (`dev_valid_name`, net/core/dev.c): 1..IFNAMSIZ-1 bytes,
/// not `.` or `..`, no `/`, `:` or whitespace.
fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("not a usable name".to_owned());
    }
    if name.len() > MAX_IFNAME_LEN {
        return Err(format!(
            "{} bytes, the kernel allows at most {MAX_IFNAME_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
    {
        return Err(format!("contains {c:?}"));
    }
    Ok(())
}

/// `n` as a `T` when within `range`; otherwise reports `key`'s range.
pub(super) fn in_range<T>(
    n: Int,
    range: RangeInclusive<T>,
    key: &str,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<T>
where
    T: Copy + Into<i128> + TryFrom<i128> + std::fmt::Display,
{
    let (lo, hi) = ((*range.start()).into(), (*range.end()).into());
    if (lo..=hi).contains(&n.0) {
        T::try_from(n.0).ok()
    } else {
        p.error(
            at,
            format!(
                "{key} {} is out of range {}..={}",
                n.0,
                range.start(),
                range.end()
            ),
        );
        None
    }
}

/// An explicit name that passes `check` (reported at `at` if not), or the
/// default one.
pub(super) fn name_or(
    check: impl FnOnce(&str) -> Result<(), String>,
    raw: Option<String>,
    default: impl FnOnce() -> Option<String>,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<String> {
    match raw {
        Some(n) => match check(&n) {
            Ok(()) => Some(n),
            Err(why) => {
                p.error(at, why);
                None
            }
        },
        None => default(),
    }
}

/// What the uniqueness checks need from a VIP or backend, known even when the
/// entry has errors elsewhere.
struct Identity<K> {
    /// What must be unique (VIP key, backend endpoint); `None` if unknown.
    key: Option<K>,
    /// Explicit or default name; `None` if invalid.
    name: Option<String>,
    /// Whether `name` is derived from the key, so a repeated key repeats it.
    default_name: bool,
}

/// Where each key and name was first seen, to report repeats as
/// "… (first at line N)" at the repeat.
struct Registry<K> {
    keys: HashMap<K, YamlPath>,
    names: HashMap<String, YamlPath>,
}

impl<K: Eq + Hash> Registry<K> {
    fn new() -> Self {
        Registry {
            keys: HashMap::new(),
            names: HashMap::new(),
        }
    }

    /// Records the entry at `at`; a repeated key is reported at the entry's
    /// address with `key_msg`, a repeated name at its name with `name_msg`.
    fn check(
        &mut self,
        id: Identity<K>,
        at: &YamlPath,
        key_msg: impl FnOnce(&K) -> String,
        name_msg: impl FnOnce(&str) -> String,
        p: &mut Problems,
    ) {
        let address_at = at.key("address");
        if let Some(key) = id.key {
            if let Some(first) = self.keys.get(&key) {
                let line = p.line_of(first);
                p.error(
                    &address_at,
                    format!("{} (first at line {line})", key_msg(&key)),
                );
                if id.default_name {
                    // The default name repeats too; one error says it.
                    return;
                }
            } else {
                self.keys.insert(key, address_at.clone());
            }
        }
        if let Some(name) = id.name {
            let name_at = if id.default_name {
                address_at
            } else {
                at.key("name")
            };
            if let Some(first) = self.names.get(&name) {
                let line = p.line_of(first);
                p.error(
                    &name_at,
                    format!("{} (first at line {line})", name_msg(&name)),
                );
            } else {
                self.names.insert(name, name_at);
            }
        }
    }
}
