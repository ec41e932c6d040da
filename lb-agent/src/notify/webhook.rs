//! The webhook: each batch as one `POST` of `{"events": [Event, ...]}` (the
//! same JSON as `GET /v1/events`), `Content-Type: application/json`. A 2xx
//! answer delivers it; 5xx, no connection or no answer in time may pass
//! later (tried again); any other answer is final (logged, not retried).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use lb_api::events::Event;
use lb_config::notify::{WebhookConfig, WebhookTarget};
use serde::Serialize;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    task::JoinHandle,
};
use tokio_rustls::{TlsConnector, rustls::pki_types::ServerName};

use super::{
    Settings,
    deliver::{Deliver, client},
    retry::Failure,
    stats::Channel,
};

/// Most of an error answer's body quoted in the log.
const QUOTED_BODY: usize = 300;

/// What a webhook receives.
#[derive(Serialize)]
pub struct Payload<'a> {
    pub events: &'a [Event],
}

pub struct Webhook {
    url: String,
    target: WebhookTarget,
    timeout: Duration,
    tls: Option<TlsConnector>,
}

impl Webhook {
    pub fn new(cfg: &WebhookConfig) -> Result<Webhook, String> {
        Ok(Webhook {
            url: cfg.url.clone(),
            target: cfg.target.clone(),
            timeout: cfg.timeout,
            tls: cfg.target.tls.then(super::tls::connector).transpose()?,
        })
    }

    /// POSTs `events`, all within the timeout.
    pub async fn post(&self, events: &[Event]) -> Result<(), Failure> {
        let body = serde_json::to_vec(&Payload { events })
            .map_err(|e| Failure::Permanent(format!("encoding the events: {e}")))?;
        let (status, text) = tokio::time::timeout(self.timeout, self.exchange(body))
            .await
            .map_err(|_| {
                Failure::Transient(format!("{}: no answer within {:?}", self.url, self.timeout))
            })?
            .map_err(|e| Failure::Transient(format!("{}: {e}", self.url)))?;
        verdict(status, &text).map_err(|f| match f {
            Failure::Transient(r) => Failure::Transient(format!("{}: {r}", self.url)),
            Failure::Permanent(r) => Failure::Permanent(format!("{}: {r}", self.url)),
        })
    }

    async fn exchange(&self, body: Vec<u8>) -> Result<(StatusCode, String), String> {
        let t = &self.target;
        let tcp = TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", t.host, t.port))?;
        let Some(tls) = &self.tls else {
            return request(tcp, t, body).await;
        };
        let name = ServerName::try_from(t.host.clone())
            .map_err(|e| format!("`{}` as a TLS name: {e}", t.host))?;
        let stream = tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {}: {e}", t.host))?;
        request(stream, t, body).await
    }
}

/// The webhook channel: one POST per batch.
pub struct Hook;

impl Deliver for Hook {
    const CHANNEL: Channel = Channel::Webhook;

    fn configured(s: &Settings) -> bool {
        s.webhook.is_some()
    }

    async fn deliver(s: &Settings, events: &[Event]) -> Result<(), Failure> {
        client(&s.webhook, "webhook")?.post(events).await
    }
}

/// Whether an answer delivered the batch, and if not whether to try again.
fn verdict(status: StatusCode, body: &str) -> Result<(), Failure> {
    let why = || {
        let quoted: String = body.chars().take(QUOTED_BODY).collect();
        format!("answered {status}: {}", quoted.trim())
    };
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() {
        Err(Failure::Transient(why()))
    } else {
        Err(Failure::Permanent(format!(
            "{} (not retried: fix the receiver or the URL)",
            why()
        )))
    }
}

/// One HTTP/1.1 POST on `stream`; the answer's status and the start of its body.
async fn request<S>(
    stream: S,
    t: &WebhookTarget,
    body: Vec<u8>,
) -> Result<(StatusCode, String), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let req = Request::post(t.path.as_str())
        .header(header::HOST, host_header(t))
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("lb/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("building the request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        return Ok((status, String::new()));
    }
    let text = match Limited::new(resp.into_body(), 4096).collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    Ok((status, text))
}

/// `Host:`: the host (IPv6 in brackets), and the port unless the scheme's.
fn host_header(t: &WebhookTarget) -> String {
    let host = if t.host.contains(':') {
        format!("[{}]", t.host)
    } else {
        t.host.clone()
    };
    match (t.tls, t.port) {
        (false, 80) | (true, 443) => host,
        (_, port) => format!("{host}:{port}"),
    }
}

/// Stops the connection task when the exchange ends or is abandoned.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use lb_api::{events::Cause, events::EventKind, types::BackendState};

    use super::*;

    #[test]
    fn the_body_is_the_event_stream_json_in_a_list() {
        let e = Event {
            seq: 4,
            time_ms: 1_700_000_000_000,
            kind: EventKind::BackendState {
                pool: "web".into(),
                backend: "web2".into(),
                address: [10, 0, 0, 2].into(),
                port: Some(80),
                from: Some(BackendState::Up),
                to: BackendState::Maint,
                cause: Cause::Operator,
                reason: "set by an operator".into(),
            },
        };
        let v = serde_json::to_value(Payload {
            events: std::slice::from_ref(&e),
        })
        .unwrap();
        assert_eq!(v["events"][0], serde_json::to_value(&e).unwrap());
        assert_eq!(v["events"][0]["type"], "backend_state");
        assert_eq!(v.as_object().unwrap().len(), 1);
    }

    #[test]
    fn server_errors_are_retried_other_refusals_are_not() {
        assert_eq!(verdict(StatusCode::NO_CONTENT, ""), Ok(()));
        assert!(matches!(
            verdict(StatusCode::BAD_GATEWAY, "upstream"),
            Err(Failure::Transient(r)) if r == "answered 502 Bad Gateway: upstream"
        ));
        assert!(matches!(
            verdict(StatusCode::NOT_FOUND, "no such hook"),
            Err(Failure::Permanent(r)) if r.contains("404 Not Found: no such hook (not retried")
        ));
    }

    #[test]
    fn host_headers() {
        let t = |tls, host: &str, port| WebhookTarget {
            tls,
            host: host.into(),
            port,
            path: "/".into(),
        };
        assert_eq!(host_header(&t(false, "h", 80)), "h");
        assert_eq!(host_header(&t(true, "h", 8443)), "h:8443");
        assert_eq!(host_header(&t(false, "::1", 9000)), "[::1]:9000");
    }
}
