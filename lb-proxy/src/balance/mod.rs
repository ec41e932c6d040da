//! Which server of a pool takes a request: HAProxy 2.6's `balance`
//! algorithms over the pool's [`Servers`], with its `hash-type`s, so the
//! same request reaches the same server as under HAProxy with the same
//! servers and weights (docs/proxy.md, "Balancing").
//!
//! A [`Balancer`] owns the server set it balances over: both are rebuilt
//! together when the agent reports a change or the configuration is
//! reloaded, from the previous balancer, which carries the servers' places
//! on a consistent ring and the round robins' positions over (the servers'
//! live load is the server side's, shared through [`ServerSpec::load`]).
//! Picks take `&self` from any task: round robin holds a short lock, the
//! others are lock-free, and none allocates.

mod fwrr;
pub mod hash;
mod leastconn;
mod map;
mod ring;

use std::net::IpAddr;

use hyper::http::HeaderName;
use hyper::http::request::Parts;
use lb_config::proxy::{Balance, HashType, PoolL7};

use self::fwrr::Fwrr;
use self::hash::{HashKey, Hasher, Input};
use self::leastconn::LeastConn;
use self::map::Map;
use self::ring::Ring;
use crate::servers::{ServerId, ServerSpec, Servers};

/// What a pick found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    Server(ServerId),
    /// Every server taking new traffic is at its `maxconn`: the request
    /// waits in the pool's queue for the first free slot.
    Full,
    /// No server takes new traffic: 503.
    NoServer,
}

/// A pool's balance algorithm over its servers.
#[derive(Debug)]
pub struct Balancer {
    servers: Servers,
    input: Input,
    algo: Algo,
    usable: usize,
}

#[derive(Debug)]
enum Algo {
    RoundRobin(Fwrr),
    StaticRr(Map),
    LeastConn(LeastConn),
    Hash { hasher: Hasher, lookup: Lookup },
}

/// Where a hash leads, and the round robin used when there is nothing to hash.
#[derive(Debug)]
enum Lookup {
    Map(Map),
    Ring(Ring),
}

impl Balancer {
    /// The balancer of a pool with settings `cfg` over `specs` (each with
    /// its live load, which the server side keeps). `previous`, the same
    /// pool's balancer before the change or reload, hands over the
    /// servers' places on a consistent ring by name and, when the algorithm
    /// is the same, where the round robin stands.
    pub fn new(cfg: &PoolL7, specs: &[ServerSpec], previous: Option<&Balancer>) -> Balancer {
        let servers = Servers::build(specs, previous.map(|p| &p.servers));
        let same = previous.filter(|p| {
            p.input == input_of(&cfg.balance) && p.algo.hash_type() == hash_type_of(cfg)
        });
        let algo = Algo::new(cfg, &servers, same);
        let usable = servers.usable_count();
        Balancer {
            input: input_of(&cfg.balance),
            servers,
            algo,
            usable,
        }
    }

    pub fn servers(&self) -> &Servers {
        &self.servers
    }

    /// What the algorithm reads from a request.
    pub fn input(&self) -> &Input {
        &self.input
    }

    /// HAProxy queues a request behind those already waiting for the pool
    /// rather than let it take a server first, with these algorithms
    /// (`assign_server`): the engine checks its pool queue before picking.
    pub fn queue_first(&self) -> bool {
        matches!(self.algo, Algo::RoundRobin(_) | Algo::StaticRr(_))
    }

    /// A server for a request (`head`; None for a TCP connection) from
    /// `client`, not `avoid` if another will do (the server that just
    /// failed). A hash balance with nothing to hash falls back to its
    /// round robin.
    pub fn pick(&self, client: IpAddr, head: Option<&Parts>, avoid: Option<ServerId>) -> Pick {
        self.pick_key(self.input.key(client, head), avoid)
    }

    /// [`Balancer::pick`] for a key already taken from the request.
    pub fn pick_key(&self, key: HashKey<'_>, avoid: Option<ServerId>) -> Pick {
        if self.usable == 0 {
            return Pick::NoServer;
        }
        let found = match &self.algo {
            Algo::RoundRobin(f) => f.next(&self.servers, avoid),
            Algo::StaticRr(m) => m.next(&self.servers, avoid),
            Algo::LeastConn(l) => l.next(&self.servers, avoid),
            Algo::Hash { hasher, lookup } => match (key.hash(*hasher), lookup) {
                (Some(h), Lookup::Map(m)) => m.by_hash(h),
                (Some(h), Lookup::Ring(r)) => r.by_hash(h, avoid),
                (None, Lookup::Map(m)) => m.next(&self.servers, avoid),
                (None, Lookup::Ring(r)) => r.next(&self.servers, avoid),
            },
        };
        found.map_or(Pick::Full, Pick::Server)
    }
}

impl Algo {
    fn new(cfg: &PoolL7, servers: &Servers, previous: Option<&Balancer>) -> Algo {
        let prev = previous.map(|p| &p.algo);
        match &cfg.balance {
            Balance::RoundRobin => match (prev, previous) {
                (Some(Algo::RoundRobin(f)), Some(p)) => {
                    Algo::RoundRobin(Fwrr::carry(f, &p.servers, servers))
                }
                _ => Algo::RoundRobin(Fwrr::new(servers)),
            },
            Balance::StaticRr => Algo::StaticRr(Map::new(servers, prev.map_or(0, Algo::cursor))),
            Balance::LeastConn => {
                Algo::LeastConn(LeastConn::new(servers, prev.map_or(0, Algo::cursor)))
            }
            Balance::Source | Balance::Uri | Balance::UrlParam(_) | Balance::Hdr(_) => {
                let lookup = match cfg.hash_type {
                    HashType::MapBased => {
                        Lookup::Map(Map::new(servers, prev.map_or(0, Algo::cursor)))
                    }
                    HashType::Consistent => {
                        Lookup::Ring(Ring::new(servers, prev.and_then(Algo::ring_last)))
                    }
                };
                Algo::Hash {
                    hasher: Hasher::for_type(cfg.hash_type),
                    lookup,
                }
            }
        }
    }

    fn hash_type(&self) -> Option<HashType> {
        match self {
            Algo::Hash {
                lookup: Lookup::Map(_),
                ..
            } => Some(HashType::MapBased),
            Algo::Hash {
                lookup: Lookup::Ring(_),
                ..
            } => Some(HashType::Consistent),
            _ => None,
        }
    }

    /// Where a circular walk stands, to carry across a rebuild.
    fn cursor(&self) -> usize {
        match self {
            Algo::StaticRr(m)
            | Algo::Hash {
                lookup: Lookup::Map(m),
                ..
            } => m.cursor(),
            Algo::LeastConn(l) => l.cursor(),
            _ => 0,
        }
    }

    fn ring_last(&self) -> Option<u32> {
        match self {
            Algo::Hash {
                lookup: Lookup::Ring(r),
                ..
            } => r.last(),
            _ => None,
        }
    }
}

/// The hash type that matters for `cfg`: only hash balances have one.
fn hash_type_of(cfg: &PoolL7) -> Option<HashType> {
    cfg.balance.hashes().then_some(cfg.hash_type)
}

/// Picks come from many tasks at once.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Balancer>();
};

fn input_of(balance: &Balance) -> Input {
    match balance {
        Balance::RoundRobin | Balance::StaticRr | Balance::LeastConn => Input::None,
        Balance::Source => Input::Source,
        Balance::Uri => Input::Uri,
        Balance::UrlParam(name) => Input::UrlParam(name.as_str().into()),
        // A name that is not a valid header name matches no header: round robin.
        Balance::Hdr(name) => {
            HeaderName::from_bytes(name.as_bytes()).map_or(Input::None, Input::Header)
        }
    }
}

#[cfg(test)]
mod tests;
