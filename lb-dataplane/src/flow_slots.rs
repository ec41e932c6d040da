//! Flows of given backends by where they sit in the flow tables, so that a
//! caller watching them (`drain --wait`) scans the tables once and then
//! re-reads only those slots.

use std::collections::BTreeSet;

use lb_common::abi::{Addr, BackendId, FlowSlotV4, FlowSlotV6};

use crate::{Dataplane, FlowEntry, flows::Slot};

/// Where a flow sits: which table, which slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSlot {
    pub v6: bool,
    pub index: u32,
}

impl Dataplane {
    /// The slots holding a flow of one of `backends`, in one pass over each
    /// table (no copy of the tables).
    pub fn flow_slots_of(&self, backends: &BTreeSet<BackendId>) -> Vec<FlowSlot> {
        if backends.is_empty() {
            return Vec::new();
        }
        let pick = |v6: bool| {
            move |(index, flow): (u32, lb_common::abi::Flow)| {
                backends
                    .contains(&flow.backend)
                    .then_some(FlowSlot { v6, index })
            }
        };
        let mut out: Vec<FlowSlot> = self
            .flows_v4
            .scan_indexed()
            .filter_map(pick(false))
            .collect();
        out.extend(self.flows_v6.scan_indexed().filter_map(pick(true)));
        out
    }

    /// The flow in `slot` now, if any (it may have ended, or been replaced).
    pub fn read_flow_slot(&self, slot: &FlowSlot) -> Option<FlowEntry> {
        if slot.v6 {
            let (_, s) = self.flows_v6.read(slot.index)?;
            entry_v6(&s)
        } else {
            let (_, s) = self.flows_v4.read(slot.index)?;
            entry_v4(&s)
        }
    }
}

fn entry_v4(s: &FlowSlotV4) -> Option<FlowEntry> {
    (!s.is_free()).then(|| FlowEntry {
        src: Addr::from_v4_word(s.key.src),
        dst: Addr::from_v4_word(s.key.dst),
        sport: u16::from_be(s.key.sport),
        dport: u16::from_be(s.key.dport),
        proto: s.key.proto,
        flow: s.flow,
    })
}

fn entry_v6(s: &FlowSlotV6) -> Option<FlowEntry> {
    (!s.is_free()).then(|| FlowEntry {
        src: s.key.src,
        dst: s.key.dst,
        sport: u16::from_be(s.key.sport),
        dport: u16::from_be(s.key.dport),
        proto: s.key.proto,
        flow: s.flow,
    })
}
