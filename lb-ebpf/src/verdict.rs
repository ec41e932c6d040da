//! What every stage ends with: an XDP action and the [`Reason`] it is counted under.

use aya_ebpf::bindings::xdp_action;
use lb_common::{abi::Addr, consts::Reason};

/// What to do with the packet, and why.
pub struct Verdict {
    pub action: u32,
    pub reason: Reason,
}

impl Verdict {
    #[inline(always)]
    pub const fn pass(reason: Reason) -> Self {
        Verdict {
            action: xdp_action::XDP_PASS,
            reason,
        }
    }

    #[inline(always)]
    pub const fn drop(reason: Reason) -> Self {
        Verdict {
            action: xdp_action::XDP_DROP,
            reason,
        }
    }
}

/// A parsed client→VIP 5-tuple (IPv4 addresses in mapped form).
pub struct Tuple {
    pub v6: bool,
    pub src: Addr,
    pub dst: Addr,
    /// Network order.
    pub sport: u16,
    /// Network order.
    pub dport: u16,
    pub proto: u8,
}

/// Where the L3 and L4 headers are, and how long the IP packet claims to be.
pub struct Layout {
    pub l3: usize,
    pub l4: usize,
    pub ip_len: usize,
    /// IPv4 header length in words (its checksum gets verified); 0 for IPv6.
    pub ihl: usize,
}
