//! `via_service`: a check whose packets go to the *service's* address but
//! to the backend's MAC, as clients' packets do in direct routing, so a
//! backend that lost the service address on its loopback fails its check
//! (Katran tunnels its checks for the same reason).
//!
//! Policy routing does it. Each backend checked via a service gets a mark M
//! (also its routing table's id); the check's sockets carry `SO_MARK` M,
//! and a rule `fwmark M lookup M` sends them to a table holding one route,
//! `SERVICE via BACKEND dev IF` (`netlink`). Marks are handed out here, on
//! the reconciler's thread ([`mark`], [`retain`]); a thread of its own keeps
//! the kernel in line (installs, removes, and at start removes what an
//! earlier run left in lb's range) and publishes what is in place, which a
//! check waits for ([`ready`]) before it sends anything.
//!
//! Rules and tables are per network namespace, as is the agent: there is
//! one registry per process.

mod netlink;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use lb_api::types::CheckFailure;
use tokio::sync::watch;

use super::Target;

/// The first mark (and table id) lb uses: "LB" and a slot number.
pub const FIRST: u32 = 0x4c42_0000;
/// How many: marks and tables are `FIRST..FIRST + SLOTS`.
pub const SLOTS: u32 = 0x1_0000;
/// The preference of lb's rules (`ip rule` shows them as `100:`).
pub const PRIORITY: u32 = 100;
/// How soon a failed installation is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// Where a `via_service` check goes: the service's address, through the
/// backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detour {
    pub service: IpAddr,
    pub backend: IpAddr,
}

/// What is in place per mark: the detour, and whether it is installed.
type Installed = BTreeMap<u32, (Detour, Result<(), String>)>;

/// The mark for backend `backend` of pool `pool`, checked through `detour`;
/// `None` when every mark is taken.
pub fn mark(pool: &str, backend: &str, detour: Detour) -> Option<u32> {
    let via = registry();
    let mut via = via.lock().unwrap_or_else(PoisonError::into_inner);
    let mark = via.marks.assign(pool, backend, detour);
    via.publish();
    if mark.is_none() {
        tracing::error!(pool, backend, "via_service: all {SLOTS} marks are taken");
    }
    mark
}

/// Frees the marks of the backends of `scope` (every pool: `None`) that are
/// no longer checked via a service in `targets`.
pub fn retain(scope: Option<&BTreeSet<String>>, targets: &[Target]) {
    let keep: BTreeSet<(String, String)> = targets
        .iter()
        .filter(|t| t.aim.mark.is_some())
        .map(|t| (t.aim.pool.clone(), t.aim.backend.clone()))
        .collect();
    let via = registry();
    let mut via = via.lock().unwrap_or_else(PoisonError::into_inner);
    via.marks.retain(scope, &keep);
    via.publish();
}

/// Waits until the route for `mark` is in place as currently wanted.
pub async fn ready(mark: u32) -> Result<(), CheckFailure> {
    let (want, mut installed) = {
        let via = registry().lock().unwrap_or_else(PoisonError::into_inner);
        (via.marks.detours.get(&mark).copied(), via.installed.clone())
    };
    let io = |detail: String| CheckFailure::Io { detail };
    let want = want.ok_or_else(|| io(format!("via_service: mark {mark:#x} is not in use")))?;
    let seen = installed
        .wait_for(|i| i.get(&mark).is_some_and(|(d, _)| *d == want))
        .await
        .map_err(|_| io("via_service: the route keeper stopped".into()))?;
    match &seen[&mark].1 {
        Ok(()) => Ok(()),
        Err(e) => Err(io(format!("via_service: {e}"))),
    }
}

/// Marks by backend, and the detour of each mark.
#[derive(Default)]
struct Marks {
    by_backend: BTreeMap<(String, String), u32>,
    detours: BTreeMap<u32, Detour>,
    /// Whether `detours` changed since the route keeper was told.
    changed: bool,
}

impl Marks {
    fn assign(&mut self, pool: &str, backend: &str, detour: Detour) -> Option<u32> {
        let key = (pool.to_owned(), backend.to_owned());
        let mark = match self.by_backend.get(&key) {
            Some(&m) => m,
            None => {
                let m = (FIRST..FIRST + SLOTS).find(|m| !self.detours.contains_key(m))?;
                self.by_backend.insert(key, m);
                m
            }
        };
        self.changed |= self.detours.insert(mark, detour) != Some(detour);
        Some(mark)
    }

    fn retain(&mut self, scope: Option<&BTreeSet<String>>, keep: &BTreeSet<(String, String)>) {
        let (detours, changed) = (&mut self.detours, &mut self.changed);
        self.by_backend.retain(|key, mark| {
            let stays = scope.is_some_and(|s| !s.contains(&key.0)) || keep.contains(key);
            if !stays {
                detours.remove(mark);
                *changed = true;
            }
            stays
        });
    }
}

struct Registry {
    marks: Marks,
    want: watch::Sender<BTreeMap<u32, Detour>>,
    installed: watch::Receiver<Installed>,
}

impl Registry {
    /// Tells the route keeper, if anything changed.
    fn publish(&mut self) {
        if std::mem::take(&mut self.marks.changed) {
            self.want.send_replace(self.marks.detours.clone());
        }
    }
}

/// The registry, and its route keeper started with it.
fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let (want, want_rx) = watch::channel(BTreeMap::new());
        let (installed_tx, installed) = watch::channel(Installed::new());
        let started = std::thread::Builder::new()
            .name("lb-via".into())
            .spawn(move || keep_routes(want_rx, installed_tx));
        if let Err(e) = started {
            tracing::error!(error = %e, "via_service: cannot start the route keeper");
        }
        Mutex::new(Registry {
            marks: Marks::default(),
            want,
            installed,
        })
    })
}

/// The route keeper's thread: its own small runtime, so it depends on no
/// caller's.
fn keep_routes(want: watch::Receiver<BTreeMap<u32, Detour>>, installed: watch::Sender<Installed>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match rt {
        Ok(rt) => rt.block_on(keeper(want, installed)),
        Err(e) => tracing::error!(error = %e, "via_service: no runtime for the route keeper"),
    }
}

/// Makes the kernel hold the routes wanted, until the registry goes.
async fn keeper(
    mut want: watch::Receiver<BTreeMap<u32, Detour>>,
    installed: watch::Sender<Installed>,
) {
    let kernel = netlink::Netlink::open();
    if let Ok(k) = &kernel {
        match k.clear().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                removed = n,
                "via_service: removed an earlier run's rules and routes"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "via_service: removing an earlier run's rules and routes")
            }
        }
    }
    let mut done = BTreeMap::new();
    loop {
        let target = want.borrow_and_update().clone();
        let now = match &kernel {
            Ok(k) => apply(k, &mut done, &target).await,
            Err(e) => target
                .iter()
                .map(|(&m, &d)| (m, (d, Err(e.clone()))))
                .collect(),
        };
        let failed = now.values().any(|(_, r)| r.is_err());
        installed.send_replace(now);
        let next = if failed {
            tokio::time::timeout(RETRY, want.changed())
                .await
                .unwrap_or(Ok(()))
        } else {
            want.changed().await
        };
        if next.is_err() {
            return;
        }
    }
}

/// Removes what is no longer wanted, installs what is missing; `done` is
/// what the kernel holds.
async fn apply(
    kernel: &netlink::Netlink,
    done: &mut BTreeMap<u32, Detour>,
    want: &BTreeMap<u32, Detour>,
) -> Installed {
    let stale: Vec<(u32, Detour)> = done
        .iter()
        .filter(|(m, d)| want.get(m) != Some(d))
        .map(|(&m, &d)| (m, d))
        .collect();
    for (mark, d) in stale {
        if let Err(e) = kernel.remove(mark, d).await {
            tracing::warn!(error = %e, "via_service");
        }
        done.remove(&mark);
    }
    let mut now = Installed::new();
    for (&mark, &d) in want {
        let result = if done.get(&mark) == Some(&d) {
            Ok(())
        } else {
            kernel.install(mark, d).await
        };
        if result.is_ok() {
            done.insert(mark, d);
        }
        now.insert(mark, (d, result));
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detour(last: u8) -> Detour {
        Detour {
            service: [10, 77, 100, 1].into(),
            backend: [10, 77, 0, last].into(),
        }
    }

    #[test]
    fn a_backend_keeps_its_mark_and_a_freed_mark_is_reused() {
        let mut m = Marks::default();
        assert_eq!(m.assign("web", "b1", detour(101)), Some(FIRST));
        assert_eq!(m.assign("web", "b2", detour(102)), Some(FIRST + 1));
        assert_eq!(
            m.assign("web", "b1", detour(111)),
            Some(FIRST),
            "a new address keeps the mark"
        );
        assert_eq!(m.detours[&FIRST], detour(111));
        assert!(std::mem::take(&mut m.changed));
        assert_eq!(m.assign("web", "b2", detour(102)), Some(FIRST + 1));
        assert!(!m.changed, "the same detour again changes nothing");
        m.retain(None, &BTreeSet::from([("web".into(), "b2".into())]));
        assert!(m.changed);
        assert_eq!(m.detours.keys().copied().collect::<Vec<_>>(), [FIRST + 1]);
        assert_eq!(
            m.assign("api", "a1", detour(103)),
            Some(FIRST),
            "b1's mark is free again"
        );
    }

    #[test]
    fn retain_leaves_pools_out_of_scope_alone() {
        let mut m = Marks::default();
        m.assign("web", "b1", detour(101));
        m.assign("api", "a1", detour(102));
        m.retain(Some(&BTreeSet::from(["web".to_owned()])), &BTreeSet::new());
        assert_eq!(m.by_backend.len(), 1);
        assert!(
            m.by_backend
                .contains_key(&("api".to_owned(), "a1".to_owned()))
        );
        assert_eq!(m.detours.len(), 1);
    }
}
