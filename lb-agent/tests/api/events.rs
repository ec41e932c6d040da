//! `GET /v1/events`: the history, then (following) every new event as it is
//! published, read through `Client::get_lines`.

use std::time::{Duration, Instant};

use lb_api::{
    client::Lines,
    event_stream::{Lagged, Line},
    events::{Event, EventKind},
    paths::EventsQuery,
};

use crate::harness::{Harness, request};

fn pool_added(name: &str) -> EventKind {
    EventKind::PoolAdded {
        pool: name.into(),
        source: lb_api::types::Source::Runtime,
    }
}

async fn next(lines: &mut Lines) -> Option<Line> {
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("a line within 10s")
        .expect("reading the stream")?;
    Some(Line::parse(&line).unwrap_or_else(|| panic!("not JSON: {line:?}")))
}

async fn next_event(lines: &mut Lines) -> Event {
    match next(lines).await {
        Some(Line::Event(e)) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn open(h: &Harness, follow: bool) -> Lines {
    h.client()
        .get_lines(&EventsQuery { follow }.path())
        .await
        .expect("opening the event stream")
}

#[tokio::test]
async fn history_then_the_end() {
    let h = Harness::start().await;
    h.bus.publish(pool_added("a"));
    h.bus.publish(pool_added("b"));
    let mut lines = open(&h, false).await;
    assert_eq!(next_event(&mut lines).await.kind, pool_added("a"));
    assert_eq!(next_event(&mut lines).await.seq, 2);
    assert_eq!(next(&mut lines).await, None);
    let r = h.raw(&request("GET", "/v1/events", "")).await;
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(r.text.lines().count(), 2, "{}", r.text);
    // Nothing was asked of the reconciler.
    assert!(h.seen().is_empty());
}

#[tokio::test]
async fn a_follower_sees_new_events_as_they_happen() {
    let h = Harness::start().await;
    h.bus.publish(pool_added("before"));
    let mut lines = open(&h, true).await;
    assert_eq!(next_event(&mut lines).await.kind, pool_added("before"));
    h.bus.publish(pool_added("after"));
    let e = next_event(&mut lines).await;
    assert_eq!((e.seq, e.kind), (2, pool_added("after")));
    h.bus.publish(EventKind::AgentStopping);
    assert_eq!(next_event(&mut lines).await.seq, 3);
}

#[tokio::test]
async fn a_lagging_follower_is_told_how_many_it_missed() {
    let h = Harness::start().await;
    let mut lines = open(&h, true).await;
    // The server cannot run while this publishes (one thread): it falls behind.
    const N: u64 = 6000;
    for _ in 0..N {
        h.bus.publish(EventKind::AgentStopping);
    }
    let Some(Line::Lagged(Lagged { missed })) = next(&mut lines).await else {
        panic!("no lagged marker first");
    };
    assert!(missed > 0 && missed < N, "missed {missed}");
    let mut last = 0;
    for _ in missed..N {
        last = next_event(&mut lines).await.seq;
    }
    assert_eq!(last, N, "the stream carries on up to the newest event");
}

#[tokio::test]
async fn the_agent_stopping_ends_the_stream() {
    let h = Harness::start().await;
    let mut lines = open(&h, true).await;
    // Published as the agent stops: it still goes out, then the stream ends.
    h.bus.publish(EventKind::AgentStopping);
    let started = Instant::now();
    h.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the server waited for the follower: {:?}",
        started.elapsed()
    );
    assert_eq!(next_event(&mut lines).await.kind, EventKind::AgentStopping);
    assert_eq!(next(&mut lines).await, None);
}
