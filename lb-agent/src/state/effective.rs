//! File + overrides → the configuration in effect, where each pool,
//! backend, service and value comes from, and the overrides that apply to
//! nothing right now. Pools are composed one at a time ([`pool`]), so a
//! change to one backend recomputes its pool and nothing else.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::Overrides;
use lb_api::types::{ApiError, Source};
use lb_config::{
    AdminState, BackendConfig, Config, PoolConfig, ServiceConfig, ServiceKey,
    rules::{same_backend, same_service},
};

/// Appended to every orphan: what happens to it.
const KEPT: &str = "kept, inactive; it applies again if the target returns";

/// How many names a "not found" error lists before eliding the rest.
const LISTED_NAMES: usize = 8;

/// The configuration in effect, and where each part comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Effective {
    /// File pools in file order (each with its file backends, then those
    /// added at runtime), then the pools added at runtime in the order added.
    pub pools: Vec<PoolConfig>,
    /// One entry per `pools`, in the same order.
    pub pool_provenance: Vec<PoolProvenance>,
    /// File services in file order, then those added at runtime.
    pub services: Vec<ServiceConfig>,
    /// One entry per `services`, in the same order.
    pub service_sources: Vec<Source>,
    /// Pool name → indices in `services` of the services using it.
    users: BTreeMap<String, Vec<usize>>,
    /// File services hidden by services added at runtime, in words.
    shadowed_services: Vec<String>,
}

/// Where a pool in effect comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolProvenance {
    pub source: Source,
    /// One entry per backend of the pool, in the same order.
    pub backends: Vec<BackendProvenance>,
    /// File entries this pool's runtime changes hide, in words.
    shadowed: Vec<String>,
}

/// Where a backend in effect, its state and its weight come from. The value
/// in effect is the override when there is one, else the file's (or, for a
/// backend added at runtime, the one it was added with).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendProvenance {
    pub source: Source,
    /// The file's state; `None` for a backend added at runtime.
    pub config_state: Option<AdminState>,
    /// The file's weight; `None` for a backend added at runtime.
    pub config_weight: Option<u32>,
    /// The state set at runtime, if any.
    pub state_override: Option<AdminState>,
    /// The weight set at runtime, if any.
    pub weight_override: Option<u32>,
    /// The values before overrides, which setting clears the override at.
    pub(super) base_state: AdminState,
    pub(super) base_weight: u32,
}

impl BackendProvenance {
    fn new(source: Source, b: &BackendConfig) -> Self {
        let from_file = source == Source::Config;
        BackendProvenance {
            source,
            config_state: from_file.then_some(b.state),
            config_weight: from_file.then_some(b.weight),
            state_override: None,
            weight_override: None,
            base_state: b.state,
            base_weight: b.weight,
        }
    }
}

/// Combines the file and the overrides; see [`super::PRECEDENCE`]. Never
/// fails and drops nothing: an override that applies to nothing is listed by
/// [`Effective::orphans`]. The result is not checked here.
pub fn effective(file: &Config, ov: &Overrides) -> Effective {
    let mut out = Effective {
        pools: Vec::new(),
        pool_provenance: Vec::new(),
        services: Vec::new(),
        service_sources: Vec::new(),
        users: BTreeMap::new(),
        shadowed_services: Vec::new(),
    };
    out.rebuild_pools(file, ov);
    out.rebuild_services(file, ov);
    out
}

/// Names of the pools in effect, in order: file pools not removed, then
/// runtime ones not already named by the file.
fn pool_names<'a>(file: &'a Config, ov: &'a Overrides) -> Vec<&'a str> {
    let mut names: Vec<&str> = file
        .pools
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| !ov.removed_pools.contains(*n))
        .collect();
    for rp in &ov.added_pools {
        if !names.contains(&rp.name.as_str()) {
            names.push(&rp.name);
        }
    }
    names
}

/// The pool `name` in effect and its provenance: the one added at runtime
/// when there is one (it hides a file pool of that name), else the file's
/// unless removed, with its runtime backend changes and value overrides.
pub fn pool(file: &Config, ov: &Overrides, name: &str) -> Option<(PoolConfig, PoolProvenance)> {
    let mut prov = PoolProvenance {
        source: Source::Runtime,
        backends: Vec::new(),
        shadowed: Vec::new(),
    };
    let fp = file.pool(name).filter(|_| !ov.removed_pools.contains(name));
    let mut pool = match ov.added_pools.iter().find(|p| p.name == name) {
        Some(rp) => {
            if fp.is_some() {
                prov.shadowed.push(format!(
                    "pool `{name}` of the configuration file is hidden by the pool of that name \
                     added at runtime; remove the runtime pool to use the file's"
                ));
            }
            let pool = rp.clone();
            prov.backends = pool
                .backends
                .iter()
                .map(|b| BackendProvenance::new(Source::Runtime, b))
                .collect();
            pool
        }
        None => file_pool(fp?, ov, &mut prov),
    };
    apply_backend_overrides(&mut pool, &mut prov, ov);
    Some((pool, prov))
}

/// A file pool with the backends removed and added at runtime.
fn file_pool(fp: &PoolConfig, ov: &Overrides, prov: &mut PoolProvenance) -> PoolConfig {
    prov.source = Source::Config;
    let removed = ov.removed_backends.get(&fp.name);
    let added: Vec<BackendConfig> = ov
        .added_backends
        .get(&fp.name)
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let mut pool = PoolConfig {
        name: fp.name.clone(),
        backends: Vec::new(),
        check: fp.check.clone(),
        notify_up: fp.notify_up.clone(),
        notify_down: fp.notify_down.clone(),
        proxy: fp.proxy.clone(),
    };
    for fb in &fp.backends {
        if removed.is_some_and(|r| r.contains(&fb.name)) {
            continue;
        }
        if let Some(rb) = added.iter().find(|rb| same_backend(rb, fb)) {
            prov.shadowed.push(format!(
                "backend `{}` of pool `{}` in the configuration file is hidden by backend `{}` \
                 added at runtime (same {}); remove the runtime backend to use the file's",
                fb.name,
                fp.name,
                rb.name,
                if rb.name == fb.name {
                    "name"
                } else {
                    "address"
                },
            ));
            continue;
        }
        prov.backends
            .push(BackendProvenance::new(Source::Config, fb));
        pool.backends.push(fb.clone());
    }
    for rb in added {
        prov.backends
            .push(BackendProvenance::new(Source::Runtime, &rb));
        pool.backends.push(rb);
    }
    pool
}

fn apply_backend_overrides(pool: &mut PoolConfig, prov: &mut PoolProvenance, ov: &Overrides) {
    let Some(per_backend) = ov.backend_overrides.get(&pool.name) else {
        return;
    };
    for (b, p) in pool.backends.iter_mut().zip(&mut prov.backends) {
        let Some(o) = per_backend.get(&b.name) else {
            continue;
        };
        if let Some(state) = o.state {
            b.state = state;
            p.state_override = Some(state);
        }
        if let Some(weight) = o.weight {
            b.weight = weight;
            p.weight_override = Some(weight);
        }
    }
}

impl Effective {
    /// The configuration in effect as one [`Config`] (the file's `agent` and
    /// `interfaces`), for checks and `GET /v1/config`.
    pub fn config(&self, file: &Config) -> Config {
        Config {
            agent: file.agent.clone(),
            interfaces: file.interfaces.clone(),
            pools: self.pools.clone(),
            services: self.services.clone(),
            health: file.health.clone(),
            notify: file.notify.clone(),
            vrrp: file.vrrp.clone(),
            proxy: file.proxy.clone(),
            frontends: file.frontends.clone(),
            stats: file.stats.clone(),
        }
    }

    /// Recomputes every pool (pools were added or removed).
    pub fn rebuild_pools(&mut self, file: &Config, ov: &Overrides) {
        self.pools.clear();
        self.pool_provenance.clear();
        for name in pool_names(file, ov) {
            if let Some((p, prov)) = pool(file, ov, name) {
                self.pools.push(p);
                self.pool_provenance.push(prov);
            }
        }
    }

    /// Recomputes one pool whose backends or values changed; the set of
    /// pools is the same.
    pub fn refresh_pool(&mut self, file: &Config, ov: &Overrides, name: &str) {
        let Some(i) = self.pools.iter().position(|p| p.name == name) else {
            return self.rebuild_pools(file, ov);
        };
        match pool(file, ov, name) {
            Some((p, prov)) => {
                self.pools[i] = p;
                self.pool_provenance[i] = prov;
            }
            None => self.rebuild_pools(file, ov),
        }
    }

    /// Recomputes the services (added, removed, or the file changed).
    pub fn rebuild_services(&mut self, file: &Config, ov: &Overrides) {
        self.services.clear();
        self.service_sources.clear();
        self.shadowed_services.clear();
        let runtime = &ov.added_services;
        for fs in &file.services {
            if ov.removed_services.contains(&fs.name) {
                continue;
            }
            if let Some(rs) = runtime.iter().find(|rs| same_service(rs, fs)) {
                self.shadowed_services.push(format!(
                    "service `{}` of the configuration file is hidden by service `{}` added at \
                     runtime (same {}); remove the runtime service to use the file's",
                    fs.name,
                    rs.name,
                    if rs.name == fs.name {
                        "name"
                    } else {
                        "address, port and protocol"
                    },
                ));
                continue;
            }
            self.services.push(fs.clone());
            self.service_sources.push(Source::Config);
        }
        for rs in runtime {
            self.services.push(rs.clone());
            self.service_sources.push(Source::Runtime);
        }
        self.users.clear();
        for (i, s) in self.services.iter().enumerate() {
            self.users.entry(s.pool.clone()).or_default().push(i);
        }
    }

    /// Indices in `services` of the services using pool `pool`.
    pub fn users(&self, pool: &str) -> &[usize] {
        self.users.get(pool).map_or(&[], Vec::as_slice)
    }

    /// The pool named `name`.
    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// File entries hidden by an entry added at runtime with the same name
    /// or address (the file gained what had been added at runtime), in words.
    pub fn shadowed(&self) -> Vec<String> {
        let pools = self.pool_provenance.iter().flat_map(|p| p.shadowed.iter());
        pools.chain(&self.shadowed_services).cloned().collect()
    }

    /// Index in `services` of the service named `name_or_key`, by name or as
    /// `address:port/protocol` (`[2001:db8::1]:443/tcp`); 404 otherwise.
    pub fn find_service(&self, name_or_key: &str) -> Result<usize, ApiError> {
        let svcs = &self.services;
        if let Some(i) = svcs.iter().position(|v| v.name == name_or_key) {
            return Ok(i);
        }
        if let Ok(key) = name_or_key.parse::<ServiceKey>()
            && let Some(i) = svcs.iter().position(|v| v.key() == key)
        {
            return Ok(i);
        }
        Err(ApiError::not_found(format!(
            "no service `{name_or_key}` in effect (name it by name or as \
             address:port/protocol; {})",
            listing("services", svcs.iter().map(|v| v.name.as_str())),
        )))
    }

    /// Index in `pools` of the pool named `name`; 404 otherwise.
    pub fn find_pool(&self, name: &str) -> Result<usize, ApiError> {
        self.pools
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no pool `{name}` in effect ({})",
                    listing("pools", self.pools.iter().map(|p| p.name.as_str())),
                ))
            })
    }

    /// Indices (in `pools`, in its `backends`) of the backend
    /// `name_or_address` of pool `pool`; 404 when either is unknown.
    pub fn find_backend(
        &self,
        pool: &str,
        name_or_address: &str,
    ) -> Result<(usize, usize), ApiError> {
        let i = self.find_pool(pool)?;
        let p = &self.pools[i];
        if let Some(j) = p.backends.iter().position(|b| b.name == name_or_address) {
            return Ok((i, j));
        }
        if let Ok(ip) = name_or_address.parse::<IpAddr>() {
            let mut at = p
                .backends
                .iter()
                .enumerate()
                .filter(|(_, b)| b.address == ip);
            match (at.next(), at.next()) {
                (Some((j, _)), None) => return Ok((i, j)),
                (Some(_), Some(_)) => {
                    return Err(ApiError::bad_request(format!(
                        "several backends of pool `{}` have address {ip}; name one by its name",
                        p.name
                    )));
                }
                _ => {}
            }
        }
        Err(ApiError::not_found(format!(
            "pool `{}` has no backend `{name_or_address}` in effect (name it by name or \
             address; {})",
            p.name,
            listing("backends", p.backends.iter().map(|b| b.name.as_str())),
        )))
    }

    /// Runtime changes that apply to nothing in effect (their target left the
    /// file, or was removed or hidden), in words; each is kept and applies
    /// again if its target returns.
    pub fn orphans(&self, file: &Config, ov: &Overrides) -> Vec<String> {
        let mut out = Vec::new();
        for name in &ov.removed_pools {
            if file.pool(name).is_none() {
                out.push(format!(
                    "removal of pool `{name}`: it is not in the configuration file"
                ));
            }
        }
        for name in &ov.removed_services {
            if !file.services.iter().any(|s| s.name == *name) {
                out.push(format!(
                    "removal of service `{name}`: it is not in the configuration file"
                ));
            }
        }
        self.backend_list_orphans(file, ov, &mut out);
        self.value_orphans(ov, &mut out);
        out.into_iter().map(|o| format!("{o} ({KEPT})")).collect()
    }

    /// Whether the pool `name` is in effect as the file's (changes to a file
    /// pool's backend list apply only then).
    fn file_pool_in_effect(&self, name: &str) -> bool {
        self.pools
            .iter()
            .zip(&self.pool_provenance)
            .any(|(p, prov)| p.name == name && prov.source == Source::Config)
    }

    fn backend_list_orphans(&self, file: &Config, ov: &Overrides, out: &mut Vec<String>) {
        let pool_gone = |name: &str| match file.pool(name) {
            None => format!("pool `{name}` is not in the configuration file"),
            Some(_) => format!("pool `{name}` of the configuration file is not in effect"),
        };
        for (pool, names) in &ov.removed_backends {
            let fp = file.pool(pool).filter(|_| self.file_pool_in_effect(pool));
            for b in names {
                let why = match fp {
                    Some(fp) if fp.backend(b).is_some() => continue,
                    Some(_) => "the configuration file has no such backend".to_owned(),
                    None => pool_gone(pool),
                };
                out.push(format!("removal of backend `{b}` of pool `{pool}`: {why}"));
            }
        }
        for (pool, added) in &ov.added_backends {
            if !self.file_pool_in_effect(pool) {
                let why = pool_gone(pool);
                for b in added {
                    out.push(format!(
                        "backend `{}` added at runtime to pool `{pool}`: {why}",
                        b.name
                    ));
                }
            }
        }
    }

    fn value_orphans(&self, ov: &Overrides, out: &mut Vec<String>) {
        for (pool, per_backend) in &ov.backend_overrides {
            let p = self.pool(pool);
            for (b, o) in per_backend {
                let why = match p {
                    Some(p) if p.backend(b).is_some() => continue,
                    Some(_) => format!("pool `{pool}` has no backend `{b}` in effect"),
                    None => format!("no pool `{pool}` is in effect"),
                };
                let what = match (o.state, o.weight) {
                    (Some(s), Some(w)) => format!("state {s} and weight {w}"),
                    (Some(s), None) => format!("state {s}"),
                    (None, Some(w)) => format!("weight {w}"),
                    (None, None) => continue,
                };
                out.push(format!(
                    "{what} set at runtime for backend `{b}` of pool `{pool}`: {why}"
                ));
            }
        }
    }
}

/// `pools in effect: a, b, …` for error messages, or `no pools are in effect`.
fn listing<'a>(what: &str, names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = names.len();
    if total == 0 {
        return format!("no {what} are in effect");
    }
    let shown: Vec<String> = names.take(LISTED_NAMES).map(|n| format!("`{n}`")).collect();
    let more = if total > LISTED_NAMES {
        format!(" and {} more", total - LISTED_NAMES)
    } else {
        String::new()
    };
    format!("{what} in effect: {}{more}", shown.join(", "))
}
