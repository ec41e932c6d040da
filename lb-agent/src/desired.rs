//! From the configuration in effect (and, in the agent, the operational
//! state: next hops) to what the data path must hold: one [`DesiredVip`] per
//! service, built from its pool. Resolving next hops is the only I/O here,
//! apart from the pure build.

use std::{collections::BTreeMap, net::IpAddr, net::SocketAddr, time::Duration};

use futures_util::{StreamExt as _, stream};
use lb_api::types::{BackendState, CheckFailure, DownReason};
use lb_common::{
    abi::Addr,
    consts::{state, vip_flags},
};
use lb_config::{BackendConfig, Config, HashMode, PoolConfig, ServiceConfig};
use lb_dataplane::plan::{Desired, DesiredBackend, DesiredVip, NextHop};

use crate::neigh::Resolver;

/// Next hops by backend address: resolved, or why not (absent: resolving).
pub type NextHops = BTreeMap<IpAddr, Result<NextHop, String>>;

/// How long a single ARP/NDP resolution may take before the backend is
/// reported unreachable (and kept out of the ring).
pub const RESOLVE_WAIT: Duration = Duration::from_secs(3);

/// Resolutions run at once: each reads the neighbour table while it waits.
const RESOLVE_CONCURRENCY: usize = 64;

/// A backend address to resolve: the interface it must be on, a static MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub addr: IpAddr,
    pub interface: Option<String>,
    pub mac: Option<[u8; 6]>,
}

impl Target {
    pub fn of(b: &BackendConfig) -> Target {
        Target {
            addr: b.address,
            interface: b.interface.clone(),
            mac: b.mac.map(|m| m.0),
        }
    }
}

/// Every distinct backend address of `pools`, once (the first definition's
/// interface and MAC).
pub fn targets<'a>(pools: impl IntoIterator<Item = &'a PoolConfig>) -> Vec<Target> {
    let mut seen = BTreeMap::new();
    for b in pools.into_iter().flat_map(|p| &p.backends) {
        seen.entry(b.address).or_insert_with(|| Target::of(b));
    }
    seen.into_values().collect()
}

/// Resolves every target concurrently (a few dozen at a time, so a start
/// with many unreachable backends takes a few resolution timeouts, not one
/// per backend); failures are kept, not fatal.
pub async fn resolve(targets: Vec<Target>, resolver: &Resolver) -> NextHops {
    stream::iter(targets)
        .map(|t| async move {
            let hop = resolver
                .next_hop(t.addr, t.interface.as_deref(), t.mac, RESOLVE_WAIT)
                .await;
            (t.addr, hop.map_err(|e| e.to_string()))
        })
        .buffer_unordered(RESOLVE_CONCURRENCY)
        .collect()
        .await
}

/// Backends whose health check holds them down, by (pool, backend): the
/// check's type and its last failure.
pub type Unhealthy = BTreeMap<(String, String), (String, CheckFailure)>;

/// What the agent knows of backends beyond the configuration: whether they
/// can be reached (next hops) and whether their checks pass.
#[derive(Clone, Copy)]
pub struct Operational<'a> {
    pub hops: &'a NextHops,
    pub unhealthy: &'a Unhealthy,
}

impl Operational<'_> {
    /// Why backend `b` of `pool` cannot take traffic: its next hop first,
    /// then its health check.
    pub fn down_reason(&self, pool: &str, b: &BackendConfig) -> Option<DownReason> {
        match self.hops.get(&b.address) {
            Some(Err(e)) => return Some(DownReason::NoNextHop { detail: e.clone() }),
            None => return Some(DownReason::Resolving),
            Some(Ok(_)) => {}
        }
        let (check, failure) = self.unhealthy.get(&(pool.to_owned(), b.name.clone()))?;
        Some(DownReason::Check {
            check: check.clone(),
            failure: failure.clone(),
        })
    }

    /// The state in effect of backend `b` of `pool`.
    pub fn state(&self, pool: &str, b: &BackendConfig) -> BackendState {
        BackendState::of(b.state, self.down_reason(pool, b).as_ref())
    }
}

/// The data path's encoding of a state (`lb_common::consts::state`): the
/// one place the two meet.
pub const fn abi_state(s: BackendState) -> u32 {
    match s {
        BackendState::Up => state::UP,
        BackendState::Drain => state::DRAIN,
        BackendState::Down => state::DOWN,
        BackendState::Maint => state::MAINT,
    }
}

/// The Maglev key of a backend for a service: `address:port`, identical on
/// every LB node.
pub fn maglev_key(s: &ServiceConfig, b: &BackendConfig) -> String {
    SocketAddr::new(b.address, s.backend_port(b)).to_string()
}

/// What the data path must hold for service `s`, whose pool is `pool`.
pub fn service_vip(s: &ServiceConfig, pool: &PoolConfig, ops: Operational<'_>) -> DesiredVip {
    DesiredVip {
        key: s.key().abi(),
        flags: match s.hash {
            HashMode::Source => 0,
            HashMode::SourcePort => vip_flags::HASH_SRC_PORT,
        },
        ring_size: s.ring_slots(pool.backends.len()),
        backends: pool
            .backends
            .iter()
            .map(|b| DesiredBackend {
                key: maglev_key(s, b),
                addr: Addr::from_ip(b.address),
                port: s.backend_port(b),
                weight: b.weight,
                state: abi_state(ops.state(&pool.name, b)),
                next_hop: ops
                    .hops
                    .get(&b.address)
                    .and_then(|r| r.as_ref().ok())
                    .copied()
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

/// What the data path must hold for a whole configuration (services whose
/// pool is missing are skipped: a checked configuration has none).
pub fn build(config: &Config, ops: Operational<'_>) -> Desired {
    config
        .services
        .iter()
        .filter_map(|s| Some(service_vip(s, config.pool(&s.pool)?, ops)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_config::AdminState;

    fn cfg() -> Config {
        lb_config::parse(
            "interfaces: [{name: eth0}]
pools:
  web:
    backends:
      - {name: a, address: 10.0.1.1, weight: 2}
      - {name: b, address: 10.0.1.2, state: drain}
      - {name: c, address: 10.0.1.3}
services:
  - {name: http, address: 10.0.0.1, port: 80, pool: web}
  - {name: https, address: 10.0.0.1, port: 443, pool: web, hash: source-port}
",
            "t",
        )
        .unwrap()
        .config
    }

    #[test]
    fn each_service_gets_the_pool_with_its_own_port_and_states_in_effect() {
        let c = cfg();
        let hop = NextHop {
            ifindex: 2,
            ..NextHop::default()
        };
        let hops: NextHops = [
            ("10.0.1.1".parse().unwrap(), Ok(hop)),
            ("10.0.1.2".parse().unwrap(), Ok(hop)),
            ("10.0.1.3".parse().unwrap(), Err("no ARP answer".into())),
        ]
        .into();
        let unhealthy = Unhealthy::from([(
            ("web".to_owned(), "a".to_owned()),
            ("http".to_owned(), CheckFailure::HttpStatus { status: 503 }),
        )]);
        let d = build(
            &c,
            Operational {
                hops: &hops,
                unhealthy: &unhealthy,
            },
        );
        assert_eq!(d.len(), 2);
        let https = d.get(&c.services[1].key().abi()).unwrap();
        assert_eq!(https.flags, vip_flags::HASH_SRC_PORT);
        assert_eq!(https.ring_size, lb_common::ring_size::auto(3));
        let keys: Vec<&str> = https.backends.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(keys, ["10.0.1.1:443", "10.0.1.2:443", "10.0.1.3:443"]);
        let states: Vec<u32> = https.backends.iter().map(|b| b.state).collect();
        assert_eq!(states, [state::DOWN, state::DRAIN, state::DOWN]);
        assert_eq!(https.backends[2].next_hop, NextHop::default());
    }

    #[test]
    fn maintenance_wins_and_unreachable_beats_drain() {
        let b = |s| BackendConfig {
            state: s,
            ..cfg().pools[0].backends[0].clone()
        };
        let (hops, unhealthy) = (NextHops::new(), Unhealthy::new());
        let ops = Operational {
            hops: &hops,
            unhealthy: &unhealthy,
        };
        assert_eq!(ops.state("web", &b(AdminState::Up)), BackendState::Down);
        assert_eq!(ops.state("web", &b(AdminState::Maint)), BackendState::Maint);
        assert_eq!(ops.state("web", &b(AdminState::Drain)), BackendState::Down);
        assert_eq!(
            ops.down_reason("web", &b(AdminState::Up)),
            Some(DownReason::Resolving)
        );
    }
}
