//! What the notifier works with, built from the configuration file at start
//! and on every applied reload: the `notify:` section and the pools'
//! commands, the SMTP client (password read now) and the webhook client.

use lb_config::Config;

use super::{email::Mailer, webhook::Webhook};

pub struct Settings {
    /// The configuration file as last applied.
    pub file: Config,
    /// `None`: no `email:`; `Err`: configured but unusable (why).
    pub email: Option<Result<Mailer, String>>,
    pub webhook: Option<Result<Webhook, String>>,
}

impl Settings {
    pub fn load(file: &Config) -> Settings {
        let host = hostname();
        let notify = &file.notify;
        let email = notify.email.as_ref().map(|c| Mailer::new(c, &host));
        let webhook = notify.webhook.as_ref().map(Webhook::new);
        for (channel, r) in [
            ("email", email.as_ref().and_then(|r| r.as_ref().err())),
            ("webhook", webhook.as_ref().and_then(|r| r.as_ref().err())),
        ] {
            if let Some(why) = r {
                tracing::error!(channel, "notifications by {channel} are off: {why}");
            }
        }
        Settings {
            file: file.clone(),
            email,
            webhook,
        }
    }
}

/// The kernel's host name (the UTS namespace's), or `localhost`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
