//! One backend of a VIP, and the checks across a VIP's backends (uniqueness,
//! the backend limit).

use std::net::IpAddr;

use lb_common::consts::MAX_BACKENDS;

use super::address::{address, mac};
use super::vip::VipContext;
use super::{Identity, Interfaces, Registry, in_range};
use crate::diagnostic::Problems;
use crate::model::*;
use crate::positions::YamlPath;
use crate::raw::{Broken, Each, RawBackend};

pub(super) fn backends(
    raw: Vec<Each<RawBackend>>,
    at: &YamlPath,
    vip: &VipContext,
    ifaces: &Interfaces,
    total: &mut u64,
    p: &mut Problems,
) -> Vec<BackendConfig> {
    let mut out = Vec::new();
    let mut seen = Registry::new();
    for (i, each) in raw.into_iter().enumerate() {
        let at = at.index(i);
        *total += 1;
        if *total == u64::from(MAX_BACKENDS) + 1 {
            p.error(
                &at,
                format!("too many backends: the data path holds at most {MAX_BACKENDS} in all"),
            );
        }
        let Some((raw, broken)) = each.parse(&at, p) else {
            continue;
        };
        let (id, backend) = backend(raw, &broken, &at, vip, ifaces, p);
        seen.check(
            id,
            &at,
            |(address, _)| format!("backend {address} is listed twice in VIP `{}`", vip.name),
            |name| format!("backend name `{name}` is used twice in VIP `{}`", vip.name),
            p,
        );
        out.extend(backend);
    }
    out
}

/// Backends of a VIP are told apart by address and port (the VIP's when absent).
type Endpoint = (IpAddr, Option<u16>);

/// Checks one backend. The model is `None` if anything is wrong, including
/// shape errors already reported (`broken`).
fn backend(
    raw: RawBackend,
    broken: &Broken,
    at: &YamlPath,
    vip: &VipContext,
    ifaces: &Interfaces,
    p: &mut Problems,
) -> (Identity<Endpoint>, Option<BackendConfig>) {
    let addr_at = at.key("address");
    let address = match &raw.address {
        None => {
            if !broken.contains("address") {
                p.error(at, "missing required key `address`");
            }
            None
        }
        Some(s) => address(s, "backend", &addr_at, p),
    };
    if let (Some(a), Some(v)) = (address, vip.address) {
        if a.is_ipv4() != v.is_ipv4() {
            let fam = |ip: IpAddr| if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            p.error(
                &addr_at,
                format!(
                    "backend {a} is {} but VIP `{}` is {}",
                    fam(a),
                    vip.name,
                    fam(v)
                ),
            );
        } else if a == v {
            p.error(&addr_at, format!("backend {a} is the VIP's own address"));
        }
    }
    let port = match raw.port {
        None => Some(None),
        Some(n) => in_range(n, 0..=u16::MAX, "port", &at.key("port"), p).map(Some),
    };
    match (port, vip.port) {
        // DR rewrites the destination MAC only (ipvsadm -g); the backend sees
        // the packet's own destination port, so it cannot be changed.
        (Some(Some(b)), Some(0)) if b != 0 => p.error(
            &at.key("port"),
            format!("VIP `{}` serves every port (port 0): its backends cannot name a port", vip.name),
        ),
        (Some(Some(b)), Some(v)) if v != 0 && b != v => p.error(
            &at.key("port"),
            format!("backend port {b} differs from the VIP's port {v}: DR mode cannot change ports (remove `port`)"),
        ),
        _ => {}
    }
    let weight = match raw.weight {
        None => Some(DEFAULT_WEIGHT),
        Some(n) => in_range(n, 0..=MAX_WEIGHT, "weight", &at.key("weight"), p),
    };
    let state = match raw.state.as_deref() {
        None | Some("up") => Some(AdminState::Up),
        Some("drain") => Some(AdminState::Drain),
        Some("maint") => Some(AdminState::Maint),
        Some("down") => {
            p.error(
                &at.key("state"),
                "state `down` is set by health checks; use `maint` to take a backend out",
            );
            None
        }
        Some(s) => {
            p.error(
                &at.key("state"),
                format!("unknown variant `{s}`, expected one of `up`, `drain`, `maint`"),
            );
            None
        }
    };
    if let Some(name) = &raw.interface
        && ifaces.complete
        && !ifaces.names.contains_key(name)
    {
        let mut known: Vec<&str> = ifaces.names.keys().map(String::as_str).collect();
        known.sort_unstable();
        let known = if known.is_empty() {
            "none are configured".to_owned()
        } else {
            format!("known: {}", known.join(", "))
        };
        p.error(
            &at.key("interface"),
            format!("unknown interface `{name}` ({known})"),
        );
    }
    let mac = match &raw.mac {
        None => Some(None),
        Some(s) => mac(s, &at.key("mac"), p).map(Some),
    };
    let default_name = raw.name.is_none();
    let name = match raw.name {
        Some(n) if n.trim().is_empty() => {
            p.error(&at.key("name"), "backend name is empty");
            None
        }
        Some(n) => Some(n),
        None => address.map(|a| a.to_string()),
    };
    let id = Identity {
        key: address.zip(port).map(|(a, port)| (a, port.or(vip.port))),
        name: name.clone(),
        default_name,
    };
    if !broken.is_empty() {
        return (id, None);
    }
    let backend = match (name, address, port, weight, state, mac) {
        (Some(name), Some(address), Some(port), Some(weight), Some(state), Some(mac)) => {
            Some(BackendConfig {
                name,
                address,
                port,
                weight,
                state,
                interface: raw.interface,
                mac,
            })
        }
        _ => None,
    };
    (id, backend)
}
