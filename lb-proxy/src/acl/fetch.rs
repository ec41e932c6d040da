//! What an ACL reads from a request (HAProxy 2.6's sample fetches
//! `path`, `url`, `url_param`, `hdr`, `method`, `src`, `req.ver`), each
//! giving zero, one or several values, every one of which is tested.

use std::borrow::Cow;
use std::net::IpAddr;

use hyper::http::{HeaderName, Method, Uri, Version};

use super::View;
use crate::balance::hash::{trim, value_end};

/// What a fetch reads, compiled.
#[derive(Clone, Debug)]
pub(super) enum Fetch {
    Path,
    Url,
    UrlParam(Box<[u8]>),
    Hdr(HeaderName),
    Method,
    Src,
    ReqVer,
}

/// One value a fetch gives.
#[derive(Clone, Copy, Debug)]
pub(super) enum Sample<'a> {
    Bytes(&'a [u8]),
    Method(&'a Method),
    Ip(IpAddr),
}

impl Fetch {
    /// Calls `test` with each value of the fetch for `view` until it
    /// returns true; whether it did. A fetch with no value tests nothing.
    pub(super) fn any(&self, view: &View<'_>, mut test: impl FnMut(Sample<'_>) -> bool) -> bool {
        let uri = &view.head.uri;
        match self {
            Fetch::Path => path(uri).is_some_and(|p| test(Sample::Bytes(p.as_bytes()))),
            Fetch::Url => test(Sample::Bytes(target(uri).as_bytes())),
            Fetch::UrlParam(name) => {
                let query = uri.query().map_or(&b""[..], str::as_bytes);
                uri.query().is_some() && url_params(query, name).any(|v| test(Sample::Bytes(v)))
            }
            Fetch::Hdr(name) => view
                .head
                .headers
                .get_all(name)
                .iter()
                .any(|line| header_values(line.as_bytes()).any(|v| test(Sample::Bytes(v)))),
            Fetch::Method => test(Sample::Method(&view.head.method)),
            Fetch::Src => test(Sample::Ip(view.src)),
            Fetch::ReqVer => version(view.head.version).is_some_and(|v| test(Sample::Bytes(v))),
        }
    }
}

/// The request target as the client sent it: `/path?query` (origin form),
/// `scheme://authority/path?query` (absolute form, rebuilt: the only case
/// that allocates), `host:port` (CONNECT) or `*`.
pub(super) fn target(uri: &Uri) -> Cow<'_, str> {
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(auth)) => {
            let pq = uri.path_and_query().map_or("", |p| p.as_str());
            Cow::Owned(format!("{scheme}://{auth}{pq}"))
        }
        (None, Some(auth)) => Cow::Borrowed(auth.as_str()),
        _ => Cow::Borrowed(uri.path_and_query().map_or("", |p| p.as_str())),
    }
}

/// HAProxy's `req.ver`: `1.0`, `1.1`, `2.0`.
fn version(v: Version) -> Option<&'static [u8]> {
    Some(match v {
        Version::HTTP_09 => b"0.9",
        Version::HTTP_10 => b"1.0",
        Version::HTTP_11 => b"1.1",
        Version::HTTP_2 => b"2.0",
        Version::HTTP_3 => b"3.0",
        _ => return None,
    })
}

/// HAProxy's `path`: the target's path before `?`, after scheme and
/// authority in absolute form; none for `*` and CONNECT's `host:port`.
/// (An absolute target without a path, `http://h`, has path `/` here:
/// the URI type does not tell it from `http://h/`.)
pub(super) fn path(uri: &Uri) -> Option<&str> {
    let path = uri.path();
    path.starts_with('/').then_some(path)
}

/// The values of every parameter named `name` in a query string, ACL
/// style (HAProxy's `http_find_next_url_param`): parameters end at `&`,
/// `;` or `?`; the name is compared exactly.
pub(super) fn url_params<'q>(query: &'q [u8], name: &'q [u8]) -> impl Iterator<Item = &'q [u8]> {
    let is_delim = |c: &u8| matches!(c, b'&' | b';' | b'?');
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos + name.len() < query.len() {
            let eq = pos + name.len();
            if query[eq] == b'=' && &query[pos..eq] == name {
                let start = eq + 1;
                let end = query[start..]
                    .iter()
                    .position(is_delim)
                    .map_or(query.len(), |e| start + e);
                pos = end;
                return Some(&query[start..end]);
            }
            pos += query[pos..].iter().position(is_delim)? + 1;
        }
        None
    })
}

/// The comma-separated values of one header line, blanks trimmed, empty
/// ones included (HAProxy's `http_find_header` without the full-line flag).
pub(super) fn header_values(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(trim(line));
    std::iter::from_fn(move || {
        let s = rest?;
        let end = value_end(s);
        rest = s.get(end + 1..).map(trim);
        Some(trim(&s[..end]))
    })
}
