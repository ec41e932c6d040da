//! What the server side counts, per server and per pool (HAProxy's stats
//! columns: sessions, responses by class, bytes, connect errors, response
//! errors, retries, redispatches, queue and active counts with their
//! maxima). Relaxed atomics: each counter is exact on its own, and the
//! metrics module reads a [`Snapshot`] that is not one instant across all.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::histogram::{ResponseTimes, TimesSnapshot};

/// One server's or one pool's counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests (HTTP) or connections (TCP) given a server.
    pub(crate) sessions: AtomicU64,
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx, other; the
    /// proxy's own error answers included (HAProxy counts those too).
    pub(crate) responses: [AtomicU64; 6],
    /// Request (or client-to-server) bytes, body only in HTTP.
    pub(crate) bytes_in: AtomicU64,
    /// Response (or server-to-client) bytes, body only in HTTP.
    pub(crate) bytes_out: AtomicU64,
    /// Connection attempts that failed (refused, timed out, reset early).
    pub(crate) connect_errors: AtomicU64,
    /// Responses that failed: invalid, closed before or during the head,
    /// timed out (HAProxy's `eresp`).
    pub(crate) response_errors: AtomicU64,
    /// Attempts made again on the same server.
    pub(crate) retries: AtomicU64,
    /// Requests moved to another server after a failure or because their
    /// persistence server was unusable.
    pub(crate) redispatches: AtomicU64,
    /// Requests that waited for `timeout queue` and got a 503.
    pub(crate) queue_timeouts: AtomicU64,
    /// Most requests waiting in the queue at once.
    pub(crate) queue_max: AtomicU32,
    /// Most requests in flight at once.
    pub(crate) active_max: AtomicU32,
    /// Server connections opened.
    pub(crate) connections: AtomicU64,
    /// Requests sent over an idle connection taken from the pool.
    pub(crate) reused: AtomicU64,
    /// A server's: from an attempt's start (connect included) to the
    /// response head it sent. A pool's: from the request's arrival at the
    /// pool (queue and retries included) to the response head, the
    /// proxy's own 502/503/504 included.
    pub(crate) response_time: ResponseTimes,
}

/// A copy of [`Counters`] at one moment, for the metrics module and the
/// stats page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub sessions: u64,
    /// Index 0 is 1xx … 4 is 5xx, 5 is any other status.
    pub responses: [u64; 6],
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connect_errors: u64,
    pub response_errors: u64,
    pub retries: u64,
    pub redispatches: u64,
    pub queue_timeouts: u64,
    pub queue_max: u32,
    pub active_max: u32,
    pub connections: u64,
    pub reused: u64,
    pub response_time: TimesSnapshot,
}

impl Counters {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            sessions: self.sessions.load(Relaxed),
            responses: std::array::from_fn(|i| self.responses[i].load(Relaxed)),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            connect_errors: self.connect_errors.load(Relaxed),
            response_errors: self.response_errors.load(Relaxed),
            retries: self.retries.load(Relaxed),
            redispatches: self.redispatches.load(Relaxed),
            queue_timeouts: self.queue_timeouts.load(Relaxed),
            queue_max: self.queue_max.load(Relaxed),
            active_max: self.active_max.load(Relaxed),
            connections: self.connections.load(Relaxed),
            reused: self.reused.load(Relaxed),
            response_time: self.response_time.snapshot(),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n != 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Counts a response by the class of its status.
    pub(crate) fn response(&self, status: u16) {
        let class = match status {
            100..=599 => usize::from(status / 100 - 1),
            _ => 5,
        };
        self.responses[class].fetch_add(1, Relaxed);
    }

    /// Raises a maximum to `now` if above it.
    pub(crate) fn raise(max: &AtomicU32, now: u32) {
        if now > max.load(Relaxed) {
            max.fetch_max(now, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_by_class() {
        let c = Counters::default();
        for s in [101, 200, 204, 302, 404, 503, 504, 99, 600] {
            c.response(s);
        }
        assert_eq!(c.snapshot().responses, [1, 2, 1, 1, 2, 2]);
    }

    #[test]
    fn maxima_only_rise() {
        let c = Counters::default();
        Counters::raise(&c.active_max, 3);
        Counters::raise(&c.active_max, 2);
        assert_eq!(c.snapshot().active_max, 3);
    }
}
