//! Pools, backends and services added at runtime: how an API request
//! becomes one (with the file's defaults, so a later change of a default does
//! not change what was added), and how two definitions differ. They are
//! persisted as the configuration model itself.

use lb_api::types::{AddBackend, AddPool, AddService, ApiError};
use lb_config::{
    AdminState, BackendConfig, DEFAULT_WEIGHT, HashMode, MacAddr, Mode, PoolConfig, Protocol,
    RingSize, ServiceConfig, ServiceKey, proxy::PoolL7,
};

/// The service a request asks for, with the file's defaults for unset
/// fields (name `<address>:<port>/<protocol>`, tcp, dr, source hash, auto
/// ring). Only what cannot be represented is refused here (400); the rules
/// are checked by the mutation against what is in effect.
pub(super) fn service_from_request(req: &AddService) -> ServiceConfig {
    let protocol = req.protocol.unwrap_or(Protocol::Tcp);
    let key = ServiceKey {
        address: req.address,
        port: req.port,
        protocol,
    };
    ServiceConfig {
        name: req.name.clone().unwrap_or_else(|| key.to_string()),
        address: req.address,
        port: req.port,
        protocol,
        mode: Mode::Dr,
        hash: req.hash.unwrap_or(HashMode::Source),
        ring_size: req.ring_size.map_or(RingSize::Auto, RingSize::from),
        pool: req.pool.clone(),
    }
}

/// The pool a request asks for; its L7 settings are `proxy.defaults`'
/// (`l7`), as for a file pool that sets none.
pub(super) fn pool_from_request(req: &AddPool, l7: &PoolL7) -> Result<PoolConfig, ApiError> {
    Ok(PoolConfig {
        check: req.check.clone(),
        notify_up: None,
        notify_down: None,
        proxy: l7.clone(),
        name: req.name.clone(),
        backends: req
            .backends
            .iter()
            .map(backend_from_request)
            .collect::<Result<_, _>>()?,
    })
}

/// The backend a request asks for, with the file's defaults (name = the
/// address, weight [`DEFAULT_WEIGHT`], state up).
pub(super) fn backend_from_request(req: &AddBackend) -> Result<BackendConfig, ApiError> {
    let mac = match &req.mac {
        None => None,
        Some(text) => Some(text.parse::<MacAddr>().map_err(|()| {
            ApiError::bad_request(format!(
                "`{text}` is not a MAC address (e.g. `02:00:00:00:00:01`)"
            ))
        })?),
    };
    Ok(BackendConfig {
        name: req.name.clone().unwrap_or_else(|| req.address.to_string()),
        address: req.address,
        port: req.port,
        weight: req.weight.unwrap_or(DEFAULT_WEIGHT),
        state: req.state.unwrap_or(AdminState::Up),
        interface: req.interface.clone(),
        mac,
        check: req.check.clone().unwrap_or_default(),
        proxy: Default::default(),
    })
}

/// Collects `key: <label> X, requested Y` items for fields that differ.
#[derive(Default)]
pub(super) struct Differences(Vec<String>);

impl Differences {
    fn field(&mut self, key: &str, label: &str, have: String, req: String) {
        if have != req {
            self.0
                .push(format!("{key}: {label} {have}, requested {req}"));
        }
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// How `req` differs from `have`, as `key: <label> X, requested Y` items;
/// empty when they are the same.
pub(super) fn service_differences(
    label: &str,
    have: &ServiceConfig,
    req: &ServiceConfig,
) -> Vec<String> {
    let mut d = Differences::default();
    d.field(
        "name",
        label,
        format!("`{}`", have.name),
        format!("`{}`", req.name),
    );
    d.field(
        "address",
        label,
        have.address.to_string(),
        req.address.to_string(),
    );
    d.field("port", label, have.port.to_string(), req.port.to_string());
    d.field(
        "protocol",
        label,
        have.protocol.to_string(),
        req.protocol.to_string(),
    );
    d.field("mode", label, have.mode.to_string(), req.mode.to_string());
    d.field("hash", label, have.hash.to_string(), req.hash.to_string());
    d.field(
        "ring_size",
        label,
        have.ring_size.to_string(),
        req.ring_size.to_string(),
    );
    d.field("pool", label, have.pool.clone(), req.pool.clone());
    d.into_vec()
}

/// See [`service_differences`]; a pool's backends compare by name, in any order.
pub(super) fn pool_differences(label: &str, have: &PoolConfig, req: &PoolConfig) -> Vec<String> {
    let mut out = Vec::new();
    if have.check != req.check {
        let json = |c| serde_json::to_string(c).unwrap_or_default();
        out.push(format!(
            "check: {label} {}, requested {}",
            json(&have.check),
            json(&req.check)
        ));
    }
    for hb in &have.backends {
        match req.backends.iter().find(|rb| rb.name == hb.name) {
            None => out.push(format!("backend `{}`: not in the request", hb.name)),
            Some(rb) => out.extend(
                backend_differences(label, hb, rb)
                    .into_iter()
                    .map(|d| format!("backend `{}` {d}", hb.name)),
            ),
        }
    }
    for rb in &req.backends {
        if !have.backends.iter().any(|hb| hb.name == rb.name) {
            out.push(format!("backend `{}`: only in the request", rb.name));
        }
    }
    out
}

/// See [`service_differences`].
pub(super) fn backend_differences(
    label: &str,
    have: &BackendConfig,
    req: &BackendConfig,
) -> Vec<String> {
    let mut d = Differences::default();
    d.field(
        "name",
        label,
        format!("`{}`", have.name),
        format!("`{}`", req.name),
    );
    d.field(
        "address",
        label,
        have.address.to_string(),
        req.address.to_string(),
    );
    d.field("port", label, show(&have.port), show(&req.port));
    d.field(
        "weight",
        label,
        have.weight.to_string(),
        req.weight.to_string(),
    );
    d.field(
        "state",
        label,
        have.state.to_string(),
        req.state.to_string(),
    );
    d.field(
        "interface",
        label,
        show(&have.interface),
        show(&req.interface),
    );
    d.field("mac", label, show(&have.mac), show(&req.mac));
    d.field(
        "check",
        label,
        serde_json::to_string(&have.check).unwrap_or_default(),
        serde_json::to_string(&req.check).unwrap_or_default(),
    );
    d.into_vec()
}

fn show<T: std::fmt::Display>(o: &Option<T>) -> String {
    match o {
        Some(v) => v.to_string(),
        None => "none".to_owned(),
    }
}
