//! The request head as the client sent it, parsed strictly: anything two
//! HTTP implementations could read differently is refused here, before any
//! of it reaches a server (request smuggling, RFC 9112 §11.2).
//!
//! httparse does the tokenizing (it already refuses control bytes other
//! than HTAB in values, obs-fold lines, whitespace before a colon and
//! invalid method or target bytes); on top of that this refuses bare-LF
//! line ends (httparse accepts them), any Content-Length that is not one
//! plain number, Transfer-Encoding other than a final `chunked`, both
//! together, a missing or repeated Host on HTTP/1.1, an absolute-form
//! target whose authority disagrees with Host, and heads over the limits.

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri, Version};

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: N` (0 or absent: no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A complete, valid request head.
#[derive(Debug)]
pub struct Head {
    /// Method, target, version and headers; the body is attached later.
    pub request: Request<()>,
    pub framing: Framing,
    /// Whether the client wants the connection kept after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue` with a body to send.
    pub expects_continue: bool,
}

/// Why a head was refused: the status to answer (then close) and a reason
/// for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    pub reason: &'static str,
}

const fn bad(reason: &'static str) -> Refused {
    Refused {
        status: StatusCode::BAD_REQUEST,
        reason,
    }
}

/// The head limits (`proxy.max_header_size`, `proxy.max_headers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_size: usize,
    pub max_headers: usize,
}

/// Where the head at the start of `buf` ends (after its empty line), if it
/// is all there. Bare-LF line ends count too, so that such a head is found
/// and refused rather than waited for.
pub fn find_end(buf: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', buf).find_map(|i| match &buf[i + 1..] {
        [b'\n', ..] => Some(i + 2),
        [b'\r', b'\n', ..] => Some(i + 3),
        _ => None,
    })
}

/// Parses a complete head (`head` ends where [`find_end`] said).
/// `scratch` is httparse's header array, kept by the connection between
/// requests.
pub fn parse(
    head: &Bytes,
    limits: Limits,
    scratch: &mut Vec<httparse::Header<'static>>,
) -> Result<Head, Refused> {
    let mut slots = recycle(std::mem::take(scratch));
    slots.resize(limits.max_headers, httparse::EMPTY_HEADER);
    let r = tokenize(head, limits, &mut slots);
    *scratch = recycle(slots);
    r
}

/// The same allocation, emptied, for headers borrowing another buffer
/// (an in-place collect: no allocation per request).
fn recycle<'b>(mut v: Vec<httparse::Header<'_>>) -> Vec<httparse::Header<'b>> {
    v.clear();
    v.into_iter().map(|_| httparse::EMPTY_HEADER).collect()
}

fn tokenize<'b>(
    buf: &'b Bytes,
    limits: Limits,
    slots: &mut [httparse::Header<'b>],
) -> Result<Head, Refused> {
    if buf.len() > limits.max_size {
        return Err(bad("request head over proxy.max_header_size"));
    }
    let mut req = httparse::Request::new(slots);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(bad("malformed request head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(bad("more header lines than proxy.max_headers"));
        }
        Err(httparse::Error::Version) => return Err(bad("not HTTP/1.0 or HTTP/1.1")),
        Err(_) => return Err(bad("malformed request head")),
    };
    if has_bare_lf(&buf[..n]) {
        return Err(bad("line ended by LF without CR"));
    }
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| bad("invalid method"))?;
    if method == Method::CONNECT {
        return Err(Refused {
            status: StatusCode::NOT_IMPLEMENTED,
            reason: "CONNECT is not supported",
        });
    }
    let uri = target(&method, req.path.unwrap_or_default())?;
    let headers = header_map(buf, req.headers)?;
    check(Request::new(()), method, uri, version, headers)
}

/// Whether a line of `head` ends with a lone LF.
fn has_bare_lf(head: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', head).any(|i| i == 0 || head[i - 1] != b'\r')
}

/// The request target: origin-form (`/path?q`), absolute-form
/// (`http://host/path`), or `*` for OPTIONS (RFC 9112 §3.2). Fragments
/// are never sent (RFC 9110 §4.2.5) and bytes outside ASCII are refused.
fn target(method: &Method, raw: &str) -> Result<Uri, Refused> {
    if raw.bytes().any(|b| b == b'#' || !b.is_ascii()) {
        return Err(bad("invalid request target"));
    }
    let uri: Uri = raw.parse().map_err(|_| bad("invalid request target"))?;
    let ok = if raw == "*" {
        method == Method::OPTIONS
    } else if raw.starts_with('/') {
        uri.scheme().is_none() && uri.authority().is_none()
    } else {
        let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
        matches!(scheme.as_deref(), Some("http" | "https"))
            && uri.authority().is_some_and(|a| !a.as_str().contains('@'))
    };
    if ok {
        Ok(uri)
    } else {
        Err(bad("invalid request target"))
    }
}

/// The headers, sharing `buf`'s memory (no copy of values).
fn header_map(buf: &Bytes, raw: &[httparse::Header<'_>]) -> Result<HeaderMap, Refused> {
    let mut map = HeaderMap::with_capacity(raw.len());
    for h in raw {
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(buf.slice_ref(h.value))
            .map_err(|_| bad("invalid header value"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// The checks that need the whole head; builds the result.
fn check(
    mut request: Request<()>,
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
) -> Result<Head, Refused> {
    let framing = framing(&headers, version)?;
    host(&headers, &uri, version)?;
    let keep_alive = keep_alive(&headers, version);
    let expects_continue = framing != Framing::Length(0)
        && headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Head {
        request,
        framing,
        keep_alive,
        expects_continue,
    })
}

/// The body's framing from Content-Length and Transfer-Encoding.
fn framing(headers: &HeaderMap, version: Version) -> Result<Framing, Refused> {
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    let length = match (lengths.next(), lengths.next()) {
        (None, _) => None,
        (Some(v), None) => Some(content_length(v.as_bytes())?),
        (Some(_), Some(_)) => return Err(bad("Content-Length more than once")),
    };
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    let chunked = match (codings.next(), codings.next()) {
        (None, _) => false,
        (Some(v), None) => transfer_coding(v.as_bytes())?,
        (Some(_), Some(_)) => return Err(bad("Transfer-Encoding more than once")),
    };
    match (length, chunked) {
        (Some(_), true) => Err(bad("both Content-Length and Transfer-Encoding")),
        (_, true) if version == Version::HTTP_10 => Err(bad("Transfer-Encoding in HTTP/1.0")),
        (_, true) => Ok(Framing::Chunked),
        (n, false) => Ok(Framing::Length(n.unwrap_or(0))),
    }
}

/// `1*DIGIT` and nothing else (no list, sign or space), within u64.
fn content_length(v: &[u8]) -> Result<u64, Refused> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(bad("invalid Content-Length"));
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Whether the coding is `chunked`: the only one accepted. Chunked not
/// last makes the length unknowable (400, RFC 9112 §6.3); other codings
/// before it are not implemented here (501, RFC 9112 §6.1).
fn transfer_coding(v: &[u8]) -> Result<bool, Refused> {
    let mut codings = v
        .split(|&b| b == b',')
        .map(|c| c.trim_ascii())
        .filter(|c| !c.is_empty());
    let Some(last) = codings.next_back() else {
        return Err(bad("empty Transfer-Encoding"));
    };
    if !last.eq_ignore_ascii_case(b"chunked") {
        return Err(bad("Transfer-Encoding not ending in chunked"));
    }
    if codings.next().is_some() {
        return Err(Refused {
            status: StatusCode::NOT_IMPLEMENTED,
            reason: "transfer codings other than chunked are not supported",
        });
    }
    Ok(true)
}

/// HTTP/1.1 needs exactly one Host (RFC 9112 §3.2), a valid authority;
/// an absolute-form target's authority must name the same host and port.
fn host(headers: &HeaderMap, uri: &Uri, version: Version) -> Result<(), Refused> {
    let mut all = headers.get_all(header::HOST).iter();
    let host = match (all.next(), all.next()) {
        (None, _) if version == Version::HTTP_11 => return Err(bad("no Host header")),
        (None, _) => return Ok(()),
        (Some(_), Some(_)) => return Err(bad("Host more than once")),
        (Some(h), None) => h,
    };
    let authority: hyper::http::uri::Authority = std::str::from_utf8(host.as_bytes())
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|a: &hyper::http::uri::Authority| !a.as_str().contains('@'))
        .ok_or(bad("invalid Host header"))?;
    if let Some(target) = uri.authority() {
        let default = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        let same = target.host().eq_ignore_ascii_case(authority.host())
            && target.port_u16().unwrap_or(default) == authority.port_u16().unwrap_or(default);
        if !same {
            return Err(bad("absolute-form target disagrees with Host"));
        }
    }
    Ok(())
}

/// Persistence (RFC 9112 §9.3): HTTP/1.1 unless `Connection: close`,
/// HTTP/1.0 only with `Connection: keep-alive`.
fn keep_alive(headers: &HeaderMap, version: Version) -> bool {
    let has = |token: &[u8]| connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(token));
    if version == Version::HTTP_11 {
        !has(b"close")
    } else {
        has(b"keep-alive")
    }
}

/// The tokens of every Connection header.
pub fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}
