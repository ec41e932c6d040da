//! A minimal HTTP/1.1 client on one persistent unix-socket connection, so a
//! request's time is the agent's (write → complete answer), not a process
//! start or a connection setup. `lb_api::client::Client` opens a connection
//! per request, which suits a CLI but would add its setup to every sample.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};

/// Longest a request may take (a reload of a big file on slow code included).
const TIMEOUT: Duration = Duration::from_secs(120);

/// One answer and how long it took.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// From the first byte written to the last byte of the body read.
    pub elapsed: Duration,
}

impl Answer {
    /// The body as JSON of type `T`, if the status is 2xx.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        ensure!(
            (200..300).contains(&self.status),
            "{what}: the agent answered {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body).trim()
        );
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "{what}: unexpected answer {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A keep-alive connection to the agent's socket.
pub struct Conn {
    socket: PathBuf,
    stream: Option<BufReader<UnixStream>>,
    /// Times the agent closed the connection and it was opened again.
    pub reconnects: usize,
}

impl Conn {
    pub fn connect(socket: &Path) -> Result<Conn> {
        let mut c = Conn {
            socket: socket.to_owned(),
            stream: None,
            reconnects: 0,
        };
        c.open()?;
        Ok(c)
    }

    fn open(&mut self) -> Result<&mut BufReader<UnixStream>> {
        let s = UnixStream::connect(&self.socket)
            .with_context(|| format!("connecting to {}", self.socket.display()))?;
        s.set_read_timeout(Some(TIMEOUT))?;
        s.set_write_timeout(Some(TIMEOUT))?;
        Ok(self.stream.insert(BufReader::new(s)))
    }

    /// Sends one request (`body`: JSON) and reads the whole answer. If the
    /// agent had closed the idle connection, it is opened again and the
    /// request sent once more, timed from the new write.
    pub fn request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Answer> {
        let body = body.unwrap_or_default();
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: lb\r\nAccept: application/json\r\n");
        if !body.is_empty() {
            req += "Content-Type: application/json\r\n";
        }
        req += &format!("Content-Length: {}\r\n\r\n", body.len());
        let mut req = req.into_bytes();
        req.extend_from_slice(body);
        for attempt in 0..2 {
            let stream = match self.stream.take() {
                Some(s) => self.stream.insert(s),
                None => self.open()?,
            };
            let start = Instant::now();
            let sent = stream.get_mut().write_all(&req);
            match sent
                .map_err(anyhow::Error::from)
                .and_then(|()| read_answer(stream))
            {
                Ok(Some((status, body, keep))) => {
                    let elapsed = start.elapsed();
                    if !keep {
                        self.stream = None;
                    }
                    return Ok(Answer {
                        status,
                        body,
                        elapsed,
                    });
                }
                // Closed before answering (an idle keep-alive timeout): once more.
                Ok(None) if attempt == 0 => {
                    self.stream = None;
                    self.reconnects += 1;
                }
                Ok(None) => bail!("{method} {path}: the agent closed the connection unanswered"),
                Err(e) => {
                    self.stream = None;
                    return Err(e.context(format!("{method} {path}")));
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }
}

/// Reads one answer: `None` if the connection was closed before its first
/// byte; else its status, body, and whether the connection stays open.
fn read_answer(r: &mut BufReader<UnixStream>) -> Result<Option<(u16, Vec<u8>, bool)>> {
    let mut line = String::new();
    if r.read_line(&mut line).context("reading the status line")? == 0 {
        return Ok(None);
    }
    // `HTTP/1.1 200 OK`
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP status line: {line:?}"))?;
    let (mut length, mut chunked, mut keep) = (None, false, true);
    loop {
        line.clear();
        ensure!(
            r.read_line(&mut line).context("reading headers")? > 0,
            "the connection closed inside the answer's headers"
        );
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            bail!("not an HTTP header: {header:?}");
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .with_context(|| format!("Content-Length {value:?}"))?,
                )
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).context("reading a chunk size")?;
            let size = line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size, 16)
                .with_context(|| format!("chunk size {:?}", line.trim()))?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).context("reading a chunk")?;
            if size == 0 {
                // The last chunk; no trailers are expected from the agent.
                break;
            }
            chunk.truncate(size);
            body.extend_from_slice(&chunk);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body).context("reading the body")?;
    } else {
        // Neither: the body runs to the end of the connection.
        r.read_to_end(&mut body).context("reading the body")?;
        keep = false;
    }
    Ok(Some((status, body, keep)))
}
