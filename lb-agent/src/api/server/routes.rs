//! The control API's routes: from an HTTP request to a [`Request`] for the
//! reconciler and back. Everything is checked here (token, route, method,
//! body size, JSON shape) before anything is sent.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::{
    HeaderMap, Method, Response, StatusCode,
    body::Incoming,
    header::{self, HeaderValue},
};
use percent_encoding::percent_decode_str;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::oneshot;

use lb_api::types::{
    AddBackend, AddVip, ApiError, ErrorBody, SetState, SetWeight, Status, VipStatus,
};

use crate::api::{Reply, Request, RequestSender};

type HttpRequest = hyper::Request<Incoming>;
pub(super) type HttpResponse = Response<Full<Bytes>>;

/// Largest request body accepted; the API's bodies are a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// What every request handler needs.
pub(super) struct Ctx {
    pub(super) tx: RequestSender,
    /// Bearer token required on every request (TCP only).
    pub(super) token: Option<String>,
}

pub(super) async fn handle(ctx: &Ctx, req: HttpRequest) -> HttpResponse {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = respond(ctx, req).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "API request");
    resp
}

async fn respond(ctx: &Ctx, req: HttpRequest) -> HttpResponse {
    if let Some(token) = &ctx.token
        && !authorized(req.headers(), token)
    {
        let mut resp = error_response(&ApiError {
            code: 401,
            reason: "missing or wrong bearer token".into(),
        });
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return resp;
    }
    let path = req.uri().path();
    let resource = match Resource::parse(path) {
        Ok(Some(r)) => r,
        Ok(None) => return error_response(&ApiError::not_found(format!("no endpoint {path}"))),
        Err(e) => return error_response(&e),
    };
    let allow = resource.allow();
    if !allow.contains(req.method()) {
        let allowed = allow
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let mut resp = error_response(&ApiError {
            code: 405,
            reason: format!(
                "{} is not allowed on {path} (allowed: {allowed})",
                req.method()
            ),
        });
        if let Ok(v) = HeaderValue::from_str(&allowed) {
            resp.headers_mut().insert(header::ALLOW, v);
        }
        return resp;
    }
    match dispatch(&ctx.tx, resource, req).await {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error_response(&e),
    }
}

/// Checks `Authorization: Bearer <token>` (scheme case-insensitive, RFC 7235 §2.1).
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let Some((scheme, presented)) = value.split_at_checked(7) else {
        return false;
    };
    scheme.eq_ignore_ascii_case(b"bearer ") && constant_time_eq(presented, token.as_bytes())
}

/// Compares without returning early, so the time taken does not tell how
/// much of the token a guess got right. (Its length may still show.)
fn constant_time_eq(presented: &[u8], secret: &[u8]) -> bool {
    let mut diff = presented.len() ^ secret.len();
    for (i, b) in presented.iter().enumerate() {
        diff |= usize::from(b ^ secret.get(i).copied().unwrap_or(0));
    }
    std::hint::black_box(diff) == 0
}

/// The API's resources, by path; `{vip}` and `{backend}` are percent-decoded.
#[derive(Debug, PartialEq, Eq)]
enum Resource {
    Status,
    Stats,
    Config,
    Reload,
    Teardown,
    Explain,
    Vips,
    Vip(String),
    Backends(String),
    Backend(String, String),
    BackendState(String, String),
    BackendWeight(String, String),
    Flows(String, String),
}

impl Resource {
    /// `Ok(None)`: no such resource (404). Segments are split before they are
    /// decoded, so `10.0.0.1%3A80%2Ftcp` is one segment.
    fn parse(path: &str) -> Result<Option<Resource>, ApiError> {
        let Some(rest) = path.strip_prefix("/v1/") else {
            return Ok(None);
        };
        let segs = rest
            .split('/')
            .map(|s| {
                percent_decode_str(s)
                    .decode_utf8()
                    .map(|s| s.into_owned())
                    .map_err(|_| ApiError::bad_request(format!("{path}: not UTF-8 once decoded")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if segs.iter().any(String::is_empty) {
            return Ok(None);
        }
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        Ok(Some(match s.as_slice() {
            ["status"] => Resource::Status,
            ["stats"] => Resource::Stats,
            ["config"] => Resource::Config,
            ["reload"] => Resource::Reload,
            ["teardown"] => Resource::Teardown,
            ["explain"] => Resource::Explain,
            ["vips"] => Resource::Vips,
            ["vips", vip] => Resource::Vip(vip.to_string()),
            ["vips", vip, "backends"] => Resource::Backends(vip.to_string()),
            ["vips", vip, "backends", be] => Resource::Backend(vip.to_string(), be.to_string()),
            ["vips", vip, "backends", be, "state"] => {
                Resource::BackendState(vip.to_string(), be.to_string())
            }
            ["vips", vip, "backends", be, "weight"] => {
                Resource::BackendWeight(vip.to_string(), be.to_string())
            }
            ["vips", vip, "backends", be, "flows"] => {
                Resource::Flows(vip.to_string(), be.to_string())
            }
            _ => return Ok(None),
        }))
    }

    fn allow(&self) -> &'static [Method] {
        const GET: &[Method] = &[Method::GET];
        const POST: &[Method] = &[Method::POST];
        const PUT: &[Method] = &[Method::PUT];
        const DELETE: &[Method] = &[Method::DELETE];
        const GET_POST: &[Method] = &[Method::GET, Method::POST];
        const GET_DELETE: &[Method] = &[Method::GET, Method::DELETE];
        match self {
            Resource::Status | Resource::Stats | Resource::Config | Resource::Explain => GET,
            Resource::Flows(..) => GET,
            Resource::Reload | Resource::Teardown => POST,
            Resource::Vips | Resource::Backends(_) => GET_POST,
            Resource::Vip(_) => GET_DELETE,
            Resource::Backend(..) => DELETE,
            Resource::BackendState(..) | Resource::BackendWeight(..) => PUT,
        }
    }
}

/// Turns a routed, method-checked request into reconciler requests; the body
/// is read and validated before anything is sent.
async fn dispatch(
    tx: &RequestSender,
    resource: Resource,
    req: HttpRequest,
) -> Result<Vec<u8>, ApiError> {
    let get = req.method() == Method::GET;
    match resource {
        Resource::Status => json(ask(tx, Request::Status).await?),
        Resource::Stats => json(ask(tx, Request::Stats).await?),
        Resource::Config => json(ask(tx, Request::Config).await?),
        Resource::Reload => json(ask(tx, Request::Reload).await?),
        Resource::Teardown => json(ask(tx, Request::Teardown).await?),
        Resource::Explain => {
            let (vip, client) = explain_query(req.uri().query())?;
            json(ask(tx, |reply| Request::Explain { vip, client, reply }).await?)
        }
        Resource::Vips if get => json(ask(tx, Request::Status).await?.vips),
        Resource::Vips => {
            let body: AddVip = read_json(req).await?;
            json(ask(tx, |reply| Request::AddVip(body, reply)).await?)
        }
        Resource::Vip(vip) if get => json(find_vip(ask(tx, Request::Status).await?, &vip)?),
        Resource::Vip(vip) => json(ask(tx, |reply| Request::RemoveVip { vip, reply }).await?),
        Resource::Backends(vip) if get => {
            json(find_vip(ask(tx, Request::Status).await?, &vip)?.backends)
        }
        Resource::Backends(vip) => {
            let backend: AddBackend = read_json(req).await?;
            json(
                ask(tx, |reply| Request::AddBackend {
                    vip,
                    backend,
                    reply,
                })
                .await?,
            )
        }
        Resource::Backend(vip, backend) => json(
            ask(tx, |reply| Request::RemoveBackend {
                vip,
                backend,
                reply,
            })
            .await?,
        ),
        Resource::BackendState(vip, backend) => {
            let SetState { state } = read_json(req).await?;
            json(
                ask(tx, |reply| Request::SetState {
                    vip,
                    backend,
                    state,
                    reply,
                })
                .await?,
            )
        }
        Resource::BackendWeight(vip, backend) => {
            let SetWeight { weight } = read_json(req).await?;
            json(
                ask(tx, |reply| Request::SetWeight {
                    vip,
                    backend,
                    weight,
                    reply,
                })
                .await?,
            )
        }
        Resource::Flows(vip, backend) => json(
            ask(tx, |reply| Request::Flows {
                vip,
                backend,
                reply,
            })
            .await?,
        ),
    }
}

/// Sends one request to the reconciler and waits for its answer.
async fn ask<T>(tx: &RequestSender, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, ApiError> {
    let shutting_down = || ApiError {
        code: 503,
        reason: "agent is shutting down".into(),
    };
    let (reply, answer) = oneshot::channel();
    tx.send(make(reply)).map_err(|_| shutting_down())?;
    answer.await.map_err(|_| shutting_down())?
}

/// Whether `id` names this VIP: its name, or `address:port/protocol`
/// (`[v6]:port/protocol`; an unbracketed IPv6 address is accepted too).
pub fn vip_matches(vip: &VipStatus, id: &str) -> bool {
    if vip.name == id {
        return true;
    }
    let Some((addr, proto)) = id.rsplit_once('/') else {
        return false;
    };
    if proto != vip.protocol.as_str() {
        return false;
    }
    let parsed = addr
        .parse::<SocketAddr>()
        .map(|a| (a.ip(), a.port()))
        .ok()
        .or_else(|| {
            let (ip, port) = addr.rsplit_once(':')?;
            Some((ip.parse().ok()?, port.parse().ok()?))
        });
    parsed == Some((vip.address, vip.port))
}

fn find_vip(status: Status, id: &str) -> Result<VipStatus, ApiError> {
    status
        .vips
        .into_iter()
        .find(|v| vip_matches(v, id))
        .ok_or_else(|| ApiError::not_found(format!("no VIP `{id}`")))
}

/// `?vip=...&client=...`, both required, nothing else accepted.
fn explain_query(query: Option<&str>) -> Result<(String, String), ApiError> {
    let usage = "explain takes ?vip=NAME|ADDR:PORT/PROTO&client=IP[:PORT]";
    let (mut vip, mut client) = (None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| ApiError::bad_request(format!("{key}: not UTF-8 once decoded")))?
            .into_owned();
        match key {
            "vip" => vip = Some(value),
            "client" => client = Some(value),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter `{key}`; {usage}"
                )));
            }
        }
    }
    match (vip, client) {
        (Some(v), Some(c)) if !v.is_empty() && !c.is_empty() => Ok((v, c)),
        _ => Err(ApiError::bad_request(usage)),
    }
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes. The content type is not
/// checked: `curl -d` sends a form type, and the body must be JSON anyway.
async fn read_json<T: DeserializeOwned>(req: HttpRequest) -> Result<T, ApiError> {
    let too_large = || ApiError {
        code: 413,
        reason: format!("request body larger than {} KiB", MAX_BODY / 1024),
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                too_large()
            } else {
                ApiError::bad_request(format!("reading the request body: {e}"))
            }
        })?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

fn json<T: Serialize>(value: T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&value).map_err(|e| ApiError::internal(format!("encoding the answer: {e}")))
}

fn json_response(status: StatusCode, mut body: Vec<u8>) -> HttpResponse {
    body.push(b'\n');
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The error as `{"error": {...}}` with its code as the status; a code that
/// is not an HTTP error status becomes 500.
fn error_response(error: &ApiError) -> HttpResponse {
    let status = StatusCode::from_u16(error.code)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorBody {
        error: ApiError {
            code: status.as_u16(),
            reason: error.reason.clone(),
        },
    };
    let bytes = serde_json::to_vec(&body)
        .unwrap_or_else(|_| br#"{"error":{"code":500,"reason":"encoding the error"}}"#.to_vec());
    let mut resp = json_response(status, bytes);
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The unread body is still on the wire: don't try to reuse the connection.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_split_before_decoding() {
        assert_eq!(
            Resource::parse("/v1/vips/10.0.0.1%3A80%2Ftcp/backends/b%201/state").unwrap(),
            Some(Resource::BackendState(
                "10.0.0.1:80/tcp".into(),
                "b 1".into()
            ))
        );
        assert_eq!(Resource::parse("/v1/vips//backends").unwrap(), None);
        assert_eq!(Resource::parse("/v2/status").unwrap(), None);
        assert_eq!(Resource::parse("/v1/status/").unwrap(), None);
        assert!(Resource::parse("/v1/vips/%FF").is_err());
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secreT", b"secret"));
        assert!(!constant_time_eq(b"secret2", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer secret"),
        );
        assert!(authorized(&h, "secret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic secret"),
        );
        assert!(!authorized(&h, "secret"));
    }

    #[test]
    fn explain_query_needs_both() {
        assert_eq!(
            explain_query(Some("vip=web&client=192.0.2.1%3A5555")).unwrap(),
            ("web".into(), "192.0.2.1:5555".into())
        );
        assert!(explain_query(Some("vip=web")).is_err());
        assert!(explain_query(Some("vip=web&client=1.2.3.4&x=1")).is_err());
        assert!(explain_query(None).is_err());
    }
}
