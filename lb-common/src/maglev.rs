//! Weighted Maglev table builder (userspace only).
//!
//! Maglev (Eisenbud et al., NSDI 2016, §3.4): every backend walks its own
//! permutation of the `M` slots (`offset + j·skip mod M`, `M` prime) and claims
//! the next free one in turn, until the table is full. Compared with the paper
//! and Katran:
//!
//! - **Weights are proportional.** A backend earns `weight` credit per round and
//!   claims one slot per `max_weight` credit, so its share of the table is
//!   `weight / Σweight` to within one slot — in every round, not only the first
//!   (Katran v1 weighs the first round only, so shares drift from the weights).
//! - **Deterministic.** Backends are ordered by their key (e.g. `"10.0.0.1:80"`)
//!   before building, and permutations depend only on the key: every LB node,
//!   whatever order its config lists backends in, builds the same table.

use alloc::vec;
use alloc::vec::Vec;

use crate::abi::BackendId;
use crate::consts::{MAX_RING_SIZE, NO_BACKEND};
use crate::hash::bytes_hash;

const OFFSET_SEED: u64 = 0x6f66_6673_6574_2121; // "offset!!"
const SKIP_SEED: u64 = 0x736b_6970_2121_2121; // "skip!!!!"

/// One backend as Maglev sees it.
#[derive(Clone, Copy, Debug)]
pub struct MaglevBackend<'a> {
    /// Stable identity that orders backends and seeds the permutation; the same
    /// backend must have the same key on every node (address:port works).
    pub key: &'a [u8],
    /// What the ring stores for this backend.
    pub id: BackendId,
    /// Relative share; 0 keeps the backend out of the table.
    pub weight: u32,
}

/// Why a table cannot be built.
#[derive(Debug, PartialEq, Eq)]
pub enum MaglevError {
    /// `M` must be a prime in `2..=MAX_RING_SIZE` (every skip must generate a
    /// full permutation).
    RingSize(u32),
    /// More weighted backends than slots.
    TooManyBackends { backends: usize, ring_size: u32 },
    /// Two backends share a key (their permutations would be identical).
    DuplicateKey(Vec<u8>),
}

impl core::fmt::Display for MaglevError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MaglevError::RingSize(m) => {
                write!(
                    f,
                    "ring size {m} must be a prime between 2 and {MAX_RING_SIZE}"
                )
            }
            MaglevError::TooManyBackends {
                backends,
                ring_size,
            } => write!(
                f,
                "{backends} backends do not fit a ring of {ring_size} slots"
            ),
            MaglevError::DuplicateKey(k) => {
                write!(
                    f,
                    "two backends share the key {}",
                    alloc::string::String::from_utf8_lossy(k)
                )
            }
        }
    }
}

impl std::error::Error for MaglevError {}

/// Builds the lookup table: `ring_size` slots, each a backend id, or
/// [`NO_BACKEND`] everywhere when no backend has weight.
pub fn build(
    backends: &[MaglevBackend<'_>],
    ring_size: u32,
) -> Result<Vec<BackendId>, MaglevError> {
    let m = ring_size;
    if !(2..=MAX_RING_SIZE).contains(&m) || !crate::ring_size::is_prime(m) {
        return Err(MaglevError::RingSize(m));
    }
    let mut live: Vec<&MaglevBackend<'_>> = backends.iter().filter(|b| b.weight > 0).collect();
    live.sort_unstable_by(|a, b| a.key.cmp(b.key));
    if let Some(w) = live.windows(2).find(|w| w[0].key == w[1].key) {
        return Err(MaglevError::DuplicateKey(w[0].key.to_vec()));
    }
    let mut ring = vec![NO_BACKEND; m as usize];
    if live.is_empty() {
        return Ok(ring);
    }
    if live.len() > m as usize {
        return Err(MaglevError::TooManyBackends {
            backends: live.len(),
            ring_size: m,
        });
    }

    /// A backend's walk through its permutation, and the credit it has earned.
    struct Walk {
        next: u32,
        skip: u32,
        weight: u64,
        credit: u64,
    }
    let max_weight = live.iter().map(|b| b.weight).max().unwrap_or(1) as u64;
    let mut walks: Vec<Walk> = live
        .iter()
        .map(|b| Walk {
            next: (bytes_hash(b.key, OFFSET_SEED) % m as u64) as u32,
            skip: (bytes_hash(b.key, SKIP_SEED) % (m as u64 - 1)) as u32 + 1,
            weight: b.weight as u64,
            // Half a claim up front: shares round to nearest, not down.
            credit: max_weight / 2,
        })
        .collect();

    let mut filled = 0u32;
    'fill: loop {
        for (b, w) in live.iter().zip(walks.iter_mut()) {
            w.credit += w.weight;
            if w.credit < max_weight {
                continue;
            }
            w.credit -= max_weight;
            // Walk this backend's permutation to its next free slot.
            let mut c = w.next;
            while ring[c as usize] != NO_BACKEND {
                c += w.skip;
                if c >= m {
                    c -= m;
                }
            }
            ring[c as usize] = b.id;
            c += w.skip;
            if c >= m {
                c -= m;
            }
            w.next = c;
            filled += 1;
            if filled == m {
                break 'fill;
            }
        }
    }
    Ok(ring)
}

/// Slots whose backend differs between two tables of the same size.
pub fn changed_slots(a: &[BackendId], b: &[BackendId]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::DEFAULT_RING_SIZE;
    use alloc::format;
    use alloc::string::String;

    /// Frozen tables: every LB node must build the same ring from the same
    /// backends, whatever version it runs, so a change to the permutation
    /// hash, the fill order or the weighting must fail here first.
    #[test]
    fn golden_tables() {
        let keys = ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.3:80"];
        let mut bs: Vec<MaglevBackend<'_>> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| MaglevBackend {
                key: k.as_bytes(),
                id: i as u32 + 10,
                weight: 1,
            })
            .collect();
        assert_eq!(
            build(&bs, 13).unwrap(),
            [11, 10, 10, 10, 11, 12, 12, 12, 11, 11, 10, 12, 10]
        );
        bs[2].weight = 2;
        assert_eq!(
            build(&bs, 31).unwrap(),
            [
                11, 12, 11, 12, 12, 12, 11, 12, 12, 12, 11, 12, 12, 12, 11, 12, 12, 12, 10, 10, 10,
                10, 10, 10, 10, 12, 11, 11, 10, 12, 11
            ]
        );
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("10.0.{}.{}:80", i / 250, i % 250 + 1))
            .collect()
    }

    fn backends<'a>(keys: &'a [String], weights: &[u32]) -> Vec<MaglevBackend<'a>> {
        keys.iter()
            .zip(weights)
            .enumerate()
            .map(|(i, (k, &w))| MaglevBackend {
                key: k.as_bytes(),
                id: i as u32,
                weight: w,
            })
            .collect()
    }

    fn shares(ring: &[BackendId], n: usize) -> Vec<usize> {
        let mut s = vec![0usize; n];
        for &id in ring {
            s[id as usize] += 1;
        }
        s
    }

    #[test]
    fn unweighted_gets_floor_or_ceil_of_m_over_n() {
        for (n, m) in [
            (1, 7),
            (3, 13),
            (3, DEFAULT_RING_SIZE),
            (10, DEFAULT_RING_SIZE),
            (1000, DEFAULT_RING_SIZE),
        ] {
            let k = keys(n);
            let ring = build(&backends(&k, &vec![1; n]), m).unwrap();
            let (lo, hi) = (m as usize / n, (m as usize).div_ceil(n));
            for (i, s) in shares(&ring, n).into_iter().enumerate() {
                assert!(
                    s == lo || s == hi,
                    "n={n} m={m}: backend {i} has {s} slots, want {lo} or {hi}"
                );
            }
        }
    }

    #[test]
    fn weighted_shares_are_proportional_within_one_percent() {
        let m = DEFAULT_RING_SIZE;
        for weights in [
            vec![1, 2, 3],
            vec![100, 50, 25, 25],
            vec![1, 10],
            vec![7, 13, 1, 1, 40, 3],
            (1..=100).collect::<Vec<u32>>(),
        ] {
            let k = keys(weights.len());
            let ring = build(&backends(&k, &weights), m).unwrap();
            let total: u64 = weights.iter().map(|&w| w as u64).sum();
            for (i, s) in shares(&ring, weights.len()).into_iter().enumerate() {
                let want = m as f64 * weights[i] as f64 / total as f64;
                // One slot is the quantum: tiny shares cannot be closer than that.
                let err = (s as f64 - want).abs();
                assert!(
                    err <= (want * 0.01).max(1.0),
                    "weights {weights:?}: backend {i} has {s}, want {want:.1}"
                );
            }
        }
    }

    #[test]
    fn zero_weight_backends_get_nothing_and_empty_set_is_all_no_backend() {
        let k = keys(3);
        let ring = build(&backends(&k, &[1, 0, 1]), 13).unwrap();
        assert!(!ring.contains(&1));
        let ring = build(&backends(&k, &[0, 0, 0]), 13).unwrap();
        assert!(ring.iter().all(|&s| s == NO_BACKEND));
        assert!(build(&[], 13).unwrap().iter().all(|&s| s == NO_BACKEND));
    }

    /// Removing one of N backends moves its own slots plus a small cascade;
    /// with the ring `ring_size: auto` picks (`crate::ring_size`), at most
    /// 5 % more than its share, up to N = 40 (a sample of removals each).
    #[test]
    fn removing_one_of_n_from_an_auto_sized_ring_moves_at_most_five_percent_more_than_its_share() {
        for n in [2usize, 3, 4, 5, 8, 10, 16, 20, 32, 40] {
            let m = crate::ring_size::auto(n);
            let k = keys(n);
            let all = backends(&k, &vec![1; n]);
            let before = build(&all, m).unwrap();
            for removed in (0..n).step_by(n.div_ceil(6)) {
                let rest: Vec<_> = all
                    .iter()
                    .copied()
                    .filter(|b| b.id != removed as u32)
                    .collect();
                let after = build(&rest, m).unwrap();
                let moved = changed_slots(&before, &after);
                // Every slot of the removed backend must move; the rest is cascade.
                let own = before.iter().filter(|&&id| id == removed as u32).count();
                assert!(moved >= own);
                let bound = 1.05 * m as f64 / n as f64;
                assert!(
                    moved as f64 <= bound,
                    "n={n} m={m}: removing {removed} moved {moved} slots, bound {bound:.0}"
                );
            }
        }
    }

    #[test]
    fn table_is_identical_for_any_input_order() {
        let k = keys(7);
        let weights = [3, 1, 4, 1, 5, 9, 2];
        let fwd = backends(&k, &weights);
        let mut rev = fwd.clone();
        rev.reverse();
        let mut rot = fwd.clone();
        rot.rotate_left(3);
        let a = build(&fwd, DEFAULT_RING_SIZE).unwrap();
        assert_eq!(a, build(&rev, DEFAULT_RING_SIZE).unwrap());
        assert_eq!(a, build(&rot, DEFAULT_RING_SIZE).unwrap());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let k = keys(3);
        assert_eq!(
            build(&backends(&k, &[1, 1, 1]), 65536),
            Err(MaglevError::RingSize(65536))
        );
        assert_eq!(
            build(&backends(&k, &[1, 1, 1]), 1),
            Err(MaglevError::RingSize(1))
        );
        assert!(matches!(
            build(&backends(&k, &[1, 1, 1]), 2),
            Err(MaglevError::TooManyBackends { .. })
        ));
        let dup = [
            MaglevBackend {
                key: b"a",
                id: 0,
                weight: 1,
            },
            MaglevBackend {
                key: b"a",
                id: 1,
                weight: 1,
            },
        ];
        assert!(matches!(build(&dup, 13), Err(MaglevError::DuplicateKey(_))));
    }
}
