//! `lb-ctl backend drain --wait`: polls a drained backend's flow count until
//! no active flow is left (what an operator does before taking a server down).

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tokio::time::{Instant, MissedTickBehavior};

use super::{Exit, table};
use lb_api::{client::Client, paths::Route, types::FlowCount};

/// How often the flow count is read.
const POLL: Duration = Duration::from_secs(1);

/// Waits for `pool`/`backend` to have no active flows (over every service
/// using the pool); progress goes to stderr so that stdout stays one JSON
/// document with `-o json`.
pub async fn wait(client: &Client, pool: &str, backend: &str, timeout: Duration) -> Result<Exit> {
    let path = Route::Flows(pool.into(), backend.into()).path();
    let deadline = Instant::now() + timeout;
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut shown = None;
    loop {
        ticker.tick().await;
        let flows: FlowCount = client
            .get(&path)
            .await
            .with_context(|| format!("reading the flows of {pool}/{backend}"))?;
        if flows.active == 0 {
            eprintln!("{}/{}: drained, no active flows", flows.pool, flows.backend);
            return Ok(Exit::Ok);
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out after {}: {} still on {}/{} (it stays drained; run `lb-ctl backend drain --wait` again to keep waiting)",
                table::duration(timeout),
                active(flows.active),
                flows.pool,
                flows.backend
            );
        }
        if shown != Some(flows.active) {
            eprintln!("{}", progress(&flows));
            shown = Some(flows.active);
        }
    }
}

fn active(n: u64) -> String {
    format!("{n} active flow{}", if n == 1 { "" } else { "s" })
}

/// Why the count falls slowly: in DR mode the LB sees only the client's half.
fn progress(f: &FlowCount) -> String {
    format!(
        "waiting for {} on {}/{} (idle-based in DR mode: a flow ends at FIN/RST or after {}s idle) …",
        active(f.active),
        f.pool,
        f.backend,
        f.idle_timeout_secs
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line() {
        let f = FlowCount {
            pool: "web".into(),
            backend: "b2".into(),
            active: 3,
            closing: 1,
            idle: 0,
            idle_timeout_secs: 300,
        };
        assert_eq!(
            progress(&f),
            "waiting for 3 active flows on web/b2 (idle-based in DR mode: a flow ends at FIN/RST or after 300s idle) …"
        );
        assert_eq!(active(1), "1 active flow");
    }
}
