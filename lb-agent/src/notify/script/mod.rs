//! The script channel: `notify.script` for every event it is configured
//! for (keepalived `notify`), and a pool's `notify_up`/`notify_down` when
//! one of its backends comes up or leaves `up` (keepalived's real server
//! `notify_up`/`notify_down`). Each run has a timeout; runs about the same
//! backend keep their order.

mod args;
mod lanes;
pub(crate) mod run;

use std::{sync::Arc, time::Duration};

use lb_api::events::{Event, EventKind};
use lb_config::PoolConfig;
use tokio::sync::watch;

use super::{
    Settings,
    queue::Queue,
    stats::{Channel, Counters},
};
use args::{Edge, backend_args, edge, event_args};
use lanes::Lanes;

/// Scripts running at once, at most.
const MAX_RUNNING: usize = 16;

/// One run of one script.
pub struct Job {
    /// What it is about (`web/web2`, the NAME argument): runs about one
    /// thing keep their order.
    lane: String,
    argv: Vec<String>,
    /// `LB_EVENT`: the event as JSON.
    event_json: String,
    timeout: Duration,
}

/// Whether `event` may start a script under `s` (so it is worth queueing).
pub fn wanted(s: &Settings, event: &Event) -> bool {
    let n = &s.file.notify;
    (n.script.is_some() && n.wants(event.kind.name())) || pool_edge(s, &event.kind).is_some()
}

/// Runs the scripts `queue`'s events start, until the runtime ends.
pub async fn worker(
    queue: Arc<Queue<Event>>,
    settings: watch::Receiver<Arc<Settings>>,
    counters: &'static Counters,
) {
    let mut lanes = Lanes::new(MAX_RUNNING, move |job: Job| execute(job, counters));
    loop {
        let room = settings.borrow().file.notify.queue as usize;
        tokio::select! {
            event = queue.pop(), if lanes.len() < room || lanes.running() == 0 => {
                let s = settings.borrow().clone();
                for job in jobs(&s, &event) {
                    lanes.push(job.lane.clone(), job);
                }
            }
            Some(()) = lanes.finished() => {}
        }
    }
}

async fn execute(job: Job, counters: &'static Counters) {
    let env = [("LB_EVENT".to_owned(), job.event_json)];
    match run::run(&job.argv, &env, job.timeout).await {
        Ok(()) => counters.sent(Channel::Script, 1),
        Err(why) => {
            counters.failed(Channel::Script, 1);
            tracing::warn!(channel = "script", "notification script: {why}");
        }
    }
}

/// The runs `event` starts: `notify.script`, then the pool's command.
fn jobs(s: &Settings, event: &Event) -> Vec<Job> {
    let n = &s.file.notify;
    let words = event_args(&event.kind);
    let job = |argv: Vec<String>| Job {
        lane: words.get(1).cloned().unwrap_or_default(),
        argv,
        event_json: serde_json::to_string(event).unwrap_or_default(),
        timeout: n.script_timeout,
    };
    let mut out = Vec::new();
    if let Some(script) = n.script.as_ref().filter(|_| n.wants(event.kind.name())) {
        out.push(job([script.clone(), words.clone()].concat()));
    }
    if let Some(argv) = pool_command(s, &event.kind) {
        out.push(job(argv));
    }
    out
}

/// The pool and the change, when `kind` takes a backend of a pool with the
/// matching command into or out of `up`.
fn pool_edge<'a>(s: &'a Settings, kind: &EventKind) -> Option<(&'a PoolConfig, Edge)> {
    let EventKind::BackendState { pool, from, to, .. } = kind else {
        return None;
    };
    let p = s.file.pool(pool)?;
    let e = edge(*from, *to)?;
    let has = match e {
        Edge::Up => p.notify_up.is_some(),
        Edge::Down => p.notify_down.is_some(),
    };
    has.then_some((p, e))
}

/// The pool's `notify_up`/`notify_down` with the backend's arguments.
fn pool_command(s: &Settings, kind: &EventKind) -> Option<Vec<String>> {
    let (file_pool, e) = pool_edge(s, kind)?;
    let cmd = match e {
        Edge::Up => file_pool.notify_up.as_ref(),
        Edge::Down => file_pool.notify_down.as_ref(),
    }?;
    Some([cmd.clone(), backend_args(kind)?].concat())
}
