//! lb's data path seen from userspace: the only code that loads lb's XDP programs and writes its maps.
//!
//! [`Dataplane::open`] loads the embedded object. With a pin directory it
//! first takes the directory's writer lock (one writer at a time), then
//! reuses whatever maps are pinned there (a restarted agent adopts the
//! running data path: flows, rings and counters survive) and pins what it
//! creates; [`Dataplane::attach`] either creates an XDP link and pins it, or
//! atomically swaps the new program into the pinned link. Nothing here
//! detaches on drop: the data path keeps forwarding until [`teardown`]
//! removes the pins.
//!
//! Every change packets can see mid-way is a flip (a buffer written, then
//! one word stored with release), and a retired buffer is reused only after
//! a grace period ([`grace`]); docs/datapath.md describes both, and the
//! capabilities loading needs.

mod bpffs;
mod flows;
mod grace;
mod lock;
mod mapped;
pub mod plan;
mod privs;
mod rings;
pub mod rx;
mod shared;
mod sys;
mod vips;

pub use bpffs::{BpffsError, ensure_bpffs};

use flows::FlowTable;
use grace::Grace;
/// Who holds a pin directory's writer lock (`lb-ctl doctor` names a second writer).
pub use lock::{Holder, holder_of};
use lock::{LockError, PinLock};
use rings::Rings;
use shared::{Backends, ConfigMap};
use vips::VipTable;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs, io,
    os::fd::{AsFd as _, OwnedFd},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, DevMapHash, HashMap, MapData, MapError, PerCpuArray},
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
        MAP_REASONS, MAP_RING_WORDS, MAP_RINGS, MAP_RX_MACS, MAP_TX_PORTS, MAP_VIP_ADDRS,
        MAP_VIP_FILTER, MAP_VIP_STATS, MAP_VIP_TABLE, MAP_VMACS, MAX_BACKENDS, MAX_VIPS, PROG_LB,
        PROG_PASS, PROG_TX, Reason, state,
    },
};

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
    #[error("ring of VIP id {vip}: {source}")]
    Ring {
        vip: u32,
        #[source]
        source: io::Error,
    },
    #[error(
        "{dir} is held by another lb data-path writer, {holder}: stop it first, or make the \
         change through it (a running agent takes `lb-ctl` commands)"
    )]
    Locked { dir: PathBuf, holder: String },
    #[error(
        "loading lb's data path needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON; this process \
         lacks {missing} ({why})"
    )]
    Capabilities { missing: String, why: String },
    #[error(
        "lb's XDP program uses BPF load-acquire and store-release, which need Linux 6.15 or \
         later; this kernel is {release}"
    )]
    KernelTooOld {
        release: String,
        #[source]
        source: ProgramError,
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
    /// The barrier thread every buffer reuse waits on (normally not at all).
    grace: Grace,
    config: ConfigMap,
    vips: VipTable,
    vip_addrs: HashMap<MapData, Addr, u32>,
    /// What `vip_addrs` holds, so a change costs one update.
    addr_counts: BTreeMap<Addr, u32>,
    vip_filter: Array<MapData, u64>,
    /// What `vip_filter` holds, and how many addresses set each bit.
    filter_words: Vec<u64>,
    filter_refs: BTreeMap<u32, u32>,
    rings: Rings,
    backends: Backends,
    flows_v4: FlowTable<FlowSlotV4>,
    flows_v6: FlowTable<FlowSlotV6>,
    /// Backend ids that may have flows in the tables (set when an id gets a
    /// backend, cleared by a purge); `None` until the first scan.
    flow_backends: Option<Vec<bool>>,
    vip_stats: PerCpuArray<MapData, Counters>,
    backend_stats: PerCpuArray<MapData, Counters>,
    reasons: PerCpuArray<MapData, u64>,
    tx_ports: DevMapHash<MapData>,
    rx_macs: rx::RxMacs,
    /// The pin directory's writer lock, released last.
    _lock: Option<PinLock>,
}

impl Dataplane {
    /// Loads the object, reusing and pinning maps under `opts.pin_dir`.
    pub fn open(opts: &Options) -> Result<Self> {
        check_capabilities()?;
        let lock = opts.pin_dir.as_deref().map(lock_pin_dir).transpose()?;
        raise_fd_limit();
        let Loaded {
            mut ebpf,
            adopted,
            logger,
        } = load(opts)?;
        let mut take = |name: &'static str| {
            ebpf.take_map(name)
                .ok_or(DataplaneError::MissingMap { name })
        };
        let config = ConfigMap::map(array_fd(&take(MAP_CONFIG)?, MAP_CONFIG)?.as_fd())
            .map_err(io_err("mapping", MAP_CONFIG))?;
        let outer = outer_rings(take(MAP_RINGS)?)?;
        let words = array_fd(&take(MAP_RING_WORDS)?, MAP_RING_WORDS)?;
        let mut rings = Rings::open(
            outer,
            words.as_fd(),
            opts.pin_dir.as_ref().map(|d| d.join("rings")),
        )
        .map_err(io_err("opening the rings of", MAP_RINGS))?;
        let grace = Grace::new(
            rings
                .barrier()
                .map_err(io_err("duplicating fd of", MAP_RINGS))?,
        )
        .map_err(io_err("starting the grace-period thread for", MAP_RINGS))?;
        // A previous run may have flipped moments ago: until a grace period
        // has passed, treat every retired buffer as possibly read.
        let retired = adopted.then(|| grace.ticket());
        if let Some(t) = retired {
            rings.hold_all(t);
        }
        let backends = Backends::map(
            array_fd(&take(MAP_BACKENDS)?, MAP_BACKENDS)?.as_fd(),
            retired,
        )
        .map_err(io_err("mapping", MAP_BACKENDS))?;
        let vips = VipTable::map(
            array_fd(&take(MAP_VIP_TABLE)?, MAP_VIP_TABLE)?.as_fd(),
            config.vip_half(),
            retired,
        )
        .map_err(io_err("mapping", MAP_VIP_TABLE))?;
        let vip_addrs: HashMap<MapData, Addr, u32> = take(MAP_VIP_ADDRS)?
            .try_into()
            .map_err(map_err(MAP_VIP_ADDRS))?;
        let addr_counts = vip_addrs
            .iter()
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map_err(map_err(MAP_VIP_ADDRS))?;
        let vip_filter: Array<MapData, u64> = take(MAP_VIP_FILTER)?
            .try_into()
            .map_err(map_err(MAP_VIP_FILTER))?;
        let filter_words = (0..VIP_FILTER_WORDS)
            .map(|i| vip_filter.get(&i, 0))
            .collect::<Result<Vec<u64>, _>>()
            .map_err(map_err(MAP_VIP_FILTER))?;
        let mut dp = Dataplane {
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
            rx_macs: rx::RxMacs::new(take(MAP_RX_MACS)?).map_err(map_err(MAP_RX_MACS))?,
            ebpf,
            logger,
            pin_dir: opts.pin_dir.clone(),
            adopted,
            grace,
            config,
            vips,
            vip_addrs,
            addr_counts,
            vip_filter,
            filter_words,
            filter_refs: BTreeMap::new(),
            rings,
            backends,
            flow_backends: (!adopted).then(|| vec![false; MAX_BACKENDS as usize]),
            _lock: lock,
        };
        // The data path masks bucket hashes with the table sizes, which are
        // the pinned maps' when adopting (a resize needs a teardown).
        dp.config
            .set_flow_masks(dp.flows_v4.mask(), dp.flows_v6.mask());
        dp.sync_vip_filter()?;
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
        self.attach_program(iface, mode)?;
        let (ifindex, mac) = rx::iface_mac(iface).map_err(|e| {
            DataplaneError::Attach(iface.to_owned(), format!("reading its MAC: {e}"))
        })?;
        self.register_rx_mac(ifindex, mac)
    }

    /// Forwards VIP frames arriving on `ifindex` only when sent to `mac` (or
    /// to a virtual MAC held there; `lb_common::rx`). [`Dataplane::attach`]
    /// does it for the interface attached to.
    pub fn register_rx_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<()> {
        self.rx_macs
            .register(ifindex, mac)
            .map_err(map_err(MAP_RX_MACS))
    }

    /// The MAC registered for `ifindex`, if any.
    pub fn rx_mac(&self, ifindex: u32) -> Option<[u8; 6]> {
        self.rx_macs.get(ifindex)
    }

    /// The virtual-MAC map, for a process that loads the data path without
    /// pins (packet tests); VRRP opens the pinned one ([`rx::Vmacs::open`]).
    pub fn take_vmacs(&mut self) -> Option<rx::Vmacs> {
        let map = self.ebpf.take_map(MAP_VMACS)?;
        rx::Vmacs::from_map(map).ok()
    }

    fn attach_program(&mut self, iface: &str, mode: XdpMode) -> Result<()> {
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
        if let Ok((ifindex, _)) = rx::iface_mac(iface) {
            self.rx_macs.forget(ifindex).map_err(map_err(MAP_RX_MACS))?;
        }
        let path = dir.join("links").join(iface);
        fs::remove_file(&path).map_err(|source| DataplaneError::Io {
            op: "unpinning link",
            path,
            source,
        })
    }

    /// Sets the data path's switches ([`Config::flags`]) and clock
    /// ([`Config::now`]); the flow-table masks and the VIP half are the
    /// data path's own and stay as they are.
    pub fn set_config(&mut self, config: Config) -> Result<()> {
        self.config.set_flags(config.flags);
        self.config.set_now(config.now);
        Ok(())
    }

    pub fn config(&self) -> Result<Config> {
        Ok(self.config.get())
    }

    /// Adds or changes a VIP; packets see it after [`Dataplane::flush_vips`].
    pub fn set_vip(&mut self, key: VipKey, vip: Vip) {
        self.vips.set(key, vip);
    }

    /// Removes a VIP; packets stop seeing it after [`Dataplane::flush_vips`].
    pub fn remove_vip(&mut self, key: &VipKey) {
        self.vips.remove(key);
    }

    /// Publishes VIP changes: the slots that differ are written into the
    /// half packets do not read, then one store of `Config::vip_half`
    /// switches them over.
    pub fn flush_vips(&mut self) -> Result<()> {
        self.vips
            .flush(&self.config, &self.grace)
            .map(drop)
            .map_err(io_err("writing", MAP_VIP_TABLE))
    }

    /// Every VIP the data path has (or will have, before a flush).
    pub fn vips(&self) -> Result<Vec<(VipKey, Vip)>> {
        Ok(self.vips.entries().iter().map(|(k, v)| (*k, *v)).collect())
    }

    /// Records how many VIPs use `addr` (0 removes it) and brings the address
    /// pre-filter up to date: bits are set before a VIP appears and cleared
    /// after it is gone, by the reconciler's ordering of these calls. One map
    /// update, and one more when the address's filter word changes.
    pub fn set_vip_addr(&mut self, addr: Addr, count: u32) -> Result<()> {
        let had = self.addr_counts.contains_key(&addr);
        if count == 0 {
            ignore_missing(self.vip_addrs.remove(&addr)).map_err(map_err(MAP_VIP_ADDRS))?;
            self.addr_counts.remove(&addr);
        } else {
            self.vip_addrs
                .insert(addr, count, 0)
                .map_err(map_err(MAP_VIP_ADDRS))?;
            self.addr_counts.insert(addr, count);
        }
        if had != (count != 0) {
            let (word, mask) = vip_filter_bit(&addr);
            let bit = word * 64 + mask.trailing_zeros();
            let refs = self.filter_refs.entry(bit).or_default();
            if count != 0 {
                *refs += 1;
            } else {
                *refs = refs.saturating_sub(1);
                if *refs == 0 {
                    self.filter_refs.remove(&bit);
                }
            }
            self.write_filter_word(word)?;
        }
        Ok(())
    }

    /// Writes filter word `w` from the reference counts, if it changed.
    fn write_filter_word(&mut self, w: u32) -> Result<()> {
        let want = self
            .filter_refs
            .range(w * 64..(w + 1) * 64)
            .fold(0u64, |acc, (bit, _)| acc | 1u64 << (bit % 64));
        if self.filter_words[w as usize] != want {
            self.vip_filter
                .set(w, want, 0)
                .map_err(map_err(MAP_VIP_FILTER))?;
            self.filter_words[w as usize] = want;
        }
        Ok(())
    }

    /// At open: the filter's reference counts from the addresses, and every
    /// word that disagrees with them rewritten (a crash may have left one).
    fn sync_vip_filter(&mut self) -> Result<()> {
        self.filter_refs.clear();
        for a in self.addr_counts.keys() {
            let (word, mask) = vip_filter_bit(a);
            *self
                .filter_refs
                .entry(word * 64 + mask.trailing_zeros())
                .or_default() += 1;
        }
        for w in 0..VIP_FILTER_WORDS {
            self.write_filter_word(w)?;
        }
        Ok(())
    }

    /// Sets the data path's clock ([`Config::now`]) to the current
    /// `CLOCK_MONOTONIC` second; the agent calls it every second.
    pub fn tick(&mut self) -> Result<u32> {
        let now = monotonic_secs();
        self.config.set_now(now);
        Ok(now)
    }

    /// Every VIP address and how many VIPs use it.
    pub fn vip_addrs(&self) -> Result<Vec<(Addr, u32)>> {
        Ok(self.addr_counts.iter().map(|(a, n)| (*a, *n)).collect())
    }

    /// Makes `slots` VIP `vip_id`'s ring, visible to packets when this
    /// returns: written into the ring packets do not read and flipped in, or
    /// (for a new VIP or a new size) installed in the outer map first.
    pub fn set_ring(&mut self, vip_id: u32, slots: &[BackendId]) -> Result<()> {
        self.stage_ring(vip_id, slots)?;
        self.flush_rings()
    }

    fn stage_ring(&mut self, vip_id: u32, slots: &[BackendId]) -> Result<()> {
        self.rings
            .stage(vip_id, slots, &self.grace)
            .map_err(|source| DataplaneError::Ring {
                vip: vip_id,
                source,
            })
    }

    /// Sends staged ring installs (one batch) and their flips.
    fn flush_rings(&mut self) -> Result<()> {
        self.rings
            .flush(&self.grace)
            .map_err(io_err("installing rings in", MAP_RINGS))
    }

    /// The ring of VIP `vip_id` as the data path sees it (`None`: no ring).
    pub fn ring(&self, vip_id: u32) -> Result<Option<Vec<BackendId>>> {
        self.rings
            .read(vip_id)
            .map_err(|source| DataplaneError::Ring {
                vip: vip_id,
                source,
            })
    }

    /// Drops VIP `vip_id`'s rings (the VIP is gone): its ring word goes to
    /// zero, and the rings are freed in the outer map once no packet uses
    /// them.
    pub fn clear_ring(&mut self, vip_id: u32) -> Result<()> {
        self.rings
            .clear(vip_id, &self.grace)
            .map_err(|source| DataplaneError::Ring {
                vip: vip_id,
                source,
            })?;
        self.flush_rings()
    }

    /// Publishes backend `id`: its inactive copy is written and flipped in.
    pub fn set_backend(&mut self, id: BackendId, backend: Backend) -> Result<()> {
        self.backends
            .set(id, backend, &self.grace)
            .map_err(io_err("writing", MAP_BACKENDS))?;
        if backend.state != state::UNUSED
            && let Some(m) = &mut self.flow_backends
            && let Some(b) = m.get_mut(id as usize)
        {
            *b = true;
        }
        Ok(())
    }

    pub fn backend(&self, id: BackendId) -> Result<Backend> {
        Ok(self.backends.get(id))
    }

    /// Every backend slot in use (state != unused).
    pub fn backends(&self) -> Result<Vec<(BackendId, Backend)>> {
        Ok((0..MAX_BACKENDS)
            .map(|i| (i, self.backends.get(i)))
            .filter(|(_, b)| b.state != state::UNUSED)
            .collect())
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
        let mut out: Vec<FlowEntry> = self
            .flows_v4
            .scan()
            .map(|(k, f)| FlowEntry::v4(&k, f))
            .collect();
        out.extend(self.flows_v6.scan().map(|(k, f)| FlowEntry::v6(&k, f)));
        Ok(out)
    }

    /// Slots holding a flow of one of `backends`, in one pass over both
    /// tables (what `drain --wait` watches; [`Dataplane::read_flow_slot`]
    /// checks one again later).
    pub fn flow_slots_of(&self, backends: &BTreeSet<BackendId>) -> Vec<FlowSlot> {
        let of = |f: &Flow| backends.contains(&f.backend);
        let mut out: Vec<FlowSlot> = self
            .flows_v4
            .matching(of)
            .map(|(index, key)| FlowSlot {
                index,
                key: SlotKey::V4(key),
            })
            .collect();
        out.extend(self.flows_v6.matching(of).map(|(index, key)| FlowSlot {
            index,
            key: SlotKey::V6(key),
        }));
        out
    }

    /// The flow in `slot` now, if the slot still holds the same flow (same
    /// 5-tuple; its backend and flags may have changed).
    pub fn read_flow_slot(&self, slot: &FlowSlot) -> Option<FlowEntry> {
        match slot.key {
            SlotKey::V4(k) => self
                .flows_v4
                .read_key(slot.index, &k)
                .map(|f| FlowEntry::v4(&k, f)),
            SlotKey::V6(k) => self
                .flows_v6
                .read_key(slot.index, &k)
                .map(|f| FlowEntry::v6(&k, f)),
        }
    }

    /// Deletes every flow pinned to one of `backends` (their ids are about to
    /// be reused), in one pass over each table — skipped when none of them
    /// can have flows. Until a grace period after the purge, the ids get no
    /// new entry: a packet that found one of their flows may still run.
    pub fn purge_flows(&mut self, backends: &BTreeSet<BackendId>) -> Result<usize> {
        let may_have = |id: BackendId| {
            self.flow_backends
                .as_ref()
                .is_none_or(|m| m.get(id as usize).copied().unwrap_or(false))
        };
        let need: BTreeSet<BackendId> = backends
            .iter()
            .copied()
            .filter(|&id| may_have(id))
            .collect();
        if need.is_empty() {
            return Ok(0);
        }
        // A packet that read one of these entries before its last change may
        // still run (and insert a flow): wait it out first.
        for &id in &need {
            if let Some(t) = self.backends.ticket(id) {
                self.grace.wait(t).map_err(io_err(
                    "waiting for a grace period before purging",
                    MAP_FLOWS_V4,
                ))?;
            }
        }
        let mut seen = vec![false; MAX_BACKENDS as usize];
        let mut note = |f: &Flow| {
            if let Some(s) = seen.get_mut(f.backend as usize) {
                *s = true;
            }
        };
        let drop = |f: &Flow| need.contains(&f.backend);
        let n = self.flows_v4.purge(drop, &mut note) + self.flows_v6.purge(drop, &mut note);
        // What may have flows now: what the scan saw left, and every id in
        // use (packets may add flows of those at any time).
        for (id, b) in self.backends()? {
            seen[id as usize] = b.state != state::UNUSED;
        }
        for &id in &need {
            seen[id as usize] = false;
        }
        self.flow_backends = Some(seen);
        let t = self.grace.ticket();
        for &id in &need {
            self.backends.hold_until(id, t);
        }
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
        let vips: BTreeMap<VipKey, Vip> = self.vips.entries().clone();
        let backends: BTreeMap<BackendId, Backend> = self.backends()?.into_iter().collect();
        let mut rings = BTreeMap::new();
        for v in vips.values() {
            // A ring this process cannot read (adopted without its pin) gets
            // a digest no ring has, so the next plan rewrites it.
            let digest = match self.rings.read(v.id) {
                Ok(Some(slots)) => reconcile::ring_digest(&slots),
                Ok(None) => continue,
                Err(_) => 0,
            };
            rings.insert(
                v.id,
                RingState {
                    input: None,
                    digest,
                },
            );
        }
        Ok(Actual::from_parts(Actual {
            next_vip_id: vips.values().map(|v| v.id + 1).max().unwrap_or(0) % MAX_VIPS,
            next_backend_id: backends.keys().map(|id| id + 1).max().unwrap_or(0) % MAX_BACKENDS,
            vip_addrs: self.addr_counts.clone(),
            config: self.config()?,
            tx_ports: self.tx_ports()?,
            vips,
            backends,
            rings,
            ..Actual::default()
        }))
    }

    /// A handle that runs program `name` with `BPF_PROG_TEST_RUN` from any
    /// thread, while this `Dataplane` changes the maps (tests, benchmarks).
    pub fn test_runner(&mut self, name: &'static str) -> Result<TestRunner> {
        let prog = xdp_mut(&mut self.ebpf, name)?;
        let fd = prog
            .fd()
            .map_err(|source| DataplaneError::Program { name, source })?
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| DataplaneError::Io {
                op: "duplicating fd of program",
                path: PathBuf::from(name),
                source,
            })?;
        Ok(TestRunner {
            fd,
            out: Vec::new(),
        })
    }

    /// Grace-period barriers the background thread completed so far.
    pub fn grace_periods(&self) -> u64 {
        self.grace.completed()
    }

    /// Updates of the outer ring map made so far (ring creations and frees,
    /// batched): each one waited for a grace period. Ring changes of
    /// existing VIPs make none.
    pub fn outer_map_updates(&self) -> u64 {
        self.rings.batches()
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
        self.flush_rings()?;
        self.flush_vips()
    }

    fn op(&mut self, op: &Op) -> Result<()> {
        // Consecutive ring installs go out in one outer-map batch, and
        // consecutive VIP changes in one table flip; anything after them in
        // the plan sees them published. Freed rings wait for `finish` (or
        // the next batch): nothing depends on them being gone.
        if !matches!(op, Op::SetRing(..)) && self.rings.has_installs() {
            self.flush_rings()?;
        }
        if !matches!(op, Op::SetVip(..) | Op::RemoveVip(..)) {
            self.flush_vips()?;
        }
        match op {
            Op::AddTxPort(i) => self.add_tx_port(*i),
            Op::SetVipAddr(a, n) => self.set_vip_addr(*a, *n),
            // Only the switches: the clock is `tick`'s.
            Op::SetConfig(c) => {
                self.config.set_flags(c.flags);
                Ok(())
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
            Op::SetRing(id, slots) => self.stage_ring(*id, slots),
            Op::SetVip(k, v) => {
                self.set_vip(*k, *v);
                Ok(())
            }
            Op::RemoveVip(k) => {
                self.remove_vip(k);
                Ok(())
            }
            Op::ClearRing(id) => self
                .rings
                .clear(*id, &self.grace)
                .map_err(|source| DataplaneError::Ring { vip: *id, source }),
        }
    }

    fn unsettled_rings(&mut self) -> Vec<u32> {
        self.rings.take_lost()
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowEntry {
    pub src: Addr,
    pub dst: Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub flow: Flow,
}

impl FlowEntry {
    fn v4(k: &FlowKeyV4, flow: Flow) -> Self {
        FlowEntry {
            src: Addr::from_v4_word(k.src),
            dst: Addr::from_v4_word(k.dst),
            sport: u16::from_be(k.sport),
            dport: u16::from_be(k.dport),
            proto: k.proto,
            flow,
        }
    }

    fn v6(k: &FlowKeyV6, flow: Flow) -> Self {
        FlowEntry {
            src: k.src,
            dst: k.dst,
            sport: u16::from_be(k.sport),
            dport: u16::from_be(k.dport),
            proto: k.proto,
            flow,
        }
    }
}

/// Where a flow sat in a flow table when [`Dataplane::flow_slots_of`] saw it,
/// and which flow it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSlot {
    index: u32,
    key: SlotKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotKey {
    V4(FlowKeyV4),
    V6(FlowKeyV6),
}

/// Runs one XDP program with `BPF_PROG_TEST_RUN` from any thread
/// ([`Dataplane::test_runner`]).
pub struct TestRunner {
    fd: OwnedFd,
    out: Vec<u8>,
}

impl TestRunner {
    /// Runs `frame` once: the action, and the frame as the program left it.
    pub fn run(&mut self, frame: &[u8]) -> io::Result<(u32, &[u8])> {
        let action = sys::test_run(self.fd.as_fd(), frame, &mut self.out)?;
        Ok((action, &self.out))
    }
}

/// Slots a flow table gets for a requested size: a power of two, at least
/// one bucket.
fn flow_slots(requested: u32) -> u32 {
    requested.max(lb_common::abi::FLOW_WAYS).next_power_of_two()
}

/// A duplicate of the fd of array map `map`, to `mmap` it.
fn array_fd(map: &aya::maps::Map, name: &'static str) -> Result<OwnedFd> {
    let aya::maps::Map::Array(data) = map else {
        return Err(DataplaneError::Incompatible {
            name,
            detail: "not an array".into(),
        });
    };
    data.fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(io_err("duplicating fd of", name))
}

fn io_err(op: &'static str, name: &'static str) -> impl FnOnce(io::Error) -> DataplaneError {
    move |source| DataplaneError::Io {
        op,
        path: PathBuf::from(name),
        source,
    }
}

/// A program that failed to load: on a kernel older than the data path's
/// instructions, that is the likely reason, and said so.
fn load_error(name: &'static str, source: ProgramError) -> DataplaneError {
    let release = privs::kernel_release();
    if privs::kernel_version(&release).is_some_and(|v| v < privs::MIN_KERNEL) {
        return DataplaneError::KernelTooOld { release, source };
    }
    DataplaneError::Program { name, source }
}

/// `BPF_F_NO_PREALLOC | BPF_F_MMAPABLE | BPF_F_INNER_MAP`.
const LAYOUT_FLAGS: u32 =
    1 | lb_common::consts::BPF_F_MMAPABLE | lb_common::consts::BPF_F_INNER_MAP;

/// Pinned maps that this build's object would not accept (another layout
/// from another version): refused before anything is loaded or changed.
fn check_pins(pins: &[(&'static str, PathBuf)]) -> Result<()> {
    if !pins.iter().any(|(_, p)| p.exists()) {
        return Ok(());
    }
    let obj = aya_obj::Object::parse(OBJECT).map_err(|e| DataplaneError::Incompatible {
        name: "object",
        detail: format!("cannot parse the embedded object: {e}"),
    })?;
    for (name, path) in pins {
        if !path.exists() {
            continue;
        }
        let Some(want) = obj.maps.get(*name) else {
            continue;
        };
        let fd = sys::obj_get(path).map_err(|source| DataplaneError::Io {
            op: "opening pinned map",
            path: path.clone(),
            source,
        })?;
        let have = sys::map_info(fd.as_fd()).map_err(|source| DataplaneError::Io {
            op: "reading pinned map",
            path: path.clone(),
            source,
        })?;
        // The flow tables' size is the loader's choice (kept when adopting).
        let resizable = *name == MAP_FLOWS_V4 || *name == MAP_FLOWS_V6;
        let differs = [
            ("type", have.map_type, want.map_type()),
            ("key size", have.key_size, want.key_size()),
            ("value size", have.value_size, want.value_size()),
            // The flags that shape the map (the kernel adds others, e.g.
            // read-only-for-programs on device maps).
            (
                "flags",
                have.map_flags & LAYOUT_FLAGS,
                want.map_flags() & LAYOUT_FLAGS,
            ),
        ]
        .into_iter()
        .chain((!resizable).then_some(("entries", have.max_entries, want.max_entries())))
        .find(|(_, h, w)| h != w);
        if let Some((what, h, w)) = differs {
            return Err(DataplaneError::Incompatible {
                name,
                detail: format!("{what} {h}, this build uses {w}"),
            });
        }
    }
    Ok(())
}

/// Raises the soft limit of open files to the hard one (rings are created
/// by the hundred before one batch installs them).
fn raise_fd_limit() {
    // SAFETY: plain struct filled by the kernel.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to our struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < lim.rlim_max
    {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above; failure leaves the limit as it was.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
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
    for sub in ["links", "rings", "maps"] {
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

/// Fails naming every capability the loader lacks, and why it needs each.
fn check_capabilities() -> Result<()> {
    let Some(eff) = privs::effective() else {
        return Ok(());
    };
    let missing = privs::missing(eff);
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|c| c.name).collect();
    let why: Vec<String> = missing
        .iter()
        .map(|c| format!("{}: {}", c.name, c.why))
        .collect();
    Err(DataplaneError::Capabilities {
        missing: names.join(", "),
        why: why.join("; "),
    })
}

/// Creates the pin directory and takes its lock: one writer at a time.
fn lock_pin_dir(dir: &Path) -> Result<PinLock> {
    create_dir(dir)?;
    PinLock::take(dir).map_err(|e| match e {
        LockError::Held { dir, holder } => DataplaneError::Locked {
            dir,
            holder: holder.map_or("a process /proc/locks does not name".into(), |h| {
                h.to_string()
            }),
        },
        LockError::Io(source) => DataplaneError::Io {
            op: "locking pin directory",
            path: dir.to_owned(),
            source,
        },
    })
}

fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|source| DataplaneError::Io {
        op: "creating pin directory",
        path: dir.to_owned(),
        source,
    })
}

/// The object loaded, its maps adopted from the pins where they exist.
struct Loaded {
    ebpf: Ebpf,
    /// Whether pinned maps were found (a previous agent's data path).
    adopted: bool,
    logger: Option<EbpfLogger>,
}

/// Loads the XDP object and its programs, reusing pinned maps.
fn load(opts: &Options) -> Result<Loaded> {
    let mut loader = EbpfLoader::new();
    let level = aya_log_level(opts.ebpf_log);
    loader
        .override_global("AYA_LOG_LEVEL", &level, true)
        .map_max_entries(MAP_FLOWS_V4, flow_slots(opts.flow_table_size))
        .map_max_entries(MAP_FLOWS_V6, flow_slots(opts.flow_table_size));
    let pins: Vec<(&'static str, PathBuf)> = match &opts.pin_dir {
        Some(dir) => {
            let dir = dir.join("maps");
            create_dir(&dir)?;
            ALL_MAPS.iter().map(|&n| (n, dir.join(n))).collect()
        }
        None => Vec::new(),
    };
    check_pins(&pins)?;
    let mut adopted = false;
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
            .map_err(|source| load_error(name, source))?;
    }
    Ok(Loaded {
        ebpf,
        adopted,
        logger,
    })
}

/// The outer map of rings, as an owned fd.
fn outer_rings(map: aya::maps::Map) -> Result<OwnedFd> {
    match map {
        aya::maps::Map::ArrayOfMaps(d) => d
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(io_err("duplicating fd of", MAP_RINGS)),
        _ => Err(DataplaneError::Incompatible {
            name: MAP_RINGS,
            detail: "not an array of maps".into(),
        }),
    }
}
