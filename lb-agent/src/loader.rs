//! Loading the data path for a configuration: mount bpffs, load or adopt the
//! pinned object, attach it to the configured interfaces; and `apply_once`,
//! the agent-less loader behind `lb-ctl apply`.

use anyhow::{Context as _, Result};
use lb_config::{Config, XdpMode};
use lb_dataplane::{self as dataplane, Dataplane, Options, ensure_bpffs, plan};

use crate::{desired, neigh};

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
    if let Some(m) = ensure_bpffs(pin_dir)? {
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

/// What [`apply_once`] did.
#[derive(Clone, Debug)]
pub struct Applied {
    /// Whether the data path was adopted from pins rather than loaded.
    pub adopted: bool,
    pub map_writes: usize,
    /// Backends whose next hop could not be resolved (kept down), in words.
    pub unresolved: Vec<String>,
}

/// Loads or adopts the data path, resolves every backend's next hop and makes
/// the maps match `cfg`, without an agent; the data path keeps forwarding.
pub fn apply_once(cfg: &Config) -> Result<Applied> {
    let mut dp = open_attached(cfg)?;
    let adopted = dp.adopted();
    dp.tick()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let next_hops = rt.block_on(async {
        let r = neigh::Resolver::new()?;
        Ok::<_, neigh::NeighError>(desired::resolve(cfg, &r).await)
    })?;
    let unresolved = next_hops
        .iter()
        .filter_map(|(a, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("backend {a}: {e} (kept down)"))
        })
        .collect();
    let want = desired::build(cfg, &next_hops, desired::config_state);
    let mut actual = dp.actual().context("reading the pinned maps")?;
    let p = plan::plan_full(&actual, &want.into_iter().collect())?;
    let map_writes = plan::apply(&mut dp, &mut actual, p).context("writing the maps")?;
    Ok(Applied {
        adopted,
        map_writes,
        unresolved,
    })
}
