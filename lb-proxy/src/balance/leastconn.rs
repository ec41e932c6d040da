//! `balance leastconn`: the server with the lowest load for its weight,
//! HAProxy 2.6's key (lb_fwlc.c): 0 for an idle server, else
//! `(in_flight + 1) × SCALE / weight`, `in_flight` counting requests served
//! and waiting in the server's queue.
//!
//! HAProxy keeps servers in a tree reordered on every request start and
//! end, equal keys in the order their load last changed. lb reads the live
//! counters instead, lock-free, and breaks ties by pool order starting
//! after the server picked last: with equal loads the servers take turns,
//! as they do under HAProxy.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::servers::{Server, ServerId, Servers};

/// HAProxy's `SRV_EWGHT_MAX / BE_WEIGHT_SCALE` (`SCALE / weight` is its
/// `SRV_EWGHT_MAX / eweight`), keeping its integer rounding for weights up
/// to 256.
const SCALE: u64 = 256;
/// Above 256, a finer scale so that large weights still differ.
const FINE_SCALE: u64 = 1 << 16;

#[derive(Debug)]
pub(super) struct LeastConn {
    scale: u64,
    /// Where the next search starts: after the server picked last.
    cursor: AtomicUsize,
}

impl LeastConn {
    pub(super) fn new(servers: &Servers, cursor: usize) -> LeastConn {
        let top = servers.iter().map(|(_, s)| s.weight()).max().unwrap_or(0);
        let scale = if u64::from(top) <= SCALE {
            SCALE
        } else {
            FINE_SCALE
        };
        LeastConn {
            scale,
            cursor: AtomicUsize::new(cursor),
        }
    }

    pub(super) fn cursor(&self) -> usize {
        self.cursor.load(Relaxed)
    }

    /// The usable server with the lowest key that has room: its requests
    /// served and waiting below its `maxconn` (leastconn's own test in
    /// HAProxy's `fwlc_get_next_server`); `avoid` only when no other will
    /// do. An idle server (key 0) ends the search at once.
    pub(super) fn next(&self, servers: &Servers, avoid: Option<ServerId>) -> Option<ServerId> {
        let n = servers.len();
        let start = self.cursor.load(Relaxed).checked_rem(n)?;
        let (mut best, mut avoided): (Option<(u64, usize)>, Option<usize>) = (None, None);
        for i in (start..n).chain(0..start) {
            let Some(s) = servers.at(i).filter(|s| s.takes_new_traffic()) else {
                continue;
            };
            let in_flight = in_flight(s);
            if s.maxconn().is_some_and(|max| in_flight >= u64::from(max)) {
                continue;
            }
            if Some(ServerId::at(i)) == avoid {
                avoided = avoided.or(Some(i));
                continue;
            }
            // `key < best` without dividing: ⌊x / w⌋ < b exactly when x < b·w.
            let weight = u64::from(s.weight().max(1));
            let below =
                |b: u64| in_flight == 0 || (in_flight + 1) * self.scale < b.saturating_mul(weight);
            if best.is_none_or(|(b, _)| below(b)) {
                let key = self.key(in_flight, weight);
                best = Some((key, i));
                if key == 0 {
                    break;
                }
            }
        }
        let pick = best.map(|(_, i)| i).or(avoided)?;
        self.cursor.store(pick + 1, Relaxed);
        Some(ServerId::at(pick))
    }

    fn key(&self, in_flight: u64, weight: u64) -> u64 {
        if in_flight == 0 {
            0
        } else {
            (in_flight + 1) * self.scale / weight
        }
    }
}

/// Requests served and waiting for the server.
fn in_flight(s: &Server) -> u64 {
    u64::from(s.load().active()) + u64::from(s.load().queued())
}
