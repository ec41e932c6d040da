//! lb's verdict as the data path holds it: the backend table pinned by the
//! agent (`LB_BACKENDS`), mapped read-only, read the way packets read it
//! (the entry's `active` word, then that copy). The agent writes a backend
//! `down` only after the rings stopped naming it (lb-dataplane's plan keeps
//! every ring slot on an `up` backend), so a `down` entry here means the
//! server is out of the ring.

use std::{
    collections::BTreeMap,
    os::fd::{AsFd as _, AsRawFd as _},
    path::Path,
    ptr,
    sync::atomic::{Ordering, fence},
};

use anyhow::{Context as _, Result, bail};
use aya::maps::MapData;
use lb_common::{
    abi::{Addr, Backend, BackendEntry, BackendId},
    consts::{MAP_BACKENDS, MAX_BACKENDS, state},
};

use super::layout::Server;

/// `LB_BACKENDS`, mapped read-only.
pub struct BackendTable {
    base: *const BackendEntry,
    len: usize,
}

impl BackendTable {
    /// Maps `<bpffs>/maps/LB_BACKENDS`, which the agent pinned.
    pub fn open(bpffs: &Path) -> Result<BackendTable> {
        let path = bpffs.join("maps").join(MAP_BACKENDS);
        let map = MapData::from_pin(&path)
            .with_context(|| format!("opening the pinned map {}", path.display()))?;
        let bytes = MAX_BACKENDS as usize * size_of::<BackendEntry>();
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let len = bytes.next_multiple_of(page.max(1));
        // SAFETY: a read-only shared mapping of an mmapable array map of at
        // least `len` bytes (its values start page-aligned at offset 0);
        // checked for MAP_FAILED. The fd may close after mmap.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                map.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            bail!(
                "mapping {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(BackendTable {
            base: p.cast(),
            len,
        })
    }

    /// The copy of entry `id` packets read now.
    pub fn get(&self, id: BackendId) -> Backend {
        if id >= MAX_BACKENDS {
            return Backend::default();
        }
        // SAFETY: `id < MAX_BACKENDS` entries lie inside the mapping, which
        // lives as long as `self`; the agent only ever writes the copy that
        // `active` does not name, and flips `active` with store-release, so a
        // volatile read of `active` followed by an acquire fence orders the
        // read of the copy after it, as the data path's load-acquire does.
        unsafe {
            let e = self.base.add(id as usize);
            let k = ptr::read_volatile(&raw const (*e).active) & 1;
            fence(Ordering::Acquire);
            ptr::read_volatile(&raw const (*e).copies[k as usize])
        }
    }

    /// The backend id of each of `servers` (address and port), among the
    /// entries in use.
    pub fn ids(&self, servers: &[Server]) -> Result<BTreeMap<Server, BackendId>> {
        let mut by_end = BTreeMap::new();
        for id in 0..MAX_BACKENDS {
            let b = self.get(id);
            if b.state != state::UNUSED {
                by_end.insert((b.addr, b.port), id);
            }
        }
        servers
            .iter()
            .map(|s| {
                let key = (Addr::from_ip(s.addr().into()), s.port());
                let id = by_end.get(&key).with_context(|| {
                    format!("server {} has no entry in the data path", s.socket())
                })?;
                Ok((*s, *id))
            })
            .collect()
    }

    /// Whether entry `id` is `up` (in the ring).
    pub fn is_up(&self, id: BackendId) -> bool {
        self.get(id).state == state::UP
    }
}

impl Drop for BackendTable {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `open` mapped.
        unsafe { libc::munmap(self.base.cast_mut().cast(), self.len) };
    }
}
