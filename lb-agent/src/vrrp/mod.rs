//! VRRP: the agent owns the VIPs the way keepalived's `vrrp_instance` does,
//! and speaks its protocol (v2, RFC 3768; v3, RFC 5798) so that a keepalived
//! on the other box is an ordinary peer. docs/vrrp.md has the whole story.
//!
//! - `codec`: adverts on the wire; `validate`: receive checks; `machine`:
//!   the RFC state machine, pure;
//! - `io`: the raw socket; `netlink`: kernel calls; `addresses`: adding,
//!   announcing and removing VIPs; `vmac`: the virtual MAC;
//! - `track`: scripts, interfaces and pools moving priority or FAULT;
//!   `group`: sync groups; `notify`: per-instance scripts;
//! - `supervisor`: the watchdog child that releases everything when the
//!   agent dies; `status`: the board behind `GET /v1/vrrp` and metrics;
//! - `instance`: one task per instance; this module builds and starts them.
//!
//! The agent calls [`prefork`] before its runtime starts (the watchdog is a
//! forked child), [`start`] once its data path is in line with the
//! configuration (a node must not take a VIP it cannot serve yet), and
//! [`Vrrp::stop`] when it stops (every master resigns with a priority-0
//! advert).

pub mod addresses;
pub mod codec;
pub mod group;
pub mod instance;
pub mod io;
pub mod machine;
pub mod netlink;
pub mod notify;
pub mod status;
pub mod supervisor;
pub mod track;
pub mod validate;
pub mod vmac;

mod setup;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lb_config::Config;
use tokio::sync::watch;

use crate::events::EventBus;
use group::Group;
use supervisor::Watchdog;

pub use status::snapshot;

static WATCHDOG: OnceLock<Arc<Watchdog>> = OnceLock::new();

/// How long stopping waits for every instance to resign and release.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Forks the watchdog when VRRP is configured. Call while the process has
/// one thread (before the async runtime).
pub fn prefork(cfg: &Config) {
    if cfg.vrrp.is_empty() {
        return;
    }
    match Watchdog::spawn() {
        Ok(w) => {
            let _ = WATCHDOG.set(Arc::new(w));
        }
        Err(e) => tracing::error!(
            "vrrp: cannot fork the watchdog ({e}); a killed agent would leave its addresses behind"
        ),
    }
}

/// The running instances, on a thread of their own.
pub struct Vrrp {
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts every instance of `cfg.vrrp` (nothing when there is none) on the
/// `lb-vrrp` thread, with a runtime of its own: adverts are due every
/// advert interval (10 ms and up), and neither a busy proxy nor a blocking
/// call on the agent's runtime may delay them past the backups' down timer,
/// which would make a live master look dead (keepalived runs VRRP in a
/// process of its own for the same reason).
pub fn start(events: &EventBus, cfg: &Config) -> Vrrp {
    let (stop, stopped) = watch::channel(false);
    if cfg.vrrp.is_empty() {
        return Vrrp { stop, thread: None };
    }
    // The rows first, here: `lb-ctl vrrp status` lists every instance as
    // soon as the agent is ready, before its thread has built them.
    let rows: Vec<usize> = cfg
        .vrrp
        .instances
        .iter()
        .map(|i| setup::register(i, cfg.vrrp.group_of(&i.name).map(|g| g.name.as_str())))
        .collect();
    let (events, cfg) = (events.clone(), cfg.clone());
    let spawned = std::thread::Builder::new()
        .name("lb-vrrp".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(run(events, cfg, rows, stopped)),
                Err(e) => tracing::error!("vrrp: cannot start its runtime ({e}); no instance runs"),
            }
        });
    let thread = spawned
        .inspect_err(|e| tracing::error!("vrrp: cannot start its thread ({e}); no instance runs"))
        .ok();
    Vrrp { stop, thread }
}

/// Every instance (on its status row, `rows`) and what it tracks, until
/// `stopped`.
async fn run(events: EventBus, cfg: Config, rows: Vec<usize>, stopped: watch::Receiver<bool>) {
    let facts = track::start(&cfg.vrrp, &cfg, &events);
    let groups: BTreeMap<String, Group> = cfg
        .vrrp
        .sync_groups
        .iter()
        .map(|g| (g.name.clone(), Group::new(&g.name)))
        .collect();
    let all = Arc::new(cfg.vrrp.clone());
    let vmacs = open_vmacs(&cfg);
    let mut tasks = Vec::new();
    for (i, row) in cfg.vrrp.instances.iter().zip(rows) {
        let ctx = setup::Context {
            all: all.clone(),
            events: events.clone(),
            group: cfg
                .vrrp
                .group_of(&i.name)
                .and_then(|g| groups.get(&g.name))
                .cloned(),
            watchdog: WATCHDOG.get().cloned(),
            script_timeout: cfg.notify.script_timeout,
            vmacs: vmacs.clone(),
        };
        let task = setup::run(i.clone(), ctx, row, facts.clone(), stopped.clone());
        tasks.push(tokio::spawn(task));
    }
    futures_util::future::join_all(tasks).await;
}

/// The data path's virtual-MAC record, when instances use a virtual MAC
/// and a data path is pinned (the agent loads it before VRRP starts).
fn open_vmacs(cfg: &Config) -> Option<Arc<lb_dataplane::rx::Vmacs>> {
    if !cfg.vrrp.instances.iter().any(|i| i.use_vmac) {
        return None;
    }
    match lb_dataplane::rx::Vmacs::open(&cfg.agent.bpffs) {
        Ok(v) => v.map(Arc::new),
        Err(e) => {
            tracing::error!(
                "vrrp: cannot open the data path's virtual-MAC map ({e}); frames sent to a \
                 virtual MAC are passed to the kernel, not balanced"
            );
            None
        }
    }
}

impl Vrrp {
    /// Every master resigns (priority 0) and releases its addresses; every
    /// instance runs its `notify_stop`.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let Some(thread) = self.thread else { return };
        let joined = tokio::task::spawn_blocking(move || thread.join());
        if tokio::time::timeout(STOP_TIMEOUT, joined).await.is_err() {
            tracing::warn!(
                "vrrp: instances did not stop in time; the watchdog releases what is left"
            );
        }
    }
}
