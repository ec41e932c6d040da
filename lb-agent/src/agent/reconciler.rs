//! The one owner of the data path: a thread that holds the maps, the file
//! configuration, the runtime overrides and the next hops, answers the
//! control API, and turns every change into map writes through
//! [`lb_dataplane::plan`]. Everything else talks to it with [`Msg`]s.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::mpsc::{Receiver, RecvTimeoutError},
    time::{Duration, Instant, SystemTime},
};

use lb_common::{
    abi::{Addr, BackendId, Counters as AbiCounters},
    consts::{flow_flags, state as abi_state},
    hash::{flow_hash, ring_slot},
};
use tokio::sync::mpsc::UnboundedSender;

use super::{Msg, neighbours::Target, notify};
use lb_api::types::{
    ApiError, BackendStats, BackendStatus, ChangeResult, Counters, Explain, FlowCount,
    InterfaceStatus, NextHopInfo, Rates, ReloadInfo, ReloadResult, Stats, Status, VipStats,
    VipStatus,
};
use lb_config::{self as config, Config, HashMode, LoadError, VipConfig};
use lb_dataplane::{
    Dataplane, monotonic_secs,
    plan::{self as reconcile, Actual, NextHop},
};

use crate::{
    api::Request,
    desired::{self, NextHops},
    state::{self, BackendProvenance, Effective, Overrides},
};

/// How often the clock is written, counters sampled for rates, and failed
/// next hops retried (every [`RETRY_EVERY`] ticks).
const TICK: Duration = Duration::from_secs(1);
const RETRY_EVERY: u32 = 5;

/// A reply held until the next hops it needs are resolved (a backend added at
/// runtime answers once it can take traffic, or says why not).
struct Pending {
    addrs: BTreeSet<IpAddr>,
    reply: crate::api::Reply<ChangeResult>,
    result: ChangeResult,
}

/// Counter samples for rates.
#[derive(Default)]
struct Sample {
    at: Option<Instant>,
    vips: BTreeMap<u32, AbiCounters>,
    backends: BTreeMap<BackendId, AbiCounters>,
}

pub struct Reconciler {
    dp: Dataplane,
    actual: Actual,
    config_path: PathBuf,
    /// The last valid configuration file.
    file: Config,
    overrides: Overrides,
    state_path: PathBuf,
    effective: Effective,
    next_hops: NextHops,
    resolve: UnboundedSender<Vec<Target>>,
    pending: Vec<Pending>,
    reloads: ReloadInfo,
    prev: Sample,
    rates_vip: BTreeMap<u32, Rates>,
    rates_be: BTreeMap<BackendId, Rates>,
    rate_interval: f64,
    adopted: bool,
    torn_down: bool,
}

fn to_api(c: AbiCounters) -> Counters {
    Counters {
        packets: c.packets,
        bytes: c.bytes,
        new_flows: c.new_flows,
    }
}

fn mac_string(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn state_name(s: u32) -> &'static str {
    match s {
        abi_state::UP => "up",
        abi_state::DRAIN => "drain",
        abi_state::DOWN => "down",
        abi_state::MAINT => "maint",
        _ => "unused",
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Reconciler {
    pub fn new(
        dp: Dataplane,
        config_path: PathBuf,
        file: Config,
        overrides: Overrides,
        state_path: PathBuf,
        resolve: UnboundedSender<Vec<Target>>,
        resolved: NextHops,
    ) -> Result<Reconciler, lb_dataplane::DataplaneError> {
        let actual = dp.actual()?;
        let adopted = dp.adopted();
        // Until ARP/NDP says otherwise, a backend already in the maps keeps the
        // next hop it has: a restart must not take a working backend down.
        let mut next_hops = NextHops::new();
        for b in actual.backends.values() {
            next_hops.insert(
                b.addr.to_ip(),
                Ok(NextHop {
                    ifindex: b.ifindex,
                    src_mac: b.src_mac,
                    dst_mac: b.dst_mac,
                }),
            );
        }
        // What was just resolved wins over what the maps remembered.
        next_hops.extend(resolved);
        let effective = state::effective(&file, &overrides);
        Ok(Reconciler {
            dp,
            actual,
            config_path,
            file,
            overrides,
            state_path,
            effective,
            next_hops,
            resolve,
            pending: Vec::new(),
            reloads: ReloadInfo::default(),
            prev: Sample::default(),
            rates_vip: BTreeMap::new(),
            rates_be: BTreeMap::new(),
            rate_interval: 0.0,
            adopted,
            torn_down: false,
        })
    }

    /// Every backend target of the configuration in effect.
    fn targets(&self) -> Vec<Target> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for v in &self.effective.config.vips {
            for b in &v.backends {
                if seen.insert(b.address) {
                    out.push(Target {
                        addr: b.address,
                        interface: b.interface.clone(),
                        mac: b.mac.map(|m| m.0),
                    });
                }
            }
        }
        out
    }

    /// Asks for the next hops of `targets` (all when `None`); the answer
    /// arrives as [`Msg::NextHops`].
    fn request_resolution(&self, only: Option<&BTreeSet<IpAddr>>) {
        let batch: Vec<Target> = self
            .targets()
            .into_iter()
            .filter(|t| only.is_none_or(|o| o.contains(&t.addr)))
            .collect();
        if !batch.is_empty() {
            let _ = self.resolve.send(batch);
        }
    }

    /// Brings the maps in line with the configuration in effect.
    fn apply(&mut self) -> Result<usize, ApiError> {
        let want = desired::build(&self.effective.config, &self.next_hops, |_, b| {
            b.state.abi()
        });
        let plan = reconcile::plan_full(&self.actual, &want.into_iter().collect())
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let n = reconcile::apply(&mut self.dp, &mut self.actual, plan)
            .map_err(|e| ApiError::internal(format!("writing the maps: {e}")))?;
        if n > 0 {
            tracing::info!(map_writes = n, "data path updated");
        }
        Ok(n)
    }

    /// The first reconcile: resolve everything, write what differs.
    pub fn start(&mut self) -> Result<usize, ApiError> {
        self.dp
            .tick()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        for o in self.effective.orphans() {
            tracing::warn!("runtime override no longer matches the file: {o}");
        }
        for (addr, r) in &self.next_hops {
            if let Err(e) = r {
                tracing::warn!(backend = %addr, error = %e, "backend unreachable (kept down)");
            }
        }
        self.apply()
    }

    pub fn run(mut self, rx: Receiver<Msg>, done: impl FnOnce()) {
        let mut next_tick = Instant::now() + TICK;
        let mut ticks = 0u32;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Request(r)) => self.handle(r),
                Ok(Msg::NextHops(hops)) => self.on_next_hops(hops),
                Ok(Msg::Neighbour(ev)) => self.on_neighbour(ev),
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.torn_down {
                break;
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + TICK;
                ticks += 1;
                self.tick(ticks.is_multiple_of(RETRY_EVERY));
            }
        }
        done();
    }

    fn tick(&mut self, retry: bool) {
        if let Err(e) = self.dp.tick() {
            tracing::warn!(error = %e, "writing the data path clock");
        }
        self.sample();
        if retry {
            let failed: BTreeSet<IpAddr> = self
                .next_hops
                .iter()
                .filter(|(_, r)| r.is_err())
                .map(|(a, _)| *a)
                .collect();
            if !failed.is_empty() {
                self.request_resolution(Some(&failed));
            }
        }
    }

    /// Samples counters and turns the difference with the last sample into rates.
    fn sample(&mut self) {
        let now = Instant::now();
        let mut cur = Sample {
            at: Some(now),
            ..Sample::default()
        };
        for v in self.actual.vips.values() {
            if let Ok(c) = self.dp.vip_counters(v.id) {
                cur.vips.insert(v.id, c);
            }
        }
        for id in self.actual.backends.keys() {
            if let Ok(c) = self.dp.backend_counters(*id) {
                cur.backends.insert(*id, c);
            }
        }
        if let Some(then) = self.prev.at {
            let dt = (now - then).as_secs_f64().max(1e-3);
            let rate = |a: &AbiCounters, b: Option<&AbiCounters>| {
                let b = b.copied().unwrap_or(*a);
                Rates {
                    packets_per_sec: a.packets.saturating_sub(b.packets) as f64 / dt,
                    bytes_per_sec: a.bytes.saturating_sub(b.bytes) as f64 / dt,
                    new_flows_per_sec: a.new_flows.saturating_sub(b.new_flows) as f64 / dt,
                }
            };
            self.rates_vip = cur
                .vips
                .iter()
                .map(|(k, c)| (*k, rate(c, self.prev.vips.get(k))))
                .collect();
            self.rates_be = cur
                .backends
                .iter()
                .map(|(k, c)| (*k, rate(c, self.prev.backends.get(k))))
                .collect();
            self.rate_interval = dt;
        }
        self.prev = cur;
    }

    fn on_next_hops(&mut self, hops: NextHops) {
        for (addr, r) in hops {
            match (&r, self.next_hops.get(&addr)) {
                (Err(e), Some(Ok(_))) => {
                    tracing::warn!(backend = %addr, error = %e, "next hop lost: backend taken out")
                }
                (Err(e), _) => {
                    tracing::warn!(backend = %addr, error = %e, "backend unreachable (kept down)")
                }
                (Ok(_), Some(Err(_)) | None) => {
                    tracing::info!(backend = %addr, "next hop resolved")
                }
                _ => {}
            }
            self.next_hops.insert(addr, r);
        }
        let result = self.apply();
        // Answer the changes that were waiting for these next hops.
        let pending = std::mem::take(&mut self.pending);
        for mut p in pending {
            if p.addrs.iter().all(|a| self.next_hops.contains_key(a)) {
                for a in &p.addrs {
                    if let Some(Err(e)) = self.next_hops.get(a) {
                        p.result.warnings.push(format!("backend {a} is down: {e}"));
                    }
                }
                let _ = p.reply.send(match &result {
                    Ok(n) => {
                        p.result.map_writes += n;
                        Ok(p.result)
                    }
                    Err(e) => Err(e.clone()),
                });
            } else {
                self.pending.push(p);
            }
        }
    }

    fn on_neighbour(&mut self, ev: super::neighbours::NeighbourEvent) {
        let Some(Ok(hop)) = self.next_hops.get(&ev.addr).cloned() else {
            return;
        };
        if hop.ifindex != ev.ifindex {
            return;
        }
        match ev.mac {
            Some(mac) if mac != hop.dst_mac => {
                tracing::info!(backend = %ev.addr, old = %mac_string(hop.dst_mac), new = %mac_string(mac), "backend MAC changed");
                self.next_hops.insert(
                    ev.addr,
                    Ok(NextHop {
                        dst_mac: mac,
                        ..hop
                    }),
                );
                if let Err(e) = self.apply() {
                    tracing::error!(error = %e, "applying a MAC change");
                }
            }
            Some(_) => {}
            // Gone from the table (garbage-collected, or failed): keep the last
            // MAC and check again; only a failed resolution takes it out.
            None => self.request_resolution(Some(&BTreeSet::from([ev.addr]))),
        }
    }

    fn handle(&mut self, r: Request) {
        match r {
            Request::Status(reply) => {
                let _ = reply.send(Ok(self.status()));
            }
            Request::Stats(reply) => {
                let _ = reply.send(Ok(self.stats()));
            }
            Request::Config(reply) => {
                let _ = reply.send(
                    serde_json::to_value(&self.effective.config)
                        .map_err(|e| ApiError::internal(e.to_string())),
                );
            }
            Request::Reload(reply) => {
                let _ = reply.send(self.reload());
            }
            Request::AddVip(spec, reply) => {
                let r = state::add_vip(&mut self.overrides, &self.file, spec);
                self.changed(r, reply);
            }
            Request::RemoveVip { vip, reply } => {
                let r = state::remove_vip(&mut self.overrides, &self.file, &vip);
                self.changed(r, reply);
            }
            Request::AddBackend {
                vip,
                backend,
                reply,
            } => {
                let r = state::add_backend(&mut self.overrides, &self.file, &vip, backend);
                self.changed(r, reply);
            }
            Request::RemoveBackend {
                vip,
                backend,
                reply,
            } => {
                let r = state::remove_backend(&mut self.overrides, &self.file, &vip, &backend);
                self.changed(r, reply);
            }
            Request::SetState {
                vip,
                backend,
                state: s,
                reply,
            } => {
                let r = state::set_state(&mut self.overrides, &self.file, &vip, &backend, s);
                self.changed(r, reply);
            }
            Request::SetWeight {
                vip,
                backend,
                weight,
                reply,
            } => {
                let r = state::set_weight(&mut self.overrides, &self.file, &vip, &backend, weight);
                self.changed(r, reply);
            }
            Request::Flows {
                vip,
                backend,
                reply,
            } => {
                let _ = reply.send(self.flows(&vip, &backend));
            }
            Request::Explain { vip, client, reply } => {
                let _ = reply.send(self.explain(&vip, &client));
            }
            Request::Teardown(reply) => {
                let _ = reply.send(self.teardown());
            }
        }
    }

    /// After a runtime change to the overrides: persist, recompute, resolve
    /// what is new, write the maps, answer (once the new next hops are known).
    fn changed(&mut self, r: Result<bool, ApiError>, reply: crate::api::Reply<ChangeResult>) {
        let changed = match r {
            Ok(c) => c,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if !changed {
            let _ = reply.send(Ok(ChangeResult::default()));
            return;
        }
        if let Err(e) = state::save(&self.state_path, &self.overrides) {
            // Keep going: the change is in effect, but say it will not survive.
            tracing::error!(error = %e, "persisting runtime overrides");
        }
        self.effective = state::effective(&self.file, &self.overrides);
        let new: BTreeSet<IpAddr> = self
            .targets()
            .into_iter()
            .map(|t| t.addr)
            .filter(|a| !self.next_hops.contains_key(a))
            .collect();
        let mut result = ChangeResult {
            changed: true,
            warnings: state::check(&self.effective.config).unwrap_or_default(),
            ..ChangeResult::default()
        };
        match self.apply() {
            Ok(n) => result.map_writes = n,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        }
        if new.is_empty() {
            let _ = reply.send(Ok(result));
        } else {
            self.request_resolution(Some(&new));
            self.pending.push(Pending {
                addrs: new,
                reply,
                result,
            });
        }
    }

    fn reload(&mut self) -> Result<ReloadResult, ApiError> {
        notify::reloading();
        self.reloads.count += 1;
        self.reloads.last_at = Some(unix_now());
        let r = self.reload_inner();
        match &r {
            Ok(res) => {
                self.reloads.last_result = Some("ok".into());
                self.reloads.last_error = None;
                tracing::info!(changed = ?res.changed_vips, map_writes = res.map_writes, "configuration reloaded");
            }
            Err(e) => {
                self.reloads.failures += 1;
                self.reloads.last_result = Some("error".into());
                self.reloads.last_error = Some(e.reason.clone());
                tracing::error!(
                    "reload rejected, the running configuration stays:\n{}",
                    e.reason
                );
            }
        }
        notify::ready();
        r
    }

    fn reload_inner(&mut self) -> Result<ReloadResult, ApiError> {
        let checked = config::load(&self.config_path).map_err(|e| match e {
            LoadError::Invalid(d) => ApiError::invalid(d.to_string()),
            LoadError::Io { .. } => ApiError::invalid(format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            )),
        })?;
        let new = checked.config;
        // What needs a restart cannot change on reload: say so, keep the rest.
        let mut warnings: Vec<String> = checked.warnings.iter().map(|w| w.to_string()).collect();
        if new.agent != self.file.agent {
            warnings.push("`agent:` settings change only on restart; the running ones stay".into());
        }
        if new.interfaces != self.file.interfaces {
            warnings.push("`interfaces:` change only on restart; the running ones stay".into());
        }
        let before: BTreeMap<String, VipConfig> = self
            .effective
            .config
            .vips
            .iter()
            .map(|v| (v.name.clone(), v.clone()))
            .collect();
        let file = Config {
            agent: self.file.agent.clone(),
            interfaces: self.file.interfaces.clone(),
            vips: new.vips,
        };
        // The new file must also make sense with the runtime changes on top.
        let effective = state::effective(&file, &self.overrides);
        state::check(&effective.config).map_err(|e| ApiError::invalid(format!(
            "the file is valid, but not together with the runtime changes (`lb-ctl status` lists them): {}",
            e.reason
        )))?;
        self.file = file;
        self.effective = effective;
        for o in self.effective.orphans() {
            warnings.push(format!("runtime override no longer matches the file: {o}"));
        }
        let after: BTreeMap<String, VipConfig> = self
            .effective
            .config
            .vips
            .iter()
            .map(|v| (v.name.clone(), v.clone()))
            .collect();
        let mut changed_vips: Vec<String> = before
            .keys()
            .chain(after.keys())
            .filter(|n| before.get(*n) != after.get(*n))
            .cloned()
            .collect();
        changed_vips.dedup();
        let new_addrs: BTreeSet<IpAddr> = self
            .targets()
            .into_iter()
            .map(|t| t.addr)
            .filter(|a| !self.next_hops.contains_key(a))
            .collect();
        if !new_addrs.is_empty() {
            self.request_resolution(Some(&new_addrs));
        }
        let map_writes = self.apply()?;
        Ok(ReloadResult {
            map_writes,
            changed_vips,
            warnings,
        })
    }

    fn find_vip(&self, sel: &str) -> Result<&VipConfig, ApiError> {
        let i = self.effective.find_vip(sel)?;
        Ok(&self.effective.config.vips[i])
    }

    /// The data path's ids of a configured VIP and backend.
    fn ids(
        &self,
        v: &VipConfig,
        b: Option<&config::BackendConfig>,
    ) -> (Option<u32>, Option<BackendId>) {
        let Some(vip) = self.actual.vips.get(&desired::vip_key(v)) else {
            return (None, None);
        };
        let be = b.and_then(|b| {
            let (addr, port) = (Addr::from_ip(b.address), desired::backend_port(v, b));
            self.actual
                .backends
                .iter()
                .find(|(_, x)| x.vip == vip.id && x.addr == addr && x.port == port)
                .map(|(id, _)| *id)
        });
        (Some(vip.id), be)
    }

    fn status(&self) -> Status {
        let cfg = &self.effective.config;
        let vips = cfg
            .vips
            .iter()
            .enumerate()
            .map(|(vi, v)| {
                let (vip_id, _) = self.ids(v, None);
                let vprov = self.effective.provenance.get(vi);
                let backends = v
                    .backends
                    .iter()
                    .enumerate()
                    .map(|(bi, b)| {
                        let (_, id) = self.ids(v, Some(b));
                        let entry = id.and_then(|i| self.actual.backends.get(&i));
                        let prov: Option<&BackendProvenance> =
                            vprov.and_then(|p| p.backends.get(bi));
                        BackendStatus {
                            name: b.name.clone(),
                            address: b.address,
                            port: desired::backend_port(v, b),
                            weight: b.weight,
                            config_weight: prov.and_then(|p| p.config_weight),
                            weight_override: prov.and_then(|p| p.weight_override),
                            state: entry.map_or("down", |e| state_name(e.state)).to_string(),
                            config_state: prov.and_then(|p| p.config_state),
                            state_override: prov.and_then(|p| p.state_override),
                            down_reason: match self.next_hops.get(&b.address) {
                                Some(Err(e)) => Some(e.clone()),
                                None => Some("resolving next hop".into()),
                                _ => None,
                            },
                            source: prov.map_or(lb_api::types::Source::Config, |p| p.source),
                            next_hop: match self.next_hops.get(&b.address) {
                                Some(Ok(h)) => Some(NextHopInfo {
                                    ifindex: h.ifindex,
                                    mac: mac_string(h.dst_mac),
                                }),
                                _ => None,
                            },
                            counters: id
                                .and_then(|i| self.dp.backend_counters(i).ok())
                                .map(to_api)
                                .unwrap_or_default(),
                        }
                    })
                    .collect();
                VipStatus {
                    name: v.name.clone(),
                    address: v.address,
                    port: v.port,
                    protocol: v.protocol,
                    hash: v.hash,
                    ring_size: v.ring_size,
                    source: vprov.map_or(lb_api::types::Source::Config, |p| p.source),
                    counters: vip_id
                        .and_then(|i| self.dp.vip_counters(i).ok())
                        .map(to_api)
                        .unwrap_or_default(),
                    backends,
                }
            })
            .collect();
        Status {
            version: env!("CARGO_PKG_VERSION").into(),
            config_file: self.config_path.clone(),
            state_file: self.state_path.clone(),
            precedence: state::PRECEDENCE.into(),
            bpffs: self.file.agent.bpffs.clone(),
            adopted: self.adopted,
            interfaces: self
                .file
                .interfaces
                .iter()
                .map(|i| InterfaceStatus {
                    name: i.name.clone(),
                    xdp_mode: i.xdp_mode.to_string(),
                })
                .collect(),
            reloads: self.reloads.clone(),
            vips,
        }
    }

    fn stats(&self) -> Stats {
        let vips = self
            .effective
            .config
            .vips
            .iter()
            .map(|v| {
                let (vip_id, _) = self.ids(v, None);
                let backends = v
                    .backends
                    .iter()
                    .map(|b| {
                        let (_, id) = self.ids(v, Some(b));
                        BackendStats {
                            name: b.name.clone(),
                            address: b.address,
                            state: id
                                .and_then(|i| self.actual.backends.get(&i))
                                .map_or("down", |e| state_name(e.state))
                                .into(),
                            weight: b.weight,
                            counters: id
                                .and_then(|i| self.dp.backend_counters(i).ok())
                                .map(to_api)
                                .unwrap_or_default(),
                            rates: id
                                .and_then(|i| self.rates_be.get(&i))
                                .copied()
                                .unwrap_or_default(),
                        }
                    })
                    .collect();
                VipStats {
                    name: v.name.clone(),
                    address: v.address,
                    port: v.port,
                    protocol: v.protocol,
                    counters: vip_id
                        .and_then(|i| self.dp.vip_counters(i).ok())
                        .map(to_api)
                        .unwrap_or_default(),
                    rates: vip_id
                        .and_then(|i| self.rates_vip.get(&i))
                        .copied()
                        .unwrap_or_default(),
                    backends,
                }
            })
            .collect();
        Stats {
            interval_secs: self.rate_interval,
            vips,
            reasons: self
                .dp
                .reasons()
                .map(|r| r.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                .unwrap_or_default(),
        }
    }

    fn flows(&self, vip: &str, backend: &str) -> Result<FlowCount, ApiError> {
        let (vi, bi) = self.effective.find_backend(vip, backend)?;
        let v = &self.effective.config.vips[vi];
        let b = &v.backends[bi];
        let (_, id) = self.ids(v, Some(b));
        let idle_timeout = self.file.agent.flow_idle_timeout.as_secs();
        let mut out = FlowCount {
            vip: v.name.clone(),
            backend: b.name.clone(),
            active: 0,
            closing: 0,
            idle: 0,
            idle_timeout_secs: idle_timeout,
        };
        let Some(id) = id else { return Ok(out) };
        let now = monotonic_secs() as u64;
        let flows = self
            .dp
            .flows()
            .map_err(|e| ApiError::internal(format!("reading the flow table: {e}")))?;
        for f in flows.iter().filter(|f| f.flow.backend == id) {
            if f.flow.flags & (flow_flags::FIN | flow_flags::RST) != 0 {
                out.closing += 1;
            } else if now.saturating_sub(f.flow.atime) >= idle_timeout {
                out.idle += 1;
            } else {
                out.active += 1;
            }
        }
        Ok(out)
    }

    fn explain(&self, vip: &str, client: &str) -> Result<Explain, ApiError> {
        let v = self.find_vip(vip)?;
        let (ip, port): (IpAddr, Option<u16>) = match client.parse::<SocketAddr>() {
            Ok(sa) => (sa.ip(), Some(sa.port())),
            Err(_) => (
                client.parse().map_err(|_| {
                    ApiError::bad_request(format!("`{client}` is not an IP or IP:PORT"))
                })?,
                None,
            ),
        };
        if ip.is_ipv4() != v.address.is_ipv4() {
            return Err(ApiError::bad_request(format!(
                "{ip} and VIP {} are of different address families",
                v.address
            )));
        }
        if v.hash == HashMode::SourcePort && port.is_none() {
            return Err(ApiError::bad_request(format!(
                "VIP `{}` hashes source address and port: give CLIENT_IP:PORT",
                v.name
            )));
        }
        let (vip_id, _) = self.ids(v, None);
        let ring = vip_id
            .and_then(|i| self.dp.ring(i).ok().flatten())
            .ok_or_else(|| {
                ApiError::internal(format!("VIP `{}` has no ring in the data path", v.name))
            })?;
        let sport = match v.hash {
            HashMode::Source => 0,
            HashMode::SourcePort => port.unwrap_or(0).to_be(),
        };
        let slot = ring_slot(flow_hash(&Addr::from_ip(ip), sport), v.ring_size);
        let name_of = |id: BackendId| {
            let b = self.actual.backends.get(&id)?;
            let addr = b.addr.to_ip();
            v.backends
                .iter()
                .find(|x| x.address == addr)
                .map(|x| (x.name.clone(), addr))
        };
        let chosen = ring.get(slot as usize).and_then(|&id| name_of(id));
        let flow_backend = match port {
            Some(p) if v.port != 0 => self
                .dp
                .lookup_flow(
                    SocketAddr::new(ip, p),
                    SocketAddr::new(v.address, v.port),
                    v.protocol.number(),
                )
                .ok()
                .flatten()
                .and_then(|f| name_of(f.backend))
                .map(|(n, _)| n),
            _ => None,
        };
        Ok(Explain {
            vip: v.name.clone(),
            client: client.to_string(),
            hash: v.hash,
            slot,
            ring_size: v.ring_size,
            backend: chosen.as_ref().map(|c| c.0.clone()),
            backend_address: chosen.map(|c| c.1),
            flow_backend,
        })
    }

    /// Detaches and unpins everything; the agent stops after answering.
    fn teardown(&mut self) -> Result<ChangeResult, ApiError> {
        let dir = self.file.agent.bpffs.clone();
        let removed =
            lb_dataplane::teardown(&dir).map_err(|e| ApiError::internal(e.to_string()))?;
        tracing::warn!(pins = removed.len(), bpffs = %dir.display(), "torn down: the data path is detached and unpinned");
        self.torn_down = true;
        Ok(ChangeResult {
            changed: true,
            map_writes: 0,
            warnings: vec![format!(
                "removed {} pins under {}; the agent stops",
                removed.len(),
                dir.display()
            )],
        })
    }
}
