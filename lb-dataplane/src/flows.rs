//! The flow tables seen from userspace: mapped into our memory (they are
//! `BPF_F_MMAPABLE` arrays), read and purged with the data path's sequence
//! protocol (`lb_common::abi::FLOW_WAYS`): a scan of a million slots is a
//! memory walk, not a million syscalls.

use std::{
    io,
    marker::PhantomData,
    os::fd::BorrowedFd,
    ptr,
    sync::atomic::{AtomicU64, Ordering},
};

use super::mapped::Mapped;

use lb_common::abi::{
    FLOW_WAYS, Flow, FlowKeyV4, FlowKeyV6, FlowSlotV4, FlowSlotV6, flow_bucket_v4, flow_bucket_v6,
};

/// What userspace needs of a slot type.
pub trait Slot: Copy {
    type Key: Copy + PartialEq;
    fn bucket(key: &Self::Key) -> u32;
    fn key(&self) -> Self::Key;
    fn flow(&self) -> Flow;
    fn is_free(&self) -> bool;
    fn empty(seq: u64) -> Self;
}

impl Slot for FlowSlotV4 {
    type Key = FlowKeyV4;
    fn bucket(key: &FlowKeyV4) -> u32 {
        flow_bucket_v4(key)
    }
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
    fn bucket(key: &FlowKeyV6) -> u32 {
        flow_bucket_v6(key)
    }
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
// volatile reads and atomics.
unsafe impl<S: Slot> Send for FlowTable<S> {}

impl<S: Slot> FlowTable<S> {
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

    fn seq(&self, i: u32) -> &AtomicU64 {
        // SAFETY: `i < entries`, every slot starts with an 8-byte-aligned u64
        // that only the sequence protocol touches.
        unsafe { AtomicU64::from_ptr(self.base.add(i as usize).cast::<u64>()) }
    }

    /// A consistent copy of slot `i` and the sequence number it was read at,
    /// unless a writer holds or changed it.
    pub fn read(&self, i: u32) -> Option<(u64, S)> {
        let seq = self.seq(i).load(Ordering::Acquire);
        if seq & 1 != 0 {
            return None;
        }
        // SAFETY: `i < entries`; torn copies are discarded below.
        let copy = unsafe { ptr::read_volatile(self.base.add(i as usize)) };
        (self.seq(i).load(Ordering::Acquire) == seq).then_some((seq, copy))
    }

    /// Every flow in the table, with its slot.
    pub fn scan_indexed(&self) -> impl Iterator<Item = (u32, Flow)> + '_ {
        (0..self.entries)
            .filter_map(|i| self.read(i).map(|(_, s)| (i, s)))
            .filter(|(_, s)| !s.is_free())
            .map(|(i, s)| (i, s.flow()))
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
        let base = (S::bucket(key) & self.mask()) * FLOW_WAYS;
        (base..base + FLOW_WAYS)
            .filter(|&i| i < self.entries)
            .filter_map(|i| self.read(i))
            .find(|(_, s)| !s.is_free() && s.key() == *key)
            .map(|(_, s)| s.flow())
    }

    /// Frees every slot whose flow `drop` says to; returns how many.
    pub fn purge(&self, drop: impl Fn(&Flow) -> bool) -> usize {
        let mut n = 0;
        for i in 0..self.entries {
            let Some((at, s)) = self.read(i) else {
                continue;
            };
            if s.is_free() || !drop(&s.flow()) {
                continue;
            }
            // Claim the slot as we read it; if the data path wrote it since,
            // it holds another flow now: leave it.
            let seq = self.seq(i);
            if seq
                .compare_exchange(at, at + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // SAFETY: we hold the slot (odd sequence); write an empty slot
            // carrying the held sequence, then publish the next even one.
            unsafe { ptr::write_volatile(self.base.add(i as usize), S::empty(at + 1)) };
            seq.store(at + 2, Ordering::Release);
            n += 1;
        }
        n
    }
}
