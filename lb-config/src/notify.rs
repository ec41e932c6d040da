//! Notifications as configured: the `notify:` section (keepalived's
//! `global_defs` mail settings and `notify` script, plus a webhook) and
//! what the agent does with its events. A pool's `notify_up`/`notify_down`
//! commands live on the pool (`PoolConfig`).

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// Every event type the agent publishes (`lb_api::events::EventKind::name`;
/// a test in lb-agent checks that the two agree).
pub const EVENT_TYPES: &[&str] = &[
    "agent_started",
    "agent_stopping",
    "backend_state",
    "health",
    "backend_added",
    "backend_removed",
    "pool_added",
    "pool_removed",
    "service_added",
    "service_removed",
    "ring_resized",
    "reload",
    "vrrp",
];
/// Default of `notify.events`: state changes and reloads.
pub const DEFAULT_EVENTS: &[&str] = &["backend_state", "reload"];
/// Default of `notify.batch`.
pub const DEFAULT_BATCH: Duration = Duration::from_secs(2);
/// Default of `notify.batch_max`.
pub const DEFAULT_BATCH_MAX: u32 = 100;
/// Accepted `notify.batch_max`.
pub const BATCH_MAX_RANGE: RangeInclusive<u32> = 1..=1000;
/// Default of `notify.queue`.
pub const DEFAULT_QUEUE: u32 = 1000;
/// Accepted `notify.queue`.
pub const QUEUE_RANGE: RangeInclusive<u32> = 10..=100_000;
/// Default of `notify.retry.attempts`.
pub const DEFAULT_ATTEMPTS: u32 = 5;
/// Accepted `notify.retry.attempts` (the first try included).
pub const ATTEMPTS_RANGE: RangeInclusive<u32> = 1..=100;
/// Default of `notify.retry.backoff`.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// Default of `notify.retry.max_backoff`.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Default of `notify.script_timeout`.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `notify.email.smtp_connect_timeout`: keepalived's.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Default SMTP port.
pub const DEFAULT_SMTP_PORT: u16 = 25;
/// Default of `notify.webhook.timeout`.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest timeout anywhere in `notify:`.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);

/// The `notify:` section. Absent: no e-mail, webhook or event script; the
/// pools' `notify_up`/`notify_down` still run, with these defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotifyConfig {
    /// Event types that go out by e-mail, webhook and `script` (each one of
    /// [`EVENT_TYPES`]). Default [`DEFAULT_EVENTS`].
    pub events: Vec<String>,
    /// Events within this time of the first of a batch go out together (one
    /// mail, one POST). Default [`DEFAULT_BATCH`].
    #[serde(serialize_with = "crate::duration::serialize")]
    pub batch: Duration,
    /// Events in one mail or POST at most; a longer burst is split.
    pub batch_max: u32,
    /// Events waiting per channel at most; a full queue drops its oldest.
    pub queue: u32,
    /// How failed mails and POSTs are tried again.
    pub retry: RetryConfig,
    /// How long a notification script may run before its process group is
    /// killed. Default [`DEFAULT_SCRIPT_TIMEOUT`].
    #[serde(serialize_with = "crate::duration::serialize")]
    pub script_timeout: Duration,
    /// keepalived `notify`: a program and its arguments, run for each event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            events: DEFAULT_EVENTS.iter().map(|s| (*s).to_owned()).collect(),
            batch: DEFAULT_BATCH,
            batch_max: DEFAULT_BATCH_MAX,
            queue: DEFAULT_QUEUE,
            retry: RetryConfig::default(),
            script_timeout: DEFAULT_SCRIPT_TIMEOUT,
            script: None,
            email: None,
            webhook: None,
        }
    }
}

impl NotifyConfig {
    /// Whether events of type `name` go out by e-mail, webhook and script.
    pub fn wants(&self, name: &str) -> bool {
        self.events.iter().any(|e| e == name)
    }
}

/// Tries of one mail or POST: the first, then after `backoff`, doubled
/// each time up to `max_backoff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RetryConfig {
    /// Tries in all, the first included. Default [`DEFAULT_ATTEMPTS`].
    pub attempts: u32,
    /// Wait before the second try. Default [`DEFAULT_BACKOFF`].
    #[serde(serialize_with = "crate::duration::serialize")]
    pub backoff: Duration,
    /// Longest wait between tries. Default [`DEFAULT_MAX_BACKOFF`].
    #[serde(serialize_with = "crate::duration::serialize")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: DEFAULT_ATTEMPTS,
            backoff: DEFAULT_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

/// `notify.email`: keepalived's `notification_email`,
/// `notification_email_from`, `smtp_server`, `smtp_connect_timeout` and
/// `smtp_helo_name`, plus TLS and authentication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmailConfig {
    /// Recipients (`notification_email`), at least one.
    pub to: Vec<String>,
    /// Sender (`notification_email_from`).
    pub from: String,
    /// The relay's host name or address.
    pub smtp_host: String,
    /// The relay's port. Default [`DEFAULT_SMTP_PORT`].
    pub smtp_port: u16,
    /// One try at most: connecting and the whole exchange (keepalived gives
    /// this to each reply). Default [`DEFAULT_SMTP_TIMEOUT`].
    #[serde(serialize_with = "crate::duration::serialize")]
    pub smtp_connect_timeout: Duration,
    /// Default [`StartTls::Off`], as keepalived (which has no TLS).
    pub starttls: StartTls,
    /// SMTP AUTH user; requires `starttls: required`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// File holding the password (read at start and on reload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Starts every subject; default `[lb <hostname>]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_prefix: Option<String>,
    /// Name sent in EHLO (`smtp_helo_name`); default the host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helo_name: Option<String>,
}

/// `notify.webhook`: a URL that receives each batch as a JSON POST.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebhookConfig {
    /// `http://` or `https://` (verified against the system's roots), as written.
    pub url: String,
    /// The URL's parts.
    #[serde(skip)]
    pub target: WebhookTarget,
    /// Connecting, sending and the answer, in all. Default [`DEFAULT_WEBHOOK_TIMEOUT`].
    #[serde(serialize_with = "crate::duration::serialize")]
    pub timeout: Duration,
}

/// Where a webhook URL points.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookTarget {
    /// `https://`.
    pub tls: bool,
    /// Name or address, IPv6 without brackets.
    pub host: String,
    /// The URL's, or 80/443.
    pub port: u16,
    /// Path and query, `/` at least.
    pub path: String,
}

/// Whether mail goes over TLS (STARTTLS on the SMTP connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// Plain SMTP, like keepalived.
    Off,
    /// TLS when the relay offers STARTTLS (verified), plain otherwise.
    Opportunistic,
    /// TLS or no mail.
    Required,
}

impl StartTls {
    /// Every value, as written in the file.
    pub const ALL: [(StartTls, &str); 3] = [
        (StartTls::Off, "off"),
        (StartTls::Opportunistic, "opportunistic"),
        (StartTls::Required, "required"),
    ];
}
