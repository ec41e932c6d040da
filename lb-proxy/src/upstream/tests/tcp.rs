//! `mode tcp` relays: bytes both ways, half-close passed on, retries and
//! redispatch on connect, the idle timeout.

use std::time::Duration;

use lb_config::proxy::PoolL7;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::super::{RelayError, Relayed};
use super::*;

/// A server that reads until the client's half-close, then answers with
/// what it read, reversed, and closes.
async fn reverse_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                if tcp.read_to_end(&mut got).await.is_ok() {
                    got.reverse();
                    let _ = tcp.write_all(&got).await;
                }
            });
        }
    });
    addr
}

/// A client connected through `up.relay`: the client's end, and the
/// relay's outcome to await.
async fn through(
    up: &Upstream,
    ctx: Ctx,
) -> (
    TcpStream,
    tokio::task::JoinHandle<Result<Relayed, RelayError>>,
) {
    let front = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let client = TcpStream::connect(front.local_addr().expect("an address"))
        .await
        .expect("connect");
    let (accepted, _) = front.accept().await.expect("accept");
    let up = up.clone();
    let relay = tokio::spawn(async move { up.relay(accepted, &ctx).await });
    (client, relay)
}

#[tokio::test]
async fn bytes_flow_both_ways_across_a_half_close() {
    let addr = reverse_server().await;
    let up = upstream(backends(&[("db", addr)], None), PoolL7::default());
    let (mut client, relay) = through(&up, ctx()).await;
    client.write_all(b"hello, server").await.expect("write");
    // The client is done sending but still reads: the server must see the
    // end of the request and still be able to answer.
    client.shutdown().await.expect("half-close");
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.expect("read");
    assert_eq!(answer, b"revres ,olleh");
    let relayed = relay.await.expect("ran").expect("relayed");
    assert_eq!(
        (relayed.server, relayed.bytes_in, relayed.bytes_out),
        (0, 13, 13)
    );
    assert_eq!(up.links()[0].counters().snapshot().bytes_in, 13);
    assert_eq!(up.links()[0].active(), 0, "the slot is given back");
}

#[tokio::test]
async fn a_refusing_server_is_skipped_for_tcp_too() {
    let good = reverse_server().await;
    let bad = refusing_addr().await;
    let l7 = PoolL7 {
        redispatch: true,
        ..PoolL7::default()
    };
    let up = upstream(backends(&[("bad", bad), ("good", good)], None), l7);
    for _ in 0..4 {
        let (mut client, relay) = through(&up, ctx()).await;
        client.write_all(b"ab").await.expect("write");
        client.shutdown().await.expect("half-close");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.expect("read");
        assert_eq!(answer, b"ba");
        assert_eq!(relay.await.expect("ran").expect("relayed").server, 1);
    }
}

#[tokio::test]
async fn an_idle_relay_ends_after_the_shorter_timeout() {
    let addr = reverse_server().await;
    let up = upstream(backends(&[("db", addr)], None), PoolL7::default());
    let ctx = Ctx {
        client_timeout: Duration::from_millis(100),
        ..ctx()
    };
    let (mut client, relay) = through(&up, ctx).await;
    let outcome = relay.await.expect("ran");
    assert!(matches!(outcome, Err(RelayError::Idle(_))), "{outcome:?}");
    let mut rest = Vec::new();
    client
        .read_to_end(&mut rest)
        .await
        .expect("the relay closed the client");
}

#[tokio::test]
async fn no_server_closes_the_client() {
    let bad = refusing_addr().await;
    let mut l7 = PoolL7 {
        retries: 1,
        ..PoolL7::default()
    };
    l7.timeouts.connect = Duration::from_millis(20);
    let up = upstream(backends(&[("bad", bad)], None), l7);
    let (mut client, relay) = through(&up, ctx()).await;
    assert!(matches!(
        relay.await.expect("ran"),
        Err(RelayError::Connect { .. })
    ));
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).await.expect("closed"), 0);
}
