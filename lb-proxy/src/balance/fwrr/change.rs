//! How the round robin takes in a server's change of state or weight
//! without restarting its sequence (HAProxy 2.6's
//! `fwrr_set_server_status_up`/`_down` and `fwrr_update_server_weight`),
//! and how it follows servers to their positions in a rebuilt set.

use std::collections::HashMap;

use super::{Entry, Group, Place, Slot, Tree};
use crate::servers::Servers;

impl Group {
    /// Applies server `s`'s new usability and effective weight.
    pub(super) fn change(&mut self, s: usize, usable: bool, eweight: u64) {
        let slot = &self.slots[s];
        let usable = usable && eweight > 0;
        match (slot.usable, usable) {
            (false, false) => self.slots[s].eweight = eweight,
            (false, true) => self.set_up(s, eweight),
            (true, false) => {
                self.set_down(s);
                self.slots[s].eweight = eweight;
            }
            (true, true) if slot.eweight != eweight => self.reweigh(s, eweight),
            (true, true) => {}
        }
    }

    /// The server starts taking traffic: placed a share of the window
    /// ahead of the current position.
    fn set_up(&mut self, s: usize, eweight: u64) {
        self.next_weight += eweight;
        self.usable += 1;
        (self.slots[s].usable, self.slots[s].eweight) = (true, eweight);
        self.get_srv(s);
        self.slots[s].npos =
            self.curr_pos + (self.next_weight + self.curr_weight - self.curr_pos) / eweight;
        self.queue_srv(s);
    }

    /// The server stops taking traffic.
    pub(super) fn set_down(&mut self, s: usize) {
        self.next_weight = self.next_weight.saturating_sub(self.slots[s].eweight);
        self.usable = self.usable.saturating_sub(1);
        self.dequeue(s);
        self.slots[s].usable = false;
        self.slots[s].place = Place::Out;
    }

    /// A usable server's weight changes: it keeps its turn if it has not
    /// come yet, and its next one moves by its new share of the window.
    fn reweigh(&mut self, s: usize, eweight: u64) {
        self.next_weight = (self.next_weight + eweight).saturating_sub(self.slots[s].eweight);
        self.slots[s].eweight = eweight;
        match self.slots[s].place {
            p if p == Place::Swap(self.init) => {
                self.dequeue(s);
                self.queue_by_weight(self.init, s);
            }
            Place::Out => {
                self.dequeue(s);
                self.get_srv(s);
                self.slots[s].npos =
                    self.curr_pos + (self.next_weight + self.curr_weight - self.curr_pos) / eweight;
                self.queue_srv(s);
            }
            _ => {
                self.get_srv(s);
                let step = self.next_weight / eweight;
                let slot = &mut self.slots[s];
                let prev_next = slot.npos;
                slot.npos = (slot.lpos + step).min(prev_next);
                slot.rweight = 0;
                if slot.npos < self.curr_pos + 2 {
                    slot.npos = self.curr_pos + step;
                }
                self.dequeue(s);
                self.queue_srv(s);
            }
        }
    }

    /// The group over the servers of `servers`, each keeping its slot from
    /// `prev` (by name); new servers start out of every tree.
    pub(super) fn renumber(self, prev: &Servers, servers: &Servers) -> Group {
        let moved: HashMap<usize, usize> = prev
            .iter()
            .filter_map(|(old, s)| Some((old.index(), servers.find(s.name())?.index())))
            .collect();
        let mut slots: Vec<Slot> = servers.iter().map(|_| Slot::out()).collect();
        for (&old, &new) in &moved {
            if let (Some(from), Some(to)) = (self.slots.get(old), slots.get_mut(new)) {
                *to = from.clone();
            }
        }
        let map_tree = |tree: Tree| -> Tree {
            let mut out = Tree::with_capacity(slots.len());
            out.extend(tree.into_iter().filter_map(|e| {
                let slot = *moved.get(&e.0.slot)?;
                Some(std::cmp::Reverse(Entry { slot, ..e.0 }))
            }));
            out
        };
        let [t0, t1] = self.swap;
        Group {
            curr: map_tree(self.curr),
            swap: [map_tree(t0), map_tree(t1)],
            slots,
            ..self
        }
    }
}
