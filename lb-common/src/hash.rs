//! The flow hash: which Maglev slot a client lands on.
//!
//! The same code runs in the XDP program and in userspace (`lb-ctl explain`, the
//! tests), so userspace can predict every choice the kernel makes. It is a
//! multiply–xorshift hash over the source address (and, per VIP, the source
//! port): a handful of 64-bit multiplies, no loops, no tables — cheap for the
//! verifier and for the packet.

use crate::abi::Addr;

const K: u64 = 0x9E37_79B9_7F4A_7C15;
const SEED: u64 = 0x6C62_2D66_6C6F_7721; // "lb-flow!"

#[inline(always)]
const fn mix(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(K).rotate_left(29)
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
#[inline(always)]
const fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Hash of a client: its address, and its source port (network order) when the
/// VIP hashes on ports too; pass `0` for address-only hashing (LVS `sh`).
#[inline(always)]
pub const fn flow_hash(src: &Addr, sport: u16) -> u32 {
    let a = (src.0[0] as u64) | ((src.0[1] as u64) << 32);
    let b = (src.0[2] as u64) | ((src.0[3] as u64) << 32);
    let h = mix(mix(mix(SEED, a), b), sport as u64);
    (fmix64(h) >> 32) as u32
}

/// Slot of `hash` in a ring of `ring_size` entries: Lemire's multiply-shift
/// range reduction (uniform like `%`, without a division on the packet path).
#[inline(always)]
pub const fn ring_slot(hash: u32, ring_size: u32) -> u32 {
    ((hash as u64 * ring_size as u64) >> 32) as u32
}

/// 64-bit hash of a byte string with a seed (userspace: Maglev permutations).
pub fn bytes_hash(bytes: &[u8], seed: u64) -> u64 {
    let mut h = fmix64(seed ^ K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    h = mix(h, u64::from_le_bytes(w) ^ ((bytes.len() as u64) << 56));
    fmix64(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    #[test]
    fn ring_slot_stays_in_range() {
        for m in [1u32, 2, 13, 65537, 1_048_573] {
            for h in [0u32, 1, 0x8000_0000, u32::MAX] {
                assert!(ring_slot(h, m) < m);
            }
        }
        assert_eq!(ring_slot(u32::MAX, 65537), 65536);
    }

    #[test]
    fn port_changes_the_hash_and_address_only_ignores_it() {
        let a = Addr::from_ip("10.0.0.1".parse().unwrap());
        assert_ne!(
            flow_hash(&a, 1000u16.to_be()),
            flow_hash(&a, 1001u16.to_be())
        );
        assert_eq!(flow_hash(&a, 0), flow_hash(&a, 0));
    }

    #[test]
    fn consecutive_clients_spread_evenly_over_slots() {
        // 64k consecutive IPv4 clients into 16 buckets: each within 5 % of even.
        const BUCKETS: usize = 16;
        let mut counts = [0u32; BUCKETS];
        let n = 1u32 << 16;
        for i in 0..n {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let h = flow_hash(&Addr::from_ip(ip), 0);
            counts[ring_slot(h, BUCKETS as u32) as usize] += 1;
        }
        let even = n / BUCKETS as u32;
        for c in counts {
            assert!(c.abs_diff(even) * 20 < even, "{counts:?}");
        }
    }

    /// Frozen outputs: an upgrade that changes the flow hash moves clients to
    /// other backends across LB nodes running different versions (and breaks
    /// `lb-ctl explain` against an older data path), so it must fail here.
    #[test]
    fn flow_hash_golden_values() {
        let cases: [(&str, u16, u32); 9] = [
            ("192.0.2.10", 0, 0x3831_2229),
            ("192.0.2.10", 40000, 0xbb51_1777),
            ("10.0.0.1", 80, 0x9005_bee3),
            ("203.0.113.255", 65535, 0xc3b0_6b4d),
            ("0.0.0.0", 0, 0x6375_66d8),
            ("2001:db8::10", 0, 0x8e9c_a322),
            ("2001:db8::10", 40000, 0x352f_3100),
            ("fd00::1", 443, 0x39cd_a92b),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1, 0x014f_f68b),
        ];
        for (ip, port, want) in cases {
            let a = Addr::from_ip(ip.parse().unwrap());
            assert_eq!(flow_hash(&a, port.to_be()), want, "{ip} port {port}");
        }
        assert_eq!(ring_slot(0x3831_2229, 65537), 14_385);
    }

    #[test]
    fn bytes_hash_depends_on_seed_length_and_content() {
        assert_ne!(bytes_hash(b"a", 1), bytes_hash(b"a", 2));
        assert_ne!(bytes_hash(b"a", 1), bytes_hash(b"a\0", 1));
        assert_ne!(bytes_hash(b"10.0.0.1:80", 1), bytes_hash(b"10.0.0.2:80", 1));
    }
}
