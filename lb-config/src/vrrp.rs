//! VRRP as configured (`vrrp:`): keepalived's `vrrp_instance`,
//! `vrrp_script` and `vrrp_sync_group`, with the same key names, so a
//! keepalived.conf translates line by line (docs/vrrp.md). The protocol is
//! VRRPv2 (RFC 3768) or VRRPv3 (RFC 5798); keepalived's default, v2, is
//! the default here too, so lb and an unchanged keepalived peer agree.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::Serialize;

/// keepalived's `vrrp_version` default.
pub const DEFAULT_VERSION: VrrpVersion = VrrpVersion::V2;
/// keepalived's `priority` default.
pub const DEFAULT_PRIORITY: u8 = 100;
/// The address owner's priority (RFC 5798 §5.2.4): always master, at once.
pub const OWNER_PRIORITY: u8 = 255;
/// keepalived's `advert_int` default.
pub const DEFAULT_ADVERT_INT: Duration = Duration::from_secs(1);
/// VRRPv3's advert interval field: 12 bits of centiseconds.
pub const V3_ADVERT_RANGE_CS: RangeInclusive<u32> = 1..=4095;
/// VRRPv2's advert interval field: whole seconds in 8 bits.
pub const V2_ADVERT_RANGE_S: RangeInclusive<u32> = 1..=255;
/// keepalived's `garp_master_delay` default.
pub const DEFAULT_GARP_DELAY: Duration = Duration::from_secs(5);
/// keepalived's `garp_master_repeat` default.
pub const DEFAULT_GARP_REPEAT: u32 = 5;
/// Accepted `garp_master_repeat`.
pub const GARP_REPEAT_RANGE: RangeInclusive<u32> = 1..=255;
/// A track script's or interface's `weight`, as keepalived bounds it.
pub const WEIGHT_RANGE: RangeInclusive<i32> = -253..=253;
/// keepalived's `vrrp_script` `interval` default.
pub const DEFAULT_SCRIPT_INTERVAL: Duration = Duration::from_secs(1);
/// Accepted `rise` and `fall` of a track script.
pub const SCRIPT_THRESHOLD_RANGE: RangeInclusive<u32> = 1..=100;
/// Bytes of a VRRPv2 simple-text password (RFC 2338 §5.3.7).
pub const PASSWORD_LEN: usize = 8;

/// The `vrrp:` section: nothing configured when absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VrrpConfig {
    /// `vrrp_instance`s, in file order; names unique.
    pub instances: Vec<VrrpInstance>,
    /// `vrrp_script`s by name, in file order.
    pub track_scripts: Vec<TrackScript>,
    /// `vrrp_sync_group`s: instances that change state together.
    pub sync_groups: Vec<SyncGroup>,
}

impl VrrpConfig {
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    pub fn script(&self, name: &str) -> Option<&TrackScript> {
        self.track_scripts.iter().find(|s| s.name == name)
    }

    /// The sync group `instance` belongs to.
    pub fn group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.instances.iter().any(|i| i == instance))
    }
}

/// One `vrrp_instance`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VrrpInstance {
    /// The key under `instances:` (keepalived `vrrp_instance VI_1`).
    pub name: String,
    /// Where adverts go and the addresses are added (unless one names its own `dev`).
    pub interface: String,
    /// `virtual_router_id`, 1..=255; unique per interface and family.
    pub vrid: u8,
    pub version: VrrpVersion,
    /// 1..=255; 255 is the address owner.
    pub priority: u8,
    /// Whole seconds for v2, centiseconds for v3.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub advert_int: Duration,
    /// keepalived's `state` hint. As keepalived 2.2.7 behaves (measured): it
    /// makes the owner (255) master at once; any other instance starts as
    /// backup and waits the whole Master_Down_Interval either way.
    pub initial: InitialState,
    /// `virtual_ipaddress`, all of one family (the instance's).
    pub addresses: Vec<VirtualAddress>,
    /// Source of our adverts (`mcast_src_ip` / `unicast_src_ip`); default the
    /// interface's primary address (IPv6: its link-local address).
    pub source: Option<IpAddr>,
    /// `unicast_peer`: adverts go to each instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    /// Adverts are obeyed only from these sources (`peers`, default the
    /// unicast peers); empty: from anyone on the segment, as keepalived.
    pub peers: Vec<IpAddr>,
    /// Preempt a lower-priority master (`nopreempt` turns it off).
    pub preempt: bool,
    /// Wait this long after start before preempting (`preempt_delay`).
    #[serde(serialize_with = "crate::duration::serialize")]
    pub preempt_delay: Duration,
    /// VRRPv2 `auth_type PASS` password, at most [`PASSWORD_LEN`] bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_pass: Option<String>,
    pub garp: GarpConfig,
    /// Own the addresses on a macvlan with the virtual MAC 00-00-5E-00-01-VRID.
    pub use_vmac: bool,
    pub track_scripts: Vec<TrackScriptRef>,
    pub track_interfaces: Vec<TrackInterface>,
    /// lb's own health: pools this instance serves (`track_pool`).
    pub track_pools: Vec<TrackPool>,
    pub notify: InstanceNotify,
    /// Transitions are mailed (needs `notify.email` and `vrrp` in `notify.events`).
    pub smtp_alert: bool,
}

impl VrrpInstance {
    pub fn is_ipv6(&self) -> bool {
        self.addresses.first().is_some_and(|a| a.address.is_ipv6())
    }

    pub fn is_owner(&self) -> bool {
        self.priority == OWNER_PRIORITY
    }
}

/// VRRP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum VrrpVersion {
    /// RFC 3768: IPv4, whole-second adverts, optional `PASS` authentication.
    V2,
    /// RFC 5798: IPv4 and IPv6, centisecond adverts, pseudo-header checksum.
    V3,
}

impl VrrpVersion {
    pub const fn number(self) -> u8 {
        match self {
            VrrpVersion::V2 => 2,
            VrrpVersion::V3 => 3,
        }
    }
}

/// keepalived's `state MASTER|BACKUP`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitialState {
    Master,
    Backup,
}

/// One `virtual_ipaddress` line: `ADDR[/PREFIX] [dev IF] [label LABEL]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VirtualAddress {
    pub address: IpAddr,
    /// Default /32 (IPv4) or /128 (IPv6), as keepalived.
    pub prefix: u8,
    /// Default the instance's interface.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// IPv4 only (`eth0:1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Gratuitous ARP / unsolicited NA on becoming master (keepalived `garp_master_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GarpConfig {
    /// A second round this long after becoming master; 0: none.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub delay: Duration,
    /// Messages per address per round.
    pub repeat: u32,
    /// Repeat a round this often while master; 0: never.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub refresh: Duration,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            delay: DEFAULT_GARP_DELAY,
            repeat: DEFAULT_GARP_REPEAT,
            refresh: Duration::ZERO,
        }
    }
}

/// A `vrrp_script`: run every `interval`; its exit status moves priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackScript {
    pub name: String,
    /// Program and arguments (keepalived splits its `script` line into words).
    pub command: Vec<String>,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub interval: Duration,
    /// A run taking longer fails. Default `interval`.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub timeout: Duration,
    /// > 0: added while it succeeds; < 0: subtracted while it fails; 0: failure is FAULT.
    pub weight: i32,
    /// Successes in a row that make it pass.
    pub rise: u32,
    /// Failures in a row that make it fail.
    pub fall: u32,
}

/// An instance's `track_script` entry, optionally overriding the weight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackScriptRef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// A `track_interface` entry: link down is FAULT (weight 0) or moves priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackInterface {
    pub name: String,
    pub weight: i32,
}

/// A pool this instance serves: no healthy backend is FAULT (weight 0) or
/// subtracts `-weight`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackPool {
    pub pool: String,
    pub weight: i32,
}

/// Scripts run on a transition: the per-state ones as written (keepalived),
/// `notify` with `INSTANCE NAME STATE PRIORITY` appended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InstanceNotify {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<Vec<String>>,
}

/// A `vrrp_sync_group`: when one member leaves master, all do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncGroup {
    pub name: String,
    pub instances: Vec<String>,
}
