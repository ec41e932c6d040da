//! `notify:` as written: every key optional, unknown keys refused; checked
//! into [`crate::notify::NotifyConfig`] by the parent module.

use std::path::PathBuf;

use serde::Deserialize;

use crate::duration::DurationText;
use crate::raw::Int;

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "notification settings: `email`, `webhook`, `script`, `events`, `batch`, …"
)]
pub(super) struct RawNotify {
    pub events: Option<Vec<String>>,
    pub batch: Option<DurationText>,
    pub batch_max: Option<Int>,
    pub queue: Option<Int>,
    pub retry: Option<RawRetry>,
    pub script_timeout: Option<DurationText>,
    pub script: Option<Vec<String>>,
    pub email: Option<RawEmail>,
    pub webhook: Option<RawWebhook>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "retry settings: `attempts`, `backoff`, `max_backoff`"
)]
pub(super) struct RawRetry {
    pub attempts: Option<Int>,
    pub backoff: Option<DurationText>,
    pub max_backoff: Option<DurationText>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "e-mail settings: `to`, `from`, `smtp_server`, …"
)]
pub(super) struct RawEmail {
    pub to: Option<Vec<String>>,
    pub from: Option<String>,
    pub smtp_server: Option<String>,
    pub smtp_connect_timeout: Option<DurationText>,
    /// A string, so that a wrong value names the three right ones.
    pub starttls: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub subject_prefix: Option<String>,
    pub helo_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "webhook settings: `url`, `timeout`")]
pub(super) struct RawWebhook {
    pub url: Option<String>,
    pub timeout: Option<DurationText>,
}
