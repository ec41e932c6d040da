//! Access logs, HAProxy's way: a frontend with `log` targets writes one line
//! per request (`httplog`) or per connection (`tcplog`), or one at accept
//! (no option), to syslog servers, a unix socket, stdout/stderr or a file.
//!
//! The request path only fills a [`Record`] (plain numbers and the few
//! names) and queues it ([`Setup::submit`]); formatting ([`format`]),
//! framing ([`syslog`]) and sending ([`sink`]) happen on a thread of their
//! own, so a slow or dead receiver never holds a request. Nothing is built
//! when a frontend has no target.

pub mod cookie;
pub mod format;
pub mod record;
pub(crate) mod request;
pub mod sink;
pub mod syslog;
pub mod time;

use std::sync::Arc;

use lb_config::proxy::{FrontendConfig, FrontendLog, LogFormat, LogTarget, ProxyMode, Severity};

pub use cookie::CookieTrace;
pub use record::{Cause, Conns, Phase, Record, ServerTrace, Termination, Timers, request_line};
pub use sink::{dropped, send_failures};

/// How one frontend logs, compiled from its configuration.
#[derive(Debug)]
pub struct Setup {
    pub frontend: Box<str>,
    pub mode: ProxyMode,
    pub format: LogFormat,
    pub json: bool,
    pub dontlognull: bool,
    separate_errors: bool,
    dontlog_normal: bool,
    targets: Box<[LogTarget]>,
    /// The syslog program name (`proxy.log_tag`).
    tag: Box<str>,
}

impl Setup {
    /// None when the frontend logs nothing.
    pub fn new(cfg: &FrontendConfig, tag: &str) -> Option<Arc<Setup>> {
        Setup::named(&cfg.name, cfg.mode, &cfg.log, tag)
    }

    /// A listener that logs as `name` without being a frontend (the
    /// agent's stats page); None when `log` has no target.
    pub fn named(name: &str, mode: ProxyMode, log: &FrontendLog, tag: &str) -> Option<Arc<Setup>> {
        if !log.enabled() {
            return None;
        }
        Some(Arc::new(Setup {
            frontend: name.into(),
            mode,
            format: log.format,
            json: log.json,
            dontlognull: log.dontlognull,
            separate_errors: log.log_separate_errors,
            dontlog_normal: log.dontlog_normal,
            targets: log.targets.clone().into(),
            tag: tag.into(),
        }))
    }

    /// Queues `record` for its targets, unless `dontlog_normal` keeps
    /// only failures and it is not one.
    pub fn submit(self: &Arc<Self>, record: Record) {
        if self.dontlog_normal && !failed(&record) {
            return;
        }
        sink::push(record, self);
    }

    /// The level of `record`'s line.
    fn severity(&self, record: &Record) -> Severity {
        sink::severity(failed(record), self.separate_errors)
    }
}

/// HAProxy's "not normal": an error or timeout, a retry or redispatch, or
/// a 5xx status.
fn failed(r: &Record) -> bool {
    r.term.failed() || r.status >= 500 || r.conns.retries > 0 || r.conns.redispatched
}

#[cfg(test)]
mod tests;
