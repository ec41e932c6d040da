//! One VIP: its address, port, mode and ring, and the checks across VIPs
//! (uniqueness of keys and names, the VIP limit).

use std::net::IpAddr;

use lb_common::consts::{DEFAULT_RING_SIZE, MAX_RING_SIZE, MAX_VIPS};
use lb_common::ring_size::is_prime;

use super::address::address;
use super::backend::backends;
use super::{Identity, Interfaces, Registry, in_range};
use crate::diagnostic::Problems;
use crate::model::*;
use crate::positions::YamlPath;
use crate::raw::{Broken, Each, Int, RawVip};

/// Ring size per backend below which Maglev's spread gets visibly uneven: the
/// Maglev paper (NSDI '16, §3.4) sizes tables at M > 100·N.
const RING_SLOTS_PER_BACKEND: u64 = 100;

pub(super) fn vips(
    raw: Vec<Each<RawVip>>,
    at: &YamlPath,
    ifaces: &Interfaces,
    p: &mut Problems,
) -> Vec<VipConfig> {
    let mut out = Vec::new();
    let mut seen = Registry::new();
    let mut backends_total: u64 = 0;
    for (i, each) in raw.into_iter().enumerate() {
        let at = at.index(i);
        if i == MAX_VIPS as usize {
            p.error(
                &at,
                format!("too many VIPs: the data path holds at most {MAX_VIPS}"),
            );
        }
        let Some((raw, broken)) = each.parse(&at, p) else {
            continue;
        };
        let (id, vip) = vip(raw, &broken, &at, ifaces, &mut backends_total, p);
        seen.check(
            id,
            &at,
            |key| format!("VIP {key} is defined twice"),
            |name| format!("VIP name `{name}` is used twice"),
            p,
        );
        out.extend(vip);
    }
    out
}

/// Everything a backend's checks need to know about its VIP.
pub(super) struct VipContext<'a> {
    pub name: &'a str,
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
}

/// Checks one VIP and its backends. The model is `None` if anything is wrong,
/// including shape errors already reported (`broken`).
fn vip(
    raw: RawVip,
    broken: &Broken,
    at: &YamlPath,
    ifaces: &Interfaces,
    total: &mut u64,
    p: &mut Problems,
) -> (Identity<VipKey>, Option<VipConfig>) {
    let address = match &raw.address {
        None => {
            if !broken.contains("address") {
                p.error(at, "missing required key `address`");
            }
            None
        }
        Some(s) => match address(s, "VIP", &at.key("address"), p) {
            // A link-local address means nothing off its link and needs a
            // scope the data path's key has no room for.
            Some(IpAddr::V6(v6)) if v6.is_unicast_link_local() => {
                p.error(
                    &at.key("address"),
                    format!("VIP address {v6} is link-local; VIPs must be routable"),
                );
                None
            }
            a => a,
        },
    };
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
    let mode = match raw.mode.as_deref() {
        None | Some("dr") => Some(Mode::Dr),
        Some(m @ ("tunnel" | "nat")) => {
            p.error(
                &at.key("mode"),
                format!("mode `{m}` is not supported yet (only `dr`)"),
            );
            None
        }
        Some(m) => {
            p.error(
                &at.key("mode"),
                format!("unknown variant `{m}`, expected `dr`"),
            );
            None
        }
    };
    let ring_size = ring_size(raw.ring_size, &at.key("ring_size"), p);
    // A dropped `protocol` would read as the default: no key then.
    let key = address
        .zip(port)
        .filter(|_| !broken.contains("protocol"))
        .map(|(address, port)| VipKey {
            address,
            port,
            protocol,
        });
    let raw_name_absent = raw.name.is_none();
    let name = match raw.name {
        Some(n) if n.trim().is_empty() => {
            p.error(&at.key("name"), "VIP name is empty");
            None
        }
        Some(n) => Some(n),
        None => key.map(|k| k.to_string()),
    };
    let display = name.clone().unwrap_or_else(|| at.to_string());
    let ctx = VipContext {
        name: &display,
        address,
        port,
    };
    let backends_at = at.key("backends");
    let has_backends_key = raw.backends.is_some();
    let raw_backends = raw.backends.unwrap_or_default();
    let count = raw_backends.len() as u64;
    let backends = backends(raw_backends, &backends_at, &ctx, ifaces, total, p);
    let count_at = if has_backends_key {
        backends_at.clone()
    } else {
        at.clone()
    };
    if count == 0 {
        p.warning_at_key(
            &count_at,
            format!("VIP `{display}` has no backends: its traffic is dropped"),
        );
    } else if backends.len() as u64 == count && !backends.iter().any(BackendConfig::takes_new_flows)
    {
        p.warning_at_key(
            &count_at,
            format!("no backend of VIP `{display}` takes new flows (all drained, in maintenance or weight 0)"),
        );
    }
    if let Some(ring) = ring_size {
        let ring_at = if raw.ring_size.is_some() {
            at.key("ring_size")
        } else {
            count_at
        };
        if u64::from(ring) < count {
            p.error(
                &ring_at,
                format!("ring_size {ring} is smaller than the number of backends ({count})"),
            );
        } else if u64::from(ring) < RING_SLOTS_PER_BACKEND * count {
            p.warning(
                &ring_at,
                format!(
                    "ring_size {ring} is under {RING_SLOTS_PER_BACKEND} slots per backend ({count} backends): \
                     Maglev's spread will be uneven"
                ),
            );
        }
    }
    let id = Identity {
        key,
        name: name.clone(),
        default_name: raw_name_absent,
    };
    if !broken.is_empty() {
        return (id, None);
    }
    let vip = match (name, address, port, mode, ring_size) {
        (Some(name), Some(address), Some(port), Some(mode), Some(ring_size)) => Some(VipConfig {
            name,
            address,
            port,
            protocol,
            mode,
            hash: raw.hash.unwrap_or(HashMode::Source),
            ring_size,
            backends,
        }),
        _ => None,
    };
    (id, vip)
}

fn ring_size(raw: Option<Int>, at: &YamlPath, p: &mut Problems) -> Option<u32> {
    let Some(n) = raw else {
        return Some(DEFAULT_RING_SIZE);
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
    Some(n)
}
