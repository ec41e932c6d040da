//! The flow tables seen from userspace: mapped into our memory (they are
//! `BPF_F_MMAPABLE` arrays), read and purged with the data path's sequence
//! protocol (docs/datapath.md, "Flow tables"): a scan of a million slots is a
//! memory walk, not a million syscalls.
//!
//! Ordering, in the Rust (C++) memory model, the seqlock recipe of Boehm's
//! "Can seqlocks get along with programming language memory models?" (2012):
//! a reader loads the sequence with `Acquire`, the slot's words with
//! `Relaxed`, then issues `fence(Acquire)` before loading the sequence again,
//! so no data load is satisfied after that second load; a writer claims with
//! a `compare_exchange`, issues `fence(Release)` before its data stores (so
//! the claim is visible before any of them), and publishes with a `Release`
//! store. The data path's side of the same protocol is in lb-ebpf's
//! `table.rs`.

use std::{
    io,
    marker::PhantomData,
    os::fd::BorrowedFd,
    sync::atomic::{AtomicU64, Ordering, fence},
};

use super::mapped::Mapped;

use lb_common::abi::{
    FLOW_WAYS, Flow, FlowKey, FlowKeyV4, FlowKeyV6, FlowSlotV4, FlowSlotV6, flow_slot,
};

/// Words in the largest slot (`FlowSlotV6`).
const MAX_WORDS: usize = 8;
const _: () = assert!(size_of::<FlowSlotV6>() == MAX_WORDS * 8);
const _: () = assert!(size_of::<FlowSlotV4>().is_multiple_of(8));

/// What userspace needs of a slot type.
pub trait Slot: Copy {
    type Key: FlowKey;
    fn key(&self) -> Self::Key;
    fn flow(&self) -> Flow;
    fn is_free(&self) -> bool;
    fn empty(seq: u64) -> Self;
}

impl Slot for FlowSlotV4 {
    type Key = FlowKeyV4;
    fn key(&self) -> FlowKeyV4 {
        self.key
    }
    fn flow(&self) -> Flow {
        self.flow
    }
    fn is_free(&self) -> bool {
        self.key.proto == 0
    }
    fn empty(seq: u64) -> Self {
        FlowSlotV4 {
            seq,
            ..FlowSlotV4::default()
        }
    }
}

impl Slot for FlowSlotV6 {
    type Key = FlowKeyV6;
    fn key(&self) -> FlowKeyV6 {
        self.key
    }
    fn flow(&self) -> Flow {
        self.flow
    }
    fn is_free(&self) -> bool {
        self.key.proto == 0
    }
    fn empty(seq: u64) -> Self {
        FlowSlotV6 {
            seq,
            ..FlowSlotV6::default()
        }
    }
}

/// A flow table mapped into this process.
pub struct FlowTable<S: Slot> {
    /// Keeps the mapping `base` points into.
    _map: Mapped,
    base: *mut S,
    entries: u32,
    _slot: PhantomData<S>,
}

// SAFETY: `base` points into `map`, which is Send; all access goes through
// atomics.
unsafe impl<S: Slot> Send for FlowTable<S> {}
// SAFETY: every access through `&self` is an atomic load, store or
// compare-exchange on the shared words.
unsafe impl<S: Slot> Sync for FlowTable<S> {}

impl<S: Slot> FlowTable<S> {
    const WORDS: usize = size_of::<S>() / 8;

    /// Maps the array map `fd` of `entries` slots.
    pub fn map(fd: BorrowedFd<'_>, entries: u32) -> io::Result<Self> {
        // Array maps round each value up to 8 bytes; both slot types already are.
        let map = Mapped::new(fd, entries as usize * size_of::<S>())?;
        Ok(FlowTable {
            base: map.base(),
            _map: map,
            entries,
            _slot: PhantomData,
        })
    }

    /// Buckets minus one: what the data path masks bucket hashes with.
    pub fn mask(&self) -> u32 {
        (self.entries / FLOW_WAYS).saturating_sub(1)
    }

    /// Word `w` of slot `i`.
    fn word(&self, i: u32, w: usize) -> &AtomicU64 {
        debug_assert!(i < self.entries && w < Self::WORDS);
        // SAFETY: `i < entries` and `w < WORDS`: inside the mapping, 8-byte
        // aligned (slots are multiples of 8 bytes from a page boundary). The
        // memory is shared with the data path, which accesses it only with
        // the same protocol.
        unsafe { AtomicU64::from_ptr(self.base.cast::<u64>().add(i as usize * Self::WORDS + w)) }
    }

    /// A consistent copy of slot `i` and the sequence number it was read at,
    /// unless a writer holds or changed it.
    pub fn read(&self, i: u32) -> Option<(u64, S)> {
        if i >= self.entries {
            return None;
        }
        let seq = self.word(i, 0).load(Ordering::Acquire);
        if seq & 1 != 0 {
            return None;
        }
        let mut copy = [0u64; MAX_WORDS];
        copy[0] = seq;
        for (w, c) in copy.iter_mut().enumerate().take(Self::WORDS).skip(1) {
            *c = self.word(i, w).load(Ordering::Relaxed);
        }
        // Every load above completes before the sequence is read again.
        fence(Ordering::Acquire);
        if self.word(i, 0).load(Ordering::Relaxed) != seq {
            return None;
        }
        // SAFETY: `copy` holds `size_of::<S>()` initialised bytes, 8-byte
        // aligned; slots are plain integers, valid for any bits.
        Some((seq, unsafe { copy.as_ptr().cast::<S>().read() }))
    }

    /// Every flow in the table.
    pub fn scan(&self) -> impl Iterator<Item = (S::Key, Flow)> + '_ {
        (0..self.entries)
            .filter_map(|i| self.read(i))
            .filter(|(_, s)| !s.is_free())
            .map(|(_, s)| (s.key(), s.flow()))
    }

    /// The flow of `key`, as the data path would find it.
    pub fn find(&self, key: &S::Key) -> Option<Flow> {
        (0..FLOW_WAYS)
            .filter_map(|w| self.read(flow_slot(key, self.mask(), w)))
            .find(|(_, s)| !s.is_free() && s.key() == *key)
            .map(|(_, s)| s.flow())
    }

    /// Frees every slot whose flow `drop` says to; returns how many. `note`
    /// sees every flow left in place.
    pub fn purge(&self, drop: impl Fn(&Flow) -> bool, mut note: impl FnMut(&Flow)) -> usize {
        let mut n = 0;
        for i in 0..self.entries {
            let Some((at, s)) = self.read(i) else {
                continue;
            };
            if s.is_free() {
                continue;
            }
            if !drop(&s.flow()) {
                note(&s.flow());
                continue;
            }
            if self.free(i, at) {
                n += 1;
            }
        }
        n
    }

    /// The slots whose flow `of` picks, and their keys.
    pub fn matching<'a>(
        &'a self,
        of: impl Fn(&Flow) -> bool + 'a,
    ) -> impl Iterator<Item = (u32, S::Key)> + 'a {
        (0..self.entries).filter_map(move |i| {
            let (_, s) = self.read(i)?;
            (!s.is_free() && of(&s.flow())).then(|| (i, s.key()))
        })
    }

    /// The flow in slot `i`, if that slot holds `key`.
    pub fn read_key(&self, i: u32, key: &S::Key) -> Option<Flow> {
        let (_, s) = self.read(i)?;
        (!s.is_free() && s.key() == *key).then(|| s.flow())
    }

    /// Empties slot `i` if it still is as read at sequence `at`.
    fn free(&self, i: u32, at: u64) -> bool {
        // Claim the slot as we read it; if the data path wrote it since,
        // it holds another flow now: leave it.
        let seq = self.word(i, 0);
        if seq
            .compare_exchange(at, at + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // The claim is visible before any of the stores below.
        fence(Ordering::Release);
        let empty = S::empty(at + 1);
        // SAFETY: `empty` is `WORDS` words of plain integers.
        let words =
            unsafe { std::slice::from_raw_parts((&raw const empty).cast::<u64>(), Self::WORDS) };
        for (w, v) in words.iter().enumerate().skip(1) {
            self.word(i, w).store(*v, Ordering::Relaxed);
        }
        // Publish: every store above is visible before the even sequence.
        seq.store(at + 2, Ordering::Release);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd};

    /// Shared memory standing in for an mmapable array map.
    fn memfd(bytes: usize) -> OwnedFd {
        // SAFETY: a fresh anonymous file; checked below.
        let fd = unsafe { libc::memfd_create(c"flows".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create: {}", io::Error::last_os_error());
        // SAFETY: we own this new fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sizing our own file.
        let rc = unsafe { libc::ftruncate(fd.as_fd().as_raw_fd(), bytes as i64) };
        assert_eq!(rc, 0);
        fd
    }

    fn slot(seq: u64, src: u32, backend: u32) -> FlowSlotV4 {
        FlowSlotV4 {
            seq,
            key: FlowKeyV4::new(src, 7, 1, 2, 6),
            flow: Flow {
                backend,
                flags: 0,
                atime: 5,
            },
        }
    }

    #[test]
    fn find_follows_the_shared_slot_rule_and_purge_frees_with_the_protocol() {
        let fd = memfd(64 * size_of::<FlowSlotV4>());
        let t = FlowTable::<FlowSlotV4>::map(fd.as_fd(), 64).unwrap();
        let s = slot(4, 10, 3);
        let i = flow_slot(&s.key, t.mask(), 2);
        // SAFETY: slot `i` of our own mapping; nothing else touches it.
        unsafe { t.base.add(i as usize).write(s) };
        assert_eq!(t.find(&s.key), Some(s.flow));
        assert_eq!(t.read(i), Some((4, s)));
        // A held slot (odd sequence) reads as nothing.
        t.word(i, 0).store(5, Ordering::Relaxed);
        assert_eq!(t.read(i), None);
        t.word(i, 0).store(6, Ordering::Relaxed);
        let mut left = Vec::new();
        assert_eq!(t.purge(|f| f.backend == 4, |f| left.push(f.backend)), 0);
        assert_eq!(left, [3]);
        assert_eq!(
            t.matching(|f| f.backend == 3).collect::<Vec<_>>(),
            [(i, s.key)]
        );
        assert_eq!(t.read_key(i, &s.key), Some(s.flow));
        assert_eq!(t.purge(|f| f.backend == 3, |_| {}), 1);
        assert_eq!(t.read_key(i, &s.key), None);
        let (seq, freed) = t.read(i).unwrap();
        assert_eq!(seq, 8, "claimed at 7, published at 8");
        assert!(freed.is_free() && freed.seq == 8);
        assert_eq!(t.find(&s.key), None);
    }

    /// A writer that follows the data path's protocol rewrites one slot as
    /// fast as it can, every word of a version equal; the reader must never
    /// accept a mix of two versions.
    #[test]
    fn a_reader_never_accepts_a_torn_slot() {
        let fd = memfd(4096);
        let t = std::sync::Arc::new(FlowTable::<FlowSlotV4>::map(fd.as_fd(), 4).unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (t, stop) = (t.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seq = 0u64;
                let mut v = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    let w0 = t.word(0, 0);
                    if w0
                        .compare_exchange(seq, seq + 1, Ordering::AcqRel, Ordering::Relaxed)
                        .is_err()
                    {
                        seq = w0.load(Ordering::Relaxed);
                        continue;
                    }
                    fence(Ordering::Release);
                    for w in 1..5 {
                        t.word(0, w).store(v, Ordering::Relaxed);
                    }
                    w0.store(seq + 2, Ordering::Release);
                    seq += 2;
                    v += 1;
                }
            })
        };
        let mut accepted = 0;
        for _ in 0..200_000 {
            if let Some((_, s)) = t.read(0) {
                // SAFETY: a slot is five plain words.
                let words: [u64; 5] = unsafe { std::mem::transmute(s) };
                assert!(words[1..].iter().all(|w| *w == words[1]), "{words:?}");
                accepted += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        assert!(accepted > 0);
    }
}
