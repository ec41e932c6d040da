//! The control API's JSON shapes (v1), shared by the agent, its HTTP server
//! and the CLI. Field names are the API's contract: add, never rename.

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

use lb_config::{AdminState, HashMode, Protocol};

/// Every error the API returns: `{"error": {"code": 404, "reason": "..."}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{reason} ({code})")]
pub struct ApiError {
    /// The HTTP status: 4xx for the caller's mistakes, 5xx for ours.
    pub code: u16,
    pub reason: String,
}

impl ApiError {
    pub fn bad_request(reason: impl Into<String>) -> Self {
        ApiError {
            code: 400,
            reason: reason.into(),
        }
    }
    pub fn not_found(reason: impl Into<String>) -> Self {
        ApiError {
            code: 404,
            reason: reason.into(),
        }
    }
    pub fn conflict(reason: impl Into<String>) -> Self {
        ApiError {
            code: 409,
            reason: reason.into(),
        }
    }
    /// The request is well formed but the resulting configuration is not valid.
    pub fn invalid(reason: impl Into<String>) -> Self {
        ApiError {
            code: 422,
            reason: reason.into(),
        }
    }
    pub fn internal(reason: impl Into<String>) -> Self {
        ApiError {
            code: 500,
            reason: reason.into(),
        }
    }
}

/// The body of an error response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// Packets, bytes and new flows, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

/// Per-second rates over the last sampling interval (ipvsadm `--rate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub packets_per_sec: f64,
    pub bytes_per_sec: f64,
    pub new_flows_per_sec: f64,
}

/// Where a setting's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The configuration file.
    Config,
    /// A runtime change (CLI/API), persisted in the state file.
    Runtime,
}

/// `GET /v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub config_file: PathBuf,
    pub state_file: PathBuf,
    /// How desired state is composed, in words.
    pub precedence: String,
    pub bpffs: PathBuf,
    /// Whether this agent adopted a data path left pinned by an earlier run.
    pub adopted: bool,
    pub interfaces: Vec<InterfaceStatus>,
    pub reloads: ReloadInfo,
    pub vips: Vec<VipStatus>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub xdp_mode: String,
}

/// Reload history.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReloadInfo {
    pub count: u64,
    pub failures: u64,
    /// `ok` or `error`; absent before the first reload.
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    /// Unix time of the last reload attempt.
    pub last_at: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VipStatus {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub hash: HashMode,
    pub ring_size: u32,
    pub source: Source,
    pub counters: Counters,
    pub backends: Vec<BackendStatus>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackendStatus {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    /// Weight in effect.
    pub weight: u32,
    /// Weight from the file (absent for a runtime-added backend).
    pub config_weight: Option<u32>,
    /// Runtime weight override, if any.
    pub weight_override: Option<u32>,
    /// State in effect in the data path: `up`, `drain`, `down` or `maint`.
    pub state: String,
    pub config_state: Option<AdminState>,
    pub state_override: Option<AdminState>,
    /// Why the backend is `down` when it is (e.g. no ARP answer).
    pub down_reason: Option<String>,
    pub source: Source,
    /// Interface and MAC of the DR next hop, when resolved.
    pub next_hop: Option<NextHopInfo>,
    pub counters: Counters,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NextHopInfo {
    pub ifindex: u32,
    pub mac: String,
}

/// `GET /v1/stats`: counters and rates (ipvsadm `--stats` / `--rate`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stats {
    /// Seconds the rates are computed over.
    pub interval_secs: f64,
    pub vips: Vec<VipStats>,
    /// Data-path packets per verdict reason (`tx`, `pass_not_vip`, ...).
    pub reasons: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VipStats {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub counters: Counters,
    pub rates: Rates,
    pub backends: Vec<BackendStats>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackendStats {
    pub name: String,
    pub address: IpAddr,
    pub state: String,
    pub weight: u32,
    pub counters: Counters,
    pub rates: Rates,
}

/// `POST /v1/vips`: a VIP added at runtime. Unset fields take the file's defaults.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddVip {
    pub name: Option<String>,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Option<Protocol>,
    pub hash: Option<HashMode>,
    pub ring_size: Option<u32>,
    #[serde(default)]
    pub backends: Vec<AddBackend>,
}

/// `POST /v1/vips/{vip}/backends`: a backend added at runtime.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBackend {
    pub name: Option<String>,
    pub address: IpAddr,
    pub port: Option<u16>,
    pub weight: Option<u32>,
    pub state: Option<AdminState>,
    pub interface: Option<String>,
    /// Static next-hop MAC, `02:00:00:00:00:01`.
    pub mac: Option<String>,
}

/// `PUT /v1/vips/{vip}/backends/{backend}/state`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetState {
    pub state: AdminState,
}

/// `PUT /v1/vips/{vip}/backends/{backend}/weight`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetWeight {
    pub weight: u32,
}

/// What a change did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChangeResult {
    /// Whether desired state changed at all (setting a value it already has does not).
    pub changed: bool,
    /// Map writes it took.
    pub map_writes: usize,
    pub warnings: Vec<String>,
}

/// `POST /v1/reload`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReloadResult {
    pub map_writes: usize,
    /// VIPs added, removed or changed by the new file.
    pub changed_vips: Vec<String>,
    pub warnings: Vec<String>,
}

/// `GET /v1/vips/{vip}/backends/{backend}/flows`: flows pinned to a backend.
/// In DR mode the LB sees only client→server packets, so "active" is
/// idle-based: a flow counts until the client sent FIN or RST, or nothing for
/// `idle_timeout_secs`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlowCount {
    pub vip: String,
    pub backend: String,
    pub active: u64,
    /// FIN or RST seen from the client.
    pub closing: u64,
    /// No packet for `idle_timeout_secs`.
    pub idle: u64,
    pub idle_timeout_secs: u64,
}

/// `GET /v1/explain?vip=...&client=IP[:PORT]`: where a client lands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Explain {
    pub vip: String,
    pub client: String,
    pub hash: HashMode,
    /// The Maglev slot the shared flow hash picks.
    pub slot: u32,
    pub ring_size: u32,
    /// The backend in that slot (`null` when the ring is empty).
    pub backend: Option<String>,
    pub backend_address: Option<IpAddr>,
    /// With a port: the backend an existing flow of exactly this tuple is
    /// pinned to, if the flow table has one (it wins over the ring).
    pub flow_backend: Option<String>,
}
