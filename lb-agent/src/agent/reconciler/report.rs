//! What the reconciler tells: `status` (configuration in effect, where each
//! value comes from, states and why), `stats` (counters and rates) and
//! `explain` (where a client lands, by the shared flow hash).

use std::net::{IpAddr, SocketAddr};

use lb_api::types::{
    ApiError, BackendStats, BackendStatus, Counters, Explain, InterfaceStatus, NextHopInfo,
    PoolCheckStats, PoolStatus, ServiceBackend, ServiceStats, ServiceStatus, Stats, Status,
};
use lb_common::{
    abi::{Addr, BackendId},
    hash::{flow_hash, ring_slot},
};
use lb_config::{BackendConfig, HashMode, MacAddr, PoolConfig, ServiceConfig};

use super::Reconciler;
use crate::{health, state};

impl Reconciler {
    /// The data path's id of a service's VIP, once written.
    fn vip_id(&self, s: &ServiceConfig) -> Option<u32> {
        self.actual.vips.get(&s.key().abi()).map(|v| v.id)
    }

    /// The data path's id of backend `b` in service `s`, once written.
    pub(super) fn backend_id(&self, s: &ServiceConfig, b: &BackendConfig) -> Option<BackendId> {
        let vip = self.vip_id(s)?;
        let at = (Addr::from_ip(b.address), s.backend_port(b));
        self.actual
            .backends_of(vip)
            .find(|(k, _)| **k == at)
            .map(|(_, id)| *id)
    }

    fn backend_counters(&self, s: &ServiceConfig, b: &BackendConfig) -> Counters {
        self.backend_id(s, b)
            .and_then(|id| self.dp.backend_counters(id).ok())
            .unwrap_or_default()
    }

    pub(super) fn status(&self) -> Status {
        Status {
            version: env!("CARGO_PKG_VERSION").into(),
            config_file: self.config_path.clone(),
            state_file: self.state_path.clone(),
            precedence: state::PRECEDENCE.into(),
            bpffs: self.file.agent.bpffs.clone(),
            adopted: self.adopted,
            interfaces: self
                .file
                .interfaces
                .iter()
                .map(|i| InterfaceStatus {
                    name: i.name.clone(),
                    xdp_mode: i.xdp_mode.to_string(),
                })
                .collect(),
            reloads: self.reloads.clone(),
            pools: (0..self.eff.pools.len())
                .map(|i| self.pool_status(i))
                .collect(),
            services: (0..self.eff.services.len())
                .map(|i| self.service_status(i))
                .collect(),
        }
    }

    fn pool_status(&self, i: usize) -> PoolStatus {
        let (pool, prov) = (&self.eff.pools[i], &self.eff.pool_provenance[i]);
        let users: Vec<&ServiceConfig> = self
            .eff
            .users(&pool.name)
            .iter()
            .map(|&s| &self.eff.services[s])
            .collect();
        PoolStatus {
            name: pool.name.clone(),
            source: prov.source,
            services: users.iter().map(|s| s.name.clone()).collect(),
            backends: pool
                .backends
                .iter()
                .zip(&prov.backends)
                .map(|(b, p)| BackendStatus {
                    name: b.name.clone(),
                    address: b.address,
                    port: b.port,
                    weight: b.weight,
                    config_weight: p.config_weight,
                    weight_override: p.weight_override,
                    admin: b.state,
                    config_state: p.config_state,
                    state_override: p.state_override,
                    state: self.ops().state(&pool.name, b),
                    down_reason: self.ops().down_reason(&pool.name, b),
                    check: self.checks.status(&pool.name, &b.name),
                    since: self
                        .states
                        .get(&(pool.name.clone(), b.name.clone()))
                        .map(|s| s.1),
                    source: p.source,
                    next_hop: match self.next_hops.get(&b.address) {
                        Some(Ok(h)) => Some(NextHopInfo {
                            ifindex: h.ifindex,
                            mac: MacAddr(h.dst_mac).to_string(),
                        }),
                        _ => None,
                    },
                    counters: users
                        .iter()
                        .map(|s| self.backend_counters(s, b))
                        .fold(Counters::default(), Counters::plus),
                })
                .collect(),
        }
    }

    fn service_status(&self, i: usize) -> ServiceStatus {
        let s = &self.eff.services[i];
        let pool = self.eff.pool(&s.pool);
        ServiceStatus {
            name: s.name.clone(),
            address: s.address,
            port: s.port,
            protocol: s.protocol,
            hash: s.hash,
            ring_size: s.ring_size.into(),
            ring_slots: s.ring_slots(pool.map_or(0, |p| p.backends.len())),
            pool: s.pool.clone(),
            source: self.eff.service_sources[i],
            counters: self
                .vip_id(s)
                .and_then(|id| self.dp.vip_counters(id).ok())
                .unwrap_or_default(),
            backends: pool
                .map(|p| p.backends.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|b| ServiceBackend {
                    name: b.name.clone(),
                    state: self.ops().state(&s.pool, b),
                    weight: b.weight,
                    counters: self.backend_counters(s, b),
                })
                .collect(),
        }
    }

    pub(super) fn stats(&self) -> Stats {
        let services = self
            .eff
            .services
            .iter()
            .map(|s| {
                let vip_id = self.vip_id(s);
                let backends = self
                    .eff
                    .pool(&s.pool)
                    .map(|p| p.backends.as_slice())
                    .unwrap_or_default();
                ServiceStats {
                    name: s.name.clone(),
                    address: s.address,
                    port: s.port,
                    protocol: s.protocol,
                    pool: s.pool.clone(),
                    counters: vip_id
                        .and_then(|i| self.dp.vip_counters(i).ok())
                        .unwrap_or_default(),
                    rates: vip_id.map(|i| self.rates.vip(i)).unwrap_or_default(),
                    backends: backends
                        .iter()
                        .map(|b| BackendStats {
                            name: b.name.clone(),
                            address: b.address,
                            state: self.ops().state(&s.pool, b),
                            weight: b.weight,
                            counters: self.backend_counters(s, b),
                            rates: self
                                .backend_id(s, b)
                                .map(|i| self.rates.backend(i))
                                .unwrap_or_default(),
                        })
                        .collect(),
                }
            })
            .collect();
        Stats {
            interval_secs: self.rates.interval(),
            services,
            reasons: self
                .dp
                .reasons()
                .map(|r| r.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                .unwrap_or_default(),
            checks: self.check_stats(),
        }
    }

    pub(super) fn explain(&self, service: &str, client: &str) -> Result<Explain, ApiError> {
        let s = &self.eff.services[self.eff.find_service(service)?];
        let (ip, port) = parse_client(client)?;
        if ip.is_ipv4() != s.address.is_ipv4() {
            return Err(ApiError::bad_request(format!(
                "{ip} and service {} are of different address families",
                s.address
            )));
        }
        if s.hash == HashMode::SourcePort && port.is_none() {
            return Err(ApiError::bad_request(format!(
                "service `{}` hashes source address and port: give CLIENT_IP:PORT",
                s.name
            )));
        }
        let ring = self
            .vip_id(s)
            .and_then(|i| self.dp.ring(i).ok().flatten())
            .ok_or_else(|| {
                ApiError::internal(format!("service `{}` has no ring in the data path", s.name))
            })?;
        let sport = match s.hash {
            HashMode::Source => 0,
            HashMode::SourcePort => port.unwrap_or(0).to_be(),
        };
        let ring_slots = ring.len() as u32;
        let slot = ring_slot(flow_hash(&Addr::from_ip(ip), sport), ring_slots);
        let pool = self.eff.pool(&s.pool);
        let name_of = |id: BackendId| backend_named(pool?, self.actual.backends.get(&id)?.addr);
        let chosen = ring.get(slot as usize).and_then(|&id| name_of(id));
        let flow_backend = match port {
            Some(p) if s.port != 0 => self
                .dp
                .lookup_flow(
                    SocketAddr::new(ip, p),
                    SocketAddr::new(s.address, s.port),
                    s.protocol.number(),
                )
                .ok()
                .flatten()
                .and_then(|f| name_of(f.backend))
                .map(|b| b.name.clone()),
            _ => None,
        };
        Ok(Explain {
            service: s.name.clone(),
            client: client.to_string(),
            hash: s.hash,
            slot,
            ring_slots,
            backend: chosen.map(|b| b.name.clone()),
            backend_address: chosen.map(|b| b.address),
            flow_backend,
        })
    }
}

impl Reconciler {
    /// What the health checks have seen, per pool.
    fn check_stats(&self) -> Vec<PoolCheckStats> {
        let snap = self.checks.snapshot();
        snap.pools
            .into_iter()
            .map(|(pool, s)| {
                let bounds = health::DURATION_BUCKETS.iter().map(|&b| Some(b));
                PoolCheckStats {
                    pool,
                    duration_buckets: bounds.chain([None]).zip(s.buckets).collect(),
                    duration_sum_secs: s.sum_secs,
                    failures: s
                        .failures
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                }
            })
            .collect()
    }
}

/// The backend of `pool` at the data path's address `addr`.
fn backend_named(pool: &PoolConfig, addr: Addr) -> Option<&BackendConfig> {
    let ip = addr.to_ip();
    pool.backends.iter().find(|b| b.address == ip)
}

/// `IP` or `IP:PORT` (`[v6]:port`).
fn parse_client(client: &str) -> Result<(IpAddr, Option<u16>), ApiError> {
    if let Ok(sa) = client.parse::<SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    client
        .parse()
        .map(|ip| (ip, None))
        .map_err(|_| ApiError::bad_request(format!("`{client}` is not an IP or IP:PORT")))
}
