//! Map keys and values: `#[repr(C)]`, explicit padding, sizes checked at compile time.
//!
//! Addresses are stored as four `u32` words holding the address bytes in network
//! order, exactly as they sit in the packet (so the kernel copies, never swaps);
//! IPv4 uses the IPv4-mapped form `::ffff:a.b.c.d`. Ports in keys are in network
//! order for the same reason. Both sides are little-endian (`bpfel`, x86_64/aarch64).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Index into the backend table and the rings.
pub type BackendId = u32;

/// An address as four network-order words, IPv4 mapped into IPv6.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr(pub [u32; 4]);

/// The third word of an IPv4-mapped address (`::ffff:0:0/96`), as stored.
pub const V4_MAPPED_WORD: u32 = u32::from_ne_bytes([0, 0, 0xff, 0xff]);

impl Addr {
    /// The IPv4-mapped form of a raw IPv4 header word.
    #[inline(always)]
    pub const fn from_v4_word(w: u32) -> Self {
        Addr([0, 0, V4_MAPPED_WORD, w])
    }

    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::from_v4_word(u32::from_ne_bytes(v4.octets())),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                let w = |i: usize| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
                Addr([w(0), w(4), w(8), w(12)])
            }
        }
    }

    pub fn to_ip(self) -> IpAddr {
        let [a, b, c, d] = self.0;
        if a == 0 && b == 0 && c == V4_MAPPED_WORD {
            return IpAddr::V4(Ipv4Addr::from(d.to_ne_bytes()));
        }
        let mut o = [0u8; 16];
        for (i, w) in self.0.iter().enumerate() {
            o[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(o))
    }
}

/// What identifies a VIP ([`VipSlot::key`]). `port == 0` means every port of `addr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VipKey {
    pub addr: Addr,
    /// Network order.
    pub port: u16,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    pub _pad: u8,
}

impl VipKey {
    /// A key from host-order values.
    pub fn new(addr: IpAddr, port: u16, proto: u8) -> Self {
        VipKey {
            addr: Addr::from_ip(addr),
            port: port.to_be(),
            proto,
            _pad: 0,
        }
    }
}

/// One slot of the VIP table ([`crate::consts::MAP_VIP_TABLE`]): open
/// addressing with linear probing over [`VIP_TABLE_SLOTS`] slots, in two
/// halves. The agent writes a whole new table into the half packets do not
/// read, then flips [`Config::vip_half`]: a lookup sees the old VIPs or the new
/// ones, never a mix, and costs a few array loads instead of a hash-map helper
/// (~60 ns here). `key.proto == 0` marks an empty slot, which ends a probe.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VipSlot {
    pub key: VipKey,
    pub _pad: u32,
    pub vip: Vip,
}

/// Slots in each half of the VIP table: a power of two, 4 × [`crate::consts::MAX_VIPS`]
/// (a load factor of at most ¼ keeps probes short).
pub const VIP_TABLE_SLOTS: u32 = 4 * crate::consts::MAX_VIPS;
/// Longest probe sequence; the agent refuses a table that would need more.
pub const VIP_TABLE_PROBES: u32 = 8;

/// Where a VIP's probe sequence starts in a half of the VIP table.
#[inline(always)]
pub const fn vip_slot(key: &VipKey) -> u32 {
    let a = key.addr.0;
    let mut h = mix32(0x6c62_7669_7074_6162, a[0]);
    h = mix32(mix32(mix32(h, a[1]), a[2]), a[3]);
    h = mix32(h, ((key.port as u32) << 8) | key.proto as u32);
    ((h >> 32) as u32) & (VIP_TABLE_SLOTS - 1)
}

/// Slot `i` (`0..VIP_TABLE_PROBES`) of the probe sequence that starts at
/// `start` ([`vip_slot`]): linear probing, wrapping around the half.
#[inline(always)]
pub const fn vip_probe(start: u32, i: u32) -> u32 {
    start.wrapping_add(i) & (VIP_TABLE_SLOTS - 1)
}

/// Looks `key` up in one half of the VIP table, `slot(i)` reading its slot
/// `i`: the one lookup both the data path and userspace run. An empty slot
/// ends the probe; so does a slot that cannot be read.
#[inline(always)]
pub fn vip_lookup<'a>(
    key: &VipKey,
    mut slot: impl FnMut(u32) -> Option<&'a VipSlot>,
) -> Option<Vip> {
    let start = vip_slot(key);
    let mut i = 0;
    while i < VIP_TABLE_PROBES {
        let s = slot(vip_probe(start, i))?;
        if s.key.proto == 0 {
            return None;
        }
        if s.key == *key {
            return Some(s.vip);
        }
        i += 1;
    }
    None
}

/// What a VIP is to the data path. Its ring, and the ring's size, are read
/// from [`crate::consts::MAP_RING_WORDS`] (see [`ring_word`]), so that a ring
/// and its size change together in one store.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vip {
    /// Index of this VIP's rings, ring word and counters (`0..MAX_VIPS`).
    pub id: u32,
    /// [`crate::consts::vip_flags`].
    pub flags: u32,
}

/// Each VIP has two Maglev rings in [`crate::consts::MAP_RINGS`], at
/// `2·id` and `2·id + 1`: packets read the one its ring word names while the
/// agent rewrites the other through `mmap`, then flips the word.
#[inline(always)]
pub const fn ring_index(vip_id: u32, which: u32) -> u32 {
    vip_id.wrapping_mul(2).wrapping_add(which & 1)
}

/// The slot of [`crate::consts::MAP_RINGS`] no VIP uses: the agent's
/// grace-period barrier updates it (docs/datapath.md, "Grace periods").
pub const RING_GRACE_INDEX: u32 = 2 * crate::consts::MAX_VIPS;
/// Entries of [`crate::consts::MAP_RINGS`].
pub const RING_OUTER_ENTRIES: u32 = RING_GRACE_INDEX + 1;

/// A VIP's ring word ([`crate::consts::MAP_RING_WORDS`]): which of its two
/// rings packets read (bit 32) and that ring's size `M` (low 32 bits), in
/// one 8-byte value read with load-acquire. Size 0: no ring (no backend).
#[inline(always)]
pub const fn ring_word(which: u32, size: u32) -> u64 {
    (((which & 1) as u64) << 32) | size as u64
}

/// The ring a ring word names (0 or 1).
#[inline(always)]
pub const fn ring_word_which(word: u64) -> u32 {
    ((word >> 32) & 1) as u32
}

/// The ring size a ring word names.
#[inline(always)]
pub const fn ring_word_size(word: u64) -> u32 {
    word as u32
}

/// One element of a ring map: two consecutive slots (array maps round
/// values up to 8 bytes, so one slot per element would waste half).
pub type RingPair = [BackendId; 2];

/// Elements of a ring map of `size` slots.
#[inline(always)]
pub const fn ring_elems(size: u32) -> u32 {
    size.div_ceil(2)
}

/// Value of [`crate::consts::MAP_BACKENDS`]: where and how to send a flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backend {
    /// [`crate::consts::state`].
    pub state: u32,
    /// Interface to send on; `XDP_TX` when it is the ingress interface.
    pub ifindex: u32,
    /// The backend's MAC (DR next hop).
    pub dst_mac: [u8; 6],
    /// Our MAC on `ifindex`.
    pub src_mac: [u8; 6],
    /// The backend's address (for tunnel/NAT modes and for dumps).
    pub addr: Addr,
    /// The backend's port, host order (DR keeps the VIP port).
    pub port: u16,
    pub _pad: u16,
    /// The [`Vip::id`] this backend serves (a backend id belongs to one VIP, as
    /// an LVS real server belongs to one virtual service). Not read by the
    /// data path; it makes the pinned maps self-describing for a restarted agent.
    pub vip: u32,
    pub _pad2: u32,
}

/// Value of [`crate::consts::MAP_BACKENDS`]: one backend, double-buffered.
/// Packets load [`BackendEntry::active`] with load-acquire and read that
/// copy; the agent writes the other copy through `mmap` and flips `active`
/// with store-release, so a packet sees the old entry or the new one, never
/// a mix. A copy is rewritten only after a grace period following the flip
/// that retired it (docs/datapath.md, "Grace periods").
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendEntry {
    /// Which copy packets read: its low bit.
    pub active: u32,
    pub _pad: u32,
    pub copies: [Backend; 2],
}

impl BackendEntry {
    /// The copy packets read.
    #[inline(always)]
    pub fn current(&self) -> &Backend {
        &self.copies[(self.active & 1) as usize]
    }
}

/// Key of [`crate::consts::MAP_FLOWS_V4`]: the client→VIP 5-tuple.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKeyV4 {
    pub src: u32,
    pub dst: u32,
    /// Network order.
    pub sport: u16,
    /// Network order.
    pub dport: u16,
    pub proto: u8,
    /// Padding as a byte and a half-word: a 3-byte array would make the BPF
    /// backend zero it with a call to a byte-loop `memset`.
    pub _pad: u8,
    pub _pad2: u16,
}

/// Key of [`crate::consts::MAP_FLOWS_V6`]: the client→VIP 5-tuple.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKeyV6 {
    pub src: Addr,
    pub dst: Addr,
    /// Network order.
    pub sport: u16,
    /// Network order.
    pub dport: u16,
    pub proto: u8,
    /// Padding as a byte and a half-word: a 3-byte array would make the BPF
    /// backend zero it with a call to a byte-loop `memset`.
    pub _pad: u8,
    pub _pad2: u16,
}

impl FlowKeyV4 {
    /// The key of a client→VIP flow: addresses as raw header words, ports in
    /// network order.
    #[inline(always)]
    pub const fn new(src: u32, dst: u32, sport: u16, dport: u16, proto: u8) -> Self {
        FlowKeyV4 {
            src,
            dst,
            sport,
            dport,
            proto,
            _pad: 0,
            _pad2: 0,
        }
    }
}

impl FlowKeyV6 {
    /// The key of a client→VIP flow, ports in network order.
    #[inline(always)]
    pub const fn new(src: Addr, dst: Addr, sport: u16, dport: u16, proto: u8) -> Self {
        FlowKeyV6 {
            src,
            dst,
            sport,
            dport,
            proto,
            _pad: 0,
            _pad2: 0,
        }
    }
}

/// What the flow tables remember about a flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub backend: BackendId,
    /// [`crate::consts::flow_flags`].
    pub flags: u32,
    /// Last time a packet of the flow was seen, on the agent's clock
    /// ([`Config::now`], seconds); rewritten at most once a second.
    pub atime: u64,
}

/// The flow tables are set-associative: a flow's key picks a bucket of
/// [`FLOW_WAYS`] slots, and the flow lives in one of them. On insert the
/// least recently seen slot of the bucket makes room (an LRU per bucket).
///
/// Each slot carries a sequence number, even when stable and odd while a
/// writer holds it (claimed with `cmpxchg`, published with store-release):
/// a reader loads it and the slot with load-acquire, and ignores what it
/// read if the number was odd or changed (docs/datapath.md, "Flow tables").
/// That makes lookups and inserts a few loads and one atomic, without the
/// hash-map helpers (on this kind of VM the kernel's LRU hash costs ~80 ns a
/// lookup and ~350 ns an insert).
pub const FLOW_WAYS: u32 = 4;

/// One slot of the IPv4 flow table ([`crate::consts::MAP_FLOWS_V4`]).
/// `key.proto == 0` marks a free slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowSlotV4 {
    pub seq: u64,
    pub key: FlowKeyV4,
    pub flow: Flow,
}

/// One slot of the IPv6 flow table ([`crate::consts::MAP_FLOWS_V6`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowSlotV6 {
    pub seq: u64,
    pub key: FlowKeyV6,
    pub flow: Flow,
}

#[inline(always)]
const fn mix32(h: u64, w: u32) -> u64 {
    (h ^ w as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(27)
}

/// Bucket of an IPv4 flow (before masking with [`Config::flow_mask_v4`]).
#[inline(always)]
pub const fn flow_bucket_v4(k: &FlowKeyV4) -> u32 {
    let ports = ((k.sport as u32) << 16) | k.dport as u32;
    let h = mix32(
        mix32(mix32(mix32(0x6c62_666c_6f77_7334, k.src), k.dst), ports),
        k.proto as u32,
    );
    (h >> 32) as u32
}

/// Bucket of an IPv6 flow (before masking with [`Config::flow_mask_v6`]).
#[inline(always)]
pub const fn flow_bucket_v6(k: &FlowKeyV6) -> u32 {
    let s = k.src.0;
    let d = k.dst.0;
    let ports = ((k.sport as u32) << 16) | k.dport as u32;
    let mut h = mix32(0x6c62_666c_6f77_7336, s[0]);
    h = mix32(mix32(mix32(h, s[1]), s[2]), s[3]);
    h = mix32(mix32(mix32(mix32(h, d[0]), d[1]), d[2]), d[3]);
    h = mix32(mix32(h, ports), k.proto as u32);
    (h >> 32) as u32
}

/// A flow-table key: where its bucket is.
pub trait FlowKey: Copy + PartialEq {
    /// The bucket hash, before masking with the table's bucket mask.
    fn bucket(&self) -> u32;
}

impl FlowKey for FlowKeyV4 {
    #[inline(always)]
    fn bucket(&self) -> u32 {
        flow_bucket_v4(self)
    }
}

impl FlowKey for FlowKeyV6 {
    #[inline(always)]
    fn bucket(&self) -> u32 {
        flow_bucket_v6(self)
    }
}

/// Index of way `way` (`0..FLOW_WAYS`) of `key`'s bucket in a flow table
/// whose bucket mask is `mask` ([`Config::flow_mask_v4`]/`_v6`): the one
/// indexing rule of the data path and userspace.
#[inline(always)]
pub fn flow_slot<K: FlowKey>(key: &K, mask: u32, way: u32) -> u32 {
    (key.bucket() & mask)
        .wrapping_mul(FLOW_WAYS)
        .wrapping_add(way)
}

/// Bit of the VIP address pre-filter ([`crate::consts::MAP_VIP_FILTER`]) that
/// `addr` maps to: `(word index, bit mask)`. A clear bit proves the address
/// carries no VIP, so traffic for the host costs one array load, not a hash
/// lookup.
#[inline(always)]
pub const fn vip_filter_bit(addr: &Addr) -> (u32, u64) {
    let w = addr.0[0] ^ addr.0[1] ^ addr.0[2] ^ addr.0[3];
    let h = (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 48; // 16 bits
    ((h >> 6) as u32, 1u64 << (h & 63))
}

/// Words in the VIP address pre-filter (65,536 bits).
pub const VIP_FILTER_WORDS: u32 = 1024;

/// Value of [`crate::consts::MAP_CONFIG`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// [`crate::consts::config_flags`].
    pub flags: u32,
    /// The agent's clock: `CLOCK_MONOTONIC` seconds, written every second.
    /// The data path stamps flows with it instead of calling a time helper
    /// (`bpf_ktime_get_coarse_ns` costs ~50 ns a packet on this kind of VM;
    /// this is one load). It stands still while no agent runs, so flow ages
    /// only mean something with an agent up.
    pub now: u32,
    /// Buckets of the IPv4 flow table minus one (the table has a power of
    /// two of [`FLOW_WAYS`]-slot buckets); written by the loader.
    pub flow_mask_v4: u32,
    /// The same for IPv6.
    pub flow_mask_v6: u32,
    /// Which half of the VIP table packets read (0 or 1): stored with
    /// store-release by the agent (through `mmap`) after it wrote that half,
    /// loaded with load-acquire by packets before they read it.
    pub vip_half: u32,
    pub _pad: u32,
}

/// Per-CPU counters of one VIP or one backend (and, summed over CPUs, what
/// the control API reports).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    /// Flows that were assigned here by the ring (not found in the flow table).
    pub new_flows: u64,
}

impl Counters {
    /// The sum of two sets of counters.
    pub const fn plus(self, o: Counters) -> Counters {
        Counters {
            packets: self.packets.wrapping_add(o.packets),
            bytes: self.bytes.wrapping_add(o.bytes),
            new_flows: self.new_flows.wrapping_add(o.new_flows),
        }
    }

    /// Sum of per-CPU values.
    pub fn sum<'a>(per_cpu: impl IntoIterator<Item = &'a Counters>) -> Counters {
        per_cpu
            .into_iter()
            .fold(Counters::default(), |a, c| a.plus(*c))
    }
}

const _: () = assert!(size_of::<Addr>() == 16);
const _: () = assert!(size_of::<VipKey>() == 20);
const _: () = assert!(size_of::<Vip>() == 8);
const _: () = assert!(size_of::<BackendEntry>() == 104);
const _: () = assert!(size_of::<Backend>() == 48);
const _: () = assert!(size_of::<FlowKeyV4>() == 16);
const _: () = assert!(size_of::<FlowKeyV6>() == 40);
const _: () = assert!(size_of::<Flow>() == 16);
const _: () = assert!(size_of::<Counters>() == 24);
const _: () = assert!(size_of::<Config>() == 24);
const _: () = assert!(size_of::<VipSlot>() == 32);
const _: () = assert!(VIP_TABLE_SLOTS.is_power_of_two());
const _: () = assert!(size_of::<FlowSlotV4>() == 40);
const _: () = assert!(size_of::<FlowSlotV6>() == 64);

#[cfg(feature = "user")]
mod pod {
    use super::*;

    // SAFETY: every type here is `#[repr(C)]`, `Copy`, made only of integers and
    // integer arrays, with explicit padding fields, so any byte pattern is valid and
    // there are no uninitialised bytes.
    unsafe impl aya::Pod for Addr {}
    // SAFETY: see above.
    unsafe impl aya::Pod for VipKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Vip {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Backend {}
    // SAFETY: see above.
    unsafe impl aya::Pod for BackendEntry {}
    // SAFETY: see above.
    unsafe impl aya::Pod for FlowKeyV4 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for FlowKeyV6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Flow {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Counters {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Config {}
    // SAFETY: see above.
    unsafe impl aya::Pod for VipSlot {}
    // SAFETY: see above.
    unsafe impl aya::Pod for FlowSlotV4 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for FlowSlotV6 {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_round_trips_v4_and_v6() {
        for ip in [
            "192.0.2.7".parse::<IpAddr>().unwrap(),
            "2001:db8::42".parse().unwrap(),
            "::".parse().unwrap(),
        ] {
            assert_eq!(Addr::from_ip(ip).to_ip(), ip);
        }
        // The stored words are the packet bytes, in order.
        let a = Addr::from_ip("10.1.2.3".parse().unwrap());
        assert_eq!(a.0[3].to_ne_bytes(), [10, 1, 2, 3]);
        assert_eq!(a.0[2].to_ne_bytes(), [0, 0, 0xff, 0xff]);
    }

    /// Frozen outputs of the table hashes: a change would strand every flow
    /// and VIP of a data path adopted across the upgrade, so it must be
    /// deliberate (and come with a map-layout change that forces a teardown).
    #[test]
    fn table_hash_golden_values() {
        let a = |s: &str| Addr::from_ip(s.parse().unwrap());
        let k4 = FlowKeyV4::new(
            a("192.0.2.10").0[3],
            a("10.0.0.100").0[3],
            40000u16.to_be(),
            80u16.to_be(),
            6,
        );
        assert_eq!(flow_bucket_v4(&k4), 0x3294_043e);
        let k6 = FlowKeyV6::new(
            a("2001:db8::10"),
            a("fd00::100"),
            40000u16.to_be(),
            443u16.to_be(),
            6,
        );
        assert_eq!(flow_bucket_v6(&k6), 0xf361_aea8);
        assert_eq!(flow_slot(&k4, 0xff, 3), 0x3e * FLOW_WAYS + 3);
        assert_eq!(
            vip_slot(&VipKey::new("10.0.0.100".parse().unwrap(), 80, 6)),
            0x15b
        );
    }

    #[test]
    fn vip_key_port_is_network_order() {
        let k = VipKey::new("10.0.0.1".parse().unwrap(), 80, 6);
        assert_eq!(k.port.to_ne_bytes(), [0, 80]);
    }
}
