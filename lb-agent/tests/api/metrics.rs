//! `/metrics` on the unix socket and on `agent.metrics_listen`, which serves
//! nothing else.

use std::time::Duration;

use lb_agent::metrics::CONTENT_TYPE_OPENMETRICS;
use lb_api::{
    events::{Cause, EventKind},
    types::BackendState,
};

use crate::harness::{Harness, Reply, Setup, request};

fn assert_exposition(r: &Reply) {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some(CONTENT_TYPE_OPENMETRICS));
    assert!(
        r.text
            .contains(r#"lb_service_packets_total{service="web"} 5"#),
        "{}",
        r.text
    );
    assert!(r.text.ends_with("# EOF\n"), "{}", r.text);
}

#[tokio::test]
async fn served_on_the_unix_socket() {
    let h = Harness::start().await;
    assert_exposition(&h.raw(&request("GET", "/metrics", "")).await);
    assert_eq!(h.seen(), ["status", "stats"]);
}

#[tokio::test]
async fn the_metrics_listener_serves_only_metrics() {
    let h = Harness::with(Setup {
        metrics: true,
        ..Setup::default()
    })
    .await;
    assert_exposition(&Harness::tcp(h.metrics, &request("GET", "/metrics", "")).await);
    for path in ["/v1/status", "/v1/events", "/", "/metrics/"] {
        let r = Harness::tcp(h.metrics, &request("GET", path, "")).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert_eq!(
            r.reason(),
            format!("no endpoint {path} (this listener serves /metrics)")
        );
    }
    let r = Harness::tcp(h.metrics, &request("DELETE", "/metrics", "")).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")), "{r:?}");
    assert_eq!(h.seen(), ["status", "stats"]);
    h.stop().await;
}

#[tokio::test]
async fn events_are_counted() {
    let h = Harness::start().await;
    h.bus.publish(EventKind::BackendState {
        pool: "web".into(),
        backend: "b2".into(),
        address: [10, 0, 0, 2].into(),
        port: Some(80),
        from: Some(BackendState::Up),
        to: BackendState::Drain,
        cause: Cause::Operator,
        reason: "drained by an operator".into(),
    });
    let want =
        r#"lb_backend_transitions_total{pool="web",backend="b2",to="drain",cause="operator"} 1"#;
    // The counting task runs beside the server: give it a moment.
    for _ in 0..50 {
        let r = h.raw(&request("GET", "/metrics", "")).await;
        if r.text.lines().any(|l| l == want) {
            assert!(
                r.text
                    .contains(r#"lb_events_total{type="backend_state"} 1"#),
                "{}",
                r.text
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{want} never showed");
}
