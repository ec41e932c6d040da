//! `cargo xtask bench vrrp`: the service gap of a VRRP failover, lb→lb and
//! keepalived→keepalived on the same rig (docs/vrrp.md, "Failover benchmark"). A
//! client probes the VIP every 10 ms while an event hits the master at a
//! random phase of the advert interval; each cell is the median of its runs,
//! with the RFC's bound and the longest time two routers held the VIP.
//!
//! Node 1 (priority 150) is master, node 2 (100) backup. lb routers serve
//! the VIP through their XDP path to the lab's backends; keepalived routers
//! through a listener of their own on port 80.

mod daemon;

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::vrrp::Pair;
use crate::vrrp_conf::Router;
use crate::vrrp_probe::{Watch, gap, overlap};
use daemon::Daemon;

/// What the bench runs.
#[derive(Clone, Debug)]
pub struct VrrpBenchArgs {
    pub runs: usize,
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The master's daemon stops (SIGTERM).
    Graceful,
    /// The master's interface goes down.
    LinkDown,
    /// The master's daemon (keepalived: its VRRP child) is killed with -9.
    Kill9,
    /// The stopped master starts again and preempts.
    Restart,
}

impl Event {
    const ALL: [Event; 4] = [
        Event::Graceful,
        Event::LinkDown,
        Event::Kill9,
        Event::Restart,
    ];

    /// As the JSON names it.
    pub const fn name(self) -> &'static str {
        match self {
            Event::Graceful => "graceful",
            Event::LinkDown => "link_down",
            Event::Kill9 => "kill9",
            Event::Restart => "restart",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    pub vrrp: u8,
    pub advert_ms: u64,
    pub event: Event,
    pub gap_ms: f64,
    pub runs_ms: Vec<f64>,
    pub rfc_bound_ms: f64,
    pub two_owners_ms: f64,
    /// Median time from the event until the new master held the VIP (null
    /// when it never did: keepalived's respawned child may win back first).
    pub takeover_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cells: Vec<Cell>,
    pub took_s: f64,
}

/// (version, advert interval): VRRPv2 carries whole seconds only.
const SHAPES: [(u8, u64); 3] = [(2, 1000), (3, 1000), (3, 100)];

pub fn vrrp(args: &VrrpBenchArgs, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    let start = Instant::now();
    let mut rng = args.seed.max(1);
    let mut cells = Vec::new();
    for implementation in ["lb", "keepalived"] {
        for (version, advert_ms) in SHAPES {
            progress(&format!(
                "{implementation} VRRPv{version} advert {advert_ms} ms ({:.0} s so far)",
                start.elapsed().as_secs_f64()
            ));
            let pair = Pair::new(false)?;
            let r = [
                Router::new(version, 150, advert_ms),
                Router::new(version, 100, advert_ms),
            ];
            let mut d = [
                Daemon::launch(implementation, &pair, 1, &r[0])?,
                Daemon::launch(implementation, &pair, 2, &r[1])?,
            ];
            pair.wait_owner(1, r[0].vip(), Duration::from_secs(15))?;
            for event in Event::ALL {
                let mut rig = Rig {
                    pair: &pair,
                    daemons: &mut d,
                    routers: &r,
                    rng: &mut rng,
                };
                let (runs, takeovers, two) = rig
                    .runs(event, args.runs, progress)
                    .with_context(|| format!("{implementation} routers"))?;
                cells.push(Cell {
                    implementation,
                    vrrp: version,
                    advert_ms,
                    event,
                    gap_ms: median(&runs),
                    runs_ms: runs,
                    rfc_bound_ms: bound(event, &r[1]),
                    two_owners_ms: two,
                    takeover_ms: (!takeovers.is_empty()).then(|| median(&takeovers)),
                });
            }
        }
    }
    Ok(Report {
        cells,
        took_s: start.elapsed().as_secs_f64(),
    })
}

/// One shape's pair of routers, master (priority 150) then backup (100).
struct Rig<'a> {
    pair: &'a Pair,
    daemons: &'a mut [Daemon; 2],
    routers: &'a [Router; 2],
    rng: &'a mut u64,
}

impl Rig<'_> {
    /// `n` runs of `event`: the gaps, the takeover times (ms) and the
    /// longest time two routers held the VIP.
    fn runs(
        &mut self,
        event: Event,
        n: usize,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(Vec<f64>, Vec<f64>, f64)> {
        let (mut gaps, mut takeovers, mut two) = (Vec::new(), Vec::new(), 0.0f64);
        for run in 1..=n {
            let r = &self.routers[0];
            let m = one_run(self.pair, self.daemons, r, event, self.rng).with_context(|| {
                let e = event.name();
                format!("v{} {} ms {e} run {run}", r.version, r.advert_ms)
            })?;
            let takeover = m.takeover.map_or("none".into(), |t| format!("{t:.0} ms"));
            progress(&format!(
                "  {} run {run}: gap {:.0} ms, two owners {:.0} ms, takeover {takeover}",
                event.name(),
                m.gap,
                m.two,
            ));
            gaps.push(m.gap);
            takeovers.extend(m.takeover);
            two = two.max(m.two);
        }
        Ok((gaps, takeovers, two))
    }
}

/// What one run saw, in milliseconds.
struct Measure {
    gap: f64,
    two: f64,
    takeover: Option<f64>,
}

/// One event, measured, then the pair put back with node 1 master.
fn one_run(
    pair: &Pair,
    d: &mut [Daemon; 2],
    r1: &Router,
    event: Event,
    rng: &mut u64,
) -> Result<Measure> {
    let vip = r1.vip();
    let within = Duration::from_secs(15);
    if event == Event::Restart {
        d[0].stop_graceful()?;
        pair.wait_owner(2, vip, within)?;
    }
    // Each run starts from a served VIP, so that its gap is its own (owning
    // the address is not yet serving it: a node whose link just came back
    // resolves its backends' next hops again).
    pair.wait_served(vip, within)?;
    let (w1, w2) = (
        Watch::owner(pair.node(1), vip),
        Watch::owner(pair.node(2), vip),
    );
    let probe = Watch::probe(&pair.lab.client().ns, vip, 80);
    std::thread::sleep(Duration::from_millis(300) + phase(r1.advert_ms, rng));
    let at = Instant::now();
    let expect = match event {
        Event::Graceful => d[0].stop_graceful().map(|()| Some(2)),
        Event::LinkDown => link(pair, 1, false).map(|()| Some(2)),
        // keepalived's parent may respawn its VRRP child before the backup
        // takes over (then node 1 comes back), or after: watch a whole
        // Master_Down_Interval and a second.
        Event::Kill9 => d[0].kill9().map(|()| None),
        Event::Restart => d[0].restart().map(|()| Some(1)),
    }?;
    match expect {
        Some(n) => pair.wait_owner(n, vip, within).map(drop)?,
        None => std::thread::sleep(Duration::from_millis(bound(Event::Kill9, r1) as u64 + 1000)),
    }
    std::thread::sleep(Duration::from_millis(300));
    let (r, o1, o2) = (probe.finish(), w1.finish(), w2.finish());
    let new_master = if event == Event::Restart { &o1 } else { &o2 };
    let takeover = new_master
        .iter()
        .find(|(t, held)| *held && *t > at)
        .map(|(t, _)| ms(t.duration_since(at)));
    let result = Measure {
        gap: ms(gap(&r, at)),
        two: ms(overlap(&o1, &o2)),
        takeover,
    };
    restore(pair, d, event)?;
    pair.wait_owner(1, vip, within)?;
    Ok(result)
}

/// Node 1 back as it was (it preempts once up).
fn restore(pair: &Pair, d: &mut [Daemon; 2], event: Event) -> Result<()> {
    match event {
        Event::Graceful => d[0].restart(),
        Event::LinkDown => link(pair, 1, true),
        Event::Kill9 => d[0].recover(),
        Event::Restart => Ok(()),
    }
}

fn link(pair: &Pair, n: usize, up: bool) -> Result<()> {
    pair.node(n).ip(&[
        "link",
        "set",
        crate::lab::IFNAME,
        if up { "up" } else { "down" },
    ])?;
    Ok(())
}

/// A random wait within one advert interval (xorshift).
fn phase(advert_ms: u64, state: &mut u64) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    Duration::from_micros(*state % (advert_ms * 1000))
}

/// The RFC's bound on the gap, for the backup `r`: Skew_Time after a
/// resignation, Master_Down_Interval after a silent death, none for a
/// preempting restart (the backup serves until the master takes over).
fn bound(event: Event, r: &Router) -> f64 {
    let adv = if r.version == 2 {
        1000.0
    } else {
        r.advert_ms as f64
    };
    let skew = (256.0 - f64::from(r.priority)) * adv / 256.0;
    match event {
        Event::Graceful => skew,
        Event::LinkDown | Event::Kill9 => 3.0 * r.advert_ms as f64 + skew,
        Event::Restart => 0.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

/// The report as a table.
pub fn table(r: &Report) -> String {
    let mut out = format!(
        "{:<11} {:>4} {:>7} {:<9} {:>8} {:>9} {:>11} {:>12}  runs (ms)\n",
        "impl", "vrrp", "advert", "event", "gap ms", "bound ms", "2 owners ms", "takeover ms"
    );
    for c in &r.cells {
        let runs: Vec<String> = c.runs_ms.iter().map(|v| format!("{v:.0}")).collect();
        let takeover = c.takeover_ms.map_or("-".into(), |t| format!("{t:.0}"));
        out += &format!(
            "{:<11} {:>4} {:>7} {:<9} {:>8.0} {:>9.0} {:>11.0} {:>12}  {}\n",
            c.implementation,
            c.vrrp,
            c.advert_ms,
            c.event.name(),
            c.gap_ms,
            c.rfc_bound_ms,
            c.two_owners_ms,
            takeover,
            runs.join(" ")
        );
    }
    out += &format!("took {:.0} s\n", r.took_s);
    out
}
