//! Tracking (keepalived `track_script`, `track_interface`, and lb's own
//! `track_pool`): what each tracked thing says, gathered in one [`Facts`]
//! channel, and the priority and FAULT an instance derives from it.
//!
//! keepalived's rule, for scripts, interfaces and pools alike: a positive
//! weight is added while the thing passes, a negative one subtracted while
//! it fails, and weight 0 makes a failure FAULT. The result stays within
//! 1..=254; the owner's 255 never moves. An instance's own interface is
//! always tracked with weight 0 (link down is FAULT), as keepalived does.

mod pools;
mod script;

use std::collections::BTreeMap;
use std::time::Duration;

use lb_api::vrrp::TrackStatus;
use lb_config::vrrp::{VrrpConfig, VrrpInstance};
use tokio::sync::watch;

use super::netlink;
use crate::events::EventBus;

/// How often links are looked at.
const LINK_POLL: Duration = Duration::from_millis(50);

/// What every tracked thing says now; `None`: not known yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub scripts: BTreeMap<String, Option<bool>>,
    pub links: BTreeMap<String, Option<bool>>,
    pub pools: BTreeMap<String, Option<bool>>,
}

/// Starts whatever the instances track; returns the channel of facts.
pub fn start(
    cfg: &VrrpConfig,
    file: &lb_config::Config,
    events: &EventBus,
) -> watch::Receiver<Facts> {
    let mut facts = Facts::default();
    for i in &cfg.instances {
        for s in &i.track_scripts {
            facts.scripts.insert(s.name.clone(), None);
        }
        let links = i
            .track_interfaces
            .iter()
            .map(|t| &t.name)
            .chain([&i.interface]);
        for l in links {
            facts.links.insert(l.clone(), None);
        }
        for p in &i.track_pools {
            facts.pools.insert(p.pool.clone(), None);
        }
    }
    // Links and pools are known at once; scripts once they have run.
    for (name, up) in facts.links.iter_mut() {
        *up = Some(netlink::link(name).is_ok_and(|l| l.up));
    }
    let pool_states = pools::initial(file);
    pools::publish_into(&pool_states, &mut facts);
    let (tx, rx) = watch::channel(facts.clone());
    for name in facts.scripts.keys() {
        if let Some(s) = cfg.script(name) {
            tokio::spawn(script::run(s.clone(), tx.clone()));
        }
    }
    if !facts.pools.is_empty() {
        tokio::spawn(pools::watch(pool_states, events.subscribe(), tx.clone()));
    }
    tokio::spawn(poll_links(facts.links.keys().cloned().collect(), tx));
    rx
}

async fn poll_links(names: Vec<String>, tx: watch::Sender<Facts>) {
    let mut tick = tokio::time::interval(LINK_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for n in &names {
            let up = netlink::link(n).map(|l| l.up).unwrap_or(false);
            tx.send_if_modified(|f| f.links.insert(n.clone(), Some(up)) != Some(Some(up)));
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// What `instance` tracks, as `facts` has it.
pub fn tracked(i: &VrrpInstance, cfg: &VrrpConfig, facts: &Facts) -> Vec<TrackStatus> {
    let one =
        |kind: &str, name: &str, weight: i32, known: &BTreeMap<String, Option<bool>>| TrackStatus {
            kind: kind.into(),
            name: name.into(),
            weight,
            ok: known.get(name).copied().flatten(),
        };
    let script_weight = |s: &lb_config::vrrp::TrackScriptRef| {
        s.weight
            .or_else(|| cfg.script(&s.name).map(|d| d.weight))
            .unwrap_or(0)
    };
    let mut out = vec![one("interface", &i.interface, 0, &facts.links)];
    out.extend(
        i.track_scripts
            .iter()
            .map(|s| one("script", &s.name, script_weight(s), &facts.scripts)),
    );
    out.extend(
        i.track_interfaces
            .iter()
            .map(|t| one("interface", &t.name, t.weight, &facts.links)),
    );
    out.extend(
        i.track_pools
            .iter()
            .map(|p| one("pool", &p.pool, p.weight, &facts.pools)),
    );
    out
}

/// The effective priority and, when some weight-0 thing fails (or is not
/// known yet), the FAULT reason.
pub fn effective(base: u8, owner: bool, tracked: &[TrackStatus]) -> (u8, Option<String>) {
    let mut priority = i32::from(base);
    let mut fault = None;
    for t in tracked {
        match (t.weight, t.ok) {
            (0, Some(true)) => {}
            (0, ok) => {
                let what = if ok.is_none() {
                    "not known yet"
                } else {
                    "failing"
                };
                fault.get_or_insert_with(|| format!("{} {} {what}", t.kind, t.name));
            }
            (w, Some(true)) if w > 0 => priority += w,
            (w, Some(false) | None) if w < 0 => priority += w,
            _ => {}
        }
    }
    if owner {
        return (base, fault);
    }
    (priority.clamp(1, 254) as u8, fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: &str, weight: i32, ok: Option<bool>) -> TrackStatus {
        TrackStatus {
            kind: kind.into(),
            name: "x".into(),
            weight,
            ok,
        }
    }

    #[test]
    fn keepalived_weights() {
        // The seed: chk_nginx weight 2 adds while nginx runs.
        assert_eq!(
            effective(100, false, &[t("script", 2, Some(true))]),
            (102, None)
        );
        assert_eq!(
            effective(100, false, &[t("script", 2, Some(false))]),
            (100, None)
        );
        assert_eq!(effective(100, false, &[t("script", 2, None)]), (100, None));
        assert_eq!(
            effective(100, false, &[t("pool", -60, Some(false))]),
            (40, None)
        );
        assert_eq!(effective(100, false, &[t("pool", -60, None)]), (40, None));
        assert_eq!(
            effective(100, false, &[t("pool", -60, Some(true))]),
            (100, None)
        );
        assert_eq!(
            effective(250, false, &[t("script", 20, Some(true))]),
            (254, None)
        );
        assert_eq!(
            effective(10, false, &[t("script", -20, Some(false))]),
            (1, None)
        );
        assert_eq!(
            effective(255, true, &[t("script", -20, Some(false))]),
            (255, None)
        );
    }

    #[test]
    fn weight_zero_failing_is_fault() {
        let (_, f) = effective(100, false, &[t("interface", 0, Some(false))]);
        assert_eq!(f.as_deref(), Some("interface x failing"));
        let (_, f) = effective(100, false, &[t("script", 0, None)]);
        assert_eq!(f.as_deref(), Some("script x not known yet"));
        assert_eq!(
            effective(100, false, &[t("interface", 0, Some(true))]).1,
            None
        );
    }
}
