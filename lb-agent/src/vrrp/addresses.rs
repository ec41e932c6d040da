//! Owning an instance's virtual addresses: added through netlink on
//! becoming master, announced with gratuitous ARP (IPv4) or unsolicited
//! neighbour advertisements (IPv6, RFC 4861 §7.2.6) so that clients' caches
//! follow, and removed on leaving master. The watchdog hears of each
//! address before it is added and after it is removed, so none outlives
//! the agent.

use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::AsRawFd as _;
use std::sync::Arc;

use super::io::{bind_to_device, open_raw, send_from, setsockopt};
use super::netlink::{self, Owned};
use super::supervisor::Watchdog;
use super::vmac::Held;

/// ff02::1, where unsolicited neighbour advertisements go.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// One address and the interface that carries it.
#[derive(Clone, Debug)]
pub struct Vip {
    pub owned: Owned,
    pub ifname: String,
    /// The MAC announced for it (the interface's, or the virtual MAC).
    pub mac: [u8; 6],
}

/// The addresses of one instance.
pub struct Addresses {
    pub vips: Vec<Vip>,
    watchdog: Option<Arc<Watchdog>>,
    /// With `use_vmac` and a data path: its record of the virtual MAC.
    held: Option<Held>,
}

impl Addresses {
    /// Also forgets a virtual MAC a previous run left recorded as held.
    pub fn new(vips: Vec<Vip>, watchdog: Option<Arc<Watchdog>>, held: Option<Held>) -> Addresses {
        if let Some(Err(e)) = held.as_ref().map(|h| h.set(false)) {
            tracing::warn!("{e}");
        }
        Addresses {
            vips,
            watchdog,
            held,
        }
    }

    /// Adds every address; the first failure is returned after trying all.
    pub fn add(&self) -> io::Result<()> {
        let mut first = self.held.as_ref().map_or(Ok(()), |h| h.set(true));
        for v in &self.vips {
            if let Some(w) = &self.watchdog {
                w.own(&v.owned);
            }
            if let Err(e) = netlink::add_address(&v.owned) {
                let e = io::Error::new(
                    e.kind(),
                    format!("adding {} to {}: {e}", v.owned.address, v.ifname),
                );
                first = first.and(Err(e));
            }
        }
        first
    }

    /// Removes every address.
    pub fn remove(&self) -> io::Result<()> {
        let mut first = self.held.as_ref().map_or(Ok(()), |h| h.set(false));
        for v in &self.vips {
            match netlink::del_address(&v.owned) {
                Ok(()) => {
                    if let Some(w) = &self.watchdog {
                        w.forget(&v.owned);
                    }
                }
                Err(e) => {
                    let e = io::Error::new(
                        e.kind(),
                        format!("removing {} from {}: {e}", v.owned.address, v.ifname),
                    );
                    first = first.and(Err(e));
                }
            }
        }
        first
    }

    /// One round of announcements: `repeat` per address.
    pub fn announce(&self, repeat: u32) -> io::Result<()> {
        for v in &self.vips {
            for _ in 0..repeat {
                match v.owned.address {
                    IpAddr::V4(a) => garp(v, a.octets())?,
                    IpAddr::V6(a) => unsolicited_na(v, a)?,
                }
            }
        }
        Ok(())
    }
}

/// A gratuitous ARP request: sender and target the address, from its MAC
/// to broadcast (what keepalived and `arping -U` send).
fn garp(v: &Vip, ip: [u8; 4]) -> io::Result<()> {
    let mut frame = vec![0xff; 6];
    frame.extend(v.mac);
    frame.extend([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    frame.extend(v.mac);
    frame.extend(ip);
    frame.extend([0; 6]);
    frame.extend(ip);
    // SAFETY: socket(2) takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: all-zero sockaddr_ll is valid; fields set below.
    let mut ll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = 0x0806u16.to_be();
    ll.sll_ifindex = v.owned.ifindex as i32;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: `frame` and `ll` are valid for the call.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&ll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// An unsolicited neighbour advertisement (Override set, Solicited not) to
/// all nodes, with the target link-layer address option. The kernel fills
/// in the ICMPv6 checksum; the source is the interface's link-local address.
fn unsolicited_na(v: &Vip, target: Ipv6Addr) -> io::Result<()> {
    let mut msg = vec![136, 0, 0, 0, 0x20, 0, 0, 0];
    msg.extend(target.octets());
    msg.extend([2, 1]);
    msg.extend(v.mac);
    let fd = open_raw(true, libc::IPPROTO_ICMPV6)?;
    bind_to_device(fd.as_raw_fd(), &v.ifname)?;
    setsockopt(
        fd.as_raw_fd(),
        libc::IPPROTO_IPV6,
        libc::IPV6_MULTICAST_HOPS,
        &255i32,
    )?;
    let src = link_local(&v.ifname).unwrap_or(IpAddr::V6(target));
    send_from(
        fd.as_raw_fd(),
        &msg,
        src,
        IpAddr::V6(ALL_NODES),
        v.owned.ifindex,
    )
}

/// The interface's IPv6 link-local address.
pub fn link_local(ifname: &str) -> Option<IpAddr> {
    netlink::addresses(ifname)
        .ok()?
        .into_iter()
        .find(|a| matches!(a, IpAddr::V6(v6) if v6.is_unicast_link_local()))
}

/// Removes every address `cfg`'s instances may own, whoever added them
/// (`lb-ctl vrrp release`, systemd's `ExecStopPost`); what each did.
pub fn release_configured(cfg: &lb_config::vrrp::VrrpConfig) -> Vec<(String, io::Result<()>)> {
    let mut out = Vec::new();
    for i in &cfg.instances {
        for a in &i.addresses {
            let dev = match (&a.dev, i.use_vmac) {
                (Some(d), _) => d.clone(),
                (None, true) => super::vmac::name(i.vrid, i.is_ipv6()),
                (None, false) => i.interface.clone(),
            };
            let what = format!("{}/{} on {dev}", a.address, a.prefix);
            let r = netlink::link(&dev).and_then(|l| {
                netlink::del_address(&Owned {
                    ifindex: l.index,
                    address: a.address,
                    prefix: a.prefix,
                    label: None,
                })
            });
            out.push((what, r));
        }
    }
    out
}
