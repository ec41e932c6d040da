//! The per-packet pipeline: L2 → L3 → VIP → flow/Maglev → forward.
//!
//! Every stage either hands on what it parsed or ends with a [`Verdict`] that
//! names its [`Reason`]; the entry point counts the reason. The policy:
//!
//! | packet | verdict |
//! |---|---|
//! | not IPv4/IPv6 (ARP, ...) or a second VLAN tag | pass |
//! | too short to read the addresses | pass |
//! | no VIP for (dst, dport, proto), nor (dst, 0, proto) | pass, untouched |
//! | ICMP echo/NDP/other non-errors | pass (the LB host owns the VIP and answers) |
//! | ICMP error quoting a VIP flow | forwarded to that flow's backend |
//! | fragment to a VIP address | drop (no ports to balance non-first fragments on) |
//! | bad IP header / truncated L4 to a VIP (address) | drop |
//! | VIP with no usable backend | drop |
//! | otherwise | MAC rewrite, `XDP_TX` or devmap redirect |

use aya_ebpf::{
    bindings::xdp_action, btf_maps::PerCpuArray, helpers::bpf_ktime_get_coarse_ns,
    programs::XdpContext,
};
use aya_log_ebpf::debug;
use lb_common::{
    abi::{
        Addr, Backend, BackendId, Counters, FLOW_ATIME_GRANULARITY_NS, Flow, FlowKeyV4, FlowKeyV6,
        Vip, VipKey,
    },
    consts::{NO_BACKEND, Reason, config_flags, flow_flags, state, vip_flags},
    hash::{flow_hash, ring_slot},
};

use crate::{
    maps::{
        LB_BACKENDS, LB_BE_STATS, LB_CONFIG, LB_FLOWS_V4, LB_FLOWS_V6, LB_RINGS, LB_TX_PORTS,
        LB_VIP_ADDRS, LB_VIP_STATS, LB_VIPS,
    },
    parse::*,
};

/// What to do with the packet, and why.
pub struct Verdict {
    pub action: u32,
    pub reason: Reason,
}

impl Verdict {
    #[inline(always)]
    const fn pass(reason: Reason) -> Self {
        Verdict {
            action: xdp_action::XDP_PASS,
            reason,
        }
    }

    #[inline(always)]
    const fn drop(reason: Reason) -> Self {
        Verdict {
            action: xdp_action::XDP_DROP,
            reason,
        }
    }
}

/// A parsed client→VIP 5-tuple (IPv4 addresses in mapped form) and where its
/// headers sit.
struct Tuple {
    v6: bool,
    src: Addr,
    dst: Addr,
    sport: u16,
    dport: u16,
    proto: u8,
}

/// Where the L3 and L4 headers are, and how long the IP packet claims to be.
struct Layout {
    l3: usize,
    l4: usize,
    ip_len: usize,
}

#[inline(always)]
pub fn process(ctx: &XdpContext) -> Verdict {
    let Some(eth) = read::<EthHdr>(ctx, 0) else {
        return Verdict::pass(Reason::PassUnparsed);
    };
    let mut proto = u16::from_be(eth.proto);
    let mut l3 = ETH_HLEN;
    if proto == ETH_P_8021Q {
        let Some(vlan) = read::<VlanHdr>(ctx, ETH_HLEN) else {
            return Verdict::pass(Reason::PassUnparsed);
        };
        proto = u16::from_be(vlan.proto);
        l3 += size_of::<VlanHdr>();
    }
    match proto {
        ETH_P_IP => ipv4(ctx, l3),
        ETH_P_IPV6 => ipv6(ctx, l3),
        _ => Verdict::pass(Reason::PassNotIp),
    }
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, l3: usize) -> Verdict {
    let Some(ip) = read::<Ipv4Hdr>(ctx, l3) else {
        return Verdict::pass(Reason::PassUnparsed);
    };
    let dst = Addr::from_v4_word(ip.dst);
    let ihl = (ip.version_ihl & 0x0f) as usize;
    if ip.version_ihl >> 4 != 4 || ihl < 5 {
        return reject(ctx, &dst, Reason::DropMalformedIp);
    }
    if u16::from_be(ip.frag_off) & (IP_MF | IP_OFFSET) != 0 {
        return reject(ctx, &dst, Reason::DropFragment);
    }
    let at = Layout {
        l3,
        l4: l3 + ihl * 4,
        ip_len: u16::from_be(ip.tot_len) as usize,
    };
    match ip.proto {
        IPPROTO_TCP | IPPROTO_UDP => {}
        IPPROTO_ICMP => return icmp4(ctx, &at, &dst),
        _ => return Verdict::pass(Reason::PassNotVip),
    }
    let Some(ports) = read::<Ports>(ctx, at.l4) else {
        return reject(ctx, &dst, Reason::DropMalformedL4);
    };
    let t = Tuple {
        v6: false,
        src: Addr::from_v4_word(ip.src),
        dst,
        sport: ports.src,
        dport: ports.dst,
        proto: ip.proto,
    };
    let Some(vip) = find_vip(&t.dst, t.dport, t.proto) else {
        return Verdict::pass(Reason::PassNotVip);
    };
    // Ours: now the whole header must be right before anything is forwarded.
    if at.ip_len < ihl * 4
        || l3 + at.ip_len > ctx.data_end() - ctx.data()
        || !ipv4_header_ok(ctx, l3, ihl)
    {
        return Verdict::drop(Reason::DropMalformedIp);
    }
    balance(ctx, &at, &t, &vip)
}

/// IPv6 extension headers walked before giving up (hop-by-hop, routing, dest opts).
const MAX_EXT_HEADERS: usize = 4;

#[inline(always)]
fn ipv6(ctx: &XdpContext, l3: usize) -> Verdict {
    let Some(ip) = read::<Ipv6Hdr>(ctx, l3) else {
        return Verdict::pass(Reason::PassUnparsed);
    };
    let dst = Addr(ip.dst);
    // The version is the high nibble of the first byte (the lowest byte of the
    // little-endian word).
    if (ip.vtc_flow & 0xf0) != 0x60 {
        return reject(ctx, &dst, Reason::DropMalformedIp);
    }
    let mut next = ip.next_hdr;
    let mut l4 = l3 + size_of::<Ipv6Hdr>();
    let mut i = 0;
    while i < MAX_EXT_HEADERS {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let Some(ext) = read::<Ipv6ExtHdr>(ctx, l4) else {
                    return reject(ctx, &dst, Reason::DropMalformedIp);
                };
                next = ext.next_hdr;
                l4 += (ext.hdr_len as usize + 1) * 8;
            }
            IPPROTO_FRAGMENT => return reject(ctx, &dst, Reason::DropFragment),
            _ => break,
        }
        i += 1;
    }
    let at = Layout {
        l3,
        l4,
        ip_len: size_of::<Ipv6Hdr>() + u16::from_be(ip.payload_len) as usize,
    };
    match next {
        IPPROTO_TCP | IPPROTO_UDP => {}
        IPPROTO_ICMPV6 => return icmp6(ctx, &at, &dst),
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT => {
            return Verdict::pass(Reason::PassUnparsed);
        }
        _ => return Verdict::pass(Reason::PassNotVip),
    }
    let Some(ports) = read::<Ports>(ctx, at.l4) else {
        return reject(ctx, &dst, Reason::DropMalformedL4);
    };
    let t = Tuple {
        v6: true,
        src: Addr(ip.src),
        dst,
        sport: ports.src,
        dport: ports.dst,
        proto: next,
    };
    let Some(vip) = find_vip(&t.dst, t.dport, t.proto) else {
        return Verdict::pass(Reason::PassNotVip);
    };
    if at.l4 > l3 + at.ip_len || l3 + at.ip_len > ctx.data_end() - ctx.data() {
        return Verdict::drop(Reason::DropMalformedIp);
    }
    balance(ctx, &at, &t, &vip)
}

/// A packet for `dst` that we cannot balance: ours to drop when `dst` carries a
/// VIP, the host's business otherwise.
#[inline(always)]
fn reject(ctx: &XdpContext, dst: &Addr, reason: Reason) -> Verdict {
    if LB_VIP_ADDRS.get_ptr(dst).is_some() {
        debug!(ctx, "drop {}", reason as u32);
        Verdict::drop(reason)
    } else {
        Verdict::pass(Reason::PassNotVip)
    }
}

#[inline(always)]
fn find_vip(dst: &Addr, dport: u16, proto: u8) -> Option<Vip> {
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

/// The L4 header must be complete and inside the IP packet before we forward.
#[inline(always)]
fn l4_ok(ctx: &XdpContext, at: &Layout, proto: u8) -> Option<u8> {
    let ip_end = at.l3 + at.ip_len;
    if proto == IPPROTO_TCP {
        let tcp = read::<TcpHdr>(ctx, at.l4)?;
        let doff = (tcp.doff >> 4) as usize * 4;
        if doff < size_of::<TcpHdr>() || at.l4 + doff > ip_end {
            return None;
        }
        Some(tcp.flags)
    } else {
        let udp = read::<UdpHdr>(ctx, at.l4)?;
        let len = u16::from_be(udp.len) as usize;
        if len < size_of::<UdpHdr>() || at.l4 + len > ip_end {
            return None;
        }
        Some(0)
    }
}

#[inline(always)]
fn balance(ctx: &XdpContext, at: &Layout, t: &Tuple, vip: &Vip) -> Verdict {
    let Some(tcp_flags) = l4_ok(ctx, at, t.proto) else {
        return Verdict::drop(Reason::DropMalformedL4);
    };
    // SAFETY: a helper without arguments or side effects.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let syn = t.proto == IPPROTO_TCP && tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
    let mut new_flow = false;

    // A SYN starts a new connection: it goes where the ring says now (Katran
    // does the same), which also keeps a reused port from sticking to a drained
    // backend. Anything else follows its flow while that backend keeps flows.
    let existing = if syn { None } else { flow_lookup(t) };
    let id = match existing {
        Some(flow) => {
            // SAFETY: a live LRU value pointer; racing writers only ever store
            // whole fields of the same flow.
            let flow = unsafe { &mut *flow };
            if backend(flow.backend).is_some_and(|b| state::keeps_flows(b.state)) {
                if now.wrapping_sub(flow.atime) > FLOW_ATIME_GRANULARITY_NS {
                    flow.atime = now;
                }
                if tcp_flags & TCP_FIN != 0 {
                    flow.flags |= flow_flags::FIN;
                }
                if tcp_flags & TCP_RST != 0 {
                    flow.flags |= flow_flags::RST;
                }
                flow.backend
            } else {
                // Its backend went down or was removed: re-hash (LVS
                // expire_nodest_conn, Katran's behaviour on real removal).
                let id = match pick(t, vip) {
                    Ok(id) => id,
                    Err(r) => return Verdict::drop(r),
                };
                flow.backend = id;
                flow.flags = 0;
                flow.atime = now;
                new_flow = true;
                id
            }
        }
        None => {
            let id = match pick(t, vip) {
                Ok(id) => id,
                Err(r) => return Verdict::drop(r),
            };
            flow_insert(
                t,
                &Flow {
                    backend: id,
                    flags: 0,
                    atime: now,
                },
            );
            new_flow = true;
            debug!(ctx, "new flow vip {} -> backend {}", vip.id, id);
            id
        }
    };
    let Some(be) = backend(id) else {
        return Verdict::drop(Reason::DropInternal);
    };
    let bytes = at.ip_len as u64;
    count(&LB_VIP_STATS, vip.id, bytes, new_flow);
    count(&LB_BE_STATS, id, bytes, new_flow);
    forward(ctx, &be, false)
}

/// The backend the ring gives this flow.
#[inline(always)]
fn pick(t: &Tuple, vip: &Vip) -> Result<BackendId, Reason> {
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
fn backend(id: BackendId) -> Option<Backend> {
    LB_BACKENDS.get(id).copied()
}

#[inline(always)]
fn flow_lookup(t: &Tuple) -> Option<*mut Flow> {
    if t.v6 {
        LB_FLOWS_V6.get_ptr_mut(key_v6(t))
    } else {
        LB_FLOWS_V4.get_ptr_mut(key_v4(t))
    }
}

#[inline(always)]
fn flow_insert(t: &Tuple, flow: &Flow) {
    // A full LRU evicts its oldest flow; an error here only costs stickiness.
    let _ = if t.v6 {
        LB_FLOWS_V6.insert(key_v6(t), flow, 0)
    } else {
        LB_FLOWS_V4.insert(key_v4(t), flow, 0)
    };
}

#[inline(always)]
fn key_v4(t: &Tuple) -> FlowKeyV4 {
    FlowKeyV4 {
        src: t.src.0[3],
        dst: t.dst.0[3],
        sport: t.sport,
        dport: t.dport,
        proto: t.proto,
        _pad: [0; 3],
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
        _pad: [0; 3],
    }
}

#[inline(always)]
fn count<const N: usize>(map: &PerCpuArray<Counters, N>, idx: u32, bytes: u64, new_flow: bool) {
    if let Some(c) = map.get_ptr_mut(idx) {
        // SAFETY: this CPU's slot; nothing else writes it during this run.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
            (*c).new_flows += new_flow as u64;
        }
    }
}

/// DR: the IP packet is untouched; only the Ethernet addresses change.
#[inline(always)]
fn forward(ctx: &XdpContext, be: &Backend, icmp: bool) -> Verdict {
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return Verdict::drop(Reason::DropInternal);
    };
    // SAFETY: `ptr_at` bounds-checked the Ethernet header.
    unsafe {
        (*eth).dst = be.dst_mac;
        (*eth).src = be.src_mac;
    }
    let done = if icmp {
        Reason::IcmpForwarded
    } else {
        Reason::Tx
    };
    if be.ifindex as usize == ctx.ingress_ifindex() {
        return Verdict {
            action: xdp_action::XDP_TX,
            reason: done,
        };
    }
    match LB_TX_PORTS.redirect(be.ifindex, 0) {
        Ok(action) => Verdict {
            action,
            reason: if icmp {
                Reason::IcmpForwarded
            } else {
                Reason::Redirect
            },
        },
        Err(_) => Verdict::drop(Reason::DropInternal),
    }
}

/// ICMP error types that quote the packet they are about (RFC 792).
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETERPROB: u8 = 12;
/// ICMPv6 error types 1..=4 (RFC 4443 §3).
const ICMPV6_ERROR_MAX: u8 = 4;

#[inline(always)]
fn icmp4(ctx: &XdpContext, at: &Layout, dst: &Addr) -> Verdict {
    let Some(icmp) = read::<IcmpHdr>(ctx, at.l4) else {
        return reject(ctx, dst, Reason::DropMalformedL4);
    };
    if !matches!(
        icmp.kind,
        ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETERPROB
    ) {
        return Verdict::pass(Reason::PassIcmp);
    }
    let inner = at.l4 + size_of::<IcmpHdr>();
    let Some(ip) = read::<Ipv4Hdr>(ctx, inner) else {
        return reject(ctx, dst, Reason::DropMalformedL4);
    };
    let ihl = (ip.version_ihl & 0x0f) as usize;
    if ip.version_ihl >> 4 != 4 || ihl < 5 {
        return reject(ctx, dst, Reason::DropMalformedL4);
    }
    if ip.proto != IPPROTO_TCP && ip.proto != IPPROTO_UDP {
        return Verdict::pass(Reason::PassIcmp);
    }
    let Some(ports) = read::<Ports>(ctx, inner + ihl * 4) else {
        return reject(ctx, dst, Reason::DropMalformedL4);
    };
    // The quoted packet went VIP → client; the flow is client → VIP.
    let t = Tuple {
        v6: false,
        src: Addr::from_v4_word(ip.dst),
        dst: Addr::from_v4_word(ip.src),
        sport: ports.dst,
        dport: ports.src,
        proto: ip.proto,
    };
    icmp_to_flow(ctx, at, &t)
}

#[inline(always)]
fn icmp6(ctx: &XdpContext, at: &Layout, dst: &Addr) -> Verdict {
    let Some(icmp) = read::<IcmpHdr>(ctx, at.l4) else {
        return reject(ctx, dst, Reason::DropMalformedL4);
    };
    if icmp.kind == 0 || icmp.kind > ICMPV6_ERROR_MAX {
        return Verdict::pass(Reason::PassIcmp);
    }
    let inner = at.l4 + size_of::<IcmpHdr>();
    let Some(ip) = read::<Ipv6Hdr>(ctx, inner) else {
        return reject(ctx, dst, Reason::DropMalformedL4);
    };
    if ip.next_hdr != IPPROTO_TCP && ip.next_hdr != IPPROTO_UDP {
        return Verdict::pass(Reason::PassIcmp);
    }
    let Some(ports) = read::<Ports>(ctx, inner + size_of::<Ipv6Hdr>()) else {
        return reject(ctx, dst, Reason::DropMalformedL4);
    };
    let t = Tuple {
        v6: true,
        src: Addr(ip.dst),
        dst: Addr(ip.src),
        sport: ports.dst,
        dport: ports.src,
        proto: ip.next_hdr,
    };
    icmp_to_flow(ctx, at, &t)
}

/// Sends an ICMP error to the backend of the flow it quotes (e.g. "fragmentation
/// needed" for PMTU discovery), without creating a flow.
#[inline(always)]
fn icmp_to_flow(ctx: &XdpContext, at: &Layout, t: &Tuple) -> Verdict {
    let Some(vip) = find_vip(&t.dst, t.dport, t.proto) else {
        return Verdict::pass(Reason::PassIcmp);
    };
    let known = flow_lookup(t)
        // SAFETY: a live LRU value pointer, read once.
        .map(|f| unsafe { (*f).backend })
        .filter(|&id| backend(id).is_some_and(|b| state::keeps_flows(b.state)));
    let id = match known {
        Some(id) => id,
        None => match pick(t, &vip) {
            Ok(id) => id,
            Err(r) => return Verdict::drop(r),
        },
    };
    let Some(be) = backend(id) else {
        return Verdict::drop(Reason::DropInternal);
    };
    let bytes = (ctx.data_end() - ctx.data() - at.l3) as u64;
    count(&LB_VIP_STATS, vip.id, bytes, false);
    count(&LB_BE_STATS, id, bytes, false);
    forward(ctx, &be, true)
}
