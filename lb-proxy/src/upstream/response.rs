//! Reading a server's response head: found whole in the connection's
//! buffer (reading more as needed, up to `proxy.max_header_size`), parsed,
//! interim (1xx) responses skipped, and the body's framing decided as RFC
//! 9112 §6.3 says. Header values share the head's bytes: no copy.

use bytes::Bytes;
use hyper::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING};
use hyper::http::response::Parts;
use hyper::{Method, Response, StatusCode, Version};

use super::HeadLimits;
use super::conn::ServerConn;
use crate::front::head::{connection_tokens, find_end};

/// Header lines parsed without allocating their slots.
const STACK_HEADERS: usize = 128;

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (HEAD, 1xx, 204, 304, `Content-Length: 0`).
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// A response head, ready to pass on.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) parts: Parts,
    pub(crate) framing: Framing,
    /// The connection can carry another request after this response.
    pub(crate) reusable: bool,
}

/// Why no response head was read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
    /// The server closed or reset the connection; `answered`: after
    /// sending part of a response (else nothing at all).
    #[error("the server closed the connection before a complete response head ({0})")]
    Closed(Closed),
    #[error("invalid response head: {0}")]
    Invalid(&'static str),
}

/// How a connection ended before a response head.
#[derive(Debug)]
pub(crate) struct Closed {
    pub(crate) answered: bool,
    pub(crate) error: Option<std::io::Error>,
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.error, self.answered) {
            (Some(e), _) => write!(f, "{e}"),
            (None, true) => f.write_str("after part of a head"),
            (None, false) => f.write_str("without a byte of response"),
        }
    }
}

/// Reads the final response head to a `method` request.
pub(crate) async fn read_head(
    conn: &mut ServerConn,
    method: &Method,
    limits: HeadLimits,
) -> Result<Head, HeadError> {
    let mut answered = false;
    loop {
        let Some(end) = find_end(&conn.buf) else {
            if conn.buf.len() >= limits.max_header_size {
                return Err(HeadError::Invalid(
                    "response head over proxy.max_header_size",
                ));
            }
            answered |= !conn.buf.is_empty();
            match conn.fill().await {
                Ok(0) => {
                    return Err(HeadError::Closed(Closed {
                        answered,
                        error: None,
                    }));
                }
                Ok(_) => continue,
                Err(e) => {
                    return Err(HeadError::Closed(Closed {
                        answered,
                        error: Some(e),
                    }));
                }
            }
        };
        if end > limits.max_header_size {
            return Err(HeadError::Invalid(
                "response head over proxy.max_header_size",
            ));
        }
        let raw = conn.buf.split_to(end).freeze();
        let (status, version, headers) = parse(&raw, limits.max_headers)?;
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(HeadError::Invalid(
                    "101 Switching Protocols to a request that asked for none",
                ));
            }
            answered = true;
            continue; // 100 Continue, 103 Early Hints: the final response follows
        }
        return finish(status, version, headers, method);
    }
}

/// Status, version and headers of a complete head.
fn parse(raw: &Bytes, max_headers: usize) -> Result<(StatusCode, Version, HeaderMap), HeadError> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots: &mut [httparse::Header<'_>] = if max_headers <= STACK_HEADERS {
        &mut stack[..max_headers]
    } else {
        heap.resize(max_headers, httparse::EMPTY_HEADER);
        &mut heap
    };
    let mut res = httparse::Response::new(slots);
    match res.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::Invalid(
                "more header lines than proxy.max_headers",
            ));
        }
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err(HeadError::Invalid("malformed response head"));
        }
    }
    let status = res
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(HeadError::Invalid("invalid status code"))?;
    let version = if res.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let mut headers = HeaderMap::with_capacity(res.headers.len());
    for h in res.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HeadError::Invalid("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(raw.slice_ref(h.value))
            .map_err(|_| HeadError::Invalid("invalid header value"))?;
        headers.append(name, value);
    }
    Ok((status, version, headers))
}

/// The body's framing and whether the connection stays usable (RFC 9112
/// §6.3, §9.3).
fn finish(
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    method: &Method,
) -> Result<Head, HeadError> {
    let te = headers.contains_key(TRANSFER_ENCODING);
    let framing = if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if te {
        if last_coding_is_chunked(&headers) {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match content_length(&headers)? {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    let close = connection_tokens(&headers).any(|t| t.eq_ignore_ascii_case(b"close"));
    let both = te && headers.contains_key(CONTENT_LENGTH);
    let reusable = version == Version::HTTP_11 && !close && !both && framing != Framing::UntilClose;
    let mut res = Response::new(());
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    Ok(Head {
        parts: res.into_parts().0,
        framing,
        reusable,
    })
}

fn last_coding_is_chunked(headers: &HeaderMap) -> bool {
    let last = headers.get_all(TRANSFER_ENCODING).iter().next_back();
    last.and_then(|v| v.as_bytes().rsplit(|&b| b == b',').next())
        .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// The Content-Length, if any: every value (and list item) must be the
/// same number, else the response is refused (RFC 9112 §6.3 item 5).
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, HeadError> {
    let mut found = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for item in value.as_bytes().split(|&b| b == b',') {
            let item = item.trim_ascii();
            let n = std::str::from_utf8(item)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(HeadError::Invalid("invalid Content-Length"))?;
            if found.is_some_and(|f| f != n) {
                return Err(HeadError::Invalid("Content-Length values differ"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
