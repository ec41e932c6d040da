//! The two measurements every checker goes through, whichever it is: its
//! cost over a window of steady checking, and how long it takes to put
//! killed servers out of service.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::{blackhole::Blackhole, layout::Server, servers::Servers, unix_ms, usage::Reading};
use crate::bench_control::{stats, stop};

/// How the servers are killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum KillMethod {
    /// The listener closes: the next check's SYN gets a reset.
    Close,
    /// Packets to the server are dropped: the next check times out.
    Blackhole,
}

impl KillMethod {
    pub fn name(self) -> &'static str {
        match self {
            KillMethod::Close => "close",
            KillMethod::Blackhole => "blackhole",
        }
    }
}

/// What kills and revives servers.
pub struct Rig<'a> {
    pub servers: &'a mut Servers,
    pub blackhole: &'a Blackhole,
}

impl Rig<'_> {
    /// Kills `victims`; returns when each died (Unix ms). A black hole is one
    /// transaction, timed from just before it starts, so its delays err long.
    fn kill(&mut self, how: KillMethod, victims: &[Server]) -> Result<BTreeMap<Server, u64>> {
        match how {
            KillMethod::Close => self.servers.close(victims),
            KillMethod::Blackhole => {
                let at = unix_ms();
                self.blackhole.swallow(victims)?;
                Ok(victims.iter().map(|s| (*s, at)).collect())
            }
        }
    }

    fn revive(&mut self, how: KillMethod, victims: &[Server]) -> Result<()> {
        match how {
            KillMethod::Close => self.servers.listen(victims.to_vec()),
            KillMethod::Blackhole => self.blackhole.release(),
        }
    }
}

/// What tells when a checker took a server out of service, or back.
pub trait Watch {
    /// When each of `servers` was seen out of service (Unix ms), waiting
    /// until all were or `deadline` passed (then `None` for the rest).
    fn out_times(
        &mut self,
        servers: &[Server],
        deadline: Instant,
    ) -> Result<BTreeMap<Server, Option<u64>>>;
    /// Waits until every one of `servers` is in service again.
    fn wait_in(&mut self, servers: &[Server], deadline: Instant) -> Result<()>;
}

/// The cost of steady checking over one window.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Cost {
    pub cpu_percent: f64,
    /// `VmRSS` at the end of the window, and `VmHWM` (peak since start), MiB.
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
    /// `RssAnon` at the end of the window: `VmRSS` without mapped files
    /// (lb maps its BPF maps, which the kernel allocates whoever maps them).
    pub anon_rss_mib: f64,
    /// This process (the servers' thread, mostly) over the same window.
    pub rig_cpu_percent: f64,
}

/// Reads `pid` and this process, waits `duration` (stopping early on
/// Ctrl-C), reads them again.
pub fn cost(pid: u32, duration: Duration) -> Result<Cost> {
    let me = std::process::id();
    let (a, rig_a) = (Reading::of(pid)?, Reading::of(me)?);
    let end = Instant::now() + duration;
    while Instant::now() < end {
        stop::check()?;
        std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
    }
    let (b, rig_b) = (Reading::of(pid)?, Reading::of(me)?);
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(Cost {
        cpu_percent: b.cpu_percent_since(&a),
        rss_mib: mib(b.rss_kib),
        peak_rss_mib: mib(b.peak_kib),
        anon_rss_mib: mib(b.anon_kib),
        rig_cpu_percent: rig_b.cpu_percent_since(&rig_a),
    })
}

/// Detection delays of one kill.
#[derive(Clone, Debug, Serialize)]
pub struct Detection {
    pub method: KillMethod,
    /// Per killed server that was seen out: from its death to that moment.
    pub delays_ms: Vec<f64>,
    /// Killed servers still in service at the deadline.
    pub missed: usize,
    /// From the first death to the last.
    pub kill_spread_ms: f64,
    /// When each killed server died (Unix ms).
    #[serde(skip)]
    pub died: BTreeMap<Server, u64>,
}

/// Kills `victims`, times each until `watch` sees it out (at most
/// `patience`), revives them and waits until they are back in service.
pub fn detect(
    rig: &mut Rig,
    watch: &mut dyn Watch,
    how: KillMethod,
    victims: &[Server],
    patience: Duration,
) -> Result<Detection> {
    stop::check()?;
    let died = rig.kill(how, victims)?;
    let seen = watch.out_times(victims, Instant::now() + patience);
    // Revive whatever happened, so the next measurement starts whole.
    let revived = rig.revive(how, victims);
    let seen = seen?;
    revived?;
    watch
        .wait_in(victims, Instant::now() + patience * 2)
        .context("waiting for the killed servers to come back")?;
    let mut delays_ms = Vec::new();
    for (s, at) in &seen {
        if let (Some(out), Some(died)) = (at, died.get(s)) {
            delays_ms.push(out.saturating_sub(*died) as f64);
        }
    }
    let (Some(first), Some(last)) = (died.values().min(), died.values().max()) else {
        bail!("nothing was killed");
    };
    Ok(Detection {
        method: how,
        missed: victims.len() - delays_ms.len(),
        delays_ms,
        kill_spread_ms: (last - first) as f64,
        died,
    })
}

/// Median, p99 (nearest rank) and max of detection delays.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Spread {
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(v: &[f64]) -> Spread {
        Spread {
            median: stats::median(v),
            p99: stats::percentile(v, 99.0),
            max: stats::max(v),
        }
    }
}
