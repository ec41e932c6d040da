//! The report as a table for people: lb, HAProxy and keepalived side by
//! side, the targets in the last column.

use std::fmt::Write as _;

use super::{
    phase::{KillMethod, Spread},
    report::{HealthReport, KeepalivedReport, LegacyReport, MethodFigures},
};

/// lb's CPU target, % of one core.
pub const TARGET_CPU_PERCENT: f64 = 10.0;

/// One checker's column.
struct Column<'a> {
    name: String,
    cpu: f64,
    rss: f64,
    peak: f64,
    anon: f64,
    /// Servers taken down before / in the windows (legacy checkers).
    downs: String,
    runs: Vec<f64>,
    methods: &'a [MethodFigures],
}

fn spread(s: &Spread) -> String {
    format!("{:.0} / {:.0} / {:.0}", s.median, s.p99, s.max)
}

fn of_legacy(l: &LegacyReport) -> Column<'_> {
    Column {
        name: l.version.clone(),
        cpu: l.cpu_percent_of_one_core,
        rss: l.rss_mb,
        peak: l.peak_rss_mb,
        anon: l.anon_rss_mb,
        downs: format!(
            "{} / {}",
            l.runs.iter().map(|r| r.start_downs).sum::<usize>(),
            l.runs.iter().map(|r| r.window_downs).sum::<usize>()
        ),
        runs: l.runs.iter().map(|r| r.cost.cpu_percent).collect(),
        methods: &l.methods,
    }
}

/// The report as a table.
pub fn table(r: &HealthReport) -> String {
    let mut cols = vec![Column {
        name: "lb".into(),
        cpu: r.cpu_percent_of_one_core,
        rss: r.rss_mb,
        peak: r.peak_rss_mb,
        anon: r.anon_rss_mb,
        downs: "-".into(),
        runs: r.lb_runs.iter().map(|x| x.cost.cpu_percent).collect(),
        methods: &r.methods,
    }];
    cols.extend(r.haproxy.as_ref().map(of_legacy));
    if let Some(KeepalivedReport::Ran(k)) = &r.keepalived {
        cols.push(of_legacy(k));
    }
    let mut t = String::new();
    // `write!` to a String cannot fail.
    let _ = writeln!(
        t,
        "health checks: {} TCP-checked servers ({} in rings), inter {} ms, fall {}, rise {}; \
         {} run(s) of {:.0} s; {} servers killed at once",
        r.servers, r.servers_in_rings, r.inter_ms, r.fall, r.rise, r.runs, r.duration_s, r.kill
    );
    let row = |t: &mut String, name: &str, cells: Vec<String>, target: &str| {
        let _ = write!(t, "{name:<38}");
        for c in cells {
            let _ = write!(t, " {c:>22}");
        }
        let _ = writeln!(t, "  {target}");
    };
    row(
        &mut t,
        "",
        cols.iter().map(|c| c.name.clone()).collect(),
        "target (lb)",
    );
    let cells = |f: &dyn Fn(&Column) -> String| cols.iter().map(f).collect::<Vec<_>>();
    row(
        &mut t,
        "CPU, % of one core (median)",
        cells(&|c| format!("{:.1}", c.cpu)),
        "< 10",
    );
    row(&mut t, "  each run", cells(&|c| join(&c.runs)), "");
    row(
        &mut t,
        "RSS / peak (MiB)",
        cells(&|c| format!("{:.0} / {:.0}", c.rss, c.peak)),
        "",
    );
    row(
        &mut t,
        "  of it not mapped files (MiB)",
        cells(&|c| format!("{:.0}", c.anon)),
        "",
    );
    for (i, m) in r.methods.iter().enumerate() {
        let of = |c: &Column| {
            c.methods
                .get(i)
                .map_or("-".into(), |x| spread(&x.detection_ms))
        };
        let target = match m.method {
            KillMethod::Close => format!("max <= {:.0}", m.bound_ms),
            KillMethod::Blackhole => format!("(timing allows {:.0})", m.expected_max_ms),
        };
        let name = format!("out after {}, med/p99/max (ms)", m.method.name());
        row(&mut t, &name, cells(&of), &target);
        let missed = |c: &Column| {
            c.methods
                .get(i)
                .map_or("-".into(), |x| x.missed.to_string())
        };
        row(&mut t, "  never seen out", cells(&missed), "0");
        if let Some(e) = &m.events_ms {
            row(&mut t, "  lb by its events", vec![spread(e)], "");
        }
    }
    row(
        &mut t,
        "others: servers down before / in windows",
        cells(&|c| c.downs.clone()),
        "",
    );
    row(
        &mut t,
        "lb: checks/s, mean duration (ms)",
        vec![format!(
            "{:.0}, {:.2}",
            r.checks_per_second, r.mean_check_ms
        )],
        "",
    );
    row(
        &mut t,
        "lb: failed checks before / in windows",
        vec![format!("{} / {}", r.start_failures, r.check_failures)],
        "0",
    );
    row(
        &mut t,
        "rig (listeners) CPU while lb ran, %",
        vec![format!("{:.1}", r.rig_cpu_percent)],
        "",
    );
    let loads: Vec<f64> = r.load_average.iter().map(|l| l[0]).collect();
    row(
        &mut t,
        "load average at each run's start",
        vec![join(&loads)],
        "",
    );
    verdicts(&mut t, r);
    t
}

fn join(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.1}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// The targets' verdicts, and keepalived's refusal if it did not run.
fn verdicts(t: &mut String, r: &HealthReport) {
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let _ = write!(
        t,
        "targets: CPU {:.1} % < {TARGET_CPU_PERCENT:.0}: {}",
        r.cpu_percent_of_one_core,
        verdict(r.cpu_percent_of_one_core < TARGET_CPU_PERCENT)
    );
    if let Some(m) = r.methods.iter().find(|m| m.method == KillMethod::Close) {
        let _ = write!(
            t,
            "; every server out within {:.0} ms (worst {:.0}, {} never): {}",
            m.bound_ms,
            m.detection_ms.max,
            m.missed,
            verdict(m.detection_ms.max <= m.bound_ms && m.missed == 0)
        );
    }
    let _ = writeln!(t);
    if let Some(KeepalivedReport::Refused(k)) = &r.keepalived {
        let _ = writeln!(t, "keepalived: not measured: {}", k.reason());
    }
}
