//! The proxy's statistics at one moment, per frontend, pool and server
//! (HAProxy's stats page rows), for the agent's metrics and stats page.
//! Read from the counters the request path keeps; nothing is locked.

use std::net::SocketAddr;
use std::time::SystemTime;

use lb_config::proxy::{Bind, ProxyMode};

use crate::front::FrontSnapshot;
use crate::runtime::{Runtime, ServerState};
use crate::upstream::Snapshot;

/// Every frontend and pool, sorted by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub frontends: Vec<FrontendStats>,
    pub pools: Vec<PoolStats>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FrontendStats {
    pub name: String,
    pub mode: ProxyMode,
    pub binds: Vec<Bind>,
    pub maxconn: u32,
    pub counters: FrontSnapshot,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PoolStats {
    pub name: String,
    /// Every server's requests together, and those that got no server.
    pub counters: Snapshot,
    /// Requests waiting for any server of the pool.
    pub queued: u32,
    pub servers: Vec<ServerStats>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerStats {
    pub name: String,
    pub addr: SocketAddr,
    pub state: ServerState,
    pub weight: u32,
    pub counters: Snapshot,
    /// Requests in flight now.
    pub active: u32,
    /// Requests waiting for this server now.
    pub queued: u32,
    /// Requests it takes at once (`maxconn`); `None`: no limit.
    pub maxconn: Option<u32>,
    /// When its state last changed.
    pub since: SystemTime,
}

/// The statistics of `rt`.
pub fn of(rt: &Runtime) -> Stats {
    let mut frontends: Vec<FrontendStats> = rt
        .frontends
        .values()
        .map(|f| FrontendStats {
            name: f.name.to_string(),
            mode: f.mode,
            binds: f.config.binds.clone(),
            maxconn: f.limit.max(),
            counters: f.settings.counters.snapshot(),
        })
        .collect();
    frontends.sort_by(|a, b| a.name.cmp(&b.name));
    let mut pools: Vec<PoolStats> = rt
        .pools
        .values()
        .map(|p| {
            let servers = p
                .upstream
                .links()
                .iter()
                .zip(&p.view.config.backends)
                .zip(p.view.states.iter().zip(&p.since))
                .map(|((link, b), (state, since))| ServerStats {
                    name: link.name().to_owned(),
                    addr: link.addr(),
                    state: *state,
                    weight: b.weight,
                    counters: link.counters().snapshot(),
                    active: link.active(),
                    queued: link.queued(),
                    maxconn: link.maxconn(),
                    since: *since,
                })
                .collect();
            PoolStats {
                name: p.upstream.name().to_owned(),
                counters: p.upstream.counters().snapshot(),
                queued: p.upstream.queued(),
                servers,
            }
        })
        .collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    Stats { frontends, pools }
}
