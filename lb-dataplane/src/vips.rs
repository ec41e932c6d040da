//! The VIP table from userspace: the set of VIPs in memory, laid out into the
//! half of the table packets do not read, then flipped in with one
//! store-release of `Config::vip_half` (layout in `lb_common::abi::VipSlot`).
//!
//! The half being written is the one the previous flip retired; it is
//! rewritten only once the grace period of that flip is over
//! ([`crate::grace`]), and only in the slots that differ.

use std::{collections::BTreeMap, io, os::fd::BorrowedFd, ptr};

use super::mapped::Mapped;

use crate::{
    grace::{Grace, Ticket},
    shared::ConfigMap,
};
use lb_common::abi::{
    VIP_TABLE_PROBES, VIP_TABLE_SLOTS, Vip, VipKey, VipSlot, vip_probe, vip_slot,
};

/// Lays `entries` out as one half of the table: each at the first free slot
/// from its hash (linear probing), in key order so the layout is
/// deterministic. `None` when a VIP would need more than `VIP_TABLE_PROBES`
/// probes (not with `MAX_VIPS` VIPs at this table size, but never silently).
pub fn layout(entries: &BTreeMap<VipKey, Vip>) -> Option<Vec<VipSlot>> {
    let mut half = vec![VipSlot::default(); VIP_TABLE_SLOTS as usize];
    for (k, v) in entries {
        let start = vip_slot(k);
        let i = (0..VIP_TABLE_PROBES)
            .map(|i| vip_probe(start, i) as usize)
            .find(|&i| half[i].key.proto == 0)?;
        half[i] = VipSlot {
            key: *k,
            _pad: 0,
            vip: *v,
        };
    }
    Some(half)
}

/// The VIP table mapped into this process, and the VIPs it should hold.
pub struct VipTable {
    map: Mapped,
    entries: BTreeMap<VipKey, Vip>,
    /// The half packets read.
    active: u32,
    dirty: bool,
    /// The flip that retired the inactive half.
    retired: Option<Ticket>,
}

impl VipTable {
    /// Maps the table and reads the VIPs in its `active` half; `retired` is
    /// the ticket before which the other half may still be read.
    pub fn map(fd: BorrowedFd<'_>, active: u32, retired: Option<Ticket>) -> io::Result<Self> {
        let map = Mapped::new(fd, 2 * VIP_TABLE_SLOTS as usize * size_of::<VipSlot>())?;
        let mut t = VipTable {
            map,
            entries: BTreeMap::new(),
            active: active & 1,
            dirty: false,
            retired,
        };
        for i in 0..VIP_TABLE_SLOTS {
            let s = t.slot(t.active, i);
            if s.key.proto != 0 {
                t.entries.insert(s.key, s.vip);
            }
        }
        Ok(t)
    }

    fn slot_ptr(&self, half: u32, i: u32) -> *mut VipSlot {
        // SAFETY: `half < 2` and `i < VIP_TABLE_SLOTS`: inside the mapping.
        unsafe {
            self.map
                .base::<VipSlot>()
                .add(((half & 1) * VIP_TABLE_SLOTS + i) as usize)
        }
    }

    fn slot(&self, half: u32, i: u32) -> VipSlot {
        // SAFETY: inside the mapping (`slot_ptr`); only this process writes.
        unsafe { ptr::read_volatile(self.slot_ptr(half, i)) }
    }

    pub fn entries(&self) -> &BTreeMap<VipKey, Vip> {
        &self.entries
    }

    pub fn set(&mut self, key: VipKey, vip: Vip) {
        if self.entries.insert(key, vip) != Some(vip) {
            self.dirty = true;
        }
    }

    pub fn remove(&mut self, key: &VipKey) {
        if self.entries.remove(key).is_some() {
            self.dirty = true;
        }
    }

    /// Publishes the VIPs: lays them out, waits until nothing reads the
    /// inactive half, rewrites the slots of it that differ, and flips.
    /// Returns the number of slots written.
    pub fn flush(&mut self, config: &ConfigMap, grace: &Grace) -> io::Result<usize> {
        if !self.dirty {
            return Ok(0);
        }
        let half =
            layout(&self.entries).ok_or_else(|| io::Error::other("VIP table too crowded"))?;
        if let Some(t) = self.retired {
            grace.wait(t)?;
        }
        let next = self.active ^ 1;
        let mut written = 0;
        for (i, s) in half.iter().enumerate() {
            let i = i as u32;
            if self.slot(next, i) != *s {
                // SAFETY: the inactive half, which no program run reads
                // any more (the wait above).
                unsafe { ptr::write_volatile(self.slot_ptr(next, i), *s) };
                written += 1;
            }
        }
        config.flip_vip_half(next);
        self.retired = Some(grace.ticket());
        self.active = next;
        self.dirty = false;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::abi::vip_lookup;
    use std::net::IpAddr;

    #[test]
    fn every_vip_is_found_by_the_data_paths_probe() {
        let mut entries = BTreeMap::new();
        for i in 0..lb_common::consts::MAX_VIPS {
            let ip: IpAddr = format!("10.{}.{}.1", i / 250, i % 250).parse().unwrap();
            entries.insert(VipKey::new(ip, 80, 6), Vip { id: i, flags: 0 });
        }
        let half = layout(&entries).expect("MAX_VIPS VIPs fit");
        // The data path's own lookup (lb_common::abi::vip_lookup) finds them all.
        let lookup = |k: &VipKey| vip_lookup(k, |i| half.get(i as usize));
        for (k, v) in &entries {
            assert_eq!(lookup(k), Some(*v));
        }
        let absent = VipKey::new("192.0.2.1".parse().unwrap(), 80, 6);
        assert_eq!(lookup(&absent), None);
    }
}
