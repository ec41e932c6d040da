//! `balance roundrobin`: HAProxy 2.6's fast weighted round robin
//! (lb_fwrr.c), step for step, so that a pool gives its servers the same
//! turns in the same order as HAProxy does for the same weights.
//!
//! Each server has a next position `npos` on a line as long as the total
//! weight; the server with the lowest position (ties: the heavier, then the
//! one queued first) goes next and moves `total / weight` further. Servers
//! whose next position falls beyond the current window wait in the "next"
//! tree; when the window is used up the trees swap. Weight and state
//! changes reposition one server without restarting the sequence.
//!
//! HAProxy's ebtrees become binary heaps ordered by (key, insertion
//! number): ebtrees return duplicate keys in insertion order, and every
//! operation on the hot path is peek, pop or push. Keys are 64-bit, so
//! weights up to lb's 65535 cannot overflow them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lb_config::MAX_WEIGHT;

use crate::servers::{ServerId, Servers};

/// Effective weight per unit of weight (HAProxy's `BE_WEIGHT_SCALE`).
const SCALE: u64 = 16;
/// Any multiple of [`SCALE`] at least the largest effective weight orders
/// servers as HAProxy's `SRV_EWGHT_MAX` does.
const EWEIGHT_MAX: u64 = (MAX_WEIGHT as u64 + 1) * SCALE;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    key: u64,
    seq: u64,
    slot: usize,
}

type Tree = BinaryHeap<Reverse<Entry>>;

/// Which tree a server belongs to (HAProxy's `lb_tree`); it keeps this
/// while taken out of the tree during a pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Out,
    Curr,
    /// One of the two trees that alternate as "init" and "next".
    Swap(usize),
}

#[derive(Clone, Debug)]
struct Slot {
    /// Effective weight, `weight × 16`.
    eweight: u64,
    usable: bool,
    npos: u64,
    lpos: u64,
    rweight: u64,
    place: Place,
}

#[derive(Clone, Debug)]
struct Group {
    slots: Vec<Slot>,
    curr: Tree,
    swap: [Tree; 2],
    /// Which of `swap` is "init"; the other is "next".
    init: usize,
    curr_pos: u64,
    curr_weight: u64,
    next_weight: u64,
    usable: usize,
    seq: u64,
}

#[derive(Debug)]
pub(super) struct Fwrr {
    group: Mutex<Group>,
}

impl Fwrr {
    /// A fresh sequence over `servers` (HAProxy's `fwrr_init_server_groups`).
    pub(super) fn new(servers: &Servers) -> Fwrr {
        let slots: Vec<Slot> = servers.iter().map(|_| Slot::out()).collect();
        let mut g = Group::empty(slots);
        for (id, s) in servers.iter() {
            g.slots[id.index()].eweight = u64::from(s.weight()) * SCALE;
            if s.takes_new_traffic() {
                g.slots[id.index()].usable = true;
                g.usable += 1;
                g.next_weight += g.slots[id.index()].eweight;
            }
        }
        (g.curr_pos, g.curr_weight) = (g.next_weight, g.next_weight);
        for (id, _) in servers.iter().filter(|(_, s)| s.takes_new_traffic()) {
            g.queue_by_weight(g.init, id.index());
        }
        Fwrr {
            group: Mutex::new(g),
        }
    }

    /// The sequence of `prev` (over `prev_servers`) carried over to
    /// `servers`: servers gone are taken out, servers whose state or weight
    /// changed are repositioned as HAProxy does when told of each change.
    pub(super) fn carry(prev: &Fwrr, prev_servers: &Servers, servers: &Servers) -> Fwrr {
        let mut g = prev.lock().clone();
        for (id, s) in prev_servers.iter() {
            if servers.find(s.name()).is_none() && g.slots[id.index()].usable {
                g.set_down(id.index());
            }
        }
        let mut g = g.renumber(prev_servers, servers);
        for (id, s) in servers.iter() {
            g.change(
                id.index(),
                s.takes_new_traffic(),
                u64::from(s.weight()) * SCALE,
            );
        }
        Fwrr {
            group: Mutex::new(g),
        }
    }

    /// The next server that is not full, not `avoid` unless it is the only
    /// one (HAProxy's `fwrr_get_next_server`).
    pub(super) fn next(&self, servers: &Servers, avoid: Option<ServerId>) -> Option<ServerId> {
        let is_full = |slot: usize| servers.at(slot).is_none_or(|s| s.is_full());
        self.lock()
            .next(avoid.map(ServerId::index), is_full)
            .map(ServerId::at)
    }

    fn lock(&self) -> MutexGuard<'_, Group> {
        // Nothing panics while the lock is held; a poisoned group is whole.
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Slot {
    fn out() -> Slot {
        Slot {
            eweight: 0,
            usable: false,
            npos: 0,
            lpos: 0,
            rweight: 0,
            place: Place::Out,
        }
    }
}

impl Group {
    fn empty(slots: Vec<Slot>) -> Group {
        let n = slots.len();
        Group {
            slots,
            curr: Tree::with_capacity(n),
            swap: [Tree::with_capacity(n), Tree::with_capacity(n)],
            init: 0,
            curr_pos: 0,
            curr_weight: 0,
            next_weight: 0,
            usable: 0,
            seq: 0,
        }
    }

    /// HAProxy's `fwrr_get_next_server` for the active group.
    fn next(&mut self, avoid: Option<usize>, is_full: impl Fn(usize) -> bool) -> Option<usize> {
        if self.usable == 0 {
            return None;
        }
        let (mut switched, mut avoided) = (false, None);
        // Servers taken out because full or avoided, put back at the end.
        let mut taken: Vec<usize> = Vec::new();
        let picked = loop {
            if self.curr_weight == 0 {
                (self.curr_pos, self.curr_weight) = (self.next_weight, self.next_weight);
            }
            let srv = loop {
                if let Some(s) = self.server_from_group() {
                    break Some(s);
                }
                if switched {
                    break None;
                }
                switched = true;
                self.switch_trees();
            };
            let Some(srv) = srv else {
                if let Some(a) = avoided {
                    self.queue_srv(a);
                }
                break avoided;
            };
            self.update_position(srv);
            self.dequeue(srv);
            self.curr_pos += 1;
            if !is_full(srv) {
                if Some(srv) != avoid || avoided.is_some() {
                    self.queue_srv(srv);
                    break Some(srv);
                }
                avoided = Some(srv);
            }
            taken.push(srv);
        };
        for s in taken.into_iter().filter(|s| Some(*s) != picked) {
            if switched {
                self.queue_by_weight(self.init, s);
            } else {
                self.queue_srv(s);
            }
        }
        picked
    }

    /// HAProxy's `fwrr_get_server_from_group`: the first of the current
    /// tree if its turn has come, else the heaviest server waiting to be
    /// placed, else the first of the current tree anyway.
    fn server_from_group(&mut self) -> Option<usize> {
        let first = self.curr.peek().map(|e| e.0.slot);
        if let Some(s) = first {
            let slot = &self.slots[s];
            if slot.eweight != 0 && slot.npos <= self.curr_pos {
                return Some(s);
            }
        }
        if let Some(s) = self.swap[self.init].peek().map(|e| e.0.slot)
            && self.slots[s].eweight != 0
        {
            (self.slots[s].npos, self.slots[s].rweight) = (0, 0);
            return Some(s);
        }
        first
    }

    /// HAProxy's `fwrr_update_position`.
    fn update_position(&mut self, s: usize) {
        let (curr_pos, next_weight) = (self.curr_pos, self.next_weight);
        let slot = &mut self.slots[s];
        let e = slot.eweight;
        if e == 0 {
            return;
        }
        if slot.npos == 0 {
            slot.npos = curr_pos;
        }
        slot.lpos = slot.npos;
        slot.npos += next_weight / e;
        slot.rweight += next_weight % e;
        if slot.rweight >= e {
            slot.rweight -= e;
            slot.npos += 1;
        }
    }

    /// HAProxy's `fwrr_queue_srv`: into the current tree at its position,
    /// or the next tree when its position is beyond the window.
    fn queue_srv(&mut self, s: usize) {
        let slot = &self.slots[s];
        if !slot.usable {
            self.slots[s].place = Place::Out;
        } else if slot.eweight == 0
            || slot.npos >= 2 * self.curr_weight
            || slot.npos >= self.curr_weight + self.next_weight
        {
            self.slots[s].npos = slot.npos.saturating_sub(self.curr_weight);
            self.queue_by_weight(1 - self.init, s);
        } else {
            let tie = (EWEIGHT_MAX + slot.rweight).saturating_sub(slot.eweight) / SCALE;
            let key = (slot.npos << 32) | tie;
            self.push(Place::Curr, s, key);
        }
    }

    /// HAProxy's `fwrr_queue_by_weight`: heaviest first.
    fn queue_by_weight(&mut self, tree: usize, s: usize) {
        let key = EWEIGHT_MAX.saturating_sub(self.slots[s].eweight);
        self.push(Place::Swap(tree), s, key);
    }

    fn push(&mut self, place: Place, slot: usize, key: u64) {
        self.seq += 1;
        let entry = Reverse(Entry {
            key,
            seq: self.seq,
            slot,
        });
        match place {
            Place::Out => return,
            Place::Curr => self.curr.push(entry),
            Place::Swap(t) => self.swap[t].push(entry),
        }
        self.slots[slot].place = place;
    }

    /// Takes a server out of its tree; it keeps its place (HAProxy's
    /// `fwrr_dequeue_srv` leaves `lb_tree` alone).
    fn dequeue(&mut self, s: usize) {
        let tree = match self.slots[s].place {
            Place::Out => return,
            Place::Curr => &mut self.curr,
            Place::Swap(t) => &mut self.swap[t],
        };
        if tree.peek().is_some_and(|e| e.0.slot == s) {
            tree.pop();
        } else {
            tree.retain(|e| e.0.slot != s);
        }
    }

    fn switch_trees(&mut self) {
        self.init = 1 - self.init;
        self.curr_weight = self.next_weight;
        self.curr_pos = self.curr_weight;
    }

    /// HAProxy's `fwrr_get_srv`: adjusts the position of a server about
    /// to be requeued according to the tree it comes from.
    fn get_srv(&mut self, s: usize) {
        let (curr_pos, curr_weight, init) = (self.curr_pos, self.curr_weight, self.init);
        let slot = &mut self.slots[s];
        match slot.place {
            Place::Swap(t) if t == init => (slot.npos, slot.rweight) = (0, 0),
            Place::Swap(_) => slot.npos += curr_weight,
            Place::Out => slot.npos = curr_pos,
            Place::Curr => {}
        }
    }
}

mod change;
