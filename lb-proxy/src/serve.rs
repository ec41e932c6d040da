//! One accepted connection, served by its frontend: `mode http` through
//! the client side ([`crate::front`]) with each request routed and handed
//! to its pool's server side; `mode tcp` relayed to a server of the
//! frontend's default pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::BytesMut;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use lb_config::proxy::{LogFormat, RateReply};
use tokio::time::Instant;

use crate::Shared;
use crate::front::{self, Client, FrontCounters, RequestBody, Settings};
use crate::listen::Accepted;
use crate::log::{
    self, ServerTrace,
    request::{Gauges, RequestLog, TcpEnd},
};
use crate::reject::Reason;
use crate::route::Decision;
use crate::runtime::{Frontend, Runtime};
use crate::upstream::{self, Ctx, ResponseBody, error_response};

/// Serves `conn` for frontend `name` of `rt`; returns at once.
pub(crate) fn spawn(shared: Arc<Shared>, rt: Arc<Runtime>, f: Arc<Frontend>, conn: Accepted) {
    let Accepted {
        bind,
        stream,
        peer,
        local,
        slots,
        closing,
    } = conn;
    // Refused at accept: closed without a word, as HAProxy's `tcp-request
    // connection reject`, and not counted as a connection.
    let tracked = match f.reject.accept(peer.ip()) {
        Ok(t) => t,
        Err(why) => {
            f.settings.counters.reject(why);
            return;
        }
    };
    let client = Client { peer, local };
    let held = Held {
        open: Open::new(&f.settings.counters),
        _slots: slots,
        _tracked: tracked,
    };
    if let Some(setup) = f.log.as_ref().filter(|s| s.format == LogFormat::Connect) {
        log::request::connect(setup, client);
    }
    match f.mode {
        lb_config::proxy::ProxyMode::Http => {
            let (r, w) = stream.into_split();
            let reader = front::Reader {
                io: r,
                buf: BytesMut::with_capacity(front::body::READ_CHUNK),
            };
            let service = HttpService::new(shared, rt, f, client, bind);
            let conn = front::Conn {
                writer: front::write::Writer::new(w, service.front.settings.client),
                service,
                client,
                closing,
                accepted: Instant::now(),
            };
            tokio::spawn(async move {
                conn.run(reader).await;
                drop(held);
            });
        }
        lb_config::proxy::ProxyMode::Tcp => spawn_tcp(&shared, &rt, &f, client, stream, held),
    }
}

/// What a connection holds while it lives: its slots (`maxconn`), its
/// place in the open count and in the per-source table (`rate_limit`).
struct Held {
    open: Open,
    _slots: [crate::listen::Slot; 2],
    _tracked: Option<crate::reject::Tracked>,
}

/// `mode tcp`: relays the connection to a server of the default pool.
fn spawn_tcp(
    shared: &Shared,
    rt: &Runtime,
    f: &Frontend,
    client: Client,
    stream: tokio::net::TcpStream,
    held: Held,
) {
    let pool = f
        .routes
        .default_pool()
        .and_then(|name| rt.pools.get(name))
        .map(|p| p.upstream.clone());
    let ctx = Ctx {
        client: client.peer,
        server_close: true,
        client_timeout: f.settings.client,
    };
    let gauges = Gauges {
        global: shared.global.clone(),
        counters: f.settings.counters.clone(),
    };
    let setup = f.log.clone().filter(|s| s.format != LogFormat::Connect);
    let accepted = Instant::now();
    tokio::spawn(async move {
        let mut trace = ServerTrace::default();
        let mut result = None;
        if let Some(up) = &pool {
            let r = up.relay_logged(stream, &ctx, &mut trace).await;
            match &r {
                Ok(r) => {
                    FrontCounters::add(&held.open.0.bytes_in, r.bytes_in);
                    FrontCounters::add(&held.open.0.bytes_out, r.bytes_out);
                }
                Err(e) => tracing::debug!(client = %client.peer, error = %e, "tcp relay"),
            }
            result = Some(r);
        }
        if let Some(setup) = &setup {
            log::request::tcp(TcpEnd {
                setup,
                client,
                gauges: &gauges,
                accepted,
                pool: pool.as_ref(),
                trace: &trace,
                result: result.as_ref(),
            });
        }
        drop(held);
    });
}

/// Counts a connection open while it lives.
struct Open(Arc<FrontCounters>);

impl Open {
    fn new(c: &Arc<FrontCounters>) -> Open {
        FrontCounters::inc(&c.connections);
        FrontCounters::inc(&c.active);
        Open(c.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// The requests of one HTTP connection: routed by its frontend, forwarded
/// by the pool's server side. Follows reloads between requests.
pub(crate) struct HttpService {
    shared: Arc<Shared>,
    rt: Arc<Runtime>,
    front: Arc<Frontend>,
    client: Client,
    /// The listening address, which names the frontend after a reload.
    bind: SocketAddr,
    /// This client's `option forwardfor` value (None: not added).
    xff: Option<HeaderValue>,
    /// The current request's log; None when the frontend logs no requests.
    log: Option<RequestLog>,
}

impl HttpService {
    fn new(
        shared: Arc<Shared>,
        rt: Arc<Runtime>,
        front: Arc<Frontend>,
        client: Client,
        bind: SocketAddr,
    ) -> Self {
        let xff = front.rewrite.forwardfor_value(client.peer);
        let log = request_log(&shared, &front, client);
        HttpService {
            shared,
            rt,
            front,
            client,
            bind,
            xff,
            log,
        }
    }

    /// The frontend after a reload: the one that binds the listening
    /// address now; None when none does (the bind was removed).
    fn refresh(&mut self) -> Option<()> {
        if self.shared.runtime.load().generation == self.rt.generation {
            return Some(());
        }
        let now = self.shared.runtime.load_full();
        let front = now.frontend_of(self.bind)?.clone();
        self.rt = now;
        if !Arc::ptr_eq(&front, &self.front) {
            self.xff = front.rewrite.forwardfor_value(self.client.peer);
            self.log = request_log(&self.shared, &front, self.client);
            self.front = front;
        }
        Some(())
    }
}

impl front::Service for HttpService {
    type Body = ResponseBody;

    fn settings(&mut self) -> Option<Settings> {
        self.refresh()?;
        Some(self.front.settings.clone())
    }

    async fn call(&mut self, req: Request<RequestBody>, client: Client) -> Response<ResponseBody> {
        // A reload may have come while the head was awaited.
        if self.refresh().is_none() {
            return error_response(StatusCode::SERVICE_UNAVAILABLE, true);
        }
        if let Some(log) = &mut self.log {
            log.begin(&req);
        }
        if let Some(reply) = self.front.reject.request(client.peer.ip()) {
            let counters = &self.front.settings.counters;
            counters.reject(Reason::HttpReqRate);
            return match reply {
                RateReply::Status(s) => error_response(deny_status(s), true),
                RateReply::Close => front::hang_up(error_response(StatusCode::FORBIDDEN, true)),
            };
        }
        let (mut parts, body) = req.into_parts();
        let pool = match self.front.routes.decide(&parts, client.peer) {
            Decision::Deny(status) => {
                FrontCounters::inc(&self.front.settings.counters.denied);
                if let Some(log) = &mut self.log {
                    log.denied();
                }
                return error_response(status, true);
            }
            Decision::Pool(name) => self.rt.pools.get(name),
            Decision::NoPool => None,
        };
        let Some(pool) = pool else {
            return error_response(StatusCode::SERVICE_UNAVAILABLE, false);
        };
        crate::headers::strip_hop_by_hop(&mut parts.headers);
        // `100 Continue` was answered by the client side already.
        parts.headers.remove(header::EXPECT);
        self.front
            .rewrite
            .apply(&mut parts.headers, self.xff.as_ref());
        let ctx = Ctx {
            client: client.peer,
            server_close: self.front.http_server_close,
            client_timeout: self.front.settings.client,
        };
        let req = Request::from_parts(parts, upstream_body(body));
        let Some(log) = &mut self.log else {
            return pool.upstream.forward(req, &ctx).await;
        };
        let res = (pool.upstream)
            .forward_logged(req, &ctx, &mut log.trace)
            .await;
        log.forwarded(&pool.upstream);
        res
    }

    fn error(&self, status: StatusCode, close: bool) -> Response<ResponseBody> {
        error_response(status, close)
    }

    fn logs(&self) -> bool {
        self.log.is_some()
    }

    fn logged(&mut self, exchange: front::Exchange) {
        if let Some(log) = &mut self.log {
            log.end(exchange);
        }
    }
}

/// The request log of `front`'s connection from `client`, when it logs
/// requests (HAProxy's `Connect from` line is written at accept instead).
fn request_log(shared: &Shared, front: &Frontend, client: Client) -> Option<RequestLog> {
    let setup = front.log.clone()?;
    if setup.format == LogFormat::Connect {
        return None;
    }
    let gauges = Gauges {
        global: shared.global.clone(),
        counters: front.settings.counters.clone(),
    };
    Some(RequestLog::new(setup, client, gauges))
}

fn upstream_body(b: RequestBody) -> upstream::RequestBody {
    match b {
        RequestBody::Empty => upstream::RequestBody::Empty,
        RequestBody::Full(bytes) => upstream::RequestBody::Full(Some(bytes)),
        RequestBody::Client(body) => upstream::RequestBody::stream(body),
    }
}

/// A configured deny status as a status code (the file's are all valid).
fn deny_status(s: u16) -> StatusCode {
    StatusCode::from_u16(s).unwrap_or(StatusCode::TOO_MANY_REQUESTS)
}
