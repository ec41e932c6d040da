//! The validated configuration: typed, defaults applied, every cross-reference
//! checked. Only [`super::parse`] builds one, so holding a [`Config`] means the
//! whole file was valid. Each default is given on its field and in
//! [`DEFAULTS_DOC`] (the annotated reference file, checked by a test to agree).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::check::{BackendCheck, CheckConfig, HealthConfig};
use crate::notify::NotifyConfig;
use crate::proxy::{BackendL7, FrontendConfig, PoolL7, ProxyConfig};
use crate::stats::StatsConfig;
use crate::vrrp::VrrpConfig;

/// Every key, its default and its allowed values, as a commented YAML file that
/// `lb-ctl config defaults` can print. It parses into the defaults (a test checks).
pub const DEFAULTS_DOC: &str = include_str!("reference.yaml");

/// Default of `agent.bpffs`.
pub const DEFAULT_BPFFS: &str = "/sys/fs/bpf/lb";
/// Default of `agent.state_dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lb";
/// Default of `agent.socket`.
pub const DEFAULT_SOCKET: &str = "/run/lb/lb.sock";
/// Default of `agent.metrics_listen`: loopback only, port 8480. Not 9100
/// (node_exporter's, usually on the same host) nor anything else in
/// Prometheus's exporter range 9100–9999, which is fully allocated; not
/// 9188, where the seed's HAProxy serves its stats page, nor 8405, HAProxy's
/// usual Prometheus endpoint, so lb can run beside HAProxy while a site moves over.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8480));
/// Accepted `agent.flow_table_size` (per address family).
pub const FLOW_TABLE_SIZE_RANGE: RangeInclusive<u32> = 1024..=(1 << 26);
/// Default of `agent.flow_idle_timeout`: LVS's TCP established timeout is 15 min,
/// but a flow that idle is no longer worth waiting for when draining.
pub const DEFAULT_FLOW_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Shortest `agent.flow_idle_timeout`: flow timestamps have 1 s granularity
/// (`lb_common::abi::FLOW_ATIME_GRANULARITY_NS`).
pub const MIN_FLOW_IDLE_TIMEOUT: Duration = Duration::from_secs(1);
/// Default backend weight.
pub const DEFAULT_WEIGHT: u32 = 1;
/// Largest backend weight: LVS's range (ipvsadm `-w` takes 0..=65535); HAProxy
/// stops at 256.
pub const MAX_WEIGHT: u32 = u16::MAX as u32;
/// Longest interface name: `IFNAMSIZ` (16) minus the NUL.
pub const MAX_IFNAME_LEN: usize = 15;

/// A whole configuration file (schema v2).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Config {
    /// Agent-wide settings (`agent:`); every key has a default.
    pub agent: AgentConfig,
    /// Interfaces the XDP program attaches to; at least one when there are services.
    pub interfaces: Vec<InterfaceConfig>,
    /// Named groups of backends, in file order. A backend belongs to one
    /// pool; a pool may serve several services (and, later, L7 frontends),
    /// so a server used in several places is drained and checked once.
    pub pools: Vec<PoolConfig>,
    /// L4 virtual services the data path serves, in file order.
    pub services: Vec<ServiceConfig>,
    /// Health-check defaults and limits (`health:`).
    pub health: HealthConfig,
    /// E-mail, webhook and scripts fed by the agent's events (`notify:`).
    pub notify: NotifyConfig,
    /// VRRP instances owning the VIPs (`vrrp:`, keepalived's `vrrp_instance`).
    pub vrrp: VrrpConfig,
    /// The L7 proxy's limits and defaults (`proxy:`).
    pub proxy: ProxyConfig,
    /// L7 frontends (`frontends:`, HAProxy `frontend`), in file order.
    pub frontends: Vec<FrontendConfig>,
    /// The statistics page (`stats:`, HAProxy's `stats` lines).
    pub stats: StatsConfig,
}

impl Config {
    /// The pool named `name`.
    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| p.name == name)
    }
}

/// The `agent:` section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentConfig {
    /// bpffs directory where maps and links are pinned, so the data path
    /// survives an agent restart. Default [`DEFAULT_BPFFS`].
    pub bpffs: PathBuf,
    /// Where runtime overrides (drain, weight changes) are persisted.
    /// Default [`DEFAULT_STATE_DIR`].
    pub state_dir: PathBuf,
    /// Unix socket of the control API (mode 0600). Default [`DEFAULT_SOCKET`].
    pub socket: PathBuf,
    /// Optional TCP address for the control API; requires `api_token_file`.
    /// Default none.
    pub api_listen: Option<SocketAddr>,
    /// File holding the bearer token the TCP API requires. Default none.
    pub api_token_file: Option<PathBuf>,
    /// Address of the Prometheus `/metrics` endpoint; `null` disables it.
    /// Default [`DEFAULT_METRICS_LISTEN`].
    pub metrics_listen: Option<SocketAddr>,
    /// Entries per flow table (IPv4 and IPv6 each), within
    /// [`FLOW_TABLE_SIZE_RANGE`]. Default `lb_common::consts::DEFAULT_FLOW_TABLE_SIZE`.
    pub flow_table_size: u32,
    /// A flow idle this long no longer counts as active (`drain --wait`).
    /// Default [`DEFAULT_FLOW_IDLE_TIMEOUT`]; at least [`MIN_FLOW_IDLE_TIMEOUT`].
    #[serde(serialize_with = "super::duration::serialize")]
    pub flow_idle_timeout: Duration,
    /// Level of the eBPF program's own logging (aya-log); costs cycles per
    /// packet when on. Default [`LogLevel::Off`].
    pub ebpf_log: LogLevel,
    /// The agent's log level; never `off`. Default [`LogLevel::Info`].
    pub log_level: LogLevel,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            bpffs: DEFAULT_BPFFS.into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            socket: DEFAULT_SOCKET.into(),
            api_listen: None,
            api_token_file: None,
            metrics_listen: Some(DEFAULT_METRICS_LISTEN),
            flow_table_size: lb_common::consts::DEFAULT_FLOW_TABLE_SIZE,
            flow_idle_timeout: DEFAULT_FLOW_IDLE_TIMEOUT,
            ebpf_log: LogLevel::Off,
            log_level: LogLevel::Info,
        }
    }
}

/// One entry of `interfaces:`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterfaceConfig {
    /// Kernel interface name: 1..=15 bytes, no `/`, `:` or whitespace, unique.
    pub name: String,
    /// How the program attaches. Default [`XdpMode::Native`].
    pub xdp_mode: XdpMode,
}

/// A named group of backends: one `pools:` entry (HAProxy `backend web`,
/// the real servers of a keepalived `virtual_server`). Serde both ways: the
/// agent persists pools added at runtime in this shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// The key under `pools:`; unique.
    pub name: String,
    /// Backends in file order; names and (address, port) unique in the pool.
    pub backends: Vec<BackendConfig>,
    /// How its backends are checked; none: they are taken as healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckConfig>,
    /// Run when one of its backends comes up (keepalived `notify_up`):
    /// program and arguments, to which the agent appends the backend's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_up: Option<Vec<String>>,
    /// Run when one of its backends leaves `up` (keepalived `notify_down`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_down: Option<Vec<String>>,
    /// How frontends using it balance, persist and retry (HAProxy `backend`
    /// lines); `proxy.defaults` for what the file leaves out.
    #[serde(default, skip_serializing_if = "PoolL7::is_default")]
    pub proxy: PoolL7,
}

impl PoolConfig {
    /// The backend named `name`.
    pub fn backend(&self, name: &str) -> Option<&BackendConfig> {
        self.backends.iter().find(|b| b.name == name)
    }
}

/// An L4 virtual service: one `services:` entry (ipvsadm `-A`, keepalived
/// `virtual_server`): what the XDP data path serves at address:port/protocol.
/// Serde both ways, every field resolved (persisted for services added at runtime).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Unique name used by the CLI and metrics. Default: [`ServiceKey`]'s display,
    /// `<address>:<port>/<protocol>` (`[2001:db8::1]:443/tcp` for IPv6).
    pub name: String,
    /// The virtual address clients connect to.
    pub address: IpAddr,
    /// The port; 0 serves every port of the address.
    pub port: u16,
    /// Default [`Protocol::Tcp`].
    pub protocol: Protocol,
    /// Forwarding method. Default [`Mode::Dr`].
    pub mode: Mode,
    /// What selects the backend of a new flow. Default [`HashMode::Source`].
    pub hash: HashMode,
    /// Maglev lookup table size. Default [`RingSize::Auto`].
    pub ring_size: RingSize,
    /// The pool whose backends serve it.
    pub pool: String,
}

impl ServiceConfig {
    /// What identifies the service in the data path.
    pub fn key(&self) -> ServiceKey {
        ServiceKey {
            address: self.address,
            port: self.port,
            protocol: self.protocol,
        }
    }

    /// Whether the service covers every port of its address (`port: 0`).
    pub fn all_ports(&self) -> bool {
        self.port == 0
    }

    /// The port a backend receives this service's traffic on: its own if
    /// set, else the service's (DR keeps the port).
    pub fn backend_port(&self, b: &BackendConfig) -> u16 {
        b.port.unwrap_or(self.port)
    }

    /// The ring size in effect for a pool of `backends` backends.
    pub fn ring_slots(&self, backends: usize) -> u32 {
        match self.ring_size {
            RingSize::Auto => lb_common::ring_size::auto(backends),
            RingSize::Fixed(m) => m,
        }
    }
}

/// (address, port, protocol): unique across services. The data path's
/// `lb_common::abi::VipKey` is this in wire form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ServiceKey {
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
}

impl ServiceKey {
    /// The data path's form of the key.
    pub fn abi(&self) -> lb_common::abi::VipKey {
        lb_common::abi::VipKey::new(self.address, self.port, self.protocol.number())
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            SocketAddr::new(self.address, self.port),
            self.protocol
        )
    }
}

impl FromStr for ServiceKey {
    type Err = ();

    /// `address:port/protocol`, IPv6 bracketed (`[2001:db8::1]:443/tcp`) or not.
    fn from_str(s: &str) -> Result<Self, ()> {
        let (addr, proto) = s.rsplit_once('/').ok_or(())?;
        let protocol = Protocol::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == proto)
            .ok_or(())?;
        let (address, port) = match addr.parse::<SocketAddr>() {
            Ok(a) => (a.ip(), a.port()),
            Err(_) => {
                let (ip, port) = addr.rsplit_once(':').ok_or(())?;
                (ip.parse().map_err(|_| ())?, port.parse().map_err(|_| ())?)
            }
        };
        Ok(ServiceKey {
            address,
            port,
            protocol,
        })
    }
}

/// A Maglev ring size: chosen from the number of backends, or fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingSize {
    /// The smallest size of `lb_common::ring_size::SIZES` with at least
    /// `lb_common::ring_size::SLOTS_PER_BACKEND` slots per backend (so that
    /// removing one backend moves little more than its own share), capped at
    /// the largest. It depends on the number of backends configured, never
    /// on their state, so every node with the same configuration builds the
    /// same ring and a health flap never resizes it.
    Auto,
    /// A prime of at most `lb_common::consts::MAX_RING_SIZE`.
    Fixed(u32),
}

impl Serialize for RingSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RingSize::Auto => s.serialize_str("auto"),
            RingSize::Fixed(m) => s.serialize_u32(*m),
        }
    }
}

impl<'de> Deserialize<'de> for RingSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RingSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`auto` or a ring size")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RingSize, E> {
                u32::try_from(v)
                    .map(RingSize::Fixed)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RingSize, E> {
                match v {
                    "auto" => Ok(RingSize::Auto),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for RingSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingSize::Auto => f.write_str("auto"),
            RingSize::Fixed(m) => write!(f, "{m}"),
        }
    }
}

/// One real server of a pool (HAProxy `server`, keepalived `real_server`).
/// Serde both ways, every field resolved (persisted for backends added at runtime).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Unique within the pool. Default: the address.
    pub name: String,
    /// Same address family as every service using the pool.
    pub address: IpAddr,
    /// As written; for a DR service it can only be the service's port (or
    /// 0/absent for an all-ports service), since DR rewrites MAC addresses,
    /// never ports. Absent: the port of the service that sends the traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Share of new flows, 0..=[`MAX_WEIGHT`]; 0 takes no new flows but keeps
    /// existing ones (LVS semantics). Default [`DEFAULT_WEIGHT`].
    pub weight: u32,
    /// Administrative state. Default [`AdminState::Up`].
    pub state: AdminState,
    /// Interface the backend is reached through (one of `interfaces`);
    /// default: the interface of the kernel's route to the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Static next-hop MAC; default: looked up in the neighbour table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// Its own check settings (off, or another port or address).
    #[serde(default, skip_serializing_if = "BackendCheck::is_default")]
    pub check: BackendCheck,
    /// Its cookie value and `maxconn` for the L7 proxy.
    #[serde(default, skip_serializing_if = "BackendL7::is_default")]
    pub proxy: BackendL7,
}

impl BackendConfig {
    /// Whether the backend gets a share of the Maglev ring.
    pub fn takes_new_flows(&self) -> bool {
        self.state == AdminState::Up && self.weight > 0
    }
}

/// Defines a unit enum whose YAML spelling, `Display` and serde names agree.
/// Deserialization is by hand so that a wrong type says what is expected
/// (`expected `tcp` or `udp``) rather than naming a serde_yaml internal.
macro_rules! spelled_enum {
    ($(#[$m:meta])* $name:ident, $expecting:literal { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// The spelling used in the file.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::ALL
                            .iter()
                            .copied()
                            .find(|x| x.as_str() == v)
                            .ok_or_else(|| E::unknown_variant(v, &[$($text),+]))
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}
pub(crate) use spelled_enum;

spelled_enum! {
    /// Transport protocol of a VIP.
    Protocol, "`tcp` or `udp`" { Tcp = "tcp", Udp = "udp" }
}

impl Protocol {
    /// IANA protocol number, as in the IP header.
    pub const fn number(self) -> u8 {
        use lb_common::consts::ipproto;
        match self {
            Protocol::Tcp => ipproto::TCP,
            Protocol::Udp => ipproto::UDP,
        }
    }
}

spelled_enum! {
    /// Forwarding method (ipvsadm `-g`/`-i`/`-m`); only direct routing exists yet.
    Mode, "`dr`" {
        /// Direct routing (ipvsadm `-g`, keepalived `lb_kind DR`): rewrite the
        /// destination MAC; backends answer clients directly.
        Dr = "dr",
    }
}

spelled_enum! {
    /// What the Maglev lookup hashes.
    HashMode, "`source` or `source-port`" {
        /// Source address only: a client sticks to a backend across connections
        /// (ipvsadm `-s sh`, keepalived `lb_algo sh`, HAProxy `balance source`).
        Source = "source",
        /// Source address and port: spreads one client's connections
        /// (ipvsadm `-s sh -b sh-port`).
        SourcePort = "source-port",
    }
}

spelled_enum! {
    /// Administrative state of a backend, as set in the file or by the operator.
    AdminState, "`up`, `drain` or `maint`" {
        /// Takes new and existing flows.
        Up = "up",
        /// No new flows; existing ones continue (HAProxy `drain`, LVS weight 0).
        Drain = "drain",
        /// Out entirely; existing flows are re-hashed (HAProxy `disabled`/`maint`).
        Maint = "maint",
    }
}

spelled_enum! {
    /// How the XDP program attaches to an interface.
    XdpMode, "`native` or `generic`" {
        /// In the driver (`XDP_FLAGS_DRV_MODE`): the fast path.
        Native = "native",
        /// In the generic network stack (`XDP_FLAGS_SKB_MODE`): works on any
        /// driver, much slower; an explicit fallback, never chosen silently.
        Generic = "generic",
    }
}

spelled_enum! {
    /// A log level; `off` only makes sense for `ebpf_log`.
    LogLevel, "`off`, `error`, `warn`, `info`, `debug` or `trace`" {
        Off = "off",
        Error = "error",
        Warn = "warn",
        Info = "info",
        Debug = "debug",
        Trace = "trace",
    }
}

impl From<LogLevel> for log::LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// An Ethernet address, written `02:00:00:00:00:01` (`-` separators accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Group (multicast/broadcast) addresses have the I/G bit set (IEEE 802-2014 §8.2).
    pub const fn is_unicast(self) -> bool {
        self.0[0] & 1 == 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for byte in &mut out {
            let p = parts.next().ok_or(())?;
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| ())?;
        }
        match parts.next() {
            None => Ok(MacAddr(out)),
            Some(_) => Err(()),
        }
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|()| de::Error::custom(format!("`{text}` is not a MAC address")))
    }
}
