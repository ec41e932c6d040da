//! The running proxy as its owner (the agent) holds it: started with a
//! [`Desired`] state, replaced on reload ([`Proxy::apply`]), told of
//! backend state changes ([`Proxy::update_pools`]), read for statistics,
//! stopped.
//!
//! Listeners through a reload: a bind whose address stays keeps its socket
//! (serving whichever frontend names it now), so nothing is refused; a
//! new bind is opened before anything else changes, and a failure to open
//! one refuses the whole reload; a bind whose address stays but whose
//! `v6only` flips gets a new socket beside the old (`SO_REUSEPORT`), and
//! the old one hands over what waits in its backlog before closing; a
//! removed bind closes, and its connections end after the request in
//! flight.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use lb_config::proxy::Bind;
use tokio::net::TcpListener;

use crate::cores::{self, Cores};
use crate::listen::{self, Accepted, Acceptor, Limit, Listener};
use crate::runtime::{self, Desired, PoolView, Runtime};

/// Why the proxy could not start or apply a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(
        "cannot listen on {addr} (frontend `{frontend}`): {source}; free the address or \
         change the bind"
    )]
    Bind {
        addr: SocketAddr,
        frontend: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the proxy's threads: {0}; check the process and thread limits")]
    Threads(#[source] std::io::Error),
    #[error("cannot drop the privileges of the proxy's threads: {0}")]
    Confine(#[from] crate::confine::ConfineError),
}

/// What requests share: the runtime in force and the global limit.
pub(crate) struct Shared {
    pub(crate) runtime: ArcSwap<Runtime>,
    pub(crate) global: Arc<Limit>,
    /// The threads connections are served on.
    cores: Arc<Cores>,
    /// Serializes replacements (apply, update_pools); never held on the
    /// request path.
    writer: Mutex<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the runtime with one built from the current one.
    fn replace(&self, build: impl FnOnce(&Runtime) -> Runtime) {
        let _w = self.lock();
        let old = self.runtime.load_full();
        let mut new = build(&old);
        new.generation = old.generation + 1;
        self.runtime.store(Arc::new(new));
    }
}

impl Acceptor for Shared {
    fn limit(&self, bind: SocketAddr) -> Option<Arc<Limit>> {
        self.runtime
            .load()
            .frontend_of(bind)
            .map(|f| f.limit.clone())
    }

    fn serve(self: Arc<Self>, conn: Accepted) {
        let rt = self.runtime.load_full();
        let Some(f) = rt.frontend_of(conn.bind).cloned() else {
            return;
        };
        // The socket moves to a core thread's event loop.
        let Ok(stream) = conn.stream.into_std() else {
            return;
        };
        let core = self.cores.clone();
        core.next().spawn(async move {
            let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                return;
            };
            crate::serve::spawn(self, rt, f, Accepted { stream, ..conn });
        });
    }
}

/// The running proxy.
pub struct Proxy {
    shared: Arc<Shared>,
    /// Dropped with the proxy: its threads stop.
    _cores: cores::Running,
    /// Listeners by address; only [`Proxy::apply`] and [`Proxy::stop`] touch them.
    listeners: tokio::sync::Mutex<BTreeMap<SocketAddr, Listener>>,
}

impl Proxy {
    /// Opens every bind of `desired` and starts serving.
    pub async fn start(desired: &Desired) -> Result<Proxy, ProxyError> {
        let (cores, running) = Cores::start(wants_net_raw(desired))?;
        let proxy = Proxy {
            shared: Arc::new(Shared {
                runtime: ArcSwap::from_pointee(Runtime::default()),
                global: Limit::new(desired.proxy.maxconn),
                cores,
                writer: Mutex::new(()),
            }),
            _cores: running,
            listeners: tokio::sync::Mutex::new(BTreeMap::new()),
        };
        proxy.apply(desired).await?;
        Ok(proxy)
    }

    /// Makes the proxy run `desired`: new binds opened first (any failure
    /// refuses the whole change, and nothing changes), then the runtime
    /// replaced, then removed binds closed.
    pub async fn apply(&self, desired: &Desired) -> Result<(), ProxyError> {
        if wants_net_raw(desired) && !self.shared.cores.net_raw() {
            tracing::warn!(
                "a pool uses `usesrc`, but the proxy's threads dropped CAP_NET_RAW when the agent \
                 started (no `usesrc` then, or the agent lacks it): its connections will fail \
                 until the agent is restarted with it"
            );
        }
        let mut listeners = self.listeners.lock().await;
        let plan = plan_binds(desired, &listeners);
        let opened = open_all(&plan.open)?;
        self.shared.global.resize(desired.proxy.maxconn);
        self.shared.replace(|old| Runtime {
            generation: 0,
            frontends: runtime::frontends(&desired.proxy, &desired.frontends, old),
            pools: runtime::pools(&desired.proxy, &desired.pools, old),
            proxy: desired.proxy.clone(),
        });
        let acceptor: Arc<dyn Acceptor> = self.shared.clone();
        for (bind, socket) in opened {
            let new = Listener::start(bind, socket, self.shared.global.clone(), acceptor.clone());
            if let Some(old) = listeners.insert(bind.addr, new) {
                old.hand_over().await;
            }
        }
        for addr in plan.close {
            if let Some(l) = listeners.remove(&addr) {
                l.close().await;
            }
        }
        Ok(())
    }

    /// The pools in effect changed (a backend's state or weight, a pool or
    /// backend added or removed at runtime): rebuilds the pools, keeping
    /// every server's connections, load and counters.
    pub fn update_pools(&self, pools: &[PoolView]) {
        self.shared.replace(|old| Runtime {
            generation: 0,
            frontends: old.frontends.clone(),
            pools: runtime::pools(&old.proxy, pools, old),
            proxy: old.proxy.clone(),
        });
    }

    /// The runtime in force (for statistics).
    pub fn runtime(&self) -> Arc<Runtime> {
        self.shared.runtime.load_full()
    }

    /// Addresses listened on now.
    pub async fn listening(&self) -> Vec<SocketAddr> {
        self.listeners.lock().await.keys().copied().collect()
    }

    /// Closes every listener; connections finish their request in flight.
    pub async fn stop(&self) {
        let mut listeners = self.listeners.lock().await;
        for (_, l) in std::mem::take(&mut *listeners) {
            l.close().await;
        }
    }
}

/// Whether a pool of `desired`, or one added at runtime with the defaults,
/// connects from a foreign address (`usesrc`): the core threads then keep
/// `CAP_NET_RAW`, which `IP_TRANSPARENT` needs.
fn wants_net_raw(desired: &Desired) -> bool {
    let transparent = |s: &Option<lb_config::proxy::Source>| s.is_some_and(|s| s.is_transparent());
    transparent(&desired.proxy.defaults.pool.source)
        || desired
            .pools
            .iter()
            .any(|p| transparent(&p.config.proxy.source))
}

/// What a reload does to the listeners (addresses kept as they are are
/// not in it: they serve whichever frontend binds them now).
#[derive(Debug, Default)]
struct BindPlan {
    /// Sockets to open (new addresses, or `v6only` changed), with their
    /// frontend's name and `maxconn` (the backlog).
    open: Vec<(Bind, String, u32)>,
    /// Addresses no longer listened on.
    close: Vec<SocketAddr>,
}

fn plan_binds(desired: &Desired, running: &BTreeMap<SocketAddr, Listener>) -> BindPlan {
    let mut wanted = BTreeMap::new();
    for f in &desired.frontends {
        for b in &f.binds {
            wanted.insert(b.addr, (*b, f));
        }
    }
    let open = wanted
        .iter()
        .filter(|(addr, (bind, _))| running.get(*addr).is_none_or(|l| l.bind != *bind))
        .map(|(_, (bind, f))| (*bind, f.name.clone(), f.maxconn))
        .collect();
    let close = running
        .keys()
        .filter(|a| !wanted.contains_key(a))
        .copied()
        .collect();
    BindPlan { open, close }
}

/// Opens every socket, or none.
fn open_all(binds: &[(Bind, String, u32)]) -> Result<Vec<(Bind, TcpListener)>, ProxyError> {
    binds
        .iter()
        .map(|(bind, frontend, maxconn)| {
            listen::open(bind, *maxconn)
                .map(|s| (*bind, s))
                .map_err(|source| ProxyError::Bind {
                    addr: bind.addr,
                    frontend: frontend.clone(),
                    source,
                })
        })
        .collect()
}
