//! `use_vmac`: the addresses live on a macvlan whose MAC is the virtual
//! router's (RFC 5798 §7.3: 00-00-5E-00-01-VRID for IPv4, 00-00-5E-00-02-VRID
//! for IPv6), named as keepalived names it (`vrrp.VRID`; `vrrp6.VRID` here for
//! IPv6, so both families can use one VRID). It is made once, at start, and
//! stays up: only the master holds addresses on it and sends from its MAC,
//! so switches learn it where the master is. Adverts go out from the base
//! interface (keepalived's `vmac_xmit_base`).

use std::io;
use std::sync::Arc;

use lb_dataplane::rx::Vmacs;

use rtnetlink::packet_route::link::MacVlanMode;
use rtnetlink::{LinkMacVlan, LinkMessageBuilder};

use super::netlink;

/// The virtual MAC of `vrid`.
pub use lb_common::rx::vmac as mac;

/// The data path's record that this node holds a virtual MAC: the XDP
/// program forwards VIP frames sent to it only while it is set, so a backup
/// that gets them flooded passes them to its kernel, which drops them
/// (`lb_common::rx`). Set on becoming master, cleared on leaving.
pub struct Held {
    pub map: Arc<Vmacs>,
    /// The base interface, where XDP sees the frames.
    pub parent: u32,
    pub vrid: u8,
    pub ipv6: bool,
}

impl Held {
    pub fn set(&self, held: bool) -> io::Result<()> {
        self.map
            .set(self.parent, self.vrid, self.ipv6, held)
            .map_err(|e| {
                io::Error::other(format!(
                    "recording virtual MAC {:02x?} as {} in the data path: {e}",
                    mac(self.vrid, self.ipv6),
                    if held { "held" } else { "released" }
                ))
            })
    }
}

pub fn name(vrid: u8, ipv6: bool) -> String {
    format!("{}.{vrid}", if ipv6 { "vrrp6" } else { "vrrp" })
}

/// Makes (or finds) the macvlan on `parent` and brings it up.
pub fn ensure(parent: u32, vrid: u8, ipv6: bool) -> io::Result<netlink::Link> {
    let ifname = name(vrid, ipv6);
    if netlink::link(&ifname).is_err() {
        let msg = LinkMessageBuilder::<LinkMacVlan>::new(&ifname)
            .mode(MacVlanMode::Private)
            .link(parent)
            .address(mac(vrid, ipv6).to_vec())
            .build();
        netlink::add_link(msg)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {ifname}: {e}")))?;
    }
    let link = netlink::link(&ifname)?;
    if link.mac != mac(vrid, ipv6) {
        return Err(io::Error::other(format!(
            "{ifname} exists with MAC {:02x?}, not the virtual router's: remove it (`ip link del {ifname}`)",
            link.mac
        )));
    }
    netlink::set_link_up(link.index, true)?;
    if !ipv6 {
        quiet_base(parent)?;
    }
    netlink::link(&ifname)
}

/// As keepalived does: the base interface answers ARP only for its own
/// addresses (`arp_ignore=1`, `arp_filter=1`), so the VIP on the macvlan is
/// announced with the virtual MAC alone.
fn quiet_base(parent: u32) -> io::Result<()> {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` has room for IF_NAMESIZE bytes, as if_indextoname wants.
    if unsafe { libc::if_indextoname(parent, name.as_mut_ptr()) }.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name.
    let base = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    for key in ["arp_ignore", "arp_filter"] {
        let path = format!("/proc/sys/net/ipv4/conf/{base}/{key}");
        std::fs::write(&path, "1")
            .map_err(|e| io::Error::new(e.kind(), format!("writing {path}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_5798_virtual_macs() {
        assert_eq!(mac(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(mac(7, true), [0, 0, 0x5e, 0, 2, 7]);
        assert_eq!(name(51, false), "vrrp.51");
    }
}
