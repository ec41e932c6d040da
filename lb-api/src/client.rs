//! The control API's client, used by the CLI: one HTTP/1.1 request per
//! connection over the agent's unix socket (a CLI makes a handful of calls, so
//! pooling would buy nothing).

use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Response, StatusCode, body::Incoming, header};
use hyper_util::rt::TokioIo;
use serde::{Serialize, de::DeserializeOwned};
use tokio::net::UnixStream;

use crate::types::{ApiError, ErrorBody};

/// What a request to the agent can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (missing, or left by a dead agent).
    #[error("no agent at {}: is `lb-ctl agent` running? (see --socket)", socket.display())]
    NotRunning {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The agent answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Connecting or talking to the agent failed otherwise (permissions, timeout, ...).
    #[error("talking to the agent at {}", socket.display())]
    Io {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The answer is not the JSON expected.
    #[error("unexpected answer from the agent to {path}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A client of the agent's unix socket.
#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    /// How long a request may take by default: a reload resolves next hops.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Sets how long one request may take, connection included.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(json_body(path, body)?))
            .await
    }

    /// A POST without a body (`/v1/reload`, `/v1/teardown`).
    pub async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::POST, path, None).await
    }

    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::PUT, path, Some(json_body(path, body)?))
            .await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::DELETE, path, None).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let bytes = self.fetch(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
            path: path.to_owned(),
            source,
        })
    }

    /// Sends one request (`body`: JSON) and returns a successful answer's
    /// body as the agent sent it; an error status becomes [`ClientError::Api`].
    pub async fn fetch(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        let exchange = async {
            let resp = self.send(method, path, body).await?;
            self.collect(resp).await
        };
        let (status, bytes) = self.in_time(exchange).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(ClientError::Api(api_error(status, &bytes)))
    }

    /// A GET whose answer is read line by line as it arrives (`/v1/events`):
    /// the timeout covers the answer's head, not its body, which may go on
    /// for as long as the agent runs.
    pub async fn get_lines(&self, path: &str) -> Result<Lines, ClientError> {
        let resp = self.in_time(self.send(Method::GET, path, None)).await?;
        if !resp.status().is_success() {
            let (status, bytes) = self.in_time(self.collect(resp)).await?;
            return Err(ClientError::Api(api_error(status, &bytes)));
        }
        Ok(Lines {
            body: resp.into_body(),
            buf: Vec::new(),
            socket: self.socket.clone(),
        })
    }

    async fn in_time<T>(
        &self,
        work: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(self.io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {}s", self.timeout.as_secs()),
                )))
            })
    }

    /// Connects, sends the request and returns the answer once its head is
    /// in; the connection is driven by a task of its own until the body is read.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.connect_error(e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.io(io::Error::other(e)))?;
        // It ends when the answer is read and the sender gone; its error is moot then.
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "lb")
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.io(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| self.io(io::Error::other(e)))
    }

    async fn collect(&self, resp: Response<Incoming>) -> Result<(StatusCode, Bytes), ClientError> {
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| self.io(io::Error::other(e)))?
            .to_bytes();
        Ok((status, bytes))
    }

    fn connect_error(&self, e: io::Error) -> ClientError {
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
                socket: self.socket.clone(),
                source: e,
            },
            _ => self.io(e),
        }
    }

    fn io(&self, source: io::Error) -> ClientError {
        ClientError::Io {
            socket: self.socket.clone(),
            source,
        }
    }
}

/// An answer read line by line, from [`Client::get_lines`].
#[derive(Debug)]
pub struct Lines {
    body: Incoming,
    /// Received bytes not yet returned as a line.
    buf: Vec<u8>,
    socket: PathBuf,
}

impl Lines {
    /// The next line, without its newline, as soon as it is complete;
    /// `None` once the agent has ended the answer (a last line without a
    /// newline is returned first).
    pub async fn next_line(&mut self) -> Result<Option<String>, ClientError> {
        loop {
            if let Some(line) = self.take_line() {
                return Ok(Some(line));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    // Trailers, the only other kind of frame, carry no lines.
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    return Err(ClientError::Io {
                        socket: self.socket.clone(),
                        source: io::Error::other(e),
                    });
                }
                None if self.buf.is_empty() => return Ok(None),
                None => return Ok(Some(lossy(std::mem::take(&mut self.buf)))),
            }
        }
    }

    fn take_line(&mut self) -> Option<String> {
        let end = self.buf.iter().position(|b| *b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=end).collect();
        line.pop();
        Some(lossy(line))
    }
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A request body as JSON; `path` names the request if it cannot be encoded.
pub fn json_body<B: Serialize + ?Sized>(path: &str, body: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body).map_err(|source| ClientError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// The error an error answer carries; anything in front of the agent (a
/// proxy) may answer in its own words, which become the reason.
fn api_error(status: StatusCode, body: &[u8]) -> ApiError {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            ApiError {
                code: status.as_u16(),
                reason: if text.is_empty() {
                    status.canonical_reason().unwrap_or("error").to_owned()
                } else {
                    text
                },
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let e = api_error(
            StatusCode::CONFLICT,
            br#"{"error":{"code":409,"reason":"exists"}}"#,
        );
        assert_eq!((e.code, e.reason.as_str()), (409, "exists"));
        let e = api_error(StatusCode::BAD_GATEWAY, b"upstream down\n");
        assert_eq!((e.code, e.reason.as_str()), (502, "upstream down"));
        let e = api_error(StatusCode::BAD_GATEWAY, b"");
        assert_eq!(e.reason, "Bad Gateway");
    }

    #[test]
    fn not_running_message() {
        let e = ClientError::NotRunning {
            socket: "/run/lb/lb.sock".into(),
            source: io::ErrorKind::NotFound.into(),
        };
        assert_eq!(
            e.to_string(),
            "no agent at /run/lb/lb.sock: is `lb-ctl agent` running? (see --socket)"
        );
    }
}
