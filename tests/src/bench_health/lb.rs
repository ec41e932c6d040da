//! lb under measurement: `lb-ctl agent` on the generated file, with pins of
//! its own. Its verdicts are read from the data path ([`BackendTable`]); its
//! event stream and its check statistics are read too, as a cross-check.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use lb_api::{
    event_stream::Line,
    events::{Cause, EventKind},
    paths::{EventsQuery, Route},
    types::{BackendState, Stats},
};
use lb_common::abi::BackendId;
use serde::Serialize;

use super::{
    Context,
    datapath::BackendTable,
    layout::{Layout, Server},
    phase::{self, Cost, Detection, Watch},
};
use crate::bench_control::{
    client::Conn,
    config::AgentPaths,
    procs::{AgentProc, Pins},
    stop,
};

/// What one run of lb measured.
#[derive(Clone, Debug, Serialize)]
pub struct LbRun {
    pub cost: Cost,
    /// From starting the agent to its first `status` answer.
    pub start_ms: f64,
    /// Checks run per second during the window, their mean duration, and
    /// how many failed (0 expected: every server answers).
    pub checks_per_second: f64,
    pub mean_check_ms: f64,
    pub check_failures: u64,
    /// Checks that failed before the window (see [`wait_steady`]).
    pub start_failures: u64,
    /// Seen in the data path.
    pub detections: Vec<Detection>,
    /// The same kills, timed by the `backend_state` events instead.
    pub event_detections: Vec<Detection>,
}

/// Checks run so far, their total duration, failures.
#[derive(Clone, Copy, Debug)]
struct Counts {
    at: Instant,
    checks: u64,
    secs: f64,
    failures: u64,
}

/// Each API call opens a connection of its own: the agent closes idle
/// ones, and the window keeps it idle longer than that.
fn counts(socket: &Path) -> Result<Counts> {
    let s: Stats = Conn::connect(socket)?
        .request("GET", &Route::Stats.path(), None)?
        .json("GET /v1/stats")?;
    let mut c = Counts {
        at: Instant::now(),
        checks: 0,
        secs: 0.0,
        failures: 0,
    };
    for p in &s.checks {
        c.checks += p.duration_buckets.iter().map(|(_, n)| n).sum::<u64>();
        c.secs += p.duration_sum_secs;
        c.failures += p.failures.values().sum::<u64>();
    }
    Ok(c)
}

/// Waits until every server was checked once and the victims are up in
/// the data path; returns the victims' backend ids and how many checks
/// failed so far. Failures are counted, not fatal: every server answers, so
/// a failed check is a SYN or its answer that waited more than `timeout`
/// somewhere on a loaded machine (docs/benchmarks.md, "bench health").
fn wait_steady(
    cx: &Context,
    socket: &Path,
    table: &BackendTable,
    victims: &[Server],
) -> Result<(BTreeMap<Server, BackendId>, u64)> {
    let patience = cx.timing.inter * 3 + Duration::from_secs(60);
    let deadline = Instant::now() + patience;
    let c = loop {
        stop::check()?;
        let c = counts(socket)?;
        if c.checks >= cx.layout.servers as u64 {
            break c;
        }
        ensure!(
            Instant::now() < deadline,
            "only {} checks ran in {patience:?} for {} servers",
            c.checks,
            cx.layout.servers
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let ids = table.ids(victims)?;
    let mut watch = DataPath { table, ids: &ids };
    watch
        .wait_in(victims, Instant::now() + cx.patience())
        .context("the servers to kill are not all up before the kill")?;
    Ok((ids, c.failures))
}

/// The data path as a [`Watch`].
struct DataPath<'a> {
    table: &'a BackendTable,
    ids: &'a BTreeMap<Server, BackendId>,
}

impl DataPath<'_> {
    fn id(&self, s: &Server) -> Result<BackendId> {
        self.ids
            .get(s)
            .copied()
            .with_context(|| format!("no backend id for {}", s.socket()))
    }
}

impl Watch for DataPath<'_> {
    fn out_times(
        &mut self,
        servers: &[Server],
        deadline: Instant,
    ) -> Result<BTreeMap<Server, Option<u64>>> {
        let mut seen: BTreeMap<Server, Option<u64>> = servers.iter().map(|s| (*s, None)).collect();
        let ids: Vec<(Server, BackendId)> = servers
            .iter()
            .map(|s| Ok((*s, self.id(s)?)))
            .collect::<Result<_>>()?;
        // Every millisecond: the resolution of the delays.
        while seen.values().any(Option::is_none) && Instant::now() < deadline {
            let now = super::unix_ms();
            for (s, id) in &ids {
                if seen[s].is_none() && !self.table.is_up(*id) {
                    seen.insert(*s, Some(now));
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(seen)
    }

    fn wait_in(&mut self, servers: &[Server], deadline: Instant) -> Result<()> {
        loop {
            stop::check()?;
            let mut down = Vec::new();
            for s in servers {
                if !self.table.is_up(self.id(s)?) {
                    down.push(s.socket().to_string());
                }
            }
            if down.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("still out of the ring: {}", down.join(" "));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The `backend_state` → down events caused by checks, per server: the first at or after `since`.
fn event_times(socket: &Path, since: u64) -> Result<BTreeMap<Server, u64>> {
    let a = Conn::connect(socket)?.request("GET", &EventsQuery { follow: false }.path(), None)?;
    ensure!(a.status == 200, "GET /v1/events answered {}", a.status);
    let mut out = BTreeMap::new();
    for line in String::from_utf8_lossy(&a.body).lines() {
        if let Some((s, at)) = down_event(line).filter(|(_, at)| *at >= since) {
            out.entry(s).or_insert(at);
        }
    }
    Ok(out)
}

/// A line of the event stream that takes a server down after its check failed.
pub fn down_event(line: &str) -> Option<(Server, u64)> {
    let Some(Line::Event(e)) = Line::parse(line) else {
        return None;
    };
    match e.kind {
        EventKind::BackendState {
            pool,
            backend,
            to: BackendState::Down,
            cause: Cause::Health,
            ..
        } => Some((Server::find(Layout::pool_of(&pool)?, &backend)?, e.time_ms)),
        _ => None,
    }
}

/// Timing of the same kill by the events.
fn by_events(d: &Detection, events: &BTreeMap<Server, u64>) -> Detection {
    let delays_ms: Vec<f64> = d
        .died
        .iter()
        .filter_map(|(s, died)| Some(events.get(s)?.saturating_sub(*died) as f64))
        .collect();
    Detection {
        missed: d.died.len() - delays_ms.len(),
        delays_ms,
        ..d.clone()
    }
}

/// The cost over the window, with the checks the agent ran meanwhile.
fn steady(cx: &Context, pid: u32, socket: &Path) -> Result<LbRun> {
    let before = counts(socket)?;
    let cost = phase::cost(pid, cx.duration)?;
    let after = counts(socket)?;
    let n = (after.checks - before.checks) as f64;
    let secs = after.at.duration_since(before.at).as_secs_f64();
    Ok(LbRun {
        cost,
        start_ms: 0.0,
        checks_per_second: n / secs,
        mean_check_ms: if n > 0.0 {
            1e3 * (after.secs - before.secs) / n
        } else {
            0.0
        },
        check_failures: after.failures - before.failures,
        start_failures: 0,
        detections: Vec::new(),
        event_detections: Vec::new(),
    })
}

/// With the agent up: steady checking, then the kills.
fn with_agent(
    cx: &mut Context,
    run: usize,
    agent: &mut AgentProc,
    paths: &AgentPaths,
    victims: &[Server],
    progress: &mut dyn FnMut(&str),
) -> Result<LbRun> {
    let t = Instant::now();
    agent.wait_ready(&paths.socket, Duration::from_secs(300))?;
    let start_ms = t.elapsed().as_secs_f64() * 1e3;
    let table = BackendTable::open(&paths.bpffs)?;
    let (ids, start_failures) = wait_steady(cx, &paths.socket, &table, victims)?;
    progress(&format!(
        "run {run}: lb: up after {start_ms:.0} ms, {start_failures} of the first checks failed; \
         measuring {:?} of steady checking",
        cx.duration
    ));
    let mut out = LbRun {
        start_ms,
        start_failures,
        ..steady(cx, agent.pid(), &paths.socket)?
    };
    progress(&format!(
        "run {run}: lb: {:.1} % of a core, RSS {:.0} MiB, {:.0} checks/s",
        out.cost.cpu_percent, out.cost.rss_mib, out.checks_per_second
    ));
    let patience = cx.patience();
    for how in cx.methods.clone() {
        let mut watch = DataPath {
            table: &table,
            ids: &ids,
        };
        let d = phase::detect(&mut cx.rig(), &mut watch, how, victims, patience)?;
        let first = d.died.values().copied().min().unwrap_or_default();
        let events = event_times(&paths.socket, first)?;
        out.event_detections.push(by_events(&d, &events));
        progress(&cx.detection_line(&format!("run {run}: lb"), &d));
        out.detections.push(d);
    }
    Ok(out)
}

/// One run: start the agent on fresh pins, measure, stop it, remove the pins.
pub fn measure(
    cx: &mut Context,
    run: usize,
    victims: &[Server],
    progress: &mut dyn FnMut(&str),
) -> Result<LbRun> {
    let pins = Pins::new(&cx.bin, &format!("health-{run}"))?;
    let dir = cx.dir.join(format!("lb-{run}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let paths = AgentPaths::under(&dir, pins.dir.clone(), 21_000 + run as u16);
    let config = dir.join("lb.yaml");
    let text = cx.layout.lb_yaml(&paths, cx.timing.inter);
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    progress(&format!("run {run}: lb: starting lb-ctl agent"));
    let mut agent = AgentProc::start(&cx.bin, cx.lb_ns(), &config, &dir.join("agent.log"), 0)?;
    let r = with_agent(cx, run, &mut agent, &paths, victims, progress)
        .map_err(|e| e.context(agent.log_tail()));
    // Whatever failed first is the error reported; the others follow it.
    let stopped = agent.stop();
    drop(agent);
    let torn = pins.teardown();
    let out = r?;
    stopped?;
    torn?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_health_down_event_names_its_server_and_time() {
        let line = r#"{"seq":9,"time_ms":1700000000123,"type":"backend_state","pool":"p0042","backend":"b3","address":"10.77.1.23","port":null,"from":"up","to":"down","cause":"health","reason":"check tcp failed: connection refused"}"#;
        assert_eq!(down_event(line), Some((Server(422), 1_700_000_000_123)));
        let operator = line.replace(r#""cause":"health""#, r#""cause":"operator""#);
        assert_eq!(down_event(&operator), None);
        let up = line.replace(r#""to":"down""#, r#""to":"up""#);
        assert_eq!(down_event(&up), None);
        assert_eq!(down_event("not json"), None);
    }
}
