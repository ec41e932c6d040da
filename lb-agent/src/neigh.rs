//! DR next hops from the kernel, over rtnetlink: which interface reaches a
//! backend, our MAC there, and the backend's MAC from the neighbour table
//! (triggering ARP/NDP when the entry is missing).

use std::{
    net::{IpAddr, SocketAddr, UdpSocket},
    time::Duration,
};

use futures_util::TryStreamExt as _;
use rtnetlink::{
    Handle, RouteMessageBuilder,
    packet_route::{
        AddressFamily,
        link::LinkAttribute,
        neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState},
        route::{RouteAddress, RouteAttribute, RouteType},
    },
};

use lb_dataplane::plan::NextHop;

/// Why a backend has no usable next hop.
#[derive(Debug, thiserror::Error)]
pub enum NeighError {
    #[error("no route to {0}")]
    NoRoute(IpAddr),
    #[error(
        "{addr} is reached through the gateway {gateway}: DR needs backends on a directly connected network"
    )]
    NotConnected { addr: IpAddr, gateway: IpAddr },
    #[error("{0} is a local address of this host")]
    Local(IpAddr),
    #[error("{addr} is reached through interface index {actual}, not {wanted}")]
    WrongInterface {
        addr: IpAddr,
        wanted: String,
        actual: u32,
    },
    #[error("interface {0} not found")]
    NoInterface(String),
    #[error("{addr}: no ARP/NDP answer on interface index {ifindex} (is the backend up?)")]
    Unresolved { addr: IpAddr, ifindex: u32 },
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
}

/// A route lookup result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub ifindex: u32,
    pub gateway: Option<IpAddr>,
    pub local: bool,
}

/// A handle on the kernel's routing and neighbour tables (of the network
/// namespace of the thread that created it).
#[derive(Clone)]
pub struct Resolver {
    handle: Handle,
}

impl Resolver {
    /// Opens a netlink connection, driven by a task on the current runtime.
    pub fn new() -> Result<Self, NeighError> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Resolver { handle })
    }

    /// `ip route get ADDR`.
    pub async fn route(&self, addr: IpAddr) -> Result<Route, NeighError> {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        let msg = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(addr, prefix)
            .map_err(|_| NeighError::NoRoute(addr))?
            .build();
        let mut routes = self.handle.route().get(msg).execute();
        let Some(r) = routes
            .try_next()
            .await
            .map_err(|_| NeighError::NoRoute(addr))?
        else {
            return Err(NeighError::NoRoute(addr));
        };
        let mut out = Route {
            ifindex: 0,
            gateway: None,
            local: r.header.kind == RouteType::Local,
        };
        for a in r.attributes {
            match a {
                RouteAttribute::Oif(i) => out.ifindex = i,
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => out.gateway = Some(g.into()),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => out.gateway = Some(g.into()),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Index of interface `name`.
    pub async fn ifindex(&self, name: &str) -> Result<u32, NeighError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(l)) => Ok(l.header.index),
            _ => Err(NeighError::NoInterface(name.to_owned())),
        }
    }

    /// MAC address of interface `ifindex`.
    pub async fn link_mac(&self, ifindex: u32) -> Result<[u8; 6], NeighError> {
        let mut links = self.handle.link().get().match_index(ifindex).execute();
        let l = links
            .try_next()
            .await?
            .ok_or_else(|| NeighError::NoInterface(format!("#{ifindex}")))?;
        l.attributes
            .into_iter()
            .find_map(|a| match a {
                LinkAttribute::Address(m) if m.len() == 6 => m.try_into().ok(),
                _ => None,
            })
            .ok_or_else(|| NeighError::NoInterface(format!("#{ifindex} (no MAC)")))
    }

    /// The neighbour table's MAC for `addr` on `ifindex`, if the entry is usable.
    pub async fn neighbour(
        &self,
        ifindex: u32,
        addr: IpAddr,
    ) -> Result<Option<[u8; 6]>, NeighError> {
        let family = if addr.is_ipv6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let mut entries = self
            .handle
            .neighbours()
            .get()
            .set_address_family(family)
            .execute();
        while let Some(n) = entries.try_next().await? {
            if n.header.ifindex != ifindex || !usable(n.header.state) {
                continue;
            }
            let (dst, lladdr) = entry(&n.attributes);
            if dst == Some(addr) {
                return Ok(lladdr);
            }
        }
        Ok(None)
    }

    /// Where to send `addr`'s frames. `iface` pins the interface (error if the
    /// route says otherwise); `static_mac` skips the neighbour table.
    pub async fn next_hop(
        &self,
        addr: IpAddr,
        iface: Option<&str>,
        static_mac: Option<[u8; 6]>,
        wait: Duration,
    ) -> Result<NextHop, NeighError> {
        let route = self.route(addr).await?;
        if route.local {
            return Err(NeighError::Local(addr));
        }
        if let Some(gateway) = route.gateway {
            return Err(NeighError::NotConnected { addr, gateway });
        }
        if let Some(name) = iface {
            let wanted = self.ifindex(name).await?;
            if wanted != route.ifindex {
                return Err(NeighError::WrongInterface {
                    addr,
                    wanted: name.to_owned(),
                    actual: route.ifindex,
                });
            }
        }
        let src_mac = self.link_mac(route.ifindex).await?;
        let dst_mac = match static_mac {
            Some(m) => m,
            None => self.resolve(route.ifindex, addr, wait).await?,
        };
        Ok(NextHop {
            ifindex: route.ifindex,
            src_mac,
            dst_mac,
        })
    }

    /// The neighbour MAC, prodding the kernel into ARP/NDP when it has none.
    async fn resolve(
        &self,
        ifindex: u32,
        addr: IpAddr,
        wait: Duration,
    ) -> Result<[u8; 6], NeighError> {
        if let Some(m) = self.neighbour(ifindex, addr).await? {
            return Ok(m);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // A datagram to the discard port makes the kernel resolve the
            // neighbour; its loss costs nothing.
            poke(addr);
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(m) = self.neighbour(ifindex, addr).await? {
                return Ok(m);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NeighError::Unresolved { addr, ifindex });
            }
        }
    }
}

/// The address and MAC a neighbour entry's attributes name.
pub fn entry(attributes: &[NeighbourAttribute]) -> (Option<IpAddr>, Option<[u8; 6]>) {
    let mut addr = None;
    let mut mac = None;
    for a in attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                addr = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                addr = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(m) if m.len() == 6 => {
                mac = <[u8; 6]>::try_from(m.as_slice()).ok()
            }
            _ => {}
        }
    }
    (addr, mac)
}

/// Whether a neighbour entry in state `s` has a MAC worth using.
pub fn usable(s: NeighbourState) -> bool {
    matches!(
        s,
        NeighbourState::Reachable
            | NeighbourState::Stale
            | NeighbourState::Delay
            | NeighbourState::Probe
            | NeighbourState::Permanent
            | NeighbourState::Noarp
    )
}

fn poke(addr: IpAddr) {
    let bind: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    if let Ok(s) = UdpSocket::bind(bind) {
        let _ = s.send_to(b"", SocketAddr::new(addr, 9));
    }
}
