//! The checking tasks: one per checked backend, started, kept or replaced
//! when the set of targets changes ([`Checks::set`]), each running its check
//! when due and publishing what it saw in a table the reconciler reads for
//! `status` and metrics. A change of verdict goes to the reconciler through
//! the `on_change` callback.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use lb_api::types::{CheckFailure, CheckResult, CheckStatus};
use lb_config::check::{CheckKind, CheckTiming};
use tokio::{sync::Semaphore, task::JoinHandle, time::Instant};

use super::{Aim, Health, checks, schedule};

/// Upper bounds (seconds) of the check-duration histogram's buckets.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// One backend to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: CheckKind,
    pub timing: CheckTiming,
    pub aim: Aim,
    /// Whether it starts healthy (HAProxy: yes, on probation). A backend the
    /// adopted data path already had down starts unhealthy, so an agent
    /// restart does not put a dead backend back for one check.
    pub healthy_at_start: bool,
}

impl Target {
    fn key(&self) -> (String, String) {
        (self.aim.pool.clone(), self.aim.backend.clone())
    }
}

/// A change of verdict, for the reconciler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub pool: String,
    pub backend: String,
    pub healthy: bool,
    pub check: String,
    /// The last failure, when it went unhealthy.
    pub failure: Option<CheckFailure>,
}

/// What the checks have seen, per backend and per pool.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub backends: BTreeMap<(String, String), CheckStatus>,
    /// Per pool: check-duration bucket counts (over [`DURATION_BUCKETS`],
    /// then +Inf), their sum in seconds, and failures by kind.
    pub pools: BTreeMap<String, PoolStats>,
}

/// Per pool statistics of its checks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolStats {
    pub buckets: [u64; DURATION_BUCKETS.len() + 1],
    pub sum_secs: f64,
    pub failures: BTreeMap<&'static str, u64>,
}

struct Running {
    target: Target,
    task: JoinHandle<()>,
}

/// The set of checking tasks and what they saw.
pub struct Checks {
    running: BTreeMap<(String, String), Running>,
    table: Arc<Mutex<Snapshot>>,
    permits: Arc<Semaphore>,
    on_change: Arc<dyn Fn(Change) + Send + Sync>,
    runtime: tokio::runtime::Handle,
}

impl Checks {
    /// No checks yet; at most `concurrency` will run at once, on `runtime`.
    pub fn new(
        concurrency: u32,
        runtime: tokio::runtime::Handle,
        on_change: impl Fn(Change) + Send + Sync + 'static,
    ) -> Checks {
        Checks {
            running: BTreeMap::new(),
            table: Arc::default(),
            permits: Arc::new(Semaphore::new(concurrency.max(1) as usize)),
            on_change: Arc::new(on_change),
            runtime,
        }
    }

    /// Makes the running checks of the pools in `scope` (all pools: `None`)
    /// those of `targets`: new ones start (spread over their interval),
    /// changed ones restart keeping their verdict, gone ones stop.
    pub fn set(&mut self, scope: Option<&BTreeSet<String>>, targets: Vec<Target>) {
        let want: BTreeMap<_, _> = targets.into_iter().map(|t| (t.key(), t)).collect();
        let gone: Vec<_> = self
            .running
            .keys()
            .filter(|k| scope.is_none_or(|s| s.contains(&k.0)) && !want.contains_key(*k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(r) = self.running.remove(&k) {
                r.task.abort();
            }
            self.lock().backends.remove(&k);
        }
        let count = want.len();
        for (i, (key, mut target)) in want.into_iter().enumerate() {
            if self.running.get(&key).is_some_and(|r| r.target == target) {
                continue;
            }
            if let Some(old) = self.running.remove(&key) {
                old.task.abort();
                target.healthy_at_start = self.lock().backends.get(&key).is_none_or(|s| s.healthy);
            }
            let delay = schedule::first_delay(i, count, target.timing.inter);
            let task = self.runtime.spawn(watch(
                target.clone(),
                delay,
                self.table.clone(),
                self.permits.clone(),
                self.on_change.clone(),
            ));
            self.running.insert(key, Running { target, task });
        }
    }

    /// The backend's check as last seen, if it is checked.
    pub fn status(&self, pool: &str, backend: &str) -> Option<CheckStatus> {
        self.lock()
            .backends
            .get(&(pool.to_owned(), backend.to_owned()))
            .cloned()
    }

    /// Whether the backend's check holds it down.
    pub fn unhealthy(&self, pool: &str, backend: &str) -> Option<CheckStatus> {
        self.status(pool, backend).filter(|s| !s.healthy)
    }

    /// Everything seen so far (metrics).
    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        for r in self.running.values() {
            r.task.abort();
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One backend's checks, forever (until aborted).
async fn watch(
    t: Target,
    first: Duration,
    table: Arc<Mutex<Snapshot>>,
    permits: Arc<Semaphore>,
    on_change: Arc<dyn Fn(Change) + Send + Sync>,
) {
    let mut health = Health::new(t.timing.rise, t.timing.fall);
    if !t.healthy_at_start {
        health.observe(false);
    }
    record(&table, &t, &health, None, None);
    tokio::time::sleep(first).await;
    // When the next check is due: the last one's due time plus the
    // interval, not its actual start plus the interval, so that a late
    // wake-up (a busy runtime, a wait for a permit) delays one check, not
    // every one after it; detection is `fall` intervals, not `fall`
    // intervals plus `fall` delays.
    let mut due = Instant::now();
    loop {
        let start = Instant::now();
        let result = {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            checks::run(&t.kind, &t.aim, t.timing.timeout).await
        };
        let took = start.elapsed();
        let change = health.observe(result.is_ok());
        let last = CheckResult {
            failure: result.err(),
            duration_ms: took.as_secs_f64() * 1000.0,
            at_ms: unix_ms(),
        };
        if let Some(healthy) = change {
            on_change(Change {
                pool: t.aim.pool.clone(),
                backend: t.aim.backend.clone(),
                healthy,
                check: t.kind.name().to_owned(),
                failure: last.failure.clone(),
            });
        }
        record(&table, &t, &health, Some(last), change);
        due = next_due(due, health.interval(&t.timing), Instant::now());
        tokio::time::sleep_until(due).await;
    }
}

/// The check after one due at `due`, `interval` later; never in the past
/// (a check that fell a whole interval behind runs now, once, rather than
/// in a burst).
fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    (due + interval).max(now)
}

/// Publishes what a check saw.
fn record(
    table: &Mutex<Snapshot>,
    t: &Target,
    health: &Health,
    last: Option<CheckResult>,
    changed: Option<bool>,
) {
    let mut snap = table.lock().unwrap_or_else(PoisonError::into_inner);
    let (progress, threshold) = health.progress();
    let key = (t.aim.pool.clone(), t.aim.backend.clone());
    let entry = snap.backends.entry(key).or_insert_with(|| CheckStatus {
        check: t.kind.name().to_owned(),
        healthy: health.healthy(),
        progress,
        threshold,
        last: None,
        since: None,
    });
    entry.healthy = health.healthy();
    entry.progress = progress;
    entry.threshold = threshold;
    if changed.is_some() {
        entry.since = Some(unix_ms() / 1000);
    }
    let Some(last) = last else { return };
    let stats = snap.pools.entry(t.aim.pool.clone()).or_default();
    let secs = last.duration_ms / 1000.0;
    let bucket = DURATION_BUCKETS
        .iter()
        .position(|&b| secs <= b)
        .unwrap_or(DURATION_BUCKETS.len());
    stats.buckets[bucket] += 1;
    stats.sum_secs += secs;
    if let Some(f) = &last.failure {
        *stats.failures.entry(f.name()).or_default() += 1;
    }
    if let Some(e) = snap
        .backends
        .get_mut(&(t.aim.pool.clone(), t.aim.backend.clone()))
    {
        e.last = Some(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_check_does_not_push_back_the_ones_after_it() {
        let t0 = Instant::now();
        let inter = Duration::from_secs(1);
        let ms = Duration::from_millis;
        // Due at t0, woken 30 ms late: the next is still due at t0 + 1 s,
        // and the one after at t0 + 2 s.
        let next = next_due(t0, inter, t0 + ms(31));
        assert_eq!(next, t0 + inter);
        assert_eq!(next_due(next, inter, next + ms(45)), t0 + 2 * inter);
        // A check that fell more than an interval behind runs at once.
        assert_eq!(next_due(t0, inter, t0 + ms(2500)), t0 + ms(2500));
    }
}
