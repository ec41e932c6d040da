//! What a frontend counts (HAProxy's frontend stats columns): connections,
//! requests, responses by class, bytes both ways, refused and timed-out
//! requests, denials. Relaxed atomics, kept by name across reloads; the
//! metrics module and the stats page read a [`FrontSnapshot`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::histogram::{ResponseTimes, TimesSnapshot};
use crate::reject::Reason;

/// The response classes, as the metrics and the API name them, in the
/// order of `responses`.
pub const RESPONSE_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// One frontend's counters.
#[derive(Debug, Default)]
pub struct FrontCounters {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections open now.
    pub active: AtomicU64,
    /// Complete request heads read.
    pub requests: AtomicU64,
    /// Responses by status class: 1xx … 5xx, then any other.
    pub responses: [AtomicU64; 6],
    /// Bytes read from clients.
    pub bytes_in: AtomicU64,
    /// Bytes written to clients.
    pub bytes_out: AtomicU64,
    /// Requests refused as invalid (400, 501).
    pub invalid: AtomicU64,
    /// Requests whose head did not arrive within `timeout http-request` (408).
    pub timeouts: AtomicU64,
    /// Requests answered by an `http_request` deny rule.
    pub denied: AtomicU64,
    /// Exchanges cut short on the client side (closed, write failed,
    /// `timeout client`).
    pub client_errors: AtomicU64,
    /// Connections and requests refused by `src_deny`/`src_allow` and
    /// `rate_limit`, by [`Reason`] in its order. Refused connections are
    /// not in `connections`.
    pub rejected: [AtomicU64; Reason::ALL.len()],
    /// From a request head read whole to its response head ready to send
    /// (queue, connect and server included; the proxy's own answers too).
    pub response_time: ResponseTimes,
}

/// A copy of [`FrontCounters`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrontSnapshot {
    pub connections: u64,
    pub active: u64,
    pub requests: u64,
    /// Index 0 is 1xx … 4 is 5xx, 5 any other status.
    pub responses: [u64; 6],
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub invalid: u64,
    pub timeouts: u64,
    pub denied: u64,
    pub client_errors: u64,
    /// By [`Reason`], in its order.
    pub rejected: [u64; Reason::ALL.len()],
    pub response_time: TimesSnapshot,
}

impl FrontCounters {
    pub fn snapshot(&self) -> FrontSnapshot {
        FrontSnapshot {
            connections: self.connections.load(Relaxed),
            active: self.active.load(Relaxed),
            requests: self.requests.load(Relaxed),
            responses: std::array::from_fn(|i| self.responses[i].load(Relaxed)),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            invalid: self.invalid.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            denied: self.denied.load(Relaxed),
            client_errors: self.client_errors.load(Relaxed),
            rejected: std::array::from_fn(|i| self.rejected[i].load(Relaxed)),
            response_time: self.response_time.snapshot(),
        }
    }

    /// Counts a connection or request refused for `why`.
    pub fn reject(&self, why: Reason) {
        self.rejected[why as usize].fetch_add(1, Relaxed);
    }

    /// Counts a response by the class of its status.
    pub fn response(&self, status: u16) {
        let class = match status {
            100..=599 => usize::from(status / 100 - 1),
            _ => 5,
        };
        self.responses[class].fetch_add(1, Relaxed);
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        if n != 0 {
            counter.fetch_add(n, Relaxed);
        }
    }
}
