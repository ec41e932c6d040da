//! The control API's JSON shapes (v1), shared by the agent, its HTTP server
//! and the CLI. Field names are the API's contract: add, never rename.

use std::{collections::BTreeMap, fmt, net::IpAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

pub use lb_common::abi::Counters;
use lb_config::{
    AdminState, HashMode, Protocol, RingSize,
    check::{BackendCheck, CheckConfig},
};

pub use crate::events::{Cause, Event, EventKind};

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

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Runtime => "runtime",
        }
    }
}

/// What the data path does with a backend: the one spelling of backend state
/// for the CLI, the API, metrics and docs. It combines the administrative
/// state ([`AdminState`], set in the file or by an operator) with the
/// operational one (whether the backend can be reached: [`DownReason`]).
/// Nothing operational ever puts a backend back in rotation against the
/// operator: `maint` wins over everything, and `down` over `drain` (a drained
/// backend that cannot be reached has open flows that cannot finish, so they
/// are re-hashed rather than kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendState {
    /// In the ring: new and existing flows.
    Up,
    /// Out of the ring, existing flows continue (HAProxy `drain`, LVS weight 0).
    Drain,
    /// Cannot be reached (see [`DownReason`]): out of the ring, its flows re-hashed.
    Down,
    /// Administratively out (HAProxy `maint`): out of the ring, its flows re-hashed.
    Maint,
}

impl BackendState {
    pub const ALL: [BackendState; 4] = [
        BackendState::Up,
        BackendState::Drain,
        BackendState::Down,
        BackendState::Maint,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            BackendState::Up => "up",
            BackendState::Drain => "drain",
            BackendState::Down => "down",
            BackendState::Maint => "maint",
        }
    }

    /// The state in effect (see the type's rules).
    pub fn of(admin: AdminState, down: Option<&DownReason>) -> BackendState {
        match (admin, down) {
            (AdminState::Maint, _) => BackendState::Maint,
            (_, Some(_)) => BackendState::Down,
            (AdminState::Drain, None) => BackendState::Drain,
            (AdminState::Up, None) => BackendState::Up,
        }
    }
}

impl fmt::Display for BackendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a backend cannot take traffic, whatever its administrative state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DownReason {
    /// Its next hop (interface and MAC) is being looked up.
    Resolving,
    /// No usable next hop: no route on a configured interface, no ARP/NDP answer, ...
    NoNextHop { detail: String },
    /// Its health check fails (`fall` times in a row); the last failure.
    Check {
        check: String,
        failure: CheckFailure,
    },
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::Resolving => f.write_str("resolving its next hop"),
            DownReason::NoNextHop { detail } => write!(f, "no next hop: {detail}"),
            DownReason::Check { check, failure } => write!(f, "{check} check failed: {failure}"),
        }
    }
}

/// Why one health check failed, precisely.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckFailure {
    /// The connection was refused (nothing listens).
    Refused,
    /// No answer within the check's timeout.
    Timeout { after_ms: u64 },
    /// The connection was reset or closed before the check completed.
    Reset,
    /// No route, host or network unreachable, ... (ICMP error, local routing).
    Unreachable { detail: String },
    /// An HTTP status not in the expected set.
    HttpStatus { status: u16 },
    /// The body lacks the expected substring.
    BodyMismatch,
    /// The body's MD5 differs from the expected digest.
    DigestMismatch { got: String },
    /// The TCP reply lacks the expected string.
    ExpectMismatch,
    /// TLS failed (handshake, certificate).
    Tls { detail: String },
    /// The server spoke, but not as the check expects (not HTTP, not MySQL, an error packet, ...).
    Protocol { detail: String },
    /// The script exited with a status other than 0.
    ScriptExit { code: i32 },
    /// The script was ended by a signal (or killed at the timeout: see `Timeout`).
    ScriptSignal { signal: i32 },
    /// Anything else the system said (e.g. too many open files).
    Io { detail: String },
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckFailure::Refused => f.write_str("connection refused"),
            CheckFailure::Timeout { after_ms } => write!(f, "timeout after {after_ms} ms"),
            CheckFailure::Reset => f.write_str("connection reset"),
            CheckFailure::Unreachable { detail } => write!(f, "unreachable: {detail}"),
            CheckFailure::HttpStatus { status } => write!(f, "HTTP {status}"),
            CheckFailure::BodyMismatch => f.write_str("body does not contain the expected string"),
            CheckFailure::DigestMismatch { got } => write!(f, "body digest mismatch (MD5 {got})"),
            CheckFailure::ExpectMismatch => {
                f.write_str("reply does not contain the expected string")
            }
            CheckFailure::Tls { detail } => write!(f, "TLS error: {detail}"),
            CheckFailure::Protocol { detail } => write!(f, "protocol error: {detail}"),
            CheckFailure::ScriptExit { code } => write!(f, "script exited with {code}"),
            CheckFailure::ScriptSignal { signal } => write!(f, "script killed by signal {signal}"),
            CheckFailure::Io { detail } => write!(f, "{detail}"),
        }
    }
}

impl CheckFailure {
    /// The kind, as in the JSON (`refused`, `timeout`, ...): the metrics label.
    pub fn name(&self) -> &'static str {
        match self {
            CheckFailure::Refused => "refused",
            CheckFailure::Timeout { .. } => "timeout",
            CheckFailure::Reset => "reset",
            CheckFailure::Unreachable { .. } => "unreachable",
            CheckFailure::HttpStatus { .. } => "http_status",
            CheckFailure::BodyMismatch => "body_mismatch",
            CheckFailure::DigestMismatch { .. } => "digest_mismatch",
            CheckFailure::ExpectMismatch => "expect_mismatch",
            CheckFailure::Tls { .. } => "tls",
            CheckFailure::Protocol { .. } => "protocol",
            CheckFailure::ScriptExit { .. } => "script_exit",
            CheckFailure::ScriptSignal { .. } => "script_signal",
            CheckFailure::Io { .. } => "io",
        }
    }
}

/// A backend's health check as last seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    /// The check's type (`http`, `tcp`, ...).
    pub check: String,
    /// Whether the check holds the backend up (HAProxy's health >= rise).
    pub healthy: bool,
    /// HAProxy's counter: consecutive results toward the next change, e.g.
    /// 2 of `fall` 3 failures while still healthy.
    pub progress: u32,
    /// What `progress` counts up to (`fall` while healthy, `rise` while not).
    pub threshold: u32,
    /// The last result: `None` before the first check.
    pub last: Option<CheckResult>,
    /// Unix time of the last change of `healthy`.
    pub since: Option<u64>,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// `None`: it passed.
    pub failure: Option<CheckFailure>,
    /// How long it took.
    pub duration_ms: f64,
    /// Unix time in milliseconds.
    pub at_ms: u64,
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
    pub pools: Vec<PoolStatus>,
    pub services: Vec<ServiceStatus>,
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

/// A pool and its backends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PoolStatus {
    pub name: String,
    pub source: Source,
    /// Services using the pool.
    pub services: Vec<String>,
    pub backends: Vec<BackendStatus>,
}

/// A backend of a pool: its settings, where they come from, and its state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackendStatus {
    pub name: String,
    pub address: IpAddr,
    /// As configured; absent: each service's own port.
    pub port: Option<u16>,
    /// Weight in effect.
    pub weight: u32,
    /// Weight from the file (absent for a runtime-added backend).
    pub config_weight: Option<u32>,
    /// Runtime weight override, if any.
    pub weight_override: Option<u32>,
    /// Administrative state in effect (file, or runtime override).
    pub admin: AdminState,
    pub config_state: Option<AdminState>,
    pub state_override: Option<AdminState>,
    /// What the data path does with it.
    pub state: BackendState,
    /// Why it cannot take traffic, if it cannot.
    pub down_reason: Option<DownReason>,
    /// Unix time of its last change of `state` seen by this agent.
    pub since: Option<u64>,
    pub source: Source,
    /// Interface and MAC of the DR next hop, when resolved.
    pub next_hop: Option<NextHopInfo>,
    /// Its health check, when its pool has one and it takes part.
    pub check: Option<CheckStatus>,
    /// Summed over the services using the pool.
    pub counters: Counters,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NextHopInfo {
    pub ifindex: u32,
    pub mac: String,
}

/// A service, its ring and its traffic per backend.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub hash: HashMode,
    /// As configured: `auto` or a size.
    pub ring_size: RingSizeSetting,
    /// Slots of the ring in the data path.
    pub ring_slots: u32,
    pub pool: String,
    pub source: Source,
    pub counters: Counters,
    /// The pool's backends as this service sees them: state and traffic.
    pub backends: Vec<ServiceBackend>,
}

/// `ring_size` as configured, for the API: `"auto"` or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingSizeSetting {
    Fixed(u32),
    Auto,
}

impl Serialize for RingSizeSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RingSizeSetting::Auto => s.serialize_str("auto"),
            RingSizeSetting::Fixed(m) => s.serialize_u32(*m),
        }
    }
}

impl<'de> Deserialize<'de> for RingSizeSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RingSizeSetting;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`auto` or a prime ring size")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RingSizeSetting, E> {
                u32::try_from(v)
                    .map(RingSizeSetting::Fixed)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RingSizeSetting, E> {
                match v {
                    "auto" => Ok(RingSizeSetting::Auto),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl From<RingSize> for RingSizeSetting {
    fn from(r: RingSize) -> Self {
        match r {
            RingSize::Auto => RingSizeSetting::Auto,
            RingSize::Fixed(m) => RingSizeSetting::Fixed(m),
        }
    }
}

impl From<RingSizeSetting> for RingSize {
    fn from(r: RingSizeSetting) -> Self {
        match r {
            RingSizeSetting::Auto => RingSize::Auto,
            RingSizeSetting::Fixed(m) => RingSize::Fixed(m),
        }
    }
}

impl fmt::Display for RingSizeSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        RingSize::from(*self).fmt(f)
    }
}

/// One backend of a service's pool, for that service.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceBackend {
    pub name: String,
    pub state: BackendState,
    pub weight: u32,
    pub counters: Counters,
}

/// `GET /v1/stats`: counters and rates (ipvsadm `--stats` / `--rate`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stats {
    /// Seconds the rates are computed over.
    pub interval_secs: f64,
    pub services: Vec<ServiceStats>,
    /// Data-path packets per verdict reason (`tx`, `pass_not_vip`, ...).
    pub reasons: BTreeMap<String, u64>,
    /// Health checks per pool, since the agent started.
    #[serde(default)]
    pub checks: Vec<PoolCheckStats>,
}

/// A pool's health checks: how long they took, and why they failed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolCheckStats {
    pub pool: String,
    /// (upper bound in seconds, checks that took at most that and more than
    /// the bound before), the last bound infinite (`null` in JSON).
    pub duration_buckets: Vec<(Option<f64>, u64)>,
    pub duration_sum_secs: f64,
    /// Failures by kind (`refused`, `timeout`, `http_status`, ...).
    pub failures: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceStats {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub pool: String,
    pub counters: Counters,
    pub rates: Rates,
    pub backends: Vec<BackendStats>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackendStats {
    pub name: String,
    pub address: IpAddr,
    pub state: BackendState,
    pub weight: u32,
    pub counters: Counters,
    pub rates: Rates,
}

/// `POST /v1/services`: a service added at runtime. Unset fields take the
/// file's defaults; the pool must exist.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddService {
    pub name: Option<String>,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Option<Protocol>,
    pub hash: Option<HashMode>,
    pub ring_size: Option<RingSizeSetting>,
    pub pool: String,
}

/// `POST /v1/pools`: a pool added at runtime, with its first backends.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddPool {
    pub name: String,
    #[serde(default)]
    pub backends: Vec<AddBackend>,
    /// Its health check, every field given (as `GET /v1/config` shows one).
    #[serde(default)]
    pub check: Option<CheckConfig>,
}

/// `POST /v1/pools/{pool}/backends`: a backend added at runtime.
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
    /// Its own check settings (off, or another port or address).
    #[serde(default)]
    pub check: Option<BackendCheck>,
}

/// `PUT /v1/pools/{pool}/backends/{backend}/state`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetState {
    pub state: AdminState,
}

/// `PUT /v1/pools/{pool}/backends/{backend}/weight`.
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
    /// Services added, removed or changed by the new file (a pool's change
    /// changes every service using it).
    pub changed_services: Vec<String>,
    pub warnings: Vec<String>,
}

/// `GET /v1/pools/{pool}/backends/{backend}/flows`: flows pinned to a
/// backend, over every service using its pool. In DR mode the LB sees only
/// client→server packets, so "active" is idle-based: a flow counts until the
/// client sent FIN or RST, or nothing for `idle_timeout_secs`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlowCount {
    pub pool: String,
    pub backend: String,
    pub active: u64,
    /// FIN or RST seen from the client.
    pub closing: u64,
    /// No packet for `idle_timeout_secs`.
    pub idle: u64,
    pub idle_timeout_secs: u64,
}

/// `GET /v1/explain?service=...&client=IP[:PORT]`: where a client lands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Explain {
    pub service: String,
    pub client: String,
    pub hash: HashMode,
    /// The Maglev slot the shared flow hash picks.
    pub slot: u32,
    pub ring_slots: u32,
    /// The backend in that slot (`null` when the ring is empty).
    pub backend: Option<String>,
    pub backend_address: Option<IpAddr>,
    /// With a port: the backend an existing flow of exactly this tuple is
    /// pinned to, if the flow table has one (it wins over the ring).
    pub flow_backend: Option<String>,
}
