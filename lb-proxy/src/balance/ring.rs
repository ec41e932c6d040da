//! `hash-type consistent`: HAProxy 2.6's consistent hash ring (lb_chash.c).
//! A server taking new traffic has `weight × 16` points on a 32-bit circle,
//! point `j` at `full_hash(hash_id × 4096 + j)`; a hash goes to the nearer
//! of the points around it. A server that goes away takes its points with
//! it, so only the keys that were on it move.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::hash::full_hash;
use crate::servers::{ServerId, Servers};

/// Points per unit of weight (HAProxy's `BE_WEIGHT_SCALE`).
const SCALE: u32 = 16;
/// Point numbers reserved per server (HAProxy's `SRV_EWGHT_RANGE`).
const RANGE: u32 = 256 * SCALE;
/// HAProxy's largest weight: weights above it are scaled down so that the
/// largest is this, keeping every server's points inside its own range.
const MAX_RING_WEIGHT: u32 = 256;
/// No point was taken yet (HAProxy's NULL `last`).
const NONE: usize = usize::MAX;

#[derive(Debug)]
pub(super) struct Ring {
    /// (position, server index), sorted by position.
    points: Box<[(u32, u32)]>,
    /// The point the round robin fallback took last.
    last: AtomicUsize,
}

impl Ring {
    /// The ring of `servers`; `last` is the position of the point the
    /// fallback took last before a rebuild, if any.
    pub(super) fn new(servers: &Servers, last: Option<u32>) -> Ring {
        let top = servers.iter().map(|(_, s)| s.weight()).max().unwrap_or(0);
        let mut points = Vec::new();
        for (id, s) in servers.iter().filter(|(_, s)| s.takes_new_traffic()) {
            let weight = ring_weight(s.weight(), top);
            let base = s.hash_id().wrapping_mul(RANGE);
            for j in 0..weight * SCALE {
                points.push((full_hash(base.wrapping_add(j)), id.index() as u32));
            }
        }
        // Stable: equal positions keep insertion order, as ebtree duplicates do.
        points.sort_by_key(|p| p.0);
        let last = match last {
            Some(pos) if !points.is_empty() => points.partition_point(|p| p.0 < pos) % points.len(),
            _ => NONE,
        };
        Ring {
            points: points.into(),
            last: AtomicUsize::new(last),
        }
    }

    /// The position of the point the fallback took last, to carry across a rebuild.
    pub(super) fn last(&self) -> Option<u32> {
        self.points.get(self.last.load(Relaxed)).map(|p| p.0)
    }

    /// The server of the point nearest to `hash` (ties to the point before),
    /// then the following points while it is `avoid` (HAProxy's
    /// `chash_get_server_hash`).
    pub(super) fn by_hash(&self, hash: u32, avoid: Option<ServerId>) -> Option<ServerId> {
        let n = self.points.len();
        if n == 0 {
            return None;
        }
        let next = self.points.partition_point(|p| p.0 < hash) % n;
        let prev = (next + n - 1) % n;
        let gap_prev = hash.wrapping_sub(self.points[prev].0);
        let gap_next = self.points[next].0.wrapping_sub(hash);
        let mut at = if gap_prev <= gap_next { prev } else { next };
        let mut wrapped = 0;
        while Some(self.server(at)) == avoid {
            at += 1;
            if at == n {
                at = 0;
                wrapped += 1;
                if wrapped > 1 {
                    break;
                }
            }
        }
        Some(self.server(at))
    }

    /// The round robin fallback (no key): the server of the point after the
    /// last one taken that is not full, and not `avoid` unless no other is
    /// (HAProxy's `chash_get_next_server`).
    pub(super) fn next(&self, servers: &Servers, avoid: Option<ServerId>) -> Option<ServerId> {
        if self.points.is_empty() {
            return None;
        }
        let mut last = self.last.load(Relaxed);
        loop {
            let (found, now) = self.walk(servers, avoid, last);
            match self.last.compare_exchange_weak(last, now, Relaxed, Relaxed) {
                Ok(_) => return found,
                Err(seen) => last = seen,
            }
        }
    }

    /// One walk after `last`: the server found and the point to remember.
    fn walk(
        &self,
        servers: &Servers,
        avoid: Option<ServerId>,
        last: usize,
    ) -> (Option<ServerId>, usize) {
        let n = self.points.len();
        let first = if last < n { (last + 1) % n } else { 0 };
        let stop = if last < n { last } else { first };
        let (mut at, mut avoided) = (first, None);
        loop {
            let id = self.server(at);
            if servers.get(id).is_some_and(|s| !s.is_full()) {
                if Some(id) != avoid {
                    return (Some(id), at);
                }
                avoided = Some(at);
            }
            if at == stop {
                // Nothing found: HAProxy forgets the last point too.
                return match avoided {
                    Some(p) => (Some(self.server(p)), p),
                    None => (None, NONE),
                };
            }
            at = (at + 1) % n;
        }
    }

    fn server(&self, at: usize) -> ServerId {
        ServerId::at(self.points[at].1 as usize)
    }
}

/// A server's weight on the ring: its own up to 256 (HAProxy's largest);
/// when the pool's largest weight `top` is above 256, scaled so that `top`
/// becomes 256 (at least 1).
fn ring_weight(weight: u32, top: u32) -> u32 {
    if top <= MAX_RING_WEIGHT {
        weight
    } else {
        let scaled = u64::from(weight) * u64::from(MAX_RING_WEIGHT) / u64::from(top);
        (scaled as u32).max(1)
    }
}
