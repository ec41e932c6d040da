//! `lb-ctl apply -c FILE`: loads (or adopts) the pinned data path, attaches it
//! to the configured interfaces and makes its maps match the file, then exits,
//! leaving it forwarding. The minimal loader; the agent does the same on start
//! and on every reload.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::json;

use super::{Exit, Output};
use crate::{
    config::{self, Config, LoadError, XdpMode},
    dataplane::{self, Dataplane, Options},
    desired, neigh, reconcile, sys,
};

/// The data path's attach mode for a configured one.
pub fn xdp_mode(m: XdpMode) -> dataplane::XdpMode {
    match m {
        XdpMode::Native => dataplane::XdpMode::Driver,
        XdpMode::Generic => dataplane::XdpMode::Skb,
    }
}

/// Opens (or adopts) the pinned data path for `cfg` and attaches it to every
/// configured interface, detaching interfaces no longer configured.
pub fn open_attached(cfg: &Config) -> Result<Dataplane> {
    let pin_dir = &cfg.agent.bpffs;
    if let Some(m) = sys::ensure_bpffs(pin_dir)? {
        tracing::info!(mount = %m.display(), "mounted bpffs");
    }
    let mut dp = Dataplane::open(&Options {
        pin_dir: Some(pin_dir.clone()),
        flow_table_size: cfg.agent.flow_table_size,
        ebpf_log: cfg.agent.ebpf_log.into(),
    })
    .context("loading the XDP data path")?;
    for i in &cfg.interfaces {
        dp.attach(&i.name, xdp_mode(i.xdp_mode))
            .with_context(|| format!("attaching to {}", i.name))?;
    }
    for stale in dp.attached() {
        if !cfg.interfaces.iter().any(|i| i.name == stale) {
            dp.detach(&stale)?;
            tracing::info!(interface = %stale, "detached (no longer configured)");
        }
    }
    Ok(dp)
}

pub fn run(path: &Path, out: Output) -> Result<Exit> {
    let checked = match config::load(path) {
        Ok(c) => c,
        Err(LoadError::Invalid(d)) => {
            eprintln!("{d}");
            eprintln!(
                "{}: not applied ({} errors); nothing was changed",
                path.display(),
                d.error_count()
            );
            return Ok(Exit::BadInput);
        }
        Err(e) => return Err(e.into()),
    };
    for w in &checked.warnings {
        eprintln!("{w}");
    }
    let cfg = checked.config;
    let mut dp = open_attached(&cfg)?;
    let adopted = dp.adopted();
    dp.tick()?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let next_hops = rt.block_on(async {
        let r = neigh::Resolver::new()?;
        Ok::<_, neigh::NeighError>(desired::resolve(&cfg, &r).await)
    })?;
    let unresolved: Vec<String> = next_hops
        .iter()
        .filter_map(|(a, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("backend {a}: {e} (kept down)"))
        })
        .collect();
    for u in &unresolved {
        eprintln!("lb-ctl: warning: {u}");
    }
    let want = desired::build(&cfg, &next_hops, desired::config_state);
    let mut actual = dp.actual().context("reading the pinned maps")?;
    let plan = reconcile::plan(&actual, &want)?;
    let writes = reconcile::apply(&mut dp, &mut actual, plan).context("writing the maps")?;

    match out {
        Output::Json => println!(
            "{}",
            json!({
                "bpffs": cfg.agent.bpffs,
                "adopted": adopted,
                "interfaces": cfg.interfaces.iter().map(|i| &i.name).collect::<Vec<_>>(),
                "vips": cfg.vips.len(),
                "map_writes": writes,
                "unresolved": unresolved,
            })
        ),
        Output::Table => println!(
            "applied {}: {} VIPs on {} ({} map writes; {} data path at {})",
            path.display(),
            cfg.vips.len(),
            cfg.interfaces
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            writes,
            if adopted {
                "adopted the running"
            } else {
                "loaded a new"
            },
            cfg.agent.bpffs.display()
        ),
    }
    Ok(if unresolved.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}
