//! Health checks (keepalived's checkers, HAProxy's `check`): one task per
//! checked backend runs its check when due, counts the results with
//! HAProxy's thresholds, and reports a change of verdict to the reconciler,
//! which takes the backend out of (or back into) the rings of every service
//! using its pool. Checks never run on the reconciler's thread, and at most
//! `health.concurrency` run at once.
//!
//! - `thresholds`: the rise/fall counter and the interval it asks for (pure);
//! - `schedule`: when the first checks run (spread over the interval);
//! - `checks`: the checks themselves, one module per type;
//! - `runner`: the tasks, the shared table of results, the histograms;
//! - `via`: marks and policy routes for checks sent through a service (DR).

mod checks;
mod runner;
mod schedule;
mod thresholds;
pub mod via;

pub use checks::Aim;
pub use runner::{Change, Checks, DURATION_BUCKETS, PoolStats, Snapshot, Target};
pub use thresholds::Health;
