//! `vrrp:`: instances, track scripts and sync groups, each problem at its
//! key; the rules of RFC 3768 / RFC 5798 that a file can break (v2 is IPv4
//! only with whole-second adverts, v3 has no authentication, one family per
//! instance, a VRID once per interface and family).

mod instance;
mod raw;
mod script;
mod vip;

use std::collections::HashMap;

use serde_yaml::Value;

use super::in_range;
use crate::diagnostic::Problems;
use crate::notify::NotifyConfig;
use crate::positions::YamlPath;
use crate::raw::deserialize_all;
use crate::rules;
use crate::vrrp::*;
use raw::RawVrrp;

/// What instances refer to outside `vrrp:`.
pub(super) struct Context<'a> {
    /// Pools of the file (`track_pool`).
    pub pools: Vec<&'a str>,
    /// Whether some pool could not be read (an unknown name may be that one).
    pub pools_complete: bool,
    pub notify: &'a NotifyConfig,
}

/// The `vrrp:` section; nothing configured when absent or empty.
pub(super) fn vrrp(
    raw: Option<Value>,
    at: &YamlPath,
    cx: &Context,
    p: &mut Problems,
) -> VrrpConfig {
    let raw = match raw {
        None | Some(Value::Null) => return VrrpConfig::default(),
        Some(v) => match deserialize_all::<RawVrrp>(v, at, p) {
            Some((raw, _)) => raw,
            None => return VrrpConfig::default(),
        },
    };
    let version = raw
        .version
        .and_then(|n| version(n, &at.key("version"), p))
        .unwrap_or(DEFAULT_VERSION);
    let track_scripts = entries(raw.track_scripts, &at.key("track_scripts"), p)
        .into_iter()
        .filter_map(|(name, at, v)| script::script(name, v, &at, p))
        .collect::<Vec<_>>();
    let defaults = instance::Defaults {
        version,
        scripts: &track_scripts,
        cx,
    };
    let instances: Vec<(VrrpInstance, YamlPath)> = entries(raw.instances, &at.key("instances"), p)
        .into_iter()
        .filter_map(|(name, at, v)| Some((instance::instance(name, v, &at, &defaults, p)?, at)))
        .collect();
    unique_vrids(&instances, p);
    let sync_groups = sync_groups(raw.sync_groups, &at.key("sync_groups"), &instances, p);
    VrrpConfig {
        instances: instances.into_iter().map(|(i, _)| i).collect(),
        track_scripts,
        sync_groups,
    }
}

/// `2` or `3`.
fn version(n: crate::raw::Int, at: &YamlPath, p: &mut Problems) -> Option<VrrpVersion> {
    match n.0 {
        2 => Some(VrrpVersion::V2),
        3 => Some(VrrpVersion::V3),
        other => {
            p.error(
                at,
                format!("version {other}: VRRP versions are 2 (RFC 3768) and 3 (RFC 5798)"),
            );
            None
        }
    }
}

/// The entries of a name → value mapping, names checked.
fn entries(raw: Option<Value>, at: &YamlPath, p: &mut Problems) -> Vec<(String, YamlPath, Value)> {
    let map = match raw {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Mapping(m)) => m,
        Some(_) => {
            p.error(at, "expected a mapping of names, e.g. `VI_1: {...}`");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (key, value) in map {
        let Some(name) = key.as_str() else { continue };
        let entry_at = at.key(name);
        match rules::check_name("name", name) {
            Ok(()) => out.push((name.to_owned(), entry_at, value)),
            Err(why) => p.error_at_key(&entry_at, why),
        }
    }
    out
}

/// Two instances cannot share a VRID on one interface and family: their
/// adverts would be one virtual router's.
fn unique_vrids(instances: &[(VrrpInstance, YamlPath)], p: &mut Problems) {
    let mut seen: HashMap<(&str, bool, u8), &YamlPath> = HashMap::new();
    for (i, at) in instances {
        let key = (i.interface.as_str(), i.is_ipv6(), i.vrid);
        if let Some(first) = seen.get(&key) {
            let line = p.line_of(first);
            p.error(
                &at.key("virtual_router_id"),
                format!(
                    "virtual_router_id {} is already used on {} by the instance at line {line}; \
                     each virtual router needs its own",
                    i.vrid, i.interface
                ),
            );
        } else {
            seen.insert(key, at);
        }
    }
}

fn sync_groups(
    raw: Option<Value>,
    at: &YamlPath,
    instances: &[(VrrpInstance, YamlPath)],
    p: &mut Problems,
) -> Vec<SyncGroup> {
    let mut taken: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for (name, group_at, value) in entries(raw, at, p) {
        let Some((members, _)) = deserialize_all::<Vec<String>>(value, &group_at, p) else {
            continue;
        };
        for (k, m) in members.iter().enumerate() {
            let m_at = group_at.index(k);
            if !instances.iter().any(|(i, _)| i.name == *m) {
                p.error(
                    &m_at,
                    format!("unknown instance `{m}` in sync group `{name}`"),
                );
            } else if let Some(other) = taken.insert(m.clone(), name.clone()) {
                p.error(
                    &m_at,
                    format!("instance `{m}` is already in sync group `{other}`"),
                );
            }
        }
        if members.len() < 2 {
            p.warning_at_key(
                &group_at,
                format!("sync group `{name}` has fewer than two instances"),
            );
        }
        out.push(SyncGroup {
            name,
            instances: members,
        });
    }
    out
}

/// A command: a program by absolute path, then its arguments.
fn command(cmd: raw::Command, key: &str, at: &YamlPath, p: &mut Problems) -> Option<Vec<String>> {
    let why = match cmd.0.first() {
        None => format!("{key} is empty: give the program and its arguments"),
        Some(prog) if !prog.starts_with('/') => format!(
            "{key}: the program `{prog}` must be an absolute path (the agent runs from `/`, without a shell)"
        ),
        Some(_) => return Some(cmd.0),
    };
    p.error(&at.key(key), why);
    None
}

/// A weight within [`WEIGHT_RANGE`].
fn weight(n: crate::raw::Int, at: &YamlPath, p: &mut Problems) -> Option<i32> {
    in_range(n, WEIGHT_RANGE, "weight", at, p)
}

#[cfg(test)]
mod tests;
