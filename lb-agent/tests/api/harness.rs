//! `http::Servers` on a temporary socket (and, when asked, TCP ports) in
//! front of a fake reconciler, and raw HTTP/1.1 to them.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
};

use lb_agent::{
    events::EventBus,
    http::{Ctx, Servers},
    metrics::BuildInfo,
};
use lb_api::client::Client;
use lb_config::AgentConfig;
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

/// What to start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setup {
    /// `false`: the reconciler is already gone.
    pub(crate) reconciler: bool,
    /// The TCP API on port 0 with this token file content.
    pub(crate) token: Option<&'static str>,
    /// The metrics listener on port 0.
    pub(crate) metrics: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            reconciler: true,
            token: None,
            metrics: false,
        }
    }
}

/// The agent's HTTP server with a fake reconciler and a real event bus.
pub(crate) struct Harness {
    pub(crate) dir: TempDir,
    pub(crate) socket: PathBuf,
    pub(crate) api: Option<SocketAddr>,
    pub(crate) metrics: Option<SocketAddr>,
    pub(crate) bus: EventBus,
    seen: Seen,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// The agent settings of `setup`, under `dir`.
pub(crate) fn agent_config(dir: &TempDir, setup: Setup) -> AgentConfig {
    let token_file = setup.token.map(|t| {
        let file = dir.0.join("token");
        std::fs::write(&file, t).expect("writing the token file");
        file
    });
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    AgentConfig {
        // A parent that does not exist yet: bind creates it.
        socket: dir.0.join("run/lb.sock"),
        api_listen: token_file.is_some().then_some(any_port),
        api_token_file: token_file,
        metrics_listen: setup.metrics.then_some(any_port),
        ..AgentConfig::default()
    }
}

impl Harness {
    pub(crate) async fn start() -> Harness {
        Harness::with(Setup::default()).await
    }

    pub(crate) async fn with(setup: Setup) -> Harness {
        let dir = TempDir::new();
        let agent = agent_config(&dir, setup);
        let seen = Seen::default();
        let (tx, rx) = mpsc::channel();
        if setup.reconciler {
            let seen = seen.clone();
            std::thread::spawn(move || fake_reconciler(rx, seen));
        } else {
            drop(rx);
        }
        let servers = Servers::bind(&agent).await.expect("binding the servers");
        let (api, metrics) = (servers.api_addr(), servers.metrics_addr());
        let bus = EventBus::new();
        let ctx = Ctx {
            requests: tx,
            events: bus.clone(),
            build: BuildInfo::current(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(servers.serve(ctx, async move {
            let _ = stopped.await;
        }));
        Harness {
            dir,
            socket: agent.socket,
            api,
            metrics,
            bus,
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

    /// One request over the unix socket.
    pub(crate) async fn raw(&self, request: &[u8]) -> Reply {
        let stream = UnixStream::connect(&self.socket)
            .await
            .expect("connecting to the socket");
        exchange(stream, request).await
    }

    /// One request to a TCP listener.
    pub(crate) async fn tcp(addr: Option<SocketAddr>, request: &[u8]) -> Reply {
        let addr = addr.expect("that listener was not started");
        exchange(TcpStream::connect(addr).await.unwrap(), request).await
    }

    /// Stops the server and waits for it.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.server
            .take()
            .unwrap()
            .await
            .expect("the server panicked");
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(s) = &self.server {
            s.abort();
        }
    }
}

/// A raw HTTP answer (not chunked).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    head: String,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {:?}", self.text))
    }

    /// The reason of an error body, asserting its code matches the status.
    pub(crate) fn reason(&self) -> String {
        let body = self.json();
        assert_eq!(body["error"]["code"], self.status, "error body: {body:?}");
        body["error"]["reason"]
            .as_str()
            .expect("an error reason")
            .to_owned()
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
    Reply {
        status,
        head: head.to_owned(),
        text: body.to_owned(),
    }
}

pub(crate) fn request(method: &str, path: &str, body: &str) -> Vec<u8> {
    with_headers(method, path, "", body)
}

/// A request with extra header lines (each ending in `\r\n`).
pub(crate) fn with_headers(method: &str, path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: lb\r\n{headers}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
