//! `cargo xtask bench health`: what checking 10,000 servers costs lb, and
//! how fast it takes dead ones out of the ring (method: docs/benchmarks.md,
//! "bench health"), with HAProxy and keepalived on the same servers.
//!
//! The rig is the DR lab ([`Lab`]): the LB namespace, where the agent
//! attaches XDP to `eth0`, and the client namespace, whose first 100 aliases
//! carry the servers' listeners ([`servers`]). Each run starts lb on fresh
//! pins, waits until every server was checked, measures the agent's CPU and
//! memory over `--duration`, then kills `--kill` servers once per kill method
//! and times each until the data path has it down; then HAProxy and
//! keepalived are measured the same way.

mod blackhole;
mod daemon;
mod datapath;
mod fds;
mod haproxy;
mod keepalived;
mod layout;
mod lb;
mod legacy;
mod logwatch;
mod napi;
mod phase;
mod report;
mod servers;
mod table;
mod usage;

use std::{
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result, ensure};
use lb_config::check::CheckTiming;

use crate::{
    bench_control::{RunDir, config::AgentPaths, load_average, procs, stop},
    lab::{Lab, LabSpec},
    lb::PeerPass,
};
use blackhole::Blackhole;
use layout::Layout;
use phase::{Detection, Rig};
use servers::Servers;

pub use phase::KillMethod;
pub use report::HealthReport;
pub use table::table;

/// Parameters of one benchmark run.
#[derive(Clone, Debug)]
pub struct HealthBenchArgs {
    pub servers: usize,
    pub inter: Duration,
    /// The window over which CPU is measured, per run.
    pub duration: Duration,
    /// Servers killed at once, per kill.
    pub kill: usize,
    pub runs: usize,
    /// Kill methods, in order; the first one gives `detection_ms`.
    pub methods: Vec<KillMethod>,
    /// Measure HAProxy and keepalived too.
    pub compare: bool,
    /// Seeds which servers die (run `r` uses `seed + r`).
    pub seed: u64,
}

/// Milliseconds since the Unix epoch: the clock kills and verdicts share.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What every measurement uses.
pub(crate) struct Context {
    pub layout: Layout,
    /// The check timing lb's configuration gives every server.
    pub timing: CheckTiming,
    pub duration: Duration,
    pub methods: Vec<KillMethod>,
    pub bin: PathBuf,
    pub dir: PathBuf,
    // Dropped in this order: servers and rules before the namespaces.
    servers: Servers,
    blackhole: Blackhole,
    _peer: PeerPass,
    lab: Lab,
}

impl Context {
    pub fn lb_ns(&self) -> &str {
        self.lab.lb().ns.name()
    }

    pub fn rig(&mut self) -> Rig<'_> {
        Rig {
            servers: &mut self.servers,
            blackhole: &self.blackhole,
        }
    }

    /// The longest a kill may take to be seen, with room to spare: the
    /// expected worst case of the slowest method, plus 5 s.
    pub fn patience(&self) -> Duration {
        let t = &self.timing;
        t.inter + (t.fastinter.max(t.timeout) + t.timeout) * t.fall + Duration::from_secs(5)
    }

    pub fn detection_line(&self, label: &str, d: &Detection) -> String {
        let s = phase::Spread::of(&d.delays_ms);
        format!(
            "{label}: {} of {} servers ({}): out after {:.0} ms median, {:.0} max{}",
            d.delays_ms.len(),
            d.died.len(),
            d.method.name(),
            s.median,
            s.max,
            if d.missed > 0 {
                format!("; {} never seen out", d.missed)
            } else {
                String::new()
            }
        )
    }
}

/// lb's timing for every check, from the file the layout generates.
fn timing(layout: &Layout, inter: Duration) -> Result<CheckTiming> {
    let paths = AgentPaths::under(
        std::path::Path::new("/nonexistent"),
        "/sys/fs/bpf/x".into(),
        1,
    );
    let text = layout.lb_yaml(&paths, inter);
    let c = lb_config::parse(&text, "bench-health.yaml")
        .map_err(|d| anyhow::anyhow!("the generated configuration is invalid:\n{d}"))?
        .config;
    let check = c.pools.first().and_then(|p| p.check.as_ref());
    Ok(check.context("the generated pools have no check")?.timing)
}

/// Runs the whole benchmark; `progress` hears about every step.
pub fn health(args: &HealthBenchArgs, progress: &mut dyn FnMut(&str)) -> Result<HealthReport> {
    ensure!(args.runs > 0, "--runs must be positive");
    ensure!(!args.methods.is_empty(), "no kill method");
    let started = std::time::Instant::now();
    let layout = Layout::new(args.servers)?;
    layout.kills(args.kill, args.seed)?;
    let timing = timing(&layout, args.inter)?;
    let bin = procs::lb_ctl()?;
    stop::install();
    progress(&format!(
        "building the rig: {} listeners on {} addresses in the client namespace",
        layout.servers,
        layout::ADDRESSES
    ));
    let lab = Lab::new(LabSpec {
        backends: 1,
        client_aliases: layout::ADDRESSES,
        ipv6: false,
    })?;
    let peer = PeerPass::attach(&lab)?;
    napi::poll_in_threads(&lab)?;
    let servers = Servers::start(&lab.client().ns, &layout)?;
    let blackhole = Blackhole::install(&lab.client().ns)?;
    let root = RunDir(std::env::temp_dir().join(format!("lb-bench-health-{}", std::process::id())));
    std::fs::create_dir_all(&root.0).with_context(|| format!("creating {}", root.0.display()))?;
    let mut cx = Context {
        layout,
        timing,
        duration: args.duration,
        methods: args.methods.clone(),
        bin,
        dir: root.0.clone(),
        servers,
        blackhole,
        _peer: peer,
        lab,
    };
    let mut r = report::Collect::default();
    for run in 1..=args.runs {
        stop::check()?;
        r.load_average.push(load_average());
        let victims = cx.layout.kills(args.kill, args.seed + run as u64)?;
        r.lb.push(lb::measure(&mut cx, run, &victims, progress)?);
        if !args.compare {
            continue;
        }
        let (version, haproxy) = haproxy::measure(&mut cx, run, &victims, progress)?;
        r.haproxy_version = version;
        r.haproxy.push(haproxy);
        if !r.keepalived_refused() {
            r.keepalived
                .push(keepalived::attempt(&mut cx, run, &victims, progress)?);
        }
    }
    ensure!(
        cx.servers.listening() == cx.layout.servers,
        "{} servers listen at the end, not {}",
        cx.servers.listening(),
        cx.layout.servers
    );
    Ok(r.report(args, &cx, started.elapsed()))
}
