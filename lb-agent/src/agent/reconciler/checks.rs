//! Health checks seen from the reconciler: which backends are checked and
//! where (from the configuration in effect), and what a change of verdict
//! does (the backend leaves or rejoins the rings of every service using its
//! pool, in one reconcile).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::mpsc::Receiver;

use lb_api::events::{Cause, EventKind};
use lb_common::{abi::Addr, consts::state};
use lb_config::{BackendConfig, PoolConfig, check::CheckConfig};

use super::{Msg, Reconciler, sync::Scope};
use crate::health::{self, Aim, Change, Target};

impl Reconciler {
    /// Gives every checked backend its check (start, reload).
    pub(super) fn check_all(&mut self) {
        let targets = self.check_targets(self.eff.pools.iter());
        health::via::retain(None, &targets);
        self.checks.set(None, targets);
    }

    /// Brings the checks of `pools` in line with the configuration in effect.
    pub(super) fn check_pools(&mut self, pools: &BTreeSet<String>) {
        let targets = self.check_targets(self.eff.pools.iter().filter(|p| pools.contains(&p.name)));
        health::via::retain(Some(pools), &targets);
        self.checks.set(Some(pools), targets);
    }

    fn check_targets<'a>(&self, pools: impl Iterator<Item = &'a PoolConfig>) -> Vec<Target> {
        let mut out = Vec::new();
        for p in pools {
            let Some(check) = &p.check else { continue };
            for b in p.backends.iter().filter(|b| !b.check.disabled) {
                match self.aim(p, check, b) {
                    Some(aim) => out.push(Target {
                        kind: check.kind.clone(),
                        timing: check.timing,
                        aim,
                        healthy_at_start: !self.found_down(p, b),
                    }),
                    None => tracing::warn!(
                        pool = %p.name,
                        backend = %b.name,
                        "not checked: no port to check (give the check or the backend a port, \
                         or use the pool in a service)"
                    ),
                }
            }
        }
        out
    }

    /// Where backend `b`'s check goes: its own `check:` settings, then the
    /// pool's, then the backend's address and port (or, for DR backends
    /// without one, the port of the first service using the pool).
    fn aim(&self, p: &PoolConfig, check: &CheckConfig, b: &BackendConfig) -> Option<Aim> {
        let via = check
            .via_service
            .as_ref()
            .and_then(|name| self.eff.services.iter().find(|s| s.name == *name));
        let first_user = self
            .eff
            .users(&p.name)
            .first()
            .map(|&i| &self.eff.services[i]);
        let address = b
            .check
            .address
            .or(check.address)
            .or(via.map(|s| s.address))
            .unwrap_or(b.address);
        let needs_port = !matches!(
            check.kind,
            lb_config::check::CheckKind::Icmp | lb_config::check::CheckKind::Script { .. }
        );
        let port = b
            .check
            .port
            .or(check.port)
            .or(b.port.filter(|&p| p != 0))
            .or(via.or(first_user).map(|s| s.port).filter(|&p| p != 0));
        if needs_port && port.is_none() {
            return None;
        }
        Some(Aim {
            target: SocketAddr::new(address, port.unwrap_or(0)),
            pool: p.name.clone(),
            backend: b.name.clone(),
            mark: via.and_then(|s| {
                let detour = health::via::Detour {
                    service: s.address,
                    backend: b.address,
                };
                health::via::mark(&p.name, &b.name, detour)
            }),
        })
    }

    /// Whether the data path this agent adopted had backend `b` down while
    /// its next hop is fine: most likely its check failed before a restart.
    fn found_down(&self, p: &PoolConfig, b: &BackendConfig) -> bool {
        if !matches!(self.next_hops.get(&b.address), Some(Ok(_))) {
            return false;
        }
        let addr = Addr::from_ip(b.address);
        self.eff.users(&p.name).iter().any(|&i| {
            let s = &self.eff.services[i];
            self.backend_id(s, b)
                .and_then(|id| self.actual.backends.get(&id))
                .is_some_and(|e| e.addr == addr && e.state == state::DOWN)
        })
    }

    /// Applies a verdict change and every other one already waiting, in
    /// one reconcile: when many servers die at once, each ring and backend
    /// copy flips once for all of them instead of once per server (every
    /// flip may wait for a grace period). Returns the first other message
    /// found, to be handled next.
    pub(super) fn on_health(&mut self, first: Change, rx: &Receiver<Msg>) -> Option<Msg> {
        let mut pools = BTreeSet::new();
        let mut next = None;
        let mut change = Some(first);
        while let Some(c) = change.take() {
            pools.insert(c.pool.clone());
            self.record_health(c);
            match rx.try_recv() {
                Ok(Msg::Health(c)) => change = Some(c),
                Ok(other) => next = Some(other),
                Err(_) => {}
            }
        }
        if let Err(e) = self.sync(Scope::Pools(pools), Cause::Health) {
            tracing::error!(error = %e, "applying health changes");
        }
        next
    }

    /// Notes a verdict: the backend's down reason, and the `health` event.
    fn record_health(&mut self, c: Change) {
        let key = (c.pool.clone(), c.backend.clone());
        let reason = c.failure.as_ref().map(ToString::to_string);
        match (c.healthy, c.failure) {
            (true, _) => {
                self.unhealthy.remove(&key);
            }
            (false, failure) => {
                let failure = failure.unwrap_or(lb_api::types::CheckFailure::Io {
                    detail: "failed".into(),
                });
                self.unhealthy.insert(key, (c.check.clone(), failure));
            }
        }
        self.events.publish(EventKind::Health {
            pool: c.pool,
            backend: c.backend,
            healthy: c.healthy,
            check: c.check,
            reason,
        });
    }
}
