//! lb's data path seen from userspace: the only code that loads lb's XDP programs and writes its maps.
//!
//! [`Dataplane::open`] loads the embedded object. With a pin directory it first
//! reuses whatever maps are pinned there (a restarted agent adopts the running
//! data path: flows, rings and counters survive) and pins what it creates;
//! [`Dataplane::attach`] either creates an XDP link and pins it, or atomically
//! swaps the new program into the pinned link. Nothing here detaches on drop:
//! the data path keeps forwarding until [`teardown`] removes the pins.

mod bpffs;
mod flows;
mod mapped;
pub mod plan;
mod ring;
mod vips;

pub use bpffs::{BpffsError, ensure_bpffs};

use flows::FlowTable;
use vips::VipTable;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs, io,
    os::fd::{AsFd as _, OwnedFd},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, ArrayOfMaps, DevMapHash, HashMap, MapData, MapError, PerCpuArray},
    programs::{
        ProgramError, TestRun as _, TestRunOptions, Xdp, links::FdLink, links::PinnedLink,
        xdp::XdpLink,
    },
};
use lb_common::{
    abi::{
        Addr, Backend, BackendId, Config, Counters, Flow, FlowKeyV4, FlowKeyV6, FlowSlotV4,
        FlowSlotV6, VIP_FILTER_WORDS, Vip, VipKey, vip_filter_bit,
    },
    consts::{
        ALL_MAPS, MAP_BACKEND_STATS, MAP_BACKENDS, MAP_CONFIG, MAP_FLOWS_V4, MAP_FLOWS_V6,
        MAP_REASONS, MAP_RINGS, MAP_TX_PORTS, MAP_VIP_ADDRS, MAP_VIP_FILTER, MAP_VIP_STATS,
        MAP_VIP_TABLE, PROG_LB, PROG_PASS, PROG_TX, Reason,
    },
};
use ring::RingMap;
pub use ring::read_slots;

pub use aya::programs::XdpMode;

use crate::plan::{self as reconcile, Actual, Op, RingState};

/// The XDP object, built by `build.rs` from lb-ebpf.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-ebpf"));

/// Errors of the data path, each naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("map {name} is missing from the object")]
    MissingMap { name: &'static str },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "pinned map {name} does not match this build ({detail}); run `lb-ctl teardown` to start over (drops flows)"
    )]
    Incompatible { name: &'static str, detail: String },
    #[error("interface {0}: {1}")]
    Attach(String, String),
    #[error("reading the data path's aya-log events: {0}")]
    Logger(#[source] aya_log::Error),
    #[error("creating a ring of {slots} slots: {source}")]
    Ring {
        slots: usize,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = DataplaneError> = std::result::Result<T, E>;

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> DataplaneError {
    move |source| DataplaneError::Map { name, source }
}

/// How to load the data path.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where maps and links are pinned (`/sys/fs/bpf/lb`); `None` keeps
    /// everything private to this process (packet tests, benchmarks).
    pub pin_dir: Option<PathBuf>,
    /// Entries per flow table (IPv4 and IPv6 each).
    pub flow_table_size: u32,
    /// aya-log level compiled into the loaded program; `Off` costs nothing.
    pub ebpf_log: log::LevelFilter,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pin_dir: None,
            flow_table_size: lb_common::consts::DEFAULT_FLOW_TABLE_SIZE,
            ebpf_log: log::LevelFilter::Off,
        }
    }
}

/// aya-log's level numbering (`aya_log_common::Level`, 1 = error … 5 = trace).
fn aya_log_level(l: log::LevelFilter) -> u8 {
    match l {
        log::LevelFilter::Off => 0,
        log::LevelFilter::Error => 1,
        log::LevelFilter::Warn => 2,
        log::LevelFilter::Info => 3,
        log::LevelFilter::Debug => 4,
        log::LevelFilter::Trace => 5,
    }
}

/// aya-log's reader of the data path's log ring (when `ebpf_log` is on).
pub type EbpfLogger = aya_log::EbpfLogger<&'static dyn log::Log>;

/// The loaded programs and their maps.
pub struct Dataplane {
    ebpf: Ebpf,
    logger: Option<EbpfLogger>,
    pin_dir: Option<PathBuf>,
    /// True when the maps came from pins left by an earlier run.
    adopted: bool,
    vips: VipTable,
    vip_addrs: HashMap<MapData, Addr, u32>,
    rings: ArrayOfMaps<MapData, MapData>,
    /// A second handle on the outer ring map: aya's `ArrayOfMaps` cannot delete.
    rings_fd: OwnedFd,
    backends: Array<MapData, Backend>,
    flows_v4: FlowTable<FlowSlotV4>,
    flows_v6: FlowTable<FlowSlotV6>,
    vip_stats: PerCpuArray<MapData, Counters>,
    backend_stats: PerCpuArray<MapData, Counters>,
    reasons: PerCpuArray<MapData, u64>,
    tx_ports: DevMapHash<MapData>,
    config: Array<MapData, Config>,
    vip_filter: Array<MapData, u64>,
}

impl Dataplane {
    /// Loads the object, reusing and pinning maps under `opts.pin_dir`.
    pub fn open(opts: &Options) -> Result<Self> {
        let mut loader = EbpfLoader::new();
        let level = aya_log_level(opts.ebpf_log);
        loader
            .override_global("AYA_LOG_LEVEL", &level, true)
            .map_max_entries(MAP_FLOWS_V4, flow_slots(opts.flow_table_size))
            .map_max_entries(MAP_FLOWS_V6, flow_slots(opts.flow_table_size));
        let mut adopted = false;
        let map_dir = opts.pin_dir.as_ref().map(|d| d.join("maps"));
        let pins: Vec<(&'static str, PathBuf)> = match &map_dir {
            Some(dir) => {
                fs::create_dir_all(dir).map_err(|source| DataplaneError::Io {
                    op: "creating pin directory",
                    path: dir.clone(),
                    source,
                })?;
                ALL_MAPS.iter().map(|&n| (n, dir.join(n))).collect()
            }
            None => Vec::new(),
        };
        for (name, path) in &pins {
            adopted |= path.exists();
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(OBJECT)?;
        // The log ring exists either way; reading it only matters when on.
        let logger = if level > 0 {
            Some(EbpfLogger::init(&mut ebpf).map_err(DataplaneError::Logger)?)
        } else {
            None
        };
        for name in [PROG_LB, PROG_PASS, PROG_TX] {
            xdp_mut(&mut ebpf, name)?
                .load()
                .map_err(|source| DataplaneError::Program { name, source })?;
        }
        let mut take = |name: &'static str| {
            ebpf.take_map(name)
                .ok_or(DataplaneError::MissingMap { name })
        };
        let config_map: Array<MapData, Config> =
            take(MAP_CONFIG)?.try_into().map_err(map_err(MAP_CONFIG))?;
        let rings = take(MAP_RINGS)?;
        let rings_fd = match &rings {
            aya::maps::Map::ArrayOfMaps(d) => {
                d.fd()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|source| DataplaneError::Io {
                        op: "duplicating fd of",
                        path: PathBuf::from(MAP_RINGS),
                        source,
                    })?
            }
            _ => {
                return Err(DataplaneError::Incompatible {
                    name: MAP_RINGS,
                    detail: "not an array of maps".into(),
                });
            }
        };
        let dp = Dataplane {
            vips: vip_table(take(MAP_VIP_TABLE)?, &config_map)?,
            vip_addrs: take(MAP_VIP_ADDRS)?
                .try_into()
                .map_err(map_err(MAP_VIP_ADDRS))?,
            rings: rings.try_into().map_err(map_err(MAP_RINGS))?,
            rings_fd,
            backends: take(MAP_BACKENDS)?
                .try_into()
                .map_err(map_err(MAP_BACKENDS))?,
            flows_v4: flow_table(take(MAP_FLOWS_V4)?, MAP_FLOWS_V4)?,
            flows_v6: flow_table(take(MAP_FLOWS_V6)?, MAP_FLOWS_V6)?,
            vip_stats: take(MAP_VIP_STATS)?
                .try_into()
                .map_err(map_err(MAP_VIP_STATS))?,
            backend_stats: take(MAP_BACKEND_STATS)?
                .try_into()
                .map_err(map_err(MAP_BACKEND_STATS))?,
            reasons: take(MAP_REASONS)?
                .try_into()
                .map_err(map_err(MAP_REASONS))?,
            tx_ports: take(MAP_TX_PORTS)?
                .try_into()
                .map_err(map_err(MAP_TX_PORTS))?,
            config: config_map,
            vip_filter: take(MAP_VIP_FILTER)?
                .try_into()
                .map_err(map_err(MAP_VIP_FILTER))?,
            ebpf,
            logger,
            pin_dir: opts.pin_dir.clone(),
            adopted,
        };
        // The data path masks bucket hashes with the table sizes, which are
        // the pinned maps' when adopting (a resize needs a teardown).
        let mut dp = dp;
        let mut cfg = dp.config()?;
        cfg.flow_mask_v4 = dp.flows_v4.mask();
        cfg.flow_mask_v6 = dp.flows_v6.mask();
        dp.set_config(cfg)?;
        Ok(dp)
    }

    /// The reader of the data path's aya-log events, if they are on: poll its
    /// fd and call `flush()` to turn them into `log` records.
    pub fn take_logger(&mut self) -> Option<EbpfLogger> {
        self.logger.take()
    }

    /// The flow-table entry of exactly this client→VIP tuple, if any.
    pub fn lookup_flow(
        &self,
        src: std::net::SocketAddr,
        dst: std::net::SocketAddr,
        proto: u8,
    ) -> Result<Option<Flow>> {
        let (sa, da) = (Addr::from_ip(src.ip()), Addr::from_ip(dst.ip()));
        let (sport, dport) = (src.port().to_be(), dst.port().to_be());
        Ok(if src.is_ipv4() {
            self.flows_v4
                .find(&FlowKeyV4::new(sa.0[3], da.0[3], sport, dport, proto))
        } else {
            self.flows_v6
                .find(&FlowKeyV6::new(sa, da, sport, dport, proto))
        })
    }

    /// Whether this run adopted maps pinned by an earlier one.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// Attaches the load balancer to `iface` (in the caller's network
    /// namespace). With a pin directory the link is pinned, and an already
    /// pinned link is atomically switched to this program instead.
    pub fn attach(&mut self, iface: &str, mode: XdpMode) -> Result<()> {
        let link_path = self.pin_dir.as_ref().map(|d| d.join("links").join(iface));
        let prog = xdp_mut(&mut self.ebpf, PROG_LB)?;
        let attach_err = |e: ProgramError| DataplaneError::Attach(iface.to_owned(), e.to_string());
        if let Some(path) = &link_path
            && path.exists()
        {
            let pinned = PinnedLink::from_pin(path)
                .map_err(|e| DataplaneError::Attach(iface.to_owned(), e.to_string()))?;
            let link = XdpLink::try_from(FdLink::from(pinned))
                .map_err(|e| DataplaneError::Attach(iface.to_owned(), e.to_string()))?;
            prog.attach_to_link(link).map_err(attach_err)?;
            return Ok(());
        }
        let id = prog.attach(iface, mode).map_err(attach_err)?;
        if let Some(path) = link_path {
            let link = prog.take_link(id).map_err(attach_err)?;
            let fd_link = FdLink::try_from(link)
                .map_err(|e| DataplaneError::Attach(iface.to_owned(), e.to_string()))?;
            let dir = path.parent().unwrap_or(Path::new("/"));
            fs::create_dir_all(dir).map_err(|source| DataplaneError::Io {
                op: "creating pin directory",
                path: dir.to_owned(),
                source,
            })?;
            fd_link.pin(&path).map_err(|e| {
                DataplaneError::Attach(
                    iface.to_owned(),
                    format!("pinning link at {}: {e}", path.display()),
                )
            })?;
        }
        Ok(())
    }

    /// Attaches the pass-only program to `iface` for as long as this
    /// `Dataplane` lives (the peer of a veth that receives `XDP_TX` frames).
    pub fn attach_pass(&mut self, iface: &str, mode: XdpMode) -> Result<()> {
        let prog = xdp_mut(&mut self.ebpf, PROG_PASS)?;
        prog.attach(iface, mode)
            .map_err(|e| DataplaneError::Attach(iface.to_owned(), e.to_string()))?;
        Ok(())
    }

    /// Like [`Dataplane::attach_pass`], but the link is pinned at `pin` and
    /// outlives this process (until the pin is removed).
    pub fn attach_pass_pinned(&mut self, iface: &str, mode: XdpMode, pin: &Path) -> Result<()> {
        let err = |e: String| DataplaneError::Attach(iface.to_owned(), e);
        let prog = xdp_mut(&mut self.ebpf, PROG_PASS)?;
        let id = prog.attach(iface, mode).map_err(|e| err(e.to_string()))?;
        let link = prog.take_link(id).map_err(|e| err(e.to_string()))?;
        let fd_link = FdLink::try_from(link).map_err(|e| err(e.to_string()))?;
        fd_link
            .pin(pin)
            .map_err(|e| err(format!("pinning at {}: {e}", pin.display())))?;
        Ok(())
    }

    /// Runs one frame through program `name` with `BPF_PROG_TEST_RUN` (repeat
    /// 1): its action, the frame as the program left it, and the kernel's
    /// measured run time.
    pub fn test_run(&mut self, name: &'static str, frame: &[u8]) -> Result<TestRunOutput> {
        let prog = xdp_mut(&mut self.ebpf, name)?;
        let mut out = vec![0u8; frame.len() + 256];
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat: 1,
                ..TestRunOptions::new()
            })
            .map_err(|source| DataplaneError::Program { name, source })?;
        out.truncate(r.data_size_out as usize);
        Ok(TestRunOutput {
            action: r.return_value,
            frame: out,
            duration: r.duration,
        })
    }

    /// The kernel's run statistics of program `name` (`kernel.bpf_stats_enabled`
    /// must be 1 for them to move): total run time and run count.
    pub fn program_stats(&mut self, name: &'static str) -> Result<(std::time::Duration, u64)> {
        let info = xdp_mut(&mut self.ebpf, name)?
            .info()
            .map_err(|source| DataplaneError::Program { name, source })?;
        Ok((info.run_time(), info.run_count()))
    }

    /// Interfaces with a pinned link.
    pub fn attached(&self) -> Vec<String> {
        let Some(dir) = &self.pin_dir else {
            return Vec::new();
        };
        let mut v: Vec<String> = fs::read_dir(dir.join("links"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        v.sort();
        v
    }

    /// Removes the pinned link of `iface` (detaching it).
    pub fn detach(&mut self, iface: &str) -> Result<()> {
        let Some(dir) = &self.pin_dir else {
            return Ok(());
        };
        let path = dir.join("links").join(iface);
        fs::remove_file(&path).map_err(|source| DataplaneError::Io {
            op: "unpinning link",
            path,
            source,
        })
    }

    pub fn set_config(&mut self, config: Config) -> Result<()> {
        self.config.set(0, config, 0).map_err(map_err(MAP_CONFIG))
    }

    pub fn config(&self) -> Result<Config> {
        self.config.get(&0, 0).map_err(map_err(MAP_CONFIG))
    }

    /// Adds or changes a VIP; packets see it after [`Dataplane::flush_vips`].
    pub fn set_vip(&mut self, key: VipKey, vip: Vip) {
        self.vips.set(key, vip);
    }

    /// Removes a VIP; packets stop seeing it after [`Dataplane::flush_vips`].
    pub fn remove_vip(&mut self, key: &VipKey) {
        self.vips.remove(key);
    }

    /// Publishes VIP changes: the new table goes into the half packets do not
    /// read, then one write of `Config::vip_half` switches them over.
    pub fn flush_vips(&mut self) -> Result<()> {
        if !self.vips.is_dirty() {
            return Ok(());
        }
        let half = self.vips.prepare().map_err(|source| DataplaneError::Io {
            op: "writing the VIP table",
            path: PathBuf::from(MAP_VIP_TABLE),
            source,
        })?;
        let mut cfg = self.config()?;
        cfg.vip_half = half;
        self.set_config(cfg)?;
        self.vips.flipped(half);
        Ok(())
    }

    /// Every VIP the data path has (or will have, before a flush).
    pub fn vips(&self) -> Result<Vec<(VipKey, Vip)>> {
        Ok(self.vips.entries().iter().map(|(k, v)| (*k, *v)).collect())
    }

    /// Records how many VIPs use `addr` (0 removes it).
    /// Records how many VIPs use `addr` (0 removes it) and brings the address
    /// pre-filter up to date: bits are set before a VIP appears and cleared
    /// after it is gone, by the reconciler's ordering of these calls.
    pub fn set_vip_addr(&mut self, addr: Addr, count: u32) -> Result<()> {
        if count == 0 {
            ignore_missing(self.vip_addrs.remove(&addr)).map_err(map_err(MAP_VIP_ADDRS))?;
        } else {
            self.vip_addrs
                .insert(addr, count, 0)
                .map_err(map_err(MAP_VIP_ADDRS))?;
        }
        self.sync_vip_filter()
    }

    /// Rewrites the words of the pre-filter that differ from the set of VIP
    /// addresses (several addresses may share a bit, so it is recomputed).
    fn sync_vip_filter(&mut self) -> Result<()> {
        let mut want = vec![0u64; VIP_FILTER_WORDS as usize];
        for (a, _) in self.vip_addrs()? {
            let (w, m) = vip_filter_bit(&a);
            want[w as usize] |= m;
        }
        for (i, w) in want.into_iter().enumerate() {
            let i = i as u32;
            if self
                .vip_filter
                .get(&i, 0)
                .map_err(map_err(MAP_VIP_FILTER))?
                != w
            {
                self.vip_filter
                    .set(i, w, 0)
                    .map_err(map_err(MAP_VIP_FILTER))?;
            }
        }
        Ok(())
    }

    /// Sets the data path's clock ([`Config::now`]) to the current
    /// `CLOCK_MONOTONIC` second; the agent calls it every second.
    pub fn tick(&mut self) -> Result<u32> {
        let now = monotonic_secs();
        let mut c = self.config()?;
        if c.now != now {
            c.now = now;
            self.set_config(c)?;
        }
        Ok(now)
    }

    pub fn vip_addrs(&self) -> Result<Vec<(Addr, u32)>> {
        self.vip_addrs
            .iter()
            .collect::<Result<_, _>>()
            .map_err(map_err(MAP_VIP_ADDRS))
    }

    /// Replaces VIP `vip_id`'s ring with `slots` in one map update.
    pub fn set_ring(&mut self, vip_id: u32, slots: &[BackendId]) -> Result<()> {
        let ring = RingMap::new(slots).map_err(|source| DataplaneError::Ring {
            slots: slots.len(),
            source,
        })?;
        let data = MapData::from_fd(ring.fd).map_err(map_err(MAP_RINGS))?;
        self.rings.set(vip_id, &data, 0).map_err(map_err(MAP_RINGS))
    }

    /// The ring of VIP `vip_id` as the data path sees it (`None`: no ring).
    pub fn ring(&self, vip_id: u32) -> Result<Option<Vec<BackendId>>> {
        let inner = match self.rings.get(&vip_id, 0) {
            Ok(m) => m,
            Err(MapError::KeyNotFound) => return Ok(None),
            Err(e) => return Err(map_err(MAP_RINGS)(e)),
        };
        let info = inner.info().map_err(map_err(MAP_RINGS))?;
        let fd: OwnedFd =
            inner
                .fd()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| DataplaneError::Io {
                    op: "duplicating ring fd",
                    path: PathBuf::from(MAP_RINGS),
                    source,
                })?;
        let slots = read_slots(&fd, info.max_entries() as usize).map_err(|source| {
            DataplaneError::Ring {
                slots: info.max_entries() as usize,
                source,
            }
        })?;
        Ok(Some(slots))
    }

    /// Drops VIP `vip_id`'s ring (the VIP is gone); the kernel frees it once
    /// no packet uses it.
    pub fn clear_ring(&mut self, vip_id: u32) -> Result<()> {
        match ring::delete_slot(&self.rings_fd, vip_id) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            r => r.map_err(|source| DataplaneError::Io {
                op: "clearing ring",
                path: PathBuf::from(MAP_RINGS),
                source,
            }),
        }
    }

    pub fn set_backend(&mut self, id: BackendId, backend: Backend) -> Result<()> {
        self.backends
            .set(id, backend, 0)
            .map_err(map_err(MAP_BACKENDS))
    }

    pub fn backend(&self, id: BackendId) -> Result<Backend> {
        self.backends.get(&id, 0).map_err(map_err(MAP_BACKENDS))
    }

    /// Every backend slot in use (state != unused).
    pub fn backends(&self) -> Result<Vec<(BackendId, Backend)>> {
        let mut out = Vec::new();
        for (i, b) in self.backends.iter().enumerate() {
            let b = b.map_err(map_err(MAP_BACKENDS))?;
            if b.state != lb_common::consts::state::UNUSED {
                out.push((i as BackendId, b));
            }
        }
        Ok(out)
    }

    /// Makes `ifindex` a redirect target (a backend behind another interface).
    pub fn add_tx_port(&mut self, ifindex: u32) -> Result<()> {
        self.tx_ports
            .insert(ifindex, ifindex, None, 0)
            .map_err(|e| DataplaneError::Attach(format!("ifindex {ifindex}"), e.to_string()))
    }

    pub fn vip_counters(&self, vip_id: u32) -> Result<Counters> {
        let v = self
            .vip_stats
            .get(&vip_id, 0)
            .map_err(map_err(MAP_VIP_STATS))?;
        Ok(Counters::sum(v.iter()))
    }

    pub fn backend_counters(&self, id: BackendId) -> Result<Counters> {
        let v = self
            .backend_stats
            .get(&id, 0)
            .map_err(map_err(MAP_BACKEND_STATS))?;
        Ok(Counters::sum(v.iter()))
    }

    /// Packets per [`Reason`], summed over CPUs.
    pub fn reasons(&self) -> Result<BTreeMap<&'static str, u64>> {
        let mut out = BTreeMap::new();
        for r in Reason::ALL {
            let v = self
                .reasons
                .get(&(r as u32), 0)
                .map_err(map_err(MAP_REASONS))?;
            out.insert(r.name(), v.iter().copied().fold(0u64, u64::wrapping_add));
        }
        Ok(out)
    }

    /// Every flow in both tables (IPv4 keys mapped into [`Addr`]).
    pub fn flows(&self) -> Result<Vec<FlowEntry>> {
        let mut out = Vec::new();
        for (k, f) in self.flows_v4.scan() {
            out.push(FlowEntry {
                src: Addr::from_v4_word(k.src),
                dst: Addr::from_v4_word(k.dst),
                sport: u16::from_be(k.sport),
                dport: u16::from_be(k.dport),
                proto: k.proto,
                flow: f,
            });
        }
        for (k, f) in self.flows_v6.scan() {
            out.push(FlowEntry {
                src: k.src,
                dst: k.dst,
                sport: u16::from_be(k.sport),
                dport: u16::from_be(k.dport),
                proto: k.proto,
                flow: f,
            });
        }
        Ok(out)
    }

    /// Deletes every flow pinned to one of `backends` (their ids are about to
    /// be reused), in one pass over each table.
    pub fn purge_flows(&mut self, backends: &BTreeSet<BackendId>) -> Result<usize> {
        if backends.is_empty() {
            return Ok(0);
        }
        let n = self.flows_v4.purge(|f| backends.contains(&f.backend))
            + self.flows_v6.purge(|f| backends.contains(&f.backend));
        Ok(n)
    }

    /// Interfaces in the redirect map.
    pub fn tx_ports(&self) -> Result<BTreeSet<u32>> {
        self.tx_ports
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err(MAP_TX_PORTS))
    }

    /// What the maps hold, for a reconciler that starts (or restarts) here.
    pub fn actual(&self) -> Result<Actual> {
        let vips: BTreeMap<VipKey, Vip> = self.vips()?.into_iter().collect();
        let backends: BTreeMap<BackendId, Backend> = self.backends()?.into_iter().collect();
        let mut rings = BTreeMap::new();
        for v in vips.values() {
            if let Some(slots) = self.ring(v.id)? {
                rings.insert(
                    v.id,
                    RingState {
                        input: None,
                        digest: reconcile::ring_digest(&slots),
                    },
                );
            }
        }
        Ok(Actual::from_parts(Actual {
            next_vip_id: vips.values().map(|v| v.id + 1).max().unwrap_or(0)
                % lb_common::consts::MAX_VIPS,
            next_backend_id: backends.keys().map(|id| id + 1).max().unwrap_or(0)
                % lb_common::consts::MAX_BACKENDS,
            vip_addrs: self.vip_addrs()?.into_iter().collect(),
            config: self.config()?,
            tx_ports: self.tx_ports()?,
            vips,
            backends,
            rings,
            ..Actual::default()
        }))
    }

    fn reset_counters(&mut self, vip: bool, id: u32) -> Result<()> {
        let n = aya::util::nr_cpus().map_err(|(path, source)| DataplaneError::Io {
            op: "counting CPUs",
            path: PathBuf::from(path),
            source,
        })?;
        let values =
            vec![Counters::default(); n]
                .try_into()
                .map_err(|source| DataplaneError::Io {
                    op: "zeroing counters",
                    path: PathBuf::from(MAP_BACKEND_STATS),
                    source,
                })?;
        if vip {
            self.vip_stats
                .set(id, values, 0)
                .map_err(map_err(MAP_VIP_STATS))
        } else {
            self.backend_stats
                .set(id, values, 0)
                .map_err(map_err(MAP_BACKEND_STATS))
        }
    }
}

impl reconcile::Maps for Dataplane {
    type Error = DataplaneError;

    fn finish(&mut self) -> Result<()> {
        self.flush_vips()
    }

    fn op(&mut self, op: &Op) -> Result<()> {
        // Consecutive VIP changes go out in one table flip; anything after
        // them in the plan sees them published (a shrinking ring's smaller
        // size, for one, must be in effect before that ring goes in).
        if !matches!(op, Op::SetVip(..)) {
            self.flush_vips()?;
        }
        match op {
            Op::AddTxPort(i) => self.add_tx_port(*i),
            Op::SetVipAddr(a, n) => self.set_vip_addr(*a, *n),
            // Only the switches: the clock is `tick`'s.
            Op::SetConfig(c) => {
                let mut cur = self.config()?;
                cur.flags = c.flags;
                self.set_config(cur)
            }
            Op::Forget { vips, backends } => {
                self.purge_flows(&backends.iter().copied().collect())?;
                for &id in backends {
                    self.reset_counters(false, id)?;
                }
                for &id in vips {
                    self.reset_counters(true, id)?;
                }
                Ok(())
            }
            Op::SetBackend(id, b) => self.set_backend(*id, *b),
            Op::SetRing(id, slots) => self.set_ring(*id, slots),
            Op::SetVip(k, v) => {
                self.set_vip(*k, *v);
                Ok(())
            }
            Op::RemoveVip(k) => {
                self.remove_vip(k);
                self.flush_vips()
            }
            Op::ClearRing(id) => self.clear_ring(*id),
        }
    }
}

/// `CLOCK_MONOTONIC` in whole seconds: the clock of [`Flow::atime`].
pub fn monotonic_secs() -> u32 {
    // SAFETY: a zeroed timespec is valid; clock_gettime only writes it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u32
}

/// What [`Dataplane::test_run`] saw.
#[derive(Clone, Debug)]
pub struct TestRunOutput {
    pub action: u32,
    pub frame: Vec<u8>,
    pub duration: std::time::Duration,
}

/// One flow-table entry, ports in host order.
#[derive(Clone, Copy, Debug)]
pub struct FlowEntry {
    pub src: Addr,
    pub dst: Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub flow: Flow,
}

/// Slots a flow table gets for a requested size: a power of two, at least
/// one bucket.
fn flow_slots(requested: u32) -> u32 {
    requested.max(lb_common::abi::FLOW_WAYS).next_power_of_two()
}

fn vip_table(map: aya::maps::Map, config: &Array<MapData, Config>) -> Result<VipTable> {
    let aya::maps::Map::Array(data) = map else {
        return Err(DataplaneError::Incompatible {
            name: MAP_VIP_TABLE,
            detail: "not an array".into(),
        });
    };
    let active = config.get(&0, 0).map_err(map_err(MAP_CONFIG))?.vip_half;
    VipTable::map(data.fd().as_fd(), active).map_err(|source| DataplaneError::Io {
        op: "mapping the VIP table",
        path: PathBuf::from(MAP_VIP_TABLE),
        source,
    })
}

fn flow_table<S: flows::Slot>(map: aya::maps::Map, name: &'static str) -> Result<FlowTable<S>> {
    let aya::maps::Map::Array(data) = map else {
        return Err(DataplaneError::Incompatible {
            name,
            detail: "not an array (a flow table from an older lb: `lb-ctl teardown` first)".into(),
        });
    };
    let info = data.info().map_err(map_err(name))?;
    if info.value_size() as usize != size_of::<S>() {
        return Err(DataplaneError::Incompatible {
            name,
            detail: format!(
                "slots of {} bytes, this build uses {}",
                info.value_size(),
                size_of::<S>()
            ),
        });
    }
    FlowTable::map(data.fd().as_fd(), info.max_entries()).map_err(|source| DataplaneError::Io {
        op: "mapping flow table",
        path: PathBuf::from(name),
        source,
    })
}

fn xdp_mut<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Xdp> {
    ebpf.program_mut(name)
        .ok_or(DataplaneError::Program {
            name,
            source: ProgramError::NotLoaded,
        })?
        .try_into()
        .map_err(|source| DataplaneError::Program { name, source })
}

fn ignore_missing(r: Result<(), MapError>) -> Result<(), MapError> {
    match r {
        Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

/// Removes everything pinned under `pin_dir`: links first (detaching the
/// programs), then maps. Missing pieces are fine; the directory is removed.
pub fn teardown(pin_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for sub in ["links", "maps"] {
        let dir = pin_dir.join(sub);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            fs::remove_file(&path).map_err(|source| DataplaneError::Io {
                op: "unpinning",
                path: path.clone(),
                source,
            })?;
            removed.push(path);
        }
        let _ = fs::remove_dir(&dir);
    }
    let _ = fs::remove_dir(pin_dir);
    Ok(removed)
}
