//! A bounded queue that never blocks whoever pushes: when full, the oldest
//! entry makes room (and is handed back, to be counted and logged).

use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard, PoisonError},
};

use tokio::sync::Notify;

pub struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Notify,
}

struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Queue<T> {
    /// A queue of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                capacity: capacity.max(1),
            }),
            ready: Notify::new(),
        }
    }

    /// Appends `item`; returns the oldest entry when it had to go.
    pub fn push(&self, item: T) -> Option<T> {
        let dropped = {
            let mut st = self.lock();
            let dropped = (st.items.len() >= st.capacity)
                .then(|| st.items.pop_front())
                .flatten();
            st.items.push_back(item);
            dropped
        };
        self.ready.notify_one();
        dropped
    }

    /// Changes the bound; returns how many of the oldest entries went.
    pub fn set_capacity(&self, capacity: usize) -> usize {
        let mut st = self.lock();
        st.capacity = capacity.max(1);
        let excess = st.items.len().saturating_sub(st.capacity);
        st.items.drain(..excess);
        excess
    }

    pub fn try_pop(&self) -> Option<T> {
        self.lock().items.pop_front()
    }

    /// The oldest entry, once there is one. Cancel-safe: an entry is only
    /// taken by the call that returns it.
    pub async fn pop(&self) -> T {
        loop {
            if let Some(item) = self.try_pop() {
                return item;
            }
            self.ready.notified().await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while the lock is held; carry on with what is there.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_and_keeps_order() {
        let q = Queue::new(3);
        for i in 1..=3 {
            assert_eq!(q.push(i), None);
        }
        assert_eq!(q.push(4), Some(1));
        assert_eq!(q.pop().await, 2);
        assert_eq!(q.set_capacity(1), 1);
        assert_eq!((q.pop().await, q.try_pop()), (4, None));
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let q = std::sync::Arc::new(Queue::new(2));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await }
        });
        tokio::task::yield_now().await;
        q.push("x");
        assert_eq!(waiter.await.unwrap(), "x");
    }
}
