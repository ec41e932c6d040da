//! `GET /v1/vrrp`: every VRRP instance as the agent runs it (`lb-ctl vrrp
//! status`), and the states VRRP events name.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Where an instance stands (keepalived's INIT, BACKUP, MASTER, FAULT, STOP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VrrpState {
    Init,
    Backup,
    Master,
    Fault,
    Stopped,
}

impl VrrpState {
    pub const ALL: [VrrpState; 5] = [
        VrrpState::Init,
        VrrpState::Backup,
        VrrpState::Master,
        VrrpState::Fault,
        VrrpState::Stopped,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            VrrpState::Init => "init",
            VrrpState::Backup => "backup",
            VrrpState::Master => "master",
            VrrpState::Fault => "fault",
            VrrpState::Stopped => "stopped",
        }
    }

    /// keepalived's word for it, as notify scripts get it.
    pub const fn keepalived(self) -> &'static str {
        match self {
            VrrpState::Init => "INIT",
            VrrpState::Backup => "BACKUP",
            VrrpState::Master => "MASTER",
            VrrpState::Fault => "FAULT",
            VrrpState::Stopped => "STOP",
        }
    }
}

impl fmt::Display for VrrpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of `GET /v1/vrrp`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrpStatus {
    pub instances: Vec<VrrpInstanceStatus>,
}

/// One instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VrrpInstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub state: VrrpState,
    /// As configured.
    pub priority: u8,
    /// After tracking (what adverts carry).
    pub effective_priority: u8,
    /// The master's address: ours while master, the one we listen to while backup.
    pub master: Option<IpAddr>,
    pub master_priority: Option<u8>,
    pub advert_int_ms: u64,
    /// The interval learned from the master (v3), else ours.
    pub master_advert_int_ms: u64,
    pub addresses: Vec<String>,
    pub last_transition: Option<VrrpTransition>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// Packets refused (or, for the address list, noted), by reason.
    pub errors: BTreeMap<String, u64>,
    pub tracking: Vec<TrackStatus>,
    pub sync_group: Option<String>,
}

impl VrrpInstanceStatus {
    /// An instance as configured, before it ran: `init`, nothing counted.
    pub fn configured(
        name: &str,
        interface: &str,
        vrid: u8,
        version: u8,
        priority: u8,
        advert_int_ms: u64,
    ) -> Self {
        VrrpInstanceStatus {
            name: name.into(),
            interface: interface.into(),
            vrid,
            version,
            state: VrrpState::Init,
            priority,
            effective_priority: priority,
            master: None,
            master_priority: None,
            advert_int_ms,
            master_advert_int_ms: advert_int_ms,
            addresses: vec![],
            last_transition: None,
            adverts_sent: 0,
            adverts_received: 0,
            errors: BTreeMap::new(),
            tracking: vec![],
            sync_group: None,
        }
    }
}

/// The last change of state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpTransition {
    /// Unix time in milliseconds.
    pub time_ms: u64,
    pub from: VrrpState,
    pub to: VrrpState,
    pub reason: String,
}

/// A tracked script, interface or pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackStatus {
    /// `script`, `interface` or `pool`.
    pub kind: String,
    pub name: String,
    pub weight: i32,
    /// `None` until known (a script that has not run yet).
    pub ok: Option<bool>,
}
