//! `pools:`: a mapping of pool name → pool, each with its backends.

use std::collections::HashMap;

use serde_yaml::Value;

use super::Interfaces;
use super::backend::backends;
use super::check::{Defaults, check};
use super::notify::pool_command;
use super::proxy::pool_settings;
use crate::diagnostic::Problems;
use crate::model::*;
use crate::positions::YamlPath;
use crate::raw::{RawPool, deserialize_all};
use crate::rules;

/// The pools that passed their checks, and where they and their backends are.
pub(super) struct Pools {
    pub list: Vec<PoolConfig>,
    /// Pool name → where the pool is, and where each of its model backends is.
    pub at: HashMap<String, (YamlPath, Vec<YamlPath>)>,
    /// False when some pool was unusable: an unknown pool name may be that one.
    pub complete: bool,
}

impl Pools {
    /// Whether `name` is a pool of the file; an unknown name is reported
    /// with `report` (only when every pool parsed: else it may be a broken one).
    pub fn check_ref(&self, name: &str, report: impl FnOnce(String)) -> bool {
        if self.at.contains_key(name) {
            return true;
        }
        if self.complete {
            let mut known: Vec<&str> = self.list.iter().map(|x| x.name.as_str()).collect();
            known.sort_unstable();
            let known = if known.is_empty() {
                "no pools are defined".to_owned()
            } else {
                format!("pools: {}", known.join(", "))
            };
            report(format!("unknown pool `{name}` ({known})"));
        }
        false
    }
}

/// The pools of the file. `defaults`: the health-check defaults, and the
/// L7 ones (`proxy.defaults`).
pub(super) fn pools(
    raw: Option<Value>,
    at: &YamlPath,
    ifaces: &Interfaces,
    (checks, l7): (&Defaults, &crate::proxy::PoolL7),
    p: &mut Problems,
) -> Pools {
    let mut out = Pools {
        list: Vec::new(),
        at: HashMap::new(),
        complete: true,
    };
    let entries = match raw {
        None | Some(Value::Null) => return out,
        Some(Value::Mapping(m)) => m,
        Some(_) => {
            p.error(
                at,
                "`pools` is a mapping of pool name to pool, e.g. `pools: {web: {backends: [...]}}`",
            );
            out.complete = false;
            return out;
        }
    };
    for (key, value) in entries {
        // Keys that are not strings were reported and dropped already.
        let Some(name) = key.as_str() else { continue };
        let pool_at = at.key(name);
        if let Err(why) = rules::check_name("pool", name) {
            p.error_at_key(&pool_at, why);
            out.complete = false;
            continue;
        }
        let mut raw = match value {
            Value::Null => RawPool::default(),
            v => match deserialize_all::<RawPool>(v, &pool_at, p) {
                Some((raw, broken)) if broken.is_empty() => raw,
                _ => {
                    out.complete = false;
                    continue;
                }
            },
        };
        let proxy = pool_settings(raw.l7(), l7, &pool_at, p);
        let check = match raw.check {
            None => None,
            Some(c) => match check(c, checks, &pool_at.key("check"), p) {
                Some(c) => Some(c),
                None => {
                    out.complete = false;
                    continue;
                }
            },
        };
        let notify_up = pool_command(raw.notify_up, "notify_up", &pool_at, p);
        let notify_down = pool_command(raw.notify_down, "notify_down", &pool_at, p);
        let list = backends(
            raw.backends.unwrap_or_default(),
            &pool_at.key("backends"),
            name,
            ifaces,
            p,
        );
        let Some(proxy) = proxy else {
            out.complete = false;
            continue;
        };
        let (backends, paths): (Vec<_>, Vec<_>) = list.into_iter().unzip();
        out.at.insert(name.to_owned(), (pool_at, paths));
        out.list.push(PoolConfig {
            name: name.to_owned(),
            backends,
            check,
            notify_up,
            notify_down,
            proxy,
        });
    }
    out
}
