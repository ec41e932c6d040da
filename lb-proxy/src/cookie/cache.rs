//! Whether a shared cache could store a response, the way HAProxy 2.6
//! decides it for `cookie … nocache` (http_ana.c; checked against Debian's
//! 2.6.12): only then does inserting a cookie also add `Cache-Control:
//! private`, so no cache hands one client's cookie to another.

use hyper::http::{HeaderMap, Method, StatusCode, header};

use crate::balance::hash::{trim, value_end};

/// Statuses cacheable by default (RFC 7231 §6.1).
const CACHEABLE_STATUS: [u16; 11] = [200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501];

/// A safe method (RFC 7231 §4.2.1) and a status cacheable by default,
/// unless `Pragma: no-cache`; then `Cache-Control` directives in order
/// (`public` makes it cacheable, `private`, `no-cache`, `no-store`,
/// `max-age=0`, `s-maxage=0` not); and in any case only with a freshness
/// lifetime (`max-age`, `s-maxage`, `Expires`) or a validator (`ETag`,
/// `Last-Modified`).
pub(super) fn is_cacheable(method: &Method, status: StatusCode, headers: &HeaderMap) -> bool {
    let safe = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    let mut cacheable = safe && CACHEABLE_STATUS.contains(&status.as_u16());
    if status.as_u16() < 200 {
        return false;
    }
    if let Some(p) = headers.get(header::PRAGMA)
        && trim(p.as_bytes()).eq_ignore_ascii_case(b"no-cache")
    {
        return false;
    }
    let mut fresh = false;
    for v in headers.get_all(header::CACHE_CONTROL) {
        for d in directives(v.as_bytes()) {
            if d.eq_ignore_ascii_case(b"public") {
                cacheable = true;
            } else if [
                &b"private"[..],
                b"no-cache",
                b"no-store",
                b"max-age=0",
                b"s-maxage=0",
            ]
            .iter()
            .any(|x| d.eq_ignore_ascii_case(x))
            {
                cacheable = false;
            } else if starts_with_ignore_case(d, b"s-maxage")
                || starts_with_ignore_case(d, b"max-age")
            {
                fresh = true;
            }
        }
    }
    fresh = fresh || headers.contains_key(header::EXPIRES);
    let validated =
        headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
    cacheable && (fresh || validated)
}

/// The comma-separated directives of one header line, blanks trimmed.
fn directives(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(line);
    std::iter::from_fn(move || {
        let s = rest?;
        let end = value_end(s);
        rest = s.get(end + 1..);
        Some(trim(&s[..end]))
    })
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}
