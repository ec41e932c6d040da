//! File + overrides → the configuration in effect, where each VIP, backend and
//! value comes from, and the overrides that apply to nothing right now.

use std::net::{IpAddr, SocketAddr};

use super::Overrides;
use super::spec::endpoint;
use lb_api::types::{ApiError, Source};
use lb_config::{AdminState, BackendConfig, Config, Protocol, VipConfig, VipKey};

/// Appended to every orphan: what happens to it.
const KEPT: &str = "kept, inactive; it applies again if the target returns";

/// How many names a "not found" error lists before eliding the rest.
const LISTED_NAMES: usize = 8;

/// The configuration in effect, and where each part comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Effective {
    /// The file with the runtime changes applied: file VIPs in file order
    /// (each with its file backends, then those added at runtime), then the
    /// VIPs added at runtime in the order added.
    pub config: Config,
    /// One entry per `config.vips`, in the same order.
    pub provenance: Vec<VipProvenance>,
    orphans: Vec<String>,
    shadowed: Vec<String>,
}

/// Where a VIP in effect comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipProvenance {
    pub source: Source,
    /// One entry per backend of the VIP, in the same order.
    pub backends: Vec<BackendProvenance>,
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
/// [`Effective::orphans`]. The result is not checked here ([`super::check`]).
pub fn effective(file: &Config, ov: &Overrides) -> Effective {
    let mut out = Effective {
        config: Config {
            agent: file.agent.clone(),
            interfaces: file.interfaces.clone(),
            vips: Vec::new(),
        },
        provenance: Vec::new(),
        orphans: Vec::new(),
        shadowed: Vec::new(),
    };
    let runtime: Vec<VipConfig> = ov.added_vips.iter().map(VipConfig::from).collect();
    for fv in &file.vips {
        if ov.removed_vips.contains(&fv.name) {
            continue;
        }
        if let Some(rv) = runtime.iter().find(|rv| same_vip(rv, fv)) {
            out.shadowed.push(format!(
                "VIP `{}` of the configuration file is hidden by VIP `{}` added at runtime \
                 (same {}); remove the runtime VIP to use the file's",
                fv.name,
                rv.name,
                if rv.name == fv.name {
                    "name"
                } else {
                    "address, port and protocol"
                },
            ));
            continue;
        }
        let removed = ov.removed_backends.get(&fv.name);
        let added: Vec<BackendConfig> = ov
            .added_backends
            .get(&fv.name)
            .into_iter()
            .flatten()
            .map(BackendConfig::from)
            .collect();
        let mut vip = VipConfig {
            backends: Vec::new(),
            ..fv.clone()
        };
        let mut prov = VipProvenance {
            source: Source::Config,
            backends: Vec::new(),
        };
        for fb in &fv.backends {
            if removed.is_some_and(|r| r.contains(&fb.name)) {
                continue;
            }
            if let Some(rb) = added.iter().find(|rb| same_backend(fv.port, rb, fb)) {
                out.shadowed.push(format!(
                    "backend `{}` of VIP `{}` in the configuration file is hidden by backend `{}` \
                     added at runtime (same {}); remove the runtime backend to use the file's",
                    fb.name,
                    fv.name,
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
            vip.backends.push(fb.clone());
        }
        for rb in added {
            prov.backends
                .push(BackendProvenance::new(Source::Runtime, &rb));
            vip.backends.push(rb);
        }
        out.config.vips.push(vip);
        out.provenance.push(prov);
    }
    for rv in runtime {
        out.provenance.push(VipProvenance {
            source: Source::Runtime,
            backends: rv
                .backends
                .iter()
                .map(|b| BackendProvenance::new(Source::Runtime, b))
                .collect(),
        });
        out.config.vips.push(rv);
    }
    out.apply_backend_overrides(ov);
    out.find_orphans(file, ov);
    out
}

/// Whether two VIPs would clash: same name or same (address, port, protocol).
pub(super) fn same_vip(a: &VipConfig, b: &VipConfig) -> bool {
    a.name == b.name || a.key() == b.key()
}

/// Whether two backends of a VIP would clash: same name or same endpoint.
pub(super) fn same_backend(vip_port: u16, a: &BackendConfig, b: &BackendConfig) -> bool {
    a.name == b.name || endpoint(vip_port, a) == endpoint(vip_port, b)
}

impl Effective {
    /// Runtime changes that apply to nothing in effect (their target left the
    /// file, or was removed or hidden), in words; each is kept and applies
    /// again if its target returns.
    pub fn orphans(&self) -> &[String] {
        &self.orphans
    }

    /// File entries hidden by an entry added at runtime with the same name or
    /// address (the file gained what had been added at runtime), in words.
    pub fn shadowed(&self) -> &[String] {
        &self.shadowed
    }

    /// Index in `config.vips` of the VIP named `name_or_key`, by name or as
    /// `address:port/protocol` (`[2001:db8::1]:443/tcp`); 404 otherwise.
    pub fn find_vip(&self, name_or_key: &str) -> Result<usize, ApiError> {
        let vips = &self.config.vips;
        if let Some(i) = vips.iter().position(|v| v.name == name_or_key) {
            return Ok(i);
        }
        if let Some(key) = parse_vip_key(name_or_key)
            && let Some(i) = vips.iter().position(|v| v.key() == key)
        {
            return Ok(i);
        }
        Err(ApiError::not_found(format!(
            "no VIP `{name_or_key}` in effect (name it by name or as address:port/protocol; {})",
            listing("VIPs", vips.iter().map(|v| v.name.as_str())),
        )))
    }

    /// Indices (in `config.vips`, in its `backends`) of the backend
    /// `name_or_address` of the VIP `vip` (see [`Self::find_vip`]); 404 when
    /// either is unknown.
    pub fn find_backend(
        &self,
        vip: &str,
        name_or_address: &str,
    ) -> Result<(usize, usize), ApiError> {
        let i = self.find_vip(vip)?;
        let v = &self.config.vips[i];
        if let Some(j) = v.backends.iter().position(|b| b.name == name_or_address) {
            return Ok((i, j));
        }
        if let Ok(ip) = name_or_address.parse::<IpAddr>() {
            let mut at = v
                .backends
                .iter()
                .enumerate()
                .filter(|(_, b)| b.address == ip);
            match (at.next(), at.next()) {
                (Some((j, _)), None) => return Ok((i, j)),
                (Some(_), Some(_)) => {
                    return Err(ApiError::bad_request(format!(
                        "several backends of VIP `{}` have address {ip}; name one by its name",
                        v.name
                    )));
                }
                _ => {}
            }
        }
        Err(ApiError::not_found(format!(
            "VIP `{}` has no backend `{name_or_address}` in effect (name it by name or address; {})",
            v.name,
            listing("backends", v.backends.iter().map(|b| b.name.as_str())),
        )))
    }

    fn apply_backend_overrides(&mut self, ov: &Overrides) {
        for (vip, prov) in self.config.vips.iter_mut().zip(&mut self.provenance) {
            let Some(per_backend) = ov.backend_overrides.get(&vip.name) else {
                continue;
            };
            for (b, p) in vip.backends.iter_mut().zip(&mut prov.backends) {
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
    }

    fn find_orphans(&mut self, file: &Config, ov: &Overrides) {
        let in_file = |name: &str| file.vips.iter().find(|v| v.name == name);
        // Changes to a file VIP's backend list apply only while that VIP is in
        // effect as the file's.
        let file_vip_in_effect = |name: &str| {
            self.config
                .vips
                .iter()
                .zip(&self.provenance)
                .any(|(v, p)| v.name == name && p.source == Source::Config)
        };
        let vip_gone = |name: &str| match in_file(name) {
            None => format!("VIP `{name}` is not in the configuration file"),
            Some(_) => format!("VIP `{name}` of the configuration file is not in effect"),
        };
        let mut orphans = Vec::new();
        for name in &ov.removed_vips {
            if in_file(name).is_none() {
                orphans.push(format!(
                    "removal of VIP `{name}`: it is not in the configuration file"
                ));
            }
        }
        for (vip, names) in &ov.removed_backends {
            let fv = in_file(vip).filter(|_| file_vip_in_effect(vip));
            for b in names {
                let why = match fv {
                    Some(fv) if fv.backends.iter().any(|fb| fb.name == *b) => continue,
                    Some(_) => "the configuration file has no such backend".to_owned(),
                    None => vip_gone(vip),
                };
                orphans.push(format!("removal of backend `{b}` of VIP `{vip}`: {why}"));
            }
        }
        for (vip, added) in &ov.added_backends {
            if !file_vip_in_effect(vip) {
                let why = vip_gone(vip);
                for b in added {
                    orphans.push(format!(
                        "backend `{}` added at runtime to VIP `{vip}`: {why}",
                        b.name
                    ));
                }
            }
        }
        for (vip, per_backend) in &ov.backend_overrides {
            let v = self.config.vips.iter().find(|v| v.name == *vip);
            for (b, o) in per_backend {
                let why = match v {
                    Some(v) if v.backends.iter().any(|x| x.name == *b) => continue,
                    Some(_) => format!("VIP `{vip}` has no backend `{b}` in effect"),
                    None => format!("no VIP `{vip}` is in effect"),
                };
                let what = match (o.state, o.weight) {
                    (Some(s), Some(w)) => format!("state {s} and weight {w}"),
                    (Some(s), None) => format!("state {s}"),
                    (None, Some(w)) => format!("weight {w}"),
                    (None, None) => continue,
                };
                orphans.push(format!(
                    "{what} set at runtime for backend `{b}` of VIP `{vip}`: {why}"
                ));
            }
        }
        self.orphans = orphans
            .into_iter()
            .map(|o| format!("{o} ({KEPT})"))
            .collect();
    }
}

/// Reads a [`VipKey`]'s display form, `address:port/protocol`.
fn parse_vip_key(text: &str) -> Option<VipKey> {
    let (addr, proto) = text.rsplit_once('/')?;
    let addr: SocketAddr = addr.parse().ok()?;
    let protocol = Protocol::ALL
        .iter()
        .copied()
        .find(|p| p.as_str() == proto)?;
    Some(VipKey {
        address: addr.ip(),
        port: addr.port(),
        protocol,
    })
}

/// `VIPs in effect: a, b, …` for error messages, or `no VIPs are in effect`.
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
