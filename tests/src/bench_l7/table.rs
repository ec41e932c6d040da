//! The table `lb-lab bench-l7` prints, with the target beside lb's
//! figures: at least 1.1 × HAProxy's requests per second, p99 no higher.

use std::fmt::Write as _;

use super::{Figures, L7Report};

pub fn table(r: &L7Report) -> String {
    let mut s = format!(
        "L7 proxy: wrk -t{} -c{} -d{}s --latency, {} rounds, medians; proxies with {} threads on {} cores\n\
         {:<13} {:<12} {:>10} {:>9} {:>11}   target\n",
        r.wrk_threads,
        r.connections,
        r.duration_s,
        r.rounds,
        r.proxy_threads,
        r.cores,
        "mode",
        "through",
        "req/s",
        "p99 ms",
        "CPU µs/req",
    );
    for m in &r.modes {
        let h = &m.haproxy;
        for (name, f) in [
            ("lb", &m.lb),
            ("haproxy", h),
            ("nginx proxy", &m.nginx_proxy),
            ("direct", &m.direct),
        ] {
            let target = if name == "lb" {
                verdict(f, h)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "{:<13} {:<12} {:>10.0} {:>9.2} {:>11.1}   {target}",
                m.mode, name, f.rps, f.p99_ms, f.cpu_us_per_req
            );
        }
    }
    let _ = writeln!(
        s,
        "load average before: {}; after: {}",
        r.loadavg_before, r.loadavg_after
    );
    s
}

/// `≥ 1.1 × HAProxy: 1.23 × met; p99 ≤ HAProxy's: met`.
fn verdict(lb: &Figures, haproxy: &Figures) -> String {
    let ratio = lb.rps / haproxy.rps.max(f64::MIN_POSITIVE);
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    format!(
        "req/s ≥ 1.1 × HAProxy: {ratio:.2} × {}; p99 ≤ HAProxy's: {}",
        met(ratio >= 1.1),
        met(lb.p99_ms <= haproxy.p99_ms)
    )
}
