//! The per-packet pipeline: L2 → L3 → pre-filter → flow table → VIP → Maglev →
//! forward.
//!
//! Every stage either hands on what it parsed or ends with a [`Verdict`] that
//! names its [`Reason`]; the entry point counts the reason.
//!
//! Order, for speed: a one-load bitmap of VIP addresses sends the host's own
//! traffic on at once, before any other check; a frame to a VIP that was
//! sent to another node's MAC is passed next (`crate::rx`); an established
//! flow is found in the flow table and forwarded without a VIP lookup (its
//! backend names its VIP); only a new flow, or one whose backend went away,
//! pays for the VIP lookup and the ring. ICMP and unusual IPv6 headers are
//! handled off that path, after the bitmap and before the flow table.
//!
//! The packet policy (which verdict, counted under which reason) is the table
//! in docs/datapath.md; each `Reason` says what it counts.

use aya_ebpf::programs::XdpContext;
use aya_log_ebpf::debug;
use lb_common::{
    abi::{Addr, Flow},
    consts::{Reason, ipproto, state},
};

use crate::{
    flow::{
        backend, closing_flags, config, count, find_vip, flow_find, flow_insert, is_vip_addr,
        maybe_vip, pick,
    },
    forward::forward,
    icmp::{icmp4, icmp6},
    maps::{LB_BE_STATS, LB_VIP_STATS},
    parse::*,
    rx::sent_to_us,
    table::Found,
    verdict::{Layout, Tuple, Verdict},
};

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
        ETH_P_IP => ipv4(ctx, l3, &eth.dst),
        ETH_P_IPV6 => ipv6(ctx, l3, &eth.dst),
        _ => Verdict::pass(Reason::PassNotIp),
    }
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, l3: usize, mac: &[u8; 6]) -> Verdict {
    let Some(ip) = read::<Ipv4Hdr>(ctx, l3) else {
        return Verdict::pass(Reason::PassUnparsed);
    };
    let dst = Addr::from_v4_word(ip.dst);
    if !maybe_vip(&dst) {
        return Verdict::pass(Reason::PassNotVip);
    }
    if !sent_to_us(ctx, mac) {
        return Verdict::pass(Reason::PassOtherHost);
    }
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
        ihl,
    };
    match ip.proto {
        ipproto::TCP | ipproto::UDP => {}
        ipproto::ICMP => return icmp4(ctx, &at, &dst),
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
    balance(ctx, &at, &t)
}

/// IPv6 extension headers walked (hop-by-hop, routing, destination options);
/// a VIP packet with more is dropped ([`Reason::DropIpv6Ext`]).
const MAX_EXT_HEADERS: usize = 4;

#[inline(always)]
fn ipv6(ctx: &XdpContext, l3: usize, mac: &[u8; 6]) -> Verdict {
    let Some(ip) = read::<Ipv6Hdr>(ctx, l3) else {
        return Verdict::pass(Reason::PassUnparsed);
    };
    let dst = Addr(ip.dst);
    if !maybe_vip(&dst) {
        return Verdict::pass(Reason::PassNotVip);
    }
    if !sent_to_us(ctx, mac) {
        return Verdict::pass(Reason::PassOtherHost);
    }
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
            ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS => {
                let Some(ext) = read::<Ipv6ExtHdr>(ctx, l4) else {
                    return reject(ctx, &dst, Reason::DropMalformedIp);
                };
                next = ext.next_hdr;
                l4 += (ext.hdr_len as usize + 1) * 8;
            }
            _ => break,
        }
        i += 1;
    }
    let at = Layout {
        l3,
        l4,
        ip_len: size_of::<Ipv6Hdr>() + u16::from_be(ip.payload_len) as usize,
        ihl: 0,
    };
    match next {
        ipproto::TCP | ipproto::UDP => {}
        ipproto::ICMPV6 => return icmp6(ctx, &at, &dst),
        ipproto::FRAGMENT => return reject(ctx, &dst, Reason::DropFragment),
        // More headers than we walk, or IPsec: no ports we can see.
        ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS | ipproto::AH | ipproto::ESP => {
            return reject(ctx, &dst, Reason::DropIpv6Ext);
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
    balance(ctx, &at, &t)
}

/// A packet for `dst` (which passed the address bitmap) that we cannot
/// balance: ours to drop when `dst` carries a VIP, the host's business
/// otherwise.
#[inline(always)]
pub fn reject(ctx: &XdpContext, dst: &Addr, reason: Reason) -> Verdict {
    if is_vip_addr(dst) {
        debug!(ctx, "drop {}", reason as u32);
        Verdict::drop(reason)
    } else {
        Verdict::pass(Reason::PassNotVip)
    }
}

/// The IP packet fits the frame and its header is sound: IPv4 total length
/// and checksum, IPv6 payload length covering the extension headers walked.
#[inline(always)]
pub fn ip_valid(ctx: &XdpContext, at: &Layout) -> bool {
    if at.ihl != 0 {
        at.ip_len >= at.ihl * 4
            && fits(ctx, at.l3 + at.ip_len)
            && ipv4_header_ok(ctx, at.l3, at.ihl)
    } else {
        at.l4 <= at.l3 + at.ip_len && fits(ctx, at.l3 + at.ip_len)
    }
}

/// Checks what the fast path has not looked at, before anything of ours is
/// forwarded: the IP packet ([`ip_valid`]), and the TCP/UDP header complete
/// and inside it. Returns the TCP flags (0 for UDP).
#[inline(always)]
fn valid(ctx: &XdpContext, at: &Layout, proto: u8) -> Result<u8, Reason> {
    if !ip_valid(ctx, at) {
        return Err(Reason::DropMalformedIp);
    }
    let ip_end = at.l3 + at.ip_len;
    if proto == ipproto::TCP {
        let tcp = read::<TcpHdr>(ctx, at.l4).ok_or(Reason::DropMalformedL4)?;
        let doff = (tcp.doff >> 4) as usize * 4;
        if doff < size_of::<TcpHdr>() || at.l4 + doff > ip_end {
            return Err(Reason::DropMalformedL4);
        }
        Ok(tcp.flags)
    } else {
        let udp = read::<UdpHdr>(ctx, at.l4).ok_or(Reason::DropMalformedL4)?;
        let len = u16::from_be(udp.len) as usize;
        if len < size_of::<UdpHdr>() || at.l4 + len > ip_end {
            return Err(Reason::DropMalformedL4);
        }
        Ok(0)
    }
}

/// Forwards a TCP/UDP packet to a VIP address: to its flow's backend while that
/// backend keeps flows, else (and for every SYN) to the ring's choice.
#[inline(always)]
fn balance(ctx: &XdpContext, at: &Layout, t: &Tuple) -> Verdict {
    let cfg = config();
    let now = cfg.now as u64;
    // A SYN starts a new connection: it goes where the ring says now (Katran
    // does the same), which also keeps a reused port from sticking to a
    // drained backend. `valid` re-reads the flags with the whole header.
    let syn = t.proto == ipproto::TCP
        && read::<u8>(ctx, at.l4 + 13).is_some_and(|f| f & (TCP_SYN | TCP_ACK) == TCP_SYN);
    let existing = if syn {
        Found::none()
    } else {
        flow_find(t, &cfg)
    };

    if existing.is_found() {
        let flow = existing.flow;
        if let Some(be) = backend(flow.backend)
            && state::keeps_flows(be.state)
        {
            let tcp_flags = match valid(ctx, at, t.proto) {
                Ok(f) => f,
                Err(r) => return Verdict::drop(r),
            };
            existing.touch(now, closing_flags(tcp_flags));
            let bytes = at.ip_len as u64;
            count(&LB_VIP_STATS, be.vip, bytes, false);
            count(&LB_BE_STATS, flow.backend, bytes, false);
            return forward(ctx, be, false);
        }
    }

    let Some(vip) = find_vip(&t.dst, t.dport, t.proto, &cfg) else {
        return Verdict::pass(Reason::PassNotVip);
    };
    let tcp_flags = match valid(ctx, at, t.proto) {
        Ok(f) => f,
        Err(r) => return Verdict::drop(r),
    };
    let id = match pick(t, &vip) {
        Ok(id) => id,
        Err(r) => return Verdict::drop(r),
    };
    let fresh = Flow {
        backend: id,
        flags: closing_flags(tcp_flags),
        atime: now,
    };
    if existing.is_found() {
        // Its backend went down or was removed: re-hash (LVS
        // expire_nodest_conn; Katran does the same when a real goes away).
        existing.replace(&fresh);
    } else {
        flow_insert(t, &fresh, &cfg);
    }
    debug!(ctx, "new flow vip {} -> backend {}", vip.id, id);
    let Some(be) = backend(id) else {
        return Verdict::drop(Reason::DropInternal);
    };
    let bytes = at.ip_len as u64;
    count(&LB_VIP_STATS, vip.id, bytes, true);
    count(&LB_BE_STATS, id, bytes, true);
    forward(ctx, be, false)
}
