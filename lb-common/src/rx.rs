//! Which frames this node may forward: those sent to the MAC of the
//! interface they arrived on, or to a VRRP virtual MAC (RFC 5798 §7.3) this
//! node holds as master.
//!
//! A switch floods a frame whose destination MAC it has not learned to every
//! port, so VIP traffic meant for the VRRP master also reaches its backups
//! (and a frame to the virtual MAC does whenever the master's entry ages
//! out). The kernel drops such frames as addressed to another host; XDP runs
//! before that check, so without this one a backup would forward them too
//! and the backends would get those packets twice.

/// Value of [`crate::consts::MAP_RX_MACS`], keyed by ingress ifindex (`u32`):
/// that interface's own MAC. Written by the loader for every interface it
/// attaches to; an interface without an entry is not checked.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMac {
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// Value of [`crate::consts::MAP_VMACS`], keyed by the ifindex the frames
/// arrive on (the macvlan's parent): the virtual routers this node is master
/// of there, one bit per VRID; words 0..4 for `00-00-5E-00-01-VRID` (IPv4),
/// 4..8 for `00-00-5E-00-02-VRID` (IPv6). Written by VRRP on each transition.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmacSet {
    pub words: [u64; 8],
}

impl VmacSet {
    /// The word and bit of virtual router `vrid` of a family.
    #[inline(always)]
    pub const fn bit(vrid: u8, ipv6: bool) -> (usize, u64) {
        let word = (vrid >> 6) as usize + if ipv6 { 4 } else { 0 };
        (word, 1u64 << (vrid & 63))
    }

    /// Whether this node holds the virtual MAC of `vrid`.
    #[inline(always)]
    pub fn holds(&self, vrid: u8, ipv6: bool) -> bool {
        let (w, b) = Self::bit(vrid, ipv6);
        match self.words.get(w) {
            Some(word) => word & b != 0,
            None => false,
        }
    }

    /// Marks `vrid`'s virtual MAC held (`true`) or not.
    pub fn set(&mut self, vrid: u8, ipv6: bool, held: bool) {
        let (w, b) = Self::bit(vrid, ipv6);
        if let Some(word) = self.words.get_mut(w) {
            if held {
                *word |= b;
            } else {
                *word &= !b;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }
}

/// The VRID and family (`true`: IPv6) of a VRRP virtual MAC, if `mac` is one.
#[inline(always)]
pub const fn vmac_of(mac: &[u8; 6]) -> Option<(u8, bool)> {
    if mac[0] != 0x00 || mac[1] != 0x00 || mac[2] != 0x5e || mac[3] != 0x00 {
        return None;
    }
    match mac[4] {
        0x01 => Some((mac[5], false)),
        0x02 => Some((mac[5], true)),
        _ => None,
    }
}

/// The virtual MAC of `vrid` (RFC 5798 §7.3).
pub const fn vmac(vrid: u8, ipv6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

const _: () = assert!(size_of::<RxMac>() == 8);
const _: () = assert!(size_of::<VmacSet>() == 64);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, integers and integer arrays with explicit
    // padding: any byte pattern is valid, no uninitialised bytes.
    unsafe impl aya::Pod for super::RxMac {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::VmacSet {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_macs_round_trip_and_others_are_not_vmacs() {
        for vrid in [1u8, 51, 63, 64, 200, 255] {
            for v6 in [false, true] {
                assert_eq!(vmac_of(&vmac(vrid, v6)), Some((vrid, v6)));
            }
        }
        assert_eq!(vmac_of(&[0x02, 0x77, 0, 0, 0, 0x65]), None);
        assert_eq!(vmac_of(&[0x00, 0x00, 0x5e, 0x00, 0x03, 1]), None);
        assert_eq!(vmac_of(&[0x00, 0x00, 0x5e, 0x01, 0x01, 1]), None);
    }

    #[test]
    fn each_vrid_and_family_has_its_own_bit() {
        let mut s = VmacSet::default();
        s.set(51, false, true);
        assert!(s.holds(51, false));
        assert!(!s.holds(51, true));
        assert!(!s.holds(52, false));
        s.set(255, true, true);
        assert!(s.holds(255, true));
        s.set(51, false, false);
        assert!(!s.holds(51, false));
        s.set(255, true, false);
        assert!(s.is_empty());
    }
}
