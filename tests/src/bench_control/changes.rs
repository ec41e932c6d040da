//! The agent phase: `lb-ctl agent` on the file, then runtime changes through
//! the API on one persistent connection, a few reloads that each change one
//! weight in the file, and the agent's memory.
//!
//! The changes alternate: drain a backend drawn at random (one that is up),
//! then put back up the one drained two requests earlier. Every request is a
//! real change, and none targets the backend the request just before it
//! touched. A second series toggles one backend back to back (drain, up,
//! drain, …): each change then follows one to the same VIP at once, so it
//! shows any wait on the previous change (such as a grace period).

use std::{collections::VecDeque, path::Path, time::Instant};

use anyhow::{Context as _, Result, ensure};
use lb_api::{
    paths::Route,
    types::{ChangeResult, ReloadResult, SetState},
};
use lb_config::AdminState;

use super::{
    ControlBenchArgs, Rig,
    client::Conn,
    config::{AgentPaths, BACKENDS_PER_POOL, Scale},
    procs::{AgentProc, Pins},
    rng::Rng,
};

/// What the agent phase measured.
#[derive(Clone, Debug, Default)]
pub struct AgentRuns {
    /// From starting the process to `status` answering.
    pub start_ms: f64,
    pub change_ms: Vec<f64>,
    pub change_writes: Vec<f64>,
    pub same_backend_ms: Vec<f64>,
    pub reload_ms: Vec<f64>,
    pub reload_writes: Vec<u64>,
    pub rss_kib: u64,
    pub rss_peak_kib: u64,
    pub reconnects: usize,
}

type Target = (usize, usize);

fn set_state(conn: &mut Conn, (pool, backend): Target, state: AdminState) -> Result<(f64, usize)> {
    let route = Route::BackendState(Scale::pool_name(pool), Scale::backend_name(backend));
    let body = serde_json::to_vec(&SetState { state })?;
    let what = format!("PUT {} {state:?}", route.path());
    let a = conn.request("PUT", &route.path(), Some(&body))?;
    let r: ChangeResult = a.json(&what)?;
    ensure!(r.changed, "{what}: the agent says nothing changed");
    Ok((a.elapsed.as_secs_f64() * 1e3, r.map_writes))
}

pub fn measure(
    rig: &Rig,
    scale: &mut Scale,
    dir: &Path,
    args: &ControlBenchArgs,
    progress: &mut dyn FnMut(&str),
) -> Result<AgentRuns> {
    let vips = scale.vips();
    let pins = Pins::new(&rig.bin, &format!("{vips}-agent"))?;
    let paths = AgentPaths::under(dir, pins.dir.clone(), rig.metrics_port(vips, 1));
    let config = dir.join("lb.yaml");
    scale.write(&paths, &config)?;
    let mut out = AgentRuns::default();

    progress(&format!("{vips} VIPs: starting lb-ctl agent"));
    let t = Instant::now();
    let mut agent = AgentProc::start(
        &rig.bin,
        rig.lab.lb().ns.name(),
        &config,
        &dir.join("agent.log"),
        args.agent_verbosity,
    )?;
    let mut conn = agent.wait_ready(&paths.socket, std::time::Duration::from_secs(300))?;
    out.start_ms = t.elapsed().as_secs_f64() * 1e3;
    progress(&format!(
        "{vips} VIPs: agent answers status after {:.0} ms",
        out.start_ms
    ));
    let with_log = |e: anyhow::Error, agent: &AgentProc| e.context(agent.log_tail());
    let r = (|| -> Result<()> {
        for _ in 0..3 {
            conn.request("GET", "/v1/status", None)?;
        }
        let mut rng = Rng::new(args.seed ^ 0x00c0_ffee);
        random_changes(&mut conn, &mut rng, vips, args, &mut out, progress)?;
        same_backend(&mut conn, &mut rng, vips, args, &mut out, progress)?;
        (out.rss_kib, out.rss_peak_kib) = agent.rss_kib()?;
        reloads(
            &mut conn,
            &mut rng,
            scale,
            (&paths, &config),
            args,
            &mut out,
            progress,
        )?;
        out.reconnects = conn.reconnects;
        Ok(())
    })();
    r.map_err(|e| with_log(e, &agent))?;
    agent.stop()?;
    drop(agent);
    pins.teardown()?;
    Ok(out)
}

/// A random backend of a random pool.
fn pick(rng: &mut Rng, vips: usize) -> Target {
    (rng.below(vips), rng.below(BACKENDS_PER_POOL))
}

/// `args.changes` changes, alternately draining a random backend and
/// putting back the one drained longest ago; everything up again after.
fn random_changes(
    conn: &mut Conn,
    rng: &mut Rng,
    vips: usize,
    args: &ControlBenchArgs,
    out: &mut AgentRuns,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut drained: VecDeque<Target> = VecDeque::new();
    let first = pick(rng, vips);
    set_state(conn, first, AdminState::Drain)?;
    drained.push_back(first);
    progress(&format!(
        "{vips} VIPs: {} changes (drain a random backend / put back the one drained before)",
        args.changes
    ));
    for k in 0..args.changes {
        let (target, state) = if k % 2 == 0 {
            let t = loop {
                let t = pick(rng, vips);
                if !drained.contains(&t) {
                    break t;
                }
            };
            drained.push_back(t);
            (t, AdminState::Drain)
        } else {
            (
                drained.pop_front().context("nothing drained")?,
                AdminState::Up,
            )
        };
        super::stop::check()?;
        let (ms, writes) = set_state(conn, target, state)?;
        out.change_ms.push(ms);
        out.change_writes.push(writes as f64);
        if (k + 1) % 25 == 0 {
            progress(&format!(
                "{vips} VIPs:   {}/{} changes, last {ms:.2} ms ({writes} map writes)",
                k + 1,
                args.changes
            ));
        }
    }
    while let Some(t) = drained.pop_front() {
        set_state(conn, t, AdminState::Up)?;
    }
    Ok(())
}

/// `args.changes` changes back to back on one backend, drain and up in
/// turn: each must wait for the previous flip's grace period.
fn same_backend(
    conn: &mut Conn,
    rng: &mut Rng,
    vips: usize,
    args: &ControlBenchArgs,
    out: &mut AgentRuns,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let one = pick(rng, vips);
    progress(&format!(
        "{vips} VIPs: {} changes back to back on one backend ({}/{})",
        args.changes,
        Scale::pool_name(one.0),
        Scale::backend_name(one.1)
    ));
    for k in 0..args.changes {
        let state = if k % 2 == 0 {
            AdminState::Drain
        } else {
            AdminState::Up
        };
        super::stop::check()?;
        out.same_backend_ms.push(set_state(conn, one, state)?.0);
    }
    if args.changes % 2 == 1 {
        set_state(conn, one, AdminState::Up)?;
    }
    Ok(())
}

/// `args.reloads` reloads, each after changing one backend's weight in the
/// file; each must change exactly one service.
fn reloads(
    conn: &mut Conn,
    rng: &mut Rng,
    scale: &mut Scale,
    (paths, config): (&AgentPaths, &Path),
    args: &ControlBenchArgs,
    out: &mut AgentRuns,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let vips = scale.vips();
    progress(&format!(
        "{vips} VIPs: {} reloads, each changing one weight in the file",
        args.reloads
    ));
    for _ in 0..args.reloads {
        super::stop::check()?;
        let (pool, backend) = pick(rng, vips);
        let w = if scale.weight(pool, backend) == 1 {
            2
        } else {
            1
        };
        scale.set_weight(pool, backend, w);
        scale.write(paths, config)?;
        let a = conn.request("POST", &Route::Reload.path(), None)?;
        let r: ReloadResult = a.json("POST /v1/reload")?;
        ensure!(
            r.changed_services.len() == 1,
            "a reload changing one weight changed services {:?}",
            r.changed_services
        );
        let ms = a.elapsed.as_secs_f64() * 1e3;
        progress(&format!(
            "{vips} VIPs:   reload {ms:.1} ms ({} map writes)",
            r.map_writes
        ));
        out.reload_ms.push(ms);
        out.reload_writes.push(r.map_writes as u64);
    }
    Ok(())
}
