//! lb's own health as a tracked thing: a pool passes while at least one of
//! its backends is `up` (in the rings). States start as the file sets them
//! and follow the agent's `backend_state` events (health checks, next hops,
//! operators), so no hook into the reconciler is needed.

use std::collections::BTreeMap;

use lb_api::events::{Event, EventKind};
use lb_api::types::BackendState;
use lb_config::{AdminState, Config};
use tokio::sync::{broadcast, watch};

use super::Facts;

/// Follows the events from `states` on.
pub(super) async fn watch(
    mut states: States,
    mut rx: broadcast::Receiver<Event>,
    tx: watch::Sender<Facts>,
) {
    loop {
        match rx.recv().await {
            Ok(e) => {
                if apply(&mut states, &e.kind) {
                    publish(&states, &tx);
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "vrrp pool tracking fell behind the event bus");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Pool → backend → up.
pub(super) type States = BTreeMap<String, BTreeMap<String, bool>>;

/// As the file sets them.
pub(super) fn initial(file: &Config) -> States {
    file.pools
        .iter()
        .map(|p| {
            let b = p
                .backends
                .iter()
                .map(|b| (b.name.clone(), b.state == AdminState::Up));
            (p.name.clone(), b.collect())
        })
        .collect()
}

/// Whether `kind` changed a backend's state.
fn apply(states: &mut States, kind: &EventKind) -> bool {
    match kind {
        EventKind::BackendState {
            pool, backend, to, ..
        } => {
            let up = *to == BackendState::Up;
            states
                .entry(pool.clone())
                .or_default()
                .insert(backend.clone(), up)
                != Some(up)
        }
        EventKind::BackendRemoved { pool, backend } => states
            .get_mut(pool)
            .and_then(|p| p.remove(backend))
            .is_some(),
        EventKind::PoolRemoved { pool } => states.remove(pool).is_some(),
        _ => false,
    }
}

fn publish(states: &States, tx: &watch::Sender<Facts>) {
    tx.send_if_modified(|f| publish_into(states, f));
}

/// Writes each tracked pool's health into `f`; whether any changed.
pub(super) fn publish_into(states: &States, f: &mut Facts) -> bool {
    let mut changed = false;
    for (pool, known) in f.pools.iter_mut() {
        let healthy = Some(states.get(pool).is_some_and(|b| b.values().any(|up| *up)));
        changed |= *known != healthy;
        *known = healthy;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::events::Cause;

    fn state(backend: &str, to: BackendState) -> EventKind {
        EventKind::BackendState {
            pool: "web".into(),
            backend: backend.into(),
            address: [10, 0, 0, 2].into(),
            port: Some(80),
            from: None,
            to,
            cause: Cause::Health,
            reason: String::new(),
        }
    }

    #[test]
    fn a_pool_is_healthy_while_a_backend_is_up() {
        let file = lb_config::parse(
            "pools: {web: {backends: [{address: 10.0.0.1, name: a}, {address: 10.0.0.2, name: b, state: maint}]}}",
            "t",
        )
        .unwrap()
        .config;
        let mut s = initial(&file);
        let healthy = |s: &States| s["web"].values().any(|u| *u);
        assert!(healthy(&s));
        assert!(apply(&mut s, &state("a", BackendState::Down)));
        assert!(!healthy(&s));
        assert!(!apply(&mut s, &state("a", BackendState::Down)), "no change");
        assert!(apply(&mut s, &state("b", BackendState::Up)));
        assert!(healthy(&s));
        assert!(apply(
            &mut s,
            &EventKind::BackendRemoved {
                pool: "web".into(),
                backend: "b".into()
            }
        ));
        assert!(!healthy(&s));
    }
}
