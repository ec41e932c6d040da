//! HAProxy 2.6's server map (lb_map.c): the servers that take new traffic,
//! each repeated as many times as its weight (weights first divided by
//! their greatest common divisor), interleaved so that the first server
//! comes first and equal weights keep pool order. `static-rr` walks it in
//! a circle; `hash-type map-based` takes entry `hash % length`, and its
//! round robin fallback walks it too.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::servers::{ServerId, Servers};

#[derive(Debug)]
pub(super) struct Map {
    /// Server positions in [`Servers`], `Σ weight / gcd` entries.
    table: Box<[u32]>,
    /// The next entry of the circular walk (HAProxy's `rr_idx`).
    cursor: AtomicUsize,
}

impl Map {
    /// The map of `servers`; `cursor` carries the walk's place across a
    /// rebuild (HAProxy keeps `rr_idx` when a server changes state).
    pub(super) fn new(servers: &Servers, cursor: usize) -> Map {
        let weights: Vec<u32> = servers.iter().map(|(_, s)| s.weight()).collect();
        let gcd = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
        let slots: Vec<(u32, u64)> = servers
            .iter()
            .filter(|(_, s)| s.takes_new_traffic())
            .map(|(id, s)| (id.index() as u32, u64::from(s.weight() / gcd.max(1))))
            .collect();
        Map {
            table: interleave(&slots),
            cursor: AtomicUsize::new(cursor),
        }
    }

    pub(super) fn cursor(&self) -> usize {
        self.cursor.load(Relaxed)
    }

    /// `hash-type map-based`: the entry at `hash % length` (HAProxy's
    /// `map_get_server_hash`: full servers are returned too, the request
    /// waits for them; a server to avoid is not avoided).
    pub(super) fn by_hash(&self, hash: u32) -> Option<ServerId> {
        let len = u32::try_from(self.table.len()).ok().filter(|l| *l > 0)?;
        let at = (hash % len) as usize;
        self.table.get(at).map(|&i| ServerId::at(i as usize))
    }

    /// The next server of the circular walk that is not full, and not
    /// `avoid` unless it is the only one (HAProxy's `map_get_server_rr`).
    pub(super) fn next(&self, servers: &Servers, avoid: Option<ServerId>) -> Option<ServerId> {
        let len = self.table.len();
        if len == 0 {
            return None;
        }
        let mut start = self.cursor.load(Relaxed);
        loop {
            let (found, cursor) = self.walk(servers, avoid, start);
            match self
                .cursor
                .compare_exchange_weak(start, cursor, Relaxed, Relaxed)
            {
                Ok(_) => return found,
                Err(now) => start = now,
            }
        }
    }

    /// One walk from `start`: the server found and where the next walk starts.
    fn walk(
        &self,
        servers: &Servers,
        avoid: Option<ServerId>,
        start: usize,
    ) -> (Option<ServerId>, usize) {
        let len = self.table.len();
        let first = if start >= len { 0 } else { start };
        let (mut at, mut avoided) = (first, None);
        loop {
            let id = ServerId::at(self.table[at] as usize);
            at += 1;
            if servers.get(id).is_some_and(|s| !s.is_full()) {
                avoided = Some((id, at));
                if Some(id) != avoid {
                    return (Some(id), at);
                }
            }
            if at == len {
                at = 0;
            }
            if at == first {
                return match avoided {
                    Some((id, next)) => (Some(id), next),
                    None => (None, first),
                };
            }
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// HAProxy's `recalc_server_map`: for each entry, every server adds its
/// weight to its score and the first with the highest `(score + total) /
/// total` takes the entry and gives back `total`.
fn interleave(slots: &[(u32, u64)]) -> Box<[u32]> {
    let total: u64 = slots.iter().map(|(_, w)| w).sum();
    if slots.len() == 1 {
        return vec![slots[0].0; total as usize].into();
    }
    let total_i = total as i64;
    let mut score = vec![0i64; slots.len()];
    let mut table = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best: Option<(usize, i64)> = None;
        for (k, (_, w)) in slots.iter().enumerate() {
            score[k] += *w as i64;
            let v = (score[k] + total_i) / total_i;
            if best.is_none_or(|(_, max)| v > max) {
                best = Some((k, v));
            }
        }
        if let Some((k, _)) = best {
            table.push(slots[k].0);
            score[k] -= total_i;
        }
    }
    table.into()
}
