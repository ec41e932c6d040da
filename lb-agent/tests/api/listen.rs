//! The sockets: permissions, stale and live sockets, TCP tokens, shutdown.

use std::{
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::Path,
};

use lb_agent::api::server::{TcpApi, UnixApi};
use lb_api::{
    client::{Client, ClientError},
    types::ChangeResult,
};
use serde_json::Value;
use tokio::net::TcpStream;

use crate::harness::{Harness, TempDir, exchange, request, tcp_raw, tcp_server};

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
    let err = UnixApi::bind(&h.socket).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    // Nor is a file that is not a socket.
    let file = h.dir.0.join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    assert!(UnixApi::bind(&file).await.is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    // A stale one (its listener gone) is replaced.
    let stale = h.dir.0.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let err = Client::new(&stale)
        .get::<Value>("/v1/status")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
    let api = UnixApi::bind(&stale)
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
    let (addr, seen, stop, server) = tcp_server("s3cret-token\n").await;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cret-toke"),
        Some("Bearer s3cret-token2"),
        Some("Basic s3cret-token"),
        Some("Bearer "),
    ] {
        let r = tcp_raw(addr, auth).await;
        assert_eq!(r.status, 401, "{auth:?}: {r:?}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        r.reason();
    }
    // Even a wrong route is not revealed without the token.
    let r = exchange(
        TcpStream::connect(addr).await.unwrap(),
        &request("GET", "/v1/nope", ""),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(seen.lock().unwrap().is_empty());

    let r = tcp_raw(addr, Some("Bearer s3cret-token")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["vips"][0]["name"], "web");
    assert_eq!(*seen.lock().unwrap(), ["status"]);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn tcp_refuses_an_empty_token() {
    let err = TcpApi::bind("127.0.0.1:0".parse().unwrap(), " \n".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn shutdown_lets_the_last_answer_out() {
    let h = Harness::start().await;
    let socket: &Path = &h.socket.clone();
    let r: ChangeResult = h.client().post_empty("/v1/teardown").await.unwrap();
    assert!(r.changed);
    h.stop().await;
    let err = Client::new(socket)
        .get::<Value>("/v1/status")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
}
