//! The per-source counters of one frontend's `rate_limit` (HAProxy's
//! stick table with `conn_rate`, `conn_cur` and `http_req_rate`), with the
//! time passed in, so it is tested without a clock.
//!
//! Rates are HAProxy's frequency counters (src/freq_ctr.c): events are
//! counted in periods aligned on multiples of the period; the rate at a
//! moment is the current period's count plus the previous period's count
//! weighted by the part of the current period still to come. A steady
//! client is read at its true rate, and a burst fades out over one period
//! instead of vanishing at a boundary.
//!
//! Memory is bounded: the sources are spread over shards, each a map with
//! its share of `table_size` entries kept in least-recently-seen order; a
//! full shard forgets its least recently seen source (one without open
//! connections, when one of the oldest few has none). A lookup locks one
//! shard, for a hash-map access: nothing is shared by all connections.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use hashlink::LinkedHashMap;
use hashlink::linked_hash_map::Entry as Slot;
use lb_config::proxy::RATE_IPV6_PREFIX;

/// Shards at most: enough that the proxy's threads rarely meet on one.
const MAX_SHARDS: usize = 64;
/// Entries a shard should hold at least before it is split further.
const MIN_PER_SHARD: usize = 256;
/// Oldest entries looked at for one without open connections when a
/// shard is full.
const EVICTION_SCAN: usize = 8;

/// Who is counted: an IPv4 address, or an IPv6 /64 (see [`RATE_IPV6_PREFIX`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source(u128);

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V4(a) => Source(0xffff_0000_0000 | u128::from(u32::from(a))),
            IpAddr::V6(a) => {
                let host_bits = 128 - u32::from(RATE_IPV6_PREFIX);
                Source(u128::from(a) >> host_bits << host_bits)
            }
        }
    }
}

/// Events over a sliding period (HAProxy's `struct freq_ctr`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Freq {
    /// Start of the current period, in ms, a multiple of the period.
    start: u64,
    curr: u32,
    prev: u32,
}

impl Freq {
    /// Moves to the period holding `now`.
    fn rotate(&mut self, now: u64, period: u64) {
        let elapsed = now.saturating_sub(self.start);
        if elapsed < period {
            return;
        }
        self.prev = if elapsed < 2 * period { self.curr } else { 0 };
        self.curr = 0;
        self.start = now - now % period;
    }

    /// Counts one event at `now`; the rate with it.
    fn add(&mut self, now: u64, period: u64) -> u32 {
        self.rotate(now, period);
        self.curr = self.curr.saturating_add(1);
        self.rate(now, period)
    }

    /// The rate at `now`, once rotated: this period's events and the
    /// previous one's in proportion to what remains of this one. Below one
    /// event a period it reads the previous count whole, as HAProxy's
    /// `read_freq_ctr_period` does, so it does not flap between 0 and 1.
    fn rate(&self, now: u64, period: u64) -> u32 {
        if self.curr == 0 && self.prev <= 1 {
            return self.prev;
        }
        let remain = (self.start + period).saturating_sub(now);
        let carried = u64::from(self.prev) * remain / period;
        self.curr
            .saturating_add(u32::try_from(carried).unwrap_or(u32::MAX))
    }
}

/// One source's counters.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    conns: Freq,
    requests: Freq,
    /// Connections open now.
    open: u32,
}

/// What a new connection finds: the connection rate and the connections
/// open, both with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub conn_rate: u32,
    pub conn_cur: u32,
}

/// The table of one frontend.
#[derive(Debug)]
pub struct RateTable {
    period_ms: u64,
    shards: Box<[Mutex<Shard>]>,
    /// Picks the shard; keyed at random, so no client can aim at one.
    spread: RandomState,
}

#[derive(Debug)]
struct Shard {
    map: LinkedHashMap<Source, Counts, RandomState>,
    cap: usize,
}

impl RateTable {
    /// A table of about `size` sources (rounded up to a multiple of the
    /// shard count) counting over `period_ms`.
    pub fn new(size: u32, period_ms: u64) -> RateTable {
        let size = size.max(1) as usize;
        let shards = (size / MIN_PER_SHARD)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two();
        let cap = size.div_ceil(shards);
        RateTable {
            period_ms: period_ms.max(1),
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        map: LinkedHashMap::with_hasher(RandomState::new()),
                        cap,
                    })
                })
                .collect(),
            spread: RandomState::new(),
        }
    }

    /// Sources tracked at most.
    pub fn capacity(&self) -> usize {
        self.shards.len() * self.with_shard(0, |s| s.cap)
    }

    /// Sources tracked now.
    pub fn len(&self) -> usize {
        (0..self.shards.len())
            .map(|i| self.with_shard(i, |s| s.map.len()))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new connection from `src` at `now` (ms): counted, and open until
    /// [`RateTable::close`]. Refused ones count too, as in HAProxy, where
    /// tracking comes before the rule that rejects: a source that keeps
    /// hammering stays over the limit.
    pub fn connect(&self, src: Source, now: u64) -> Seen {
        self.with(src, |c, period| {
            c.open = c.open.saturating_add(1);
            Seen {
                conn_rate: c.conns.add(now, period),
                conn_cur: c.open,
            }
        })
    }

    /// A connection counted by [`RateTable::connect`] closed. A source
    /// forgotten meanwhile (the table was full) is not brought back.
    pub fn close(&self, src: Source) {
        self.with_shard(self.shard_of(src), |s| {
            if let Some(c) = s.map.get_mut(&src) {
                c.open = c.open.saturating_sub(1);
            }
        });
    }

    /// A request from `src` at `now`: the request rate with it.
    pub fn request(&self, src: Source, now: u64) -> u32 {
        self.with(src, |c, period| c.requests.add(now, period))
    }

    /// Runs `f` on the counters of `src`, made the most recently seen
    /// (and created, forgetting another if the shard is full).
    fn with<T>(&self, src: Source, f: impl FnOnce(&mut Counts, u64) -> T) -> T {
        let period = self.period_ms;
        self.with_shard(self.shard_of(src), |s| {
            if s.map.len() >= s.cap && !s.map.contains_key(&src) {
                s.evict();
            }
            let counts = match s.map.entry(src) {
                Slot::Occupied(mut o) => {
                    o.to_back();
                    o.into_mut()
                }
                Slot::Vacant(v) => v.insert(Counts::default()),
            };
            f(counts, period)
        })
    }

    fn shard_of(&self, src: Source) -> usize {
        // The shard count is a power of two.
        self.spread.hash_one(src) as usize & (self.shards.len() - 1)
    }

    fn with_shard<T>(&self, i: usize, f: impl FnOnce(&mut Shard) -> T) -> T {
        // A panic while holding a shard leaves counters, never a broken map.
        let mut s = self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut s)
    }
}

impl Shard {
    /// Forgets the least recently seen source without open connections
    /// among the oldest few; failing that, the least recently seen.
    fn evict(&mut self) {
        for _ in 0..EVICTION_SCAN {
            let Some((src, counts)) = self.map.pop_front() else {
                return;
            };
            if counts.open == 0 {
                return;
            }
            self.map.insert(src, counts);
        }
        self.map.pop_front();
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
