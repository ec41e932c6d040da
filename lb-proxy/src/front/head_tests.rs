//! The request-head rules, one raw head each: what is accepted, and what
//! is refused with which status.

use bytes::Bytes;
use hyper::{Method, StatusCode, Version};

use super::head::{self, Framing, Limits};

const LIMITS: Limits = Limits {
    max_size: 16 * 1024,
    max_headers: 101,
};

fn parse(raw: &[u8]) -> Result<head::Head, head::Refused> {
    parse_with(raw, LIMITS)
}

fn parse_with(raw: &[u8], limits: Limits) -> Result<head::Head, head::Refused> {
    let end = head::find_end(raw).unwrap_or(raw.len());
    let mut scratch = Vec::new();
    head::parse(&Bytes::copy_from_slice(&raw[..end]), limits, &mut scratch)
}

#[test]
fn valid_heads_are_accepted() {
    let cases: &[(&[u8], Framing, bool)] = &[
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Framing::Length(0),
            true,
        ),
        (
            b"GET /x?y=1 HTTP/1.1\r\nHost: a:8080\r\nConnection: close\r\n\r\n",
            Framing::Length(0),
            false,
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            Framing::Length(5),
            true,
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            Framing::Chunked,
            true,
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
            Framing::Chunked,
            true,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", Framing::Length(0), false),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            Framing::Length(0),
            true,
        ),
        (
            b"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n",
            Framing::Length(0),
            true,
        ),
        (
            b"GET http://A:80/x HTTP/1.1\r\nHost: a\r\n\r\n",
            Framing::Length(0),
            true,
        ),
        (
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            Framing::Length(0),
            true,
        ),
        (
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Framing::Length(0),
            true,
        ),
        (
            b"PURGE /x HTTP/1.1\r\nHost: a\r\nX-V: tab\there\r\n\r\n",
            Framing::Length(0),
            true,
        ),
    ];
    for (raw, framing, keep) in cases {
        let h = parse(raw).unwrap_or_else(|e| panic!("{:?}: {e:?}", String::from_utf8_lossy(raw)));
        assert_eq!(h.framing, *framing, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(h.keep_alive, *keep, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn parsed_fields_are_the_clients() {
    let h = parse(b"PUT /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nx-a: 2\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n").unwrap();
    assert_eq!(h.request.method(), Method::PUT);
    assert_eq!(h.request.uri().path(), "/a/b");
    assert_eq!(h.request.uri().query(), Some("c=d"));
    assert_eq!(h.request.version(), Version::HTTP_11);
    let xa: Vec<_> = h.request.headers().get_all("x-a").iter().collect();
    assert_eq!(xa, ["1", "2"]);
    assert!(h.expects_continue);
    let no_body = parse(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n").unwrap();
    assert!(
        !no_body.expects_continue,
        "nothing to continue without a body"
    );
}

/// Each smuggling vector and malformed head, with the status it gets.
#[test]
fn hostile_heads_are_refused() {
    let bad = StatusCode::BAD_REQUEST;
    let cases: &[(&str, &[u8], StatusCode)] = &[
        ("CL and TE", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", bad),
        ("TE and CL", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", bad),
        ("two equal CL", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", bad),
        ("two different CL", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", bad),
        ("CL list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", bad),
        ("CL sign", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", bad),
        ("CL hex", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", bad),
        ("CL empty", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", bad),
        ("CL overflow", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", bad),
        ("TE twice", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", bad),
        ("TE not chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", bad),
        ("TE chunked not last", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", bad),
        ("TE gzip, chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", StatusCode::NOT_IMPLEMENTED),
        ("TE obfuscated", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", bad),
        ("TE in HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", bad),
        ("space before colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", bad),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", bad),
        ("obs-fold tab", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n", bad),
        ("NUL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n", bad),
        ("CR in value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n", bad),
        ("DEL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x7f2\r\n\r\n", bad),
        ("bare LF in headers", b"GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n", bad),
        ("bare LF request line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", bad),
        ("bare LF at the end", b"GET / HTTP/1.1\r\nHost: a\r\n\n", bad),
        ("all bare LF", b"GET / HTTP/1.1\nHost: a\n\n", bad),
        ("no Host", b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", bad),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", bad),
        ("two equal Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", bad),
        ("Host with userinfo", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", bad),
        ("Host with path", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", bad),
        ("absolute-form other host", b"GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n", bad),
        ("absolute-form other port", b"GET http://a:81/x HTTP/1.1\r\nHost: a\r\n\r\n", bad),
        ("absolute-form userinfo", b"GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n", bad),
        ("absolute-form ftp", b"GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n", bad),
        ("authority-form GET", b"GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", bad),
        ("asterisk GET", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", bad),
        ("fragment", b"GET /x#y HTTP/1.1\r\nHost: a\r\n\r\n", bad),
        ("non-ASCII target", b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", bad),
        ("space in target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", bad),
        ("invalid method", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", bad),
        ("lower-case version", b"GET / http/1.1\r\nHost: a\r\n\r\n", bad),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\n", bad),
        ("HTTP/0.9", b"GET /\r\n\r\n", bad),
        ("CONNECT", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", StatusCode::NOT_IMPLEMENTED),
        ("header without colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n", bad),
        ("empty header name", b"GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", bad),
    ];
    for (what, raw, status) in cases {
        match parse(raw) {
            Ok(_) => panic!("{what}: accepted"),
            Err(r) => assert_eq!(r.status, *status, "{what}: {}", r.reason),
        }
    }
}

#[test]
fn size_and_count_limits() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..10 {
        raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let few = Limits {
        max_size: 16 * 1024,
        max_headers: 10,
    };
    let r = parse_with(&raw, few).map(|_| ()).unwrap_err();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let enough = Limits {
        max_size: 16 * 1024,
        max_headers: 11,
    };
    assert!(parse_with(&raw, enough).is_ok(), "11 lines fit in 11");
    let small = Limits {
        max_size: raw.len() - 1,
        max_headers: 101,
    };
    let r = parse_with(&raw, small).map(|_| ()).unwrap_err();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[test]
fn the_end_of_a_head_is_found_with_any_line_ends() {
    assert_eq!(
        head::find_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY"),
        Some(27)
    );
    assert_eq!(head::find_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
    assert_eq!(head::find_end(b"GET / HTTP/1.1\nHost: a\n\nBODY"), Some(24));
    assert_eq!(head::find_end(b"GET / HTTP/1.1\r\nHost: a\n\r\n"), Some(26));
}
