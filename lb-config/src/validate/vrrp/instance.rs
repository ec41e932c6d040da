//! One `vrrp_instance`: keepalived's keys, with the protocol's limits.

use std::net::IpAddr;
use std::time::Duration;

use serde_yaml::Value;

use super::super::{check_ifname, in_range};
use super::raw::{RawAuth, RawInstance, RawTrack, Seconds};
use super::{Context, command, version, vip::vip, weight};
use crate::diagnostic::Problems;
use crate::positions::YamlPath;
use crate::raw::{Broken, deserialize_all};
use crate::vrrp::*;

/// What an instance inherits or may refer to.
pub(super) struct Defaults<'a> {
    pub version: VrrpVersion,
    pub scripts: &'a [TrackScript],
    pub cx: &'a Context<'a>,
}

pub(super) fn instance(
    name: String,
    v: Value,
    at: &YamlPath,
    d: &Defaults,
    p: &mut Problems,
) -> Option<VrrpInstance> {
    let (raw, broken) = deserialize_all::<RawInstance>(v, at, p)?;
    let router = router(&raw, &broken, at, p);
    let version = raw
        .version
        .map_or(Some(d.version), |n| version(n, &at.key("version"), p));
    let initial = initial_state(raw.state.as_deref(), at, p);
    let addresses = addresses(&raw, version, at, p);
    let ipv6 = addresses
        .as_ref()
        .and_then(|a| a.first())
        .map(|a| a.address.is_ipv6());
    let advert_int = advert_int(raw.advert_int, version, at, p);
    let ends = endpoints(&raw, ipv6, at, p);
    let auth_pass = auth(raw.authentication.as_ref(), version, at, p);
    let tracking = tracking(&raw, d, at, p);
    let garp = garp(&raw, at, p);
    let notify = notify(&raw, at, p);
    let smtp_alert = smtp_alert(raw.smtp_alert, d.cx, at, p);
    let (r, ends, tracking) = (router?, ends?, tracking?);
    if !broken.is_empty() {
        // Reported already; defaults in place of what was dropped would mislead.
        return None;
    }
    Some(VrrpInstance {
        name,
        interface: r.interface,
        vrid: r.vrid,
        version: version?,
        priority: r.priority,
        advert_int: advert_int?,
        initial: initial?,
        addresses: addresses?,
        source: ends.source,
        unicast_peers: ends.unicast_peers,
        peers: ends.peers,
        preempt: !raw.nopreempt.unwrap_or(false),
        preempt_delay: raw.preempt_delay.map_or(Duration::ZERO, |s| s.0),
        auth_pass: auth_pass?,
        garp: garp?,
        use_vmac: raw.use_vmac.unwrap_or(false),
        track_scripts: tracking.scripts,
        track_interfaces: tracking.interfaces,
        track_pools: tracking.pools,
        notify: notify?,
        smtp_alert,
    })
}

/// Which virtual router this is, where, and how eager.
struct Router {
    interface: String,
    vrid: u8,
    priority: u8,
}

/// `interface` and `virtual_router_id` (required) and `priority`
/// (keepalived's 100 by default).
fn router(raw: &RawInstance, broken: &Broken, at: &YamlPath, p: &mut Problems) -> Option<Router> {
    // A key that is there but unreadable has its own error already.
    let mut required = |key: &str| {
        if !broken.contains(key) {
            p.error(at, format!("missing required key `{key}`"));
        }
    };
    let interface = raw.interface.clone();
    if interface.is_none() {
        required("interface");
    }
    if raw.virtual_router_id.is_none() {
        required("virtual_router_id");
    }
    if let Some(i) = &interface
        && let Err(why) = check_ifname(i)
    {
        p.error(&at.key("interface"), format!("interface `{i}`: {why}"));
    }
    let vrid = raw.virtual_router_id.and_then(|n| {
        let at = at.key("virtual_router_id");
        in_range(n, 1..=255u8, "virtual_router_id", &at, p)
    });
    let priority = raw.priority.map_or(Some(DEFAULT_PRIORITY), |n| {
        in_range(n, 1..=255u8, "priority", &at.key("priority"), p)
    });
    Some(Router {
        interface: interface?,
        vrid: vrid?,
        priority: priority?,
    })
}

/// keepalived's `state MASTER|BACKUP` (either case).
fn initial_state(raw: Option<&str>, at: &YamlPath, p: &mut Problems) -> Option<InitialState> {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        None | Some("backup") => Some(InitialState::Backup),
        Some("master") => Some(InitialState::Master),
        Some(other) => {
            p.error(
                &at.key("state"),
                format!("state `{other}`: expected `MASTER` or `BACKUP`"),
            );
            None
        }
    }
}

/// The advert interval the version can carry: v2 whole seconds, v3 centiseconds.
fn advert_int(
    raw: Option<Seconds>,
    version: Option<VrrpVersion>,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<Duration> {
    let t = raw.map_or(DEFAULT_ADVERT_INT, |s| s.0);
    let ms = t.as_millis();
    let at = at.key("advert_int");
    match version? {
        VrrpVersion::V2
            if !ms.is_multiple_of(1000) || !V2_ADVERT_RANGE_S.contains(&((ms / 1000) as u32)) =>
        {
            p.error(&at, format!(
                "advert_int {}: VRRPv2 adverts carry whole seconds 1..=255; set `version: 3` for fractions (e.g. 0.1)",
                crate::duration::format_duration(t)
            ));
            None
        }
        VrrpVersion::V3
            if !ms.is_multiple_of(10) || !V3_ADVERT_RANGE_CS.contains(&((ms / 10) as u32)) =>
        {
            p.error(
                &at,
                format!(
                    "advert_int {}: VRRPv3 adverts carry centiseconds, 10ms..=40950ms",
                    crate::duration::format_duration(t)
                ),
            );
            None
        }
        _ => Some(t),
    }
}

/// `virtual_ipaddress`: at least one, all of one family, IPv6 only with v3.
fn addresses(
    raw: &RawInstance,
    version: Option<VrrpVersion>,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<Vec<VirtualAddress>> {
    let Some(lines) = &raw.virtual_ipaddress else {
        p.error(at, "missing required key `virtual_ipaddress`");
        return None;
    };
    let at = at.key("virtual_ipaddress");
    let list: Vec<Option<VirtualAddress>> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| vip(l, &at.index(i), p))
        .collect();
    let list: Vec<VirtualAddress> = list.into_iter().collect::<Option<_>>()?;
    let Some(first) = list.first() else {
        p.error(&at, "virtual_ipaddress lists no address");
        return None;
    };
    let v6 = first.address.is_ipv6();
    if let Some(i) = list.iter().position(|a| a.address.is_ipv6() != v6) {
        p.error(&at.index(i), "all addresses of an instance are of one family (adverts carry one); use a second instance, in a sync group, for the other");
        return None;
    }
    if v6 && version == Some(VrrpVersion::V2) {
        p.error(
            &at.index(0),
            "VRRPv2 is IPv4 only (RFC 3768); set `version: 3` for IPv6",
        );
        return None;
    }
    Some(list)
}

/// Where adverts come from and go, and whom they are obeyed from.
struct Endpoints {
    source: Option<IpAddr>,
    unicast_peers: Vec<IpAddr>,
    peers: Vec<IpAddr>,
}

/// `mcast_src_ip`/`unicast_src_ip`, `unicast_peer`, `peers`: addresses of the instance's family.
fn endpoints(
    raw: &RawInstance,
    ipv6: Option<bool>,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<Endpoints> {
    let one = |text: &str, at: &YamlPath, p: &mut Problems| -> Option<IpAddr> {
        let Ok(ip) = text.parse::<IpAddr>() else {
            p.error(at, format!("`{text}` is not an IPv4 or IPv6 address"));
            return None;
        };
        if ipv6.is_some_and(|v6| v6 != ip.is_ipv6()) {
            p.error(
                at,
                format!("{ip} is not of the instance's family (that of its virtual_ipaddress)"),
            );
            return None;
        }
        Some(ip)
    };
    let list = |raw: &Option<Vec<String>>, key: &str, p: &mut Problems| -> Option<Vec<IpAddr>> {
        let raw = raw.as_deref().unwrap_or_default();
        let out: Vec<Option<IpAddr>> = raw
            .iter()
            .enumerate()
            .map(|(i, t)| one(t, &at.key(key).index(i), p))
            .collect();
        out.into_iter().collect()
    };
    let unicast = list(&raw.unicast_peer, "unicast_peer", p);
    let peers = list(&raw.peers, "peers", p).map(|p| {
        if p.is_empty() {
            unicast.clone().unwrap_or_default()
        } else {
            p
        }
    });
    let mcast = raw
        .mcast_src_ip
        .as_deref()
        .map(|t| one(t, &at.key("mcast_src_ip"), p));
    let ucast = raw
        .unicast_src_ip
        .as_deref()
        .map(|t| one(t, &at.key("unicast_src_ip"), p));
    let source = match (mcast, ucast) {
        (Some(Some(a)), Some(Some(b))) if a != b => {
            p.error(&at.key("unicast_src_ip"), format!("unicast_src_ip {b} differs from mcast_src_ip {a}; both set the one source address"));
            None
        }
        (Some(None), _) | (_, Some(None)) => None,
        (a, b) => Some(a.or(b).flatten()),
    };
    Some(Endpoints {
        source: source?,
        unicast_peers: unicast?,
        peers: peers?,
    })
}

/// `authentication { auth_type PASS auth_pass ... }`: VRRPv2 only.
fn auth(
    raw: Option<&RawAuth>,
    version: Option<VrrpVersion>,
    at: &YamlPath,
    p: &mut Problems,
) -> Option<Option<String>> {
    let Some(raw) = raw else { return Some(None) };
    let at = at.key("authentication");
    if version == Some(VrrpVersion::V3) {
        p.error(
            &at,
            "VRRPv3 has no authentication (RFC 5798 §9 removed it); remove it or set `version: 2`",
        );
        return None;
    }
    match (
        raw.auth_type
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref(),
        &raw.auth_pass,
    ) {
        (Some("PASS"), Some(pass)) if !pass.is_empty() => {
            if pass.len() > PASSWORD_LEN {
                p.warning(
                    &at.key("auth_pass"),
                    format!(
                        "only the first {PASSWORD_LEN} bytes of auth_pass are sent (as keepalived)"
                    ),
                );
            }
            // keepalived cuts at 8 bytes; here at the last character that fits.
            let cut = (0..=PASSWORD_LEN.min(pass.len()))
                .rev()
                .find(|n| pass.is_char_boundary(*n))
                .unwrap_or(0);
            Some(Some(pass[..cut].to_owned()))
        }
        (Some("PASS"), _) => {
            p.error(&at, "auth_type PASS needs a non-empty `auth_pass`");
            None
        }
        (Some("AH"), _) => {
            p.error(
                &at.key("auth_type"),
                "auth_type AH is not supported (deprecated by RFC 3768 §5.3.6.3); use PASS or none",
            );
            None
        }
        _ => {
            p.error(&at.key("auth_type"), "auth_type: expected `PASS`");
            None
        }
    }
}

/// What moves the instance's priority or puts it in FAULT.
struct Tracking {
    scripts: Vec<TrackScriptRef>,
    interfaces: Vec<TrackInterface>,
    pools: Vec<TrackPool>,
}

/// `track_script`, `track_interface`, `track_pool`: names that exist, weights in range.
fn tracking(raw: &RawInstance, d: &Defaults, at: &YamlPath, p: &mut Problems) -> Option<Tracking> {
    let each = |list: &Option<Vec<RawTrack>>,
                key: &str,
                known: &dyn Fn(&str) -> Option<String>,
                p: &mut Problems| {
        let mut out = Vec::new();
        let mut ok = true;
        for (i, t) in list.iter().flatten().enumerate() {
            let t_at = at.key(key).index(i);
            let w = match t.weight() {
                Some(n) => weight(n, &t_at.key("weight"), p),
                None => Some(0),
            };
            if let Some(why) = known(t.name()) {
                p.error(&t_at, why);
                ok = false;
            }
            ok &= w.is_some();
            out.push((t.name().to_owned(), t.weight().and(w), w.unwrap_or(0)));
        }
        ok.then_some(out)
    };
    let script = |n: &str| {
        (!d.scripts.iter().any(|s| s.name == n))
            .then(|| format!("unknown track script `{n}` (define it under `vrrp: track_scripts:`)"))
    };
    let iface = |n: &str| {
        check_ifname(n)
            .err()
            .map(|why| format!("interface `{n}`: {why}"))
    };
    let pool = |n: &str| {
        (d.cx.pools_complete && !d.cx.pools.contains(&n))
            .then(|| format!("unknown pool `{n}` (pools: {})", d.cx.pools.join(", ")))
    };
    let scripts = each(&raw.track_script, "track_script", &script, p);
    let interfaces = each(&raw.track_interface, "track_interface", &iface, p);
    let pools = each(&raw.track_pool, "track_pool", &pool, p);
    Some(Tracking {
        scripts: scripts?
            .into_iter()
            .map(|(name, weight, _)| TrackScriptRef { name, weight })
            .collect(),
        interfaces: interfaces?
            .into_iter()
            .map(|(name, _, weight)| TrackInterface { name, weight })
            .collect(),
        pools: pools?
            .into_iter()
            .map(|(pool, _, weight)| TrackPool { pool, weight })
            .collect(),
    })
}

fn garp(raw: &RawInstance, at: &YamlPath, p: &mut Problems) -> Option<GarpConfig> {
    let d = GarpConfig::default();
    let repeat = match raw.garp_master_repeat {
        Some(n) => in_range(
            n,
            GARP_REPEAT_RANGE,
            "garp_master_repeat",
            &at.key("garp_master_repeat"),
            p,
        )?,
        None => d.repeat,
    };
    Some(GarpConfig {
        delay: raw.garp_master_delay.map_or(d.delay, |s| s.0),
        repeat,
        refresh: raw.garp_master_refresh.map_or(d.refresh, |s| s.0),
    })
}

fn notify(raw: &RawInstance, at: &YamlPath, p: &mut Problems) -> Option<InstanceNotify> {
    let mut ok = true;
    let mut one = |c: &Option<super::raw::Command>, key: &str, p: &mut Problems| {
        let c = c.as_ref()?;
        let out = command(super::raw::Command(c.0.clone()), key, at, p);
        ok &= out.is_some();
        out
    };
    let n = InstanceNotify {
        master: one(&raw.notify_master, "notify_master", p),
        backup: one(&raw.notify_backup, "notify_backup", p),
        fault: one(&raw.notify_fault, "notify_fault", p),
        stop: one(&raw.notify_stop, "notify_stop", p),
        notify: one(&raw.notify, "notify", p),
    };
    ok.then_some(n)
}

/// keepalived's per-instance `smtp_alert`: lb mails the event types
/// `notify.events` lists, through `notify.email`.
fn smtp_alert(raw: Option<bool>, cx: &Context, at: &YamlPath, p: &mut Problems) -> bool {
    let on = raw.unwrap_or(false);
    if on && (cx.notify.email.is_none() || !cx.notify.wants("vrrp")) {
        p.error(
            &at.key("smtp_alert"),
            "smtp_alert mails through `notify:`: set `notify.email` and add `vrrp` to `notify.events`",
        );
    }
    on
}
