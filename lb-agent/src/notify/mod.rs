//! Notifications: one more subscriber of the event stream. It runs a
//! script with keepalived's kind of arguments (`notify.script`, and a
//! pool's `notify_up`/`notify_down`), POSTs JSON to a webhook, and sends
//! e-mail over SMTP as keepalived's `global_defs` configure it.
//!
//! The subscriber never blocks whoever publishes: it only sorts each event
//! into the queues of the channels that want it. Each channel has its own
//! bounded queue (full: the oldest event goes, counted and logged) and its
//! own worker, so a hung SMTP server holds up neither the webhook nor the
//! scripts, and nothing holds up checks or state changes. Mail and webhook
//! go in batches (`notify.batch`) with retries (`notify.retry`); scripts run
//! one per event with a timeout. Settings are re-read when a reload is
//! applied (the `reload` event).

mod batch;
mod deliver;
mod email;
mod queue;
mod retry;
pub(crate) mod script;
mod secret;
mod settings;
mod stats;
mod tls;
mod webhook;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use lb_api::events::{Event, EventKind};
use lb_config::Config;
use tokio::sync::{broadcast, watch};

use crate::events::EventBus;
use deliver::Deliver;
use queue::Queue;
use settings::Settings;
pub use stats::{COUNTERS, Channel, Counters, Counts, Snapshot};

/// How often a full queue says so in the log, at most.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// Subscribes to `bus` and starts the notifier with the file's settings;
/// `config_path` is re-read when a reload is applied.
pub fn start(bus: &EventBus, config_path: &Path, file: &Config) {
    let rx = bus.subscribe();
    let settings = Settings::load(file);
    tokio::spawn(run(rx, config_path.to_owned(), settings, &COUNTERS));
}

async fn run(
    mut rx: broadcast::Receiver<Event>,
    config_path: PathBuf,
    settings: Settings,
    counters: &'static Counters,
) {
    let capacity = settings.file.notify.queue as usize;
    let (tx, watch) = watch::channel(Arc::new(settings));
    let queues = Channel::ALL.map(|c| (c, Arc::new(Queue::new(capacity))));
    let [email, hook, script] = queues.clone().map(|(_, q)| q);
    tokio::spawn(deliver::worker::<email::Email>(
        email,
        watch.clone(),
        counters,
    ));
    tokio::spawn(deliver::worker::<webhook::Hook>(
        hook,
        watch.clone(),
        counters,
    ));
    tokio::spawn(script::worker(script, watch, counters));
    let mut d = Dispatcher {
        queues,
        settings: tx,
        config_path,
        counters,
        drops: Default::default(),
    };
    loop {
        match rx.recv().await {
            Ok(e) => d.dispatch(e).await,
            Err(broadcast::error::RecvError::Lagged(n)) => d.lagged(n),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Sorts events into the channels' queues.
struct Dispatcher {
    queues: [(Channel, Arc<Queue<Event>>); 3],
    settings: watch::Sender<Arc<Settings>>,
    config_path: PathBuf,
    counters: &'static Counters,
    drops: [DropLog; 3],
}

impl Dispatcher {
    async fn dispatch(&mut self, e: Event) {
        if matches!(e.kind, EventKind::Reload { ok: true, .. }) {
            self.reload().await;
        }
        let s = self.settings.borrow().clone();
        for (i, (channel, queue)) in self.queues.iter().enumerate() {
            if wanted(&s, *channel, &e) && queue.push(e.clone()).is_some() {
                self.counters.dropped(*channel, 1);
                self.drops[i].dropped(*channel, 1);
            }
        }
    }

    /// The bus dropped `n` events before this subscriber saw them.
    fn lagged(&mut self, n: u64) {
        let s = self.settings.borrow().clone();
        for (i, (channel, _)) in self.queues.iter().enumerate() {
            if configured(&s, *channel) {
                self.counters.dropped(*channel, n);
                self.drops[i].dropped(*channel, n);
            }
        }
    }

    /// Re-reads the file the reconciler just applied (keeping the running
    /// `agent:` section, as the reconciler does); on failure keeps the
    /// settings there are.
    async fn reload(&mut self) {
        let path = self.config_path.clone();
        let agent = self.settings.borrow().file.agent.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            lb_config::load(&path).map(|c| Settings::load(&Config { agent, ..c.config }))
        })
        .await;
        match loaded {
            Ok(Ok(s)) => {
                let capacity = s.file.notify.queue as usize;
                for (i, (channel, queue)) in self.queues.iter().enumerate() {
                    let gone = queue.set_capacity(capacity) as u64;
                    if gone > 0 {
                        self.counters.dropped(*channel, gone);
                        self.drops[i].dropped(*channel, gone);
                    }
                }
                self.settings.send_replace(Arc::new(s));
                tracing::info!("notification settings reloaded");
            }
            Ok(Err(e)) => tracing::warn!(
                "notifications keep their settings: re-reading {} after the reload failed: {}",
                self.config_path.display(),
                error_chain(&e)
            ),
            Err(e) => tracing::warn!("notifications keep their settings: {e}"),
        }
    }
}

/// Whether `channel` is set up under `s`.
fn configured(s: &Settings, channel: Channel) -> bool {
    match channel {
        Channel::Email => email::Email::configured(s),
        Channel::Webhook => webhook::Hook::configured(s),
        Channel::Script => s.file.notify.script.is_some(),
    }
}

/// Whether `channel` has something to do with `e`.
fn wanted(s: &Settings, channel: Channel, e: &Event) -> bool {
    match channel {
        Channel::Script => script::wanted(s, e),
        c => configured(s, c) && s.file.notify.wants(e.kind.name()),
    }
}

/// Says in the log that a queue dropped events: the first drop at once,
/// later ones at most every [`DROP_LOG_EVERY`], with their count.
#[derive(Default)]
struct DropLog {
    unlogged: u64,
    last: Option<Instant>,
}

impl DropLog {
    fn dropped(&mut self, channel: Channel, n: u64) {
        self.unlogged += n;
        if self.last.is_some_and(|t| t.elapsed() < DROP_LOG_EVERY) {
            return;
        }
        tracing::warn!(
            channel = channel.as_str(),
            dropped = self.unlogged,
            "notifications fall behind: dropped the oldest {} event(s) not yet sent",
            self.unlogged
        );
        self.unlogged = 0;
        self.last = Some(Instant::now());
    }
}

/// An error and its sources, `: `-separated, each said once.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One event of each kind, as `GET /v1/events` writes them.
    const EVERY_KIND: [&str; 13] = [
        r#"{"type":"agent_started","version":"1","adopted":false}"#,
        r#"{"type":"agent_stopping"}"#,
        r#"{"type":"backend_state","pool":"p","backend":"b","address":"10.0.0.2","port":null,"from":null,"to":"up","cause":"config","reason":""}"#,
        r#"{"type":"health","pool":"p","backend":"b","healthy":true,"check":"tcp","reason":null}"#,
        r#"{"type":"backend_added","pool":"p","backend":"b","source":"config"}"#,
        r#"{"type":"backend_removed","pool":"p","backend":"b"}"#,
        r#"{"type":"pool_added","pool":"p","source":"config"}"#,
        r#"{"type":"pool_removed","pool":"p"}"#,
        r#"{"type":"service_added","service":"s","source":"config"}"#,
        r#"{"type":"service_removed","service":"s"}"#,
        r#"{"type":"ring_resized","service":"s","from":1,"to":2,"backends":1}"#,
        r#"{"type":"reload","ok":true,"changed_services":[],"error":null}"#,
        r#"{"type":"vrrp","instance":"VI_1","from":"backup","to":"master","priority":100,"reason":""}"#,
    ];

    /// Where a kind stands in [`EVERY_KIND`]. No wildcard: a new kind does
    /// not build until it is added here, there, and to lb-config's list.
    fn position(k: &EventKind) -> usize {
        use EventKind as K;
        match k {
            K::AgentStarted { .. } => 0,
            K::AgentStopping => 1,
            K::BackendState { .. } => 2,
            K::Health { .. } => 3,
            K::BackendAdded { .. } => 4,
            K::BackendRemoved { .. } => 5,
            K::PoolAdded { .. } => 6,
            K::PoolRemoved { .. } => 7,
            K::ServiceAdded { .. } => 8,
            K::ServiceRemoved { .. } => 9,
            K::RingResized { .. } => 10,
            K::Reload { .. } => 11,
            K::Vrrp { .. } => 12,
        }
    }

    #[test]
    fn the_configuration_knows_every_event_type() {
        let kinds: Vec<EventKind> = EVERY_KIND
            .iter()
            .map(|j| serde_json::from_str(j).unwrap_or_else(|e| panic!("{j}: {e}")))
            .collect();
        let positions: Vec<usize> = kinds.iter().map(position).collect();
        assert_eq!(positions, (0..EVERY_KIND.len()).collect::<Vec<_>>());
        let names: Vec<&str> = kinds.iter().map(EventKind::name).collect();
        assert_eq!(names, lb_config::notify::EVENT_TYPES);
    }

    #[derive(Debug)]
    struct Sending(std::io::Error);

    impl std::fmt::Display for Sending {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("sending the mail")
        }
    }

    impl std::error::Error for Sending {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_chains_say_each_cause_once() {
        let e = Sending(std::io::Error::other("connection refused"));
        assert_eq!(error_chain(&e), "sending the mail: connection refused");
    }
}
