//! Where the rig's servers are and how lb's configuration groups them.
//!
//! Server `k` listens on client alias `k % ADDRESSES` (10.77.1.1–10.77.1.100,
//! addresses that answer ARP on the LB's /16) and port `BASE_PORT + k /
//! ADDRESSES`. Pool `j` holds servers `POOL_SIZE·j …`: ten addresses on one
//! port, so that in direct routing (where a backend keeps the service's port)
//! the pool can serve one service. The data path holds at most
//! `MAX_BACKENDS` (4,096) backend entries, one per service and backend, so
//! only the first [`RING_POOLS`] pools are used by services (4,000 servers in
//! Maglev rings); the others are checked all the same, as pools that only L7
//! frontends use are, and give their port to the check.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use anyhow::{Result, ensure};

use crate::{
    bench_control::{config::AgentPaths, rng::Rng},
    lab::{IFNAME, client_alias_v4},
};

/// Addresses the servers listen on (the lab client's first aliases).
pub const ADDRESSES: usize = 100;
/// Servers per pool: ten addresses sharing one port.
pub const POOL_SIZE: usize = 10;
/// The first servers' port; each next hundred servers take the next port.
pub const BASE_PORT: u16 = 10_000;
/// Pools used by services: 4,000 data-path entries of the 4,096 there are,
/// leaving room for the entries a change allocates before it frees others.
pub const RING_POOLS: usize = 400;
/// Most servers the rig builds (the listeners and the generated files grow with it).
pub const MAX_SERVERS: usize = 50_000;

/// One server of the rig, by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Server(pub usize);

impl Server {
    pub fn addr(self) -> Ipv4Addr {
        client_alias_v4(self.0 % ADDRESSES)
    }

    pub fn port(self) -> u16 {
        // MAX_SERVERS / ADDRESSES ports above BASE_PORT fit in a u16.
        BASE_PORT + (self.0 / ADDRESSES) as u16
    }

    pub fn socket(self) -> SocketAddr {
        SocketAddr::new(self.addr().into(), self.port())
    }

    /// Its pool's number.
    pub fn pool(self) -> usize {
        self.0 / POOL_SIZE
    }

    /// Its name in its pool: `b1` … `b10`.
    pub fn name(self) -> String {
        format!("b{}", self.0 % POOL_SIZE + 1)
    }

    /// The server listening on `at`.
    pub fn at(at: SocketAddr) -> Option<Server> {
        let k = (0..ADDRESSES).find(|&k| IpAddr::from(client_alias_v4(k)) == at.ip())?;
        let block = usize::from(at.port().checked_sub(BASE_PORT)?);
        Some(Server(block * ADDRESSES + k))
    }

    /// The server a pool's backend name stands for.
    pub fn find(pool: usize, name: &str) -> Option<Server> {
        let k: usize = name.strip_prefix('b')?.parse().ok()?;
        (1..=POOL_SIZE)
            .contains(&k)
            .then(|| Server(pool * POOL_SIZE + k - 1))
    }
}

/// The servers and their grouping.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub servers: usize,
}

impl Layout {
    pub fn new(servers: usize) -> Result<Layout> {
        ensure!(
            servers.is_multiple_of(POOL_SIZE) && (POOL_SIZE..=MAX_SERVERS).contains(&servers),
            "--servers must be a multiple of {POOL_SIZE} from {POOL_SIZE} to {MAX_SERVERS}, \
             not {servers}"
        );
        Ok(Layout { servers })
    }

    pub fn all(&self) -> impl Iterator<Item = Server> {
        (0..self.servers).map(Server)
    }

    pub fn pools(&self) -> usize {
        self.servers / POOL_SIZE
    }

    /// Pools used by a service (the first ones).
    pub fn ring_pools(&self) -> usize {
        self.pools().min(RING_POOLS)
    }

    /// Servers in some service's ring.
    pub fn ring_servers(&self) -> usize {
        self.ring_pools() * POOL_SIZE
    }

    pub fn pool_name(j: usize) -> String {
        format!("p{j:04}")
    }

    /// The pool a name stands for.
    pub fn pool_of(name: &str) -> Option<usize> {
        name.strip_prefix('p')?.parse().ok()
    }

    /// The service of pool `j` (lb's for `j < ring_pools`, keepalived's
    /// virtual server for any): an address of its own, 10.100.0.1, …,
    /// 10.100.0.250, 10.100.1.1, …, on the pool's port. (Many services on
    /// one address and nearby ports crowd the data path's VIP table: its
    /// slot hash barely depends on the port.)
    pub fn service(j: usize) -> SocketAddr {
        let addr = Ipv4Addr::new(10, 100, (j / 250) as u8, (j % 250 + 1) as u8);
        SocketAddr::new(addr.into(), Server(j * POOL_SIZE).port())
    }

    /// `n` distinct servers in rings, drawn with `seed` (the same seed kills
    /// the same servers, whichever checker is measured).
    pub fn kills(&self, n: usize, seed: u64) -> Result<Vec<Server>> {
        ensure!(
            (1..=self.ring_servers()).contains(&n),
            "--kill must be 1..={} (the servers in rings), not {n}",
            self.ring_servers()
        );
        let mut v: Vec<Server> = Rng::new(seed)
            .distinct(n, self.ring_servers())
            .into_iter()
            .map(Server)
            .collect();
        v.sort();
        Ok(v)
    }

    /// lb's configuration: every pool checked over TCP every `inter`, the
    /// first [`Layout::ring_pools`] used by one service each.
    pub fn lb_yaml(&self, agent: &AgentPaths, inter: Duration) -> String {
        let mut s = String::with_capacity(60 * self.servers);
        // `write!` to a String cannot fail.
        let _ = write!(
            s,
            "# Generated by lb-lab bench-health: {} TCP-checked servers, {} of them in rings.\n\
             agent:\n  bpffs: {}\n  state_dir: {}\n  socket: {}\n  metrics_listen: 127.0.0.1:{}\n\
             interfaces:\n  - name: {IFNAME}\n    xdp_mode: native\n\
             health:\n  inter: {}ms\npools:\n",
            self.servers,
            self.ring_servers(),
            agent.bpffs.display(),
            agent.state_dir.display(),
            agent.socket.display(),
            agent.metrics_port,
            inter.as_millis(),
        );
        for j in 0..self.pools() {
            let first = Server(j * POOL_SIZE);
            // A pool no service uses has no port but the check's own.
            let check = if j < self.ring_pools() {
                "{type: tcp}".to_owned()
            } else {
                format!("{{type: tcp, port: {}}}", first.port())
            };
            let _ = writeln!(
                s,
                "  {}:\n    check: {check}\n    backends:",
                Self::pool_name(j)
            );
            for k in 0..POOL_SIZE {
                let b = Server(first.0 + k);
                let _ = writeln!(s, "      - {{name: {}, address: {}}}", b.name(), b.addr());
            }
        }
        s.push_str("services:\n");
        for j in 0..self.ring_pools() {
            let svc = Self::service(j);
            let _ = writeln!(
                s,
                "  - {{name: s{j:04}, address: {}, port: {}, protocol: tcp, pool: {}}}",
                svc.ip(),
                svc.port(),
                Self::pool_name(j)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn paths() -> AgentPaths {
        AgentPaths::under(std::path::Path::new("/tmp/x"), "/sys/fs/bpf/x".into(), 9999)
    }

    #[test]
    fn every_server_is_one_endpoint_and_one_pool_member() {
        let l = Layout::new(10_000).unwrap();
        let ends: BTreeSet<SocketAddr> = l.all().map(Server::socket).collect();
        assert_eq!(ends.len(), 10_000);
        for s in l.all() {
            assert_eq!(Server::find(s.pool(), &s.name()), Some(s));
        }
        assert_eq!(Server::find(3, "b11"), None);
        for s in [Server(0), Server(99), Server(100), Server(9_999)] {
            assert_eq!(Server::at(s.socket()), Some(s));
        }
        assert_eq!(Server::at("10.77.1.101:10000".parse().unwrap()), None);
        assert_eq!(Layout::pool_of(&Layout::pool_name(417)), Some(417));
        assert!(Layout::new(10_005).is_err());
    }

    #[test]
    fn the_file_checks_every_server_and_puts_4000_in_rings() {
        let l = Layout::new(10_000).unwrap();
        let text = l.lb_yaml(&paths(), Duration::from_secs(1));
        let c = lb_config::parse(&text, "gen.yaml")
            .unwrap_or_else(|d| panic!("{d}"))
            .config;
        assert_eq!(c.pools.len(), 1000);
        assert_eq!(c.services.len(), RING_POOLS);
        let backends: usize = c.pools.iter().map(|p| p.backends.len()).sum();
        assert_eq!(backends, 10_000);
        for p in &c.pools {
            let check = p.check.as_ref().expect("every pool is checked");
            assert_eq!(check.timing.inter, Duration::from_secs(1));
            assert_eq!(check.timing.fall, 3);
        }
        // The unused pools name their port; the others check the service's.
        let j = RING_POOLS + 5;
        assert_eq!(
            c.pools[j].check.as_ref().unwrap().port,
            Some(Server(j * POOL_SIZE).port())
        );
        for (j, s) in c.services.iter().enumerate() {
            assert_eq!(s.port, Server(j * POOL_SIZE + 7).port());
        }
    }

    #[test]
    fn kills_are_distinct_servers_in_rings_and_seeded() {
        let l = Layout::new(10_000).unwrap();
        let k = l.kills(100, 7).unwrap();
        assert_eq!(k, l.kills(100, 7).unwrap());
        assert_eq!(k.iter().collect::<BTreeSet<_>>().len(), 100);
        assert!(k.iter().all(|s| s.pool() < RING_POOLS));
        assert!(l.kills(4001, 7).is_err());
    }
}
