//! The e-mail and webhook workers: each takes batches from its own queue
//! and delivers them with retries, so a hung SMTP server holds up neither
//! the webhook, nor scripts, nor anything that publishes events.

use std::sync::Arc;

use lb_api::events::Event;
use tokio::sync::watch;

use super::{
    Settings, batch,
    queue::Queue,
    retry::{self, Failure},
    stats::{Channel, Counters},
};

/// A channel that delivers a batch at a time.
pub trait Deliver {
    const CHANNEL: Channel;

    /// Whether `s` has this channel configured.
    fn configured(s: &Settings) -> bool;

    /// One try at delivering `events`.
    fn deliver(s: &Settings, events: &[Event]) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// Delivers `queue`'s events in batches, until the runtime ends.
pub async fn worker<D: Deliver>(
    queue: Arc<Queue<Event>>,
    settings: watch::Receiver<Arc<Settings>>,
    counters: &'static Counters,
) {
    let channel = D::CHANNEL.as_str();
    loop {
        let (window, max) = {
            let n = &settings.borrow().file.notify;
            (n.batch, n.batch_max as usize)
        };
        let events = batch::next(&queue, window, max).await;
        let s = settings.borrow().clone();
        let r = retry::deliver(&s.file.notify.retry, D::CHANNEL, counters, || {
            D::deliver(&s, &events)
        })
        .await;
        match r {
            Ok(()) => {
                counters.sent(D::CHANNEL, events.len());
                tracing::debug!(channel, events = events.len(), "notification sent");
            }
            Err(why) => {
                counters.failed(D::CHANNEL, events.len());
                tracing::error!(
                    channel,
                    events = events.len(),
                    "notification not delivered: {why}"
                );
            }
        }
    }
}

/// The client a channel's settings hold, or why there is none.
pub fn client<'a, T>(c: &'a Option<Result<T, String>>, what: &str) -> Result<&'a T, Failure> {
    match c {
        Some(Ok(client)) => Ok(client),
        Some(Err(why)) => Err(Failure::Permanent(why.clone())),
        None => Err(Failure::Permanent(format!(
            "{what} is no longer configured (a reload removed it)"
        ))),
    }
}
