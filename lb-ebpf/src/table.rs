//! The flow tables: set-associative arrays with a sequence number per slot
//! (the layout and protocol are `lb_common::abi::FLOW_WAYS`'s docs).
//!
//! Readers copy a slot between two reads of its sequence number and keep the
//! copy only if the number was even and did not move. Writers claim a slot by
//! `cmpxchg`ing its even number to odd, write, then publish the next even
//! number; a writer that loses the race skips its write (the next packet of
//! the flow tries again). Sequence numbers only grow, so there is no ABA.
//! Ordering: every access to a slot is volatile, so LLVM keeps them in program
//! order (a compiler fence cannot be expressed on BPF), and x86-64's total
//! store order keeps loads in order with loads and stores with stores.

use core::{
    intrinsics::{AtomicOrdering, atomic_cxchg},
    ptr::{addr_of_mut, read_volatile, write_volatile},
};

use lb_common::abi::{
    Config, FLOW_WAYS, Flow, FlowKeyV4, FlowKeyV6, FlowSlotV4, FlowSlotV6, flow_bucket_v4,
    flow_bucket_v6,
};

use crate::{
    maps::{LB_FLOWS_V4, LB_FLOWS_V6},
    verdict::Tuple,
};

/// What a flow table is made of; implemented for the IPv4 and IPv6 tables.
pub trait Table {
    type Key: Copy + PartialEq;
    type Slot;
    fn slot(idx: u32) -> Option<*mut Self::Slot>;
    fn bucket(key: &Self::Key, cfg: &Config) -> u32;
    /// # Safety
    /// `s` points into the table.
    unsafe fn seq(s: *mut Self::Slot) -> *mut u64;
    /// # Safety
    /// As [`Table::seq`].
    unsafe fn key(s: *mut Self::Slot) -> *mut Self::Key;
    /// # Safety
    /// As [`Table::seq`].
    unsafe fn flow(s: *mut Self::Slot) -> *mut Flow;
    fn is_free(key: &Self::Key) -> bool;
}

pub struct V4;
pub struct V6;

impl Table for V4 {
    type Key = FlowKeyV4;
    type Slot = FlowSlotV4;
    #[inline(always)]
    fn slot(idx: u32) -> Option<*mut FlowSlotV4> {
        LB_FLOWS_V4.get_ptr_mut(idx)
    }
    #[inline(always)]
    fn bucket(key: &FlowKeyV4, cfg: &Config) -> u32 {
        flow_bucket_v4(key) & cfg.flow_mask_v4
    }
    #[inline(always)]
    unsafe fn seq(s: *mut FlowSlotV4) -> *mut u64 {
        // SAFETY: the caller's pointer is to a slot.
        unsafe { addr_of_mut!((*s).seq) }
    }
    #[inline(always)]
    unsafe fn key(s: *mut FlowSlotV4) -> *mut FlowKeyV4 {
        // SAFETY: as above.
        unsafe { addr_of_mut!((*s).key) }
    }
    #[inline(always)]
    unsafe fn flow(s: *mut FlowSlotV4) -> *mut Flow {
        // SAFETY: as above.
        unsafe { addr_of_mut!((*s).flow) }
    }
    #[inline(always)]
    fn is_free(key: &FlowKeyV4) -> bool {
        key.proto == 0
    }
}

impl Table for V6 {
    type Key = FlowKeyV6;
    type Slot = FlowSlotV6;
    #[inline(always)]
    fn slot(idx: u32) -> Option<*mut FlowSlotV6> {
        LB_FLOWS_V6.get_ptr_mut(idx)
    }
    #[inline(always)]
    fn bucket(key: &FlowKeyV6, cfg: &Config) -> u32 {
        flow_bucket_v6(key) & cfg.flow_mask_v6
    }
    #[inline(always)]
    unsafe fn seq(s: *mut FlowSlotV6) -> *mut u64 {
        // SAFETY: the caller's pointer is to a slot.
        unsafe { addr_of_mut!((*s).seq) }
    }
    #[inline(always)]
    unsafe fn key(s: *mut FlowSlotV6) -> *mut FlowKeyV6 {
        // SAFETY: as above.
        unsafe { addr_of_mut!((*s).key) }
    }
    #[inline(always)]
    unsafe fn flow(s: *mut FlowSlotV6) -> *mut Flow {
        // SAFETY: as above.
        unsafe { addr_of_mut!((*s).flow) }
    }
    #[inline(always)]
    fn is_free(key: &FlowKeyV6) -> bool {
        key.proto == 0
    }
}

/// A flow found in a table: a consistent copy, and where it lives.
pub struct Found<T: Table> {
    slot: *mut T::Slot,
    seq: u64,
    pub flow: Flow,
}

impl<T: Table> Found<T> {
    /// Marks the flow seen now and notes FIN/RST. Plain stores, no claim:
    /// if the slot was just given to another flow, that flow's age moves by
    /// a second, which is harmless.
    #[inline(always)]
    pub fn touch(&self, now: u64, flags: u32) {
        // SAFETY: `slot` points into the table (it came from `find`).
        unsafe {
            let f = T::flow(self.slot);
            if self.flow.atime != now {
                write_volatile(addr_of_mut!((*f).atime), now);
            }
            if flags & !self.flow.flags != 0 {
                write_volatile(addr_of_mut!((*f).flags), self.flow.flags | flags);
            }
        }
    }

    /// Replaces the flow (a re-hash), if nobody wrote the slot since `find`.
    #[inline(always)]
    pub fn replace(&self, flow: &Flow) -> bool {
        write::<T>(self.slot, self.seq, None, flow)
    }
}

/// Claims `s` at sequence `seq`, writes it, and publishes it.
#[inline(always)]
fn write<T: Table>(s: *mut T::Slot, seq: u64, key: Option<&T::Key>, flow: &Flow) -> bool {
    // SAFETY: `s` points into the table; the claim makes us its only writer.
    unsafe {
        let seq_ptr = T::seq(s);
        let (_, claimed) = atomic_cxchg::<
            u64,
            { AtomicOrdering::SeqCst },
            { AtomicOrdering::Relaxed },
        >(seq_ptr, seq, seq + 1);
        if !claimed {
            return false;
        }
        if let Some(k) = key {
            write_volatile(T::key(s), *k);
        }
        write_volatile(T::flow(s), *flow);
        write_volatile(seq_ptr, seq + 2);
    }
    true
}

/// The flow of `key`, if the table holds it.
#[inline(always)]
pub fn find<T: Table>(key: &T::Key, cfg: &Config) -> Option<Found<T>> {
    let base = T::bucket(key, cfg).wrapping_mul(FLOW_WAYS);
    let mut w = 0;
    while w < FLOW_WAYS {
        if let Some(s) = T::slot(base.wrapping_add(w)) {
            // SAFETY: `s` points into the table.
            unsafe {
                let seq = read_volatile(T::seq(s));
                if seq & 1 == 0 && read_volatile(T::key(s)) == *key {
                    let flow = read_volatile(T::flow(s));
                    if read_volatile(T::seq(s)) == seq {
                        return Some(Found { slot: s, seq, flow });
                    }
                }
            }
        }
        w += 1;
    }
    None
}

/// Records `flow` for `key`: in the slot that already holds the key, else in
/// a free one, else in the bucket's least recently seen one.
#[inline(always)]
pub fn insert<T: Table>(key: &T::Key, flow: &Flow, cfg: &Config) {
    let base = T::bucket(key, cfg).wrapping_mul(FLOW_WAYS);
    let mut victim: Option<(*mut T::Slot, u64)> = None;
    let mut oldest = u64::MAX;
    let mut w = 0;
    while w < FLOW_WAYS {
        if let Some(s) = T::slot(base.wrapping_add(w)) {
            // SAFETY: `s` points into the table.
            unsafe {
                let seq = read_volatile(T::seq(s));
                if seq & 1 == 0 {
                    let k = read_volatile(T::key(s));
                    if k == *key {
                        victim = Some((s, seq));
                        break;
                    }
                    // Free slots rank before any flow, then by age.
                    let age = if T::is_free(&k) {
                        0
                    } else {
                        read_volatile(addr_of_mut!((*T::flow(s)).atime)).saturating_add(1)
                    };
                    if age < oldest {
                        oldest = age;
                        victim = Some((s, seq));
                    }
                }
            }
        }
        w += 1;
    }
    if let Some((s, seq)) = victim {
        // Losing the claim to another CPU costs this flow one more miss.
        let _ = write::<T>(s, seq, Some(key), flow);
    }
}

#[inline(always)]
pub fn key_v4(t: &Tuple) -> FlowKeyV4 {
    FlowKeyV4 {
        src: t.src.0[3],
        dst: t.dst.0[3],
        sport: t.sport,
        dport: t.dport,
        proto: t.proto,
        _pad: 0,
        _pad2: 0,
    }
}

#[inline(always)]
pub fn key_v6(t: &Tuple) -> FlowKeyV6 {
    FlowKeyV6 {
        src: t.src,
        dst: t.dst,
        sport: t.sport,
        dport: t.dport,
        proto: t.proto,
        _pad: 0,
        _pad2: 0,
    }
}
