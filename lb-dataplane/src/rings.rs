//! Maglev rings: two per VIP, installed once in the outer map `LB_RINGS`
//! (slots `2·id` and `2·id + 1`), and a ring word per VIP (`LB_RING_WORDS`)
//! naming the one packets read and its size.
//!
//! A ring change writes the ring packets do not read through `mmap` (after
//! waiting, normally not at all, for the grace period of the flip that
//! retired it) and flips the word with store-release: microseconds, no
//! syscall. Only creating rings — a new VIP, a ring-size change — updates the
//! outer map, and those updates are staged and sent in one
//! `BPF_MAP_UPDATE_BATCH`, so the grace period every array-of-maps update
//! waits for is paid once per batch, not once per ring.
//!
//! aya creates standalone arrays but cannot `mmap` them, so rings are
//! created with a raw `BPF_MAP_CREATE`. The mapping keeps a ring alive (the
//! kernel holds the map for it), so no fd is kept once a ring is installed.
//! With a pin directory, each installed ring is pinned at `rings/<slot>`: a
//! restarted agent finds them there (reading them back through the outer map
//! would need `CAP_SYS_ADMIN` for `BPF_MAP_GET_FD_BY_ID`).

use std::{
    collections::BTreeMap,
    fs, io,
    os::fd::{AsFd as _, BorrowedFd, OwnedFd},
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
};

use lb_common::{
    abi::{
        BackendId, RING_GRACE_INDEX, RING_OUTER_ENTRIES, RingPair, ring_elems, ring_index,
        ring_word, ring_word_size, ring_word_which,
    },
    consts::{MAX_VIPS, NO_BACKEND, RING_MAP_FLAGS},
};

use crate::{
    grace::{Grace, Ticket},
    mapped::Mapped,
    sys,
};

/// Staged outer-map updates that trigger a flush: each holds an fd, so at
/// most half the open-file limit (which `Dataplane::open` raises to its
/// hard limit), and no more than the outer map has slots — so a cold start of
/// `MAX_VIPS` VIPs is one batch wherever the limit allows.
fn max_pending() -> usize {
    // SAFETY: plain struct filled by the kernel.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to our struct.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur as usize
    } else {
        1024
    };
    (soft / 2).clamp(64, RING_OUTER_ENTRIES as usize)
}

/// One ring map, mapped.
pub struct RingBuf {
    map: Mapped,
    elems: u32,
    /// The kernel's id of the map (to match a pin with the outer map's slot).
    id: u32,
    /// Kept until the ring is installed and pinned.
    fd: Option<OwnedFd>,
}

impl RingBuf {
    /// A new ring map for rings of `size` slots, filled with `slots`.
    pub fn create(size: u32, slots: &[BackendId]) -> io::Result<RingBuf> {
        let elems = ring_elems(size.max(1));
        let fd = sys::map_create(
            sys::BPF_MAP_TYPE_ARRAY,
            4,
            size_of::<RingPair>() as u32,
            elems,
            RING_MAP_FLAGS,
            "lb_ring",
        )?;
        let r = RingBuf::adopt(fd)?;
        r.write(slots);
        Ok(r)
    }

    /// A ring map we hold an fd of.
    fn adopt(fd: OwnedFd) -> io::Result<RingBuf> {
        let info = sys::map_info(fd.as_fd())?;
        if info.value_size as usize != size_of::<RingPair>() {
            return Err(io::Error::other(format!(
                "ring map with values of {} bytes",
                info.value_size
            )));
        }
        let map = Mapped::new(
            fd.as_fd(),
            info.max_entries as usize * size_of::<RingPair>(),
        )?;
        Ok(RingBuf {
            map,
            elems: info.max_entries,
            id: info.id,
            fd: Some(fd),
        })
    }

    /// Whether a ring of `size` slots fits exactly.
    fn fits(&self, size: u32) -> bool {
        self.elems == ring_elems(size)
    }

    fn slot(&self, i: usize) -> *mut BackendId {
        debug_assert!(i < 2 * self.elems as usize);
        // SAFETY: slot `i` of `2·elems`, inside the mapping.
        unsafe { self.map.base::<BackendId>().add(i) }
    }

    /// Writes `slots`, and [`NO_BACKEND`] in any slot past them.
    fn write(&self, slots: &[BackendId]) {
        let n = (2 * self.elems as usize).min(slots.len());
        for (i, s) in slots[..n].iter().enumerate() {
            // SAFETY: inside the mapping; no program run reads this ring
            // (it is inactive and its grace period is over, or not installed).
            unsafe { self.slot(i).write_volatile(*s) };
        }
        for i in n..2 * self.elems as usize {
            // SAFETY: as above.
            unsafe { self.slot(i).write_volatile(NO_BACKEND) };
        }
    }

    /// The first `size` slots.
    fn read(&self, size: u32) -> Vec<BackendId> {
        let n = (size as usize).min(2 * self.elems as usize);
        // SAFETY: inside the mapping; a ring packets read is not written.
        (0..n)
            .map(|i| unsafe { self.slot(i).read_volatile() })
            .collect()
    }
}

/// What to put in an outer slot at the next flush.
enum Pending {
    Install(RingBuf),
    /// The 1-element placeholder: frees the ring that was there.
    Clear,
}

/// One VIP's rings as this process knows them.
#[derive(Default)]
struct VipRings {
    /// `None`: no ring, or one we cannot write (adopted without its pin).
    rings: [Option<RingBuf>; 2],
    /// The flip that retired the inactive ring (or the VIP id).
    ticket: Option<Ticket>,
}

/// Every VIP's rings and ring word.
pub struct Rings {
    outer: OwnedFd,
    words: Mapped,
    vips: Vec<VipRings>,
    /// A 1-element ring, installed where rings are freed and in the grace
    /// slot.
    placeholder: OwnedFd,
    pending: BTreeMap<u32, Pending>,
    /// Word stores to make after the pending updates: (VIP id, word).
    flips: Vec<(u32, u64)>,
    /// VIP ids whose staged rings were lost to a failed flush.
    lost: Vec<u32>,
    /// `<pin dir>/rings`, when pinning.
    pins: Option<PathBuf>,
    max_pending: usize,
    /// Outer-map updates made (each waits for a grace period).
    batches: u64,
}

impl Rings {
    /// Takes over the outer map and the ring words. With `pins`, adopts the
    /// rings pinned there that are still the ones installed.
    pub fn open(outer: OwnedFd, words: BorrowedFd<'_>, pins: Option<PathBuf>) -> io::Result<Rings> {
        let words = Mapped::new(words, MAX_VIPS as usize * 8)?;
        let placeholder = RingBuf::create(1, &[])?;
        let mut r = Rings {
            outer,
            words,
            vips: (0..MAX_VIPS).map(|_| VipRings::default()).collect(),
            placeholder: placeholder.fd.expect("a new ring keeps its fd"),
            pending: BTreeMap::new(),
            flips: Vec::new(),
            lost: Vec::new(),
            pins,
            max_pending: max_pending(),
            batches: 0,
        };
        if let Some(dir) = &r.pins {
            fs::create_dir_all(dir)?;
        }
        for id in 0..MAX_VIPS {
            if r.word(id) == 0 {
                continue;
            }
            for k in 0..2 {
                let ring = r.adopt(ring_index(id, k))?;
                r.vips[id as usize].rings[k as usize] = ring;
            }
        }
        Ok(r)
    }

    /// The ring pinned for outer slot `index`, if it is the one installed.
    fn adopt(&self, index: u32) -> io::Result<Option<RingBuf>> {
        let Some(dir) = &self.pins else {
            return Ok(None);
        };
        let Some(installed) = sys::lookup_u32(self.outer.as_fd(), index)? else {
            return Ok(None);
        };
        let fd = match sys::obj_get(&dir.join(index.to_string())) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut ring = RingBuf::adopt(fd)?;
        ring.fd = None;
        Ok((ring.id == installed).then_some(ring))
    }

    /// Until `t`, no ring of an adopted VIP is rewritten (a previous run may
    /// have flipped it moments ago).
    pub fn hold_all(&mut self, t: Ticket) {
        for id in 0..MAX_VIPS {
            if self.word(id) != 0 {
                self.vips[id as usize].ticket = Some(t);
            }
        }
    }

    /// A second handle on the outer map and the placeholder, for the grace
    /// barrier: the no-op update of the slot no VIP uses.
    pub fn barrier(&self) -> io::Result<impl FnMut() -> io::Result<()> + Send + 'static> {
        let outer = self.outer.try_clone()?;
        let placeholder = self.placeholder.try_clone()?;
        Ok(move || {
            sys::update_u32(
                outer.as_fd(),
                RING_GRACE_INDEX,
                placeholder.as_fd().as_raw_fd_u32(),
            )
        })
    }

    fn word_ref(&self, id: u32) -> &AtomicU64 {
        assert!(id < MAX_VIPS);
        // SAFETY: word `id < MAX_VIPS` of the mapping, 8-byte aligned; the
        // data path only loads it.
        unsafe { AtomicU64::from_ptr(self.words.base::<u64>().add(id as usize)) }
    }

    /// VIP `id`'s ring word.
    pub fn word(&self, id: u32) -> u64 {
        self.word_ref(id).load(Ordering::Acquire)
    }

    /// The flip: every store to the ring it names is visible to a packet
    /// that loads the word with load-acquire.
    fn flip(&mut self, id: u32, word: u64, grace: &Grace) {
        self.word_ref(id).store(word, Ordering::Release);
        self.vips[id as usize].ticket = Some(grace.ticket());
    }

    /// Makes `slots` VIP `id`'s ring: at once into its inactive ring when one
    /// of the right size is installed, else staged for [`Rings::flush`].
    pub fn stage(&mut self, id: u32, slots: &[BackendId], grace: &Grace) -> io::Result<()> {
        if id >= MAX_VIPS || slots.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("ring of {} slots for VIP id {id}", slots.len()),
            ));
        }
        let size = u32::try_from(slots.len()).map_err(io::Error::other)?;
        if self.flips.iter().any(|(v, _)| *v == id) {
            self.flush(grace)?;
        }
        let word = self.word(id);
        if ring_word_size(word) != 0 {
            let k = ring_word_which(word) ^ 1;
            let v = &self.vips[id as usize];
            if let Some(ring) = &v.rings[k as usize]
                && ring.fits(size)
            {
                if let Some(t) = v.ticket {
                    grace.wait(t)?;
                }
                ring.write(slots);
                self.flip(id, ring_word(k, size), grace);
                return Ok(());
            }
            let ring = RingBuf::create(size, slots)?;
            self.pending
                .insert(ring_index(id, k), Pending::Install(ring));
            self.flips.push((id, ring_word(k, size)));
        } else {
            // No ring yet: both, the first one read.
            for k in 0..2 {
                let ring = RingBuf::create(size, slots)?;
                self.pending
                    .insert(ring_index(id, k), Pending::Install(ring));
            }
            self.flips.push((id, ring_word(0, size)));
        }
        if self.pending.len() >= self.max_pending {
            self.flush(grace)?;
        }
        Ok(())
    }

    /// VIP `id` has no ring any more: its word goes to 0 at once, its rings
    /// are replaced by the placeholder (freeing them) at the next flush.
    pub fn clear(&mut self, id: u32, grace: &Grace) -> io::Result<()> {
        if id >= MAX_VIPS {
            return Ok(());
        }
        if self.flips.iter().any(|(v, _)| *v == id) {
            self.flush(grace)?;
        }
        if self.word(id) != 0 {
            self.flip(id, 0, grace);
        }
        for k in 0..2 {
            self.pending.insert(ring_index(id, k), Pending::Clear);
        }
        Ok(())
    }

    /// Whether rings are staged for installing (which later writes may
    /// depend on), as opposed to only frees.
    pub fn has_installs(&self) -> bool {
        !self.flips.is_empty()
            || self
                .pending
                .values()
                .any(|p| matches!(p, Pending::Install(_)))
    }

    /// Whether anything is staged.
    pub fn is_dirty(&self) -> bool {
        !self.pending.is_empty() || !self.flips.is_empty()
    }

    /// Sends the staged outer-map updates in one batch, pins what they
    /// installed, then makes the staged word flips.
    pub fn flush(&mut self, grace: &Grace) -> io::Result<()> {
        if !self.is_dirty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let flips = std::mem::take(&mut self.flips);
        let keys: Vec<u32> = pending.keys().copied().collect();
        let fds: Vec<u32> = pending
            .values()
            .map(|p| match p {
                Pending::Install(r) => {
                    r.fd.as_ref()
                        .map_or(u32::MAX, |fd| fd.as_fd().as_raw_fd_u32())
                }
                Pending::Clear => self.placeholder.as_fd().as_raw_fd_u32(),
            })
            .collect();
        self.batches += 1;
        if let Err((e, done)) = sys::update_batch_u32(self.outer.as_fd(), &keys, &fds) {
            // What landed is installed; the rest is lost, and so are the
            // flips that needed it.
            let landed: Vec<u32> = keys[..done.min(keys.len())].to_vec();
            for (index, p) in pending {
                if landed.contains(&index) {
                    self.installed(index, p);
                }
            }
            for (id, _) in flips {
                self.lost.push(id);
            }
            return Err(io::Error::new(
                e.kind(),
                format!("installing rings in the outer map: {e}"),
            ));
        }
        for (index, p) in pending {
            self.installed(index, p);
        }
        for (id, word) in flips {
            if let Some(t) = self.vips[id as usize].ticket {
                grace.wait(t)?;
            }
            self.flip(id, word, grace);
        }
        Ok(())
    }

    /// Outer slot `index` now holds what `p` staged: remember it, re-pin.
    fn installed(&mut self, index: u32, p: Pending) {
        let (id, k) = (index / 2, (index % 2) as usize);
        let pin = self.pins.as_ref().map(|d| d.join(index.to_string()));
        if let Some(path) = &pin {
            let _ = fs::remove_file(path);
        }
        match p {
            Pending::Install(mut ring) => {
                if let (Some(path), Some(fd)) = (&pin, &ring.fd)
                    && let Err(e) = sys::obj_pin(fd.as_fd(), path)
                {
                    // Only adoption needs the pin: without it a restarted
                    // agent recreates this ring.
                    tracing::warn!("pinning ring at {}: {e}", path.display());
                }
                ring.fd = None;
                self.vips[id as usize].rings[k] = Some(ring);
            }
            Pending::Clear => self.vips[id as usize].rings[k] = None,
        }
    }

    /// Outer-map updates made so far (each one waited for a grace period).
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// VIP ids whose staged rings never made it into the outer map.
    pub fn take_lost(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.lost)
    }

    /// VIP `id`'s ring as packets read it; `Ok(None)` without one, an error
    /// when this process cannot read it (adopted without its pin).
    pub fn read(&self, id: u32) -> io::Result<Option<Vec<BackendId>>> {
        if id >= MAX_VIPS {
            return Ok(None);
        }
        let word = self.word(id);
        let size = ring_word_size(word);
        if size == 0 {
            return Ok(None);
        }
        match &self.vips[id as usize].rings[ring_word_which(word) as usize] {
            Some(ring) => Ok(Some(ring.read(size))),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the ring of VIP id {id} is not pinned under this pin directory; \
                     the next change of that VIP rewrites it"
                ),
            )),
        }
    }
}

/// An fd as the `u32` the `bpf(2)` attributes take.
trait RawFdU32 {
    fn as_raw_fd_u32(&self) -> u32;
}

impl RawFdU32 for BorrowedFd<'_> {
    fn as_raw_fd_u32(&self) -> u32 {
        use std::os::fd::AsRawFd as _;
        self.as_raw_fd() as u32
    }
}
