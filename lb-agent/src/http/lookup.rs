//! GETs of services, pools and backends, answered from `Status`: a service
//! by name or `address:port/protocol`, a pool by name, a backend by name
//! (or by address, when one backend of its pool has it).

use std::net::IpAddr;

use lb_api::{
    paths::Route,
    types::{ApiError, BackendStatus, PoolStatus, ServiceStatus, Status},
};
use lb_config::ServiceKey;

use super::body::json;

/// The JSON of a view `route` names; a name that matches nothing is 404.
pub(super) fn view(status: Status, route: &Route) -> Result<Vec<u8>, ApiError> {
    match route {
        Route::Services => json(status.services),
        Route::Service(id) => json(service(status.services, id)?),
        Route::Pools => json(status.pools),
        Route::Pool(name) => json(pool(status.pools, name)?),
        Route::Backends(name) => json(pool(status.pools, name)?.backends),
        Route::Backend(name, id) => json(backend(pool(status.pools, name)?, id)?),
        other => Err(ApiError::internal(format!(
            "{other:?} is not read from the status"
        ))),
    }
}

/// Whether `id` names this service: its name, or `address:port/protocol`
/// (`[v6]:port/protocol`; an unbracketed IPv6 address is accepted too).
pub fn service_matches(s: &ServiceStatus, id: &str) -> bool {
    let key = ServiceKey {
        address: s.address,
        port: s.port,
        protocol: s.protocol,
    };
    s.name == id || id.parse::<ServiceKey>() == Ok(key)
}

fn service(services: Vec<ServiceStatus>, id: &str) -> Result<ServiceStatus, ApiError> {
    services
        .into_iter()
        .find(|s| service_matches(s, id))
        .ok_or_else(|| {
            ApiError::not_found(format!("no service `{id}` (see `lb-ctl service list`)"))
        })
}

fn pool(pools: Vec<PoolStatus>, name: &str) -> Result<PoolStatus, ApiError> {
    pools
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no pool `{name}` (see `lb-ctl pool list`)")))
}

fn backend(pool: PoolStatus, id: &str) -> Result<BackendStatus, ApiError> {
    let by_name = pool.backends.iter().position(|b| b.name == id);
    let by_address = || {
        let ip = id.parse::<IpAddr>().ok()?;
        let mut at = pool
            .backends
            .iter()
            .enumerate()
            .filter(|(_, b)| b.address == ip);
        match (at.next(), at.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    };
    let index = by_name.or_else(by_address).ok_or_else(|| {
        ApiError::not_found(format!(
            "no backend `{id}` in pool `{}` (see `lb-ctl backend list {}`)",
            pool.name, pool.name
        ))
    })?;
    let mut backends = pool.backends;
    Ok(backends.swap_remove(index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::types::{Counters, RingSizeSetting, Source};
    use lb_config::{HashMode, Protocol, RingSize};

    fn dns() -> ServiceStatus {
        ServiceStatus {
            name: "dns".into(),
            address: "2001:db8::53".parse().unwrap(),
            port: 53,
            protocol: Protocol::Udp,
            hash: HashMode::Source,
            ring_size: RingSizeSetting::from(RingSize::Auto),
            ring_slots: 251,
            pool: "dns".into(),
            source: Source::Config,
            counters: Counters::default(),
            backends: vec![],
        }
    }

    #[test]
    fn services_by_name_or_key() {
        let s = dns();
        for id in ["dns", "[2001:db8::53]:53/udp", "2001:db8::53:53/udp"] {
            assert!(service_matches(&s, id), "{id}");
        }
        for id in [
            "DNS",
            "[2001:db8::53]:53/tcp",
            "[2001:db8::53]:54/udp",
            "x/udp",
        ] {
            assert!(!service_matches(&s, id), "{id}");
        }
    }
}
