//! The server side against real sockets: test servers on 127.0.0.1 that
//! count what they see and misbehave on demand, and pools built the way
//! the runtime builds them (the real chooser, cookie rules and balancers).

mod failures;
mod framing;
mod http;
mod queueing;
mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use lb_config::proxy::{BackendL7, PoolL7, ProxyConfig};
use lb_config::{AdminState, BackendConfig, PoolConfig};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{Ctx, RequestBody, ResponseBody, Upstream};
use crate::runtime::{self, PoolView, Runtime, ServerState};

/// What a test server saw.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    pub in_flight: AtomicU32,
    pub peak: AtomicU32,
}

/// An HTTP/1.1 test server. It answers 200 with its name as the body and
/// in `x-server`; a request header `x-delay-ms: N` makes it wait N ms
/// first, `x-drop: 1` makes it close the connection without answering.
pub(super) struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    accept: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(name: &'static str) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test server");
        Self::on(name, listener)
    }

    /// Serves on `listener` (to restart a server on the same port).
    pub fn on(name: &'static str, listener: TcpListener) -> Server {
        let addr = listener.local_addr().expect("a bound address");
        let seen = Arc::new(Seen::default());
        let accept = tokio::spawn(accept_loop(name, listener, seen.clone()));
        Server { addr, seen, accept }
    }

    /// Kills the server: its listener and every connection close at once,
    /// requests in flight unanswered (a crashed process).
    pub async fn kill(self) {
        self.accept.abort();
        let _ = self.accept.await;
    }

    pub fn requests(&self) -> u64 {
        self.seen.requests.load(SeqCst)
    }

    pub fn connections(&self) -> u64 {
        self.seen.connections.load(SeqCst)
    }
}

async fn accept_loop(name: &'static str, listener: TcpListener, seen: Arc<Seen>) {
    // Dropped with this task: every connection task is aborted with it.
    let mut conns = JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        seen.connections.fetch_add(1, SeqCst);
        let seen = seen.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req| answer(name, seen.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

#[derive(Debug, thiserror::Error)]
#[error("told to drop the connection")]
struct Dropped;

async fn answer(
    name: &'static str,
    seen: Arc<Seen>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    seen.requests.fetch_add(1, SeqCst);
    let now = seen.in_flight.fetch_add(1, SeqCst) + 1;
    seen.peak.fetch_max(now, SeqCst);
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let delay = header("x-delay-ms")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let drop_it = header("x-drop").is_some();
    let cookie = header("cookie");
    let connection = header("connection");
    let body_len = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    seen.in_flight.fetch_sub(1, SeqCst);
    if drop_it {
        return Err(Dropped);
    }
    let mut res = Response::builder()
        .header("x-server", name)
        .header("x-body-len", body_len)
        .header("keep-alive", "timeout=5");
    for (name, value) in [("x-saw-cookie", cookie), ("x-saw-connection", connection)] {
        if let Some(value) = value {
            res = res.header(name, value);
        }
    }
    Ok(res
        .body(Full::new(Bytes::from(name)))
        .expect("a valid response"))
}

/// Servers of a test pool, by address; `maxconn` for every one.
pub(super) fn backends(servers: &[(&str, SocketAddr)], maxconn: Option<u32>) -> Vec<BackendConfig> {
    servers
        .iter()
        .map(|(name, addr)| BackendConfig {
            name: (*name).to_owned(),
            address: addr.ip(),
            port: Some(addr.port()),
            weight: 1,
            state: AdminState::Up,
            interface: None,
            mac: None,
            check: Default::default(),
            proxy: BackendL7 {
                cookie: Some((*name).to_owned()),
                maxconn,
            },
        })
        .collect()
}

/// The server side of pool `web` built as the runtime builds it.
pub(super) fn upstream(backends: Vec<BackendConfig>, l7: PoolL7) -> Upstream {
    let states = vec![ServerState::Up; backends.len()];
    view_upstream(
        PoolView {
            config: pool_config(backends, l7),
            states,
        },
        &Runtime::default(),
    )
}

pub(super) fn pool_config(backends: Vec<BackendConfig>, l7: PoolL7) -> PoolConfig {
    PoolConfig {
        name: "web".into(),
        backends,
        check: None,
        notify_up: None,
        notify_down: None,
        proxy: l7,
    }
}

/// Builds the pool of `view` over `old` (a reload, or a state change).
pub(super) fn view_upstream(view: PoolView, old: &Runtime) -> Upstream {
    let pools = runtime::pools(&ProxyConfig::default(), &[view], old);
    pools
        .get("web")
        .expect("the pool is built")
        .upstream
        .clone()
}

pub(super) fn ctx() -> Ctx {
    Ctx {
        client: "127.0.0.1:40000".parse().expect("an address"),
        server_close: false,
        client_timeout: Duration::from_secs(60),
    }
}

pub(super) fn get(path: &str) -> Request<RequestBody> {
    Request::builder()
        .uri(path)
        .header("host", "test")
        .body(RequestBody::Empty)
        .expect("a valid request")
}

/// Status, `x-server` and body of a response, the body read whole.
pub(super) async fn read(res: Response<ResponseBody>) -> (u16, String, String) {
    let status = res.status().as_u16();
    let server = res
        .headers()
        .get("x-server")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, server, String::from_utf8_lossy(&body).into_owned())
}

/// A loopback port nothing listens on: connecting is refused at once.
pub(super) async fn refusing_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("an address");
    drop(listener);
    addr
}
