//! Servers on temporary sockets, and raw HTTP/1.1 to them.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
};

use lb_agent::api::server::{TcpApi, UnixApi};
use lb_api::client::Client;
use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::{TcpStream, UnixStream},
    sync::oneshot,
    task::JoinHandle,
};

use crate::fake::{Seen, fake_reconciler};

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lb-api-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the test dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unix-socket API server with a fake reconciler behind it.
pub(crate) struct Harness {
    pub(crate) dir: TempDir,
    pub(crate) socket: PathBuf,
    seen: Seen,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Harness {
    pub(crate) async fn start() -> Harness {
        Harness::start_with(true).await
    }

    /// `reconciler: false`: the reconciler is already gone.
    pub(crate) async fn start_with(reconciler: bool) -> Harness {
        let dir = TempDir::new();
        // A parent that does not exist yet: bind creates it.
        let socket = dir.0.join("run/lb.sock");
        let seen = Seen::default();
        let (tx, rx) = mpsc::channel();
        if reconciler {
            let seen = seen.clone();
            std::thread::spawn(move || fake_reconciler(rx, seen));
        } else {
            drop(rx);
        }
        let api = UnixApi::bind(&socket)
            .await
            .expect("binding the API socket");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(api.serve(tx, async move {
            let _ = stopped.await;
        }));
        Harness {
            dir,
            socket,
            seen,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub(crate) fn client(&self) -> Client {
        Client::new(&self.socket)
    }

    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) async fn raw(&self, request: &[u8]) -> Reply {
        let stream = UnixStream::connect(&self.socket)
            .await
            .expect("connecting to the socket");
        exchange(stream, request).await
    }

    /// Stops the server and waits for it.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.server
            .take()
            .unwrap()
            .await
            .unwrap()
            .expect("server ended with an error");
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(s) = &self.server {
            s.abort();
        }
    }
}

/// A raw HTTP answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    head: String,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The reason of an error body, asserting its code matches the status.
    pub(crate) fn reason(&self) -> &str {
        assert_eq!(
            self.body["error"]["code"], self.status,
            "error body: {:?}",
            self.body
        );
        self.body["error"]["reason"]
            .as_str()
            .expect("an error reason")
    }
}

/// Writes `request` (which should say `Connection: close`) and reads the answer.
pub(crate) async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &[u8],
) -> Reply {
    // The server may answer (413) and close before reading everything.
    let _ = stream.write_all(request).await;
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf).await;
    let text = String::from_utf8(buf).expect("a UTF-8 answer");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
    };
    Reply {
        status,
        head: head.to_owned(),
        body,
    }
}

pub(crate) fn request(method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: lb\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(crate) async fn tcp_server(
    token: &str,
) -> (
    SocketAddr,
    Seen,
    oneshot::Sender<()>,
    JoinHandle<std::io::Result<()>>,
) {
    let seen = Seen::default();
    let (tx, rx) = mpsc::channel();
    {
        let seen = seen.clone();
        std::thread::spawn(move || fake_reconciler(rx, seen));
    }
    let api = TcpApi::bind("127.0.0.1:0".parse().unwrap(), token.into())
        .await
        .expect("binding TCP");
    let addr = api.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(api.serve(tx, async move {
        let _ = stopped.await;
    }));
    (addr, seen, stop, server)
}

pub(crate) async fn tcp_raw(addr: SocketAddr, auth: Option<&str>) -> Reply {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!("GET /v1/status HTTP/1.1\r\nHost: lb\r\n{auth}Connection: close\r\n\r\n");
    exchange(TcpStream::connect(addr).await.unwrap(), req.as_bytes()).await
}
