//! The L7 proxy in the agent: started with the configuration (before the
//! agent says READY, so a bind that fails fails the start), given the new
//! `proxy:` and `frontends:` on each reload, and the pools in effect each
//! time a backend's state or weight changes.
//!
//! The reconciler never waits for the proxy: it publishes the latest
//! configuration and pool views on watch channels ([`Feed`]) and a task
//! here applies them, the latest value winning when several come at once.
//! A reload whose binds cannot be opened keeps the running frontends (the
//! error is logged); the rest of the reload stands.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Result;
use lb_config::{Config, PoolConfig, proxy::FrontendConfig, proxy::ProxyConfig};
use lb_proxy::{Desired, PoolView, Proxy, ServerState};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::desired::Unhealthy;

/// The running proxy, for the metrics and the stats page.
static RUNNING: Mutex<Option<Arc<Proxy>>> = Mutex::new(None);

/// The proxy's statistics now; None when no proxy runs.
pub fn stats() -> Option<lb_proxy::stats::Stats> {
    let running = RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    running.map(|p| lb_proxy::stats::of(&p.runtime()))
}

/// The frontend-side configuration a reload may change.
#[derive(Clone, Debug, PartialEq)]
struct Front {
    proxy: ProxyConfig,
    frontends: Vec<FrontendConfig>,
}

/// How the reconciler feeds the proxy; sending never blocks.
#[derive(Clone, Debug)]
pub struct Feed {
    front: watch::Sender<Arc<Front>>,
    pools: watch::Sender<Arc<Vec<PoolView>>>,
}

impl Feed {
    /// A reloaded configuration.
    pub fn config(&self, cfg: &Config) {
        let new = Front {
            proxy: cfg.proxy.clone(),
            frontends: cfg.frontends.clone(),
        };
        self.front.send_if_modified(|cur| {
            let changed = **cur != new;
            if changed {
                *cur = Arc::new(new);
            }
            changed
        });
    }

    /// The pools in effect and which backends their checks hold down.
    pub fn pools(&self, pools: &[PoolConfig], unhealthy: &Unhealthy) {
        let views = views(pools, unhealthy);
        self.pools.send_if_modified(|cur| {
            let changed = **cur != views;
            if changed {
                *cur = Arc::new(views);
            }
            changed
        });
    }
}

/// The proxy's view of `pools`: each backend's admin state, and `down`
/// when its check fails. Unlike the L4 state, an unresolved next hop does
/// not count: the proxy connects through the kernel's routing.
pub fn views(pools: &[PoolConfig], unhealthy: &Unhealthy) -> Vec<PoolView> {
    pools
        .iter()
        .map(|p| PoolView {
            states: p
                .backends
                .iter()
                .map(|b| {
                    let down = unhealthy.contains_key(&(p.name.clone(), b.name.clone()));
                    match (b.state, down) {
                        (lb_config::AdminState::Maint, _) => ServerState::Maint,
                        (_, true) => ServerState::Down,
                        (lb_config::AdminState::Drain, false) => ServerState::Drain,
                        (lb_config::AdminState::Up, false) => ServerState::Up,
                    }
                })
                .collect(),
            config: p.clone(),
        })
        .collect()
}

/// The proxy's task; stops it when told.
pub struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Closes the listeners; requests in flight finish on their own tasks.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
        RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// Starts the proxy with the file's frontends and `pools` (the pools in
/// effect; every backend taken as healthy until its first check).
pub async fn start(cfg: &Config, pools: &[PoolConfig]) -> Result<(Feed, Running)> {
    let front = Front {
        proxy: cfg.proxy.clone(),
        frontends: cfg.frontends.clone(),
    };
    let views = views(pools, &Unhealthy::new());
    let desired = Desired {
        proxy: front.proxy.clone(),
        frontends: front.frontends.clone(),
        pools: views.clone(),
    };
    let proxy = Arc::new(Proxy::start(&desired).await?);
    for addr in proxy.listening().await {
        tracing::info!(%addr, "proxy listening");
    }
    *RUNNING.lock().unwrap_or_else(PoisonError::into_inner) = Some(proxy.clone());
    let (front_tx, front_rx) = watch::channel(Arc::new(front));
    let (pools_tx, pools_rx) = watch::channel(Arc::new(views));
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(follow(proxy, front_rx, pools_rx, stop_rx));
    Ok((
        Feed {
            front: front_tx,
            pools: pools_tx,
        },
        Running { stop, task },
    ))
}

/// Applies what the reconciler publishes until told to stop.
async fn follow(
    proxy: Arc<Proxy>,
    mut front: watch::Receiver<Arc<Front>>,
    mut pools: watch::Receiver<Arc<Vec<PoolView>>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = async { stop.wait_for(|s| *s).await.is_ok() } => break,
            Ok(()) = front.changed() => {
                let f = front.borrow_and_update().clone();
                let desired = Desired {
                    proxy: f.proxy.clone(),
                    frontends: f.frontends.clone(),
                    pools: pools.borrow_and_update().as_ref().clone(),
                };
                match proxy.apply(&desired).await {
                    Ok(()) => tracing::info!(frontends = f.frontends.len(), "proxy reloaded"),
                    Err(e) => tracing::error!(
                        "proxy reload refused, the running frontends stay: {e}"
                    ),
                }
            }
            Ok(()) = pools.changed() => {
                let views = pools.borrow_and_update().clone();
                proxy.update_pools(&views);
            }
        }
    }
    proxy.stop().await;
}
