//! From an instance's configuration to its running task: the interface and
//! our source address looked up, the socket opened, the addresses (and the
//! virtual MAC) prepared. An interface that is missing or has no address
//! yet is retried every second; the instance shows FAULT meanwhile.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lb_api::vrrp::{VrrpInstanceStatus, VrrpState, VrrpTransition};
use lb_config::vrrp::{VrrpConfig, VrrpInstance};
use lb_dataplane::rx::Vmacs;
use tokio::sync::watch;
use tokio::time::Instant;

use super::addresses::{Addresses, Vip, link_local};
use super::group::Group;
use super::instance::Instance;
use super::io::{GROUP_V4, GROUP_V6, VrrpSocket};
use super::machine::{Machine, Params};
use super::netlink::{self, Owned};
use super::notify::Notifier;
use super::status;
use super::supervisor::Watchdog;
use super::track::Facts;
use super::validate::Expect;
use super::vmac::{self, Held};
use crate::events::EventBus;

/// What every instance shares.
pub struct Context {
    pub all: Arc<VrrpConfig>,
    pub events: EventBus,
    pub group: Option<Group>,
    pub watchdog: Option<Arc<Watchdog>>,
    pub script_timeout: Duration,
    /// The data path's virtual-MAC record, when a data path is loaded.
    pub vmacs: Option<Arc<Vmacs>>,
}

/// The instance's row on the status board, before it runs.
pub fn register(i: &VrrpInstance, group: Option<&str>) -> usize {
    let advert_ms = i.advert_int.as_millis() as u64;
    let mut row = VrrpInstanceStatus::configured(
        &i.name,
        &i.interface,
        i.vrid,
        i.version.number(),
        i.priority,
        advert_ms,
    );
    row.addresses = i
        .addresses
        .iter()
        .map(|a| format!("{}/{}", a.address, a.prefix))
        .collect();
    row.sync_group = group.map(str::to_owned);
    status::register(row)
}

/// Builds the instance (retrying) and runs it until `stop`.
pub async fn run(
    i: VrrpInstance,
    ctx: Context,
    row: usize,
    facts: watch::Receiver<Facts>,
    mut stop: watch::Receiver<bool>,
) {
    let mut said = String::new();
    let built = loop {
        match build(&i, &ctx, row) {
            Ok(b) => break b,
            Err(e) => {
                let why = format!("cannot start: {e}");
                if why != said {
                    tracing::error!(instance = %i.name, "vrrp {why}; retrying every second");
                    status::update(row, |r| {
                        r.state = VrrpState::Fault;
                        r.last_transition = Some(VrrpTransition {
                            time_ms: 0,
                            from: VrrpState::Init,
                            to: VrrpState::Fault,
                            reason: why.clone(),
                        });
                    });
                    said = why;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    };
    built.run(facts, stop).await;
}

fn build(i: &VrrpInstance, ctx: &Context, row: usize) -> io::Result<Instance> {
    let link = netlink::link(&i.interface)?;
    let vip_set: Vec<IpAddr> = i.addresses.iter().map(|a| a.address).collect();
    let source = match i.source {
        Some(s) => s,
        None => primary(&i.interface, i.is_ipv6(), &vip_set)?,
    };
    let multicast = i.unicast_peers.is_empty();
    let socket = VrrpSocket::open(&i.interface, link.index, source, multicast)?;
    let vips = vips(i, link)?;
    let dsts = if multicast {
        vec![if i.is_ipv6() {
            IpAddr::V6(GROUP_V6)
        } else {
            IpAddr::V4(GROUP_V4)
        }]
    } else {
        i.unicast_peers.clone()
    };
    let params = Params {
        version: i.version.number(),
        advert_int: i.advert_int,
        preempt: i.preempt,
        preempt_delay: i.preempt_delay,
        owner: i.is_owner(),
        start_master: i.initial == lb_config::vrrp::InitialState::Master,
        address: source,
    };
    Ok(Instance {
        machine: Machine::new(params, i.priority),
        expect: expect(i, &ctx.all, source),
        addresses: Addresses::new(vips, ctx.watchdog.clone(), held(i, ctx, link.index)),
        socket,
        dsts,
        ifindex: link.index,
        row,
        events: ctx.events.clone(),
        notifier: Notifier::start(i.name.clone(), ctx.script_timeout),
        group: ctx.group.clone(),
        watchdog: ctx.watchdog.clone(),
        all: ctx.all.clone(),
        cfg: i.clone(),
        epoch: Instant::now(),
        garp_at: None,
        fault: None,
        logged: Vec::new(),
    })
}

/// keepalived's default source: the interface's first IPv4 address (not a
/// VIP), or its IPv6 link-local address.
fn primary(ifname: &str, ipv6: bool, vips: &[IpAddr]) -> io::Result<IpAddr> {
    let found = if ipv6 {
        link_local(ifname)
    } else {
        netlink::addresses(ifname)?
            .into_iter()
            .find(|a| a.is_ipv4() && !vips.contains(a))
    };
    found.ok_or_else(|| {
        let fam = if ipv6 { "IPv6 link-local" } else { "IPv4" };
        io::Error::other(format!(
            "{ifname} has no {fam} address to send adverts from; add one or set mcast_src_ip"
        ))
    })
}

/// With `use_vmac`, the data path's record of holding the virtual MAC.
fn held(i: &VrrpInstance, ctx: &Context, parent: u32) -> Option<Held> {
    let map = ctx.vmacs.clone().filter(|_| i.use_vmac)?;
    Some(Held {
        map,
        parent,
        vrid: i.vrid,
        ipv6: i.is_ipv6(),
    })
}

/// Where each address goes: its `dev`, the virtual MAC's macvlan, or the interface.
fn vips(i: &VrrpInstance, base: netlink::Link) -> io::Result<Vec<Vip>> {
    let vmac = if i.use_vmac {
        Some((
            vmac::name(i.vrid, i.is_ipv6()),
            vmac::ensure(base.index, i.vrid, i.is_ipv6())?,
        ))
    } else {
        None
    };
    i.addresses
        .iter()
        .map(|a| {
            let (ifname, link) = match (&a.dev, &vmac) {
                (Some(dev), _) => (dev.clone(), netlink::link(dev)?),
                (None, Some((name, l))) => (name.clone(), *l),
                (None, None) => (i.interface.clone(), base),
            };
            let owned = Owned {
                ifindex: link.index,
                address: a.address,
                prefix: a.prefix,
                label: a.label.clone(),
            };
            Ok(Vip {
                owned,
                ifname,
                mac: link.mac,
            })
        })
        .collect()
}

fn expect(i: &VrrpInstance, all: &VrrpConfig, source: IpAddr) -> Expect {
    let siblings = all
        .instances
        .iter()
        .filter(|o| o.name != i.name && o.interface == i.interface && o.is_ipv6() == i.is_ipv6())
        .map(|o| o.vrid)
        .collect();
    Expect {
        version: i.version.number(),
        vrid: i.vrid,
        siblings,
        interval: match i.version.number() {
            2 => i.advert_int.as_secs() as u16,
            _ => (i.advert_int.as_millis() / 10) as u16,
        },
        password: i.auth_pass.as_deref().map(super::codec::password),
        addresses: i.addresses.iter().map(|a| a.address).collect(),
        own: vec![source],
        peers: i.peers.clone(),
        unicast: !i.unicast_peers.is_empty(),
    }
}
