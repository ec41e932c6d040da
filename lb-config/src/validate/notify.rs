//! `notify:` and a pool's `notify_up`/`notify_down`: which events, how they
//! are batched and retried, and the commands, each problem at its key.

mod email;
mod host;
mod raw;
mod webhook;

use std::time::Duration;

use serde_yaml::Value;

use super::in_range;
use crate::diagnostic::Problems;
use crate::duration::DurationText;
use crate::notify::*;
use crate::positions::YamlPath;
use crate::raw::deserialize_all;
use raw::{RawNotify, RawRetry};

/// Longest `batch`: a notification held longer is news no more.
const MAX_BATCH: Duration = Duration::from_secs(600);

/// The `notify:` section; its defaults when absent or `null`.
pub(super) fn notify(raw: Option<Value>, at: &YamlPath, p: &mut Problems) -> NotifyConfig {
    let d = NotifyConfig::default();
    let raw = match raw {
        None | Some(Value::Null) => return d,
        Some(v) => match deserialize_all::<RawNotify>(v, at, p) {
            Some((raw, _)) => raw,
            None => return d,
        },
    };
    let batch = raw.batch.map_or(d.batch, |b| {
        at_most(b, MAX_BATCH, "batch", &at.key("batch"), p)
    });
    let config = NotifyConfig {
        events: raw
            .events
            .map_or(d.events, |e| events(e, &at.key("events"), p)),
        batch,
        batch_max: raw
            .batch_max
            .and_then(|n| in_range(n, BATCH_MAX_RANGE, "batch_max", &at.key("batch_max"), p))
            .unwrap_or(d.batch_max),
        queue: raw
            .queue
            .and_then(|n| in_range(n, QUEUE_RANGE, "queue", &at.key("queue"), p))
            .unwrap_or(d.queue),
        retry: raw.retry.map_or(d.retry, |r| retry(r, &at.key("retry"), p)),
        script_timeout: timeout(
            raw.script_timeout,
            d.script_timeout,
            "script_timeout",
            at,
            p,
        ),
        script: raw
            .script
            .and_then(|c| command(c, "script", &at.key("script"), p)),
        email: raw.email.and_then(|e| email::email(e, &at.key("email"), p)),
        webhook: raw
            .webhook
            .and_then(|w| webhook::webhook(w, &at.key("webhook"), p)),
    };
    let no_channel = config.email.is_none() && config.webhook.is_none() && config.script.is_none();
    if no_channel && !config.events.is_empty() && !p.has_errors() {
        p.warning_at_key(
            at,
            "notify has no `email`, `webhook` or `script`: its events go nowhere \
             (pools' notify_up/notify_down still run)",
        );
    }
    config
}

/// `events:`: known event types.
fn events(list: Vec<String>, at: &YamlPath, p: &mut Problems) -> Vec<String> {
    let mut out = Vec::new();
    for (i, name) in list.into_iter().enumerate() {
        if !EVENT_TYPES.contains(&name.as_str()) {
            p.error(
                &at.index(i),
                format!(
                    "unknown event type `{name}`, expected one of {}",
                    EVENT_TYPES
                        .iter()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        } else if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn retry(raw: RawRetry, at: &YamlPath, p: &mut Problems) -> RetryConfig {
    let d = RetryConfig::default();
    let attempts = raw
        .attempts
        .and_then(|n| in_range(n, ATTEMPTS_RANGE, "attempts", &at.key("attempts"), p))
        .unwrap_or(d.attempts);
    let backoff = timeout(raw.backoff, d.backoff, "backoff", at, p);
    let max_backoff = raw.max_backoff.map_or(d.max_backoff.max(backoff), |m| m.0);
    if max_backoff < backoff {
        p.error(
            &at.key("max_backoff"),
            format!(
                "max_backoff {} is shorter than backoff {}",
                crate::duration::format_duration(max_backoff),
                crate::duration::format_duration(backoff)
            ),
        );
    }
    RetryConfig {
        attempts,
        backoff,
        max_backoff,
    }
}

/// A timeout or wait under `at`, at least [`MIN_TIMEOUT`]; `default` when absent.
pub(super) fn timeout(
    v: Option<DurationText>,
    default: Duration,
    key: &str,
    at: &YamlPath,
    p: &mut Problems,
) -> Duration {
    match v {
        Some(t) if t.0 < MIN_TIMEOUT => {
            p.error(
                &at.key(key),
                format!("{key} must be at least {}ms", MIN_TIMEOUT.as_millis()),
            );
            default
        }
        Some(t) => t.0,
        None => default,
    }
}

fn at_most(v: DurationText, max: Duration, key: &str, at: &YamlPath, p: &mut Problems) -> Duration {
    if v.0 > max {
        p.error(
            at,
            format!(
                "{key} must be at most {}",
                crate::duration::format_duration(max)
            ),
        );
        return max;
    }
    v.0
}

/// A pool's `notify_up` or `notify_down` (`key`) under `pool_at`.
pub(super) fn pool_command(
    cmd: Option<Vec<String>>,
    key: &str,
    pool_at: &YamlPath,
    p: &mut Problems,
) -> Option<Vec<String>> {
    command(cmd?, key, &pool_at.key(key), p)
}

/// A command to run: a program by absolute path, then its arguments, as a
/// list (never a shell line); `None` when it is not one (reported).
fn command(cmd: Vec<String>, key: &str, at: &YamlPath, p: &mut Problems) -> Option<Vec<String>> {
    let why = match cmd.first() {
        None => format!("{key} is empty: give the program and its arguments as a list"),
        Some(prog) if !prog.starts_with('/') => format!(
            "{key}: the program `{prog}` must be an absolute path (the agent runs from `/`, \
             without a shell)"
        ),
        Some(_) if cmd.iter().any(|a| a.contains('\0')) => {
            format!("{key}: an argument holds a NUL byte")
        }
        Some(_) => return Some(cmd),
    };
    p.error(at, why);
    None
}

#[cfg(test)]
mod tests;
