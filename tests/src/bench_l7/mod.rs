//! `cargo xtask bench l7`: requests per second, p99 latency and CPU per
//! request of lb's L7 proxy against HAProxy 2.6 and nginx as a proxy, on
//! the seed's configuration, with nginx servers behind all of them and
//! wrk in front (method: docs/benchmarks.md, "bench l7").
//!
//! Everything runs on loopback in the host's namespace. The proxies stay up
//! for a whole mode; the runs alternate between them, the order rotating
//! from one round to the next, so a slow phase of the machine falls on
//! every target alike.

mod cpu;
mod nginx;
mod table;
mod wrk;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use serde::Serialize;

use crate::bench_control::stats::median;
use crate::l7::procs::{Haproxy, Lb, free_port};
use crate::l7::seed;
use nginx::Nginx;

pub use table::table;

/// Parameters of one benchmark run.
#[derive(Clone, Debug)]
pub struct L7BenchArgs {
    /// Rounds: each target is measured once per round.
    pub rounds: usize,
    pub duration: Duration,
    pub connections: u32,
    pub wrk_threads: u32,
    /// HAProxy's `nbthread`, nginx's workers (proxy and servers); lb runs
    /// one worker per core, which this must match.
    pub proxy_threads: u32,
}

/// `target/bench/l7.json`: `modes` is the documented shape, the rest extras.
#[derive(Clone, Debug, Serialize)]
pub struct L7Report {
    pub modes: Vec<ModeReport>,
    pub rounds: usize,
    pub duration_s: u64,
    pub connections: u32,
    pub wrk_threads: u32,
    pub proxy_threads: u32,
    pub cores: usize,
    /// `/proc/loadavg` before and after.
    pub loadavg_before: String,
    pub loadavg_after: String,
}

/// One mode: the server side with keep-alive, or closed after each request.
#[derive(Clone, Debug, Serialize)]
pub struct ModeReport {
    pub mode: &'static str,
    pub lb: Figures,
    pub haproxy: Figures,
    pub nginx_proxy: Figures,
    pub direct: Figures,
}

/// Medians over the rounds, and each round's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Figures {
    pub rps: f64,
    pub p99_ms: f64,
    /// CPU (user + system, all threads and worker processes) of the proxy
    /// (for `direct`: of the nginx servers) per request, in µs.
    pub cpu_us_per_req: f64,
    pub runs: Vec<Run>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Run {
    pub rps: f64,
    pub p99_ms: f64,
    pub cpu_us_per_req: f64,
    pub errors: u64,
}

/// A fresh directory for one process's files.
fn workdir(kind: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("lb-bench-l7-{kind}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn loopback() -> Result<SocketAddr> {
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?)))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

pub fn l7(args: &L7BenchArgs, progress: &mut dyn FnMut(&str)) -> Result<L7Report> {
    ensure!(args.rounds >= 1, "at least one round");
    let loadavg_before = loadavg();
    let (web1, web2) = (loopback()?, loopback()?);
    let servers = Nginx::servers(&[web1, web2], args.proxy_threads)?;
    let mut modes = Vec::new();
    for (mode, server_close) in [("keepalive", false), ("server-close", true)] {
        progress(&format!("mode {mode}: starting lb, HAProxy and nginx"));
        modes.push(one_mode(
            args,
            mode,
            server_close,
            &servers,
            [web1, web2],
            progress,
        )?);
    }
    Ok(L7Report {
        modes,
        rounds: args.rounds,
        duration_s: args.duration.as_secs(),
        connections: args.connections,
        wrk_threads: args.wrk_threads,
        proxy_threads: args.proxy_threads,
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        loadavg_before,
        loadavg_after: loadavg(),
    })
}

/// A target under load: where wrk sends and whose CPU counts.
struct Target {
    name: &'static str,
    url: String,
    pid: u32,
    runs: Vec<Run>,
}

/// The three proxies of one mode, running, in front of `servers`; the
/// targets in the order lb, HAProxy, nginx, direct. Dropping the processes
/// stops them.
struct Proxies {
    _lb: Lb,
    _haproxy: Haproxy,
    _nginx: Nginx,
    targets: [Target; 4],
}

impl Proxies {
    fn start(
        proxy_threads: u32,
        server_close: bool,
        servers: &Nginx,
        web: [SocketAddr; 2],
    ) -> Result<Proxies> {
        let mut setup = seed::setup(web[0], web[0], web[1]);
        setup.threads = Some(proxy_threads);
        setup.defaults.http_server_close = server_close;
        let lb = Lb::start(&setup)?;
        let haproxy = Haproxy::start(&setup)?;
        let bind = loopback()?;
        let ngx = Nginx::proxy(bind, &web, proxy_threads, !server_close)?;
        let url = |a: SocketAddr| format!("http://{a}/");
        let targets = [
            ("lb", url(lb.binds[0]), lb.pid()),
            ("haproxy", url(haproxy.binds[0]), haproxy.pid()),
            ("nginx_proxy", url(bind), ngx.pid()),
            ("direct", url(web[0]), servers.pid()),
        ]
        .map(|(name, url, pid)| Target {
            name,
            url,
            pid,
            runs: Vec::new(),
        });
        Ok(Proxies {
            _lb: lb,
            _haproxy: haproxy,
            _nginx: ngx,
            targets,
        })
    }
}

/// Starts one mode's rig and keeps it up until `wait` returns, for
/// profiling a proxy by hand; `shown` is told each target's URL and PID.
pub fn hold(
    proxy_threads: u32,
    server_close: bool,
    shown: &mut dyn FnMut(&str),
    wait: impl FnOnce(),
) -> Result<()> {
    let (web1, web2) = (loopback()?, loopback()?);
    let servers = Nginx::servers(&[web1, web2], proxy_threads)?;
    let proxies = Proxies::start(proxy_threads, server_close, &servers, [web1, web2])?;
    for t in &proxies.targets {
        shown(&format!("{:<12} {:<28} pid {}", t.name, t.url, t.pid));
    }
    wait();
    Ok(())
}

fn one_mode(
    args: &L7BenchArgs,
    mode: &'static str,
    server_close: bool,
    servers: &Nginx,
    web: [SocketAddr; 2],
    progress: &mut dyn FnMut(&str),
) -> Result<ModeReport> {
    let mut proxies = Proxies::start(args.proxy_threads, server_close, servers, web)?;
    let targets = &mut proxies.targets;
    for t in targets.iter() {
        // Warm-up: connections, caches, the proxies' idle pools.
        wrk::run(
            &t.url,
            args.wrk_threads,
            args.connections,
            Duration::from_secs(1),
        )?;
    }
    for round in 0..args.rounds {
        for k in 0..targets.len() {
            let t = &mut targets[(k + round) % 4];
            progress(&format!("mode {mode}, round {}: {}", round + 1, t.name));
            let run = measure(args, t)?;
            t.runs.push(run);
        }
    }
    let [lb_f, h, n, d] = proxies.targets.map(|t| figures(t.runs));
    Ok(ModeReport {
        mode,
        lb: lb_f,
        haproxy: h,
        nginx_proxy: n,
        direct: d,
    })
}

fn measure(args: &L7BenchArgs, t: &Target) -> Result<Run> {
    let before = cpu::tree_secs(t.pid)?;
    let w = wrk::run(&t.url, args.wrk_threads, args.connections, args.duration)?;
    let used = cpu::tree_secs(t.pid)? - before;
    Ok(Run {
        rps: w.rps,
        p99_ms: w.p99_ms,
        cpu_us_per_req: used * 1e6 / w.requests.max(1) as f64,
        errors: w.errors,
    })
}

fn figures(runs: Vec<Run>) -> Figures {
    let of = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    Figures {
        rps: of(|r| r.rps),
        p99_ms: of(|r| r.p99_ms),
        cpu_us_per_req: of(|r| r.cpu_us_per_req),
        runs,
    }
}
