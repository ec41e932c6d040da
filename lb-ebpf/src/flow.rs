//! Lookups: the VIP address pre-filter, VIPs, the flow tables, the Maglev
//! ring, backends, and the counters.

use aya_ebpf::btf_maps::PerCpuArray;
use lb_common::{
    abi::{
        Addr, Backend, BackendId, Counters, Flow, FlowKeyV4, FlowKeyV6, Vip, VipKey, vip_filter_bit,
    },
    consts::{NO_BACKEND, Reason, config_flags, flow_flags, state, vip_flags},
    hash::{flow_hash, ring_slot},
};

use crate::{
    maps::{
        LB_BACKENDS, LB_CONFIG, LB_FLOWS_V4, LB_FLOWS_V6, LB_RINGS, LB_VIP_ADDRS, LB_VIP_FILTER,
        LB_VIPS,
    },
    parse::{TCP_FIN, TCP_RST},
    verdict::Tuple,
};

/// The VIP address pre-filter: `false` proves `dst` carries no VIP.
#[inline(always)]
pub fn maybe_vip(dst: &Addr) -> bool {
    let (word, mask) = vip_filter_bit(dst);
    LB_VIP_FILTER.get(word).is_some_and(|w| *w & mask != 0)
}

/// Whether `dst` carries a VIP (exact; off the fast path).
#[inline(always)]
pub fn is_vip_addr(dst: &Addr) -> bool {
    LB_VIP_ADDRS.get_ptr(dst).is_some()
}

/// The VIP for (dst, dport, proto), falling back to the all-ports VIP of the
/// address when one exists.
#[inline(always)]
pub fn find_vip(dst: &Addr, dport: u16, proto: u8) -> Option<Vip> {
    let mut key = VipKey {
        addr: *dst,
        port: dport,
        proto,
        _pad: 0,
    };
    if let Some(v) = LB_VIPS.get_ptr(key) {
        // SAFETY: a non-null map value pointer, valid for this program run.
        return Some(unsafe { *v });
    }
    let wildcard = LB_CONFIG
        .get(0)
        .is_some_and(|c| c.flags & config_flags::WILDCARD_VIPS != 0);
    if !wildcard {
        return None;
    }
    key.port = 0;
    // SAFETY: as above.
    LB_VIPS.get_ptr(key).map(|v| unsafe { *v })
}

/// The backend the ring gives this flow.
#[inline(always)]
pub fn pick(t: &Tuple, vip: &Vip) -> Result<BackendId, Reason> {
    let sport = if vip.flags & vip_flags::HASH_SRC_PORT != 0 {
        t.sport
    } else {
        0
    };
    let slot = ring_slot(flow_hash(&t.src, sport), vip.ring_size);
    let Some(id) = LB_RINGS.get_value(vip.id, &slot) else {
        return Err(Reason::DropNoBackend);
    };
    let id = *id;
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

#[inline(always)]
pub fn backend(id: BackendId) -> Option<Backend> {
    LB_BACKENDS.get(id).copied()
}

#[inline(always)]
pub fn flow_lookup(t: &Tuple) -> Option<*mut Flow> {
    if t.v6 {
        LB_FLOWS_V6.get_ptr_mut(key_v6(t))
    } else {
        LB_FLOWS_V4.get_ptr_mut(key_v4(t))
    }
}

#[inline(always)]
pub fn flow_insert(t: &Tuple, flow: &Flow) {
    // A full LRU evicts its oldest flow; an error here only costs stickiness.
    let _ = if t.v6 {
        LB_FLOWS_V6.insert(key_v6(t), flow, 0)
    } else {
        LB_FLOWS_V4.insert(key_v4(t), flow, 0)
    };
}

/// The agent's clock ([`lb_common::abi::Config::now`]).
#[inline(always)]
pub fn clock() -> u64 {
    LB_CONFIG.get(0).map_or(0, |c| c.now as u64)
}

/// Marks a flow seen (one write a second at most) and notes FIN/RST.
#[inline(always)]
pub fn touch(flow: &mut Flow, tcp_flags: u8, now: u64) {
    if flow.atime != now {
        flow.atime = now;
    }
    if tcp_flags & TCP_FIN != 0 {
        flow.flags |= flow_flags::FIN;
    }
    if tcp_flags & TCP_RST != 0 {
        flow.flags |= flow_flags::RST;
    }
}

#[inline(always)]
fn key_v4(t: &Tuple) -> FlowKeyV4 {
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
fn key_v6(t: &Tuple) -> FlowKeyV6 {
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

#[inline(always)]
pub fn count<const N: usize>(map: &PerCpuArray<Counters, N>, idx: u32, bytes: u64, new_flow: bool) {
    if let Some(c) = map.get_ptr_mut(idx) {
        // SAFETY: this CPU's slot; nothing else writes it during this run.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
            (*c).new_flows += new_flow as u64;
        }
    }
}
