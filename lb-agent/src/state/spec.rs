//! VIPs and backends added at runtime: their persisted shape (every field
//! resolved, so a later change of a default does not change them), and how an
//! API request becomes one.

use std::net::IpAddr;

use lb_common::consts::DEFAULT_RING_SIZE;
use serde::{Deserialize, Serialize};

use lb_api::types::{AddBackend, AddVip, ApiError};
use lb_config::{
    AdminState, BackendConfig, DEFAULT_WEIGHT, HashMode, MacAddr, Mode, Protocol, VipConfig, VipKey,
};

/// A VIP added at runtime, as persisted: [`VipConfig`] with serde both ways.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VipSpec {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub mode: Mode,
    pub hash: HashMode,
    pub ring_size: u32,
    #[serde(default)]
    pub backends: Vec<BackendSpec>,
}

/// A backend added at runtime, as persisted: [`BackendConfig`] with serde both ways.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BackendSpec {
    pub name: String,
    pub address: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub weight: u32,
    pub state: AdminState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "mac_text")]
    pub mac: Option<MacAddr>,
}

impl From<&VipSpec> for VipConfig {
    fn from(s: &VipSpec) -> Self {
        VipConfig {
            name: s.name.clone(),
            address: s.address,
            port: s.port,
            protocol: s.protocol,
            mode: s.mode,
            hash: s.hash,
            ring_size: s.ring_size,
            backends: s.backends.iter().map(BackendConfig::from).collect(),
        }
    }
}

impl From<&VipConfig> for VipSpec {
    fn from(v: &VipConfig) -> Self {
        VipSpec {
            name: v.name.clone(),
            address: v.address,
            port: v.port,
            protocol: v.protocol,
            mode: v.mode,
            hash: v.hash,
            ring_size: v.ring_size,
            backends: v.backends.iter().map(BackendSpec::from).collect(),
        }
    }
}

impl From<&BackendSpec> for BackendConfig {
    fn from(s: &BackendSpec) -> Self {
        BackendConfig {
            name: s.name.clone(),
            address: s.address,
            port: s.port,
            weight: s.weight,
            state: s.state,
            interface: s.interface.clone(),
            mac: s.mac,
        }
    }
}

impl From<&BackendConfig> for BackendSpec {
    fn from(b: &BackendConfig) -> Self {
        BackendSpec {
            name: b.name.clone(),
            address: b.address,
            port: b.port,
            weight: b.weight,
            state: b.state,
            interface: b.interface.clone(),
            mac: b.mac,
        }
    }
}

/// The VIP a request asks for, with the file's defaults for unset fields
/// (name `<address>:<port>/<protocol>`, tcp, dr, source hash, default ring).
/// Only what cannot be represented is refused here (400); every rule of the
/// file is checked later on the resulting configuration.
pub(super) fn vip_from_request(req: &AddVip) -> Result<VipConfig, ApiError> {
    let protocol = req.protocol.unwrap_or(Protocol::Tcp);
    let key = VipKey {
        address: req.address,
        port: req.port,
        protocol,
    };
    Ok(VipConfig {
        name: req.name.clone().unwrap_or_else(|| key.to_string()),
        address: req.address,
        port: req.port,
        protocol,
        mode: Mode::Dr,
        hash: req.hash.unwrap_or(HashMode::Source),
        ring_size: req.ring_size.unwrap_or(DEFAULT_RING_SIZE),
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
    })
}

/// What tells a VIP's backends apart in the data path: address and port, the
/// VIP's when the backend has none (as the file's duplicate check).
pub(super) fn endpoint(vip_port: u16, b: &BackendConfig) -> (IpAddr, u16) {
    (b.address, b.port.unwrap_or(vip_port))
}

/// How `req` differs from `have` (both of one VIP or both of one backend),
/// as `key: <label> X, requested Y` items; empty when they are the same.
/// Backends compare by endpoint, so an absent port equals the VIP's port, and
/// a VIP's backends compare by name, in any order.
pub(super) fn vip_differences(label: &str, have: &VipConfig, req: &VipConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |key: &str, h: String, r: String| {
        if h != r {
            out.push(format!("{key}: {label} {h}, requested {r}"));
        }
    };
    field(
        "name",
        format!("`{}`", have.name),
        format!("`{}`", req.name),
    );
    field("address", have.address.to_string(), req.address.to_string());
    field("port", have.port.to_string(), req.port.to_string());
    field(
        "protocol",
        have.protocol.to_string(),
        req.protocol.to_string(),
    );
    field("mode", have.mode.to_string(), req.mode.to_string());
    field("hash", have.hash.to_string(), req.hash.to_string());
    field(
        "ring_size",
        have.ring_size.to_string(),
        req.ring_size.to_string(),
    );
    for hb in &have.backends {
        match req.backends.iter().find(|rb| rb.name == hb.name) {
            None => out.push(format!("backend `{}`: not in the request", hb.name)),
            Some(rb) => out.extend(
                backend_differences(label, have.port, hb, rb)
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

/// See [`vip_differences`].
pub(super) fn backend_differences(
    label: &str,
    vip_port: u16,
    have: &BackendConfig,
    req: &BackendConfig,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |key: &str, h: String, r: String| {
        if h != r {
            out.push(format!("{key}: {label} {h}, requested {r}"));
        }
    };
    field(
        "name",
        format!("`{}`", have.name),
        format!("`{}`", req.name),
    );
    field("address", have.address.to_string(), req.address.to_string());
    field(
        "port",
        endpoint(vip_port, have).1.to_string(),
        endpoint(vip_port, req).1.to_string(),
    );
    field("weight", have.weight.to_string(), req.weight.to_string());
    field("state", have.state.to_string(), req.state.to_string());
    field("interface", show(&have.interface), show(&req.interface));
    field("mac", show(&have.mac), show(&req.mac));
    out
}

fn show<T: std::fmt::Display>(o: &Option<T>) -> String {
    match o {
        Some(v) => v.to_string(),
        None => "none".to_owned(),
    }
}

/// `serde(with)` for an optional MAC as text (`02:00:00:00:00:01`): the
/// model's [`MacAddr`] only serializes.
mod mac_text {
    use serde::de::{self, Deserialize, Deserializer};
    use serde::{Serialize, Serializer};

    use lb_config::MacAddr;

    pub fn serialize<S: Serializer>(mac: &Option<MacAddr>, s: S) -> Result<S::Ok, S::Error> {
        mac.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MacAddr>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|()| de::Error::custom(format!("`{text}` is not a MAC address"))),
        }
    }
}
