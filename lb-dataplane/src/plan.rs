//! Turns desired state into map operations, in an order that never lets a packet
//! see a half-made change (pure: no maps, no clocks; [`apply`] carries it out).
//!
//! The rules the order follows:
//! - a VIP becomes visible only after its ring is in place, and disappears
//!   before its ring and backends go;
//! - a ring only ever names backends whose state is `up` when it is installed:
//!   backends are promoted (→ up) before the ring swap and demoted (→ drain,
//!   down, maint, removed) after it;
//! - a reused backend id first loses the flows and counters of its previous
//!   owner, so no stale flow follows the id to a different server.

use std::collections::{BTreeMap, BTreeSet};

use lb_common::{
    abi::{Addr, Backend, BackendId, Config, Vip, VipKey},
    consts::{MAX_BACKENDS, MAX_VIPS, config_flags, state},
    maglev::{self, MaglevBackend},
};

/// Where to send a backend's frames: our interface and MAC, and its MAC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NextHop {
    pub ifindex: u32,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
}

/// One backend of a desired VIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredBackend {
    /// Maglev key (`"10.0.0.1:80"`): the same on every LB node.
    pub key: String,
    pub addr: Addr,
    pub port: u16,
    pub weight: u32,
    /// [`lb_common::consts::state`].
    pub state: u32,
    pub next_hop: NextHop,
}

/// One desired VIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredVip {
    pub key: VipKey,
    pub flags: u32,
    pub ring_size: u32,
    pub backends: Vec<DesiredBackend>,
}

/// What the maps hold, as far as reconciling cares. Built from the maps at
/// adoption ([`Actual::from_maps`]) and kept up to date by [`apply`].
#[derive(Clone, Debug, Default)]
pub struct Actual {
    pub vips: BTreeMap<VipKey, Vip>,
    pub backends: BTreeMap<BackendId, Backend>,
    /// Per VIP id: the digest of the ring installed, and the Maglev input
    /// that produced it when we know it (skips rebuilding unchanged rings).
    pub rings: BTreeMap<u32, RingState>,
    pub vip_addrs: BTreeMap<Addr, u32>,
    pub config: Config,
    pub tx_ports: BTreeSet<u32>,
    /// Where the next id search starts, so freed ids are reused last.
    pub next_vip_id: u32,
    pub next_backend_id: BackendId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingState {
    pub input: Option<u64>,
    pub digest: u64,
}

/// One map write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    AddTxPort(u32),
    SetVipAddr(Addr, u32),
    SetConfig(Config),
    /// Drop the flows and counters left by previous owners of these ids (one
    /// pass over the flow tables for all of them).
    Forget {
        vips: Vec<u32>,
        backends: Vec<BackendId>,
    },
    SetBackend(BackendId, Backend),
    SetRing(u32, Vec<BackendId>),
    SetVip(VipKey, Vip),
    RemoveVip(VipKey),
    ClearRing(u32),
}

/// Why a desired state cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("more than {MAX_VIPS} VIPs")]
    TooManyVips,
    #[error("more than {MAX_BACKENDS} backends")]
    TooManyBackends,
    #[error("VIP {vip}: {source}")]
    Maglev {
        vip: String,
        #[source]
        source: maglev::MaglevError,
    },
}

/// FNV-1a over bytes: a stable digest for ring contents and inputs.
fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn ring_digest(slots: &[BackendId]) -> u64 {
    fnv(slots.iter().flat_map(|s| s.to_le_bytes()))
}

fn ring_input(ring_size: u32, members: &[(String, BackendId, u32)]) -> u64 {
    let mut bytes = ring_size.to_le_bytes().to_vec();
    for (k, id, w) in members {
        bytes.extend_from_slice(k.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    fnv(bytes)
}

/// Builds a VIP's ring from its `up` backends with weight.
pub fn build_ring(
    ring_size: u32,
    members: &[(String, BackendId, u32)],
) -> Result<Vec<BackendId>, maglev::MaglevError> {
    let mb: Vec<MaglevBackend<'_>> = members
        .iter()
        .map(|(k, id, w)| MaglevBackend {
            key: k.as_bytes(),
            id: *id,
            weight: *w,
        })
        .collect();
    maglev::build(&mb, ring_size)
}

fn alloc(used: &BTreeSet<u32>, cursor: &mut u32, max: u32) -> Option<u32> {
    for i in 0..max {
        let id = (*cursor + i) % max;
        if !used.contains(&id) {
            *cursor = (id + 1) % max;
            return Some(id);
        }
    }
    None
}

/// The operations that take `actual` to `desired`, in a safe order, and the
/// Maglev input of every desired ring (so unchanged rings are not rebuilt).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<Op>,
    pub ring_inputs: BTreeMap<u32, u64>,
}

/// Plans the operations that take `actual` to `desired`.
pub fn plan(actual: &Actual, desired: &[DesiredVip]) -> Result<Plan, PlanError> {
    let mut early = Vec::new(); // tx ports, addresses, config turning on, forgets
    let mut promote = Vec::new(); // backends created or moved towards `up`
    let mut rings = Vec::new(); // ring swaps and VIP inserts, ordered per VIP
    let mut demote = Vec::new(); // backends moved away from `up`
    let mut late = Vec::new(); // removals
    let mut last = Vec::new(); // address counts and switches that go down with them
    let mut forget_vips = Vec::new();
    let mut forget_backends = Vec::new();
    let mut ring_inputs = BTreeMap::new();

    let mut vip_cursor = actual.next_vip_id;
    let mut be_cursor = actual.next_backend_id;
    let mut used_vip_ids: BTreeSet<u32> = actual.vips.values().map(|v| v.id).collect();
    let mut used_be_ids: BTreeSet<u32> = actual.backends.keys().copied().collect();

    // Next hops first: redirects need their device in the devmap.
    let ports: BTreeSet<u32> = desired
        .iter()
        .flat_map(|v| v.backends.iter().map(|b| b.next_hop.ifindex))
        .filter(|&i| i != 0)
        .collect();
    for p in ports.difference(&actual.tx_ports) {
        early.push(Op::AddTxPort(*p));
    }

    // VIP addresses (how many VIPs share each).
    let mut want_addrs: BTreeMap<Addr, u32> = BTreeMap::new();
    for v in desired {
        *want_addrs.entry(v.key.addr).or_default() += 1;
    }
    for (a, n) in &want_addrs {
        match actual.vip_addrs.get(a) {
            Some(m) if m == n => {}
            Some(m) if m > n => last.push(Op::SetVipAddr(*a, *n)),
            _ => early.push(Op::SetVipAddr(*a, *n)),
        }
    }
    for a in actual
        .vip_addrs
        .keys()
        .filter(|a| !want_addrs.contains_key(a))
    {
        last.push(Op::SetVipAddr(*a, 0));
    }

    // Data-path switches.
    let wildcard = desired.iter().any(|v| v.key.port == 0);
    let mut config = actual.config;
    if wildcard {
        config.flags |= config_flags::WILDCARD_VIPS;
    } else {
        config.flags &= !config_flags::WILDCARD_VIPS;
    }
    if config != actual.config {
        if wildcard {
            early.push(Op::SetConfig(config))
        } else {
            last.push(Op::SetConfig(config))
        }
    }

    let desired_keys: BTreeSet<VipKey> = desired.iter().map(|v| v.key).collect();
    let mut kept_backends: BTreeSet<BackendId> = BTreeSet::new();

    for dv in desired {
        let (vip_id, old_vip) = match actual.vips.get(&dv.key) {
            Some(v) => (v.id, Some(*v)),
            None => {
                let id = alloc(&used_vip_ids, &mut vip_cursor, MAX_VIPS)
                    .ok_or(PlanError::TooManyVips)?;
                used_vip_ids.insert(id);
                forget_vips.push(id);
                (id, None)
            }
        };
        // Backends of this VIP already in the maps, by (addr, port).
        let existing: BTreeMap<(Addr, u16), (BackendId, Backend)> = actual
            .backends
            .iter()
            .filter(|(_, b)| b.vip == vip_id && old_vip.is_some())
            .map(|(id, b)| ((b.addr, b.port), (*id, *b)))
            .collect();
        let mut members = Vec::new();
        for db in &dv.backends {
            let want = Backend {
                state: db.state,
                ifindex: db.next_hop.ifindex,
                dst_mac: db.next_hop.dst_mac,
                src_mac: db.next_hop.src_mac,
                addr: db.addr,
                port: db.port,
                _pad: 0,
                vip: vip_id,
                _pad2: 0,
            };
            let id = match existing.get(&(db.addr, db.port)) {
                Some((id, old)) => {
                    let new = want;
                    if new != *old {
                        if db.state == state::UP || old.state != state::UP {
                            promote.push(Op::SetBackend(*id, new));
                        } else {
                            demote.push(Op::SetBackend(*id, new));
                        }
                    }
                    *id
                }
                None => {
                    let id = alloc(&used_be_ids, &mut be_cursor, MAX_BACKENDS)
                        .ok_or(PlanError::TooManyBackends)?;
                    used_be_ids.insert(id);
                    forget_backends.push(id);
                    promote.push(Op::SetBackend(id, want));
                    id
                }
            };
            kept_backends.insert(id);
            if db.state == state::UP && db.weight > 0 {
                members.push((db.key.clone(), id, db.weight));
            }
        }
        members.sort();

        let input = ring_input(dv.ring_size, &members);
        ring_inputs.insert(vip_id, input);
        let ring_op = match actual.rings.get(&vip_id) {
            Some(r) if r.input == Some(input) && old_vip.is_some() => None,
            current => {
                let slots =
                    build_ring(dv.ring_size, &members).map_err(|source| PlanError::Maglev {
                        vip: format!("{:?}", dv.key.addr.to_ip()),
                        source,
                    })?;
                match current {
                    Some(r) if r.digest == ring_digest(&slots) && old_vip.is_some() => None,
                    _ => Some(Op::SetRing(vip_id, slots)),
                }
            }
        };
        let vip = Vip {
            id: vip_id,
            flags: dv.flags,
            ring_size: dv.ring_size,
            _pad: 0,
        };
        let vip_op = (old_vip != Some(vip)).then_some(Op::SetVip(dv.key, vip));
        // A shrinking ring must be announced before it is installed, a growing
        // one after, so `slot < ring_size` always holds for the ring in place.
        let shrinking = old_vip.is_some_and(|o| o.ring_size > dv.ring_size);
        if shrinking {
            rings.extend(vip_op);
            rings.extend(ring_op);
        } else {
            rings.extend(ring_op);
            rings.extend(vip_op);
        }
    }

    // VIPs that go: unmatch first, then their ring and backends.
    for (key, vip) in &actual.vips {
        if !desired_keys.contains(key) {
            late.push(Op::RemoveVip(*key));
            late.push(Op::ClearRing(vip.id));
        }
    }
    for id in actual.backends.keys() {
        if !kept_backends.contains(id) {
            late.push(Op::SetBackend(*id, Backend::default()));
        }
    }

    if !forget_vips.is_empty() || !forget_backends.is_empty() {
        early.push(Op::Forget {
            vips: forget_vips,
            backends: forget_backends,
        });
    }
    let mut ops = early;
    ops.extend(promote);
    ops.extend(rings);
    ops.extend(demote);
    ops.extend(late);
    ops.extend(last);
    Ok(Plan { ops, ring_inputs })
}

/// The map writes [`apply`] needs; the data path implements it, tests fake it.
pub trait Maps {
    type Error;
    fn op(&mut self, op: &Op) -> Result<(), Self::Error>;
    /// After the last op: publish anything batched.
    fn finish(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Carries out the plan in order, updating `actual` as each write lands, so a
/// failure part-way leaves `actual` true to the maps and the next reconcile
/// resumes from there. Returns the number of writes.
pub fn apply<M: Maps>(maps: &mut M, actual: &mut Actual, plan: Plan) -> Result<usize, M::Error> {
    let mut n = 0;
    for op in plan.ops {
        maps.op(&op)?;
        n += 1;
        match op {
            Op::AddTxPort(i) => {
                actual.tx_ports.insert(i);
            }
            Op::SetVipAddr(a, 0) => {
                actual.vip_addrs.remove(&a);
            }
            Op::SetVipAddr(a, c) => {
                actual.vip_addrs.insert(a, c);
            }
            Op::SetConfig(c) => actual.config = c,
            Op::Forget { .. } => {}
            Op::SetBackend(id, b) => {
                if b.state == state::UNUSED {
                    actual.backends.remove(&id);
                } else {
                    actual.backends.insert(id, b);
                    actual.next_backend_id = (id + 1) % MAX_BACKENDS;
                }
            }
            Op::SetRing(id, slots) => {
                actual.rings.insert(
                    id,
                    RingState {
                        input: plan.ring_inputs.get(&id).copied(),
                        digest: ring_digest(&slots),
                    },
                );
            }
            Op::SetVip(k, v) => {
                actual.vips.insert(k, v);
                actual.next_vip_id = (v.id + 1) % MAX_VIPS;
            }
            Op::RemoveVip(k) => {
                actual.vips.remove(&k);
            }
            Op::ClearRing(id) => {
                actual.rings.remove(&id);
            }
        }
    }
    maps.finish()?;
    // Rings left alone because they already held the right slots: remember
    // their input so the next plan skips the Maglev build.
    for (id, input) in plan.ring_inputs {
        if let Some(r) = actual.rings.get_mut(&id) {
            r.input = Some(input);
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::consts::{NO_BACKEND, vip_flags};
    use std::net::IpAddr;

    /// In-memory maps that check, after every write, what a packet could see:
    /// every VIP has a ring whose size matches, and every ring slot names an
    /// `up` backend of that VIP.
    #[derive(Default)]
    struct Fake {
        vips: BTreeMap<VipKey, Vip>,
        rings: BTreeMap<u32, Vec<BackendId>>,
        backends: BTreeMap<BackendId, Backend>,
        writes: Vec<Op>,
    }

    impl Fake {
        fn check(&self) -> Result<(), String> {
            for (k, v) in &self.vips {
                let ring = self
                    .rings
                    .get(&v.id)
                    .ok_or(format!("VIP {k:?} has no ring"))?;
                if ring.len() < v.ring_size as usize {
                    return Err(format!("ring {} smaller than announced", v.id));
                }
                for &s in ring.iter().take(v.ring_size as usize) {
                    if s == NO_BACKEND {
                        continue;
                    }
                    let b = self
                        .backends
                        .get(&s)
                        .ok_or(format!("slot names missing backend {s}"))?;
                    if b.state != state::UP || b.vip != v.id {
                        return Err(format!(
                            "slot names backend {s} in state {} of vip {}",
                            b.state, b.vip
                        ));
                    }
                }
            }
            Ok(())
        }
    }

    impl Maps for Fake {
        type Error = String;
        fn op(&mut self, op: &Op) -> Result<(), String> {
            match op {
                Op::SetBackend(id, b) => {
                    if b.state == state::UNUSED {
                        self.backends.remove(id);
                    } else {
                        self.backends.insert(*id, *b);
                    }
                }
                Op::SetRing(id, s) => {
                    self.rings.insert(*id, s.clone());
                }
                Op::SetVip(k, v) => {
                    self.vips.insert(*k, *v);
                }
                Op::RemoveVip(k) => {
                    self.vips.remove(k);
                }
                Op::ClearRing(id) => {
                    self.rings.remove(id);
                }
                _ => {}
            }
            self.writes.push(op.clone());
            self.check()
        }
    }

    fn ip(s: &str) -> Addr {
        Addr::from_ip(s.parse::<IpAddr>().unwrap())
    }

    fn vip(addr: &str, port: u16, backends: &[(&str, u32, u32)]) -> DesiredVip {
        DesiredVip {
            key: VipKey::new(addr.parse().unwrap(), port, 6),
            flags: 0,
            ring_size: 13,
            backends: backends
                .iter()
                .map(|&(a, w, s)| DesiredBackend {
                    key: format!("{a}:{port}"),
                    addr: ip(a),
                    port,
                    weight: w,
                    state: s,
                    next_hop: NextHop {
                        ifindex: 2,
                        src_mac: [2, 0, 0, 0, 0, 1],
                        dst_mac: [2, 0, 0, 0, 0, 9],
                    },
                })
                .collect(),
        }
    }

    fn run(fake: &mut Fake, actual: &mut Actual, desired: &[DesiredVip]) -> Vec<Op> {
        fake.writes.clear();
        let p = plan(actual, desired).unwrap();
        apply(fake, actual, p).unwrap();
        std::mem::take(&mut fake.writes)
    }

    const UP: u32 = state::UP;
    const DRAIN: u32 = state::DRAIN;
    const DOWN: u32 = state::DOWN;

    fn kinds(ops: &[Op]) -> Vec<&'static str> {
        ops.iter()
            .map(|o| match o {
                Op::AddTxPort(_) => "tx",
                Op::SetVipAddr(..) => "addr",
                Op::SetConfig(_) => "config",
                Op::Forget { .. } => "forget",
                Op::SetBackend(_, b) if b.state == state::UNUSED => "unset-backend",
                Op::SetBackend(..) => "backend",
                Op::SetRing(..) => "ring",
                Op::SetVip(..) => "vip",
                Op::RemoveVip(_) => "remove-vip",
                Op::ClearRing(_) => "clear-ring",
            })
            .collect()
    }

    #[test]
    fn new_vip_appears_only_after_its_ring_and_backends() {
        let (mut f, mut a) = (Fake::default(), Actual::default());
        let ops = run(
            &mut f,
            &mut a,
            &[vip(
                "10.0.0.1",
                80,
                &[("10.0.1.1", 1, UP), ("10.0.1.2", 1, UP)],
            )],
        );
        assert_eq!(
            kinds(&ops),
            ["tx", "addr", "forget", "backend", "backend", "ring", "vip"]
        );
    }

    #[test]
    fn unchanged_desired_state_writes_nothing() {
        let (mut f, mut a) = (Fake::default(), Actual::default());
        let d = [vip(
            "10.0.0.1",
            80,
            &[("10.0.1.1", 1, UP), ("10.0.1.2", 2, UP)],
        )];
        run(&mut f, &mut a, &d);
        assert!(run(&mut f, &mut a, &d).is_empty());
    }

    #[test]
    fn drain_swaps_the_ring_before_the_state_and_undrain_the_reverse() {
        let (mut f, mut a) = (Fake::default(), Actual::default());
        run(
            &mut f,
            &mut a,
            &[vip(
                "10.0.0.1",
                80,
                &[("10.0.1.1", 1, UP), ("10.0.1.2", 1, UP)],
            )],
        );
        let ops = run(
            &mut f,
            &mut a,
            &[vip(
                "10.0.0.1",
                80,
                &[("10.0.1.1", 1, UP), ("10.0.1.2", 1, DRAIN)],
            )],
        );
        assert_eq!(kinds(&ops), ["ring", "backend"]);
        let ops = run(
            &mut f,
            &mut a,
            &[vip(
                "10.0.0.1",
                80,
                &[("10.0.1.1", 1, UP), ("10.0.1.2", 1, UP)],
            )],
        );
        assert_eq!(kinds(&ops), ["backend", "ring"]);
    }

    #[test]
    fn weight_change_touches_only_that_vips_ring() {
        let (mut f, mut a) = (Fake::default(), Actual::default());
        let web = |w| vip("10.0.0.1", 80, &[("10.0.1.1", 1, UP), ("10.0.1.2", w, UP)]);
        let dns = vip("10.0.0.2", 53, &[("10.0.2.1", 1, UP)]);
        run(&mut f, &mut a, &[web(1), dns.clone()]);
        let ops = run(&mut f, &mut a, &[web(3), dns]);
        let web_id = a.vips[&VipKey::new("10.0.0.1".parse().unwrap(), 80, 6)].id;
        assert_eq!(ops, vec![Op::SetRing(web_id, f.rings[&web_id].clone())]);
    }

    #[test]
    fn removing_a_vip_unmatches_it_first_then_frees_everything() {
        let (mut f, mut a) = (Fake::default(), Actual::default());
        run(
            &mut f,
            &mut a,
            &[vip("10.0.0.1", 80, &[("10.0.1.1", 1, UP)])],
        );
        let ops = run(&mut f, &mut a, &[]);
        assert_eq!(
            kinds(&ops),
            ["remove-vip", "clear-ring", "unset-backend", "addr"]
        );
        assert!(f.backends.is_empty() && f.rings.is_empty() && a.vip_addrs.is_empty());
    }

    #[test]
    fn shrinking_ring_is_announced_first_growing_ring_installed_first() {
        let (mut f, mut a) = (Fake::default(), Actual::default());
        let mut d = vip("10.0.0.1", 80, &[("10.0.1.1", 1, UP)]);
        run(&mut f, &mut a, std::slice::from_ref(&d));
        d.ring_size = 7;
        assert_eq!(
            kinds(&run(&mut f, &mut a, std::slice::from_ref(&d))),
            ["vip", "ring"]
        );
        d.ring_size = 17;
        assert_eq!(
            kinds(&run(&mut f, &mut a, std::slice::from_ref(&d))),
            ["ring", "vip"]
        );
    }

    #[test]
    fn ids_stay_stable_and_freed_ids_are_reused_last() {
        let (mut f, mut a) = (Fake::default(), Actual::default());
        run(
            &mut f,
            &mut a,
            &[vip(
                "10.0.0.1",
                80,
                &[("10.0.1.1", 1, UP), ("10.0.1.2", 1, UP)],
            )],
        );
        let id_of = |a: &Actual, addr: &str| {
            a.backends
                .iter()
                .find(|(_, b)| b.addr == ip(addr))
                .map(|(i, _)| *i)
        };
        let b2 = id_of(&a, "10.0.1.2").unwrap();
        run(
            &mut f,
            &mut a,
            &[vip("10.0.0.1", 80, &[("10.0.1.2", 1, UP)])],
        );
        assert_eq!(
            id_of(&a, "10.0.1.2"),
            Some(b2),
            "a kept backend keeps its id"
        );
        let ops = run(
            &mut f,
            &mut a,
            &[vip(
                "10.0.0.1",
                80,
                &[("10.0.1.2", 1, UP), ("10.0.1.3", 1, UP)],
            )],
        );
        let b3 = id_of(&a, "10.0.1.3").unwrap();
        assert!(b3 > b2, "freed id 0 is not reused while others are free");
        assert!(ops.contains(&Op::Forget {
            vips: vec![],
            backends: vec![b3]
        }));
    }

    #[test]
    fn every_transition_keeps_what_packets_see_consistent() {
        // Walk through a sequence of desired states; Fake::check runs after every write.
        let states = [
            vec![vip(
                "10.0.0.1",
                80,
                &[
                    ("10.0.1.1", 1, UP),
                    ("10.0.1.2", 1, UP),
                    ("10.0.1.3", 1, UP),
                ],
            )],
            vec![vip(
                "10.0.0.1",
                80,
                &[
                    ("10.0.1.1", 1, DOWN),
                    ("10.0.1.2", 5, UP),
                    ("10.0.1.3", 1, DRAIN),
                ],
            )],
            vec![
                vip("10.0.0.1", 80, &[("10.0.1.3", 1, UP)]),
                vip("10.0.0.1", 0, &[("10.0.1.4", 1, UP)]),
            ],
            vec![vip("10.0.0.1", 0, &[("10.0.1.4", 1, DOWN)])],
            vec![],
        ];
        let (mut f, mut a) = (Fake::default(), Actual::default());
        for d in &states {
            run(&mut f, &mut a, d);
        }
        assert!(f.vips.is_empty() && f.backends.is_empty());
    }

    #[test]
    fn wildcard_vips_switch_the_config_flag() {
        let (mut f, mut a) = (Fake::default(), Actual::default());
        let mut d = vip("10.0.0.1", 0, &[("10.0.1.1", 1, UP)]);
        d.flags = vip_flags::HASH_SRC_PORT;
        run(&mut f, &mut a, &[d]);
        assert_ne!(a.config.flags & config_flags::WILDCARD_VIPS, 0);
        run(
            &mut f,
            &mut a,
            &[vip("10.0.0.1", 80, &[("10.0.1.1", 1, UP)])],
        );
        assert_eq!(a.config.flags & config_flags::WILDCARD_VIPS, 0);
    }
}
