//! What notifications did, per channel: events sent, failed and dropped,
//! and tries repeated. Counters are atomics; a [`Snapshot`] is what the
//! metrics render (`lb_notifications_total`, `lb_notification_retries_total`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Where notifications go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    Email,
    Webhook,
    Script,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Webhook, Channel::Script];

    /// The `channel` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Script => "script",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// One channel's counts. For e-mail and webhook the unit is the event (a
/// mail of five events that went out counts five sent); for scripts, one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Delivered (SMTP accepted it, the webhook answered 2xx, the script exited 0).
    pub sent: u64,
    /// Given up on: tries exhausted, refused for good, or the script failed.
    pub failed: u64,
    /// Never tried: the channel's queue was full, or the event stream
    /// outran the notifier.
    pub dropped: u64,
    /// Tries repeated after a failure that may pass.
    pub retries: u64,
}

/// Every channel's counts, in [`Channel::ALL`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot(pub [(Channel, Counts); 3]);

/// The live counters.
#[derive(Debug, Default)]
pub struct Counters([ChannelCounters; 3]);

#[derive(Debug, Default)]
struct ChannelCounters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
}

impl ChannelCounters {
    const fn new() -> Self {
        ChannelCounters {
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }
}

/// The agent's counters (one agent per process), read by `crate::metrics`.
pub static COUNTERS: Counters = Counters::new();

impl Counters {
    pub const fn new() -> Self {
        Counters([
            ChannelCounters::new(),
            ChannelCounters::new(),
            ChannelCounters::new(),
        ])
    }

    pub fn sent(&self, c: Channel, n: usize) {
        self.0[c.index()].sent.fetch_add(n as u64, Relaxed);
    }

    pub fn failed(&self, c: Channel, n: usize) {
        self.0[c.index()].failed.fetch_add(n as u64, Relaxed);
    }

    pub fn dropped(&self, c: Channel, n: u64) {
        self.0[c.index()].dropped.fetch_add(n, Relaxed);
    }

    pub fn retried(&self, c: Channel) {
        self.0[c.index()].retries.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot(Channel::ALL.map(|c| {
            let x = &self.0[c.index()];
            let counts = Counts {
                sent: x.sent.load(Relaxed),
                failed: x.failed.load(Relaxed),
                dropped: x.dropped.load(Relaxed),
                retries: x.retries.load(Relaxed),
            };
            (c, counts)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_channel() {
        let c = Counters::new();
        c.sent(Channel::Email, 5);
        c.failed(Channel::Webhook, 2);
        c.dropped(Channel::Webhook, 3);
        c.retried(Channel::Webhook);
        c.sent(Channel::Script, 1);
        let s = c.snapshot();
        assert_eq!(
            s.0[0],
            (
                Channel::Email,
                Counts {
                    sent: 5,
                    ..Counts::default()
                }
            )
        );
        let web = Counts {
            failed: 2,
            dropped: 3,
            retries: 1,
            ..Counts::default()
        };
        assert_eq!(s.0[1], (Channel::Webhook, web));
        assert_eq!(s.0[2].1.sent, 1);
    }
}
