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
use tokio::time::Instant;

use crate::Shared;
use crate::front::{self, Client, FrontCounters, RequestBody, Settings};
use crate::listen::Accepted;
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
    let client = Client { peer, local };
    let open = Open::new(&f.settings.counters);
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
                drop((slots, open));
            });
        }
        lb_config::proxy::ProxyMode::Tcp => {
            let pool = f
                .routes
                .default_pool()
                .and_then(|name| rt.pools.get(name))
                .map(|p| p.upstream.clone());
            let ctx = Ctx {
                client: peer,
                server_close: true,
                client_timeout: f.settings.client,
            };
            tokio::spawn(async move {
                if let Some(up) = pool {
                    match up.relay(stream, &ctx).await {
                        Ok(r) => {
                            FrontCounters::add(&open.0.bytes_in, r.bytes_in);
                            FrontCounters::add(&open.0.bytes_out, r.bytes_out);
                        }
                        Err(e) => tracing::debug!(client = %peer, error = %e, "tcp relay"),
                    }
                }
                drop((slots, open));
            });
        }
    }
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
        HttpService {
            shared,
            rt,
            front,
            client,
            bind,
            xff,
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
        let (mut parts, body) = req.into_parts();
        let pool = match self.front.routes.decide(&parts, client.peer) {
            Decision::Deny(status) => {
                FrontCounters::inc(&self.front.settings.counters.denied);
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
        pool.upstream.forward(req, &ctx).await
    }

    fn error(&self, status: StatusCode, close: bool) -> Response<ResponseBody> {
        error_response(status, close)
    }
}

fn upstream_body(b: RequestBody) -> upstream::RequestBody {
    match b {
        RequestBody::Empty => upstream::RequestBody::Empty,
        RequestBody::Full(bytes) => upstream::RequestBody::Full(Some(bytes)),
        RequestBody::Client(body) => upstream::RequestBody::stream(body),
    }
}
