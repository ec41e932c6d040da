//! Turns desired state into map operations, in an order that never lets a packet
//! see a half-made change (pure: no maps, no clocks; [`apply`] carries it out).
//!
//! The rules the order follows:
//! - a VIP becomes visible only after its ring is in place, and disappears
//!   before its ring and backends go;
//! - a ring only ever names backends whose state is `up` when it is installed:
//!   backends are promoted (→ up) before the ring swap and demoted (→ drain,
//!   down, maint, removed) after it;
//! - a ring and its size change together (one ring word, see
//!   `lb_common::abi::ring_word`), so a size change is one ring write;
//! - a reused backend id first loses the flows and counters of its previous
//!   owner, so no stale flow follows the id to a different server.
//!
//! Within those rules, like writes are grouped (every ring install, then
//! every VIP change; every VIP removal, then what they leave) so the data
//! path can publish each group at once.
//!
//! Planning is incremental: [`plan`] looks only at the VIPs it is told were
//! touched, so the work of a change grows with what it changes, not with the
//! whole configuration; [`plan_full`] touches everything (start, adoption).

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

/// The whole desired data path, kept up to date one VIP at a time, with the
/// totals the data path's shared entries need (VIPs per address, wildcard
/// VIPs) maintained alongside so that no change has to recount them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    vips: BTreeMap<VipKey, DesiredVip>,
    per_addr: BTreeMap<Addr, u32>,
    wildcards: usize,
}

impl Desired {
    /// Adds or replaces a VIP; returns the one it replaced.
    pub fn set(&mut self, vip: DesiredVip) -> Option<DesiredVip> {
        let old = self.remove(&vip.key);
        *self.per_addr.entry(vip.key.addr).or_default() += 1;
        self.wildcards += usize::from(vip.key.port == 0);
        self.vips.insert(vip.key, vip);
        old
    }

    /// Removes a VIP; returns it.
    pub fn remove(&mut self, key: &VipKey) -> Option<DesiredVip> {
        let old = self.vips.remove(key)?;
        if let Some(n) = self.per_addr.get_mut(&key.addr) {
            *n -= 1;
            if *n == 0 {
                self.per_addr.remove(&key.addr);
            }
        }
        self.wildcards -= usize::from(key.port == 0);
        Some(old)
    }

    pub fn get(&self, key: &VipKey) -> Option<&DesiredVip> {
        self.vips.get(key)
    }

    pub fn vips(&self) -> impl Iterator<Item = &DesiredVip> {
        self.vips.values()
    }

    pub fn len(&self) -> usize {
        self.vips.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vips.is_empty()
    }

    /// How many desired VIPs use `addr`.
    fn vips_at(&self, addr: &Addr) -> u32 {
        self.per_addr.get(addr).copied().unwrap_or(0)
    }
}

impl FromIterator<DesiredVip> for Desired {
    fn from_iter<I: IntoIterator<Item = DesiredVip>>(iter: I) -> Self {
        let mut d = Desired::default();
        for v in iter {
            d.set(v);
        }
        d
    }
}

/// What the maps hold, as far as reconciling cares. Built from the maps at
/// adoption (`Dataplane::actual`) and kept up to date by [`apply`].
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
    /// VIP id → its backends by (address, port): an index over `backends`.
    pub(crate) by_vip: BTreeMap<u32, BTreeMap<(Addr, u16), BackendId>>,
}

impl Actual {
    /// Records a backend entry (or its removal, for `state::UNUSED`).
    fn put_backend(&mut self, id: BackendId, b: Backend) {
        if let Some(old) = self.backends.remove(&id)
            && let Some(ids) = self.by_vip.get_mut(&old.vip)
        {
            ids.remove(&(old.addr, old.port));
            if ids.is_empty() {
                self.by_vip.remove(&old.vip);
            }
        }
        if b.state != state::UNUSED {
            self.by_vip
                .entry(b.vip)
                .or_default()
                .insert((b.addr, b.port), id);
            self.backends.insert(id, b);
        }
    }

    /// The backend ids of VIP `vip` by (address, port).
    pub fn backends_of(&self, vip: u32) -> impl Iterator<Item = (&(Addr, u16), &BackendId)> {
        self.by_vip.get(&vip).into_iter().flatten()
    }

    /// `Actual` from what the maps hold (the index is derived).
    pub fn from_parts(mut a: Actual) -> Actual {
        let backends = std::mem::take(&mut a.backends);
        a.by_vip.clear();
        for (id, b) in backends {
            a.put_backend(id, b);
        }
        a
    }
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

/// The operations that take `actual` to `desired`, in a safe order, and the
/// Maglev input of every desired ring (so unchanged rings are not rebuilt).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<Op>,
    pub ring_inputs: BTreeMap<u32, u64>,
}

/// The plan being built, by phase (see the module's rules).
#[derive(Default)]
struct Phases {
    /// tx ports, addresses and switches turning on, forgets.
    early: Vec<Op>,
    /// backends created or moved towards `up`.
    promote: Vec<Op>,
    /// ring installs, then VIP changes.
    rings: Vec<Op>,
    vips: Vec<Op>,
    /// backends moved away from `up`.
    demote: Vec<Op>,
    /// VIPs that go, all together (one table flip), before their rings and
    /// backends.
    unpublish: Vec<Op>,
    /// removals.
    late: Vec<Op>,
    /// address counts and switches that go down with them.
    last: Vec<Op>,
    forget_vips: Vec<u32>,
    forget_backends: Vec<BackendId>,
    ring_inputs: BTreeMap<u32, u64>,
    /// VIP ids in use in `Actual` (collected on the first allocation).
    used_vip_ids: Option<BTreeSet<u32>>,
    /// Ids handed out by this plan (not yet in `Actual`).
    new_vip_ids: BTreeSet<u32>,
    new_backend_ids: BTreeSet<BackendId>,
    vip_cursor: u32,
    backend_cursor: BackendId,
}

impl Phases {
    fn into_plan(mut self) -> Plan {
        if !self.forget_vips.is_empty() || !self.forget_backends.is_empty() {
            self.early.push(Op::Forget {
                vips: self.forget_vips,
                backends: self.forget_backends,
            });
        }
        let mut ops = self.early;
        for phase in [
            self.promote,
            self.rings,
            self.vips,
            self.demote,
            self.unpublish,
            self.late,
            self.last,
        ] {
            ops.extend(phase);
        }
        Plan {
            ops,
            ring_inputs: self.ring_inputs,
        }
    }

    /// A free VIP id: not in use, not handed out, searched from the cursor.
    fn alloc_vip(&mut self, actual: &Actual) -> Result<u32, PlanError> {
        let used = self
            .used_vip_ids
            .get_or_insert_with(|| actual.vips.values().map(|v| v.id).collect());
        let id = (0..MAX_VIPS)
            .map(|i| (self.vip_cursor + i) % MAX_VIPS)
            .find(|id| !used.contains(id) && !self.new_vip_ids.contains(id))
            .ok_or(PlanError::TooManyVips)?;
        self.vip_cursor = (id + 1) % MAX_VIPS;
        self.new_vip_ids.insert(id);
        self.forget_vips.push(id);
        Ok(id)
    }

    /// A free backend id, likewise.
    fn alloc_backend(&mut self, actual: &Actual) -> Result<BackendId, PlanError> {
        let id = (0..MAX_BACKENDS)
            .map(|i| (self.backend_cursor + i) % MAX_BACKENDS)
            .find(|id| !actual.backends.contains_key(id) && !self.new_backend_ids.contains(id))
            .ok_or(PlanError::TooManyBackends)?;
        self.backend_cursor = (id + 1) % MAX_BACKENDS;
        self.new_backend_ids.insert(id);
        self.forget_backends.push(id);
        Ok(id)
    }
}

/// Plans everything: every desired VIP and every VIP the maps hold.
pub fn plan_full(actual: &Actual, desired: &Desired) -> Result<Plan, PlanError> {
    let touched: BTreeSet<VipKey> = desired
        .vips
        .keys()
        .chain(actual.vips.keys())
        .copied()
        .collect();
    plan(actual, desired, &touched)
}

/// Plans the operations that bring the VIPs in `touched` (desired, or only in
/// the maps) in line with `desired`, and the shared entries they affect.
pub fn plan(
    actual: &Actual,
    desired: &Desired,
    touched: &BTreeSet<VipKey>,
) -> Result<Plan, PlanError> {
    let mut ph = Phases {
        vip_cursor: actual.next_vip_id,
        backend_cursor: actual.next_backend_id,
        ..Phases::default()
    };
    plan_shared(actual, desired, touched, &mut ph);
    for key in touched {
        match desired.get(key) {
            Some(dv) => plan_vip(actual, dv, &mut ph)?,
            None => {
                if let Some(vip) = actual.vips.get(key) {
                    plan_removal(actual, *key, vip, &mut ph);
                }
            }
        }
    }
    Ok(ph.into_plan())
}

/// The entries VIPs share: redirect ports, VIP address counts, the wildcard
/// switch.
fn plan_shared(actual: &Actual, desired: &Desired, touched: &BTreeSet<VipKey>, ph: &mut Phases) {
    // Next hops first: redirects need their device in the devmap.
    let ports: BTreeSet<u32> = touched
        .iter()
        .filter_map(|k| desired.get(k))
        .flat_map(|v| v.backends.iter().map(|b| b.next_hop.ifindex))
        .filter(|&i| i != 0 && !actual.tx_ports.contains(&i))
        .collect();
    ph.early.extend(ports.into_iter().map(Op::AddTxPort));

    let addrs: BTreeSet<Addr> = touched.iter().map(|k| k.addr).collect();
    for a in addrs {
        let (want, have) = (desired.vips_at(&a), actual.vip_addrs.get(&a).copied());
        match have {
            Some(n) if n == want => {}
            Some(n) if n > want => ph.last.push(Op::SetVipAddr(a, want)),
            None if want == 0 => {}
            _ => ph.early.push(Op::SetVipAddr(a, want)),
        }
    }

    let wildcard = desired.wildcards > 0;
    let mut config = actual.config;
    if wildcard {
        config.flags |= config_flags::WILDCARD_VIPS;
    } else {
        config.flags &= !config_flags::WILDCARD_VIPS;
    }
    if config != actual.config {
        if wildcard {
            ph.early.push(Op::SetConfig(config))
        } else {
            ph.last.push(Op::SetConfig(config))
        }
    }
}

/// Creates or updates one VIP: its backends, its ring, its entry.
fn plan_vip(actual: &Actual, dv: &DesiredVip, ph: &mut Phases) -> Result<(), PlanError> {
    let old_vip = actual.vips.get(&dv.key).copied();
    let vip_id = match old_vip {
        Some(v) => v.id,
        None => ph.alloc_vip(actual)?,
    };
    let mut members = Vec::new();
    let mut kept = BTreeSet::new();
    for db in &dv.backends {
        let id = plan_backend(actual, old_vip.map(|v| v.id), vip_id, db, ph)?;
        kept.insert(id);
        if db.state == state::UP && db.weight > 0 {
            members.push((db.key.clone(), id, db.weight));
        }
    }
    if let Some(old) = old_vip {
        for (_, &id) in actual.backends_of(old.id) {
            if !kept.contains(&id) {
                ph.late.push(Op::SetBackend(id, Backend::default()));
            }
        }
    }
    members.sort();
    let ring_op = plan_ring(actual, dv, vip_id, old_vip.is_some(), &members, ph)?;
    let vip = Vip {
        id: vip_id,
        flags: dv.flags,
    };
    if old_vip != Some(vip) {
        ph.vips.push(Op::SetVip(dv.key, vip));
    }
    if let Some(op) = ring_op {
        ph.rings.push(op);
    }
    Ok(())
}

/// One backend of a VIP: its id (kept, or newly allocated) and the write
/// that brings its entry in line, in the phase its direction needs.
fn plan_backend(
    actual: &Actual,
    old_vip: Option<u32>,
    vip_id: u32,
    db: &DesiredBackend,
    ph: &mut Phases,
) -> Result<BackendId, PlanError> {
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
    let existing = old_vip.and_then(|v| {
        let id = *actual.by_vip.get(&v)?.get(&(db.addr, db.port))?;
        Some((id, actual.backends.get(&id)?))
    });
    Ok(match existing {
        Some((id, old)) => {
            if want != *old {
                let op = Op::SetBackend(id, want);
                if db.state == state::UP || old.state != state::UP {
                    ph.promote.push(op);
                } else {
                    ph.demote.push(op);
                }
            }
            id
        }
        None => {
            let id = ph.alloc_backend(actual)?;
            ph.promote.push(Op::SetBackend(id, want));
            id
        }
    })
}

/// The ring write a VIP needs, if any: skipped when the Maglev input (or,
/// after adoption, the ring's contents) is unchanged.
fn plan_ring(
    actual: &Actual,
    dv: &DesiredVip,
    vip_id: u32,
    existed: bool,
    members: &[(String, BackendId, u32)],
    ph: &mut Phases,
) -> Result<Option<Op>, PlanError> {
    let input = ring_input(dv.ring_size, members);
    ph.ring_inputs.insert(vip_id, input);
    let current = actual.rings.get(&vip_id).filter(|_| existed);
    if current.is_some_and(|r| r.input == Some(input)) {
        return Ok(None);
    }
    let slots = build_ring(dv.ring_size, members).map_err(|source| PlanError::Maglev {
        vip: format!("{:?}", dv.key.addr.to_ip()),
        source,
    })?;
    if current.is_some_and(|r| r.digest == ring_digest(&slots)) {
        return Ok(None);
    }
    Ok(Some(Op::SetRing(vip_id, slots)))
}

/// A VIP that goes: unmatched first, then its ring and backends.
fn plan_removal(actual: &Actual, key: VipKey, vip: &Vip, ph: &mut Phases) {
    ph.unpublish.push(Op::RemoveVip(key));
    ph.late.push(Op::ClearRing(vip.id));
    for (_, &id) in actual.backends_of(vip.id) {
        ph.late.push(Op::SetBackend(id, Backend::default()));
    }
}

/// The map writes [`apply`] needs; the data path implements it, tests fake it.
pub trait Maps {
    type Error;
    fn op(&mut self, op: &Op) -> Result<(), Self::Error>;
    /// After the last op: publish anything batched.
    fn finish(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    /// After a failed op or finish: the VIP ids of accepted (batched)
    /// [`Op::SetRing`]s that did not land, so [`apply`] forgets them.
    fn unsettled_rings(&mut self) -> Vec<u32> {
        Vec::new()
    }
}

/// Carries out the plan in order, updating `actual` as each write lands, so a
/// failure part-way leaves `actual` true to the maps and the next reconcile
/// resumes from there. Returns the number of writes.
pub fn apply<M: Maps>(maps: &mut M, actual: &mut Actual, plan: Plan) -> Result<usize, M::Error> {
    let mut n = 0;
    let run = || {
        for op in plan.ops {
            maps.op(&op)?;
            n += 1;
            record(actual, op, &plan.ring_inputs);
        }
        maps.finish()
    };
    if let Err(e) = run() {
        // A batched ring that was recorded but never landed: forget it, so
        // the next plan writes it again.
        for id in maps.unsettled_rings() {
            actual.rings.remove(&id);
        }
        return Err(e);
    }
    // Rings left alone because they already held the right slots: remember
    // their input so the next plan skips the Maglev build.
    for (id, input) in plan.ring_inputs {
        if let Some(r) = actual.rings.get_mut(&id) {
            r.input = Some(input);
        }
    }
    Ok(n)
}

/// What one landed write changes in `actual`.
fn record(actual: &mut Actual, op: Op, ring_inputs: &BTreeMap<u32, u64>) {
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
            if b.state != state::UNUSED {
                actual.next_backend_id = (id + 1) % MAX_BACKENDS;
            }
            actual.put_backend(id, b);
        }
        Op::SetRing(id, slots) => {
            actual.rings.insert(
                id,
                RingState {
                    input: ring_inputs.get(&id).copied(),
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
                for &s in ring {
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
        let desired: Desired = desired.iter().cloned().collect();
        let p = plan_full(actual, &desired).unwrap();
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
    fn a_ring_size_change_is_one_ring_write() {
        let (mut f, mut a) = (Fake::default(), Actual::default());
        let mut d = vip("10.0.0.1", 80, &[("10.0.1.1", 1, UP)]);
        run(&mut f, &mut a, std::slice::from_ref(&d));
        for m in [7, 17] {
            d.ring_size = m;
            assert_eq!(
                kinds(&run(&mut f, &mut a, std::slice::from_ref(&d))),
                ["ring"]
            );
            assert_eq!(f.rings.values().next().unwrap().len(), m as usize);
        }
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

    #[test]
    fn an_incremental_plan_touches_only_the_vips_it_is_given() {
        let (mut f, mut a) = (Fake::default(), Actual::default());
        let web = |s| vip("10.0.0.1", 80, &[("10.0.1.1", 1, UP), ("10.0.1.2", 1, s)]);
        let dns = vip("10.0.0.2", 53, &[("10.0.2.1", 1, UP)]);
        run(&mut f, &mut a, &[web(UP), dns.clone()]);
        let mut desired: Desired = [web(DRAIN), dns].into_iter().collect();
        let touched = BTreeSet::from([web(UP).key]);
        let p = plan(&a, &desired, &touched).unwrap();
        assert_eq!(kinds(&p.ops), ["ring", "backend"]);
        apply(&mut f, &mut a, p).unwrap();
        // Removing a VIP through an incremental plan frees its entries and
        // its address.
        desired.remove(&web(UP).key);
        let p = plan(&a, &desired, &touched).unwrap();
        assert_eq!(
            kinds(&p.ops),
            [
                "remove-vip",
                "clear-ring",
                "unset-backend",
                "unset-backend",
                "addr"
            ]
        );
        apply(&mut f, &mut a, p).unwrap();
        assert_eq!(a.vips.len(), 1);
        assert_eq!(a.backends.len(), 1);
        assert_eq!(a.backends_of(a.vips.values().next().unwrap().id).count(), 1);
    }

    #[test]
    fn rings_are_grouped_before_vips_so_both_can_be_published_at_once() {
        let (mut f, mut a) = (Fake::default(), Actual::default());
        let vips: Vec<DesiredVip> = (1..=3)
            .map(|i| {
                vip(
                    &format!("10.0.0.{i}"),
                    80,
                    &[(&format!("10.0.1.{i}"), 1, UP)],
                )
            })
            .collect();
        let ops = run(&mut f, &mut a, &vips);
        let k = kinds(&ops);
        let first_vip = k.iter().position(|x| *x == "vip").unwrap();
        assert!(
            k[..first_vip].iter().filter(|x| **x == "ring").count() == 3,
            "{k:?}"
        );
        assert!(k[first_vip..].iter().all(|x| *x == "vip"), "{k:?}");
    }

    #[test]
    fn desired_counts_vips_per_address_and_wildcards() {
        let mut d = Desired::default();
        d.set(vip("10.0.0.1", 80, &[]));
        d.set(vip("10.0.0.1", 0, &[]));
        d.set(vip("10.0.0.1", 0, &[]));
        assert_eq!(d.vips_at(&ip("10.0.0.1")), 2);
        assert_eq!(d.wildcards, 1);
        d.remove(&vip("10.0.0.1", 0, &[]).key);
        assert_eq!(
            (d.vips_at(&ip("10.0.0.1")), d.wildcards, d.len()),
            (1, 0, 1)
        );
    }
}
