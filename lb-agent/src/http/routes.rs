//! The control API's routes (`lb_api::paths::Route`): from an HTTP request to
//! a [`Request`] for the reconciler and back. Everything is checked here
//! (route, method, body size, JSON shape) before anything is sent.

use hyper::{Method, StatusCode};

use lb_api::{
    paths::{ExplainQuery, Route},
    types::{ApiError, SetState, SetWeight},
};

use super::{
    Shared,
    body::{
        HttpRequest, HttpResponse, error_response, json, json_response, method_not_allowed,
        read_json,
    },
    events, lookup,
};
use crate::api::{Request, RequestSender, ask};

pub(super) async fn respond(shared: &Shared, req: HttpRequest) -> HttpResponse {
    let path = req.uri().path();
    let route = match Route::parse(path) {
        Ok(Some(r)) => r,
        Ok(None) => return error_response(&ApiError::not_found(format!("no endpoint {path}"))),
        Err(e) => return error_response(&e),
    };
    let allow = allow(&route);
    if !allow.contains(req.method()) {
        return method_not_allowed(allow, req.method(), path);
    }
    if route == Route::Events {
        return events::respond(&shared.ctx.events, shared.stopped(), req.uri().query());
    }
    let tx = &shared.ctx.requests;
    let answer = if req.method() == Method::GET {
        view(tx, route, req.uri().query()).await
    } else {
        change(tx, route, req).await
    };
    match answer {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error_response(&e),
    }
}

/// The methods each route takes; the one that is not GET changes something.
fn allow(route: &Route) -> &'static [Method] {
    const GET: &[Method] = &[Method::GET];
    const POST: &[Method] = &[Method::POST];
    const PUT: &[Method] = &[Method::PUT];
    const GET_POST: &[Method] = &[Method::GET, Method::POST];
    const GET_DELETE: &[Method] = &[Method::GET, Method::DELETE];
    match route {
        Route::Status | Route::Stats | Route::Config | Route::Explain | Route::Events => GET,
        Route::Flows(..) | Route::Vrrp | Route::Frontends => GET,
        Route::Reload | Route::Teardown => POST,
        Route::Services | Route::Pools | Route::Backends(_) => GET_POST,
        Route::Service(_) | Route::Pool(_) | Route::Backend(..) => GET_DELETE,
        Route::BackendState(..) | Route::BackendWeight(..) => PUT,
    }
}

/// A GET: read from the reconciler; views of one service, pool or backend
/// come out of `Status`.
async fn view(tx: &RequestSender, route: Route, query: Option<&str>) -> Result<Vec<u8>, ApiError> {
    match route {
        Route::Status => json(ask(tx, Request::Status).await?),
        Route::Stats => json(ask(tx, Request::Stats).await?),
        Route::Config => json(ask(tx, Request::Config).await?),
        Route::Vrrp => json(crate::vrrp::snapshot()),
        Route::Frontends => json(crate::frontends::frontends()),
        Route::Explain => {
            let ExplainQuery { service, client } = ExplainQuery::parse(query)?;
            json(
                ask(tx, |reply| Request::Explain {
                    service,
                    client,
                    reply,
                })
                .await?,
            )
        }
        Route::Flows(pool, backend) => json(
            ask(tx, |reply| Request::Flows {
                pool,
                backend,
                reply,
            })
            .await?,
        ),
        other => lookup::view(ask(tx, Request::Status).await?, &other),
    }
}

/// A POST, PUT or DELETE: the body is read and checked before the
/// reconciler is asked.
async fn change(tx: &RequestSender, route: Route, req: HttpRequest) -> Result<Vec<u8>, ApiError> {
    let done = match route {
        Route::Reload => return json(ask(tx, Request::Reload).await?),
        Route::Teardown => ask(tx, Request::Teardown).await?,
        Route::Services => {
            let body = read_json(req).await?;
            ask(tx, |reply| Request::AddService(body, reply)).await?
        }
        Route::Service(service) => {
            ask(tx, |reply| Request::RemoveService { service, reply }).await?
        }
        Route::Pools => {
            let body = read_json(req).await?;
            ask(tx, |reply| Request::AddPool(body, reply)).await?
        }
        Route::Pool(pool) => ask(tx, |reply| Request::RemovePool { pool, reply }).await?,
        other => return change_backend(tx, other, req).await,
    };
    json(done)
}

/// A change to a pool's backends.
async fn change_backend(
    tx: &RequestSender,
    route: Route,
    req: HttpRequest,
) -> Result<Vec<u8>, ApiError> {
    let done = match route {
        Route::Backends(pool) => {
            let backend = read_json(req).await?;
            ask(tx, |reply| Request::AddBackend {
                pool,
                backend,
                reply,
            })
            .await?
        }
        Route::Backend(pool, backend) => {
            ask(tx, |reply| Request::RemoveBackend {
                pool,
                backend,
                reply,
            })
            .await?
        }
        Route::BackendState(pool, backend) => {
            let SetState { state } = read_json(req).await?;
            ask(tx, |reply| Request::SetState {
                pool,
                backend,
                state,
                reply,
            })
            .await?
        }
        Route::BackendWeight(pool, backend) => {
            let SetWeight { weight } = read_json(req).await?;
            ask(tx, |reply| Request::SetWeight {
                pool,
                backend,
                weight,
                reply,
            })
            .await?
        }
        other => return Err(ApiError::internal(format!("{other:?} changes nothing"))),
    };
    json(done)
}
