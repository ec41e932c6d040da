//! A minimal, strict HTTP/1.x response reader for checks: the status line,
//! the headers that say where the body ends, and the body itself (sized,
//! chunked, or up to the close), capped. Pure functions of the bytes
//! received so far, so they are tested on captured responses.

/// Longest response head read.
pub const MAX_HEAD: usize = 16 * 1024;
/// Longest body read for a `body` or `digest` check.
pub const MAX_BODY: usize = 64 * 1024;

/// The status and how the body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
    /// Bytes of the head, blank line included: the body starts there.
    pub len: usize,
}

/// Where the body ends (RFC 9112, section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (1xx, 204, 304, or the answer to a HEAD).
    Empty,
    Length(usize),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// The head, once `buf` holds all of it; `Err` names what is wrong.
pub fn head(buf: &[u8], head_request: bool) -> Result<Option<Head>, String> {
    let prefix = b"HTTP/1.";
    let n = buf.len().min(prefix.len());
    if buf[..n] != prefix[..n] {
        return Err(format!("not an HTTP/1.x response: {}", shown(buf)));
    }
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(format!("response head longer than {MAX_HEAD} bytes"))
        } else {
            Ok(None)
        };
    };
    let text = std::str::from_utf8(&buf[..end])
        .map_err(|_| "response head is not ASCII text".to_owned())?;
    let mut lines = text.split("\r\n");
    let status = status_line(lines.next().unwrap_or_default())?;
    let mut length = None;
    let mut chunked = None;
    for line in lines {
        let (name, value) = header(line)?;
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(content_length(value, length)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            chunked = Some(last.eq_ignore_ascii_case("chunked"));
        }
    }
    let framing = match (status, chunked, length) {
        _ if head_request || status < 200 || status == 204 || status == 304 => Framing::Empty,
        (_, Some(true), _) => Framing::Chunked,
        (_, Some(false), _) | (_, None, None) => Framing::Close,
        (_, None, Some(n)) => Framing::Length(n),
    };
    Ok(Some(Head {
        status,
        framing,
        len: end + 4,
    }))
}

/// `HTTP/1.1 200 OK` (the reason may be empty or absent).
fn status_line(line: &str) -> Result<u16, String> {
    let bad = || format!("bad status line: {}", shown(line.as_bytes()));
    let rest = line
        .strip_prefix("HTTP/1.0 ")
        .or_else(|| line.strip_prefix("HTTP/1.1 "))
        .ok_or_else(bad)?;
    let (code, reason) = rest.split_at_checked(3).ok_or_else(bad)?;
    let digits = code.bytes().all(|b| b.is_ascii_digit());
    if !digits || !(reason.is_empty() || reason.starts_with(' ')) {
        return Err(bad());
    }
    code.parse::<u16>()
        .ok()
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(bad)
}

/// `Name: value`: a token, a colon, the value without surrounding blanks.
fn header(line: &str) -> Result<(&str, &str), String> {
    let bad = || format!("bad header line: {}", shown(line.as_bytes()));
    let (name, value) = line.split_once(':').ok_or_else(bad)?;
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(bad());
    }
    Ok((name, value.trim_matches([' ', '\t'])))
}

/// A `Content-Length` value; a second one must agree with the first.
fn content_length(value: &str, before: Option<usize>) -> Result<usize, String> {
    let n = Some(value)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<usize>().ok())
        .ok_or_else(|| format!("bad Content-Length: {}", shown(value.as_bytes())))?;
    match before {
        Some(m) if m != n => Err(format!("conflicting Content-Length: {m} and {n}")),
        _ => Ok(n),
    }
}

/// The body, once `raw` (what follows the head) holds all of it; `eof`: the
/// server closed. Bodies over [`MAX_BODY`] are an error.
pub fn body(framing: Framing, raw: &[u8], eof: bool) -> Result<Option<Vec<u8>>, String> {
    let done = match framing {
        Framing::Empty => Some(Vec::new()),
        Framing::Length(n) if n > MAX_BODY => return Err(too_long(n)),
        Framing::Length(n) => raw.get(..n).map(<[u8]>::to_vec),
        Framing::Close if raw.len() > MAX_BODY => return Err(too_long(raw.len())),
        Framing::Close => eof.then(|| raw.to_vec()),
        Framing::Chunked => dechunk(raw)?,
    };
    match done {
        None if eof => Err(format!(
            "the server closed the connection within the body ({} bytes in)",
            raw.len()
        )),
        other => Ok(other),
    }
}

fn too_long(n: usize) -> String {
    format!("body of {n} bytes is longer than the {MAX_BODY} a check reads")
}

/// A chunked body decoded, once complete (last chunk and trailers read).
fn dechunk(mut raw: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(raw, b"\r\n") else {
            return Ok(None);
        };
        let line = &raw[..eol];
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size_text)
            .ok()
            .map(|t| t.trim_matches([' ', '\t']))
            .filter(|t| !t.is_empty() && t.len() <= 8)
            .and_then(|t| usize::from_str_radix(t, 16).ok())
            .ok_or_else(|| format!("bad chunk size line: {}", shown(line)))?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(trailers_end(raw).map(|()| out));
        }
        if out.len() + size > MAX_BODY {
            return Err(too_long(out.len() + size));
        }
        let Some(data) = raw.get(..size + 2) else {
            return Ok(None);
        };
        if !data.ends_with(b"\r\n") {
            return Err("chunk data not followed by CRLF".to_owned());
        }
        out.extend_from_slice(&data[..size]);
        raw = &raw[size + 2..];
    }
}

/// Whether the trailer section (possibly empty) is complete.
fn trailers_end(raw: &[u8]) -> Option<()> {
    (raw.starts_with(b"\r\n") || find(raw, b"\r\n\r\n").is_some()).then_some(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The first bytes, printable, for an error message.
fn shown(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(40)];
    let mut s = String::from_utf8_lossy(cut).escape_debug().to_string();
    if bytes.len() > cut.len() {
        s.push('…');
    }
    format!("\"{s}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `python3 -m http.server` (3.11) answering a missing file, captured.
    const PYTHON_404: &[u8] = include_bytes!("testdata/python-404.http");
    /// hyper (lb's own API, `GET /v1/events?follow=true`) streaming one
    /// chunk, captured; the stream goes on, so the body is never complete.
    const HYPER_STREAM: &[u8] = include_bytes!("testdata/hyper-chunked-stream.http");
    /// RFC 9112's kind of example: three chunks, then the last one.
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
4\r\nWiki\r\n7\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\n\r\n";

    fn parsed(buf: &[u8]) -> Head {
        head(buf, false).unwrap().unwrap()
    }

    #[test]
    fn a_head_is_read_once_complete() {
        let h = parsed(PYTHON_404);
        assert_eq!(h.status, 404);
        assert_eq!(h.framing, Framing::Length(335));
        assert_eq!(h.len, PYTHON_404.len() - 335, "the body follows the head");
        assert_eq!(head(&PYTHON_404[..30], false), Ok(None));
        assert_eq!(head(b"HT", false), Ok(None));
    }

    #[test]
    fn hypers_stream_is_chunked_with_uppercase_sizes_and_incomplete() {
        let h = parsed(HYPER_STREAM);
        assert_eq!((h.status, h.framing), (200, Framing::Chunked));
        let raw = &HYPER_STREAM[h.len..];
        assert!(raw.starts_with(b"5B\r\n{\"seq\":1,"), "a 91-byte chunk");
        assert_eq!(body(h.framing, raw, false), Ok(None));
        let mut ended = raw.to_vec();
        ended.extend_from_slice(b"0\r\n\r\n");
        let whole = body(h.framing, &ended, false).unwrap().unwrap();
        assert_eq!(whole.len(), 0x5b);
        assert!(whole.ends_with(b"\"adopted\":false}\n"));
        let e = body(h.framing, raw, true).unwrap_err();
        assert!(e.contains("closed the connection within the body"), "{e}");
    }

    #[test]
    fn a_chunked_body_is_decoded_whole_and_only_when_complete() {
        let h = parsed(CHUNKED);
        assert_eq!(h.framing, Framing::Chunked);
        let raw = &CHUNKED[h.len..];
        assert_eq!(
            body(h.framing, raw, false),
            Ok(Some(b"Wikipedia in \r\nchunks.".to_vec()))
        );
        for cut in 0..raw.len() {
            assert_eq!(
                body(h.framing, &raw[..cut], false),
                Ok(None),
                "cut at {cut}"
            );
        }
        assert!(body(h.framing, &raw[..10], true).is_err(), "closed early");
        let with_ext_and_trailer = b"3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(
            body(Framing::Chunked, with_ext_and_trailer, false),
            Ok(Some(b"abc".to_vec()))
        );
    }

    #[test]
    fn bad_chunks_are_errors() {
        for bad in [&b"zz\r\n"[..], b"3\r\nabcX\r\n", b"\r\n", b"123456789\r\n"] {
            assert!(body(Framing::Chunked, bad, false).is_err(), "{bad:?}");
        }
        let huge = format!("{:x}\r\n", MAX_BODY + 1);
        assert!(body(Framing::Chunked, huge.as_bytes(), false).is_err());
    }

    #[test]
    fn sized_and_close_delimited_bodies() {
        assert_eq!(body(Framing::Length(3), b"ab", false), Ok(None));
        assert_eq!(
            body(Framing::Length(3), b"abcd", false),
            Ok(Some(b"abc".to_vec()))
        );
        assert!(body(Framing::Length(3), b"ab", true).is_err());
        assert!(body(Framing::Length(MAX_BODY + 1), b"", false).is_err());
        assert_eq!(body(Framing::Close, b"ab", false), Ok(None));
        assert_eq!(body(Framing::Close, b"ab", true), Ok(Some(b"ab".to_vec())));
        assert!(body(Framing::Close, &vec![0; MAX_BODY + 1], false).is_err());
        assert_eq!(body(Framing::Empty, b"", false), Ok(Some(Vec::new())));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let framing = |h: &str, head_req: bool| {
            head(format!("{h}\r\n\r\n").as_bytes(), head_req)
                .unwrap()
                .unwrap()
                .framing
        };
        assert_eq!(framing("HTTP/1.1 200 OK", false), Framing::Close);
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 5", true),
            Framing::Empty
        );
        assert_eq!(framing("HTTP/1.1 204 No Content", false), Framing::Empty);
        assert_eq!(framing("HTTP/1.1 304 Not Modified", false), Framing::Empty);
        assert_eq!(framing("HTTP/1.1 103 Early Hints", false), Framing::Empty);
        assert_eq!(
            framing(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\nContent-Length: 9",
                false
            ),
            Framing::Chunked,
            "chunked wins over a length"
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip", false),
            Framing::Close
        );
        assert_eq!(
            framing(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0",
                false
            ),
            Framing::Length(0)
        );
    }

    #[test]
    fn status_lines() {
        let status =
            |l: &str| head(format!("{l}\r\n\r\n").as_bytes(), false).map(|h| h.unwrap().status);
        assert_eq!(status("HTTP/1.1 503 Service Unavailable"), Ok(503));
        assert_eq!(status("HTTP/1.0 200"), Ok(200), "no reason");
        assert_eq!(status("HTTP/1.1 200 "), Ok(200), "empty reason");
        for bad in [
            "HTTP/1.1 20 OK",
            "HTTP/1.1 2000 OK",
            "HTTP/1.1 abc OK",
            "HTTP/1.1 099 X",
            "HTTP/1.2 200 OK",
            "HTTP/1.1  200 OK",
        ] {
            assert!(status(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn not_http_and_bad_headers_are_errors() {
        let e = head(b"SSH-2.0-OpenSSH_9.2\r\n", false).unwrap_err();
        assert!(e.starts_with("not an HTTP/1.x response: \"SSH-2.0"), "{e}");
        assert!(head(b"\x16\x03\x01", false).is_err(), "TLS is not HTTP");
        for bad in [
            "HTTP/1.1 200 OK\r\nNo colon here",
            "HTTP/1.1 200 OK\r\nBad Name: x",
            "HTTP/1.1 200 OK\r\nA: b\r\n folded",
            "HTTP/1.1 200 OK\r\nContent-Length: -1",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2",
        ] {
            assert!(
                head(format!("{bad}\r\n\r\n").as_bytes(), false).is_err(),
                "{bad:?}"
            );
        }
        let agreeing = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n";
        assert_eq!(parsed(agreeing.as_bytes()).framing, Framing::Length(2));
    }

    #[test]
    fn an_endless_head_is_an_error() {
        let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
        long.resize(MAX_HEAD + 1, b'a');
        assert!(head(&long, false).unwrap_err().contains("longer than"));
    }
}
