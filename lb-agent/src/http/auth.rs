//! The bearer token of the TCP API (`agent.api_token_file`).

use hyper::{
    HeaderMap,
    header::{self, HeaderValue},
};

use lb_api::types::ApiError;

use super::body::{HttpResponse, error_response};

/// Checks `Authorization: Bearer <token>` (scheme case-insensitive, RFC 7235 §2.1).
pub(super) fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let Some((scheme, presented)) = value.split_at_checked(7) else {
        return false;
    };
    scheme.eq_ignore_ascii_case(b"bearer ") && constant_time_eq(presented, token.as_bytes())
}

/// 401 with `WWW-Authenticate: Bearer`; it names no route, so nothing about
/// the server shows without the token.
pub(super) fn unauthorized() -> HttpResponse {
    let mut resp = error_response(&ApiError {
        code: 401,
        reason: "missing or wrong bearer token (Authorization: Bearer <agent.api_token_file>)"
            .into(),
    });
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Compares without returning early, so the time taken does not tell how
/// much of the token a guess got right. (Its length may still show.)
pub(super) fn constant_time_eq(presented: &[u8], secret: &[u8]) -> bool {
    let mut diff = presented.len() ^ secret.len();
    for (i, b) in presented.iter().enumerate() {
        diff |= usize::from(b ^ secret.get(i).copied().unwrap_or(0));
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!authorized(&HeaderMap::new(), "secret"));
    }
}
