//! A pool's servers as the proxy's decision logic sees them: name, address,
//! weights, state, cookie value and `maxconn`, and a view of each server's
//! live load (requests served and waiting), which the server side counts.
//!
//! The agent reports a pool as a list of [`ServerSpec`]s; [`Servers::build`]
//! turns it into an immutable set, rebuilt on every change (state, weight,
//! a backend added or removed) and on reload. The live counters belong to
//! the server side, which carries them across rebuilds by server name
//! (upstream's `Link`); what the set itself must carry over is the identity
//! a consistent hash ring places a server by, also by name.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// A server's state, as the agent combines administrative state and health
/// (`maint` over `down` over `drain` over `up`).
pub use lb_api::types::BackendState as ServerState;

/// A server's position in the [`Servers`] it was taken from; meaningless for
/// any other set (a rebuild may renumber).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(u32);

impl ServerId {
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of position `i`; [`Servers::build`] keeps positions below `u32::MAX`.
    pub(crate) fn at(i: usize) -> ServerId {
        ServerId(u32::try_from(i).unwrap_or(u32::MAX))
    }
}

/// One server of a pool as the agent reports it.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Unique within the pool; what carries a server's identity across rebuilds.
    pub name: String,
    pub addr: SocketAddr,
    /// The weight the configuration file gives (HAProxy's initial weight).
    pub config_weight: u32,
    /// The weight in effect: the file's, or the one `lb-ctl backend
    /// set-weight` set at runtime.
    pub weight: u32,
    pub state: ServerState,
    /// Its value of the pool's persistence cookie.
    pub cookie: Option<String>,
    /// Requests it serves at once at most; more wait in its queue.
    pub maxconn: Option<u32>,
    /// Its live load, kept by the server side.
    pub load: Arc<dyn Load>,
}

/// A server's load right now, as balancers read it. The server side keeps
/// the counters, one set per server name per pool, shared by every request
/// to the server and by successive [`Servers`] sets.
pub trait Load: Send + Sync {
    /// Requests being served now (HAProxy's `served`).
    fn active(&self) -> u32;
    /// Requests waiting in the server's own queue.
    fn queued(&self) -> u32;
}

impl fmt::Debug for dyn Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Load")
            .field("active", &self.active())
            .field("queued", &self.queued())
            .finish()
    }
}

/// One server of a [`Servers`] set.
#[derive(Debug)]
pub struct Server {
    name: Box<str>,
    addr: SocketAddr,
    config_weight: u32,
    weight: u32,
    state: ServerState,
    cookie: Option<Box<str>>,
    maxconn: Option<u32>,
    hash_id: u32,
    load: Arc<dyn Load>,
}

impl Server {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config_weight(&self) -> u32 {
        self.config_weight
    }

    /// The weight in effect.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    pub fn maxconn(&self) -> Option<u32> {
        self.maxconn
    }

    pub fn load(&self) -> &dyn Load {
        &*self.load
    }

    /// Takes new, balanced traffic: up with a weight above 0.
    pub fn takes_new_traffic(&self) -> bool {
        self.state == ServerState::Up && self.weight > 0
    }

    /// Running: up or draining, whatever its weight. A persistence cookie
    /// naming it is honoured (HAProxy lets sticky clients reach drained and
    /// weight-0 servers); a down or maintenance server gets nothing.
    pub fn is_running(&self) -> bool {
        matches!(self.state, ServerState::Up | ServerState::Drain)
    }

    /// A new request would have to wait for it: it has a `maxconn` and is
    /// at it, or others already wait (first come, first served). Balancers
    /// that may choose freely skip such a server (HAProxy 2.6's test).
    pub fn is_full(&self) -> bool {
        self.maxconn
            .is_some_and(|max| self.load.queued() > 0 || self.load.active() >= max)
    }

    /// The number HAProxy calls the server's `puid`: 1, 2, … in pool order
    /// when the pool first appears, kept for the pool's lifetime, so a
    /// consistent hash ring keeps a server's points when others come and go.
    pub fn hash_id(&self) -> u32 {
        self.hash_id
    }
}

/// A pool's servers, in the pool's order.
#[derive(Debug, Default)]
pub struct Servers {
    list: Box<[Server]>,
    /// Names and their servers (the first, were a name repeated).
    by_name: HashMap<Box<str>, ServerId>,
    /// Cookie values and who has them, sorted by value, then pool order.
    cookies: Box<[(Box<str>, ServerId)]>,
}

impl Servers {
    /// The set for `specs`, in their order. Each server keeps the hash
    /// identity of the server of the same name in `previous` (the same pool
    /// before the change or reload); a new name gets the lowest not in use.
    pub fn build(specs: &[ServerSpec], previous: Option<&Servers>) -> Servers {
        let specs = &specs[..specs.len().min(u32::MAX as usize - 1)];
        let carried: Vec<Option<&Server>> = specs
            .iter()
            .map(|spec| previous.and_then(|p| p.get(p.find(&spec.name)?)))
            .collect();
        let mut ids = HashIds::default();
        ids.taken
            .extend(carried.iter().flatten().map(|old| old.hash_id));
        let list: Box<[Server]> = specs
            .iter()
            .zip(&carried)
            .map(|(spec, old)| Server {
                name: spec.name.as_str().into(),
                addr: spec.addr,
                config_weight: spec.config_weight,
                weight: spec.weight,
                state: spec.state,
                cookie: spec.cookie.as_deref().map(Into::into),
                maxconn: spec.maxconn,
                hash_id: old.map_or_else(|| ids.next(), |o| o.hash_id),
                load: Arc::clone(&spec.load),
            })
            .collect();
        let mut by_name = HashMap::with_capacity(list.len());
        let mut cookies = Vec::new();
        for (i, s) in list.iter().enumerate() {
            by_name.entry(s.name.clone()).or_insert(ServerId::at(i));
            if let Some(c) = &s.cookie {
                cookies.push((c.clone(), ServerId::at(i)));
            }
        }
        cookies.sort();
        Servers {
            list,
            by_name,
            cookies: cookies.into(),
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, id: ServerId) -> Option<&Server> {
        self.list.get(id.index())
    }

    /// The id of the server at position `index` (pool order), if there is one.
    pub fn id_at(&self, index: usize) -> Option<ServerId> {
        (index < self.list.len()).then(|| ServerId::at(index))
    }

    /// Every server with its id, in pool order.
    pub fn iter(&self) -> impl Iterator<Item = (ServerId, &Server)> {
        self.list
            .iter()
            .enumerate()
            .map(|(i, s)| (ServerId::at(i), s))
    }

    pub fn find(&self, name: &str) -> Option<ServerId> {
        self.by_name.get(name).copied()
    }

    /// The servers whose cookie value is `value`, in pool order.
    pub fn with_cookie(&self, value: &[u8]) -> impl Iterator<Item = ServerId> {
        let start = self.cookies.partition_point(|(c, _)| c.as_bytes() < value);
        self.cookies[start..]
            .iter()
            .take_while(move |(c, _)| c.as_bytes() == value)
            .map(|(_, id)| *id)
    }

    /// Servers taking new traffic now.
    pub fn usable_count(&self) -> usize {
        self.list.iter().filter(|s| s.takes_new_traffic()).count()
    }

    /// The server at position `i` (balancers' own indices, always in range).
    pub(crate) fn at(&self, i: usize) -> Option<&Server> {
        self.list.get(i)
    }
}

/// Hands out hash identities: the lowest number from 1 up not taken
/// (HAProxy's automatic server ids).
#[derive(Default)]
struct HashIds {
    taken: HashSet<u32>,
    last: u32,
}

impl HashIds {
    fn next(&mut self) -> u32 {
        loop {
            self.last = self.last.saturating_add(1);
            if self.taken.insert(self.last) || self.last == u32::MAX {
                return self.last;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
