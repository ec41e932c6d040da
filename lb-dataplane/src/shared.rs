//! Maps written through `mmap` with explicit ordering: the config (its VIP
//! half is a flip word) and the backend table (two copies per entry and a
//! flip word). The data path's side is lb-ebpf's `flow.rs`.

use std::{
    io,
    os::fd::BorrowedFd,
    ptr,
    sync::atomic::{AtomicU32, Ordering},
};

use lb_common::{
    abi::{Backend, BackendEntry, BackendId, Config},
    consts::MAX_BACKENDS,
};

use crate::{
    grace::{Grace, Ticket, later},
    mapped::Mapped,
};

/// The one [`Config`] of the data path, mapped.
pub struct ConfigMap {
    map: Mapped,
}

impl ConfigMap {
    pub fn map(fd: BorrowedFd<'_>) -> io::Result<Self> {
        Ok(ConfigMap {
            map: Mapped::new(fd, size_of::<Config>())?,
        })
    }

    fn field(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: `offset` is that of a `u32` field of the `Config` at the
        // start of the mapping (4-byte aligned); the data path reads these
        // words, it never writes them.
        unsafe { AtomicU32::from_ptr(self.map.base::<u8>().add(offset).cast()) }
    }

    /// A copy of the config, field by field.
    pub fn get(&self) -> Config {
        Config {
            flags: self
                .field(std::mem::offset_of!(Config, flags))
                .load(Ordering::Relaxed),
            now: self
                .field(std::mem::offset_of!(Config, now))
                .load(Ordering::Relaxed),
            flow_mask_v4: self
                .field(std::mem::offset_of!(Config, flow_mask_v4))
                .load(Ordering::Relaxed),
            flow_mask_v6: self
                .field(std::mem::offset_of!(Config, flow_mask_v6))
                .load(Ordering::Relaxed),
            vip_half: self.vip_half(),
            _pad: 0,
        }
    }

    pub fn set_flags(&self, flags: u32) {
        self.field(std::mem::offset_of!(Config, flags))
            .store(flags, Ordering::Relaxed);
    }

    pub fn set_now(&self, now: u32) {
        self.field(std::mem::offset_of!(Config, now))
            .store(now, Ordering::Relaxed);
    }

    pub fn set_flow_masks(&self, v4: u32, v6: u32) {
        self.field(std::mem::offset_of!(Config, flow_mask_v4))
            .store(v4, Ordering::Relaxed);
        self.field(std::mem::offset_of!(Config, flow_mask_v6))
            .store(v6, Ordering::Relaxed);
    }

    pub fn vip_half(&self) -> u32 {
        self.field(std::mem::offset_of!(Config, vip_half))
            .load(Ordering::Acquire)
            & 1
    }

    /// The VIP-table flip: every store to the new half before this one is
    /// visible to a packet that loads the half with load-acquire.
    pub fn flip_vip_half(&self, half: u32) {
        self.field(std::mem::offset_of!(Config, vip_half))
            .store(half & 1, Ordering::Release);
    }
}

/// The backend table, mapped, and when each entry's inactive copy may be
/// rewritten.
pub struct Backends {
    map: Mapped,
    /// Per backend id: the ticket after which nothing reads its inactive copy
    /// (the flip that retired it), or reads a stale flow of it (a purge).
    tickets: Vec<Option<Ticket>>,
}

impl Backends {
    /// Maps the table; `retired` is the ticket of every entry (adopted
    /// entries may have been flipped by a previous run moments ago).
    pub fn map(fd: BorrowedFd<'_>, retired: Option<Ticket>) -> io::Result<Self> {
        Ok(Backends {
            map: Mapped::new(fd, MAX_BACKENDS as usize * size_of::<BackendEntry>())?,
            tickets: vec![retired; MAX_BACKENDS as usize],
        })
    }

    fn entry(&self, id: BackendId) -> Option<*mut BackendEntry> {
        (id < MAX_BACKENDS).then(|| {
            // SAFETY: `id < MAX_BACKENDS` entries are inside the mapping.
            unsafe { self.map.base::<BackendEntry>().add(id as usize) }
        })
    }

    /// The flip word of entry `e` (from [`Backends::entry`]).
    fn active(&self, e: *mut BackendEntry) -> &AtomicU32 {
        // SAFETY: `active` is the aligned first word of an entry of our
        // mapping, which lives as long as `self`.
        unsafe { AtomicU32::from_ptr(&raw mut (*e).active) }
    }

    /// The copy packets read now (default for an id out of range).
    pub fn get(&self, id: BackendId) -> Backend {
        let Some(e) = self.entry(id) else {
            return Backend::default();
        };
        let k = self.active(e).load(Ordering::Acquire) & 1;
        // SAFETY: copy `k` of a mapped entry; only this process writes it,
        // and not concurrently with `&self`.
        unsafe { ptr::read_volatile(&raw const (*e).copies[k as usize]) }
    }

    /// Publishes `b` as entry `id`: waits (normally not at all) until nothing
    /// reads the inactive copy, writes it, flips `active` with store-release.
    pub fn set(&mut self, id: BackendId, b: Backend, grace: &Grace) -> io::Result<()> {
        let e = self.entry(id).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("backend id {id}"))
        })?;
        if self.get(id) == b {
            return Ok(());
        }
        if let Some(t) = self.tickets[id as usize] {
            grace.wait(t)?;
        }
        let k = (self.active(e).load(Ordering::Relaxed) & 1) ^ 1;
        // SAFETY: copy `k` is the inactive one, which no program run reads
        // any more (the wait above); we are its only writer.
        unsafe { ptr::write_volatile(&raw mut (*e).copies[k as usize], b) };
        self.active(e).store(k, Ordering::Release);
        self.tickets[id as usize] = Some(grace.ticket());
        Ok(())
    }

    /// Nothing may be published as entry `id` before `t` (its flows were
    /// just purged: a packet that found one may still run).
    pub fn hold_until(&mut self, id: BackendId, t: Ticket) {
        if let Some(slot) = self.tickets.get_mut(id as usize) {
            *slot = later(*slot, Some(t));
        }
    }

    /// The ticket entry `id`'s last change waits for.
    pub fn ticket(&self, id: BackendId) -> Option<Ticket> {
        self.tickets.get(id as usize).copied().flatten()
    }
}
