//! DR forwarding: the IP packet is untouched; only the Ethernet addresses change.

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
    // SAFETY: `ptr_at` bounds-checked the Ethernet header.
    unsafe {
        (*eth).dst = be.dst_mac;
        (*eth).src = be.src_mac;
    }
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
