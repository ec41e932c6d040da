//! The agent's one HTTP server (hyper 1, HTTP/1.1): the control API under
//! `/v1/` and Prometheus metrics at `/metrics`, on every listener the
//! configuration asks for. Each listener has a `Policy`: what it serves
//! and whether it wants a bearer token:
//!
//! | listener | serves | access |
//! |---|---|---|
//! | `agent.socket` (unix) | `/v1/...`, `/metrics` | the socket's mode, 0600 |
//! | `agent.api_listen` (TCP) | `/v1/...`, `/metrics` | `Authorization: Bearer` with `agent.api_token_file` |
//! | `agent.metrics_listen` (TCP) | `/metrics` only | none |
//! | `stats.bind` (TCP) | the statistics page at `stats.uri` | basic auth with `stats.auth` |
//!
//! `routes` is the API, `events` its one streaming endpoint, `metrics`
//! the scrape, `stats` the statistics page; `accept` runs the listeners.

mod accept;
mod auth;
mod body;
mod events;
mod lookup;
mod metrics;
mod routes;
mod stats;
mod unix;

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::{Context as _, Result, bail};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use lb_api::{paths, types::ApiError};
use lb_config::{AgentConfig, proxy::Bind, stats::StatsConfig};

use crate::{
    api::RequestSender,
    events::EventBus,
    metrics::{BuildInfo, EventCounts},
};
pub use body::MAX_BODY;
use body::{HttpRequest, HttpResponse, error_response};
pub use unix::UnixSocket;

/// What the server needs from the agent.
pub struct Ctx {
    /// Where requests for the reconciler go.
    pub requests: RequestSender,
    /// The agent's events: `GET /v1/events` and the event metrics.
    pub events: EventBus,
    /// For `lb_build_info`.
    pub build: BuildInfo,
}

/// What a path belongs to; a listener serves some of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// The control API, `/v1/...`.
    Api,
    /// `GET /metrics`.
    Metrics,
}

impl Surface {
    fn of(path: &str) -> Option<Surface> {
        if path == paths::METRICS {
            Some(Surface::Metrics)
        } else if path.starts_with(paths::API_PREFIX) {
            Some(Surface::Api)
        } else {
            None
        }
    }

    const fn describe(self) -> &'static str {
        match self {
            Surface::Api => "/v1/...",
            Surface::Metrics => paths::METRICS,
        }
    }
}

/// How a listener treats requests.
#[derive(Debug)]
struct Policy {
    serves: &'static [Surface],
    /// Required as `Authorization: Bearer` on every request, if set.
    token: Option<String>,
    /// The statistics page: the listener serves it and nothing else.
    stats: Option<Arc<stats::Page>>,
}

/// The API and metrics on the unix socket and the token-protected TCP API.
const EVERYTHING: &[Surface] = &[Surface::Api, Surface::Metrics];

/// Every listener, bound.
#[derive(Debug)]
pub struct Servers {
    unix: UnixSocket,
    /// The TCP API and its token.
    api: Option<(TcpListener, String)>,
    metrics: Option<TcpListener>,
    /// The statistics page's listener, settings and syslog tag
    /// (`proxy.log_tag`).
    stats: Option<(TcpListener, StatsConfig, String)>,
}

/// What serving shares with every connection.
struct Shared {
    ctx: Ctx,
    counts: EventCounts,
    /// Becomes `true` when the agent stops.
    stop: watch::Receiver<bool>,
}

impl Servers {
    /// Binds every listener `agent` asks for, and reads the API token: call
    /// it before saying READY, so that an address in use fails the start.
    /// Errors name the socket, address or file.
    pub async fn bind(agent: &AgentConfig) -> Result<Servers> {
        let unix = UnixSocket::bind(&agent.socket)
            .await
            .with_context(|| format!("binding the control socket {}", agent.socket.display()))?;
        let api = match agent.api_listen {
            Some(addr) => Some((
                bind_tcp(addr, "the TCP control API").await?,
                token(agent).await?,
            )),
            None => None,
        };
        let metrics = match agent.metrics_listen {
            Some(addr) => Some(bind_tcp(addr, "the metrics endpoint").await?),
            None => None,
        };
        Ok(Servers {
            unix,
            api,
            metrics,
            stats: None,
        })
    }

    /// Binds the statistics page's listener, when `stats.bind` asks for
    /// one; its access log lines carry `log_tag`.
    pub async fn with_stats(mut self, cfg: &StatsConfig, log_tag: &str) -> Result<Servers> {
        if let Some(bind) = cfg.bind {
            let listener = bind_stats(bind)
                .with_context(|| format!("binding the statistics page on {bind}"))?;
            self.stats = Some((listener, cfg.clone(), log_tag.to_owned()));
        }
        Ok(self)
    }

    /// The statistics page's address.
    pub fn stats_addr(&self) -> Option<SocketAddr> {
        self.stats.as_ref().and_then(|(l, ..)| l.local_addr().ok())
    }

    /// The TCP API's address (the real port when bound to port 0).
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The metrics endpoint's address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes; then every listener stops
    /// accepting, open answers get up to 5 s to finish (event streams end at
    /// once), and the socket file is removed. Returns when all that is done.
    pub async fn serve(self, ctx: Ctx, shutdown: impl Future<Output = ()>) {
        let (counts, counting) = EventCounts::start(&ctx.events);
        let (stop_tx, stop) = watch::channel(false);
        let shared = Arc::new(Shared { ctx, counts, stop });
        let Servers {
            unix,
            api,
            metrics,
            stats,
        } = self;
        let mut listeners = JoinSet::new();
        let mut following = None;
        if let Some((listener, cfg, log_tag)) = stats {
            match stats::Page::start(cfg, &log_tag, &shared.ctx.events) {
                Ok((page, task)) => {
                    following = Some(task);
                    log_listening(&listener, "the statistics page");
                    let policy = Policy {
                        serves: &[],
                        token: None,
                        stats: Some(Arc::new(page)),
                    };
                    let shared = shared.clone();
                    listeners.spawn(async move { accept::run(&listener, policy, shared).await });
                }
                Err(e) => tracing::error!("the statistics page is not served: {e:#}"),
            }
        }
        if let Some((listener, token)) = api {
            log_listening(&listener, "control API and /metrics (bearer token)");
            let policy = Policy {
                serves: EVERYTHING,
                token: Some(token),
                stats: None,
            };
            let shared = shared.clone();
            listeners.spawn(async move { accept::run(&listener, policy, shared).await });
        }
        if let Some(listener) = metrics {
            log_listening(&listener, "/metrics");
            let policy = Policy {
                serves: &[Surface::Metrics],
                token: None,
                stats: None,
            };
            let shared = shared.clone();
            listeners.spawn(async move { accept::run(&listener, policy, shared).await });
        }
        tracing::info!(socket = %unix.path().display(), "serving the control API and /metrics");
        let policy = Policy {
            serves: EVERYTHING,
            token: None,
            stats: None,
        };
        let on_unix = async { accept::run(&unix.listener, policy, shared.clone()).await };
        let stopping = async {
            shutdown.await;
            stop_tx.send_replace(true);
        };
        tokio::join!(on_unix, stopping);
        while let Some(done) = listeners.join_next().await {
            if let Err(e) = done {
                tracing::warn!(error = %e, "an HTTP listener task failed");
            }
        }
        counting.abort();
        if let Some(task) = following {
            task.abort();
        }
        if let Err(e) = unix.remove().await {
            tracing::warn!(error = %e, "removing the control socket");
        }
    }
}

impl Shared {
    /// Resolves once the agent stops (or serving has ended).
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        stopped(self.stop.clone())
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The page's socket as HAProxy binds one: an IPv6 address takes IPv6
/// only (so `*:PORT` can sit beside `[::]:PORT`), and an address not (yet)
/// on the host, a VIP, can be bound (`IP_FREEBIND`).
fn bind_stats(bind: Bind) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(bind.addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if bind.v6only {
        s.set_only_v6(true)?;
    }
    if !bind.is_wildcard() {
        if bind.addr.is_ipv4() {
            s.set_freebind_v4(true)?;
        } else {
            s.set_freebind_v6(true)?;
        }
    }
    s.set_nonblocking(true)?;
    s.bind(&bind.addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

async fn bind_tcp(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} on {addr}"))
}

/// The TCP API's token: the file's content without surrounding whitespace (a
/// token file ends in a newline); an empty token would let anyone in.
async fn token(agent: &AgentConfig) -> Result<String> {
    let Some(file) = &agent.api_token_file else {
        bail!("agent.api_listen needs agent.api_token_file: the TCP API requires a bearer token");
    };
    let text = tokio::fs::read_to_string(file)
        .await
        .with_context(|| format!("reading the API token {}", file.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!(
            "the API token file {} is empty; put a secret in it (the TCP API needs one)",
            file.display()
        );
    }
    Ok(token.to_owned())
}

fn log_listening(listener: &TcpListener, what: &str) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving {what} on http://{addr}");
    }
}

/// Answers one request under the listener's policy.
async fn handle(shared: &Shared, policy: &Policy, req: HttpRequest) -> HttpResponse {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = respond(shared, policy, req).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "HTTP request");
    resp
}

async fn respond(shared: &Shared, policy: &Policy, req: HttpRequest) -> HttpResponse {
    if let Some(page) = &policy.stats {
        return stats::respond(shared, page, req).await;
    }
    if let Some(token) = &policy.token
        && !auth::authorized(req.headers(), token)
    {
        return auth::unauthorized();
    }
    let path = req.uri().path();
    match Surface::of(path).filter(|s| policy.serves.contains(s)) {
        Some(Surface::Api) => routes::respond(shared, req).await,
        Some(Surface::Metrics) => metrics::respond(shared, req.method(), path).await,
        None => {
            let served: Vec<&str> = policy.serves.iter().map(|s| s.describe()).collect();
            error_response(&ApiError::not_found(format!(
                "no endpoint {path} (this listener serves {})",
                served.join(" and ")
            )))
        }
    }
}
