//! Connection limits (HAProxy `global maxconn` and a frontend's `maxconn`):
//! a counter of connections in use that an accept loop waits on before it
//! accepts. At the limit the loop simply stops calling `accept`, so further
//! connections wait in the kernel's listen backlog: no error answer, no
//! reset, nothing to crash. A limit can be resized by a reload.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::Notify;

/// At most `max` slots in use at once.
#[derive(Debug)]
pub struct Limit {
    max: AtomicU32,
    used: AtomicU32,
    freed: Notify,
}

/// One connection's share of a [`Limit`]; freed on drop.
#[derive(Debug)]
pub struct Slot(Arc<Limit>);

impl Limit {
    pub fn new(max: u32) -> Arc<Limit> {
        Arc::new(Limit {
            max: AtomicU32::new(max),
            used: AtomicU32::new(0),
            freed: Notify::new(),
        })
    }

    /// Connections holding a slot now.
    pub fn used(&self) -> u32 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> u32 {
        self.max.load(Ordering::Relaxed)
    }

    /// Changes the limit; connections over a lowered limit stay, and no
    /// new one is taken until enough of them have ended.
    pub fn resize(&self, max: u32) {
        self.max.store(max, Ordering::Relaxed);
        self.freed.notify_waiters();
    }

    /// A slot if one is free now.
    pub fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            if used >= self.max.load(Ordering::Relaxed) {
                return None;
            }
            match self.used.compare_exchange_weak(
                used,
                used + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Slot(self.clone())),
                Err(now) => used = now,
            }
        }
    }

    /// Waits for a free slot.
    pub async fn take(self: &Arc<Self>) -> Slot {
        loop {
            // Registered before looking, so a slot freed in between wakes us.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(s) = self.try_take() {
                return s;
            }
            freed.await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::Release);
        // Every waiter looks again: waiters of several frontends share the
        // global limit, and the one woken must not be one that cannot use it.
        self.0.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_limit_waits_until_a_slot_is_freed() {
        let l = Limit::new(2);
        let a = l.take().await;
        let _b = l.take().await;
        assert!(l.try_take().is_none(), "third slot over max 2");
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.take().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        let c = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the freed slot")
            .expect("task");
        assert_eq!(l.used(), 2);
        drop(c);
        assert_eq!(l.used(), 1);
    }

    #[tokio::test]
    async fn resizing_up_wakes_waiters_and_down_keeps_connections() {
        let l = Limit::new(1);
        let a = l.take().await;
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.take().await }
        });
        tokio::task::yield_now().await;
        l.resize(2);
        let b = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the resize")
            .expect("task");
        l.resize(1);
        assert_eq!(l.used(), 2, "lowering the limit closes nothing");
        drop(a);
        assert!(l.try_take().is_none(), "still at the lowered limit");
        drop(b);
        assert!(l.try_take().is_some());
    }
}
