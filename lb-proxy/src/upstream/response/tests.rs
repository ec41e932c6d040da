use super::*;

/// The head of `raw` (one complete head) answering `method`.
fn head_of(raw: &str, method: Method) -> Result<Head, HeadError> {
    let raw = Bytes::copy_from_slice(raw.as_bytes());
    let (status, version, headers) = parse(&raw, 101)?;
    finish(status, version, headers, &method)
}

/// Asserts the framing of `raw`'s body and whether its connection may
/// carry another request.
fn expect(raw: &str, method: Method, framing: Framing, reusable: bool) {
    let head = head_of(raw, method).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
    assert_eq!(
        (head.framing, head.reusable),
        (framing, reusable),
        "{raw:?}"
    );
}

/// RFC 9112 §6.3: how a response body is delimited.
#[test]
fn bodies_are_framed_as_rfc_9112_says() {
    use Framing::*;
    let get = || Method::GET;
    expect(
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
        get(),
        Length(5),
        true,
    );
    expect(
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        get(),
        Empty,
        true,
    );
    expect(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        get(),
        Chunked,
        true,
    );
    let gzip_chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n";
    expect(gzip_chunked, get(), Chunked, true);
    let same_twice = "HTTP/1.1 200 OK\r\ncontent-length: 4, 4\r\ncontent-length: 4\r\n\r\n";
    expect(same_twice, get(), Length(4), true);
    // Whatever the headers say, these have no body.
    expect(
        "HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n",
        Method::HEAD,
        Empty,
        true,
    );
    expect(
        "HTTP/1.1 204 No Content\r\ncontent-length: 7\r\n\r\n",
        get(),
        Empty,
        true,
    );
    expect("HTTP/1.1 304 Not Modified\r\n\r\n", get(), Empty, true);
}

/// A connection is kept only when the body's end is known without the
/// server closing and the server did not ask to close.
#[test]
fn connections_are_kept_only_when_safe() {
    use Framing::*;
    let get = || Method::GET;
    let chunked_not_last = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n";
    expect(chunked_not_last, get(), UntilClose, false);
    let te_and_length =
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n";
    expect(te_and_length, get(), Chunked, false);
    expect("HTTP/1.1 200 OK\r\n\r\n", get(), UntilClose, false);
    let close = "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n";
    expect(close, get(), Length(1), false);
    expect(
        "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
        get(),
        Length(1),
        false,
    );
}

#[test]
fn invalid_heads_are_refused() {
    let cases = [
        (
            "differing lengths",
            "HTTP/1.1 200 OK\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\n",
        ),
        (
            "signed length",
            "HTTP/1.1 200 OK\r\ncontent-length: +4\r\n\r\n",
        ),
        ("no status", "HTTP/1.1 abc\r\n\r\n"),
        ("not http", "SSH-2.0-OpenSSH\r\n\r\n"),
        ("nul in value", "HTTP/1.1 200 OK\r\nx: a\0b\r\n\r\n"),
    ];
    for (what, raw) in cases {
        assert!(
            matches!(head_of(raw, Method::GET), Err(HeadError::Invalid(_))),
            "{what}"
        );
    }
}

#[test]
fn headers_keep_their_order_and_share_the_head() {
    let head = head_of(
        "HTTP/1.1 302 Found\r\nlocation: /x\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n\r\n",
        Method::GET,
    )
    .expect("a valid head");
    assert_eq!(head.parts.status, StatusCode::FOUND);
    let cookies: Vec<_> = head.parts.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
}

#[test]
fn too_many_headers_is_refused() {
    let mut raw = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..5 {
        raw.push_str(&format!("x-{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    let bytes = Bytes::from(raw);
    assert!(matches!(parse(&bytes, 4), Err(HeadError::Invalid(_))));
    assert!(parse(&bytes, 5).is_ok());
}
