//! The listeners: socket permissions, stale and live sockets, TCP tokens,
//! bind errors, shutdown.

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};

use lb_agent::http::{Servers, UnixSocket};
use lb_api::{
    client::{Client, ClientError},
    types::ChangeResult,
};
use serde_json::Value;

use crate::harness::{Harness, Setup, TempDir, agent_config, with_headers};

#[tokio::test]
async fn socket_is_private_and_replaces_only_stale_ones() {
    let h = Harness::start().await;
    let mode = std::fs::metadata(&h.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let parent = std::fs::metadata(h.socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(parent & 0o777, 0o755 & !umask(), "parent mode {parent:o}");
    // A live socket is not taken over.
    let err = UnixSocket::bind(&h.socket).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    // Nor is a file that is not a socket.
    let file = h.dir.0.join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    assert!(UnixSocket::bind(&file).await.is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    // A stale one (its listener gone) is replaced.
    let stale = h.dir.0.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let err = Client::new(&stale)
        .get::<Value>("/v1/status")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
    let api = UnixSocket::bind(&stale)
        .await
        .expect("replacing a stale socket");
    drop(api);
    // Stopping removes the socket file.
    let socket = h.socket.clone();
    h.stop().await;
    assert!(!socket.exists(), "socket left behind");
}

fn umask() -> u32 {
    // The process umask, read back from a directory created with 0777.
    let dir = TempDir::new();
    let probe = dir.0.join("probe");
    std::fs::DirBuilder::new()
        .mode(0o777)
        .create(&probe)
        .unwrap();
    0o777 & !std::fs::metadata(&probe).unwrap().permissions().mode()
}

#[tokio::test]
async fn missing_agent_is_not_running() {
    let dir = TempDir::new();
    let socket = dir.0.join("lb.sock");
    let err = Client::new(&socket)
        .get::<Value>("/v1/status")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::NotRunning { socket: s, .. } if s == &socket),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "no agent at {}: is `lb-ctl agent` running? (see --socket)",
            socket.display()
        )
    );
}

#[tokio::test]
async fn tcp_needs_the_bearer_token() {
    let h = Harness::with(Setup {
        token: Some("s3cret-token\n"),
        ..Setup::default()
    })
    .await;
    let get = |path, auth: Option<&str>| {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        with_headers("GET", path, &auth, "")
    };
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cret-toke"),
        Some("Bearer s3cret-token2"),
        Some("Basic s3cret-token"),
        Some("Bearer "),
    ] {
        for path in ["/v1/status", "/metrics", "/v1/nope"] {
            // Not even a wrong route is revealed without the token.
            let r = Harness::tcp(h.api, &get(path, auth)).await;
            assert_eq!(r.status, 401, "{path} {auth:?}: {r:?}");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            r.reason();
        }
    }
    assert!(h.seen().is_empty());

    let r = Harness::tcp(h.api, &get("/v1/status", Some("Bearer s3cret-token"))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["services"][0]["name"], "web");
    let r = Harness::tcp(h.api, &get("/metrics", Some("bearer s3cret-token"))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text.contains("lb_services 2"), "{}", r.text);
    assert_eq!(h.seen(), ["status", "status", "stats"]);
    h.stop().await;
}

#[tokio::test]
async fn bind_errors_say_what_and_where() {
    let dir = TempDir::new();
    let mut agent = agent_config(
        &dir,
        Setup {
            token: Some(" \n"),
            ..Setup::default()
        },
    );
    let err = Servers::bind(&agent).await.unwrap_err();
    let file = dir.0.join("token");
    assert!(
        format!("{err:#}").contains(&format!("the API token file {} is empty", file.display())),
        "{err:#}"
    );

    agent.api_token_file = Some(dir.0.join("absent"));
    let err = Servers::bind(&agent).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("reading the API token"),
        "{err:#}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    agent.api_listen = None;
    agent.metrics_listen = Some(addr);
    let err = Servers::bind(&agent).await.unwrap_err();
    assert!(
        format!("{err:#}").contains(&format!("binding the metrics endpoint on {addr}")),
        "{err:#}"
    );
}

#[tokio::test]
async fn shutdown_lets_the_last_answer_out() {
    let h = Harness::with(Setup {
        metrics: true,
        ..Setup::default()
    })
    .await;
    let socket = h.socket.clone();
    let metrics = h.metrics;
    let r: ChangeResult = h.client().post_empty("/v1/teardown").await.unwrap();
    assert!(r.changed);
    h.stop().await;
    let err = Client::new(&socket)
        .get::<Value>("/v1/status")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
    // Every listener is closed.
    let addr = metrics.expect("a metrics listener");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
