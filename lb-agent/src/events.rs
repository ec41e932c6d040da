//! The agent's one event stream. Whoever changes something publishes an
//! [`EventKind`]; the bus stamps it (sequence number, time), keeps the last
//! [`HISTORY`] for `lb-ctl events`, and hands it to every subscriber: the
//! log, metrics, `GET /v1/events?follow=true` and (later) notifiers.
//! Publishing never blocks: a subscriber that falls behind loses the oldest
//! events and is told how many.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use lb_api::events::{Event, EventKind};
use tokio::sync::broadcast;

/// Events kept for readers that were not listening when they happened.
pub const HISTORY: usize = 1000;
/// Events a live subscriber may fall behind by before it loses some.
const LAG: usize = 4096;

/// A handle on the bus; clones share it.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    tx: broadcast::Sender<Event>,
}

struct State {
    next_seq: u64,
    history: VecDeque<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(LAG);
        EventBus {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    next_seq: 1,
                    history: VecDeque::with_capacity(HISTORY),
                }),
                tx,
            }),
        }
    }

    /// Stamps and publishes `kind`; returns the event.
    pub fn publish(&self, kind: EventKind) -> Event {
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        // The lock orders sequence numbers, history and delivery alike.
        let mut st = self.lock();
        let event = Event {
            seq: st.next_seq,
            time_ms,
            kind,
        };
        st.next_seq += 1;
        if st.history.len() == HISTORY {
            st.history.pop_front();
        }
        st.history.push_back(event.clone());
        // No receiver is fine: nobody is following.
        let _ = self.inner.tx.send(event.clone());
        event
    }

    /// The events kept, oldest first.
    pub fn history(&self) -> Vec<Event> {
        self.lock().history.iter().cloned().collect()
    }

    /// The events kept, and a receiver of every later one (no gap, no repeat
    /// between the two).
    pub fn follow(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let st = self.lock();
        let rx = self.inner.tx.subscribe();
        (st.history.iter().cloned().collect(), rx)
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.tx.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing can panic while the lock is held but a clone; carry on.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Logs every event as it comes (the log is one more subscriber).
pub async fn log(mut rx: broadcast::Receiver<Event>) {
    loop {
        match rx.recv().await {
            Ok(e) => tracing::info!(seq = e.seq, event = e.kind.name(), "{}", e.kind),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "event log fell behind")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_see_history_then_every_new_event_in_order() {
        let bus = EventBus::new();
        bus.publish(EventKind::AgentStopping);
        let (past, mut rx) = bus.follow();
        assert_eq!(past.iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
        bus.publish(EventKind::PoolRemoved { pool: "a".into() });
        bus.publish(EventKind::PoolRemoved { pool: "b".into() });
        assert_eq!(rx.recv().await.unwrap().seq, 2);
        assert_eq!(rx.recv().await.unwrap().seq, 3);
    }

    #[test]
    fn history_keeps_the_newest() {
        let bus = EventBus::new();
        for _ in 0..HISTORY + 5 {
            bus.publish(EventKind::AgentStopping);
        }
        let h = bus.history();
        assert_eq!(h.len(), HISTORY);
        assert_eq!(h[0].seq, 6);
        assert_eq!(h.last().map(|e| e.seq), Some(HISTORY as u64 + 5));
    }
}
