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
use hyper::{Method, StatusCode, header};
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
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

/// Everything but RFC 3986 unreserved characters is encoded in a path
/// segment or query value: VIP names such as `10.0.0.1:80/tcp` contain `:` and `/`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
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
        self.call(Method::POST, path, Some(self.encode_body(path, body)?))
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
        self.call(Method::PUT, path, Some(self.encode_body(path, body)?))
            .await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::DELETE, path, None).await
    }

    fn encode_body<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Vec<u8>, ClientError> {
        serde_json::to_vec(body).map_err(|source| ClientError::Decode {
            path: path.to_owned(),
            source,
        })
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
        let (status, bytes) =
            match tokio::time::timeout(self.timeout, self.exchange(method, path, body)).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(self.io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer within {}s", self.timeout.as_secs()),
                    )));
                }
            };
        if status.is_success() {
            return Ok(bytes);
        }
        Err(ClientError::Api(api_error(status, &bytes)))
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    ClientError::NotRunning {
                        socket: self.socket.clone(),
                        source: e,
                    }
                }
                _ => self.io(e),
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.io(io::Error::other(e)))?;
        let conn = tokio::spawn(conn);

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
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.io(io::Error::other(e)))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| self.io(io::Error::other(e)))?
            .to_bytes();
        drop(sender);
        // The connection ends once the sender is gone; its error, if any, is moot.
        let _ = conn.await;
        Ok((status, bytes))
    }

    fn io(&self, source: io::Error) -> ClientError {
        ClientError::Io {
            socket: self.socket.clone(),
            source,
        }
    }
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
    fn encodes_vip_ids() {
        assert_eq!(encode("10.0.0.1:80/tcp"), "10.0.0.1%3A80%2Ftcp");
        assert_eq!(
            encode("[2001:db8::1]:53/udp"),
            "%5B2001%3Adb8%3A%3A1%5D%3A53%2Fudp"
        );
        assert_eq!(encode("web-1_a~b"), "web-1_a~b");
        assert_eq!(encode("a b"), "a%20b");
    }

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
