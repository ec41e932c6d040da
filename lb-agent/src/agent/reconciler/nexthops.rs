//! Next hops arriving from the resolver, and changes in the kernel's
//! neighbour table: each moves the backends at that address in or out of
//! their rings, in the services that use them.

use std::{collections::BTreeSet, net::IpAddr};

use lb_api::events::Cause;
use lb_dataplane::plan::NextHop;

use super::{Reconciler, sync::Scope};
use crate::{
    agent::neighbours::NeighbourEvent,
    desired::{self, NextHops},
};

impl Reconciler {
    /// Asks for the next hops of the backend addresses in `only` (all when
    /// `None`); the answer arrives as `Msg::NextHops`.
    pub(super) fn request_resolution(&self, only: Option<&BTreeSet<IpAddr>>) {
        let batch: Vec<_> = desired::targets(&self.eff.pools)
            .into_iter()
            .filter(|t| only.is_none_or(|o| o.contains(&t.addr)))
            .collect();
        if !batch.is_empty() {
            let _ = self.resolve.send(batch);
        }
    }

    pub(super) fn retry_failed_next_hops(&self) {
        let failed: BTreeSet<IpAddr> = self
            .next_hops
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(a, _)| *a)
            .collect();
        if !failed.is_empty() {
            self.request_resolution(Some(&failed));
        }
    }

    pub(super) fn on_next_hops(&mut self, hops: NextHops) {
        let mut changed = BTreeSet::new();
        for (addr, r) in hops {
            let old = self.next_hops.get(&addr);
            match (&r, old) {
                (Err(e), Some(Ok(_))) => {
                    tracing::warn!(backend = %addr, error = %e, "next hop lost: backend taken out")
                }
                (Err(e), None) => {
                    tracing::warn!(backend = %addr, error = %e, "backend unreachable (kept down)")
                }
                (Ok(_), Some(Err(_)) | None) => {
                    tracing::info!(backend = %addr, "next hop resolved")
                }
                _ => {}
            }
            if old != Some(&r) {
                changed.insert(addr);
            }
            self.next_hops.insert(addr, r);
        }
        let result = self.sync_addresses(&changed);
        self.answer_pending(result);
    }

    /// Rewrites the services whose pools hold a backend at one of `addrs`.
    fn sync_addresses(
        &mut self,
        addrs: &BTreeSet<IpAddr>,
    ) -> Result<usize, lb_api::types::ApiError> {
        if addrs.is_empty() {
            return Ok(0);
        }
        let pools: BTreeSet<String> = self
            .eff
            .pools
            .iter()
            .filter(|p| p.backends.iter().any(|b| addrs.contains(&b.address)))
            .map(|p| p.name.clone())
            .collect();
        self.sync(Scope::Pools(pools), Cause::NextHop)
    }

    /// Answers the changes that were waiting for these next hops.
    fn answer_pending(&mut self, result: Result<usize, lb_api::types::ApiError>) {
        for mut p in std::mem::take(&mut self.pending) {
            if !p.addrs.iter().all(|a| self.next_hops.contains_key(a)) {
                self.pending.push(p);
                continue;
            }
            for a in &p.addrs {
                if let Some(Err(e)) = self.next_hops.get(a) {
                    p.result.warnings.push(format!("backend {a} is down: {e}"));
                }
            }
            let _ = p.reply.send(match &result {
                Ok(n) => {
                    p.result.map_writes += n;
                    Ok(p.result)
                }
                Err(e) => Err(e.clone()),
            });
        }
    }

    pub(super) fn on_neighbour(&mut self, ev: NeighbourEvent) {
        let Some(Ok(hop)) = self.next_hops.get(&ev.addr).cloned() else {
            return;
        };
        if hop.ifindex != ev.ifindex {
            return;
        }
        match ev.mac {
            Some(mac) if mac != hop.dst_mac => {
                tracing::info!(
                    backend = %ev.addr,
                    old = %lb_config::MacAddr(hop.dst_mac),
                    new = %lb_config::MacAddr(mac),
                    "backend MAC changed"
                );
                self.next_hops.insert(
                    ev.addr,
                    Ok(NextHop {
                        dst_mac: mac,
                        ..hop
                    }),
                );
                if let Err(e) = self.sync_addresses(&BTreeSet::from([ev.addr])) {
                    tracing::error!(error = %e, "applying a MAC change");
                }
            }
            Some(_) => {}
            // Gone from the table (garbage-collected, or failed): keep the last
            // MAC and check again; only a failed resolution takes it out.
            None => self.request_resolution(Some(&BTreeSet::from([ev.addr]))),
        }
    }
}
