//! The proxy's configuration compiled for use on the request path: an
//! immutable [`Runtime`] (frontends with their compiled routes, pools with
//! their balancers and server sides) that requests read without locks and
//! that a reload or a pool change replaces whole.
//!
//! What must outlive a replacement is carried over by name: a frontend's
//! counters and connection limit, a pool's counters, and each server's
//! load, idle connections and counters (`Upstream::link`). So a reload or
//! a drain loses no count, no warm connection and no `maxconn` accounting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use lb_config::PoolConfig;
use lb_config::proxy::{FrontendConfig, ProxyConfig, ProxyMode};

use crate::front::{FrontCounters, Settings, head};
use crate::headers::Rewrite;
use crate::listen::Limit;
use crate::reject::Guard;
use crate::route::Routes;
use crate::upstream::{HeadLimits, Upstream};

/// A backend's state in effect, as the agent decides it from its admin
/// state and health checks.
pub use crate::servers::ServerState;

/// A pool as the agent has it in effect: its configuration (with runtime
/// weights and admin states applied) and each backend's state in effect,
/// in backend order.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolView {
    pub config: PoolConfig,
    pub states: Vec<ServerState>,
}

/// What the proxy runs: `proxy:`, `frontends:` and the pools in effect.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    pub proxy: ProxyConfig,
    pub frontends: Vec<FrontendConfig>,
    pub pools: Vec<PoolView>,
}

/// One frontend, compiled.
#[derive(Debug)]
pub struct Frontend {
    pub name: Box<str>,
    pub mode: ProxyMode,
    /// Timeouts, head limits and counters, for its connections.
    pub settings: Settings,
    /// Its `maxconn`.
    pub limit: Arc<Limit>,
    pub routes: Routes,
    pub rewrite: Rewrite,
    /// `option http-server-close` (the pool's setting applies too).
    pub http_server_close: bool,
    /// `src_deny`, `src_allow` and `rate_limit`.
    pub reject: Guard,
    /// Its access log; None when it logs nothing.
    pub log: Option<Arc<crate::log::Setup>>,
    /// The configuration it was compiled from (to tell what changed).
    pub config: FrontendConfig,
}

/// One pool, ready for requests.
#[derive(Debug)]
pub struct Pool {
    pub upstream: Upstream,
    /// Its cookie rules and balancer (the next rebuild starts from them).
    pub chooser: Arc<crate::decide::PoolChooser>,
    pub view: PoolView,
    /// When each server's state last changed (unix time), in backend order.
    pub since: Vec<SystemTime>,
}

/// Everything a request needs, at one moment.
#[derive(Debug, Default)]
pub struct Runtime {
    /// Bumped by every replacement; a connection re-reads its frontend
    /// when it sees another.
    pub generation: u64,
    pub frontends: HashMap<Box<str>, Arc<Frontend>>,
    pub pools: HashMap<Box<str>, Arc<Pool>>,
    pub proxy: ProxyConfig,
}

impl Runtime {
    /// The frontend listening on `addr`.
    pub fn frontend_of(&self, addr: SocketAddr) -> Option<&Arc<Frontend>> {
        self.frontends
            .values()
            .find(|f| f.config.binds.iter().any(|b| b.addr == addr))
    }
}

/// Compiles `frontends` against what `old` had (counters and limits kept
/// by name).
pub fn frontends(
    proxy: &ProxyConfig,
    frontends: &[FrontendConfig],
    old: &Runtime,
) -> HashMap<Box<str>, Arc<Frontend>> {
    let limits = head::Limits {
        max_size: proxy.max_header_size as usize,
        max_headers: proxy.max_headers as usize,
    };
    frontends
        .iter()
        .map(|cfg| {
            let before = old.frontends.get(cfg.name.as_str());
            let f = frontend(cfg, proxy, limits, before.map(|f| f.as_ref()));
            (Box::from(cfg.name.as_str()), Arc::new(f))
        })
        .collect()
}

fn frontend(
    cfg: &FrontendConfig,
    proxy: &ProxyConfig,
    limits: head::Limits,
    before: Option<&Frontend>,
) -> Frontend {
    let counters = before.map_or_else(Arc::<FrontCounters>::default, |b| {
        b.settings.counters.clone()
    });
    let limit = match before {
        Some(b) => {
            b.limit.resize(cfg.maxconn);
            b.limit.clone()
        }
        None => Limit::new(cfg.maxconn),
    };
    Frontend {
        name: cfg.name.as_str().into(),
        mode: cfg.mode,
        settings: Settings {
            limits,
            http_request: cfg.timeouts.http_request,
            keep_alive: cfg.timeouts.http_keep_alive,
            client: cfg.timeouts.client,
            counters,
        },
        limit,
        routes: Routes::compile(cfg),
        // Pools have no forwardfor of their own: `defaults`' is theirs. A TCP
        // frontend adds no header.
        rewrite: match cfg.mode {
            ProxyMode::Http => Rewrite::new(
                cfg.forwardfor.as_ref(),
                proxy.defaults.forwardfor.as_ref(),
                cfg.forwarded_proto,
            ),
            ProxyMode::Tcp => Rewrite::default(),
        },
        http_server_close: cfg.http_server_close,
        log: crate::log::Setup::new(cfg, &proxy.log_tag),
        reject: Guard::new(&cfg.reject, before.map(|b| &b.reject)),
        config: cfg.clone(),
    }
}

/// Builds every pool of `views`, keeping what `old` had under the same
/// names; tells the server side of each server whose state changed.
pub fn pools(
    proxy: &ProxyConfig,
    views: &[PoolView],
    old: &Runtime,
) -> HashMap<Box<str>, Arc<Pool>> {
    let limits = HeadLimits::from_config(proxy);
    views
        .iter()
        .map(|v| {
            let before = old.pools.get(v.config.name.as_str());
            (
                Box::from(v.config.name.as_str()),
                Arc::new(pool(v, limits, before.map(|p| p.as_ref()))),
            )
        })
        .collect()
}

fn pool(view: &PoolView, limits: HeadLimits, before: Option<&Pool>) -> Pool {
    let cfg = &view.config;
    let previous = before.map(|p| &p.upstream);
    let links: Vec<_> = cfg
        .backends
        .iter()
        .map(|b| {
            let addr = SocketAddr::new(b.address, b.port.unwrap_or(80));
            Upstream::link(previous, &b.name, addr, b.proxy.maxconn)
        })
        .collect();
    let chooser = Arc::new(crate::decide::PoolChooser::new(
        view,
        &links,
        before.map(|p| &*p.chooser),
    ));
    let upstream = Upstream::new(
        &cfg.name,
        &cfg.proxy,
        links,
        Box::new(chooser.clone()),
        limits,
        previous,
    );
    let now = SystemTime::now();
    let since = cfg
        .backends
        .iter()
        .zip(&view.states)
        .map(|(b, &state)| {
            let old = before.and_then(|p| {
                let i = p
                    .view
                    .config
                    .backends
                    .iter()
                    .position(|ob| ob.name == b.name)?;
                Some((p.view.states.get(i).copied()?, p.since.get(i).copied()?))
            });
            match old {
                Some((was, at)) if was == state => at,
                Some(_) => {
                    announce(&upstream, view, b.name.as_str(), state);
                    now
                }
                None => now,
            }
        })
        .collect();
    Pool {
        upstream,
        chooser,
        view: view.clone(),
        since,
    }
}

/// Tells the server side that a server's state changed: a server leaving
/// `up` has its idle connections closed and its queue redispatched; one
/// coming back takes waiting requests.
fn announce(upstream: &Upstream, view: &PoolView, server: &str, state: ServerState) {
    let Some(i) = view.config.backends.iter().position(|b| b.name == server) else {
        return;
    };
    match state {
        ServerState::Up => upstream.server_up(i),
        ServerState::Down | ServerState::Maint => upstream.server_down(i),
        ServerState::Drain => {}
    }
}
