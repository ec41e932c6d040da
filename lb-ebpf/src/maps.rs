//! The data path's maps. Names, sizes and value types come from lb-common; the
//! loader may resize the flow tables before load.

use core::ffi::c_void;

use aya_ebpf::{
    btf_maps::{Array, ArrayOfMaps, DevMapHash, HashMap, PerCpuArray},
    helpers::generated::bpf_map_lookup_elem,
    macros::btf_map,
};
use lb_common::{
    abi::{
        Addr, BackendEntry, Config, Counters, FlowSlotV4, FlowSlotV6, RING_OUTER_ENTRIES, RingPair,
        VIP_FILTER_WORDS, VIP_TABLE_SLOTS, VipSlot,
    },
    consts::{
        DEFAULT_FLOW_TABLE_SIZE, FLOW_MAP_FLAGS, MAX_BACKENDS, MAX_RX_IFACES, MAX_TX_PORTS,
        MAX_VIPS, RING_MAP_FLAGS, Reason, SHARED_MAP_FLAGS, VIP_TABLE_FLAGS,
    },
    rx::{RxMac, VmacSet},
};

const VIPS: usize = MAX_VIPS as usize;
const BACKENDS: usize = MAX_BACKENDS as usize;
const FLOWS: usize = DEFAULT_FLOW_TABLE_SIZE as usize;
const FLOW_FLAGS: usize = FLOW_MAP_FLAGS as usize;
const SHARED: usize = SHARED_MAP_FLAGS as usize;

/// A Maglev ring (the template: `BPF_F_INNER_MAP` lets each ring have its
/// own size, so one element is as good as any here).
pub type Ring = Array<RingPair, 1, { RING_MAP_FLAGS as usize }>;

/// Both halves of the VIP table (`lb_common::abi::VipSlot`).
#[btf_map]
pub static LB_VIP_TABLE: Array<
    VipSlot,
    { 2 * VIP_TABLE_SLOTS as usize },
    { VIP_TABLE_FLAGS as usize },
> = Array::new();

#[btf_map]
pub static LB_VIP_ADDRS: HashMap<Addr, u32, VIPS> = HashMap::new();

#[btf_map]
pub static LB_RINGS: ArrayOfMaps<Ring, { RING_OUTER_ENTRIES as usize }> = ArrayOfMaps::new();

/// Per VIP: which ring, of what size (`lb_common::abi::ring_word`).
#[btf_map]
pub static LB_RING_WORDS: Array<u64, VIPS, SHARED> = Array::new();

#[btf_map]
pub static LB_BACKENDS: Array<BackendEntry, BACKENDS, SHARED> = Array::new();

/// The flow tables: set-associative arrays (see `lb_common::abi::FLOW_WAYS`).
#[btf_map]
pub static LB_FLOWS_V4: Array<FlowSlotV4, FLOWS, FLOW_FLAGS> = Array::new();

#[btf_map]
pub static LB_FLOWS_V6: Array<FlowSlotV6, FLOWS, FLOW_FLAGS> = Array::new();

#[btf_map]
pub static LB_VIP_STATS: PerCpuArray<Counters, VIPS> = PerCpuArray::new();

#[btf_map]
pub static LB_BE_STATS: PerCpuArray<Counters, BACKENDS> = PerCpuArray::new();

#[btf_map]
pub static LB_REASONS: PerCpuArray<u64, { Reason::COUNT as usize }> = PerCpuArray::new();

#[btf_map]
pub static LB_TX_PORTS: DevMapHash<{ MAX_TX_PORTS as usize }> = DevMapHash::new();

#[btf_map]
pub static LB_CONFIG: Array<Config, 1, SHARED> = Array::new();

#[btf_map]
pub static LB_VIP_FILTER: Array<u64, { VIP_FILTER_WORDS as usize }> = Array::new();

/// Ingress ifindex → that interface's MAC (`lb_common::rx`).
#[btf_map]
pub static LB_RX_MACS: HashMap<u32, RxMac, { MAX_RX_IFACES as usize }> = HashMap::new();

/// Ifindex → the VRRP virtual MACs this node holds there.
#[btf_map]
pub static LB_VMACS: HashMap<u32, VmacSet, { MAX_RX_IFACES as usize }> = HashMap::new();

/// Element `index` of an array map (plain, per-CPU or mmapable), or of an
/// array of maps (the inner map), through `bpf_map_lookup_elem`.
///
/// The key sits in an 8-byte stack slot, written whole. aya's `get` stores a
/// 4-byte key, and when LLVM reuses a slot that held a spilled pointer, the
/// verifier refuses that partial overwrite without `CAP_PERFMON` ("attempt
/// to corrupt spilled pointer on stack"). The helper reads the first 4 bytes:
/// the index on a little-endian target (`bpfel`, the only one lb builds).
#[inline(always)]
pub fn elem<M, T>(map: &M, index: u32) -> Option<*mut T> {
    let key = index as u64;
    // SAFETY: `map` is a map definition (a `#[btf_map]` static or an inner
    // map pointer); the key outlives the call.
    let p = unsafe {
        bpf_map_lookup_elem((map as *const M).cast_mut().cast(), (&raw const key).cast())
    };
    (!p.is_null()).then_some(p.cast())
}

/// Element `index` of the map `map` points to (an inner map).
#[inline(always)]
pub fn elem_of<T>(map: *mut c_void, index: u32) -> Option<*mut T> {
    let key = index as u64;
    // SAFETY: `map` came from a lookup in an array of maps; the key outlives
    // the call.
    let p = unsafe { bpf_map_lookup_elem(map, (&raw const key).cast()) };
    (!p.is_null()).then_some(p.cast())
}

/// Whether `addr` is a key of [`LB_VIP_ADDRS`], with the key in two whole
/// 8-byte stack slots (see [`elem`]).
#[inline(always)]
pub fn vip_addr_known(addr: &Addr) -> bool {
    // SAFETY: `Addr` is 16 bytes of plain integers.
    let key: [u64; 2] = unsafe { core::mem::transmute(*addr) };
    // SAFETY: as in `elem`.
    let p = unsafe {
        bpf_map_lookup_elem(
            (&raw const LB_VIP_ADDRS).cast_mut().cast(),
            (&raw const key).cast(),
        )
    };
    !p.is_null()
}

const _: () = assert!(cfg!(target_endian = "little"));
