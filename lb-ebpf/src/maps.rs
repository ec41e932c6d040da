//! The data path's maps. Names, sizes and value types come from lb-common; the
//! loader may resize the flow tables before load.

use aya_ebpf::{
    btf_maps::{Array, ArrayOfMaps, DevMapHash, HashMap, PerCpuArray},
    macros::btf_map,
};
use lb_common::{
    abi::{
        Addr, Backend, BackendId, Config, Counters, FlowSlotV4, FlowSlotV6, VIP_FILTER_WORDS,
        VIP_TABLE_SLOTS, VipSlot,
    },
    consts::{
        DEFAULT_FLOW_TABLE_SIZE, DEFAULT_RING_SIZE, FLOW_MAP_FLAGS, MAX_BACKENDS, MAX_TX_PORTS,
        MAX_VIPS, RING_MAP_FLAGS, Reason, VIP_TABLE_FLAGS,
    },
};

const VIPS: usize = MAX_VIPS as usize;
const BACKENDS: usize = MAX_BACKENDS as usize;
const FLOWS: usize = DEFAULT_FLOW_TABLE_SIZE as usize;
const FLOW_FLAGS: usize = FLOW_MAP_FLAGS as usize;

/// A VIP's Maglev ring (the template; `BPF_F_INNER_MAP` lets each VIP's ring
/// have its own size).
pub type Ring = Array<BackendId, { DEFAULT_RING_SIZE as usize }, { RING_MAP_FLAGS as usize }>;

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
pub static LB_RINGS: ArrayOfMaps<Ring, VIPS> = ArrayOfMaps::new();

#[btf_map]
pub static LB_BACKENDS: Array<Backend, BACKENDS> = Array::new();

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
pub static LB_CONFIG: Array<Config, 1> = Array::new();

#[btf_map]
pub static LB_VIP_FILTER: Array<u64, { VIP_FILTER_WORDS as usize }> = Array::new();
