//! The rules a configuration in effect must keep, on the typed model: checked
//! here once, and used both by the file's validator (which places each
//! failure at its `file:line:col`) and by the agent for changes made at
//! runtime (which answer them with a 4xx), so a rule cannot differ between
//! the file and the API.

use std::net::IpAddr;

use lb_common::consts::{MAX_BACKENDS, MAX_VIPS};

use crate::model::*;

/// Ring size per backend below which Maglev's spread gets visibly uneven: the
/// Maglev paper (NSDI '16, §3.4) sizes tables at M > 100·N.
pub const RING_SLOTS_PER_BACKEND: u64 = 100;

/// What a name of a pool or backend may be: not empty, no `/` (the CLI
/// writes `pool/backend`), no whitespace or control characters.
pub fn check_name(kind: &str, name: &str) -> Result<(), String> {
    check_service_name(name).map_err(|e| e.replacen("service", kind, 1))?;
    if name.contains('/') {
        return Err(format!("{kind} name `{name}` contains '/'"));
    }
    Ok(())
}

/// What a service name may be: not empty, no whitespace or control
/// characters. A `/` is fine: the default name is `<address>:<port>/<protocol>`.
pub fn check_service_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("service name is empty".to_owned());
    }
    if let Some(c) = name.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("service name `{name}` contains {c:?}"));
    }
    Ok(())
}

/// An address a service or backend can use: unicast, specified, and IPv4
/// written as IPv4 (the data path stores IPv4 as `::ffff:a.b.c.d`, so an
/// IPv4-mapped IPv6 address would alias it). `what` names it ("service").
pub fn check_address(what: &str, ip: IpAddr) -> Result<(), String> {
    let why = match ip {
        IpAddr::V4(a) if a.is_unspecified() => Some("the unspecified address".to_owned()),
        IpAddr::V4(a) if a.is_broadcast() => Some("the broadcast address".to_owned()),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address".to_owned()),
        IpAddr::V6(a) if a.is_unspecified() => Some("the unspecified address".to_owned()),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address".to_owned()),
        IpAddr::V6(a) => a
            .to_ipv4_mapped()
            .map(|v4| format!("IPv4-mapped; write it as {v4}")),
        IpAddr::V4(_) => None,
    };
    match why {
        Some(why) => Err(format!("{what} address {ip} is {why}")),
        None => Ok(()),
    }
}

/// A service address must also be routable: a link-local address means
/// nothing off its link and needs a scope the data path's key has no room for.
pub fn check_service_address(ip: IpAddr) -> Result<(), String> {
    check_address("service", ip)?;
    match ip {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Err(format!(
            "service address {v6} is link-local; services must be routable"
        )),
        _ => Ok(()),
    }
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Why backend `b` of pool `pool` cannot serve `svc`, if it cannot; the
/// error is about the backend's address ([`BackendProblem::Address`]) or its
/// port ([`BackendProblem::Port`]).
pub fn backend_fits_service(
    svc: &ServiceConfig,
    pool: &str,
    b: &BackendConfig,
) -> Result<(), BackendProblem> {
    if b.address.is_ipv4() != svc.address.is_ipv4() {
        return Err(BackendProblem::Address(format!(
            "backend `{}` ({}) of pool `{pool}` is {} but service `{}` is {}",
            b.name,
            b.address,
            family(b.address),
            svc.name,
            family(svc.address)
        )));
    }
    if b.address == svc.address {
        return Err(BackendProblem::Address(format!(
            "backend `{}` of pool `{pool}` has the address of service `{}` ({})",
            b.name, svc.name, svc.address
        )));
    }
    match (svc.mode, b.port, svc.port) {
        // DR rewrites the destination MAC only (ipvsadm -g); the backend sees
        // the packet's own destination port, so it cannot be changed.
        (Mode::Dr, Some(bp), 0) if bp != 0 => Err(BackendProblem::Port(format!(
            "service `{}` serves every port (port 0), so backends of pool `{pool}` cannot name a port \
             (backend `{}` has {bp})",
            svc.name, b.name
        ))),
        (Mode::Dr, Some(bp), sp) if sp != 0 && bp != sp => Err(BackendProblem::Port(format!(
            "backend `{}` of pool `{pool}` listens on port {bp} but service `{}` is on port {sp}: \
             DR mode cannot change ports (remove `port`, or give the service its own pool)",
            b.name, svc.name
        ))),
        _ => Ok(()),
    }
}

/// No two backends of `pool` may be one endpoint for `svc`: an absent port
/// means the service's, so `port: 80` and no port clash for a service on 80.
/// (Backends alike on their own are the pool's problem, reported there.)
pub fn check_endpoints(svc: &ServiceConfig, pool: &PoolConfig) -> Result<(), String> {
    for (j, b) in pool.backends.iter().enumerate() {
        let at = (b.address, svc.backend_port(b));
        if let Some(other) = pool.backends[..j]
            .iter()
            .find(|x| !same_backend(x, b) && (x.address, svc.backend_port(x)) == at)
        {
            return Err(format!(
                "backends `{}` and `{}` of pool `{}` are the same endpoint {} for service `{}`",
                other.name,
                b.name,
                pool.name,
                std::net::SocketAddr::new(at.0, at.1),
                svc.name
            ));
        }
    }
    Ok(())
}

/// A backend that cannot serve a service, and which of its keys is at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendProblem {
    Address(String),
    Port(String),
}

impl BackendProblem {
    pub fn message(&self) -> &str {
        match self {
            BackendProblem::Address(m) | BackendProblem::Port(m) => m,
        }
    }
}

/// A fixed ring must hold every backend; an uneven one is worth a warning
/// (`Ok(Some(..))`). `auto` always fits.
pub fn check_ring(svc: &ServiceConfig, backends: usize) -> Result<Option<String>, String> {
    let RingSize::Fixed(m) = svc.ring_size else {
        return Ok(None);
    };
    let n = backends as u64;
    if u64::from(m) < n {
        return Err(format!(
            "ring_size {m} of service `{}` is smaller than its pool's number of backends ({n})",
            svc.name
        ));
    }
    if u64::from(m) < RING_SLOTS_PER_BACKEND * n {
        return Ok(Some(format!(
            "ring_size {m} of service `{}` is under {RING_SLOTS_PER_BACKEND} slots per backend \
             ({n} backends): Maglev's spread will be uneven (`auto` sizes it)",
            svc.name
        )));
    }
    Ok(None)
}

/// The data path holds at most [`MAX_VIPS`] services.
pub fn check_service_count(count: usize) -> Result<(), String> {
    if count > MAX_VIPS as usize {
        return Err(format!(
            "too many services: the data path holds at most {MAX_VIPS}"
        ));
    }
    Ok(())
}

/// Each service gets its own data-path entry per backend of its pool; the
/// data path holds at most [`MAX_BACKENDS`] of them.
pub fn check_backend_entries(entries: usize) -> Result<(), String> {
    if entries > MAX_BACKENDS as usize {
        return Err(format!(
            "too many backends across services: each service has one data-path entry per backend \
             of its pool, {entries} in all, and the data path holds at most {MAX_BACKENDS}"
        ));
    }
    Ok(())
}

/// Weights as LVS takes them (ipvsadm `-w` 0..=65535).
pub fn check_weight(weight: u32) -> Result<(), String> {
    if weight > MAX_WEIGHT {
        return Err(format!("weight {weight} is out of range 0..={MAX_WEIGHT}"));
    }
    Ok(())
}

/// What a frontend needs of each backend of a pool it uses: a port to
/// connect to (the L7 proxy opens address:port itself; an absent port or 0
/// means "the client's own port" only to direct routing).
pub fn backend_fits_frontend(frontend: &str, pool: &str, b: &BackendConfig) -> Result<(), String> {
    match b.port {
        Some(port) if port != 0 => Ok(()),
        _ => Err(format!(
            "backend `{}` of pool `{pool}` needs a `port`: frontend `{frontend}` connects to \
             address:port",
            b.name
        )),
    }
}

/// The backend before backend `j` of `pool` with the same cookie value, if
/// any: a value names one server.
pub fn cookie_clash(pool: &PoolConfig, j: usize) -> Option<usize> {
    let value = pool.backends.get(j)?.proxy.cookie.as_ref()?;
    pool.backends
        .iter()
        .take(j)
        .position(|b| b.proxy.cookie.as_ref() == Some(value))
}

/// Two backends of a pool clash when they share a name or an endpoint
/// (address and port; an absent port is the services' port, so it only
/// equals another absent port).
pub fn same_backend(a: &BackendConfig, b: &BackendConfig) -> bool {
    a.name == b.name || (a.address, a.port) == (b.address, b.port)
}

/// Two services clash when they share a name or address, port and protocol.
pub fn same_service(a: &ServiceConfig, b: &ServiceConfig) -> bool {
    a.name == b.name || a.key() == b.key()
}

/// Every rule over a whole configuration (the file with runtime changes on
/// top, on reload): the errors, in words. The file's validator finds the
/// same problems with their positions; this is what a configuration built in
/// memory is held to.
pub fn check_config(c: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    let mut push = |r: Result<(), String>| errors.extend(r.err());
    for (i, pool) in c.pools.iter().enumerate() {
        push(check_name("pool", &pool.name));
        if c.pools[..i].iter().any(|p| p.name == pool.name) {
            push(Err(format!("pool `{}` is defined twice", pool.name)));
        }
        for (j, b) in pool.backends.iter().enumerate() {
            push(check_backend(c, b));
            if let Some(k) = cookie_clash(pool, j) {
                push(Err(format!(
                    "backends `{}` and `{}` of pool `{}` have the same cookie value",
                    pool.backends[k].name, b.name, pool.name
                )));
            }
            if pool.backends[..j].iter().any(|x| same_backend(x, b)) {
                push(Err(format!(
                    "backend `{}` ({}) is listed twice in pool `{}`",
                    b.name, b.address, pool.name
                )));
            }
        }
    }
    push(check_service_count(c.services.len()));
    let mut entries = 0;
    for (i, svc) in c.services.iter().enumerate() {
        push(check_service_name(&svc.name));
        push(check_service_address(svc.address));
        if c.services[..i].iter().any(|x| same_service(x, svc)) {
            push(Err(format!(
                "service `{}` ({}) clashes with another by name or address",
                svc.name,
                svc.key()
            )));
        }
        let Some(pool) = c.pool(&svc.pool) else {
            push(Err(format!(
                "service `{}` uses pool `{}`, which does not exist",
                svc.name, svc.pool
            )));
            continue;
        };
        entries += pool.backends.len();
        for b in &pool.backends {
            push(backend_fits_service(svc, &pool.name, b).map_err(|e| e.message().to_owned()));
        }
        push(check_endpoints(svc, pool));
        push(check_ring(svc, pool.backends.len()).map(|_| ()));
    }
    push(check_backend_entries(entries));
    for f in &c.frontends {
        for name in f.pools() {
            match c.pool(name) {
                None => push(Err(format!(
                    "frontend `{}` uses pool `{name}`, which does not exist",
                    f.name
                ))),
                Some(pool) => pool
                    .backends
                    .iter()
                    .for_each(|b| push(backend_fits_frontend(&f.name, name, b))),
            }
        }
    }
    if !c.services.is_empty() && c.interfaces.is_empty() {
        push(Err(
            "services need at least one interface for the XDP program".to_owned(),
        ));
    }
    errors
}

/// What a backend must be on its own: a name, an address, a weight in range,
/// a known interface.
pub fn check_backend(c: &Config, b: &BackendConfig) -> Result<(), String> {
    check_name("backend", &b.name)?;
    check_address("backend", b.address)?;
    check_weight(b.weight)?;
    if let Some(i) = &b.interface
        && !c.interfaces.iter().any(|x| x.name == *i)
    {
        return Err(format!(
            "backend `{}`: unknown interface `{i}` (known: {})",
            b.name,
            c.interfaces
                .iter()
                .map(|x| x.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(address: &str, port: u16) -> ServiceConfig {
        ServiceConfig {
            name: "web".into(),
            address: address.parse().unwrap(),
            port,
            protocol: Protocol::Tcp,
            mode: Mode::Dr,
            hash: HashMode::Source,
            ring_size: RingSize::Auto,
            pool: "p".into(),
        }
    }

    fn be(address: &str, port: Option<u16>) -> BackendConfig {
        BackendConfig {
            name: "b1".into(),
            address: address.parse().unwrap(),
            port,
            weight: 1,
            state: AdminState::Up,
            interface: None,
            mac: None,
            check: Default::default(),
            proxy: Default::default(),
        }
    }

    #[test]
    fn dr_backends_keep_the_service_port_and_family() {
        assert_eq!(
            backend_fits_service(&svc("10.0.0.1", 80), "p", &be("10.0.1.1", None)),
            Ok(())
        );
        assert_eq!(
            backend_fits_service(&svc("10.0.0.1", 80), "p", &be("10.0.1.1", Some(80))),
            Ok(())
        );
        assert!(matches!(
            backend_fits_service(&svc("10.0.0.1", 80), "p", &be("10.0.1.1", Some(8080))),
            Err(BackendProblem::Port(_))
        ));
        assert!(matches!(
            backend_fits_service(&svc("10.0.0.1", 0), "p", &be("10.0.1.1", Some(80))),
            Err(BackendProblem::Port(_))
        ));
        assert!(matches!(
            backend_fits_service(&svc("10.0.0.1", 80), "p", &be("2001:db8::1", None)),
            Err(BackendProblem::Address(_))
        ));
        assert!(matches!(
            backend_fits_service(&svc("10.0.0.1", 80), "p", &be("10.0.0.1", None)),
            Err(BackendProblem::Address(_))
        ));
    }

    #[test]
    fn whole_configs_are_checked_like_files() {
        let text = "interfaces: [{name: eth0}]
pools:
  web: {backends: [{name: a, address: 10.0.1.1}, {name: b, address: 10.0.1.2, port: 80}]}
services:
  - {name: http, address: 10.0.0.1, port: 80, pool: web}
";
        let mut c = crate::parse(text, "t").unwrap().config;
        assert_eq!(check_config(&c), Vec::<String>::new());
        c.services.push(ServiceConfig {
            name: "https".into(),
            port: 443,
            ..c.services[0].clone()
        });
        let dup = c.pools[0].backends[0].clone();
        c.pools[0].backends.push(dup);
        let errors = check_config(&c);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].contains("listed twice in pool `web`"));
        assert!(errors[1].contains("DR mode cannot change ports"));
        // The same address with and without a port is one endpoint for http.
        c.pools[0].backends.pop();
        c.services.pop();
        c.pools[0].backends[0].port = Some(80);
        c.pools[0].backends[1].address = c.pools[0].backends[0].address;
        c.pools[0].backends[1].port = None;
        let errors = check_config(&c);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains("are the same endpoint 10.0.1.1:80 for service `http`"));
    }

    #[test]
    fn names_refuse_separators_and_blanks() {
        assert!(check_name("pool", "web-1.a_b").is_ok());
        assert!(check_name("pool", "").is_err());
        assert!(check_name("pool", "a/b").is_err());
        assert!(check_name("pool", "a b").is_err());
        assert!(check_service_name("10.0.0.1:80/tcp").is_ok());
        assert!(check_service_name("a b").is_err());
    }

    #[test]
    fn fixed_rings_must_hold_their_backends() {
        let mut s = svc("10.0.0.1", 80);
        assert_eq!(check_ring(&s, 5000), Ok(None));
        s.ring_size = RingSize::Fixed(13);
        assert!(check_ring(&s, 14).is_err());
        assert!(check_ring(&s, 3).unwrap().is_some());
    }
}
