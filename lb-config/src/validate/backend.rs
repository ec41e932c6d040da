//! One backend of a pool, and the checks across a pool's backends
//! (uniqueness of names and endpoints). What a backend must be for the
//! services using its pool is checked with the services.

use std::net::IpAddr;

use super::address::{address, mac};
use super::check::backend_check;
use super::proxy::backend_l7;
use super::{Identity, Interfaces, Registry, in_range, name_or};
use crate::diagnostic::Problems;
use crate::model::*;
use crate::positions::YamlPath;
use crate::raw::{Broken, Each, RawBackend};

/// The backends of pool `pool` that passed their checks, each with where it is.
pub(super) fn backends(
    raw: Vec<Each<RawBackend>>,
    at: &YamlPath,
    pool: &str,
    ifaces: &Interfaces,
    p: &mut Problems,
) -> Vec<(BackendConfig, YamlPath)> {
    let mut out = Vec::new();
    let mut seen = Registry::new();
    for (i, each) in raw.into_iter().enumerate() {
        let at = at.index(i);
        let Some((raw, broken)) = each.parse(&at, p) else {
            continue;
        };
        let (id, backend) = backend(raw, &broken, &at, ifaces, p);
        seen.check(
            id,
            &at,
            |(address, port)| match port {
                Some(port) => {
                    format!("backend {address} port {port} is listed twice in pool `{pool}`")
                }
                None => format!("backend {address} is listed twice in pool `{pool}`"),
            },
            |name| format!("backend name `{name}` is used twice in pool `{pool}`"),
            p,
        );
        out.extend(backend.map(|b| (b, at)));
    }
    out
}

/// Backends of a pool are told apart by address and port (absent: the port of
/// whichever service sends the traffic).
type Endpoint = (IpAddr, Option<u16>);

/// Checks one backend. The model is `None` if anything is wrong, including
/// shape errors already reported (`broken`).
fn backend(
    raw: RawBackend,
    broken: &Broken,
    at: &YamlPath,
    ifaces: &Interfaces,
    p: &mut Problems,
) -> (Identity<Endpoint>, Option<BackendConfig>) {
    let address = match &raw.address {
        None => {
            if !broken.contains("address") {
                p.error(at, "missing required key `address`");
            }
            None
        }
        Some(s) => address(s, "backend", &at.key("address"), p),
    };
    let port = match raw.port {
        None => Some(None),
        Some(n) => in_range(n, 0..=u16::MAX, "port", &at.key("port"), p).map(Some),
    };
    let weight = match raw.weight {
        None => Some(DEFAULT_WEIGHT),
        Some(n) => in_range(n, 0..=MAX_WEIGHT, "weight", &at.key("weight"), p),
    };
    let state = admin_state(raw.state.as_deref(), &at.key("state"), p);
    if let Some(name) = &raw.interface {
        known_interface(name, ifaces, &at.key("interface"), p);
    }
    let mac = match &raw.mac {
        None => Some(None),
        Some(s) => mac(s, &at.key("mac"), p).map(Some),
    };
    let default_name = raw.name.is_none();
    let name = name_or(
        |n| crate::rules::check_name("backend", n),
        raw.name,
        || address.map(|a| a.to_string()),
        &at.key("name"),
        p,
    );
    let id = Identity {
        key: address.zip(port),
        name: name.clone(),
        default_name,
    };
    if !broken.is_empty() {
        return (id, None);
    }
    let check = backend_check(raw.check, &at.key("check"), p);
    let proxy = backend_l7(raw.cookie, raw.maxconn, at, p);
    // Every part is checked (and reported) before any is required.
    let backend = (|| {
        Some(BackendConfig {
            name: name?,
            address: address?,
            port: port?,
            weight: weight?,
            state: state?,
            interface: raw.interface,
            mac: mac?,
            check: check?,
            proxy: proxy?,
        })
    })();
    (id, backend)
}

/// A backend's `state:` in the file; `down` belongs to health checks.
fn admin_state(raw: Option<&str>, at: &YamlPath, p: &mut Problems) -> Option<AdminState> {
    match raw {
        None | Some("up") => Some(AdminState::Up),
        Some("drain") => Some(AdminState::Drain),
        Some("maint") => Some(AdminState::Maint),
        Some("down") => {
            p.error(
                at,
                "state `down` is set by health checks; use `maint` to take a backend out",
            );
            None
        }
        Some(s) => {
            p.error(
                at,
                format!("unknown variant `{s}`, expected one of `up`, `drain`, `maint`"),
            );
            None
        }
    }
}

/// Reports a backend's `interface:` that `interfaces:` does not list.
fn known_interface(name: &str, ifaces: &Interfaces, at: &YamlPath, p: &mut Problems) {
    if !ifaces.complete || ifaces.names.contains_key(name) {
        return;
    }
    let mut known: Vec<&str> = ifaces.names.keys().map(String::as_str).collect();
    known.sort_unstable();
    let known = if known.is_empty() {
        "none are configured".to_owned()
    } else {
        format!("known: {}", known.join(", "))
    };
    p.error(at, format!("unknown interface `{name}` ({known})"));
}
