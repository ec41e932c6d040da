//! Names and sizes of the data path's maps and programs, and the numeric codes
//! (backend states, VIP flags, verdict reasons) both sides read.

/// The XDP program that load-balances VIP traffic.
pub const PROG_LB: &str = "lb_xdp";
/// A program that only returns `XDP_PASS`: attached to the peer of a veth that
/// receives `XDP_TX`/redirected frames (veth drops them otherwise), and the
/// baseline of `cargo xtask bench xdp` is its sibling [`PROG_TX`].
pub const PROG_PASS: &str = "lb_pass";
/// A program that only returns `XDP_TX`: the timer-overhead baseline of the benchmark.
pub const PROG_TX: &str = "lb_tx";

/// The VIP table: two halves of [`crate::abi::VipSlot`]s (see there).
pub const MAP_VIP_TABLE: &str = "LB_VIP_TABLE";
/// Outer array of Maglev rings: two per VIP ([`crate::abi::ring_index`]),
/// and one slot for the grace-period barrier ([`crate::abi::RING_GRACE_INDEX`]).
/// Each inner map is an array of [`crate::abi::RingPair`] with
/// [`crate::abi::ring_elems`]`(M)` elements.
pub const MAP_RINGS: &str = "LB_RINGS";
/// Per VIP id: its ring word ([`crate::abi::ring_word`]), `u64`.
pub const MAP_RING_WORDS: &str = "LB_RING_WORDS";
/// Backend table: backend id → [`crate::abi::BackendEntry`].
pub const MAP_BACKENDS: &str = "LB_BACKENDS";
/// IPv4 flow table: an array of [`crate::abi::FlowSlotV4`] in buckets of
/// [`crate::abi::FLOW_WAYS`] (see there).
pub const MAP_FLOWS_V4: &str = "LB_FLOWS_V4";
/// IPv6 flow table: an array of [`crate::abi::FlowSlotV6`].
pub const MAP_FLOWS_V6: &str = "LB_FLOWS_V6";
/// Per-CPU counters per VIP id.
pub const MAP_VIP_STATS: &str = "LB_VIP_STATS";
/// Per-CPU counters per backend id.
pub const MAP_BACKEND_STATS: &str = "LB_BE_STATS";
/// Per-CPU counters per [`Reason`].
pub const MAP_REASONS: &str = "LB_REASONS";
/// Device map for redirecting to another interface (ifindex → ifindex).
pub const MAP_TX_PORTS: &str = "LB_TX_PORTS";
/// Addresses that carry at least one VIP: [`crate::abi::Addr`] → number of VIPs.
/// Read only off the fast path, to decide whether a packet we cannot balance
/// (malformed, fragment) is ours to drop or the host's to handle.
pub const MAP_VIP_ADDRS: &str = "LB_VIP_ADDRS";
/// One [`crate::abi::Config`] at index 0: data-path-wide switches.
pub const MAP_CONFIG: &str = "LB_CONFIG";
/// Bitmap of VIP addresses ([`crate::abi::vip_filter_bit`]), `u64` words.
pub const MAP_VIP_FILTER: &str = "LB_VIP_FILTER";
/// Ingress ifindex (`u32`) → that interface's MAC ([`crate::rx::RxMac`]).
pub const MAP_RX_MACS: &str = "LB_RX_MACS";
/// Ifindex (`u32`) → the VRRP virtual MACs held there ([`crate::rx::VmacSet`]).
pub const MAP_VMACS: &str = "LB_VMACS";

/// Every map, for pinning and teardown. Kernel map names are at most 15 bytes.
pub const ALL_MAPS: [&str; 15] = [
    MAP_VIP_TABLE,
    MAP_VIP_ADDRS,
    MAP_RINGS,
    MAP_RING_WORDS,
    MAP_BACKENDS,
    MAP_FLOWS_V4,
    MAP_FLOWS_V6,
    MAP_VIP_STATS,
    MAP_BACKEND_STATS,
    MAP_REASONS,
    MAP_TX_PORTS,
    MAP_CONFIG,
    MAP_VIP_FILTER,
    MAP_RX_MACS,
    MAP_VMACS,
];
const _: () = {
    let mut i = 0;
    while i < ALL_MAPS.len() {
        assert!(ALL_MAPS[i].len() <= 15);
        i += 1;
    }
};

/// Size of the device map (interfaces a backend may sit behind).
pub const MAX_TX_PORTS: u32 = 64;
/// Interfaces whose frames are checked for their destination MAC (size of
/// [`MAP_RX_MACS`] and [`MAP_VMACS`]).
pub const MAX_RX_IFACES: u32 = 64;

/// Most VIPs one data path serves (size of the VIP, ring and VIP-stats maps).
pub const MAX_VIPS: u32 = 1024;
/// Most backends one data path knows (size of the backend maps). Backend ids are
/// `0..MAX_BACKENDS`; [`NO_BACKEND`] marks an empty ring slot.
pub const MAX_BACKENDS: u32 = 4096;
/// Default Maglev ring size: prime, as in the Maglev paper and Katran.
pub const DEFAULT_RING_SIZE: u32 = 65537;
/// Largest ring size accepted (a prime; 16 × the default).
pub const MAX_RING_SIZE: u32 = 1_048_573;
/// Default flow table size (slots) per address family; the loader may resize
/// it, always to a power of two.
pub const DEFAULT_FLOW_TABLE_SIZE: u32 = 1 << 20;
/// Flags of the flow tables: userspace reads and purges them through `mmap`.
pub const FLOW_MAP_FLAGS: u32 = BPF_F_MMAPABLE;
/// Flags of the VIP table: userspace writes a half through `mmap`.
pub const VIP_TABLE_FLAGS: u32 = BPF_F_MMAPABLE;
/// Flags of the ring words, the backend table and the config: userspace
/// writes them through `mmap` and flips with store-release.
pub const SHARED_MAP_FLAGS: u32 = BPF_F_MMAPABLE;
/// Ring slot value meaning "no backend" (an empty ring: every backend is out).
pub const NO_BACKEND: u32 = u32::MAX;

/// `BPF_F_INNER_MAP`: lets inner rings of different sizes share one outer map.
pub const BPF_F_INNER_MAP: u32 = 1 << 12;
/// `BPF_F_MMAPABLE`: userspace fills a new ring through `mmap`, not 65537 syscalls.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// Flags of every ring (inner map): the template and each ring must agree.
pub const RING_MAP_FLAGS: u32 = BPF_F_INNER_MAP | BPF_F_MMAPABLE;

/// Backend states as stored in [`crate::abi::Backend::state`].
pub mod state {
    /// Slot unused, or the backend was removed: its flows are re-hashed.
    pub const UNUSED: u32 = 0;
    /// In the ring; receives new and existing flows.
    pub const UP: u32 = 1;
    /// Out of the ring; existing flows continue (LVS weight 0, HAProxy `drain`).
    pub const DRAIN: u32 = 2;
    /// Failed health checks: out of the ring, existing flows are re-hashed.
    pub const DOWN: u32 = 3;
    /// Administratively down (HAProxy `maint`): like [`DOWN`] but set by an operator.
    pub const MAINT: u32 = 4;

    /// Whether a flow already pinned to a backend in this state keeps going to it.
    #[inline(always)]
    pub const fn keeps_flows(state: u32) -> bool {
        state == UP || state == DRAIN
    }
}

/// Bits of [`crate::abi::Vip::flags`].
pub mod vip_flags {
    /// Hash the source port together with the source address (default: address
    /// only, LVS `sh`).
    pub const HASH_SRC_PORT: u32 = 1 << 0;
}

/// Bits of [`crate::abi::Config::flags`].
pub mod config_flags {
    /// Some VIP has port 0 (all ports): look up `(addr, 0, proto)` after an
    /// exact miss. Without it, non-VIP traffic costs one lookup, not two.
    pub const WILDCARD_VIPS: u32 = 1 << 0;
}

/// Bits of [`crate::abi::Flow::flags`].
pub mod flow_flags {
    /// The client sent a FIN: the flow is closing.
    pub const FIN: u32 = 1 << 0;
    /// The client sent a RST: the flow is over.
    pub const RST: u32 = 1 << 1;
}

/// Why the program returned what it did; one per-CPU counter each.
///
/// The policy for every kind of packet lives here, in one table, so the docs,
/// the counters and the tests name the same thing.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reason {
    /// Forwarded with `XDP_TX` (backend on the ingress interface).
    Tx = 0,
    /// Forwarded with a devmap redirect (backend on another interface).
    Redirect,
    /// An ICMP error about a VIP flow, forwarded to that flow's backend.
    IcmpForwarded,
    /// Not IPv4/IPv6 (ARP, LLDP, ...): passed untouched.
    PassNotIp,
    /// IP, but no VIP matches (address, port, protocol): passed untouched.
    PassNotVip,
    /// ICMP to a VIP address that is not an error (echo, neighbour
    /// discovery, ...): passed, the LB host that owns the VIP answers it.
    /// (ICMP to any other address is [`Reason::PassNotVip`].)
    PassIcmp,
    /// Too short to read the addresses: nothing to attribute it to a VIP,
    /// passed to the kernel.
    PassUnparsed,
    /// A fragment (IPv4 MF/offset, IPv6 fragment header) to a VIP address:
    /// non-first fragments carry no ports to balance on, and the local stack
    /// cannot use them either (Katran drops them too). Fragments to other
    /// addresses are [`Reason::PassNotVip`].
    DropFragment,
    /// To a VIP, but the IP header is invalid (version, length, IHL, checksum).
    DropMalformedIp,
    /// To a VIP, but the TCP/UDP header is truncated or invalid.
    DropMalformedL4,
    /// To a VIP whose ring has no usable backend.
    DropNoBackend,
    /// ICMP to a VIP address whose ICMP header does not fit in the IP packet,
    /// or an ICMP error whose quoted packet is cut short or is not a sane IP
    /// header sent from that address.
    DropIcmpMalformed,
    /// An ICMP error to a VIP address quoting a packet no VIP sent (another
    /// port or protocol, or a later fragment): nothing to forward it to.
    DropIcmpNotVipFlow,
    /// IPv6 to a VIP address with more extension headers than the data path
    /// walks (4), or with AH or ESP: no ports it can see.
    DropIpv6Ext,
    /// To a VIP, in a frame sent to another node's MAC: flooded by a switch,
    /// or to a VRRP virtual MAC this node does not hold (a backup). Passed
    /// to the kernel, which drops it as not addressed to this host
    /// (`crate::rx`).
    PassOtherHost,
    /// A map lookup that cannot fail did (internal error, should stay 0).
    DropInternal,
}

impl Reason {
    /// Number of reasons (size of the reasons map).
    pub const COUNT: u32 = Reason::DropInternal as u32 + 1;
    /// Every reason, in code order.
    pub const ALL: [Reason; Reason::COUNT as usize] = [
        Reason::Tx,
        Reason::Redirect,
        Reason::IcmpForwarded,
        Reason::PassNotIp,
        Reason::PassNotVip,
        Reason::PassIcmp,
        Reason::PassUnparsed,
        Reason::DropFragment,
        Reason::DropMalformedIp,
        Reason::DropMalformedL4,
        Reason::DropNoBackend,
        Reason::DropIcmpMalformed,
        Reason::DropIcmpNotVipFlow,
        Reason::DropIpv6Ext,
        Reason::PassOtherHost,
        Reason::DropInternal,
    ];

    /// Stable snake_case name (metrics label, `lb-ctl stats`).
    pub const fn name(self) -> &'static str {
        match self {
            Reason::Tx => "tx",
            Reason::Redirect => "redirect",
            Reason::IcmpForwarded => "icmp_forwarded",
            Reason::PassNotIp => "pass_not_ip",
            Reason::PassNotVip => "pass_not_vip",
            Reason::PassIcmp => "pass_icmp",
            Reason::PassUnparsed => "pass_unparsed",
            Reason::DropFragment => "drop_fragment",
            Reason::DropMalformedIp => "drop_malformed_ip",
            Reason::DropMalformedL4 => "drop_malformed_l4",
            Reason::DropNoBackend => "drop_no_backend",
            Reason::DropIcmpMalformed => "drop_icmp_malformed",
            Reason::DropIcmpNotVipFlow => "drop_icmp_not_vip_flow",
            Reason::DropIpv6Ext => "drop_ipv6_ext",
            Reason::PassOtherHost => "pass_other_host",
            Reason::DropInternal => "drop_internal",
        }
    }
}

/// IP protocol numbers (IANA; the IPv4 `protocol` and IPv6 `next header`
/// fields), for both sides.
pub mod ipproto {
    pub const HOPOPTS: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const DSTOPTS: u8 = 60;
}

/// XDP return codes (uapi `enum xdp_action`).
pub mod xdp_action {
    pub const ABORTED: u32 = 0;
    pub const DROP: u32 = 1;
    pub const PASS: u32 = 2;
    pub const TX: u32 = 3;
    pub const REDIRECT: u32 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_dense_and_named_once() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        for (i, a) in Reason::ALL.iter().enumerate() {
            for b in &Reason::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}
