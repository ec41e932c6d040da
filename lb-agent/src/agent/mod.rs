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

use std::{path::Path, sync::mpsc, thread, time::Duration};

use anyhow::{Context as _, Result};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{oneshot, watch},
};

use lb_config::{self as config, LoadError, LogLevel};

use crate::{
    api::{self, Request},
    loader::open_attached,
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
    Request(Request),
    NextHops(crate::desired::NextHops),
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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

    let state_path = cfg.agent.state_dir.join(state::FILE_NAME);
    let overrides = state::load(&state_path)
        .with_context(|| format!("reading runtime overrides {}", state_path.display()))?;

    let (to_reconciler, inbox) = mpsc::channel::<Msg>();
    let (resolve_tx, resolve_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(neighbours::resolver(resolve_rx, to_reconciler.clone()));
    tokio::spawn(neighbours::watch(to_reconciler.clone()));

    // Resolve every backend before the first reconcile, so a starting agent
    // does not publish VIPs whose backends are all still "resolving" (their
    // rings would be empty for those milliseconds).
    notify::status("resolving backend next hops");
    let resolved = {
        let effective = state::effective(&cfg, &overrides);
        let resolver = crate::neigh::Resolver::new().context("opening a netlink socket")?;
        crate::desired::resolve(&effective.config, &resolver).await
    };
    let mut reconciler = reconciler::Reconciler::new(
        dp,
        config_path.to_owned(),
        cfg.clone(),
        overrides,
        state_path,
        resolve_tx,
        resolved,
    )?;
    let writes = reconciler
        .start()
        .map_err(|e| anyhow::anyhow!("first reconcile: {}", e.reason))?;
    tracing::info!(
        map_writes = writes,
        vips = cfg.vips.len(),
        "data path in line with the configuration"
    );

    let (stopped_tx, mut stopped) = watch::channel(false);
    let worker = thread::Builder::new()
        .name("lb-reconciler".into())
        .spawn(move || {
            reconciler.run(inbox, move || {
                let _ = stopped_tx.send(true);
            })
        })
        .context("starting the reconciler thread")?;

    // The API speaks `Request`; the reconciler listens to `Msg`.
    let (api_tx, api_rx) = mpsc::channel::<Request>();
    {
        let to = to_reconciler.clone();
        thread::Builder::new()
            .name("lb-api-bridge".into())
            .spawn(move || {
                for r in api_rx {
                    if to.send(Msg::Request(r)).is_err() {
                        break;
                    }
                }
            })
            .context("starting the API bridge")?;
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // Bind everything before saying READY: a socket we cannot bind fails the start.
    let unix = api::server::UnixApi::bind(&cfg.agent.socket)
        .await
        .with_context(|| format!("binding the control socket {}", cfg.agent.socket.display()))?;
    {
        let (tx, sd) = (api_tx.clone(), until(shutdown_rx.clone()));
        tokio::spawn(async move {
            if let Err(e) = unix.serve(tx, sd).await {
                tracing::error!(error = %e, "control API stopped");
            }
        });
    }
    if let Some(addr) = cfg.agent.api_listen {
        let token_file = cfg
            .agent
            .api_token_file
            .clone()
            .context("agent.api_listen needs agent.api_token_file")?;
        let token = std::fs::read_to_string(&token_file)
            .with_context(|| format!("reading the API token {}", token_file.display()))?;
        let tcp = api::server::TcpApi::bind(addr, token)
            .await
            .with_context(|| format!("binding the TCP control API on {addr}"))?;
        let (tx, sd) = (api_tx.clone(), until(shutdown_rx.clone()));
        tokio::spawn(async move {
            if let Err(e) = tcp.serve(tx, sd).await {
                tracing::error!(%addr, error = %e, "TCP control API stopped");
            }
        });
    }
    if let Some(addr) = cfg.agent.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics endpoint {addr}"))?;
        let (tx, sd) = (api_tx.clone(), until(shutdown_rx.clone()));
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve_on(listener, tx, sd).await {
                tracing::error!(%addr, error = %e, "metrics endpoint stopped");
            }
        });
    }

    notify::ready();
    tracing::info!(socket = %cfg.agent.socket.display(), "agent ready");

    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading {}", config_path.display());
                let (reply, answer) = oneshot::channel();
                if api_tx.send(Request::Reload(reply)).is_err() {
                    break;
                }
                // The reconciler logs the outcome; nothing else to do here.
                let _ = answer.await;
            }
            _ = term.recv() => { tracing::info!("SIGTERM"); break; }
            _ = int.recv() => { tracing::info!("SIGINT"); break; }
            _ = stopped.wait_for(|s| *s) => { break; }
        }
    }

    notify::stopping();
    let _ = shutdown_tx.send(true);
    let _ = to_reconciler.send(Msg::Shutdown);
    let joined = tokio::task::spawn_blocking(move || worker.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        tracing::error!("the reconciler thread panicked");
        return Ok(Outcome::Failed);
    }
    // Give servers a moment to finish answering (a teardown's reply); they
    // remove their socket file themselves.
    tokio::time::sleep(Duration::from_millis(50)).await;
    tracing::info!(
        bpffs = %cfg.agent.bpffs.display(),
        "agent stopped; the data path keeps forwarding from its pins (`lb-ctl teardown` removes it)"
    );
    Ok(Outcome::Stopped)
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
