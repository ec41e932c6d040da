//! Requests refused before they reach the reconciler, and a reconciler that is gone.

use lb_api::{client::ClientError, types::Status};

use crate::harness::{Harness, request};

#[tokio::test]
async fn malformed_bodies_never_reach_the_reconciler() {
    let h = Harness::start().await;
    let cases = [
        ("POST", "/v1/vips", r#"{"address": "#, "invalid JSON body"),
        ("POST", "/v1/vips", "", "EOF"),
        (
            "POST",
            "/v1/vips",
            r#"{"address": "10.0.0.9", "port": 80, "colour": "red"}"#,
            "unknown field `colour`",
        ),
        (
            "POST",
            "/v1/vips",
            r#"{"address": "10.0.0.9", "port": "eighty"}"#,
            "invalid type",
        ),
        (
            "POST",
            "/v1/vips",
            r#"{"address": "not-an-ip", "port": 80}"#,
            "invalid IP address",
        ),
        (
            "POST",
            "/v1/vips/web/backends",
            r#"{"address": "10.0.1.9", "weight": -1}"#,
            "invalid value",
        ),
        (
            "PUT",
            "/v1/vips/web/backends/b1/state",
            r#"{"state": "sleeping"}"#,
            "unknown variant",
        ),
        (
            "PUT",
            "/v1/vips/web/backends/b1/weight",
            r#"{"weight": 1, "state": "up"}"#,
            "unknown field",
        ),
        ("GET", "/v1/explain?vip=web", "", "explain takes"),
        (
            "GET",
            "/v1/explain?vip=web&client=1.2.3.4&extra=1",
            "",
            "unknown parameter `extra`",
        ),
    ];
    for (method, path, body, expect) in cases {
        let r = h.raw(&request(method, path, body)).await;
        assert_eq!(r.status, 400, "{method} {path} {body}: {r:?}");
        assert!(
            r.reason().contains(expect),
            "{method} {path} {body}: {:?} lacks {expect:?}",
            r.reason()
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
        "/v1/vips/web/backends/b1/colour",
        "/v1/status/",
    ] {
        let r = h.raw(&request("GET", path, "")).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert!(r.reason().contains("no endpoint"));
    }
    let cases = [
        ("GET", "/v1/reload", "POST"),
        ("DELETE", "/v1/vips", "GET, POST"),
        ("POST", "/v1/status", "GET"),
        ("GET", "/v1/vips/web/backends/b1", "DELETE"),
        ("POST", "/v1/vips/web/backends/b1/state", "PUT"),
        ("PUT", "/v1/vips/web", "GET, DELETE"),
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
    let big = format!(
        r#"{{"address": "10.0.0.9", "port": 80, "name": "{}"}}"#,
        "x".repeat(70_000)
    );
    let r = h.raw(&request("POST", "/v1/vips", &big)).await;
    assert_eq!(r.status, 413, "{r:?}");
    r.reason();
    // Without a Content-Length, the limit applies while reading.
    let chunked = format!(
        "POST /v1/vips HTTP/1.1\r\nHost: lb\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let r = h.raw(chunked.as_bytes()).await;
    assert_eq!(r.status, 413, "{r:?}");
    // Just under the limit is fine (and reaches the reconciler).
    let fits = format!(
        r#"{{"address": "10.0.0.9", "port": 80, "name": "{}"}}"#,
        "x".repeat(60_000)
    );
    let r = h.raw(&request("POST", "/v1/vips", &fits)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(h.seen(), ["add-vip 10.0.0.9 80 None"]);
}

#[tokio::test]
async fn dropped_reply_is_503() {
    let h = Harness::start().await;
    let r = h.raw(&request("DELETE", "/v1/vips/drop-me", "")).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.reason(), "agent is shutting down");
}

#[tokio::test]
async fn gone_reconciler_is_503() {
    let h = Harness::start_with(false).await;
    let err = h.client().get::<Status>("/v1/status").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Api(e) if e.code == 503),
        "{err:?}"
    );
}
