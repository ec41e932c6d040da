//! The control API's requests: reads are answered from what the reconciler
//! holds; runtime changes go through the overrides ([`crate::state`]), then
//! persistence, then the data path, then the answer.

use std::collections::BTreeSet;
use std::net::IpAddr;

use lb_api::{
    events::{Cause, EventKind},
    types::{ApiError, ChangeResult, Source},
};
use lb_config::Config;

use super::{Pending, Reconciler, sync::Scope};
use crate::{
    api::{Reply, Request},
    desired,
    state::{self, Effective, Overrides, Touched},
};

/// A runtime change: what it does to the overrides, given the file and
/// what is in effect.
type Mutation<'a> =
    Box<dyn FnOnce(&mut Overrides, &Config, &Effective) -> Result<Touched, ApiError> + 'a>;

impl Reconciler {
    pub(super) fn handle(&mut self, r: Request) {
        match r {
            Request::Status(reply) => {
                let _ = reply.send(Ok(self.status()));
            }
            Request::Stats(reply) => {
                let _ = reply.send(Ok(self.stats()));
            }
            Request::Config(reply) => {
                let _ = reply.send(
                    serde_json::to_value(self.eff.config(&self.file))
                        .map_err(|e| ApiError::internal(e.to_string())),
                );
            }
            Request::Reload(reply) => {
                let _ = reply.send(self.reload());
            }
            Request::Flows {
                pool,
                backend,
                reply,
            } => {
                let _ = reply.send(self.flows(&pool, &backend));
            }
            Request::Explain {
                service,
                client,
                reply,
            } => {
                let _ = reply.send(self.explain(&service, &client));
            }
            Request::Teardown(reply) => {
                let _ = reply.send(self.teardown());
            }
            change => self.handle_change(change),
        }
    }

    /// The requests that change desired state.
    fn handle_change(&mut self, r: Request) {
        // Enabling a backend that cannot take traffic says why it stays out.
        let enabled = match &r {
            Request::SetState {
                pool,
                backend,
                state: lb_config::AdminState::Up,
                ..
            } => Some((pool.clone(), backend.clone())),
            _ => None,
        };
        let (m, reply): (Mutation<'_>, _) = match r {
            Request::AddService(req, reply) => (
                Box::new(move |ov, f, e| state::add_service(ov, f, e, &req)),
                reply,
            ),
            Request::RemoveService { service, reply } => (
                Box::new(move |ov, f, e| state::remove_service(ov, f, e, &service)),
                reply,
            ),
            Request::AddPool(req, reply) => (
                Box::new(move |ov, f, e| state::add_pool(ov, f, e, &req)),
                reply,
            ),
            Request::RemovePool { pool, reply } => (
                Box::new(move |ov, f, e| state::remove_pool(ov, f, e, &pool)),
                reply,
            ),
            Request::AddBackend {
                pool,
                backend,
                reply,
            } => (
                Box::new(move |ov, f, e| state::add_backend(ov, f, e, &pool, &backend)),
                reply,
            ),
            Request::RemoveBackend {
                pool,
                backend,
                reply,
            } => (
                Box::new(move |ov, f, e| state::remove_backend(ov, f, e, &pool, &backend)),
                reply,
            ),
            Request::SetState {
                pool,
                backend,
                state: s,
                reply,
            } => (
                Box::new(move |ov, f, e| state::set_state(ov, f, e, &pool, &backend, s)),
                reply,
            ),
            Request::SetWeight {
                pool,
                backend,
                weight,
                reply,
            } => (
                Box::new(move |ov, f, e| state::set_weight(ov, f, e, &pool, &backend, weight)),
                reply,
            ),
            _ => return,
        };
        self.change(m, reply, enabled);
    }

    /// Applies a runtime change: overrides, then the effective state of what
    /// it touched, the file on disk, the data path; answers once the next
    /// hops of new backend addresses are known.
    fn change(
        &mut self,
        m: Mutation<'_>,
        reply: Reply<ChangeResult>,
        enabled: Option<(String, String)>,
    ) {
        let touched = match m(&mut self.overrides, &self.file, &self.eff) {
            Ok(t) if t.changed() => t,
            Ok(_) => {
                let warnings = enabled.and_then(|(p, b)| self.stays_out(&p, &b));
                let _ = reply.send(Ok(ChangeResult {
                    warnings: warnings.into_iter().collect(),
                    ..ChangeResult::default()
                }));
                return;
            }
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.writer.save(self.overrides.clone());
        let before = Names::of(&self.eff, Some(&touched));
        self.refresh(&touched);
        self.publish_structure(&before, Some(&touched), Source::Runtime);
        let new = self.unresolved(&touched);
        let scope = if touched.services {
            let now = Names::of(&self.eff, Some(&touched));
            Scope::Services(
                before
                    .services
                    .symmetric_difference(&now.services)
                    .cloned()
                    .collect(),
            )
        } else {
            Scope::Pools(touched.pools.clone())
        };
        if touched.pool_set || touched.services {
            self.check_all();
        } else {
            self.check_pools(&touched.pools);
        }
        let result = match self.sync(scope, Cause::Operator) {
            Ok(n) => ChangeResult {
                changed: true,
                map_writes: n,
                warnings: enabled
                    .and_then(|(p, b)| self.stays_out(&p, &b))
                    .into_iter()
                    .collect(),
            },
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if new.is_empty() {
            let _ = reply.send(Ok(result));
        } else {
            self.request_resolution(Some(&new));
            self.pending.push(Pending {
                addrs: new,
                reply,
                result,
            });
        }
    }

    /// Why backend `backend` of `pool`, enabled, still takes no traffic, if it does not.
    fn stays_out(&self, pool: &str, backend: &str) -> Option<String> {
        let (i, j) = self.eff.find_backend(pool, backend).ok()?;
        let (p, b) = (&self.eff.pools[i], &self.eff.pools[i].backends[j]);
        let why = self.ops().down_reason(&p.name, b)?;
        Some(format!(
            "backend {}/{} is enabled but stays out of rotation: {why}",
            p.name, b.name
        ))
    }

    /// Brings the effective state up to date with what a change touched.
    fn refresh(&mut self, t: &Touched) {
        if t.pool_set {
            self.eff.rebuild_pools(&self.file, &self.overrides);
        } else {
            for p in &t.pools {
                self.eff.refresh_pool(&self.file, &self.overrides, p);
            }
        }
        if t.services {
            self.eff.rebuild_services(&self.file, &self.overrides);
        }
    }

    /// Backend addresses of the touched pools without a next hop yet.
    fn unresolved(&self, t: &Touched) -> BTreeSet<IpAddr> {
        let pools = t.pools.iter().filter_map(|p| self.eff.pool(p));
        desired::targets(pools)
            .into_iter()
            .map(|t| t.addr)
            .filter(|a| !self.next_hops.contains_key(a))
            .collect()
    }

    /// Publishes the pools, backends and services that appeared or went
    /// since `before` (taken over the same part, `t`; `None`: everything).
    pub(super) fn publish_structure(&self, before: &Names, t: Option<&Touched>, source: Source) {
        let now = Names::of(&self.eff, t);
        for p in now.pools.difference(&before.pools) {
            self.events.publish(EventKind::PoolAdded {
                pool: p.clone(),
                source,
            });
        }
        for p in before.pools.difference(&now.pools) {
            self.events
                .publish(EventKind::PoolRemoved { pool: p.clone() });
        }
        for (pool, backend) in now.backends.difference(&before.backends) {
            if before.pools.contains(pool) {
                self.events.publish(EventKind::BackendAdded {
                    pool: pool.clone(),
                    backend: backend.clone(),
                    source,
                });
            }
        }
        for (pool, backend) in before.backends.difference(&now.backends) {
            if now.pools.contains(pool) {
                self.events.publish(EventKind::BackendRemoved {
                    pool: pool.clone(),
                    backend: backend.clone(),
                });
            }
        }
        for s in now.services.difference(&before.services) {
            self.events.publish(EventKind::ServiceAdded {
                service: s.clone(),
                source,
            });
        }
        for s in before.services.difference(&now.services) {
            self.events
                .publish(EventKind::ServiceRemoved { service: s.clone() });
        }
    }

    /// Detaches and unpins everything; the agent stops after answering.
    fn teardown(&mut self) -> Result<ChangeResult, ApiError> {
        let dir = self.file.agent.bpffs.clone();
        let removed =
            lb_dataplane::teardown(&dir).map_err(|e| ApiError::internal(e.to_string()))?;
        tracing::warn!(pins = removed.len(), bpffs = %dir.display(), "torn down: the data path is detached and unpinned");
        self.torn_down = true;
        Ok(ChangeResult {
            changed: true,
            map_writes: 0,
            warnings: vec![format!(
                "removed {} pins under {}; the agent stops",
                removed.len(),
                dir.display()
            )],
        })
    }
}

/// The names of what is in effect, to tell what a change added or removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Names {
    pools: BTreeSet<String>,
    backends: BTreeSet<(String, String)>,
    services: BTreeSet<String>,
}

impl Names {
    /// The names a change `t` may have changed (`None`: every name).
    pub(super) fn of(eff: &Effective, t: Option<&Touched>) -> Names {
        let all = t.is_none();
        let pools = eff
            .pools
            .iter()
            .filter(|p| all || t.is_some_and(|t| t.pool_set || t.pools.contains(&p.name)));
        let mut n = Names::default();
        for p in pools {
            n.pools.insert(p.name.clone());
            n.backends
                .extend(p.backends.iter().map(|b| (p.name.clone(), b.name.clone())));
        }
        if all || t.is_some_and(|t| t.services) {
            n.services = eff.services.iter().map(|s| s.name.clone()).collect();
        }
        n
    }
}
