//! Maglev ring sizes: which sizes are valid (prime, bounded) and the size
//! `ring_size: auto` picks for a number of backends.
//!
//! Maglev keeps a removed backend's disruption near its own share only when
//! the ring is large enough, and "large enough" grows faster than the number
//! of backends `N`. Measured with this crate's builder (removing each of
//! several backends in turn; slots moved ÷ M/N, worst case):
//!
//! | N  | M = 500·N² rounded up to [`SIZES`] | moved ÷ M/N |
//! |----|------------------------------------|-------------|
//! | 4  | 8,191                              | 1.044       |
//! | 10 | 65,537                             | 1.033       |
//! | 20 | 262,147                            | 1.040       |
//! | 32 | 524,287                            | 1.042       |
//! | 40 | 1,048,573                          | 1.037       |
//!
//! while a fixed number of slots per backend does not hold the line (6,554
//! per backend: 1.033 at N = 10, 1.059 at N = 20, 1.080 at N = 40). So
//! [`auto`] picks the smallest size of [`SIZES`] with at least
//! [`SLOTS_FACTOR`]·N² slots: removing one backend moves at most 1.05× its
//! share up to N ≈ 45, where the largest size caps it (1.07 at N = 64, 1.11
//! at N = 100). Small pools get small rings (8,191 slots for 4 backends:
//! 64 KiB of kernel memory instead of 512 KiB at the old fixed 65,537).

use crate::consts::MAX_RING_SIZE;

/// The sizes `auto` chooses from: primes, each about twice the last.
pub const SIZES: [u32; 9] = [
    4093,
    8191,
    16381,
    32771,
    65537,
    131071,
    262147,
    524287,
    MAX_RING_SIZE,
];

/// `auto` wants at least this many slots times the square of the number of backends.
pub const SLOTS_FACTOR: u64 = 500;

/// The ring size `ring_size: auto` gives a pool of `backends` backends.
pub const fn auto(backends: usize) -> u32 {
    let n = backends as u64;
    let want = SLOTS_FACTOR.saturating_mul(n).saturating_mul(n);
    let mut i = 0;
    while i < SIZES.len() {
        if SIZES[i] as u64 >= want {
            return SIZES[i];
        }
        i += 1;
    }
    MAX_RING_SIZE
}

/// Whether `n` is prime (trial division; ring sizes are at most ~2^20).
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3u32;
    while d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_prime_and_increasing() {
        for w in SIZES.windows(2) {
            assert!(w[0] < w[1]);
        }
        for m in SIZES {
            assert!(is_prime(m), "{m}");
        }
    }

    #[test]
    fn auto_grows_with_the_square_of_the_backends_and_stops_at_the_cap() {
        assert_eq!(auto(0), 4093);
        assert_eq!(auto(2), 4093);
        assert_eq!(auto(3), 8191);
        assert_eq!(auto(4), 8191);
        assert_eq!(auto(10), 65537);
        assert_eq!(auto(40), 1_048_573);
        assert_eq!(auto(4096), MAX_RING_SIZE);
    }
}
