//! Maglev ring sizes: which sizes are valid (prime, bounded) and the size
//! `ring_size: auto` picks for a number of backends.

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
