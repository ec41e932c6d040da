//! The flow tables: set-associative arrays with a sequence number per slot
//! (layout: `lb_common::abi::FLOW_WAYS`; protocol and memory ordering:
//! docs/datapath.md, "Flow tables").
//!
//! A slot is read and written as 8-byte words: `[seq, key..., flow (2)]`.
//!
//! Readers load `seq` with load-acquire and every word of the slot with
//! load-acquire too, then load `seq` again, and keep what they read only if it
//! was even and did not move. Acquire orders each load before every later
//! load of the same CPU (BPF ISA v4 `BPF_LOAD_ACQ`, kernel 6.15), so the
//! second `seq` load cannot be satisfied before any data load.
//!
//! Writers claim a slot by `cmpxchg`ing its even number to odd — a BPF
//! `cmpxchg` is fully ordered (the kernel memory model's rule for
//! value-returning atomics, which every JIT implements), so the claim is
//! visible before any data store — write it, then publish the next even
//! number with store-release, which orders every data store before it. A
//! writer that loses the claim skips its write (the next packet of the flow
//! tries again). Sequence numbers only grow, so there is no ABA.
//!
//! Whoever reads data stored by a writer therefore also reads (at the latest)
//! that writer's claim in the second `seq` load and discards the copy: the
//! message-passing pattern with a full fence on one side and acquire on the
//! other, which the kernel memory model forbids to be reordered.

use core::{
    intrinsics::{AtomicOrdering, atomic_cxchg, atomic_load, atomic_store},
    ptr::{addr_of_mut, read_volatile, write_volatile},
};

use lb_common::abi::{
    Config, FLOW_WAYS, Flow, FlowKey, FlowKeyV4, FlowKeyV6, FlowSlotV4, FlowSlotV6, flow_slot,
};

use crate::{
    maps::{LB_FLOWS_V4, LB_FLOWS_V6, elem},
    verdict::Tuple,
};

/// What a flow table is made of; implemented for the IPv4 and IPv6 tables.
pub trait Table {
    type Key: FlowKey;
    /// The key as the words it occupies in a slot (`[u64; KEY_WORDS]`).
    type Words: Copy;
    const KEY_WORDS: usize;
    /// Slot `idx` as words, if inside the table.
    fn slot(idx: u32) -> Option<*mut u64>;
    fn mask(cfg: &Config) -> u32;
    fn words(key: &Self::Key) -> Self::Words;
    fn word(w: &Self::Words, i: usize) -> u64;
}

pub struct V4;
pub struct V6;

impl Table for V4 {
    type Key = FlowKeyV4;
    type Words = [u64; 2];
    const KEY_WORDS: usize = 2;
    #[inline(always)]
    fn slot(idx: u32) -> Option<*mut u64> {
        elem::<_, u64>(&LB_FLOWS_V4, idx)
    }
    #[inline(always)]
    fn mask(cfg: &Config) -> u32 {
        cfg.flow_mask_v4
    }
    #[inline(always)]
    fn words(key: &FlowKeyV4) -> [u64; 2] {
        // SAFETY: `FlowKeyV4` is 16 bytes of plain integers (checked in
        // lb-common), any bit pattern of which is a valid `[u64; 2]`.
        unsafe { core::mem::transmute::<FlowKeyV4, [u64; 2]>(*key) }
    }
    #[inline(always)]
    fn word(w: &[u64; 2], i: usize) -> u64 {
        w[i]
    }
}

impl Table for V6 {
    type Key = FlowKeyV6;
    type Words = [u64; 5];
    const KEY_WORDS: usize = 5;
    #[inline(always)]
    fn slot(idx: u32) -> Option<*mut u64> {
        elem::<_, u64>(&LB_FLOWS_V6, idx)
    }
    #[inline(always)]
    fn mask(cfg: &Config) -> u32 {
        cfg.flow_mask_v6
    }
    #[inline(always)]
    fn words(key: &FlowKeyV6) -> [u64; 5] {
        // SAFETY: as for V4: 40 bytes of plain integers.
        unsafe { core::mem::transmute::<FlowKeyV6, [u64; 5]>(*key) }
    }
    #[inline(always)]
    fn word(w: &[u64; 5], i: usize) -> u64 {
        w[i]
    }
}

// The word layout above is the slots' layout.
const _: () = assert!(size_of::<FlowSlotV4>() == (1 + 2 + 2) * 8);
const _: () = assert!(size_of::<FlowSlotV6>() == (1 + 5 + 2) * 8);
// `slot_is_free` finds the protocol at byte 4 of the key's last word.
const _: () = assert!(core::mem::offset_of!(FlowKeyV4, proto) == V4::KEY_WORDS * 8 - 4);
const _: () = assert!(core::mem::offset_of!(FlowKeyV6, proto) == V6::KEY_WORDS * 8 - 4);

/// Load-acquire of the word at `p`.
///
/// # Safety
/// `p` points to an aligned word of a map value.
#[inline(always)]
unsafe fn load(p: *const u64) -> u64 {
    // SAFETY: the caller's word.
    unsafe { atomic_load::<u64, { AtomicOrdering::Acquire }>(p) }
}

/// The key of the slot at `s` is `want`, read with load-acquire.
///
/// # Safety
/// `s` points to a slot of `T`'s table.
#[inline(always)]
unsafe fn key_is<T: Table>(s: *mut u64, want: &T::Words) -> bool {
    let mut i = 0;
    while i < T::KEY_WORDS {
        // SAFETY: word `1 + i` is inside the slot.
        if unsafe { load(s.add(1 + i)) } != T::word(want, i) {
            return false;
        }
        i += 1;
    }
    true
}

/// The flow words of the slot at `s`, read with load-acquire.
///
/// # Safety
/// As [`key_is`].
#[inline(always)]
unsafe fn flow_of<T: Table>(s: *mut u64) -> Flow {
    // SAFETY: the two words after the key are inside the slot.
    let w = unsafe { [load(s.add(1 + T::KEY_WORDS)), load(s.add(2 + T::KEY_WORDS))] };
    // SAFETY: `Flow` is 16 bytes of plain integers (checked in lb-common).
    unsafe { core::mem::transmute::<[u64; 2], Flow>(w) }
}

/// A flow looked up in a table: a consistent copy and where it lives, or
/// nothing (`seq_ptr` null).
///
/// Not an `Option`: every field holds a defined value on every path. With an
/// `Option` (or fields left unset) LLVM may carry an undefined register along
/// the paths where the value goes unused, and the verifier refuses to read
/// those ("!read_ok").
pub struct Found {
    seq_ptr: *mut u64,
    flow_ptr: *mut Flow,
    seq: u64,
    pub flow: Flow,
}

impl Found {
    #[inline(always)]
    pub const fn none() -> Self {
        Found {
            seq_ptr: core::ptr::null_mut(),
            flow_ptr: core::ptr::null_mut(),
            seq: 0,
            flow: Flow {
                backend: 0,
                flags: 0,
                atime: 0,
            },
        }
    }

    #[inline(always)]
    pub fn is_found(&self) -> bool {
        !self.seq_ptr.is_null()
    }

    /// Marks the flow seen now and notes FIN/RST. Plain stores, no claim:
    /// if the slot was just given to another flow, that flow's age moves by
    /// a second, which is harmless.
    #[inline(always)]
    pub fn touch(&self, now: u64, flags: u32) {
        if !self.is_found() {
            return;
        }
        // SAFETY: `flow_ptr` points into the table (it came from `find`).
        unsafe {
            let f = self.flow_ptr;
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
        if !self.is_found() {
            return false;
        }
        // SAFETY: the pointers came from `find`; the claim makes us the
        // slot's only writer until we publish.
        unsafe {
            if !claim(self.seq_ptr, self.seq) {
                return false;
            }
            write_volatile(self.flow_ptr, *flow);
            publish(self.seq_ptr, self.seq);
        }
        true
    }
}

/// Claims the slot whose sequence is at `seq_ptr`, as read at `seq`: a fully
/// ordered `cmpxchg` to `seq + 1`.
///
/// # Safety
/// `seq_ptr` points to a slot's sequence.
#[inline(always)]
unsafe fn claim(seq_ptr: *mut u64, seq: u64) -> bool {
    // SAFETY: the caller's word.
    let (_, claimed) = unsafe {
        atomic_cxchg::<u64, { AtomicOrdering::SeqCst }, { AtomicOrdering::Relaxed }>(
            seq_ptr,
            seq,
            seq + 1,
        )
    };
    claimed
}

/// Publishes a slot claimed at `seq`: store-release of `seq + 2`.
///
/// # Safety
/// As [`claim`], which succeeded.
#[inline(always)]
unsafe fn publish(seq_ptr: *mut u64, seq: u64) {
    // SAFETY: the caller's word.
    unsafe { atomic_store::<u64, { AtomicOrdering::Release }>(seq_ptr, seq + 2) };
}

/// Claims `s` at sequence `seq`, writes key and flow, and publishes it.
#[inline(always)]
fn write<T: Table>(s: *mut u64, seq: u64, key: &T::Words, flow: &Flow) -> bool {
    // SAFETY: `s` points into the table; the claim makes us its only writer.
    unsafe {
        if !claim(s, seq) {
            return false;
        }
        let mut i = 0;
        while i < T::KEY_WORDS {
            write_volatile(s.add(1 + i), T::word(key, i));
            i += 1;
        }
        write_volatile(s.add(1 + T::KEY_WORDS).cast::<Flow>(), *flow);
        publish(s, seq);
    }
    true
}

/// The flow of `key`, if the table holds it.
#[inline(always)]
pub fn find<T: Table>(key: &T::Key, cfg: &Config) -> Found {
    let want = T::words(key);
    let mut w = 0;
    while w < FLOW_WAYS {
        if let Some(s) = T::slot(flow_slot(key, T::mask(cfg), w)) {
            // SAFETY: `s` points into the table.
            unsafe {
                let seq = load(s);
                if seq & 1 == 0 && key_is::<T>(s, &want) {
                    let flow = flow_of::<T>(s);
                    if load(s) == seq {
                        return Found {
                            seq_ptr: s,
                            flow_ptr: s.add(1 + T::KEY_WORDS).cast(),
                            seq,
                            flow,
                        };
                    }
                }
            }
        }
        w += 1;
    }
    Found::none()
}

/// Records `flow` for `key`: in the slot that already holds the key, else in
/// a free one, else in the bucket's least recently seen one. What it reads to
/// choose may be torn; the claim (`cmpxchg` on the sequence read) fails if the
/// slot changed since.
#[inline(always)]
pub fn insert<T: Table>(key: &T::Key, flow: &Flow, cfg: &Config) {
    let want = T::words(key);
    // Null: no slot chosen yet (a sentinel, not an `Option` of a pointer and
    // a sequence, whose unset half the verifier would see read uninitialised).
    let mut victim: *mut u64 = core::ptr::null_mut();
    // The sequence the victim was read at lives in a stack slot accessed only
    // with volatile loads and stores: it matters only when a victim was
    // chosen, and LLVM would otherwise carry an undefined register along the
    // other paths, which the verifier refuses to read ("!read_ok").
    let mut victim_seq = 0u64;
    // SAFETY: a local.
    unsafe { write_volatile(&raw mut victim_seq, 0) };
    let mut oldest = u64::MAX;
    let mut w = 0;
    while w < FLOW_WAYS {
        if let Some(s) = T::slot(flow_slot(key, T::mask(cfg), w)) {
            // SAFETY: `s` points into the table.
            unsafe {
                let seq = load(s);
                if seq & 1 == 0 {
                    if key_is::<T>(s, &want) {
                        victim = s;
                        write_volatile(&raw mut victim_seq, seq);
                        break;
                    }
                    // Free slots (protocol 0) rank before any flow, then by age.
                    let f = flow_of::<T>(s);
                    let age = if slot_is_free::<T>(s) {
                        0
                    } else {
                        f.atime.saturating_add(1)
                    };
                    if age < oldest {
                        oldest = age;
                        victim = s;
                        write_volatile(&raw mut victim_seq, seq);
                    }
                }
            }
        }
        w += 1;
    }
    if !victim.is_null() {
        // SAFETY: a local.
        let seq = unsafe { read_volatile(&raw const victim_seq) };
        // Losing the claim to another CPU costs this flow one more miss.
        let _ = write::<T>(victim, seq, &want, flow);
    }
}

/// Whether the slot at `s` is free: its key's protocol byte is 0. The
/// protocol is the byte after the two ports, in the key's last word.
///
/// # Safety
/// As [`key_is`].
#[inline(always)]
unsafe fn slot_is_free<T: Table>(s: *mut u64) -> bool {
    // SAFETY: the key's last word is inside the slot.
    let last = unsafe { load(s.add(T::KEY_WORDS)) };
    // Both key types end with sport, dport (4 bytes), proto, pad (4 bytes):
    // the protocol is byte 4 of the last word in memory order.
    last.to_ne_bytes()[4] == 0
}

#[inline(always)]
pub fn key_v4(t: &Tuple) -> FlowKeyV4 {
    FlowKeyV4::new(t.src.0[3], t.dst.0[3], t.sport, t.dport, t.proto)
}

#[inline(always)]
pub fn key_v6(t: &Tuple) -> FlowKeyV6 {
    FlowKeyV6::new(t.src, t.dst, t.sport, t.dport, t.proto)
}
