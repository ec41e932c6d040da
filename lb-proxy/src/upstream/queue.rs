//! Server slots and queues (HAProxy's `maxconn` on a server): a server with
//! a `maxconn` serves that many requests at once; the next ones wait, in
//! the server's own queue when they must go to that server (persistence
//! cookie, hash), or in the pool's queue when any server will do (all were
//! full). A server that frees a slot hands it to the oldest waiter of its
//! queue or the pool's, so the pool queue drains into whichever server
//! frees first (HAProxy 2.6: `process_srv_queue`).
//!
//! The counts live in each server's [`Link`] (balancers read them: a full
//! server is skipped, `leastconn` weighs active + queued). A slot is an
//! [`Active`] guard, handed from the request that ends to the one that
//! waited without ever being freed in between, so a newcomer cannot slip
//! ahead of the queue. Servers without `maxconn` never queue and never
//! take the lock: their slot is one atomic increment.
//!
//! One [`Queues`] per pool, carried across rebuilds of the pool (state
//! changes, reloads) like the servers' links, so requests waiting in an
//! older generation are served by slots freed in the newer one. Server
//! queues are keyed by server name, which rebuilds keep.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::link::{Active, Link, Queued};

/// A slot handed to a waiter: on that server, already counted.
#[derive(Debug)]
pub(crate) struct Grant {
    pub(crate) link: Arc<Link>,
    pub(crate) active: Active,
}

/// What a waiter is woken with.
#[derive(Debug)]
pub(crate) enum Wake {
    Slot(Grant),
    /// Its server went down and `option redispatch` is set: choose again.
    Redispatch,
}

#[derive(Debug)]
struct Waiter {
    seq: u64,
    tx: oneshot::Sender<Wake>,
    /// Counts it in its server's `queued` while it waits there.
    _queued: Option<Queued>,
}

#[derive(Debug, Default)]
struct State {
    pool: VecDeque<Waiter>,
    servers: HashMap<Box<str>, VecDeque<Waiter>>,
    next_seq: u64,
}

/// A pool's queues: its own and one per server.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    state: Mutex<State>,
    /// Length of the pool queue, read without the lock.
    pool_len: AtomicU32,
}

/// Where a waiter sits.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Place {
    Pool,
    Server(Box<str>),
}

/// A place in a queue; [`Queues::leave`] when given up.
#[derive(Debug)]
pub(crate) struct Ticket {
    place: Place,
    seq: u64,
    pub(crate) rx: oneshot::Receiver<Wake>,
}

impl Queues {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned state is whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests waiting in the pool queue.
    pub(crate) fn pool_len(&self) -> u32 {
        self.pool_len.load(Ordering::Relaxed)
    }

    /// A slot on `seat` now, or a place in its queue: a request bound to
    /// that server waits behind the ones already waiting.
    pub(crate) fn acquire(&self, seat: &Arc<Link>) -> Result<Active, Ticket> {
        if (seat.maxconn().is_none() || seat.queued() == 0)
            && let Some(active) = seat.try_start()
        {
            return Ok(active);
        }
        let mut state = self.lock();
        let name = seat.name();
        let waiting = state.servers.get(name).is_some_and(|q| !q.is_empty());
        if !waiting && let Some(active) = seat.try_start() {
            return Ok(active);
        }
        let ticket = Self::push(&mut state, Place::Server(name.into()), Some(seat.wait()));
        // A slot freed after the check above went unseen by its releaser
        // (it saw nobody waiting): hand it over now.
        fence(Ordering::SeqCst);
        Self::dispatch(&mut state, &self.pool_len, seat, false);
        Err(ticket)
    }

    /// A place in the pool queue: every usable server was full. The caller
    /// then looks again for a server with room and [`Queues::grab`]s it, in
    /// case one freed a slot before this waiter was visible.
    pub(crate) fn wait_any(&self) -> Ticket {
        let mut state = self.lock();
        let ticket = Self::push(&mut state, Place::Pool, None);
        self.pool_len.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        ticket
    }

    fn push(state: &mut State, place: Place, queued: Option<Queued>) -> Ticket {
        let (tx, rx) = oneshot::channel();
        let seq = state.next_seq;
        state.next_seq += 1;
        let waiter = Waiter {
            seq,
            tx,
            _queued: queued,
        };
        match &place {
            Place::Pool => state.pool.push_back(waiter),
            Place::Server(name) => state
                .servers
                .entry(name.clone())
                .or_default()
                .push_back(waiter),
        }
        Ticket { place, seq, rx }
    }

    /// Gives back a slot of `seat`: to the oldest waiter of its queue or,
    /// when `takes_pool` (the server takes balanced requests), of the
    /// pool's; else frees it.
    pub(crate) fn release(&self, seat: &Arc<Link>, active: Active, takes_pool: bool) {
        if seat.maxconn().is_none() {
            return;
        }
        let nobody = |q: &Self| seat.queued() == 0 && (!takes_pool || q.pool_len() == 0);
        if nobody(self) {
            drop(active);
            // Pairs with the fence after a waiter is pushed: either it sees
            // this slot free, or this sees it waiting.
            fence(Ordering::SeqCst);
            if nobody(self) {
                return;
            }
            Self::dispatch(&mut self.lock(), &self.pool_len, seat, takes_pool);
            return;
        }
        let mut state = self.lock();
        Self::hand_over(&mut state, &self.pool_len, seat, active, takes_pool);
    }

    /// `seat` can take requests again (it came up, or its `maxconn` rose):
    /// it serves waiters up to its limit.
    pub(crate) fn grab(&self, seat: &Arc<Link>) {
        Self::dispatch(&mut self.lock(), &self.pool_len, seat, true);
    }

    /// Hands free slots of `seat` to waiters, oldest first, while there are
    /// both.
    fn dispatch(state: &mut State, pool_len: &AtomicU32, seat: &Arc<Link>, takes_pool: bool) {
        while Self::has_waiter(state, seat, takes_pool) {
            let Some(active) = seat.try_start() else {
                return;
            };
            if !Self::hand_over(state, pool_len, seat, active, takes_pool) {
                return;
            }
        }
    }

    fn has_waiter(state: &State, seat: &Arc<Link>, takes_pool: bool) -> bool {
        let own = state
            .servers
            .get(seat.name())
            .is_some_and(|q| !q.is_empty());
        own || (takes_pool && !state.pool.is_empty())
    }

    /// Gives `active` to the oldest waiter still there; false (the slot
    /// freed) when there is none. A waiter that gave up is skipped.
    fn hand_over(
        state: &mut State,
        pool_len: &AtomicU32,
        seat: &Arc<Link>,
        active: Active,
        takes_pool: bool,
    ) -> bool {
        let mut active = active;
        while let Some((waiter, from_pool)) = Self::pop_oldest(state, seat.name(), takes_pool) {
            if from_pool {
                pool_len.fetch_sub(1, Ordering::Relaxed);
            }
            let grant = Grant {
                link: seat.clone(),
                active,
            };
            match waiter.tx.send(Wake::Slot(grant)) {
                Ok(()) => return true,
                Err(Wake::Slot(back)) => active = back.active,
                Err(Wake::Redispatch) => return false,
            }
        }
        false
    }

    fn pop_oldest(state: &mut State, name: &str, takes_pool: bool) -> Option<(Waiter, bool)> {
        let own = state
            .servers
            .get(name)
            .and_then(|q| q.front())
            .map(|w| w.seq);
        let pool = state.pool.front().map(|w| w.seq).filter(|_| takes_pool);
        let from_pool = match (own, pool) {
            (Some(a), Some(b)) => b < a,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => return None,
        };
        let waiter = if from_pool {
            state.pool.pop_front()
        } else {
            state.servers.get_mut(name).and_then(VecDeque::pop_front)
        };
        waiter.map(|w| (w, from_pool))
    }

    /// A waiter gives up (`timeout queue`, client gone): removed from its
    /// queue. If a slot reached it meanwhile, the slot is released as its
    /// server's (`takes_pool` says whether that server takes balanced
    /// requests).
    pub(crate) fn leave(&self, ticket: &mut Ticket, takes_pool: impl Fn(&Arc<Link>) -> bool) {
        let removed = {
            let mut state = self.lock();
            let queue = match &ticket.place {
                Place::Pool => Some(&mut state.pool),
                Place::Server(name) => state.servers.get_mut(name),
            };
            queue
                .and_then(|q| {
                    let at = q.iter().position(|w| w.seq == ticket.seq)?;
                    q.remove(at)
                })
                .is_some()
        };
        if removed {
            if ticket.place == Place::Pool {
                self.pool_len.fetch_sub(1, Ordering::Relaxed);
            }
            return;
        }
        if let Ok(Wake::Slot(grant)) = ticket.rx.try_recv() {
            let takes = takes_pool(&grant.link);
            self.release(&grant.link, grant.active, takes);
        }
    }

    /// The server named `name` went down with `option redispatch`: its
    /// waiters choose again (HAProxy: `pendconn_redistribute`).
    pub(crate) fn redistribute(&self, name: &str) {
        let waiters: Vec<Waiter> = {
            let mut state = self.lock();
            match state.servers.get_mut(name) {
                Some(q) => q.drain(..).collect(),
                None => return,
            }
        };
        for waiter in waiters {
            let _ = waiter.tx.send(Wake::Redispatch);
        }
    }
}

#[cfg(test)]
mod tests;
