//! DR forwarding: the IP packet is untouched; only the Ethernet addresses change.

use core::ptr::write_volatile;

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{abi::Backend, consts::Reason};

use crate::{
    maps::LB_TX_PORTS,
    parse::{EthHdr, ptr_at},
    verdict::Verdict,
};

/// Rewrites the MACs to `be`'s next hop and sends the frame: `XDP_TX` when
/// the backend sits behind the ingress interface, a devmap redirect otherwise.
/// `icmp` names the verdict for an ICMP error sent after its flow.
#[inline(always)]
pub fn forward(ctx: &XdpContext, be: &Backend, icmp: bool) -> Verdict {
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return Verdict::drop(Reason::DropInternal);
    };
    set_macs(eth, be);
    if be.ifindex as usize == ctx.ingress_ifindex() {
        return Verdict {
            action: xdp_action::XDP_TX,
            reason: if icmp {
                Reason::IcmpForwarded
            } else {
                Reason::Tx
            },
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

/// Writes `be`'s next-hop MACs into the Ethernet header as six 2-byte stores.
/// (A plain array assignment compiles to a call to compiler_builtins'
/// `memmove`, whose pointer subtraction the verifier refuses without
/// `CAP_PERFMON`; 2 bytes is the alignment both sides are known to have.)
#[inline(always)]
fn set_macs(eth: *mut EthHdr, be: &Backend) {
    // The header's dst and src, and the backend's dst_mac and src_mac, are
    // each 12 contiguous bytes in that order.
    const _: () = assert!(core::mem::offset_of!(EthHdr, src) == 6);
    const _: () = assert!(
        core::mem::offset_of!(Backend, src_mac) == core::mem::offset_of!(Backend, dst_mac) + 6
    );
    const _: () = assert!(core::mem::offset_of!(Backend, dst_mac) % 2 == 0);
    let from = be.dst_mac.as_ptr().cast::<u16>();
    let to = eth.cast::<u16>();
    let mut i = 0;
    while i < 6 {
        // SAFETY: `eth` was bounds-checked for a whole Ethernet header (14
        // bytes, 2-byte aligned like every packet header here); `from` covers
        // the backend's 12 MAC bytes at a 2-byte-aligned offset of the entry.
        unsafe { write_volatile(to.add(i), from.add(i).read()) };
        i += 1;
    }
}
