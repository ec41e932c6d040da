//! Requests refused before they reach the reconciler, and a reconciler that is gone.

use lb_api::{client::ClientError, types::Status};

use crate::harness::{Harness, Setup, request};

const SERVICES: &str = "POST /v1/services";

/// (request line, body, what the 400's reason says).
const MALFORMED: &[(&str, &str, &str)] = &[
    (SERVICES, r#"{"address": "#, "invalid JSON body"),
    (SERVICES, "", "EOF"),
    (
        SERVICES,
        r#"{"address": "10.0.0.9", "port": 80}"#,
        "missing field `pool`",
    ),
    (
        SERVICES,
        r#"{"address": "x", "port": 80, "pool": "web"}"#,
        "invalid IP address",
    ),
    (
        SERVICES,
        r#"{"address": "10.0.0.9", "port": 80, "pool": "web", "colour": "red"}"#,
        "unknown field `colour`",
    ),
    (
        SERVICES,
        r#"{"address": "10.0.0.9", "port": 80, "pool": "web", "ring_size": "big"}"#,
        "expected `auto` or a prime ring size",
    ),
    (
        "POST /v1/pools",
        r#"{"name": "api", "backends": [{"addr": "10.0.2.1"}]}"#,
        "unknown field `addr`",
    ),
    (
        "POST /v1/pools/web/backends",
        r#"{"address": "10.0.1.9", "weight": -1}"#,
        "invalid value",
    ),
    (
        "PUT /v1/pools/web/backends/b1/state",
        r#"{"state": "down"}"#,
        "unknown variant",
    ),
    (
        "PUT /v1/pools/web/backends/b1/weight",
        r#"{"weight": 1, "state": "up"}"#,
        "unknown field",
    ),
    ("GET /v1/explain?service=web", "", "explain takes"),
    (
        "GET /v1/explain?service=web&client=1.2.3.4&vip=1",
        "",
        "unknown parameter `vip`",
    ),
    ("GET /v1/events?follow=yes", "", "events takes"),
    ("GET /v1/pools/%FF", "", "not UTF-8"),
];

#[tokio::test]
async fn malformed_requests_never_reach_the_reconciler() {
    let h = Harness::start().await;
    for (line, body, expect) in MALFORMED {
        let (method, path) = line.split_once(' ').unwrap();
        let r = h.raw(&request(method, path, body)).await;
        assert_eq!(r.status, 400, "{line} {body}: {r:?}");
        let reason = r.reason();
        assert!(
            reason.contains(expect),
            "{line} {body}: {reason:?} lacks {expect:?}"
        );
    }
    // A good request afterwards is the first the reconciler sees.
    let _: Status = h.client().get("/v1/status").await.unwrap();
    assert_eq!(h.seen(), ["status"]);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods() {
    let h = Harness::start().await;
    for path in [
        "/v1/nope",
        "/",
        "/v2/status",
        "/v1/pools/web/backends/b1/colour",
        "/v1/status/",
        "/v1/vips",
        "/metricsx",
    ] {
        let r = h.raw(&request("GET", path, "")).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert!(
            r.reason().starts_with(&format!("no endpoint {path}")),
            "{r:?}"
        );
    }
    let cases = [
        ("GET", "/v1/reload", "POST"),
        ("DELETE", "/v1/services", "GET, POST"),
        ("PUT", "/v1/pools", "GET, POST"),
        ("POST", "/v1/status", "GET"),
        ("POST", "/v1/events", "GET"),
        ("PUT", "/v1/pools/web/backends/b1", "GET, DELETE"),
        ("POST", "/v1/pools/web/backends/b1/state", "PUT"),
        ("PUT", "/v1/services/web", "GET, DELETE"),
        ("DELETE", "/v1/pools/web/backends/b1/flows", "GET"),
        ("POST", "/metrics", "GET"),
    ];
    for (method, path, allow) in cases {
        let r = h.raw(&request(method, path, "{}")).await;
        assert_eq!(r.status, 405, "{method} {path}: {r:?}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        r.reason();
    }
    assert!(h.seen().is_empty());
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let h = Harness::start().await;
    let named = |n| {
        format!(
            r#"{{"address": "10.0.0.9", "port": 80, "pool": "web", "name": "{}"}}"#,
            "x".repeat(n)
        )
    };
    let big = named(70_000);
    let r = h.raw(&request("POST", "/v1/services", &big)).await;
    assert_eq!(r.status, 413, "{r:?}");
    r.reason();
    // Without a Content-Length, the limit applies while reading.
    let chunked = format!(
        "POST /v1/services HTTP/1.1\r\nHost: lb\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let r = h.raw(chunked.as_bytes()).await;
    assert_eq!(r.status, 413, "{r:?}");
    // Just under the limit is fine (and reaches the reconciler).
    let r = h
        .raw(&request("POST", "/v1/services", &named(60_000)))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(h.seen(), ["add-service 10.0.0.9 80 None web"]);
}

#[tokio::test]
async fn dropped_reply_is_503() {
    let h = Harness::start().await;
    let r = h.raw(&request("DELETE", "/v1/services/drop-me", "")).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.reason(), "agent is shutting down");
}

#[tokio::test]
async fn gone_reconciler_is_503() {
    let h = Harness::with(Setup {
        reconciler: false,
        ..Setup::default()
    })
    .await;
    let err = h.client().get::<Status>("/v1/status").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Api(e) if e.code == 503),
        "{err:?}"
    );
    let r = h.raw(&request("GET", "/metrics", "")).await;
    assert_eq!(r.status, 503, "{r:?}");
}
