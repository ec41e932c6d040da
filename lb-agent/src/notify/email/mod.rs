//! E-mail over SMTP, as keepalived's `smtp_alert` sends it from
//! `global_defs` (`notification_email`, `notification_email_from`,
//! `smtp_server`, `smtp_connect_timeout`), one mail per batch, plus STARTTLS
//! and authentication for modern relays. One connection per mail, like
//! keepalived. `smtp_connect_timeout` bounds one whole try (keepalived gives
//! it to each reply; a working relay takes well under a second for a mail).

mod render;

use std::time::Duration;

use lb_api::events::Event;
use lb_config::notify::{EmailConfig, StartTls};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
        extension::ClientId,
    },
};

use super::{
    Settings,
    deliver::{Deliver, client},
    retry::Failure,
    stats::Channel,
};

/// A relay, ready to send (password read, addresses parsed).
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
    from: Mailbox,
    to: Vec<Mailbox>,
    prefix: String,
    host: String,
    server: String,
}

impl Mailer {
    /// Builds the relay's client from `cfg`; `host` is this machine's name.
    /// Reads the password file, so it runs at start and on reload.
    pub fn new(cfg: &EmailConfig, host: &str) -> Result<Mailer, String> {
        let mailbox = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| format!("`{a}` is not an address lettre accepts: {e}"))
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp_host)
            .port(cfg.smtp_port)
            .timeout(Some(cfg.smtp_connect_timeout))
            .tls(tls(cfg)?);
        if let Some(name) = &cfg.helo_name {
            b = b.hello_name(ClientId::Domain(name.clone()));
        }
        if let (Some(user), Some(file)) = (&cfg.username, &cfg.password_file) {
            b = b.credentials(Credentials::new(user.clone(), super::secret::read(file)?));
        }
        Ok(Mailer {
            transport: b.build(),
            timeout: cfg.smtp_connect_timeout,
            from: mailbox(&cfg.from)?,
            to: cfg
                .to
                .iter()
                .map(|a| mailbox(a))
                .collect::<Result<_, _>>()?,
            prefix: cfg
                .subject_prefix
                .clone()
                .unwrap_or_else(|| format!("[lb {host}]")),
            host: host.to_owned(),
            server: format!("{}:{}", cfg.smtp_host, cfg.smtp_port),
        })
    }

    /// The mail for `events`.
    pub fn message(&self, events: &[Event]) -> Result<Message, String> {
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(render::subject(&self.prefix, events))
            .date_now()
            .message_id(None)
            .user_agent(format!("lb {}", env!("CARGO_PKG_VERSION")))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            m = m.to(to.clone());
        }
        m.body(render::body(&self.host, events))
            .map_err(|e| format!("building the mail: {e}"))
    }

    /// Sends one mail for `events`. A relay's 5xx is final; anything else
    /// (no connection, a timeout, 4xx) may pass on a later try.
    pub async fn send(&self, events: &[Event]) -> Result<(), Failure> {
        let message = self.message(events).map_err(Failure::Permanent)?;
        let sent = tokio::time::timeout(self.timeout, self.transport.send(message)).await;
        let Ok(sent) = sent else {
            return Err(Failure::Transient(format!(
                "SMTP server {}: no complete exchange within {:?}",
                self.server, self.timeout
            )));
        };
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(Failure::Permanent(format!(
                "SMTP server {} refused the mail: {}",
                self.server,
                super::error_chain(&e)
            ))),
            Err(e) => Err(Failure::Transient(format!(
                "SMTP server {}: {}",
                self.server,
                super::error_chain(&e)
            ))),
        }
    }
}

/// The e-mail channel: one mail per batch.
pub struct Email;

impl Deliver for Email {
    const CHANNEL: Channel = Channel::Email;

    fn configured(s: &Settings) -> bool {
        s.email.is_some()
    }

    async fn deliver(s: &Settings, events: &[Event]) -> Result<(), Failure> {
        client(&s.email, "email")?.send(events).await
    }
}

/// STARTTLS as configured; certificates are checked against the system's roots.
fn tls(cfg: &EmailConfig) -> Result<Tls, String> {
    let params = || {
        TlsParameters::builder(cfg.smtp_host.clone())
            .build_rustls()
            .map_err(|e| format!("setting up TLS for {}: {e}", cfg.smtp_host))
    };
    Ok(match cfg.starttls {
        StartTls::Off => Tls::None,
        StartTls::Opportunistic => Tls::Opportunistic(params()?),
        StartTls::Required => Tls::Required(params()?),
    })
}

#[cfg(test)]
mod tests {
    use lb_api::events::EventKind;

    use super::*;

    fn config() -> EmailConfig {
        EmailConfig {
            to: vec!["ops@example.com".into(), "oncall@example.com".into()],
            from: "lb@example.com".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            smtp_connect_timeout: Duration::from_secs(30),
            starttls: StartTls::Off,
            username: None,
            password_file: None,
            subject_prefix: Some("[LVS_DEVEL]".into()),
            helo_name: None,
        }
    }

    #[test]
    fn the_mail_has_proper_headers() {
        let m = Mailer::new(&config(), "lb1").expect("mailer");
        let e = Event {
            seq: 1,
            time_ms: 1_700_000_000_000,
            kind: EventKind::AgentStopping,
        };
        let text = String::from_utf8(m.message(&[e]).expect("mail").formatted()).unwrap();
        for header in [
            "From: lb@example.com\r\n",
            "To: ops@example.com, oncall@example.com\r\n",
            "Subject: [LVS_DEVEL] agent stopping; the data path keeps forwarding\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
        ] {
            assert!(text.contains(header), "{header:?} in\n{text}");
        }
        assert!(text.contains("\r\nDate: "), "{text}");
        assert!(text.contains("\r\nMessage-ID: <"), "{text}");
        assert!(text.contains("lb on lb1: 1 event"), "{text}");
    }

    #[test]
    fn the_default_prefix_names_the_host_and_a_missing_password_is_an_error() {
        let mut c = config();
        c.subject_prefix = None;
        assert_eq!(Mailer::new(&c, "lb1").expect("mailer").prefix, "[lb lb1]");
        c.username = Some("lb".into());
        c.password_file = Some("/nonexistent/smtp.pass".into());
        let e = Mailer::new(&c, "lb1").err().expect("an error");
        assert!(e.contains("/nonexistent/smtp.pass"), "{e}");
    }
}
