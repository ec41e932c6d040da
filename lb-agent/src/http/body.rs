//! Bodies in and out: a JSON request body read under a size limit, JSON
//! answers, and every error as `{"error": {"code", "reason"}}` with its code
//! as the status.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited, combinators::UnsyncBoxBody};
use hyper::{
    Method, Response, StatusCode,
    body::Incoming,
    header::{self, HeaderValue},
};
use serde::{Serialize, de::DeserializeOwned};

use lb_api::types::{ApiError, ErrorBody};

/// Largest request body accepted; the API's bodies are a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

pub(super) type HttpRequest = hyper::Request<Incoming>;
/// A whole body or a stream (`/v1/events?follow=true`).
pub(super) type Body = UnsyncBoxBody<Bytes, Infallible>;
pub(super) type HttpResponse = Response<Body>;

/// An answer of `status` whose body is all there.
pub(super) fn full(status: StatusCode, content_type: &'static str, body: Bytes) -> HttpResponse {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// `value` as the JSON body of an answer.
pub(super) fn json<T: Serialize>(value: T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&value).map_err(|e| ApiError::internal(format!("encoding the answer: {e}")))
}

pub(super) fn json_response(status: StatusCode, mut body: Vec<u8>) -> HttpResponse {
    body.push(b'\n');
    full(status, "application/json", Bytes::from(body))
}

/// The error as `{"error": {...}}` with its code as the status; a code that
/// is not an HTTP error status becomes 500.
pub(super) fn error_response(error: &ApiError) -> HttpResponse {
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

/// 405 with `Allow`.
pub(super) fn method_not_allowed(allow: &[Method], method: &Method, path: &str) -> HttpResponse {
    let allowed = allow
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let mut resp = error_response(&ApiError {
        code: 405,
        reason: format!("{method} is not allowed on {path} (allowed: {allowed})"),
    });
    if let Ok(v) = HeaderValue::from_str(&allowed) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes. The content type is not
/// checked: `curl -d` sends a form type, and the body must be JSON anyway.
pub(super) async fn read_json<T: DeserializeOwned>(req: HttpRequest) -> Result<T, ApiError> {
    let body = read_body(req).await?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Reads a body of at most [`MAX_BODY`] bytes.
pub(super) async fn read_body(req: HttpRequest) -> Result<Bytes, ApiError> {
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
    Ok(body)
}
