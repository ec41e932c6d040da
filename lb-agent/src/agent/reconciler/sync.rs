//! Effective state → desired VIPs → map writes, for the part that changed,
//! and the backend state transitions that came with it.

use std::collections::BTreeSet;

use lb_api::{
    events::{Cause, EventKind},
    types::{ApiError, BackendState, DownReason},
};
use lb_common::abi::VipKey;
use lb_dataplane::plan;

use super::{Reconciler, unix_now};
use crate::desired::service_vip;

/// What a change asks to recompute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// Every service (start, reload, services added or removed).
    All,
    /// The services using these pools.
    Pools(BTreeSet<String>),
    /// These services (added or removed by name).
    Services(BTreeSet<String>),
}

impl Reconciler {
    /// Rebuilds the desired VIPs of the services in `scope`, writes what
    /// differs, and publishes the backend state transitions it made, caused
    /// by `cause`. Returns the number of map writes.
    pub(super) fn sync(&mut self, scope: Scope, cause: Cause) -> Result<usize, ApiError> {
        // The L7 proxy first, whatever the data path does; it rebuilds only
        // when its view of a pool changed.
        self.proxy.pools(&self.eff.pools, &self.unhealthy);
        let touched = match &scope {
            Scope::All => self.rebuild_all(),
            Scope::Pools(pools) => self.rebuild_pools(pools),
            Scope::Services(names) => self.rebuild_services(names),
        };
        let n = self.write(&touched)?;
        let pools: Vec<String> = match scope {
            Scope::All => self.eff.pools.iter().map(|p| p.name.clone()).collect(),
            Scope::Pools(p) => p.into_iter().collect(),
            Scope::Services(_) => Vec::new(),
        };
        self.record_transitions(&pools, cause);
        Ok(n)
    }

    /// Every service's VIP anew; the keys of every VIP desired before or now.
    fn rebuild_all(&mut self) -> BTreeSet<VipKey> {
        let mut touched: BTreeSet<VipKey> = self.service_keys.values().copied().collect();
        for key in std::mem::take(&mut self.service_keys).values() {
            self.desired.remove(key);
        }
        for i in 0..self.eff.services.len() {
            touched.extend(self.rebuild_service(i));
        }
        touched.extend(self.actual.vips.keys().copied());
        touched
    }

    /// The VIPs of the services using `pools`; their keys.
    fn rebuild_pools(&mut self, pools: &BTreeSet<String>) -> BTreeSet<VipKey> {
        let users: BTreeSet<usize> = pools
            .iter()
            .flat_map(|p| self.eff.users(p).iter().copied())
            .collect();
        users
            .into_iter()
            .filter_map(|i| self.rebuild_service(i))
            .collect()
    }

    /// The VIPs of the services named: rebuilt if in effect, dropped if not.
    fn rebuild_services(&mut self, names: &BTreeSet<String>) -> BTreeSet<VipKey> {
        let mut touched = BTreeSet::new();
        for name in names {
            if let Some(key) = self.service_keys.remove(name) {
                self.desired.remove(&key);
                touched.insert(key);
            }
            if let Ok(i) = self.eff.find_service(name) {
                touched.extend(self.rebuild_service(i));
            }
        }
        touched
    }

    /// Service `i`'s desired VIP, from its pool and the next hops; its key.
    /// A ring that changes size is announced: every client is re-hashed.
    fn rebuild_service(&mut self, i: usize) -> Option<VipKey> {
        let svc = &self.eff.services[i];
        let pool = self.eff.pool(&svc.pool)?;
        let vip = service_vip(svc, pool, self.ops());
        let key = vip.key;
        let (to, backends) = (vip.ring_size, vip.backends.len());
        let old = self.desired.set(vip);
        if let Some(from) = old.map(|o| o.ring_size).filter(|&m| m != to) {
            self.events.publish(EventKind::RingResized {
                service: svc.name.clone(),
                from,
                to,
                backends,
            });
        }
        self.service_keys.insert(svc.name.clone(), key);
        Some(key)
    }

    /// Plans and writes the VIPs in `touched`.
    fn write(&mut self, touched: &BTreeSet<VipKey>) -> Result<usize, ApiError> {
        let p = plan::plan(&self.actual, &self.desired, touched)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let n = plan::apply(&mut self.dp, &mut self.actual, p)
            .map_err(|e| ApiError::internal(format!("writing the maps: {e}")))?;
        if n > 0 {
            tracing::debug!(map_writes = n, vips = touched.len(), "data path updated");
        }
        Ok(n)
    }

    /// Compares each backend of `pools` with the state last recorded and
    /// publishes what changed. At start only what is not `up` is worth saying.
    fn record_transitions(&mut self, pools: &[String], cause: Cause) {
        let now = unix_now();
        for name in pools {
            let Some(pool) = self.eff.pool(name) else {
                self.states.retain(|(p, _), _| p != name);
                continue;
            };
            let names: BTreeSet<&str> = pool.backends.iter().map(|b| b.name.as_str()).collect();
            self.states
                .retain(|(p, b), _| p != name || names.contains(b.as_str()));
            for b in &pool.backends {
                let down = self.ops().down_reason(name, b);
                let to = BackendState::of(b.state, down.as_ref());
                let slot = (name.clone(), b.name.clone());
                let from = self.states.get(&slot).map(|s| s.0);
                if from == Some(to) {
                    continue;
                }
                self.states.insert(slot, (to, now));
                if cause == Cause::Startup && to == BackendState::Up {
                    continue;
                }
                self.events.publish(EventKind::BackendState {
                    pool: name.clone(),
                    backend: b.name.clone(),
                    address: b.address,
                    port: b.port,
                    from,
                    to,
                    cause,
                    reason: reason(cause, to, down.as_ref()),
                });
            }
        }
    }
}

/// Why a backend is in state `to` now, in words.
fn reason(cause: Cause, to: BackendState, down: Option<&DownReason>) -> String {
    match (to, down) {
        (BackendState::Down, Some(d)) => d.to_string(),
        _ => match cause {
            Cause::Startup => "state at start".to_owned(),
            Cause::Config => "set by the configuration file".to_owned(),
            Cause::Operator => "set by an operator".to_owned(),
            Cause::NextHop => "next hop resolved".to_owned(),
            Cause::Health => "health check passes".to_owned(),
        },
    }
}
