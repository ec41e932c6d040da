//! `target/bench/health.json`: the fields first (lb's figures: CPU
//! and RSS as medians of the runs, detection delays of the first kill method
//! over every kill of every run), then the extras.

use std::time::Duration;

use serde::Serialize;

use super::{
    Context, HealthBenchArgs,
    keepalived::Keepalived,
    lb::LbRun,
    legacy::LegacyRun,
    phase::{Cost, Detection, KillMethod, Spread},
};
use crate::bench_control::stats;

/// Where lb's verdicts are read.
const OBSERVED_IN: &str = "the data path: the backend's entry in the pinned LB_BACKENDS map \
                           turns down (after the rings stopped naming it), polled every 1 ms";

#[derive(Clone, Debug, Serialize)]
pub struct HealthReport {
    pub servers: usize,
    pub inter_ms: u64,
    pub cpu_percent_of_one_core: f64,
    pub rss_mb: f64,
    pub detection_ms: Spread,
    pub bound_ms: f64,

    pub runs: usize,
    pub duration_s: f64,
    pub kill: usize,
    /// The method `detection_ms` is for.
    pub kill_method: KillMethod,
    pub detection_observed_in: &'static str,
    pub fall: u32,
    pub rise: u32,
    pub fastinter_ms: u64,
    pub timeout_ms: u64,
    pub servers_in_rings: usize,
    /// `VmHWM`: the largest of the runs' peaks, MiB.
    pub peak_rss_mb: f64,
    /// `RssAnon` (median): `rss_mb` without the mapped BPF maps, MiB.
    pub anon_rss_mb: f64,
    /// This process (the servers) while lb was measured: median, % of a core.
    pub rig_cpu_percent: f64,
    pub checks_per_second: f64,
    pub mean_check_ms: f64,
    pub check_failures: u64,
    /// Failed checks from the agent's start to the window, all runs.
    pub start_failures: u64,
    /// Per kill method: lb's delays, and the same kills timed by its events.
    pub methods: Vec<MethodFigures>,
    pub lb_runs: Vec<LbRun>,
    pub haproxy: Option<LegacyReport>,
    pub keepalived: Option<KeepalivedReport>,
    /// `/proc/loadavg` (1, 5, 15 min) at the start of each run.
    pub load_average: Vec<[f64; 3]>,
    pub took_s: f64,
}

/// One kill method's delays over every run.
#[derive(Clone, Debug, Serialize)]
pub struct MethodFigures {
    pub method: KillMethod,
    pub detection_ms: Spread,
    /// Killed servers never seen out (0 expected).
    pub missed: usize,
    /// The bound, inter × fall + 50 ms.
    pub bound_ms: f64,
    /// The worst case the timing allows for this method, + 50 ms: the first
    /// failing check starts at most `inter` after the death, each takes
    /// nothing (reset) or `timeout` (no answer), and the next starts
    /// `max(fastinter, its duration)` after the previous one.
    pub expected_max_ms: f64,
    /// The longest a kill took from the first death to the last.
    pub kill_spread_ms: f64,
    /// lb only: the same kills timed by the `backend_state` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_ms: Option<Spread>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LegacyReport {
    pub version: String,
    pub cpu_percent_of_one_core: f64,
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
    pub anon_rss_mb: f64,
    pub methods: Vec<MethodFigures>,
    pub runs: Vec<LegacyRun>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum KeepalivedReport {
    Refused(Keepalived),
    Ran(LegacyReport),
}

/// What the runs gave, as they come.
#[derive(Default)]
pub(super) struct Collect {
    pub lb: Vec<LbRun>,
    pub haproxy_version: String,
    pub haproxy: Vec<LegacyRun>,
    pub keepalived: Vec<Keepalived>,
    pub load_average: Vec<[f64; 3]>,
}

impl Collect {
    pub fn keepalived_refused(&self) -> bool {
        self.keepalived
            .iter()
            .any(|k| matches!(k, Keepalived::Refused { .. }))
    }

    pub fn report(self, args: &HealthBenchArgs, cx: &Context, took: Duration) -> HealthReport {
        let t = &cx.timing;
        let ms = |d: Duration| d.as_millis() as u64;
        let lb_det: Vec<&[Detection]> = self.lb.iter().map(|r| r.detections.as_slice()).collect();
        let lb_events: Vec<&[Detection]> = self
            .lb
            .iter()
            .map(|r| r.event_detections.as_slice())
            .collect();
        let mut methods = figures(cx, &lb_det);
        for (m, e) in methods.iter_mut().zip(figures(cx, &lb_events)) {
            m.events_ms = Some(e.detection_ms);
        }
        let costs: Vec<Cost> = self.lb.iter().map(|r| r.cost).collect();
        let each = |f: fn(&LbRun) -> f64| stats::median(&self.lb.iter().map(f).collect::<Vec<_>>());
        let first = methods.first().cloned();
        HealthReport {
            servers: cx.layout.servers,
            inter_ms: ms(t.inter),
            cpu_percent_of_one_core: median_of(&costs, |c| c.cpu_percent),
            rss_mb: median_of(&costs, |c| c.rss_mib),
            detection_ms: first.as_ref().map(|m| m.detection_ms).unwrap_or_default(),
            bound_ms: bound_ms(cx),
            runs: args.runs,
            duration_s: args.duration.as_secs_f64(),
            kill: args.kill,
            kill_method: first.map_or(KillMethod::Close, |m| m.method),
            detection_observed_in: OBSERVED_IN,
            fall: t.fall,
            rise: t.rise,
            fastinter_ms: ms(t.fastinter),
            timeout_ms: ms(t.timeout),
            servers_in_rings: cx.layout.ring_servers(),
            peak_rss_mb: costs.iter().map(|c| c.peak_rss_mib).fold(0.0, f64::max),
            anon_rss_mb: median_of(&costs, |c| c.anon_rss_mib),
            rig_cpu_percent: median_of(&costs, |c| c.rig_cpu_percent),
            checks_per_second: each(|r| r.checks_per_second),
            mean_check_ms: each(|r| r.mean_check_ms),
            check_failures: self.lb.iter().map(|r| r.check_failures).sum(),
            start_failures: self.lb.iter().map(|r| r.start_failures).sum(),
            methods,
            haproxy: (!self.haproxy.is_empty())
                .then(|| legacy(cx, self.haproxy_version, self.haproxy)),
            keepalived: keepalived(cx, self.keepalived),
            lb_runs: self.lb,
            load_average: self.load_average,
            took_s: took.as_secs_f64(),
        }
    }
}

/// keepalived's refusal, or its figures if it ran.
fn keepalived(cx: &Context, attempts: Vec<Keepalived>) -> Option<KeepalivedReport> {
    if let Some(k @ Keepalived::Refused { .. }) = attempts.first() {
        return Some(KeepalivedReport::Refused(k.clone()));
    }
    let runs: Vec<LegacyRun> = attempts
        .into_iter()
        .filter_map(|k| match k {
            Keepalived::Ran(r) => Some(r),
            Keepalived::Refused { .. } => None,
        })
        .collect();
    (!runs.is_empty())
        .then(|| KeepalivedReport::Ran(legacy(cx, super::keepalived::version(), runs)))
}

fn median_of(costs: &[Cost], f: fn(&Cost) -> f64) -> f64 {
    stats::median(&costs.iter().map(f).collect::<Vec<_>>())
}

/// inter × fall + 50 ms.
fn bound_ms(cx: &Context) -> f64 {
    (cx.timing.inter * cx.timing.fall).as_secs_f64() * 1e3 + 50.0
}

fn expected_max_ms(cx: &Context, how: KillMethod) -> f64 {
    let t = &cx.timing;
    let took = match how {
        KillMethod::Close => Duration::ZERO,
        KillMethod::Blackhole => t.timeout,
    };
    let worst = t.inter + t.fastinter.max(took) * t.fall.saturating_sub(1) + took;
    worst.as_secs_f64() * 1e3 + 50.0
}

/// Per method (in the order measured), every run's kills pooled.
fn figures(cx: &Context, runs: &[&[Detection]]) -> Vec<MethodFigures> {
    cx.methods
        .iter()
        .map(|&how| {
            let of_method = || {
                runs.iter()
                    .flat_map(|r| r.iter())
                    .filter(|d| d.method == how)
            };
            let delays: Vec<f64> = of_method()
                .flat_map(|d| d.delays_ms.iter().copied())
                .collect();
            MethodFigures {
                method: how,
                detection_ms: Spread::of(&delays),
                missed: of_method().map(|d| d.missed).sum(),
                bound_ms: bound_ms(cx),
                expected_max_ms: expected_max_ms(cx, how),
                kill_spread_ms: of_method().map(|d| d.kill_spread_ms).fold(0.0, f64::max),
                events_ms: None,
            }
        })
        .collect()
}

fn legacy(cx: &Context, version: String, runs: Vec<LegacyRun>) -> LegacyReport {
    let costs: Vec<Cost> = runs.iter().map(|r| r.cost).collect();
    let det: Vec<&[Detection]> = runs.iter().map(|r| r.detections.as_slice()).collect();
    LegacyReport {
        version,
        cpu_percent_of_one_core: median_of(&costs, |c| c.cpu_percent),
        rss_mb: median_of(&costs, |c| c.rss_mib),
        peak_rss_mb: costs.iter().map(|c| c.peak_rss_mib).fold(0.0, f64::max),
        anon_rss_mb: median_of(&costs, |c| c.anon_rss_mib),
        methods: figures(cx, &det),
        runs,
    }
}
