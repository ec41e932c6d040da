//! From a checked configuration (and, in the agent, runtime overrides and
//! health) to what the data path must hold: [`DesiredVip`]s with resolved next
//! hops. Resolution is the only I/O here and happens apart from the pure build.

use std::{collections::BTreeMap, net::IpAddr, net::SocketAddr, time::Duration};

use lb_common::{
    abi::{Addr, VipKey},
    consts::{state, vip_flags},
};

use lb_config::{BackendConfig, Config, HashMode, VipConfig};
use lb_dataplane::plan::{DesiredBackend, DesiredVip, NextHop};

use crate::neigh::{NeighError, Resolver};

/// Next hops by backend address: resolved, or why not.
pub type NextHops = BTreeMap<IpAddr, Result<NextHop, String>>;

/// How long a single ARP/NDP resolution may take before the backend is
/// reported unreachable (and kept out of the ring).
pub const RESOLVE_WAIT: Duration = Duration::from_secs(3);

/// The data path's key of a configured VIP.
pub fn vip_key(v: &VipConfig) -> VipKey {
    VipKey::new(v.address, v.port, v.protocol.number())
}

/// Backend port as the data path records it (DR keeps the VIP's port).
pub fn backend_port(v: &VipConfig, b: &BackendConfig) -> u16 {
    b.port.unwrap_or(v.port)
}

/// The Maglev key: `address:port`, identical on every LB node.
pub fn maglev_key(v: &VipConfig, b: &BackendConfig) -> String {
    SocketAddr::new(b.address, backend_port(v, b)).to_string()
}

/// Resolves every backend's next hop; failures are kept, not fatal.
pub async fn resolve(config: &Config, resolver: &Resolver) -> NextHops {
    let mut out = NextHops::new();
    for v in &config.vips {
        for b in &v.backends {
            if out.contains_key(&b.address) {
                continue;
            }
            let r: Result<NextHop, NeighError> = resolver
                .next_hop(
                    b.address,
                    b.interface.as_deref(),
                    b.mac.map(|m| m.0),
                    RESOLVE_WAIT,
                )
                .await;
            out.insert(b.address, r.map_err(|e| e.to_string()));
        }
    }
    out
}

/// What the data path must hold for `config`; a backend without a next hop
/// is `down` (out of the ring, its flows re-hashed) until it has one.
pub fn build(
    config: &Config,
    next_hops: &NextHops,
    state_of: impl Fn(&VipConfig, &BackendConfig) -> u32,
) -> Vec<DesiredVip> {
    config
        .vips
        .iter()
        .map(|v| DesiredVip {
            key: vip_key(v),
            flags: match v.hash {
                HashMode::Source => 0,
                HashMode::SourcePort => vip_flags::HASH_SRC_PORT,
            },
            ring_size: v.ring_size,
            backends: v
                .backends
                .iter()
                .map(|b| {
                    let hop = next_hops
                        .get(&b.address)
                        .and_then(|r| r.as_ref().ok())
                        .copied();
                    DesiredBackend {
                        key: maglev_key(v, b),
                        addr: Addr::from_ip(b.address),
                        port: backend_port(v, b),
                        weight: b.weight,
                        state: if hop.is_some() {
                            state_of(v, b)
                        } else {
                            state::DOWN
                        },
                        next_hop: hop.unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// The configured administrative state of a backend.
pub fn config_state(_v: &VipConfig, b: &BackendConfig) -> u32 {
    b.state.abi()
}
