//! `lb-ctl pool list|add|remove`: the named groups of backends (HAProxy
//! `backend` sections) that services send traffic to; and how a pool and
//! its backends are printed, here and in `status` and `backend list`.

use anyhow::Result;
use clap::Subcommand;

use super::{
    Exit, Output, answer,
    change::{Words, report},
    table::Table,
};
use lb_api::{
    client::Client,
    paths::Route,
    types::{AddPool, BackendStatus, PoolStatus},
};

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// List the pools with their backends and the services using them.
    List,
    /// Add an empty pool at runtime (kept in the state file until removed);
    /// `lb-ctl backend add POOL ...` fills it.
    Add {
        /// The pool's name.
        name: String,
    },
    /// Remove a pool; no service may be using it.
    Remove {
        /// The pool's name.
        name: String,
    },
}

pub async fn run(cmd: PoolCommand, client: &Client, out: Output) -> Result<Exit> {
    match cmd {
        PoolCommand::List => {
            let answer = answer::get(client, &Route::Pools.path()).await?;
            answer.show(out, |p: &Vec<PoolStatus>| {
                render_pools(p, super::table::unix_now())
            })
        }
        PoolCommand::Add { name } => {
            let body = AddPool {
                name: name.clone(),
                backends: Vec::new(),
                check: None,
            };
            report(
                out,
                Words::add(&format!("pool {name}")),
                answer::post(client, &Route::Pools.path(), &body),
            )
            .await
        }
        PoolCommand::Remove { name } => {
            report(
                out,
                Words::remove(&format!("pool {name}")),
                answer::delete(client, &Route::Pool(name.clone()).path()),
            )
            .await
        }
    }
}

/// Every pool, a blank line between them; `now` (unix seconds) dates changes.
pub fn render_pools(pools: &[PoolStatus], now: u64) -> String {
    if pools.is_empty() {
        return "no pools\n".into();
    }
    let blocks: Vec<String> = pools.iter().map(|p| render_pool(p, now)).collect();
    blocks.join("\n")
}

/// `pool web (config; services: web, web-tls)`, then its backends.
pub fn render_pool(p: &PoolStatus, now: u64) -> String {
    let services = if p.services.is_empty() {
        "no services".to_owned()
    } else {
        format!("services: {}", p.services.join(", "))
    };
    let head = format!("pool {} ({}; {services})\n", p.name, p.source.as_str());
    head + &render_backends(&p.backends, 2, now)
}

/// A pool's backends as a table, then footnotes for runtime overrides
/// (`drain*` — `* b2: runtime override of drain (config: up)`). CHECK is
/// its health check (see [`check_cell`]), SINCE when its state last
/// changed, and the last column why it cannot take traffic, or else its
/// next hop.
pub fn render_backends(backends: &[BackendStatus], indent: usize, now: u64) -> String {
    let pad = " ".repeat(indent);
    if backends.is_empty() {
        return format!("{pad}(no backends)\n");
    }
    let head = [
        "NAME",
        "ADDRESS",
        "PORT",
        "STATE",
        "WEIGHT",
        "SOURCE",
        "CHECK",
        "SINCE",
        "NEXT-HOP/WHY",
    ];
    let mut t = Table::new(&head).right(&[2, 4]).indent(indent);
    for b in backends {
        let state = marked(b.state.as_str(), b.state_override.is_some());
        let weight = marked(&b.weight.to_string(), b.weight_override.is_some());
        t.row([
            b.name.clone(),
            b.address.to_string(),
            b.port.map_or("-".to_owned(), |p| p.to_string()),
            state,
            weight,
            b.source.as_str().to_owned(),
            check_cell(b),
            b.since
                .map_or("-".to_owned(), |t| super::table::ago(t, now)),
            next_hop_or_why(b),
        ]);
    }
    let mut out = t.render();
    for n in backends.iter().flat_map(overrides) {
        out.push_str(&format!("{pad}{n}\n"));
    }
    out
}

/// Footnotes for a backend's runtime overrides.
fn overrides(b: &BackendStatus) -> Vec<String> {
    let state = b.state_override.map(|o| {
        let config = b.config_state.map_or("none".to_owned(), |s| s.to_string());
        format!("* {}: runtime override of {o} (config: {config})", b.name)
    });
    let weight = b.weight_override.map(|o| {
        let config = b.config_weight.map_or("none".to_owned(), |w| w.to_string());
        format!("* {}: runtime weight {o} (config: {config})", b.name)
    });
    state.into_iter().chain(weight).collect()
}

/// `value*` when a runtime override set it.
fn marked(value: &str, overridden: bool) -> String {
    if overridden {
        format!("{value}*")
    } else {
        value.to_owned()
    }
}

/// A backend's check in a few words: `http ok 1.2ms` while healthy,
/// `http failing 1/3` while failures count toward `fall`, `http down` while
/// it holds the backend down, `http rising 1/2` while successes count
/// toward `rise`, `http pending` before the first result; `-` unchecked.
fn check_cell(b: &BackendStatus) -> String {
    let Some(c) = &b.check else {
        return "-".into();
    };
    let Some(last) = &c.last else {
        return format!("{} pending", c.check);
    };
    match (c.healthy, c.progress) {
        (true, 0) => format!("{} ok {:.1}ms", c.check, last.duration_ms),
        (true, p) => format!("{} failing {p}/{}", c.check, c.threshold),
        (false, 0) => format!("{} down", c.check),
        (false, p) => format!("{} rising {p}/{}", c.check, c.threshold),
    }
}

fn next_hop_or_why(b: &BackendStatus) -> String {
    match (&b.down_reason, &b.next_hop) {
        (Some(why), _) => why.to_string(),
        (None, Some(n)) => format!("{} (ifindex {})", n.mac, n.ifindex),
        (None, None) => "-".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lb_api::types::{BackendState, Counters, DownReason, NextHopInfo, Source};
    use lb_config::AdminState;

    /// A backend from the file, up, with a resolved next hop.
    pub(crate) fn backend(name: &str, state: BackendState) -> BackendStatus {
        BackendStatus {
            name: name.into(),
            address: "10.0.1.1".parse().unwrap(),
            port: None,
            weight: 100,
            config_weight: Some(100),
            weight_override: None,
            admin: AdminState::Up,
            config_state: Some(AdminState::Up),
            state_override: None,
            state,
            down_reason: None,
            check: None,
            since: None,
            source: Source::Config,
            next_hop: Some(NextHopInfo {
                ifindex: 3,
                mac: "02:00:00:00:00:01".into(),
            }),
            counters: Counters::default(),
        }
    }

    #[test]
    fn marks_overrides_with_footnotes_and_says_why() {
        let mut b2 = backend("b2", BackendState::Drain);
        b2.state_override = Some(AdminState::Drain);
        b2.port = Some(80);
        let mut b3 = backend("b3", BackendState::Down);
        b3.down_reason = Some(DownReason::NoNextHop {
            detail: "no ARP answer".into(),
        });
        b3.weight = 5;
        b3.weight_override = Some(5);
        b3.next_hop = None;
        b3.since = Some(940);
        let text = render_backends(&[backend("b1", BackendState::Up), b2, b3], 0, 1000);
        assert_eq!(
            text,
            "NAME  ADDRESS   PORT  STATE   WEIGHT  SOURCE  CHECK  SINCE   NEXT-HOP/WHY\n\
             b1    10.0.1.1     -  up         100  config  -      -       02:00:00:00:00:01 (ifindex 3)\n\
             b2    10.0.1.1    80  drain*     100  config  -      -       02:00:00:00:00:01 (ifindex 3)\n\
             b3    10.0.1.1     -  down        5*  config  -      1m ago  no next hop: no ARP answer\n\
             * b2: runtime override of drain (config: up)\n\
             * b3: runtime weight 5 (config: 100)\n"
        );
        assert_eq!(render_backends(&[], 2, 1000), "  (no backends)\n");
    }

    #[test]
    fn the_check_column_says_where_the_counter_is() {
        use lb_api::types::{CheckFailure, CheckResult, CheckStatus};
        let with = |healthy, progress, failure: Option<CheckFailure>| {
            let mut b = backend("b", BackendState::Up);
            b.check = Some(CheckStatus {
                check: "http".into(),
                healthy,
                progress,
                threshold: if healthy { 3 } else { 2 },
                last: Some(CheckResult {
                    failure,
                    duration_ms: 1.25,
                    at_ms: 0,
                }),
                since: None,
            });
            check_cell(&b)
        };
        let fail = || Some(CheckFailure::HttpStatus { status: 500 });
        assert_eq!(with(true, 0, None), "http ok 1.2ms");
        assert_eq!(with(true, 2, fail()), "http failing 2/3");
        assert_eq!(with(false, 0, fail()), "http down");
        assert_eq!(with(false, 1, None), "http rising 1/2");
        let mut pending = backend("b", BackendState::Up);
        pending.check = Some(CheckStatus {
            check: "tcp".into(),
            healthy: true,
            progress: 0,
            threshold: 3,
            last: None,
            since: None,
        });
        assert_eq!(check_cell(&pending), "tcp pending");
        assert_eq!(check_cell(&backend("b", BackendState::Up)), "-");
    }

    #[test]
    fn pools_with_their_services() {
        let pools = [
            PoolStatus {
                name: "web".into(),
                source: Source::Config,
                services: vec!["web".into(), "web-tls".into()],
                backends: vec![backend("b1", BackendState::Up)],
            },
            PoolStatus {
                name: "spare".into(),
                source: Source::Runtime,
                services: vec![],
                backends: vec![],
            },
        ];
        assert_eq!(
            render_pools(&pools, 1000),
            "pool web (config; services: web, web-tls)\n\
             \x20 NAME  ADDRESS   PORT  STATE  WEIGHT  SOURCE  CHECK  SINCE  NEXT-HOP/WHY\n\
             \x20 b1    10.0.1.1     -  up        100  config  -      -      02:00:00:00:00:01 (ifindex 3)\n\
             \n\
             pool spare (runtime; no services)\n\
             \x20 (no backends)\n"
        );
        assert_eq!(render_pools(&[], 1000), "no pools\n");
    }
}
