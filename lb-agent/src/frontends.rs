//! `GET /v1/frontends`: the proxy's frontends as the control API shows
//! them (`lb-ctl frontend list`), from its statistics.

use std::collections::BTreeMap;

use lb_api::proxy::{FrontendState, FrontendStatus, Frontends};
use lb_proxy::front::counters::RESPONSE_CLASSES;
use lb_proxy::reject::Reason;
use lb_proxy::stats::FrontendStats;

/// Every frontend; none when no proxy runs.
pub fn frontends() -> Frontends {
    let stats = crate::proxy::stats().unwrap_or_default();
    Frontends {
        frontends: stats.frontends.iter().map(status).collect(),
    }
}

fn status(f: &FrontendStats) -> FrontendStatus {
    let c = &f.counters;
    let mut denied: BTreeMap<String, u64> = Reason::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), c.rejected[*r as usize]))
        .collect();
    denied.insert("http_request".into(), c.denied);
    let full = c.active >= u64::from(f.maxconn);
    FrontendStatus {
        name: f.name.clone(),
        mode: f.mode.as_str().to_owned(),
        binds: f.binds.iter().map(ToString::to_string).collect(),
        state: if full {
            FrontendState::Full
        } else {
            FrontendState::Open
        },
        sessions: c.active,
        maxconn: f.maxconn,
        connections: c.connections,
        requests: c.requests,
        responses: RESPONSE_CLASSES
            .iter()
            .zip(c.responses)
            .map(|(k, n)| ((*k).to_owned(), n))
            .collect(),
        denied,
    }
}
