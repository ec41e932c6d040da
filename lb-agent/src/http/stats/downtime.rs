//! What the page adds to the agent's own state: each server's downtime
//! (seconds spent `down` or `maint`, HAProxy's `downtime`) and how often
//! its health check took it down (`chkdown`), counted since the agent
//! started from the event bus, the way `metrics::events` counts.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use lb_api::{
    events::{Event, EventKind},
    types::BackendState,
};
use tokio::{sync::broadcast, task::JoinHandle};

use crate::events::EventBus;

/// The counts, shared between the following task and the page.
#[derive(Clone, Debug, Default)]
pub struct Tracked {
    servers: Arc<Mutex<HashMap<(String, String), Server>>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Server {
    /// Unix ms since which it is down, if it is.
    down_since: Option<u64>,
    /// Milliseconds down before that.
    down_ms: u64,
    chkdown: u64,
}

impl Tracked {
    /// Follows `bus`: the events it kept, then every new one, until aborted.
    pub fn start(bus: &EventBus) -> (Tracked, JoinHandle<()>) {
        let tracked = Tracked::default();
        let (history, rx) = bus.follow();
        for e in &history {
            tracked.apply(e);
        }
        let t = tracked.clone();
        (tracked, tokio::spawn(follow(t, rx)))
    }

    /// `(downtime seconds, chkdown)` of `backend` of `pool` at `now` (unix s).
    pub fn of(&self, pool: &str, backend: &str, now: u64) -> (u64, u64) {
        let all = self.lock();
        let Some(s) = all.get(&(pool.to_owned(), backend.to_owned())) else {
            return (0, 0);
        };
        let open = s.down_since.map_or(0, |t| (now * 1000).saturating_sub(t));
        ((s.down_ms + open) / 1000, s.chkdown)
    }

    fn apply(&self, e: &Event) {
        let mut all = self.lock();
        match &e.kind {
            EventKind::BackendState {
                pool, backend, to, ..
            } => {
                let s = all.entry((pool.clone(), backend.clone())).or_default();
                let down = matches!(to, BackendState::Down | BackendState::Maint);
                match (s.down_since, down) {
                    (None, true) => s.down_since = Some(e.time_ms),
                    (Some(t), false) => {
                        s.down_ms += e.time_ms.saturating_sub(t);
                        s.down_since = None;
                    }
                    _ => {}
                }
            }
            EventKind::Health {
                pool,
                backend,
                healthy: false,
                ..
            } => {
                all.entry((pool.clone(), backend.clone()))
                    .or_default()
                    .chkdown += 1
            }
            EventKind::BackendRemoved { pool, backend } => {
                all.remove(&(pool.clone(), backend.clone()));
            }
            EventKind::PoolRemoved { pool } => all.retain(|(p, _), _| p != pool),
            _ => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Server>> {
        // Nothing panics while it is held; a poisoned map is still right.
        self.servers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn follow(t: Tracked, mut rx: broadcast::Receiver<Event>) {
    loop {
        match rx.recv().await {
            Ok(e) => t.apply(&e),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "the stats page's downtime count fell behind")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::events::Cause;

    fn state(time_ms: u64, to: BackendState) -> Event {
        Event {
            seq: 0,
            time_ms,
            kind: EventKind::BackendState {
                pool: "web".into(),
                backend: "b1".into(),
                address: "192.0.2.1".parse().unwrap(),
                port: None,
                from: None,
                to,
                cause: Cause::Operator,
                reason: String::new(),
            },
        }
    }

    #[test]
    fn down_and_maint_count_drain_does_not() {
        let t = Tracked::default();
        for e in [
            state(1_000, BackendState::Up),
            state(2_000, BackendState::Down),
            state(5_000, BackendState::Maint),
            state(7_000, BackendState::Drain),
            state(9_000, BackendState::Maint),
        ] {
            t.apply(&e);
        }
        // 2 s..7 s down or in maintenance, then again from 9 s.
        assert_eq!(t.of("web", "b1", 7).0, 5);
        assert_eq!(t.of("web", "b1", 20).0, 16);
        assert_eq!(t.of("web", "b2", 20), (0, 0));
        t.apply(&Event {
            seq: 0,
            time_ms: 0,
            kind: EventKind::Health {
                pool: "web".into(),
                backend: "b1".into(),
                healthy: false,
                check: "http".into(),
                reason: None,
            },
        });
        assert_eq!(t.of("web", "b1", 20).1, 1);
    }
}
