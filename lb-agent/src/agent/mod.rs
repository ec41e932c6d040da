//! `lb-ctl agent`: the daemon. Loads (or adopts) the pinned data path, makes it
//! match the configuration file plus the persisted runtime overrides, and
//! serves the control API and metrics until told to stop.
//!
//! Lifecycle, and what survives what:
//! - **start**: adopts every map and XDP link pinned under `agent.bpffs`
//!   (flows, counters and rings carry on) and switches the links to the new
//!   program in one atomic update; a fresh machine loads and pins.
//! - **SIGHUP / `lb-ctl reload`**: re-reads the file; an invalid file is
//!   rejected with its diagnostics and nothing changes; a valid one is diffed
//!   and only what changed is written. Runtime overrides stay.
//! - **SIGTERM / SIGINT**: the agent exits and **the data path keeps
//!   forwarding** from its pins (so do `kill -9` and crashes); a restarted
//!   agent adopts it. `lb-ctl teardown` is the way to remove it.

mod neighbours;
mod notify;
mod reconciler;

use std::{path::Path, sync::mpsc, thread};

use anyhow::{Context as _, Result};
use lb_api::events::EventKind;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
};

use lb_config::{self as config, LoadError, LogLevel};

use crate::{
    api::Request,
    desired,
    events::EventBus,
    http::{Ctx, Servers},
    loader::open_attached,
    metrics::BuildInfo,
    state,
};
use neighbours::NeighbourEvent;

/// How the agent ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stopped on a signal or after a teardown.
    Stopped,
    /// The configuration file is invalid; nothing was started.
    InvalidConfig,
    /// The reconciler failed while running.
    Failed,
}

/// What the reconciler thread receives.
pub enum Msg {
    Request(Box<Request>),
    NextHops(desired::NextHops),
    /// A backend's health check changed its verdict.
    Health(crate::health::Change),
    Neighbour(NeighbourEvent),
    Shutdown,
}

/// Runs the agent until SIGTERM/SIGINT or a teardown request.
pub fn run(config_path: &Path) -> Result<Outcome> {
    let checked = match config::load(config_path) {
        Ok(c) => c,
        Err(LoadError::Invalid(d)) => {
            eprintln!("{d}");
            eprintln!(
                "{}: not starting ({} errors)",
                config_path.display(),
                d.error_count()
            );
            return Ok(Outcome::InvalidConfig);
        }
        Err(e) => return Err(e.into()),
    };
    for w in &checked.warnings {
        tracing::warn!("{w}");
    }
    crate::vrrp::prefork(&checked.config);
    // The L7 proxy runs here too: a worker per core.
    let workers = thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("lb-agent")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(agent(config_path, checked.config))
}

async fn agent(config_path: &Path, cfg: config::Config) -> Result<Outcome> {
    notify::status("loading the data path");
    let mut dp = open_attached(&cfg)?;
    let adopted = dp.adopted();
    tracing::info!(
        bpffs = %cfg.agent.bpffs.display(),
        adopted,
        interfaces = ?cfg.interfaces.iter().map(|i| &i.name).collect::<Vec<_>>(),
        "{} the data path",
        if adopted { "adopted" } else { "loaded" }
    );
    if cfg.agent.ebpf_log != LogLevel::Off
        && let Some(logger) = dp.take_logger()
    {
        tokio::spawn(pump_ebpf_log(logger));
    }
    let events = EventBus::new();
    tokio::spawn(crate::events::log(events.subscribe()));
    crate::notify::start(&events, config_path, &cfg);
    let running = start_reconciler(config_path, &cfg, dp, &events).await?;
    // Only now: a node that became master before its data path served the
    // configured services would take the VIP and refuse its traffic.
    let vrrp = crate::vrrp::start(&events, &cfg);
    events.publish(EventKind::AgentStarted {
        version: env!("CARGO_PKG_VERSION").into(),
        adopted,
    });
    let api_tx = api_bridge(running.to.clone())?;

    // Bind everything before saying READY: an address we cannot bind fails the start.
    let servers = Servers::bind(&cfg.agent)
        .await?
        .with_stats(&cfg.stats, &cfg.proxy.log_tag)
        .await?;
    let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
    let ctx = Ctx {
        requests: api_tx.clone(),
        events: events.clone(),
        build: BuildInfo::current(),
    };
    let serving = tokio::spawn(servers.serve(ctx, async move {
        let _ = shutdown_rx.wait_for(|s| *s).await;
    }));
    notify::ready();
    tracing::info!(socket = %cfg.agent.socket.display(), "agent ready");
    let mut stopped = running.stopped;
    wait_for_stop(config_path, &api_tx, &mut stopped).await?;

    notify::stopping();
    events.publish(EventKind::AgentStopping);
    vrrp.stop().await;
    let _ = shutdown_tx.send(true);
    let _ = running.to.send(Msg::Shutdown);
    running.proxy.stop().await;
    let worker = running.worker;
    let joined = tokio::task::spawn_blocking(move || worker.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        tracing::error!("the reconciler thread panicked");
        return Ok(Outcome::Failed);
    }
    // Servers finish answering (a teardown's reply) and remove their socket.
    let _ = serving.await;
    tracing::info!(
        bpffs = %cfg.agent.bpffs.display(),
        "agent stopped; the data path keeps forwarding from its pins (`lb-ctl teardown` removes it)"
    );
    Ok(Outcome::Stopped)
}

/// The reconciler thread, how to reach it, and whether it stopped by itself.
struct Running {
    worker: thread::JoinHandle<()>,
    to: mpsc::Sender<Msg>,
    stopped: watch::Receiver<bool>,
    proxy: crate::proxy::Running,
}

/// Reads the runtime overrides, resolves every backend's next hop, makes
/// the data path match, and starts the reconciler thread with the helpers
/// that feed it (next-hop resolver, neighbour watch).
async fn start_reconciler(
    config_path: &Path,
    cfg: &config::Config,
    dp: lb_dataplane::Dataplane,
    events: &EventBus,
) -> Result<Running> {
    let state_path = cfg.agent.state_dir.join(state::FILE_NAME);
    let overrides = state::load(&state_path)
        .with_context(|| format!("reading runtime overrides {}", state_path.display()))?;
    // The proxy binds before READY: a frontend that cannot listen fails the start.
    let (feed, proxy) = crate::proxy::start(cfg, &state::effective(cfg, &overrides).pools)
        .await
        .context("starting the L7 proxy")?;
    let (to, inbox) = mpsc::channel::<Msg>();
    let (resolve_tx, resolve_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(neighbours::resolver(resolve_rx, to.clone()));
    tokio::spawn(neighbours::watch(to.clone()));
    // Resolve every backend before the first reconcile, so a starting agent
    // does not publish services whose backends are all still "resolving"
    // (their rings would be empty for those milliseconds).
    notify::status("resolving backend next hops");
    let resolved = {
        let effective = state::effective(cfg, &overrides);
        let resolver = crate::neigh::Resolver::new().context("opening a netlink socket")?;
        desired::resolve(desired::targets(&effective.pools), &resolver).await
    };
    let checks = {
        let to = to.clone();
        crate::health::Checks::new(
            cfg.health.concurrency,
            tokio::runtime::Handle::current(),
            move |change| {
                let _ = to.send(Msg::Health(change));
            },
        )
    };
    let mut reconciler = reconciler::Reconciler::new(reconciler::Start {
        dp,
        config_path: config_path.to_owned(),
        file: cfg.clone(),
        overrides,
        writer: state::Writer::spawn(state_path.clone())
            .context("starting the runtime-overrides writer")?,
        state_path,
        resolve: resolve_tx,
        resolved,
        events: events.clone(),
        checks,
        proxy: feed,
    })?;
    let writes = reconciler
        .start()
        .map_err(|e| anyhow::anyhow!("first reconcile: {}", e.reason))?;
    tracing::info!(
        map_writes = writes,
        services = cfg.services.len(),
        "data path in line with the configuration"
    );
    let (stopped_tx, stopped) = watch::channel(false);
    let worker = thread::Builder::new()
        .name("lb-reconciler".into())
        .spawn(move || {
            reconciler.run(inbox, move || {
                let _ = stopped_tx.send(true);
            })
        })
        .context("starting the reconciler thread")?;
    Ok(Running {
        worker,
        to,
        stopped,
        proxy,
    })
}

/// The HTTP server speaks `Request`; the reconciler listens to `Msg`.
fn api_bridge(to: mpsc::Sender<Msg>) -> Result<mpsc::Sender<Request>> {
    let (api_tx, api_rx) = mpsc::channel::<Request>();
    thread::Builder::new()
        .name("lb-api-bridge".into())
        .spawn(move || {
            for r in api_rx {
                if to.send(Msg::Request(Box::new(r))).is_err() {
                    break;
                }
            }
        })
        .context("starting the API bridge")?;
    Ok(api_tx)
}

/// Serves signals until one says stop (SIGTERM, SIGINT) or the reconciler
/// stopped (teardown). SIGHUP reloads.
async fn wait_for_stop(
    config_path: &Path,
    api_tx: &mpsc::Sender<Request>,
    stopped: &mut watch::Receiver<bool>,
) -> Result<()> {
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading {}", config_path.display());
                // The reconciler logs and publishes the outcome.
                if crate::api::ask(api_tx, Request::Reload).await.is_err() {
                    tracing::debug!("reload on SIGHUP did not apply");
                }
            }
            _ = term.recv() => { tracing::info!("SIGTERM"); return Ok(()); }
            _ = int.recv() => { tracing::info!("SIGINT"); return Ok(()); }
            _ = stopped.wait_for(|s| *s) => return Ok(()),
        }
    }
}

/// Turns the data path's aya-log events into log records as they arrive.
async fn pump_ebpf_log(logger: lb_dataplane::EbpfLogger) {
    // SAFETY: the logger owns its ring buffer's fd, which stays open and the
    // same for as long as the AsyncFd owns the logger.
    let fd = match unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE)
    } {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the data path's log ring");
            return;
        }
    };
    let mut fd = fd;
    loop {
        let Ok(mut guard) = fd.readable_mut().await else {
            return;
        };
        guard.get_inner_mut().flush();
        guard.clear_ready();
    }
}
