//! Flows pinned to a backend, for `drain --wait`. In DR the LB never sees a
//! connection close from the server's side, so a flow counts as active until
//! the client sent FIN or RST, or nothing for `agent.flow_idle_timeout`.
//!
//! A drained backend takes no new flows, so the set of flow-table slots
//! holding its flows only shrinks: the first question scans the tables once
//! and remembers those slots; later ones re-read only them. The memory is
//! dropped when the backend's state changes (new flows may then arrive).

use std::collections::{BTreeMap, BTreeSet};

use lb_api::types::{ApiError, BackendState, FlowCount};
use lb_common::{abi::BackendId, consts::flow_flags};
use lb_dataplane::{FlowSlot, monotonic_secs};

use super::Reconciler;

/// Remembered slots per (pool, backend), and the state they were found in.
#[derive(Default)]
pub(super) struct Watches(BTreeMap<(String, String), Watch>);

struct Watch {
    ids: BTreeSet<BackendId>,
    state: BackendState,
    slots: Vec<FlowSlot>,
}

impl Reconciler {
    pub(super) fn flows(&mut self, pool: &str, backend: &str) -> Result<FlowCount, ApiError> {
        let (i, j) = self.eff.find_backend(pool, backend)?;
        let (p, b) = (&self.eff.pools[i], &self.eff.pools[i].backends[j]);
        let ids: BTreeSet<BackendId> = self
            .eff
            .users(&p.name)
            .iter()
            .filter_map(|&s| self.backend_id(&self.eff.services[s], b))
            .collect();
        let state = self.ops().state(&p.name, b);
        let key = (p.name.clone(), b.name.clone());
        let idle_timeout = self.file.agent.flow_idle_timeout.as_secs();
        let mut out = FlowCount {
            pool: key.0.clone(),
            backend: key.1.clone(),
            active: 0,
            closing: 0,
            idle: 0,
            idle_timeout_secs: idle_timeout,
        };
        let fresh = self
            .flow_watches
            .0
            .get(&key)
            .is_none_or(|w| w.ids != ids || w.state != state);
        if fresh {
            let slots = self.dp.flow_slots_of(&ids);
            self.flow_watches
                .0
                .insert(key.clone(), Watch { ids, state, slots });
        }
        let Some(watch) = self.flow_watches.0.get_mut(&key) else {
            return Ok(out);
        };
        let now = monotonic_secs() as u64;
        let dp = &self.dp;
        watch.slots.retain(|slot| {
            let Some(f) = dp
                .read_flow_slot(slot)
                .filter(|f| watch.ids.contains(&f.flow.backend))
            else {
                return false;
            };
            if f.flow.flags & (flow_flags::FIN | flow_flags::RST) != 0 {
                out.closing += 1;
            } else if now.saturating_sub(f.flow.atime) >= idle_timeout {
                out.idle += 1;
            } else {
                out.active += 1;
            }
            true
        });
        Ok(out)
    }
}
