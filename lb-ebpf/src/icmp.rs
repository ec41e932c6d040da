//! ICMP to a VIP address. Errors that quote a packet a VIP sent go to the
//! backend of that flow (Path MTU discovery through the LB, as Katran does);
//! everything else that is not an error (echo, neighbour discovery) is the LB
//! host's to answer. ICMP to other addresses is the host's business
//! ([`Reason::PassNotVip`]), like any other packet.
//!
//! Nothing of an ICMP message is forwarded before it is checked: the outer IP
//! header as for any VIP packet, the ICMP header inside the IP packet, and
//! the quoted header — sent from this very VIP address, from a VIP's port and
//! protocol. What fails is dropped and counted (docs/datapath.md). The ICMP
//! checksum, over the whole message, is left to the backend's stack.

use aya_ebpf::programs::XdpContext;
use lb_common::{
    abi::Addr,
    consts::{Reason, ipproto, state},
};

use crate::{
    flow::{backend, config, count, find_vip, flow_find, is_vip_addr, pick},
    forward::forward,
    maps::{LB_BE_STATS, LB_VIP_STATS},
    parse::*,
    pipeline::ip_valid,
    verdict::{Layout, Tuple, Verdict},
};

/// ICMP error types that quote the packet they are about (RFC 792).
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETERPROB: u8 = 12;
/// ICMPv6 error types 1..=4 (RFC 4443 §3).
const ICMPV6_ERROR_MAX: u8 = 4;

/// Checks shared by both families: `dst` carries a VIP, the outer IP packet
/// is sound, and its ICMP header lies inside it. Returns the ICMP header.
#[inline(always)]
fn outer(ctx: &XdpContext, at: &Layout, dst: &Addr) -> Result<IcmpHdr, Verdict> {
    if !is_vip_addr(dst) {
        return Err(Verdict::pass(Reason::PassNotVip));
    }
    if !ip_valid(ctx, at) {
        return Err(Verdict::drop(Reason::DropMalformedIp));
    }
    match read::<IcmpHdr>(ctx, at.l4) {
        Some(h) if at.l4 + size_of::<IcmpHdr>() <= at.l3 + at.ip_len => Ok(h),
        _ => Err(Verdict::drop(Reason::DropIcmpMalformed)),
    }
}

/// The quoted TCP/UDP ports at `off`, inside the outer IP packet.
#[inline(always)]
fn quoted_ports(ctx: &XdpContext, at: &Layout, off: usize) -> Result<Ports, Verdict> {
    match read::<Ports>(ctx, off) {
        Some(p) if off + size_of::<Ports>() <= at.l3 + at.ip_len => Ok(p),
        _ => Err(Verdict::drop(Reason::DropIcmpMalformed)),
    }
}

#[inline(always)]
pub fn icmp4(ctx: &XdpContext, at: &Layout, dst: &Addr) -> Verdict {
    let icmp = match outer(ctx, at, dst) {
        Ok(h) => h,
        Err(v) => return v,
    };
    if !matches!(
        icmp.kind,
        ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETERPROB
    ) {
        return Verdict::pass(Reason::PassIcmp);
    }
    let inner = at.l4 + size_of::<IcmpHdr>();
    let ip = match read::<Ipv4Hdr>(ctx, inner) {
        Some(ip) if inner + size_of::<Ipv4Hdr>() <= at.l3 + at.ip_len => ip,
        _ => return Verdict::drop(Reason::DropIcmpMalformed),
    };
    let ihl = (ip.version_ihl & 0x0f) as usize;
    // A sane quote: IPv4, and sent from the address the error came back to.
    if ip.version_ihl >> 4 != 4 || ihl < 5 || Addr::from_v4_word(ip.src) != *dst {
        return Verdict::drop(Reason::DropIcmpMalformed);
    }
    // VIPs are TCP/UDP; a later fragment quotes no ports.
    if (ip.proto != ipproto::TCP && ip.proto != ipproto::UDP)
        || u16::from_be(ip.frag_off) & IP_OFFSET != 0
    {
        return Verdict::drop(Reason::DropIcmpNotVipFlow);
    }
    let ports = match quoted_ports(ctx, at, inner + ihl * 4) {
        Ok(p) => p,
        Err(v) => return v,
    };
    // The quoted packet went VIP → client; the flow is client → VIP.
    let t = Tuple {
        v6: false,
        src: Addr::from_v4_word(ip.dst),
        dst: *dst,
        sport: ports.dst,
        dport: ports.src,
        proto: ip.proto,
    };
    to_flow(ctx, at, &t)
}

#[inline(always)]
pub fn icmp6(ctx: &XdpContext, at: &Layout, dst: &Addr) -> Verdict {
    let icmp = match outer(ctx, at, dst) {
        Ok(h) => h,
        Err(v) => return v,
    };
    if icmp.kind == 0 || icmp.kind > ICMPV6_ERROR_MAX {
        return Verdict::pass(Reason::PassIcmp);
    }
    let inner = at.l4 + size_of::<IcmpHdr>();
    let ip = match read::<Ipv6Hdr>(ctx, inner) {
        Some(ip) if inner + size_of::<Ipv6Hdr>() <= at.l3 + at.ip_len => ip,
        _ => return Verdict::drop(Reason::DropIcmpMalformed),
    };
    if (ip.vtc_flow & 0xf0) != 0x60 || Addr(ip.src) != *dst {
        return Verdict::drop(Reason::DropIcmpMalformed);
    }
    if ip.next_hdr != ipproto::TCP && ip.next_hdr != ipproto::UDP {
        return Verdict::drop(Reason::DropIcmpNotVipFlow);
    }
    let ports = match quoted_ports(ctx, at, inner + size_of::<Ipv6Hdr>()) {
        Ok(p) => p,
        Err(v) => return v,
    };
    let t = Tuple {
        v6: true,
        src: Addr(ip.dst),
        dst: *dst,
        sport: ports.dst,
        dport: ports.src,
        proto: ip.next_hdr,
    };
    to_flow(ctx, at, &t)
}

/// Sends an ICMP error to the backend of the flow it quotes, without
/// creating a flow; drops it when no VIP sent the quoted packet.
#[inline(always)]
fn to_flow(ctx: &XdpContext, at: &Layout, t: &Tuple) -> Verdict {
    let cfg = config();
    let Some(vip) = find_vip(&t.dst, t.dport, t.proto, &cfg) else {
        return Verdict::drop(Reason::DropIcmpNotVipFlow);
    };
    let found = flow_find(t, &cfg);
    let known = found.is_found()
        && backend(found.flow.backend).is_some_and(|b| state::keeps_flows(b.state));
    let id = if known {
        found.flow.backend
    } else {
        match pick(t, &vip) {
            Ok(id) => id,
            Err(r) => return Verdict::drop(r),
        }
    };
    let Some(be) = backend(id) else {
        return Verdict::drop(Reason::DropInternal);
    };
    let bytes = at.ip_len as u64;
    count(&LB_VIP_STATS, vip.id, bytes, false);
    count(&LB_BE_STATS, id, bytes, false);
    forward(ctx, be, true)
}
