//! lb's XDP programs: the load balancer and two trivial helpers.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", allow(internal_features))]

#[cfg(target_arch = "bpf")]
mod flow;
#[cfg(target_arch = "bpf")]
mod forward;
#[cfg(target_arch = "bpf")]
mod icmp;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod parse;
#[cfg(target_arch = "bpf")]
mod pipeline;
#[cfg(target_arch = "bpf")]
mod rx;
#[cfg(target_arch = "bpf")]
mod table;
#[cfg(target_arch = "bpf")]
mod verdict;

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

    use crate::{
        maps::{LB_REASONS, elem},
        pipeline::process,
    };

    /// The load balancer. Counts why it did what it did, then does it.
    #[xdp]
    pub fn lb_xdp(ctx: XdpContext) -> u32 {
        let v = process(&ctx);
        if let Some(n) = elem::<_, u64>(&LB_REASONS, v.reason as u32) {
            // SAFETY: this CPU's counter slot.
            unsafe { *n += 1 };
        }
        v.action
    }

    /// Lets everything through: attached to the peer of a veth that receives
    /// our `XDP_TX`/redirected frames (veth drops them unless its peer runs XDP).
    #[xdp]
    pub fn lb_pass(_ctx: XdpContext) -> u32 {
        xdp_action::XDP_PASS
    }

    /// Bounces everything: the benchmark's timer-overhead baseline.
    #[xdp]
    pub fn lb_tx(_ctx: XdpContext) -> u32 {
        xdp_action::XDP_TX
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        // The verifier rejects any program that can reach this.
        loop {}
    }

    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("lb-ebpf is built for bpfel-unknown-none; run `cargo xtask build-ebpf`");
}
