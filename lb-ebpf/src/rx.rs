//! Whether a frame to a VIP was sent to this node: to the ingress
//! interface's own MAC, or to a VRRP virtual MAC held here
//! (`lb_common::rx` says why a backup must not forward the rest).

use aya_ebpf::programs::XdpContext;
use lb_common::rx::{RxMac, VmacSet, vmac_of};

use crate::maps::{LB_RX_MACS, LB_VMACS, elem};

/// `dst`, the frame's destination MAC, is this node's on the ingress
/// interface. An interface the loader has not registered is not checked.
#[inline(always)]
pub fn sent_to_us(ctx: &XdpContext, dst: &[u8; 6]) -> bool {
    let ifindex = ctx.ingress_ifindex() as u32;
    let Some(own) = elem::<_, RxMac>(&LB_RX_MACS, ifindex) else {
        return true;
    };
    // SAFETY: a value of the map, 8 bytes.
    if same_mac(unsafe { &(*own).mac }, dst) {
        return true;
    }
    let Some((vrid, ipv6)) = vmac_of(dst) else {
        return false;
    };
    elem::<_, VmacSet>(&LB_VMACS, ifindex).is_some_and(|set| {
        // SAFETY: a value of the map.
        unsafe { &*set }.holds(vrid, ipv6)
    })
}

/// Byte by byte: an array `==` may become a `memcmp` call, which BPF lacks.
#[inline(always)]
fn same_mac(a: &[u8; 6], b: &[u8; 6]) -> bool {
    (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5])
        == 0
}
