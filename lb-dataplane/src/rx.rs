//! The MACs the data path forwards frames for (`lb_common::rx`): each
//! attached interface's own, registered by the loader, and the VRRP virtual
//! MACs this node holds as master, set by VRRP through [`Vmacs`] on each
//! transition. Frames to a VIP sent to any other MAC are passed to the
//! kernel, so a VRRP backup forwards nothing flooded to it.

use std::{io, path::Path, sync::Mutex};

use aya::maps::{HashMap, Map, MapData, MapError};
use lb_common::{
    consts::MAP_VMACS,
    rx::{RxMac, VmacSet},
};

/// An interface's index and MAC in the caller's network namespace.
pub fn iface_mac(name: &str) -> io::Result<(u32, [u8; 6])> {
    let c = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `c` is NUL-terminated.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a plain socket; closed by `OwnedFd`.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: zeroed `ifreq` is valid; the name fits (checked below).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::other(format!(
            "interface name {name} is too long"
        )));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR fills `ifr_hwaddr` of the `ifreq` we pass.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::SIOCGIFHWADDR,
            &mut req,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the union member SIOCGIFHWADDR wrote.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(data) {
        *d = s as u8;
    }
    Ok((index, mac))
}

/// The loader's half: every attached interface's own MAC.
pub(crate) struct RxMacs(HashMap<MapData, u32, RxMac>);

impl RxMacs {
    pub(crate) fn new(map: Map) -> Result<Self, MapError> {
        Ok(RxMacs(map.try_into()?))
    }

    /// Forwards frames to `mac` arriving on `ifindex`.
    pub(crate) fn register(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), MapError> {
        self.0.insert(ifindex, RxMac { mac, _pad: [0; 2] }, 0)
    }

    pub(crate) fn forget(&mut self, ifindex: u32) -> Result<(), MapError> {
        match self.0.remove(&ifindex) {
            Err(MapError::KeyNotFound) => Ok(()),
            r => r,
        }
    }

    pub(crate) fn get(&self, ifindex: u32) -> Option<[u8; 6]> {
        self.0.get(&ifindex, 0).ok().map(|r| r.mac)
    }
}

/// VRRP's half: the virtual MACs held, opened from the pinned map. One
/// writer per agent (VRRP); the lock makes each read-modify-write whole
/// when several instances move at once.
pub struct Vmacs(Mutex<HashMap<MapData, u32, VmacSet>>);

impl Vmacs {
    /// The pinned map under `pin_dir`, or `None` when no data path is
    /// loaded there (nothing to keep from forwarding).
    pub fn open(pin_dir: &Path) -> Result<Option<Vmacs>, MapError> {
        let path = pin_dir.join("maps").join(MAP_VMACS);
        if !path.exists() {
            return Ok(None);
        }
        Vmacs::from_map(Map::HashMap(MapData::from_pin(&path)?)).map(Some)
    }

    pub(crate) fn from_map(map: Map) -> Result<Vmacs, MapError> {
        Ok(Vmacs(Mutex::new(HashMap::try_from(map)?)))
    }

    /// Marks the virtual MAC of (`vrid`, family) on `ifindex` held or not.
    pub fn set(&self, ifindex: u32, vrid: u8, ipv6: bool, held: bool) -> Result<(), MapError> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut set = match map.get(&ifindex, 0) {
            Ok(s) => s,
            Err(MapError::KeyNotFound) => VmacSet::default(),
            Err(e) => return Err(e),
        };
        set.set(vrid, ipv6, held);
        if set.is_empty() {
            return match map.remove(&ifindex) {
                Err(MapError::KeyNotFound) => Ok(()),
                r => r,
            };
        }
        map.insert(ifindex, set, 0)
    }

    /// Whether the virtual MAC of (`vrid`, family) on `ifindex` is held.
    pub fn holds(&self, ifindex: u32, vrid: u8, ipv6: bool) -> Result<bool, MapError> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(&ifindex, 0) {
            Ok(s) => Ok(s.holds(vrid, ipv6)),
            Err(MapError::KeyNotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_index_1_and_a_zero_mac() {
        // Tests run in a namespace whose loopback is up or down; either way
        // it exists, with index 1 and an all-zero address.
        assert_eq!(iface_mac("lo").unwrap(), (1, [0; 6]));
        assert!(iface_mac("no-such-if0").is_err());
    }
}
