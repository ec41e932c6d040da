//! What `lb_events_total` and `lb_backend_transitions_total` count: a task
//! follows the agent's event bus and counts each event as it comes; a scrape
//! reads the counts.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
};

use lb_api::{
    events::{Cause, Event, EventKind},
    types::BackendState,
};
use tokio::{sync::broadcast, task::JoinHandle};

use crate::events::EventBus;

/// The counts, shared between the counting task and scrapes.
#[derive(Clone, Debug, Default)]
pub struct EventCounts {
    counts: Arc<Mutex<Counts>>,
}

/// Events counted since the agent started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// By the event's `type`.
    pub by_type: BTreeMap<&'static str, u64>,
    /// Changes of a backend's state in effect. A backend's (or its pool's)
    /// removal drops its entries.
    pub transitions: BTreeMap<Transition, u64>,
}

/// One kind of change of one backend's state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Transition {
    pub pool: String,
    pub backend: String,
    pub to: BackendState,
    pub cause: Cause,
}

impl Counts {
    /// Counts one event.
    pub fn count(&mut self, kind: &EventKind) {
        *self.by_type.entry(kind.name()).or_default() += 1;
        match kind {
            EventKind::BackendState {
                pool,
                backend,
                to,
                cause,
                ..
            } => {
                let t = Transition {
                    pool: pool.clone(),
                    backend: backend.clone(),
                    to: *to,
                    cause: *cause,
                };
                *self.transitions.entry(t).or_default() += 1;
            }
            EventKind::BackendRemoved { pool, backend } => self
                .transitions
                .retain(|t, _| t.pool != *pool || t.backend != *backend),
            EventKind::PoolRemoved { pool } => self.transitions.retain(|t, _| t.pool != *pool),
            _ => {}
        }
    }
}

impl EventCounts {
    /// Starts counting the events of `bus`: those it kept, then every new
    /// one. The task runs until aborted (or the bus is gone).
    pub fn start(bus: &EventBus) -> (EventCounts, JoinHandle<()>) {
        let counts = EventCounts::default();
        let (history, rx) = bus.follow();
        for e in &history {
            counts.lock().count(&e.kind);
        }
        let task = tokio::spawn(counts.clone().follow(rx));
        (counts, task)
    }

    /// The counts now.
    pub fn snapshot(&self) -> Counts {
        self.lock().clone()
    }

    async fn follow(self, mut rx: broadcast::Receiver<Event>) {
        loop {
            match rx.recv().await {
                Ok(e) => self.lock().count(&e.kind),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event metrics fell behind; counts are short")
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counting cannot panic midway; carry on with what is there.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pool: &str, backend: &str, to: BackendState, cause: Cause) -> EventKind {
        EventKind::BackendState {
            pool: pool.into(),
            backend: backend.into(),
            address: [10, 0, 0, 2].into(),
            port: Some(80),
            from: None,
            to,
            cause,
            reason: "test".into(),
        }
    }

    fn transitions(c: &Counts) -> Vec<(String, BackendState, Cause, u64)> {
        c.transitions
            .iter()
            .map(|(t, n)| (format!("{}/{}", t.pool, t.backend), t.to, t.cause, *n))
            .collect()
    }

    #[test]
    fn counts_types_and_transitions_and_forgets_removed_backends() {
        let mut c = Counts::default();
        c.count(&state("web", "b1", BackendState::Drain, Cause::Operator));
        c.count(&state("web", "b1", BackendState::Drain, Cause::Operator));
        c.count(&state("web", "b2", BackendState::Down, Cause::NextHop));
        c.count(&state("dns", "d1", BackendState::Up, Cause::Startup));
        assert_eq!(c.by_type.get("backend_state"), Some(&4));
        assert_eq!(
            transitions(&c),
            [
                ("dns/d1".into(), BackendState::Up, Cause::Startup, 1),
                ("web/b1".into(), BackendState::Drain, Cause::Operator, 2),
                ("web/b2".into(), BackendState::Down, Cause::NextHop, 1),
            ]
        );
        c.count(&EventKind::BackendRemoved {
            pool: "web".into(),
            backend: "b1".into(),
        });
        assert_eq!(transitions(&c).len(), 2);
        c.count(&EventKind::PoolRemoved { pool: "web".into() });
        assert_eq!(
            transitions(&c),
            [("dns/d1".into(), BackendState::Up, Cause::Startup, 1)]
        );
        assert_eq!(c.by_type.get("backend_removed"), Some(&1));
        assert_eq!(c.by_type.get("pool_removed"), Some(&1));
    }

    #[tokio::test]
    async fn counts_the_history_then_what_follows() {
        let bus = EventBus::new();
        bus.publish(EventKind::AgentStopping);
        let (counts, task) = EventCounts::start(&bus);
        assert_eq!(counts.snapshot().by_type.get("agent_stopping"), Some(&1));
        bus.publish(EventKind::AgentStopping);
        for _ in 0..100 {
            if counts.snapshot().by_type.get("agent_stopping") == Some(&2) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(counts.snapshot().by_type.get("agent_stopping"), Some(&2));
        task.abort();
    }
}
