//! One service: its address, port, mode, ring and pool, and the checks
//! across services (uniqueness of keys and names, the data path's limits)
//! and between a service and the backends of its pool.

use std::collections::HashSet;
use std::net::IpAddr;

use lb_common::consts::MAX_RING_SIZE;
use lb_common::ring_size::is_prime;

use super::address::address;
use super::pool::Pools;
use super::{Identity, Registry, in_range, name_or};
use crate::diagnostic::Problems;
use crate::model::*;
use crate::positions::YamlPath;
use crate::raw::{Broken, Each, RawRingSize, RawService};
use crate::rules::{self, BackendProblem};

/// The services that passed their checks, and the names of the pools any
/// service names (valid or not).
pub(super) fn services(
    raw: Vec<Each<RawService>>,
    at: &YamlPath,
    pools: &Pools,
    p: &mut Problems,
) -> (Vec<ServiceConfig>, HashSet<String>) {
    let mut out = Vec::new();
    let mut referenced = HashSet::new();
    let mut seen = Registry::new();
    let mut entries = 0usize;
    for (i, each) in raw.into_iter().enumerate() {
        let at = at.index(i);
        if let (Err(why), Ok(())) = (
            rules::check_service_count(i + 1),
            rules::check_service_count(i),
        ) {
            p.error(&at, why);
        }
        let Some((raw, broken)) = each.parse(&at, p) else {
            continue;
        };
        referenced.extend(raw.pool.clone());
        let (id, svc) = service(raw, &broken, &at, pools, p);
        seen.check(
            id,
            &at,
            |key| format!("service {key} is defined twice"),
            |name| format!("service name `{name}` is used twice"),
            p,
        );
        if let Some(svc) = svc {
            let pool = pools.list.iter().find(|x| x.name == svc.pool);
            let before = entries;
            entries += pool.map_or(0, |x| x.backends.len());
            if let (Err(why), Ok(())) = (
                rules::check_backend_entries(entries),
                rules::check_backend_entries(before),
            ) {
                p.error(&at.key("pool"), why);
            }
            out.push(svc);
        }
    }
    (out, referenced)
}

/// Checks one service, and the backends of its pool against it. The model
/// is `None` if anything is wrong, including shape errors already reported
/// (`broken`).
fn service(
    raw: RawService,
    broken: &Broken,
    at: &YamlPath,
    pools: &Pools,
    p: &mut Problems,
) -> (Identity<ServiceKey>, Option<ServiceConfig>) {
    let address = service_address(raw.address.as_deref(), broken, at, p);
    let port = match raw.port {
        None => {
            if !broken.contains("port") {
                p.error(at, "missing required key `port` (0 means every port)");
            }
            None
        }
        Some(n) => in_range(n, 0..=u16::MAX, "port", &at.key("port"), p),
    };
    let protocol = raw.protocol.unwrap_or(Protocol::Tcp);
    let mode = mode(raw.mode.as_deref(), &at.key("mode"), p);
    let ring_size = ring_size(raw.ring_size, &at.key("ring_size"), p);
    // A dropped `protocol` would read as the default: no key then.
    let key = address
        .zip(port)
        .filter(|_| !broken.contains("protocol"))
        .map(|(address, port)| ServiceKey {
            address,
            port,
            protocol,
        });
    let raw_name_absent = raw.name.is_none();
    let name = name_or(
        rules::check_service_name,
        raw.name,
        || key.map(|k| k.to_string()),
        &at.key("name"),
        p,
    );
    let pool = pool_ref(raw.pool, broken, at, pools, p);
    let id = Identity {
        key,
        name: name.clone(),
        default_name: raw_name_absent,
    };
    if !broken.is_empty() {
        return (id, None);
    }
    let svc = match (name, address, port, mode, ring_size, pool) {
        (Some(name), Some(address), Some(port), Some(mode), Some(ring_size), Some(pool)) => {
            Some(ServiceConfig {
                name,
                address,
                port,
                protocol,
                mode,
                hash: raw.hash.unwrap_or(HashMode::Source),
                ring_size,
                pool,
            })
        }
        _ => None,
    };
    if let Some(svc) = &svc {
        check_pool_backends(svc, at, pools, p);
    }
    (id, svc)
}

/// The service's `address:`, which must be one a VIP can have.
fn service_address(
    raw: Option<&str>,
    broken: &Broken,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<IpAddr> {
    let Some(s) = raw else {
        if !broken.contains("address") {
            p.error(at, "missing required key `address`");
        }
        return None;
    };
    let ip = address(s, "service", &at.key("address"), p)?;
    rules::check_service_address(ip)
        .map_err(|why| p.error(&at.key("address"), why))
        .ok()
        .map(|()| ip)
}

/// The forwarding `mode:`; only direct routing exists.
fn mode(raw: Option<&str>, at: &YamlPath, p: &mut Problems) -> Option<Mode> {
    match raw {
        None | Some("dr") => Some(Mode::Dr),
        Some(m @ ("tunnel" | "nat")) => {
            p.error(at, format!("mode `{m}` is not supported yet (only `dr`)"));
            None
        }
        Some(m) => {
            p.error(at, format!("unknown variant `{m}`, expected `dr`"));
            None
        }
    }
}

/// `pool:`: required, and the name of a pool (when every pool parsed, so an
/// unknown name is not a broken one).
fn pool_ref(
    raw: Option<String>,
    broken: &Broken,
    at: &YamlPath,
    pools: &Pools,
    p: &mut Problems,
) -> Option<String> {
    let Some(name) = raw else {
        if !broken.contains("pool") {
            p.error(
                at,
                "missing required key `pool` (the name of an entry of `pools:`)",
            );
        }
        return None;
    };
    pools
        .check_ref(&name, |why| p.error(&at.key("pool"), why))
        .then_some(name)
}

/// What the service asks of its pool's backends, reported at each backend;
/// what it asks of the pool as a whole (not empty, someone up, a ring that
/// fits), reported at the service.
fn check_pool_backends(svc: &ServiceConfig, at: &YamlPath, pools: &Pools, p: &mut Problems) {
    let (Some(pool), Some((_, paths))) = (
        pools.list.iter().find(|x| x.name == svc.pool),
        pools.at.get(&svc.pool),
    ) else {
        return;
    };
    for (b, b_at) in pool.backends.iter().zip(paths) {
        match rules::backend_fits_service(svc, &pool.name, b) {
            Ok(()) => {}
            Err(BackendProblem::Address(m)) => p.error(&b_at.key("address"), m),
            Err(BackendProblem::Port(m)) => p.error(&b_at.key("port"), m),
        }
    }
    let pool_at = at.key("pool");
    if let Err(e) = rules::check_endpoints(svc, pool) {
        p.error(&pool_at, e);
    }
    if pool.backends.is_empty() {
        p.warning(
            &pool_at,
            format!(
                "service `{}` uses pool `{}`, which has no backends: its traffic is dropped",
                svc.name, pool.name
            ),
        );
    } else if !pool.backends.iter().any(BackendConfig::takes_new_flows) {
        p.warning(
            &pool_at,
            format!(
                "no backend of pool `{}` takes new flows (all drained, in maintenance or weight 0): \
                 service `{}` drops new connections",
                pool.name, svc.name
            ),
        );
    }
    let ring_at = match svc.ring_size {
        RingSize::Fixed(_) => at.key("ring_size"),
        RingSize::Auto => pool_at,
    };
    match rules::check_ring(svc, pool.backends.len()) {
        Ok(None) => {}
        Ok(Some(w)) => p.warning(&ring_at, w),
        Err(e) => p.error(&ring_at, e),
    }
}

fn ring_size(raw: Option<RawRingSize>, at: &YamlPath, p: &mut Problems) -> Option<RingSize> {
    let n = match raw {
        None | Some(RawRingSize::Auto) => return Some(RingSize::Auto),
        Some(RawRingSize::Fixed(n)) => n,
    };
    let n = in_range(n, 1..=MAX_RING_SIZE, "ring_size", at, p)?;
    if !is_prime(n) {
        let next = (n..=MAX_RING_SIZE)
            .find(|&c| is_prime(c))
            .unwrap_or(MAX_RING_SIZE);
        // Maglev's permutation (offset + j·skip mod M) only visits every slot when M is prime.
        p.error(
            at,
            format!("ring_size {n} is not prime (Maglev needs a prime; the next one is {next})"),
        );
        return None;
    }
    Some(RingSize::Fixed(n))
}
