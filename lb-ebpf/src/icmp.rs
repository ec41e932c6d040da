//! ICMP to a VIP: errors that quote a VIP flow go to that flow's backend
//! (Path MTU discovery through the LB, as Katran does); everything else
//! (echo, neighbour discovery) is the LB host's to answer.

use aya_ebpf::programs::XdpContext;
use lb_common::{
    abi::Addr,
    consts::{Reason, ipproto, state},
};

use crate::{
    flow::{backend, config, count, find_vip, flow_find, pick},
    forward::forward,
    maps::{LB_BE_STATS, LB_VIP_STATS},
    parse::*,
    pipeline::reject,
    verdict::{Layout, Tuple, Verdict},
};

/// ICMP error types that quote the packet they are about (RFC 792).
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETERPROB: u8 = 12;
/// ICMPv6 error types 1..=4 (RFC 4443 §3).
const ICMPV6_ERROR_MAX: u8 = 4;

#[inline(always)]
pub fn icmp4(ctx: &XdpContext, at: &Layout, dst: &Addr) -> Verdict {
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
    if ip.proto != ipproto::TCP && ip.proto != ipproto::UDP {
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
    to_flow(ctx, at, &t)
}

#[inline(always)]
pub fn icmp6(ctx: &XdpContext, at: &Layout, dst: &Addr) -> Verdict {
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
    if ip.next_hdr != ipproto::TCP && ip.next_hdr != ipproto::UDP {
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
    to_flow(ctx, at, &t)
}

/// Sends an ICMP error to the backend of the flow it quotes, without
/// creating a flow.
#[inline(always)]
fn to_flow(ctx: &XdpContext, at: &Layout, t: &Tuple) -> Verdict {
    let cfg = config();
    let Some(vip) = find_vip(&t.dst, t.dport, t.proto, &cfg) else {
        return Verdict::pass(Reason::PassIcmp);
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
