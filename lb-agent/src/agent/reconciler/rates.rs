//! Per-second rates (ipvsadm `--rate`): counters sampled every tick, the
//! difference with the previous sample divided by the time between them.

use std::{collections::BTreeMap, time::Instant};

use lb_api::types::Rates;
use lb_common::abi::{BackendId, Counters};
use lb_dataplane::{Dataplane, plan::Actual};

/// One sample of every VIP's and backend's counters.
#[derive(Default)]
struct Sample {
    at: Option<Instant>,
    vips: BTreeMap<u32, Counters>,
    backends: BTreeMap<BackendId, Counters>,
}

/// The last sample and the rates computed from the two last ones.
#[derive(Default)]
pub(super) struct Sampler {
    prev: Sample,
    vips: BTreeMap<u32, Rates>,
    backends: BTreeMap<BackendId, Rates>,
    interval: f64,
}

impl Sampler {
    /// Samples the counters of what the maps hold and updates the rates.
    pub(super) fn sample(&mut self, dp: &Dataplane, actual: &Actual) {
        let now = Instant::now();
        let mut cur = Sample {
            at: Some(now),
            ..Sample::default()
        };
        for v in actual.vips.values() {
            if let Ok(c) = dp.vip_counters(v.id) {
                cur.vips.insert(v.id, c);
            }
        }
        for id in actual.backends.keys() {
            if let Ok(c) = dp.backend_counters(*id) {
                cur.backends.insert(*id, c);
            }
        }
        if let Some(then) = self.prev.at {
            let dt = (now - then).as_secs_f64().max(1e-3);
            self.vips = rates(&cur.vips, &self.prev.vips, dt);
            self.backends = rates(&cur.backends, &self.prev.backends, dt);
            self.interval = dt;
        }
        self.prev = cur;
    }

    pub(super) fn vip(&self, id: u32) -> Rates {
        self.vips.get(&id).copied().unwrap_or_default()
    }

    pub(super) fn backend(&self, id: BackendId) -> Rates {
        self.backends.get(&id).copied().unwrap_or_default()
    }

    /// Seconds between the two samples the rates come from.
    pub(super) fn interval(&self) -> f64 {
        self.interval
    }
}

fn rates(
    cur: &BTreeMap<u32, Counters>,
    prev: &BTreeMap<u32, Counters>,
    dt: f64,
) -> BTreeMap<u32, Rates> {
    cur.iter()
        .map(|(k, a)| {
            let b = prev.get(k).copied().unwrap_or(*a);
            let per_sec = |x: u64, y: u64| x.saturating_sub(y) as f64 / dt;
            let r = Rates {
                packets_per_sec: per_sec(a.packets, b.packets),
                bytes_per_sec: per_sec(a.bytes, b.bytes),
                new_flows_per_sec: per_sec(a.new_flows, b.new_flows),
            };
            (*k, r)
        })
        .collect()
}
