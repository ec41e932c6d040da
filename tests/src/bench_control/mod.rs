//! `cargo xtask bench control`: how the control plane's work grows with the
//! configuration (method: docs/benchmarks.md, "bench control").
//!
//! The rig is the DR lab ([`Lab`]) without traffic: the LB namespace, where
//! `lb-ctl` attaches XDP natively to `eth0`, and the client namespace, whose
//! [`config::NEXT_HOPS`] aliases (10.77.1.1–10.77.1.100, on the LB's /16) are
//! the backends' next hops and answer ARP for real; `lb_pass` sits on the
//! LB's bridge-side peer as in every lab. For each scale the release `lb-ctl`
//! is timed as a process (`apply`, cold and adopting) and the agent through
//! its API on one persistent connection (runtime changes, reloads).

mod apply;
mod changes;
// Shared with `bench_health`: the agent process and its pins, the API
// client, statistics, seeded draws, Ctrl-C.
pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod procs;
pub(crate) mod rng;
pub(crate) mod stats;
pub(crate) mod stop;
mod table;

use std::path::PathBuf;

use anyhow::{Context as _, Result, ensure};
use serde::Serialize;

use crate::{
    lab::{Lab, LabSpec},
    lb::PeerPass,
};

pub use stats::Summary;
pub use table::control_table;

/// Parameters of one benchmark run.
#[derive(Clone, Debug)]
pub struct ControlBenchArgs {
    /// Numbers of services (each with a pool of 4 backends).
    pub scales: Vec<usize>,
    /// Cold apply / adopt repetitions per scale.
    pub runs: usize,
    /// Runtime changes per series.
    pub changes: usize,
    /// Reloads per scale.
    pub reloads: usize,
    /// Seeds the pools, the changes' targets and the reloads'.
    pub seed: u64,
    /// `-v` flags for the agent (its log is kept in the run directory while it runs).
    pub agent_verbosity: u8,
}

/// `target/bench/control.json`.
#[derive(Clone, Debug, Serialize)]
pub struct ControlReport {
    pub scales: Vec<ScaleReport>,
}

/// One scale's figures, in milliseconds. The first six fields are the
/// documented shape; the rest are extras.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleReport {
    pub vips: usize,
    pub backends: usize,
    /// Median wall time of `lb-ctl apply` onto empty pins.
    pub cold_apply_ms: f64,
    /// Median wall time of `lb-ctl apply` onto pins that already match.
    pub adopt_ms: f64,
    /// Drain/up of random backends through the API, write to complete answer.
    pub one_change_ms: Summary,
    /// Median time of `POST /v1/reload` with one weight changed in the file.
    pub reload_one_change_ms: f64,

    pub next_hops: usize,
    pub cold_apply_runs_ms: Vec<f64>,
    pub adopt_runs_ms: Vec<f64>,
    pub cold_apply_map_writes: u64,
    pub adopt_map_writes: u64,
    /// From starting `lb-ctl agent` (empty pins) to its first `status` answer.
    pub agent_start_ms: f64,
    pub changes: usize,
    pub one_change_max_ms: f64,
    /// `map_writes` of the answers to the changes: median and largest.
    pub one_change_map_writes_median: f64,
    pub one_change_map_writes_max: f64,
    /// The same number of changes toggling one backend back to back.
    pub same_backend_back_to_back_ms: Summary,
    pub same_backend_back_to_back_max_ms: f64,
    pub reload_runs_ms: Vec<f64>,
    pub reload_map_writes: Vec<u64>,
    /// The agent's `VmRSS` after the changes, and its peak (`VmHWM`), in MiB.
    pub agent_rss_mib: f64,
    pub agent_rss_peak_mib: f64,
    /// Times the agent closed the idle keep-alive connection (0 expected).
    pub reconnects: usize,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the scale started: how busy
    /// the machine was (a grace period lasts longer on a busy one).
    pub load_average: [f64; 3],
}

/// The 1, 5 and 15-minute load averages (zeros if unreadable).
pub(crate) fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut v = text.split_whitespace().map(|w| w.parse().unwrap_or(0.0));
    std::array::from_fn(|_| v.next().unwrap_or(0.0))
}

/// What every phase uses: the lab, the binary.
pub(crate) struct Rig {
    pub lab: Lab,
    pub bin: PathBuf,
    _peer: PeerPass,
}

impl Rig {
    /// A metrics port of its own for each scale and phase (inside the LB
    /// namespace, so nothing else listens there).
    pub fn metrics_port(&self, vips: usize, phase: u16) -> u16 {
        20_000 + (vips % 10_000) as u16 * 2 + phase
    }
}

/// A directory of the run's files, removed on drop.
pub(crate) struct RunDir(pub PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the whole benchmark; `progress` hears about every step.
pub fn control(args: &ControlBenchArgs, progress: &mut dyn FnMut(&str)) -> Result<ControlReport> {
    ensure!(!args.scales.is_empty(), "no scale to measure");
    ensure!(args.runs > 0, "--runs must be positive");
    ensure!(args.changes > 0, "--changes must be positive");
    ensure!(args.reloads > 0, "--reloads must be positive");
    let mut seen = args.scales.clone();
    seen.sort();
    seen.dedup();
    ensure!(seen.len() == args.scales.len(), "a scale is listed twice");
    let bin = procs::lb_ctl()?;
    stop::install();
    progress(&format!(
        "building the rig: LB namespace, {} next hops answering ARP; lb-ctl is {}",
        config::NEXT_HOPS,
        bin.display()
    ));
    let lab = Lab::new(LabSpec {
        backends: 1,
        client_aliases: config::NEXT_HOPS,
        ipv6: false,
    })?;
    let peer = PeerPass::attach(&lab)?;
    let rig = Rig {
        lab,
        bin,
        _peer: peer,
    };
    let root =
        RunDir(std::env::temp_dir().join(format!("lb-bench-control-{}", std::process::id())));
    let mut scales = Vec::new();
    for &vips in &args.scales {
        stop::check()?;
        let load = load_average();
        let mut scale = config::Scale::new(vips, args.seed)?;
        let apply_dir = root.0.join(format!("{vips}-apply"));
        let agent_dir = root.0.join(format!("{vips}-agent"));
        for d in [&apply_dir, &agent_dir] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        progress(&format!(
            "{vips} VIPs, {} backends: {} cold applies and adopts",
            scale.backends(),
            args.runs
        ));
        let a = apply::measure(&rig, &scale, &apply_dir, args.runs, progress)
            .with_context(|| format!("{vips} VIPs: apply"))?;
        let c = changes::measure(&rig, &mut scale, &agent_dir, args, progress)
            .with_context(|| format!("{vips} VIPs: agent"))?;
        let report = ScaleReport {
            vips,
            backends: scale.backends(),
            cold_apply_ms: stats::median(&a.cold_ms),
            adopt_ms: stats::median(&a.adopt_ms),
            one_change_ms: Summary::of(&c.change_ms),
            reload_one_change_ms: stats::median(&c.reload_ms),
            next_hops: config::NEXT_HOPS,
            cold_apply_runs_ms: a.cold_ms,
            adopt_runs_ms: a.adopt_ms,
            cold_apply_map_writes: a.cold_writes,
            adopt_map_writes: a.adopt_writes,
            agent_start_ms: c.start_ms,
            changes: args.changes,
            one_change_max_ms: stats::max(&c.change_ms),
            one_change_map_writes_median: stats::median(&c.change_writes),
            one_change_map_writes_max: stats::max(&c.change_writes),
            same_backend_back_to_back_ms: Summary::of(&c.same_backend_ms),
            same_backend_back_to_back_max_ms: stats::max(&c.same_backend_ms),
            reload_runs_ms: c.reload_ms,
            reload_map_writes: c.reload_writes,
            agent_rss_mib: c.rss_kib as f64 / 1024.0,
            agent_rss_peak_mib: c.rss_peak_kib as f64 / 1024.0,
            reconnects: c.reconnects,
            load_average: load,
        };
        progress(&format!(
            "{vips} VIPs: cold {:.0} ms, adopt {:.0} ms, change {:.2} ms (p99 {:.2}), reload {:.1} ms",
            report.cold_apply_ms,
            report.adopt_ms,
            report.one_change_ms.median,
            report.one_change_ms.p99,
            report.reload_one_change_ms
        ));
        scales.push(report);
    }
    Ok(ControlReport { scales })
}
