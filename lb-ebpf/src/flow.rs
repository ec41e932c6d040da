//! Lookups: the VIP address pre-filter, VIPs, the flow tables, the Maglev
//! ring, backends, and the counters.

use core::{
    ffi::c_void,
    intrinsics::{AtomicOrdering, atomic_load},
};

use aya_ebpf::btf_maps::PerCpuArray;
use lb_common::{
    abi::{
        Addr, Backend, BackendEntry, BackendId, Config, Counters, Flow, RingPair, VIP_TABLE_SLOTS,
        Vip, VipKey, VipSlot, ring_index, ring_word_size, ring_word_which, vip_filter_bit,
    },
    consts::{NO_BACKEND, Reason, config_flags, flow_flags, state, vip_flags},
    hash::{flow_hash, ring_slot},
};

use crate::{
    maps::{
        LB_BACKENDS, LB_CONFIG, LB_RING_WORDS, LB_RINGS, LB_VIP_FILTER, LB_VIP_TABLE, elem,
        elem_of, vip_addr_known,
    },
    parse::{TCP_FIN, TCP_RST},
    table::{self, Found, V4, V6, key_v4, key_v6},
    verdict::Tuple,
};

/// The VIP address pre-filter: `false` proves `dst` carries no VIP.
#[inline(always)]
pub fn maybe_vip(dst: &Addr) -> bool {
    let (word, mask) = vip_filter_bit(dst);
    elem::<_, u64>(&LB_VIP_FILTER, word).is_some_and(|w| {
        // SAFETY: a word of the filter map.
        let w = unsafe { *w };
        w & mask != 0
    })
}

/// Whether `dst` carries a VIP (exact; off the fast path).
#[inline(always)]
pub fn is_vip_addr(dst: &Addr) -> bool {
    vip_addr_known(dst)
}

/// The data path's switches, clock and table sizes (one array load).
#[inline(always)]
pub fn config() -> Config {
    match elem::<_, Config>(&LB_CONFIG, 0) {
        // SAFETY: the config map's value.
        Some(c) => unsafe { *c },
        None => Config::default(),
    }
}

/// Which half of the VIP table to read: a load-acquire of `Config::vip_half`,
/// so the half's slots are read after it (the agent wrote them before its
/// store-release of the number).
#[inline(always)]
fn vip_half() -> u32 {
    match elem::<_, Config>(&LB_CONFIG, 0) {
        // SAFETY: an aligned field of the config map's value.
        Some(c) => unsafe {
            atomic_load::<u32, { AtomicOrdering::Acquire }>(&raw const (*c).vip_half)
        },
        None => 0,
    }
}

/// [`flow_flags`] a TCP segment's flags set.
#[inline(always)]
pub fn closing_flags(tcp_flags: u8) -> u32 {
    let mut f = 0;
    if tcp_flags & TCP_FIN != 0 {
        f |= flow_flags::FIN;
    }
    if tcp_flags & TCP_RST != 0 {
        f |= flow_flags::RST;
    }
    f
}

/// The flow of this 5-tuple, if the table holds it (see [`Found::is_found`]).
#[inline(always)]
pub fn flow_find(t: &Tuple, cfg: &Config) -> Found {
    if t.v6 {
        table::find::<V6>(&key_v6(t), cfg)
    } else {
        table::find::<V4>(&key_v4(t), cfg)
    }
}

/// Records a new flow.
#[inline(always)]
pub fn flow_insert(t: &Tuple, flow: &Flow, cfg: &Config) {
    if t.v6 {
        table::insert::<V6>(&key_v6(t), flow, cfg);
    } else {
        table::insert::<V4>(&key_v4(t), flow, cfg);
    }
}

/// The VIP for (dst, dport, proto), falling back to the all-ports VIP of the
/// address when one exists.
#[inline(always)]
pub fn find_vip(dst: &Addr, dport: u16, proto: u8, cfg: &Config) -> Option<Vip> {
    let half = vip_half();
    let mut key = VipKey {
        addr: *dst,
        port: dport,
        proto,
        _pad: 0,
    };
    if let Some(v) = vip_lookup(&key, half) {
        return Some(v);
    }
    if cfg.flags & config_flags::WILDCARD_VIPS == 0 {
        return None;
    }
    key.port = 0;
    vip_lookup(&key, half)
}

/// Probes the half of the VIP table packets read now.
#[inline(always)]
fn vip_lookup(key: &VipKey, half: u32) -> Option<Vip> {
    let base = (half & 1) * VIP_TABLE_SLOTS;
    lb_common::abi::vip_lookup(key, |i| {
        // SAFETY: slots of the VIP table map live as long as the program run.
        elem::<_, VipSlot>(&LB_VIP_TABLE, base + i).map(|s| unsafe { &*s })
    })
}

/// The backend the ring gives this flow.
#[inline(always)]
pub fn pick(t: &Tuple, vip: &Vip) -> Result<BackendId, Reason> {
    let sport = if vip.flags & vip_flags::HASH_SRC_PORT != 0 {
        t.sport
    } else {
        0
    };
    // The ring and its size in one load-acquire: the ring's slots, written
    // before the agent's store-release of the word, are read after it.
    let Some(w) = elem::<_, u64>(&LB_RING_WORDS, vip.id) else {
        return Err(Reason::DropInternal);
    };
    // SAFETY: an aligned word of the ring-word map.
    let word = unsafe { atomic_load::<u64, { AtomicOrdering::Acquire }>(w) };
    let size = ring_word_size(word);
    if size == 0 {
        return Err(Reason::DropNoBackend);
    }
    let slot = ring_slot(flow_hash(&t.src, sport), size);
    let ring = ring_index(vip.id, ring_word_which(word));
    let Some(pair) =
        elem::<_, c_void>(&LB_RINGS, ring).and_then(|inner| elem_of::<RingPair>(inner, slot >> 1))
    else {
        return Err(Reason::DropNoBackend);
    };
    // SAFETY: an element of the ring map.
    let id = unsafe { (*pair)[(slot & 1) as usize] };
    if id == NO_BACKEND {
        return Err(Reason::DropNoBackend);
    }
    // The agent takes a backend out of the ring before it marks it down, so
    // this only fails in a race with a removal: drop rather than misroute.
    match backend(id) {
        Some(b) if b.state == state::UP => Ok(id),
        _ => Err(Reason::DropNoBackend),
    }
}

/// The backend entry packets read now: a load-acquire of the entry's
/// `active`, then that copy (written before the agent's store-release).
#[inline(always)]
pub fn backend(id: BackendId) -> Option<&'static Backend> {
    let e = elem::<_, BackendEntry>(&LB_BACKENDS, id)?;
    // SAFETY: `e` points to an entry of the backend map; `active` is aligned.
    unsafe {
        let active = atomic_load::<u32, { AtomicOrdering::Acquire }>(&raw const (*e).active);
        Some(&(*e).copies[(active & 1) as usize])
    }
}

#[inline(always)]
pub fn count<const N: usize>(map: &PerCpuArray<Counters, N>, idx: u32, bytes: u64, new_flow: bool) {
    if let Some(c) = elem::<_, Counters>(map, idx) {
        // SAFETY: this CPU's slot; nothing else writes it during this run.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
            (*c).new_flows += new_flow as u64;
        }
    }
}
