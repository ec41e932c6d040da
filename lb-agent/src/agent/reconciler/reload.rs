//! Re-reading the configuration file (SIGHUP, `lb-ctl reload`): an invalid
//! file, or one that does not hold together with the runtime changes, is
//! refused with every reason and nothing changes; otherwise only what
//! differs is written.

use std::collections::{BTreeMap, BTreeSet};

use lb_api::{
    events::{Cause, EventKind},
    types::{ApiError, ReloadResult, Source},
};
use lb_config::{self as config, Config, LoadError, rules};
use lb_dataplane::plan::DesiredVip;

use super::{Reconciler, requests::Names, sync::Scope, unix_now};
use crate::{agent::notify, state};

impl Reconciler {
    pub(super) fn reload(&mut self) -> Result<ReloadResult, ApiError> {
        notify::reloading();
        self.reloads.count += 1;
        self.reloads.last_at = Some(unix_now());
        let r = self.reload_inner();
        let (ok, changed, error) = match &r {
            Ok(res) => {
                self.reloads.last_result = Some("ok".into());
                self.reloads.last_error = None;
                (true, res.changed_services.clone(), None)
            }
            Err(e) => {
                self.reloads.failures += 1;
                self.reloads.last_result = Some("error".into());
                self.reloads.last_error = Some(e.reason.clone());
                (false, Vec::new(), Some(e.reason.clone()))
            }
        };
        self.events.publish(EventKind::Reload {
            ok,
            changed_services: changed,
            error,
        });
        notify::ready();
        r
    }

    fn reload_inner(&mut self) -> Result<ReloadResult, ApiError> {
        let checked = config::load(&self.config_path).map_err(|e| match e {
            LoadError::Invalid(d) => ApiError::invalid(d.to_string()),
            LoadError::Io { .. } => ApiError::invalid(format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            )),
        })?;
        let new = checked.config;
        // What needs a restart cannot change on reload: say so, keep the rest.
        let mut warnings: Vec<String> = checked.warnings.iter().map(|w| w.to_string()).collect();
        if new.agent != self.file.agent {
            warnings.push("`agent:` settings change only on restart; the running ones stay".into());
        }
        if new.interfaces != self.file.interfaces {
            warnings.push("`interfaces:` change only on restart; the running ones stay".into());
        }
        if new.stats != self.file.stats {
            warnings.push("`stats:` changes only on restart; the running page stays".into());
        }
        let file = Config {
            agent: self.file.agent.clone(),
            interfaces: self.file.interfaces.clone(),
            stats: self.file.stats.clone(),
            ..new
        };
        // The new file must also make sense with the runtime changes on top.
        let eff = state::effective(&file, &self.overrides);
        let errors = rules::check_config(&eff.config(&file));
        if !errors.is_empty() {
            return Err(ApiError::invalid(format!(
                "the file is valid, but not together with the runtime changes (`lb-ctl status` \
                 lists them): {}",
                errors.join("; ")
            )));
        }
        let before = Names::of(&self.eff, None);
        let desired_before = self.desired_by_service();
        self.file = file;
        self.eff = eff;
        // Pools first: frontends of the new file may route to new pools.
        self.proxy.pools(&self.eff.pools, &self.unhealthy);
        self.proxy.config(&self.file);
        warnings.extend(
            self.eff
                .orphans(&self.file, &self.overrides)
                .into_iter()
                .map(|o| format!("runtime override no longer matches the file: {o}")),
        );
        self.publish_structure(&before, None, Source::Config);
        let new = crate::desired::targets(&self.eff.pools)
            .into_iter()
            .map(|t| t.addr)
            .filter(|a| !self.next_hops.contains_key(a))
            .collect();
        self.request_resolution(Some(&new));
        let map_writes = self.sync(Scope::All, Cause::Config)?;
        self.check_all();
        Ok(ReloadResult {
            map_writes,
            changed_services: changed(&desired_before, &self.desired_by_service()),
            warnings,
        })
    }

    /// Each service's desired VIP, by name.
    fn desired_by_service(&self) -> BTreeMap<String, DesiredVip> {
        self.service_keys
            .iter()
            .filter_map(|(name, key)| Some((name.clone(), self.desired.get(key)?.clone())))
            .collect()
    }
}

/// Names of the services added, removed or changed between `a` and `b`.
fn changed(a: &BTreeMap<String, DesiredVip>, b: &BTreeMap<String, DesiredVip>) -> Vec<String> {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .cloned()
        .collect()
}
