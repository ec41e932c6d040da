//! `maxconn` and queues with real servers: the limit holds, the pool queue
//! drains into whichever server frees first, `timeout queue` answers 503,
//! and a request whose client went away leaves the queue.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use lb_config::proxy::{Balance, PoolL7};

use super::*;

fn slow(ms: u32) -> Request<RequestBody> {
    let mut req = get("/");
    req.headers_mut().insert("x-delay-ms", ms.into());
    req
}

/// Sends `n` slow requests at once; their statuses.
async fn burst(up: &Upstream, n: usize, ms: u32) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let up = up.clone();
            tokio::spawn(async move { read(up.forward(slow(ms), &ctx()).await).await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("the request ran"));
    }
    statuses
}

/// Round robin: a request that finds every server full waits in the pool's
/// queue, not the server's (HAProxy 2.6: the balancer skips full servers,
/// finds none, and `pendconn_add` queues the unassigned stream on the
/// backend).
#[tokio::test]
async fn a_server_never_sees_more_than_its_maxconn() {
    let s = Server::start("s1").await;
    let up = upstream(backends(&[("s1", s.addr)], Some(2)), PoolL7::default());
    let statuses = burst(&up, 12, 20).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(s.seen.peak.load(SeqCst), 2);
    let c = up.links()[0].counters().snapshot();
    assert_eq!(c.active_max, 2);
    assert_eq!(
        c.queue_max, 0,
        "nothing waited for this server in particular"
    );
    let pool = up.counters().snapshot();
    assert!(
        pool.queue_max >= 1,
        "requests waited in the pool queue: {pool:?}"
    );
    assert_eq!((up.links()[0].active(), up.links()[0].queued()), (0, 0));
    assert_eq!(up.queued(), 0);
}

/// A hash names its server even when it is full: the request waits in that
/// server's own queue (HAProxy 2.6: assigned, then queued on the server).
#[tokio::test]
async fn a_hashed_request_waits_in_its_servers_queue() {
    let s = Server::start("s1").await;
    let l7 = PoolL7 {
        balance: Balance::Source,
        ..PoolL7::default()
    };
    let up = upstream(backends(&[("s1", s.addr)], Some(2)), l7);
    let statuses = burst(&up, 12, 20).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(s.seen.peak.load(SeqCst), 2);
    let c = up.links()[0].counters().snapshot();
    assert_eq!(c.active_max, 2);
    assert!(c.queue_max >= 1, "requests waited for the server: {c:?}");
    assert_eq!(
        up.counters().snapshot().queue_max,
        0,
        "none in the pool queue"
    );
    assert_eq!((up.links()[0].active(), up.links()[0].queued()), (0, 0));
}

#[tokio::test]
async fn the_pool_queue_drains_into_every_server() {
    let (a, b) = (Server::start("a").await, Server::start("b").await);
    let up = upstream(
        backends(&[("a", a.addr), ("b", b.addr)], Some(1)),
        PoolL7::default(),
    );
    let statuses = burst(&up, 10, 20).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!((a.seen.peak.load(SeqCst), b.seen.peak.load(SeqCst)), (1, 1));
    assert_eq!(a.requests() + b.requests(), 10);
    assert!(
        a.requests() >= 2 && b.requests() >= 2,
        "both served the queue"
    );
    assert_eq!(up.queued(), 0);
}

#[tokio::test]
async fn waiting_past_timeout_queue_is_503() {
    let s = Server::start("s1").await;
    let mut l7 = PoolL7::default();
    l7.timeouts.queue = Duration::from_millis(100);
    let up = upstream(backends(&[("s1", s.addr)], Some(1)), l7);
    let holder = {
        let up = up.clone();
        tokio::spawn(async move { read(up.forward(slow(2000), &ctx()).await).await.0 })
    };
    while s.seen.in_flight.load(SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(read(up.forward(get("/"), &ctx()).await).await.0, 503);
    assert_eq!(up.counters().snapshot().queue_timeouts, 1);
    assert_eq!(up.links()[0].queued(), 0);
    assert_eq!(holder.await.expect("ran"), 200);
    assert_eq!(
        s.requests(),
        1,
        "the timed-out request never reached the server"
    );
}

/// The client of a waiting request goes away (the client side drops the
/// future): it leaves its queue, the slot it would have had goes to no one,
/// and it never reaches the server. `waiting` reads the length of the queue
/// the request is expected in.
async fn client_leaves_the_queue(balance: Balance, waiting: fn(&Upstream) -> u32) {
    let s = Server::start("s1").await;
    let l7 = PoolL7 {
        balance,
        ..PoolL7::default()
    };
    let up = upstream(backends(&[("s1", s.addr)], Some(1)), l7);
    let holder = {
        let up = up.clone();
        tokio::spawn(async move { read(up.forward(slow(300), &ctx()).await).await.0 })
    };
    while s.seen.in_flight.load(SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let queued = {
        let up = up.clone();
        tokio::spawn(async move { up.forward(get("/"), &ctx()).await.status() })
    };
    while waiting(&up) == 0 {
        assert!(!queued.is_finished(), "the second request waited");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    queued.abort();
    let _ = queued.await;
    assert_eq!((up.queued(), up.links()[0].queued()), (0, 0));
    assert_eq!(holder.await.expect("ran"), 200);
    assert_eq!(up.links()[0].active(), 0, "the freed slot went to no one");
    assert_eq!(read(up.forward(get("/"), &ctx()).await).await.0, 200);
    assert_eq!(s.requests(), 2, "the abandoned request was never sent");
}

#[tokio::test]
async fn a_request_whose_client_left_leaves_the_queue() {
    client_leaves_the_queue(Balance::RoundRobin, Upstream::queued).await;
}

#[tokio::test]
async fn a_request_whose_client_left_leaves_its_servers_queue() {
    client_leaves_the_queue(Balance::Source, |up| up.links()[0].queued()).await;
}
