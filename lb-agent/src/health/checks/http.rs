//! `type: http` and `type: https` (keepalived HTTP_GET and SSL_GET, HAProxy
//! `option httpchk`): one HTTP/1.1 request with `Connection: close`; the
//! status must be one of `status`, and with `body` or `digest` the body
//! (read whole, at most 64 KiB) must contain that string or have that MD5.
//! Without either, the check ends at the status line and headers.

use std::net::{IpAddr, SocketAddr};

use lb_api::types::CheckFailure;
use lb_config::check::{HttpCheck, HttpsCheck};
use md5::{Digest as _, Md5};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::http_parse::{self, Framing};
use super::{Aim, io_failure, tcp, tls};

pub async fn check(aim: &Aim, http: &HttpCheck) -> Result<(), CheckFailure> {
    let stream = tcp::connect(aim).await?;
    exchange(stream, &request(http, aim.target, false), http).await
}

pub async fn check_tls(aim: &Aim, https: &HttpsCheck) -> Result<(), CheckFailure> {
    let stream = tcp::connect(aim).await?;
    let stream = tls::connect(stream, aim, https).await?;
    exchange(stream, &request(&https.http, aim.target, true), &https.http).await
}

/// The request: `Host` is the configured one, else the target (its port
/// unless the scheme's default).
fn request(http: &HttpCheck, target: SocketAddr, tls: bool) -> String {
    let host = http.host.clone().unwrap_or_else(|| authority(target, tls));
    format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lb-check\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n",
        http.method, http.path
    )
}

fn authority(target: SocketAddr, tls: bool) -> String {
    let host = match target.ip() {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    match (target.port(), tls) {
        (80, false) | (443, true) => host,
        (port, _) => format!("{host}:{port}"),
    }
}

/// Sends the request and judges the response.
async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &str,
    http: &HttpCheck,
) -> Result<(), CheckFailure> {
    let failed = |e: std::io::Error| io_failure(&e);
    stream.write_all(request.as_bytes()).await.map_err(failed)?;
    let mut buf = Vec::with_capacity(4096);
    let head = loop {
        if let Some(h) = http_parse::head(&buf, http.method == "HEAD").map_err(protocol)? {
            break h;
        }
        if read_more(&mut stream, &mut buf).await? == 0 {
            return Err(closed_in_head(&buf));
        }
    };
    if !http.status.iter().any(|r| r.contains(head.status)) {
        return Err(CheckFailure::HttpStatus {
            status: head.status,
        });
    }
    if http.body.is_none() && http.digest.is_none() {
        return Ok(());
    }
    buf.drain(..head.len);
    let body = read_body(&mut stream, head.framing, buf).await?;
    judge_body(&body, http)
}

/// Reads until the framing says the body is complete.
async fn read_body(
    stream: &mut (impl AsyncRead + Unpin),
    framing: Framing,
    mut raw: Vec<u8>,
) -> Result<Vec<u8>, CheckFailure> {
    let mut eof = false;
    loop {
        if let Some(body) = http_parse::body(framing, &raw, eof).map_err(protocol)? {
            return Ok(body);
        }
        eof = read_more(stream, &mut raw).await? == 0;
    }
}

/// The `body` substring, then the `digest`.
fn judge_body(body: &[u8], http: &HttpCheck) -> Result<(), CheckFailure> {
    if let Some(want) = &http.body
        && !want.is_empty()
        && !body.windows(want.len()).any(|w| w == want.as_bytes())
    {
        return Err(CheckFailure::BodyMismatch);
    }
    if let Some(want) = &http.digest {
        let got = md5_hex(body);
        if got != *want {
            return Err(CheckFailure::DigestMismatch { got });
        }
    }
    Ok(())
}

/// keepalived's `digest`: MD5 in lowercase hex, as `md5sum` prints it.
fn md5_hex(body: &[u8]) -> String {
    Md5::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends what the server sent next; 0 at its end. A TLS peer that closes
/// without `close_notify` has ended too (many servers do).
async fn read_more(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> Result<usize, CheckFailure> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(io_failure(&e)),
    }
}

fn closed_in_head(buf: &[u8]) -> CheckFailure {
    if buf.is_empty() {
        return CheckFailure::Reset;
    }
    protocol(format!(
        "the server closed the connection within the response head ({} bytes in)",
        buf.len()
    ))
}

fn protocol(detail: String) -> CheckFailure {
    CheckFailure::Protocol { detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_config::check::{DEFAULT_STATUS, StatusRange};

    /// `python3 -m http.server` answering a missing file, as sent.
    const PYTHON_404: &[u8] = include_bytes!("testdata/python-404.http");

    fn http(status: Vec<StatusRange>) -> HttpCheck {
        HttpCheck {
            method: "GET".into(),
            path: "/health".into(),
            host: None,
            status,
            body: None,
            digest: None,
        }
    }

    /// Plays `response` to `exchange` as a server that then closes.
    fn judge(response: &[u8], check: &HttpCheck) -> Result<(), CheckFailure> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, mut server) = tokio::io::duplex(256 * 1024);
            server.write_all(response).await.unwrap();
            drop(server.shutdown().await);
            let keep = server;
            let r = exchange(client, "GET / HTTP/1.1\r\n\r\n", check).await;
            drop(keep);
            r
        })
    }

    #[test]
    fn the_request_names_host_agent_and_close() {
        let target: SocketAddr = "[fd77::101]:8080".parse().unwrap();
        let r = request(&http(vec![DEFAULT_STATUS]), target, false);
        assert_eq!(
            r,
            "GET /health HTTP/1.1\r\nHost: [fd77::101]:8080\r\nUser-Agent: lb-check\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(authority("10.0.0.1:80".parse().unwrap(), false), "10.0.0.1");
        assert_eq!(authority("10.0.0.1:443".parse().unwrap(), true), "10.0.0.1");
        assert_eq!(
            authority("10.0.0.1:443".parse().unwrap(), false),
            "10.0.0.1:443"
        );
        let mut named = http(vec![DEFAULT_STATUS]);
        named.host = Some("www.example.com".into());
        assert!(request(&named, target, true).contains("\r\nHost: www.example.com\r\n"));
    }

    #[test]
    fn a_status_passes_iff_listed() {
        assert_eq!(
            judge(PYTHON_404, &http(vec![DEFAULT_STATUS])),
            Err(CheckFailure::HttpStatus { status: 404 })
        );
        let listed = http(vec![
            StatusRange { lo: 200, hi: 299 },
            StatusRange { lo: 404, hi: 404 },
        ]);
        assert_eq!(judge(PYTHON_404, &listed), Ok(()));
    }

    #[test]
    fn body_and_digest_are_judged_on_the_whole_body() {
        let mut c = http(vec![StatusRange { lo: 404, hi: 404 }]);
        c.body = Some("Nothing matches the given URI".into());
        assert_eq!(judge(PYTHON_404, &c), Ok(()));
        c.body = Some("healthy".into());
        assert_eq!(judge(PYTHON_404, &c), Err(CheckFailure::BodyMismatch));
        c.body = None;
        // `md5sum` of the captured body (its last 335 bytes).
        c.digest = Some("a2ae3eaedf7f44998f3639756a1725cc".into());
        assert_eq!(judge(PYTHON_404, &c), Ok(()));
        c.digest = Some("0123456789abcdef0123456789abcdef".into());
        assert_eq!(
            judge(PYTHON_404, &c),
            Err(CheckFailure::DigestMismatch {
                got: "a2ae3eaedf7f44998f3639756a1725cc".into()
            })
        );
    }

    #[test]
    fn a_truncated_or_foreign_answer_is_precise() {
        let mut c = http(vec![DEFAULT_STATUS]);
        assert_eq!(judge(b"", &c), Err(CheckFailure::Reset));
        let e = judge(&PYTHON_404[..20], &c).unwrap_err();
        assert!(e.to_string().contains("within the response head"), "{e}");
        let e = judge(b"SSH-2.0-OpenSSH_9.2\r\n", &c).unwrap_err();
        assert!(e.to_string().contains("not an HTTP/1.x response"), "{e}");
        c.status = vec![StatusRange { lo: 404, hi: 404 }];
        c.body = Some("x".into());
        let e = judge(&PYTHON_404[..PYTHON_404.len() - 1], &c).unwrap_err();
        assert!(
            e.to_string()
                .contains("closed the connection within the body"),
            "{e}"
        );
    }

    #[test]
    fn md5_is_lowercase_hex() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
