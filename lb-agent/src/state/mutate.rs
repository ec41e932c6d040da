//! The operator's runtime changes. Each one resolves its target in the
//! configuration in effect, builds the changed overrides aside, checks what
//! the change touches with lb-config's rules (the ones the file is held to),
//! and only then commits: a refused change leaves the overrides untouched.
//! Each says what it touched ([`Touched`]), so the caller recomputes only that.

use std::collections::BTreeSet;

use lb_api::types::{AddBackend, AddPool, AddService, ApiError, Source};
use lb_common::{consts::MAX_RING_SIZE, ring_size::is_prime};
use lb_config::{
    AdminState, BackendConfig, Config, PoolConfig, RingSize, ServiceConfig,
    rules::{self, same_backend, same_service},
};

use super::spec::{
    backend_differences, backend_from_request, pool_differences, pool_from_request,
    service_differences, service_from_request,
};
use super::{BackendOverride, Effective, Overrides};

/// What a committed change touched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Pools whose backends or values changed (their services need replanning).
    pub pools: BTreeSet<String>,
    /// Pools were added or removed.
    pub pool_set: bool,
    /// Services were added or removed.
    pub services: bool,
}

impl Touched {
    /// Whether the change changed anything.
    pub fn changed(&self) -> bool {
        !self.pools.is_empty() || self.pool_set || self.services
    }

    fn pool(name: &str) -> Touched {
        Touched {
            pools: BTreeSet::from([name.to_owned()]),
            ..Touched::default()
        }
    }

    fn pool_set(name: &str) -> Touched {
        Touched {
            pool_set: true,
            ..Touched::pool(name)
        }
    }

    fn services() -> Touched {
        Touched {
            services: true,
            ..Touched::default()
        }
    }
}

/// The state of a change: where the mutation works, and what it started from.
struct Change<'a> {
    ov: &'a mut Overrides,
    file: &'a Config,
    eff: &'a Effective,
}

impl Change<'_> {
    /// Replaces the overrides with `next` if that changes anything.
    fn commit(self, mut next: Overrides, touched: Touched) -> Touched {
        next.normalize();
        if next == *self.ov {
            return Touched::default();
        }
        *self.ov = next;
        touched
    }
}

fn invalid(why: String) -> ApiError {
    ApiError::invalid(format!("the configuration would be invalid: {why}"))
}

/// Sets a backend's administrative state; setting its base value (the
/// file's, or the one it was added with) drops the override.
pub fn set_state(
    ov: &mut Overrides,
    file: &Config,
    eff: &Effective,
    pool: &str,
    backend: &str,
    state: AdminState,
) -> Result<Touched, ApiError> {
    set(Change { ov, file, eff }, pool, backend, |base, o| {
        o.state = (state != base.0).then_some(state);
    })
}

/// Sets a backend's weight; setting its base value drops the override.
pub fn set_weight(
    ov: &mut Overrides,
    file: &Config,
    eff: &Effective,
    pool: &str,
    backend: &str,
    weight: u32,
) -> Result<Touched, ApiError> {
    rules::check_weight(weight).map_err(ApiError::bad_request)?;
    set(Change { ov, file, eff }, pool, backend, |base, o| {
        o.weight = (weight != base.1).then_some(weight);
    })
}

/// The shared body of [`set_state`] and [`set_weight`]: `f` gets the
/// backend's base (state, weight) and its override entry to update.
fn set(
    c: Change<'_>,
    pool: &str,
    backend: &str,
    f: impl FnOnce((AdminState, u32), &mut BackendOverride),
) -> Result<Touched, ApiError> {
    let (i, j) = c.eff.find_backend(pool, backend)?;
    let p = &c.eff.pool_provenance[i].backends[j];
    let (pool, b) = (&c.eff.pools[i].name, &c.eff.pools[i].backends[j].name);
    let mut next = c.ov.clone();
    let entry = next
        .backend_overrides
        .entry(pool.clone())
        .or_default()
        .entry(b.clone())
        .or_default();
    f((p.base_state, p.base_weight), entry);
    let touched = Touched::pool(pool);
    Ok(c.commit(next, touched))
}

/// Adds a backend to a pool in effect. Adding back a file backend removed at
/// runtime restores it if the request is exactly the file's definition, else
/// 409; adding one identical to a backend in effect changes nothing; one
/// clashing with a backend in effect by name or address is a 409.
pub fn add_backend(
    ov: &mut Overrides,
    file: &Config,
    eff: &Effective,
    pool: &str,
    req: &AddBackend,
) -> Result<Touched, ApiError> {
    let c = Change { ov, file, eff };
    let i = eff.find_pool(pool)?;
    let p = &eff.pools[i];
    let want = backend_from_request(req)?;
    check_backend(file, &want)?;
    let mut next = c.ov.clone();
    if let Some(fb) = removed_file_backend(&c, i, &want) {
        let diff = backend_differences("file", fb, &want);
        if !diff.is_empty() {
            return Err(ApiError::conflict(format!(
                "backend `{}` of pool `{}` in the configuration file was removed at runtime; it \
                 can only be added back exactly as the file defines it, or under another name \
                 and address ({})",
                fb.name,
                p.name,
                diff.join("; ")
            )));
        }
        check_grown_pool(eff, p, fb)?;
        if let Some(r) = next.removed_backends.get_mut(&p.name) {
            r.remove(&fb.name);
        }
        return Ok(c.commit(next, Touched::pool(&p.name)));
    }
    if let Some(have) = p.backends.iter().find(|b| same_backend(b, &want)) {
        let diff = backend_differences("in effect", have, &want);
        if diff.is_empty() {
            return Ok(Touched::default());
        }
        return Err(ApiError::conflict(format!(
            "pool `{}` already has backend `{}` at {}, defined differently ({}); remove it \
             first to replace it",
            p.name,
            have.name,
            have.address,
            diff.join("; ")
        )));
    }
    check_grown_pool(eff, p, &want)?;
    let spec = want.clone();
    match eff.pool_provenance[i].source {
        Source::Config => next
            .added_backends
            .entry(p.name.clone())
            .or_default()
            .push(spec),
        Source::Runtime => runtime_pool(&mut next, &p.name)?.backends.push(spec),
    }
    Ok(c.commit(next, Touched::pool(&p.name)))
}

/// The file backend of pool `i` that was removed at runtime and that `want`
/// would bring back (same name or endpoint), if any.
fn removed_file_backend<'a>(
    c: &Change<'a>,
    i: usize,
    want: &BackendConfig,
) -> Option<&'a BackendConfig> {
    let p = &c.eff.pools[i];
    if c.eff.pool_provenance[i].source != Source::Config {
        return None;
    }
    let removed = c.ov.removed_backends.get(&p.name)?;
    c.file
        .pool(&p.name)?
        .backends
        .iter()
        .find(|fb| removed.contains(&fb.name) && same_backend(fb, want))
}

/// What one more backend in pool `p` must satisfy: every service using the
/// pool can reach it, rings still fit, the data path has room.
fn check_grown_pool(eff: &Effective, p: &PoolConfig, want: &BackendConfig) -> Result<(), ApiError> {
    let users = eff.users(&p.name);
    let mut grown = p.clone();
    grown.backends.push(want.clone());
    for &s in users {
        let svc = &eff.services[s];
        rules::backend_fits_service(svc, &p.name, want)
            .map_err(|e| invalid(e.message().to_owned()))?;
        rules::check_endpoints(svc, &grown).map_err(invalid)?;
        rules::check_ring(svc, grown.backends.len()).map_err(invalid)?;
    }
    rules::check_backend_entries(backend_entries(eff) + users.len()).map_err(invalid)
}

/// What a requested backend must be on its own, as in the file:
/// [`rules::check_backend`], and a static MAC must be a station's.
fn check_backend(file: &Config, b: &BackendConfig) -> Result<(), ApiError> {
    rules::check_backend(file, b).map_err(ApiError::bad_request)?;
    match b.mac {
        Some(mac) if !mac.is_unicast() || mac.0 == [0; 6] => Err(ApiError::bad_request(format!(
            "mac {mac} is not a unicast station address"
        ))),
        _ => Ok(()),
    }
}

/// A fixed ring size must be a prime the data path can hold, as in the file
/// (Maglev's permutation only visits every slot when the size is prime).
fn check_ring_size(ring_size: RingSize) -> Result<(), ApiError> {
    let RingSize::Fixed(n) = ring_size else {
        return Ok(());
    };
    if !(1..=MAX_RING_SIZE).contains(&n) {
        return Err(ApiError::bad_request(format!(
            "ring_size {n} is out of range 1..={MAX_RING_SIZE}"
        )));
    }
    if !is_prime(n) {
        let next = (n..=MAX_RING_SIZE)
            .find(|&c| is_prime(c))
            .unwrap_or(MAX_RING_SIZE);
        return Err(ApiError::bad_request(format!(
            "ring_size {n} is not prime (Maglev needs a prime; the next one is {next})"
        )));
    }
    Ok(())
}

/// Data-path backend entries in effect: one per service per backend of its pool.
fn backend_entries(eff: &Effective) -> usize {
    eff.services
        .iter()
        .map(|s| eff.pool(&s.pool).map_or(0, |p| p.backends.len()))
        .sum()
}

/// Removes a backend in effect (by name or address): one added at runtime is
/// deleted; one from the file is hidden (tombstone). Its state and weight
/// overrides are forgotten either way.
pub fn remove_backend(
    ov: &mut Overrides,
    file: &Config,
    eff: &Effective,
    pool: &str,
    backend: &str,
) -> Result<Touched, ApiError> {
    let c = Change { ov, file, eff };
    let (i, j) = eff.find_backend(pool, backend)?;
    let (p, b) = (&eff.pools[i], &eff.pools[i].backends[j]);
    let mut next = c.ov.clone();
    if let Some(per_backend) = next.backend_overrides.get_mut(&p.name) {
        per_backend.remove(&b.name);
    }
    match (
        eff.pool_provenance[i].source,
        eff.pool_provenance[i].backends[j].source,
    ) {
        (_, Source::Config) => {
            next.removed_backends
                .entry(p.name.clone())
                .or_default()
                .insert(b.name.clone());
        }
        (Source::Config, Source::Runtime) => {
            if let Some(added) = next.added_backends.get_mut(&p.name) {
                added.retain(|x| x.name != b.name);
            }
            let removed = c.ov.removed_backends.get(&p.name);
            let hid = file.pool(&p.name).is_some_and(|fp| {
                fp.backends
                    .iter()
                    .any(|fb| same_backend(fb, b) && !removed.is_some_and(|r| r.contains(&fb.name)))
            });
            if hid {
                check_unhidden(
                    file,
                    &next,
                    &format!("backend `{}` of pool `{}`", b.name, p.name),
                )?;
            }
        }
        (Source::Runtime, Source::Runtime) => {
            runtime_pool(&mut next, &p.name)?
                .backends
                .retain(|x| x.name != b.name);
        }
    }
    Ok(c.commit(next, Touched::pool(&p.name)))
}

/// Adds a pool with its backends. Adding back a file pool removed at runtime
/// restores it if the request is exactly the file's definition, else 409;
/// adding a pool identical to one in effect changes nothing; one with the
/// name of a different pool in effect is a 409.
pub fn add_pool(
    ov: &mut Overrides,
    file: &Config,
    eff: &Effective,
    req: &AddPool,
) -> Result<Touched, ApiError> {
    let c = Change { ov, file, eff };
    let want = pool_from_request(req, &file.proxy.defaults.pool)?;
    check_new_pool(file, &want)?;
    let mut next = c.ov.clone();
    if let Some(fp) = file.pool(&want.name)
        && c.ov.removed_pools.contains(&want.name)
    {
        let diff = pool_differences("file", fp, &want);
        if !diff.is_empty() {
            return Err(ApiError::conflict(format!(
                "pool `{}` of the configuration file was removed at runtime; it can only be \
                 added back exactly as the file defines it, or under another name ({})",
                fp.name,
                diff.join("; ")
            )));
        }
        next.removed_pools.remove(&want.name);
        return Ok(c.commit(next, Touched::pool_set(&want.name)));
    }
    if let Some(have) = eff.pool(&want.name) {
        let diff = pool_differences("in effect", have, &want);
        if diff.is_empty() {
            return Ok(Touched::default());
        }
        return Err(ApiError::conflict(format!(
            "pool `{}` already exists, defined differently ({}); remove it first to replace it",
            have.name,
            diff.join("; ")
        )));
    }
    let touched = Touched::pool_set(&want.name);
    next.added_pools.push(want);
    Ok(c.commit(next, touched))
}

/// A new pool's own rules: its name, each backend, no two alike.
fn check_new_pool(file: &Config, p: &PoolConfig) -> Result<(), ApiError> {
    rules::check_name("pool", &p.name).map_err(ApiError::bad_request)?;
    for (j, b) in p.backends.iter().enumerate() {
        check_backend(file, b)?;
        if p.backends[..j].iter().any(|x| same_backend(x, b)) {
            return Err(ApiError::bad_request(format!(
                "backend `{}` ({}) is listed twice in the new pool `{}`",
                b.name, b.address, p.name
            )));
        }
    }
    Ok(())
}

/// Removes a pool no service uses: one added at runtime is deleted; one from
/// the file is hidden (tombstone) and the runtime changes to its backends
/// are forgotten.
pub fn remove_pool(
    ov: &mut Overrides,
    file: &Config,
    eff: &Effective,
    pool: &str,
) -> Result<Touched, ApiError> {
    let c = Change { ov, file, eff };
    let i = eff.find_pool(pool)?;
    let name = &eff.pools[i].name;
    let users = eff.users(name);
    if !users.is_empty() {
        let names: Vec<&str> = users
            .iter()
            .map(|&s| eff.services[s].name.as_str())
            .collect();
        return Err(ApiError::conflict(format!(
            "pool `{name}` is used by {}: remove or change those first",
            names.join(", ")
        )));
    }
    let mut next = c.ov.clone();
    match eff.pool_provenance[i].source {
        // Changes to a file pool of that name, hidden by this one, are kept.
        Source::Runtime => {
            next.backend_overrides.remove(name);
            next.added_pools.retain(|p| p.name != *name);
            if file.pool(name).is_some() && !c.ov.removed_pools.contains(name) {
                check_unhidden(file, &next, &format!("pool `{name}`"))?;
            }
        }
        Source::Config => {
            next.forget_pool_children(name);
            next.removed_pools.insert(name.clone());
        }
    }
    Ok(c.commit(next, Touched::pool_set(name)))
}

/// Adds a service. Adding back a file service removed at runtime restores it
/// if the request is exactly the file's definition, else 409; adding one
/// identical to a service in effect changes nothing; one clashing with a
/// service in effect by name or address:port/protocol is a 409.
pub fn add_service(
    ov: &mut Overrides,
    file: &Config,
    eff: &Effective,
    req: &AddService,
) -> Result<Touched, ApiError> {
    let c = Change { ov, file, eff };
    let want = service_from_request(req);
    rules::check_service_name(&want.name).map_err(ApiError::bad_request)?;
    rules::check_service_address(want.address).map_err(ApiError::bad_request)?;
    check_ring_size(want.ring_size)?;
    let mut next = c.ov.clone();
    if let Some(fs) = file
        .services
        .iter()
        .find(|fs| c.ov.removed_services.contains(&fs.name) && same_service(fs, &want))
    {
        let diff = service_differences("file", fs, &want);
        if !diff.is_empty() {
            return Err(ApiError::conflict(format!(
                "service `{}` of the configuration file was removed at runtime; it can only be \
                 added back exactly as the file defines it, or under another name and address \
                 ({})",
                fs.name,
                diff.join("; ")
            )));
        }
        check_new_service(file, eff, &want)?;
        next.removed_services.remove(&fs.name);
        return Ok(c.commit(next, Touched::services()));
    }
    if let Some(have) = eff.services.iter().find(|s| same_service(s, &want)) {
        let diff = service_differences("in effect", have, &want);
        if diff.is_empty() {
            return Ok(Touched::default());
        }
        let clash = if have.name == want.name {
            format!("service `{}` already exists", have.name)
        } else {
            format!("service {} already exists as `{}`", have.key(), have.name)
        };
        return Err(ApiError::conflict(format!(
            "{clash}, defined differently ({}); remove it first to replace it",
            diff.join("; ")
        )));
    }
    check_new_service(file, eff, &want)?;
    next.added_services.push(want);
    Ok(c.commit(next, Touched::services()))
}

/// What one more service must satisfy: an interface to serve it on, its
/// pool exists and suits it, and the data path has room.
fn check_new_service(file: &Config, eff: &Effective, svc: &ServiceConfig) -> Result<(), ApiError> {
    if file.interfaces.is_empty() {
        return Err(invalid(
            "services need at least one interface for the XDP program (`interfaces:` in the \
             configuration file)"
                .to_owned(),
        ));
    }
    let pool = eff.pool(&svc.pool).ok_or_else(|| {
        invalid(format!(
            "service `{}` names pool `{}`, which is not in effect (add it first: `lb-ctl pool add`)",
            svc.name, svc.pool
        ))
    })?;
    for b in &pool.backends {
        rules::backend_fits_service(svc, &pool.name, b)
            .map_err(|e| invalid(e.message().to_owned()))?;
    }
    rules::check_endpoints(svc, pool).map_err(invalid)?;
    rules::check_ring(svc, pool.backends.len()).map_err(invalid)?;
    rules::check_service_count(eff.services.len() + 1).map_err(invalid)?;
    rules::check_backend_entries(backend_entries(eff) + pool.backends.len()).map_err(invalid)
}

/// Removes a service in effect (by name or address:port/protocol): one added
/// at runtime is deleted; one from the file is hidden (tombstone).
pub fn remove_service(
    ov: &mut Overrides,
    file: &Config,
    eff: &Effective,
    service: &str,
) -> Result<Touched, ApiError> {
    let c = Change { ov, file, eff };
    let i = eff.find_service(service)?;
    let name = &eff.services[i].name;
    let mut next = c.ov.clone();
    match eff.service_sources[i] {
        Source::Runtime => {
            next.added_services.retain(|s| s.name != *name);
            let hid = file.services.iter().any(|fs| {
                !c.ov.removed_services.contains(&fs.name) && same_service(fs, &eff.services[i])
            });
            if hid {
                check_unhidden(file, &next, &format!("service `{name}`"))?;
            }
        }
        Source::Config => {
            next.removed_services.insert(name.clone());
        }
    }
    Ok(c.commit(next, Touched::services()))
}

/// Removing a runtime entry that hid one of the file's brings the file's
/// back, unchecked so far: the configuration then in effect must hold, as
/// after an add (checked whole; this is rare).
fn check_unhidden(file: &Config, next: &Overrides, what: &str) -> Result<(), ApiError> {
    let errors = rules::check_config(&super::effective(file, next).config(file));
    if errors.is_empty() {
        return Ok(());
    }
    Err(invalid(format!(
        "removing {what} brings back the configuration file's entry it hides, which does not fit \
         what is in effect now: {}",
        errors.join("; ")
    )))
}

/// The spec of the runtime pool `name`, which the caller found in effect.
fn runtime_pool<'a>(ov: &'a mut Overrides, name: &str) -> Result<&'a mut PoolConfig, ApiError> {
    ov.added_pools
        .iter_mut()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::internal(format!("runtime pool `{name}` vanished")))
}
