//! The one owner of the data path: a thread that holds the maps, the file
//! configuration, the runtime overrides and the next hops, answers the
//! control API, and turns every change into map writes through
//! `lb_dataplane::plan`. Everything else talks to it with [`Msg`]s.
//!
//! A change costs what it touches: a runtime change recomputes the pools it
//! changed, rebuilds the rings of the services using them, plans only those
//! VIPs and persists the overrides ([`sync`]); a reload or the start looks
//! at everything.
//!
//! - `sync`: effective state → desired VIPs → map writes, and the backend
//!   state transitions they make (events);
//! - `requests`: the control API's requests, runtime changes among them;
//! - `reload`: re-reading the configuration file;
//! - `nexthops`: resolved next hops and neighbour-table changes;
//! - `report`: status, stats, explain;
//! - `flows`: flows per backend, for `drain --wait`;
//! - `rates`: counter samples turned into per-second rates.

mod checks;
mod flows;
mod nexthops;
mod rates;
mod reload;
mod report;
mod requests;
mod sync;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::PathBuf,
    sync::mpsc::{Receiver, RecvTimeoutError},
    time::{Duration, Instant, SystemTime},
};

use lb_api::types::{ApiError, BackendState, ChangeResult, ReloadInfo};
use lb_common::abi::VipKey;
use lb_config::Config;
use lb_dataplane::{
    Dataplane,
    plan::{Actual, Desired, NextHop},
};
use tokio::sync::mpsc::UnboundedSender;

use super::Msg;
use crate::{
    api::Reply,
    desired::{NextHops, Operational, Target, Unhealthy},
    events::EventBus,
    health,
    state::{self, Effective, Overrides},
};

/// How often the clock is written, counters sampled for rates, and failed
/// next hops retried (every [`RETRY_EVERY`] ticks).
const TICK: Duration = Duration::from_secs(1);
const RETRY_EVERY: u32 = 5;

/// A reply held until the next hops it needs are resolved (a backend added at
/// runtime answers once it can take traffic, or says why not).
struct Pending {
    addrs: BTreeSet<IpAddr>,
    reply: Reply<ChangeResult>,
    result: ChangeResult,
}

/// What the reconciler starts from.
pub struct Start {
    pub dp: Dataplane,
    pub config_path: PathBuf,
    pub file: Config,
    pub overrides: Overrides,
    pub state_path: PathBuf,
    /// Persists `overrides` after each runtime change.
    pub writer: state::Writer,
    pub resolve: UnboundedSender<Vec<Target>>,
    /// Next hops resolved before the first reconcile.
    pub resolved: NextHops,
    pub events: EventBus,
    /// The health checks, not yet given any target.
    pub checks: health::Checks,
    /// Where the L7 proxy learns of reloads and backend state changes.
    pub proxy: crate::proxy::Feed,
}

pub struct Reconciler {
    dp: Dataplane,
    actual: Actual,
    desired: Desired,
    /// The data-path key of each service in `desired`, by service name.
    service_keys: BTreeMap<String, VipKey>,
    config_path: PathBuf,
    /// The last valid configuration file.
    file: Config,
    overrides: Overrides,
    state_path: PathBuf,
    writer: state::Writer,
    eff: Effective,
    next_hops: NextHops,
    /// Backends whose check holds them down.
    unhealthy: Unhealthy,
    checks: health::Checks,
    proxy: crate::proxy::Feed,
    resolve: UnboundedSender<Vec<Target>>,
    pending: Vec<Pending>,
    reloads: ReloadInfo,
    rates: rates::Sampler,
    events: EventBus,
    /// The state in effect of each (pool, backend), and since when (unix s).
    states: BTreeMap<(String, String), (BackendState, u64)>,
    flow_watches: flows::Watches,
    adopted: bool,
    torn_down: bool,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Reconciler {
    pub fn new(s: Start) -> Result<Reconciler, lb_dataplane::DataplaneError> {
        let actual = s.dp.actual()?;
        let adopted = s.dp.adopted();
        // Until ARP/NDP says otherwise, a backend already in the maps keeps the
        // next hop it has: a restart must not take a working backend down.
        let mut next_hops = NextHops::new();
        for b in actual.backends.values() {
            next_hops.insert(
                b.addr.to_ip(),
                Ok(NextHop {
                    ifindex: b.ifindex,
                    src_mac: b.src_mac,
                    dst_mac: b.dst_mac,
                }),
            );
        }
        // What was just resolved wins over what the maps remembered.
        next_hops.extend(s.resolved);
        let eff = state::effective(&s.file, &s.overrides);
        Ok(Reconciler {
            dp: s.dp,
            actual,
            desired: Desired::default(),
            service_keys: BTreeMap::new(),
            config_path: s.config_path,
            file: s.file,
            overrides: s.overrides,
            state_path: s.state_path,
            writer: s.writer,
            eff,
            next_hops,
            unhealthy: Unhealthy::new(),
            checks: s.checks,
            proxy: s.proxy,
            resolve: s.resolve,
            pending: Vec::new(),
            reloads: ReloadInfo::default(),
            rates: rates::Sampler::default(),
            events: s.events,
            states: BTreeMap::new(),
            flow_watches: flows::Watches::default(),
            adopted,
            torn_down: false,
        })
    }

    /// The first reconcile: write whatever differs from the configuration in
    /// effect. Returns the number of map writes.
    pub fn start(&mut self) -> Result<usize, ApiError> {
        self.dp
            .tick()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        for o in self.eff.orphans(&self.file, &self.overrides) {
            tracing::warn!("runtime override no longer matches the file: {o}");
        }
        for (addr, r) in &self.next_hops {
            if let Err(e) = r {
                tracing::warn!(backend = %addr, error = %e, "backend unreachable (kept down)");
            }
        }
        let n = self.sync(sync::Scope::All, lb_api::events::Cause::Startup)?;
        self.check_all();
        Ok(n)
    }

    /// What the agent knows of backends beyond the configuration.
    fn ops(&self) -> Operational<'_> {
        Operational {
            hops: &self.next_hops,
            unhealthy: &self.unhealthy,
        }
    }

    pub fn run(mut self, rx: Receiver<Msg>, done: impl FnOnce()) {
        let mut next_tick = Instant::now() + TICK;
        let mut ticks = 0u32;
        let mut next: Option<Msg> = None;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let msg = match next.take().map_or_else(|| rx.recv_timeout(wait), Ok) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Msg::Shutdown),
            };
            match msg {
                Some(Msg::Request(r)) => self.handle(*r),
                Some(Msg::NextHops(hops)) => self.on_next_hops(hops),
                Some(Msg::Neighbour(ev)) => self.on_neighbour(ev),
                Some(Msg::Health(change)) => next = self.on_health(change, &rx),
                Some(Msg::Shutdown) => break,
                None => {}
            }
            if self.torn_down {
                break;
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + TICK;
                ticks += 1;
                self.tick(ticks.is_multiple_of(RETRY_EVERY));
            }
        }
        // A stopped agent loses no runtime change.
        self.writer.finish();
        done();
    }

    fn tick(&mut self, retry: bool) {
        if let Err(e) = self.dp.tick() {
            tracing::warn!(error = %e, "writing the data path clock");
        }
        self.rates.sample(&self.dp, &self.actual);
        if retry {
            self.retry_failed_next_hops();
        }
    }
}
