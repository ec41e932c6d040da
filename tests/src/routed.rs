//! Three namespaces in a line, routed rather than bridged, for transparent
//! proxying: the server's only way back to the client is through the load
//! balancer, as a real deployment of `usesrc clientip` requires.
//!
//! ```text
//!   client (eth0) 10.92.1.2 ── 10.92.1.1 (eth0) lb (eth1) 10.92.2.1 ── 10.92.2.2 (eth0) server
//!   default via 10.92.1.1                                              default via 10.92.2.1
//! ```
//!
//! [`Routed::divert_to_local_sockets`] adds, in the lb namespace, the
//! recipe of docs/proxy.md "Transparent proxying" (an nftables rule marking
//! packets of transparent sockets, a rule and a table delivering marked
//! packets locally); removing the namespaces on drop removes it too.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context as _, Result};

use crate::netns::{NetNs, unique_prefix};

/// The client's address.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 92, 1, 2);
/// The lb's address on the client's side.
pub const LB_FRONT: Ipv4Addr = Ipv4Addr::new(10, 92, 1, 1);
/// The lb's address on the server's side.
pub const LB_BACK: Ipv4Addr = Ipv4Addr::new(10, 92, 2, 1);
/// A second address of the lb on the server's side (a `source ADDR`).
pub const LB_BACK_ALIAS: Ipv4Addr = Ipv4Addr::new(10, 92, 2, 9);
/// The server's address.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 92, 2, 2);

/// The three namespaces; removed (with what runs in them) on drop. Field
/// order: the lb, which holds the veths' other ends, goes last.
pub struct Routed {
    pub client: NetNs,
    pub server: NetNs,
    pub lb: NetNs,
}

impl Routed {
    /// Creates the namespaces, links and routes.
    pub fn new() -> Result<Routed> {
        let prefix = unique_prefix();
        let ns = |role: &str| NetNs::new(&format!("{prefix}-{role}"));
        let r = Routed {
            client: ns("client")?,
            server: ns("server")?,
            lb: ns("lb")?,
        };
        let (client, server) = (r.client.name(), r.server.name());
        r.lb.ip_batch(&[
            format!("link add eth0 type veth peer name eth0 netns {client}"),
            format!("link add eth1 type veth peer name eth0 netns {server}"),
            format!("addr add {LB_FRONT}/24 dev eth0"),
            format!("addr add {LB_BACK}/24 dev eth1"),
            format!("addr add {LB_BACK_ALIAS}/24 dev eth1"),
            "link set eth0 up".to_owned(),
            "link set eth1 up".to_owned(),
        ])?;
        for (host, addr, gateway) in [(&r.client, CLIENT, LB_FRONT), (&r.server, SERVER, LB_BACK)] {
            host.ip_batch(&[
                format!("addr add {addr}/24 dev eth0"),
                "link set eth0 up".to_owned(),
                format!("route add default via {gateway}"),
            ])?;
        }
        Ok(r)
    }

    /// In the lb namespace: packets for a socket bound with
    /// `IP_TRANSPARENT` (the server's replies to the client's address) are
    /// marked and delivered locally instead of routed back to the client.
    pub fn divert_to_local_sockets(&self) -> Result<()> {
        self.nft(NFT_RULES)
            .context("nftables: the transparent sockets' rule")?;
        self.lb.ip_batch(&[
            "rule add fwmark 1 lookup 100",
            "route add local 0.0.0.0/0 dev lo table 100",
        ])
    }

    /// Loads `rules` with `nft -f` in the lb namespace.
    fn nft(&self, rules: &str) -> Result<()> {
        let path = std::env::temp_dir().join(format!("{}.nft", self.lb.name()));
        std::fs::write(&path, rules)?;
        let loaded = self
            .lb
            .exec(&["nft", "-f", path.to_str().context("UTF-8 path")?]);
        let _ = std::fs::remove_file(&path);
        loaded.map(drop)
    }

    /// The client's address as an `IpAddr`.
    pub fn client_ip(&self) -> IpAddr {
        CLIENT.into()
    }
}

/// The nftables half of the recipe (docs/proxy.md shows the same lines).
pub const NFT_RULES: &str = "table ip lb_tproxy {
  chain divert {
    type filter hook prerouting priority mangle; policy accept;
    meta l4proto tcp socket transparent 1 meta mark set 1 accept
  }
}
";
