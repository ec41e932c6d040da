//! The report as a table for people, with the targets next to the figures.

use std::fmt::Write as _;

use super::{ControlReport, ScaleReport};

/// The scale the targets are set at.
pub const TARGET_VIPS: usize = 1000;
/// Cold `lb-ctl apply` of [`TARGET_VIPS`] services.
pub const TARGET_COLD_APPLY_MS: f64 = 2000.0;
/// One backend change through the API at [`TARGET_VIPS`] services (median).
pub const TARGET_ONE_CHANGE_MS: f64 = 5.0;

fn runs(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// The report as a table, one column per scale.
pub fn control_table(r: &ControlReport) -> String {
    type Row = (&'static str, fn(&ScaleReport) -> String, &'static str);
    let rows: [Row; 15] = [
        (
            "cold apply, median (ms)",
            |s| format!("{:.0}", s.cold_apply_ms),
            "<= 2000",
        ),
        ("  each run (ms)", |s| runs(&s.cold_apply_runs_ms), ""),
        ("  map writes", |s| s.cold_apply_map_writes.to_string(), ""),
        ("adopt, median (ms)", |s| format!("{:.0}", s.adopt_ms), ""),
        ("  each run (ms)", |s| runs(&s.adopt_runs_ms), ""),
        (
            "agent start to status (ms)",
            |s| format!("{:.0}", s.agent_start_ms),
            "",
        ),
        (
            "one change, median (ms)",
            |s| format!("{:.2}", s.one_change_ms.median),
            "<= 5",
        ),
        (
            "one change, p99 / max (ms)",
            |s| format!("{:.2} / {:.2}", s.one_change_ms.p99, s.one_change_max_ms),
            "",
        ),
        (
            "  map writes, median / max",
            |s| {
                format!(
                    "{:.0} / {:.0}",
                    s.one_change_map_writes_median, s.one_change_map_writes_max
                )
            },
            "",
        ),
        (
            "same backend b2b, median (ms)",
            |s| format!("{:.2}", s.same_backend_back_to_back_ms.median),
            "",
        ),
        (
            "same backend b2b, p99 (ms)",
            |s| format!("{:.2}", s.same_backend_back_to_back_ms.p99),
            "",
        ),
        (
            "reload, one weight, median (ms)",
            |s| format!("{:.1}", s.reload_one_change_ms),
            "",
        ),
        (
            "  map writes",
            |s| {
                s.reload_map_writes
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join("/")
            },
            "",
        ),
        (
            "agent RSS / peak (MiB)",
            |s| format!("{:.0} / {:.0}", s.agent_rss_mib, s.agent_rss_peak_mib),
            "",
        ),
        (
            "load average at start (1 min)",
            |s| format!("{:.2}", s.load_average[0]),
            "",
        ),
    ];
    let mut t = String::new();
    let _ = writeln!(
        t,
        "control plane: {} next hops answering ARP, 4 backends per pool, ring_size auto; \
         changes on one keep-alive connection",
        r.scales.first().map_or(0, |s| s.next_hops)
    );
    let _ = write!(t, "{:<34}", "");
    for s in &r.scales {
        let _ = write!(t, " {:>16}", format!("{} VIPs", s.vips));
    }
    let _ = writeln!(t, "  target at {TARGET_VIPS} VIPs");
    for (name, cell, target) in rows {
        let _ = write!(t, "{name:<34}");
        for s in &r.scales {
            let _ = write!(t, " {:>16}", cell(s));
        }
        let _ = writeln!(t, "  {target}");
    }
    if let Some(s) = r.scales.iter().find(|s| s.vips == TARGET_VIPS) {
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let _ = writeln!(
            t,
            "targets at {TARGET_VIPS} VIPs: cold apply {:.0} ms <= {TARGET_COLD_APPLY_MS:.0}: {}; \
             one change {:.2} ms <= {TARGET_ONE_CHANGE_MS:.0}: {}",
            s.cold_apply_ms,
            verdict(s.cold_apply_ms <= TARGET_COLD_APPLY_MS),
            s.one_change_ms.median,
            verdict(s.one_change_ms.median <= TARGET_ONE_CHANGE_MS),
        );
    } else {
        let _ = writeln!(
            t,
            "(no {TARGET_VIPS}-VIP scale measured: targets not checked)"
        );
    }
    t
}
