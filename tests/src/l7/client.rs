//! The client side of the L7 tests: raw requests, written byte for byte as
//! given, from a chosen source address (the `source` hash and `forwardfor`
//! read it), and responses read as they came, headers in order.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// How long any read or write may block.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A response as the client received it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// `(lowercase name, value)` in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The values of header `name`, in order.
    pub fn header(&self, name: &str) -> Vec<&str> {
        values(&self.headers, name)
    }

    /// The echo server's name (`server=NAME`, its body's first line).
    pub fn server(&self) -> Option<&str> {
        self.body.lines().next()?.strip_prefix("server=")
    }

    /// The request head the echo server received: `(lowercase name, value)`.
    pub fn received(&self) -> Vec<(String, String)> {
        self.body.lines().skip(2).filter_map(split_header).collect()
    }

    /// The values of header `name` in the request the server received.
    pub fn received_header(&self, name: &str) -> Vec<String> {
        let r = self.received();
        values(&r, name).into_iter().map(str::to_owned).collect()
    }
}

fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn split_header(line: &str) -> Option<(String, String)> {
    let (n, v) = line.split_once(':')?;
    Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
}

/// One client connection.
pub struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    /// Connects to `dst` from `src`.
    pub fn open(src: IpAddr, dst: SocketAddr) -> Result<Conn> {
        let s = crate::http::connect(Some(src), dst, TIMEOUT)
            .with_context(|| format!("connecting {src} -> {dst}"))?;
        Ok(Conn {
            w: s.try_clone()?,
            r: BufReader::new(s),
        })
    }

    /// Writes `raw` as it is.
    pub fn write(&mut self, raw: &[u8]) -> Result<()> {
        self.w.write_all(raw).context("writing the request")
    }

    /// Sends `raw` and reads one response.
    pub fn send(&mut self, raw: &str) -> Result<Response> {
        self.write(raw.as_bytes())?;
        self.read()
    }

    /// Reads one response (body by `Content-Length`, chunked, or to the
    /// end of the connection).
    pub fn read(&mut self) -> Result<Response> {
        let mut line = String::new();
        self.r
            .read_line(&mut line)
            .context("reading the status line")?;
        if line.is_empty() {
            bail!("the connection closed before any response");
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut resp = Response {
            status,
            ..Response::default()
        };
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).context("reading a header")?;
            let text = line.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                break;
            }
            resp.headers.extend(split_header(text));
        }
        resp.body = self.body(&resp)?;
        Ok(resp)
    }

    fn body(&mut self, resp: &Response) -> Result<String> {
        let mut body = Vec::new();
        if let Some(n) = resp.header("content-length").first() {
            body.resize(n.parse().context("Content-Length")?, 0);
            self.r.read_exact(&mut body).context("reading the body")?;
        } else if resp.header("transfer-encoding").contains(&"chunked") {
            self.chunks(&mut body)?;
        } else if resp.status >= 200 && resp.status != 204 && resp.status != 304 {
            self.r
                .read_to_end(&mut body)
                .context("reading to the end")?;
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    fn chunks(&mut self, body: &mut Vec<u8>) -> Result<()> {
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            let n = usize::from_str_radix(size, 16).with_context(|| format!("chunk {line:?}"))?;
            let mut chunk = vec![0; n + 2];
            if n == 0 {
                // The last chunk: trailers end with a blank line.
                while self.r.read_line(&mut line)? > 2 {
                    line.clear();
                }
                return Ok(());
            }
            self.r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..n]);
        }
    }

    /// A second handle on the socket, to write while another thread reads.
    pub fn writer(&self) -> Result<TcpStream> {
        Ok(self.w.try_clone()?)
    }
}

/// `GET target` with `headers` (each `Name: value`) and `Host: lb`, on a new
/// connection that closes after it.
pub fn get(src: IpAddr, dst: SocketAddr, target: &str, headers: &[&str]) -> Result<Response> {
    Conn::open(src, dst)?.send(&request("GET", target, headers))
}

/// The raw text of a request with `Host: lb` and `Connection: close`.
pub fn request(method: &str, target: &str, headers: &[&str]) -> String {
    let mut s = format!("{method} {target} HTTP/1.1\r\nHost: lb\r\n");
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("Connection: close\r\n\r\n");
    s
}
