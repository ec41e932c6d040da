//! The server side's own answers (502, 503, 504, and 408 for a request body
//! that stopped arriving) as responses the client side sends like any
//! other; the pages themselves are [`crate::answer`]'s, one set for the
//! whole proxy.

use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use super::body::ResponseBody;
use crate::answer;

/// An error answer for `status` with HAProxy 2.6's headers:
/// `Cache-Control: no-cache` (a cache must not keep a transient failure),
/// `Content-Type: text/html`, a `Content-Length`. With `close`, also
/// `Connection: close`: HAProxy 2.6 keeps the client connection after a
/// 502, 503 or 504 (checked against Debian's 2.6.12), but not after a
/// request it could not read whole.
pub fn error_response(status: StatusCode, close: bool) -> Response<ResponseBody> {
    let body = Bytes::from(answer::body(status));
    let mut res = Response::new(ResponseBody::empty());
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    *res.body_mut() = ResponseBody::full(body);
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn page_with_haproxy_headers_and_exact_length() {
        for (status, close) in [
            (StatusCode::BAD_GATEWAY, false),
            (StatusCode::REQUEST_TIMEOUT, true),
        ] {
            let res = error_response(status, close);
            assert_eq!(res.status(), status);
            assert_eq!(res.headers()[CACHE_CONTROL], "no-cache");
            assert_eq!(res.headers().contains_key(CONNECTION), close);
            let len: usize = res.headers()[CONTENT_LENGTH]
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .expect("a length");
            let body = res
                .into_body()
                .collect()
                .await
                .expect("a full body")
                .to_bytes();
            assert_eq!(body.len(), len);
            let heading = format!(
                "<html><body><h1>{} {}</h1>",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
            assert!(body.starts_with(heading.as_bytes()), "{body:?}");
        }
    }
}
