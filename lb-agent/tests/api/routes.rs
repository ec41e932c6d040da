//! Every route, through `Client`: what the reconciler is asked and what comes back.

use lb_api::{
    client::{ClientError, encode},
    types::*,
};
use lb_config::AdminState;
use serde_json::{Value, json};

use crate::harness::{Harness, request};

#[tokio::test]
async fn every_route_round_trips() {
    let h = Harness::start().await;
    let c = h.client();
    let s: Status = c.get("/v1/status").await.unwrap();
    assert_eq!(s.vips.len(), 2);
    let st: Stats = c.get("/v1/stats").await.unwrap();
    assert_eq!(st.reasons["tx"], 5);
    let cfg: Value = c.get("/v1/config").await.unwrap();
    assert_eq!(cfg, json!({ "vips": [] }));
    let r: ReloadResult = c.post_empty("/v1/reload").await.unwrap();
    assert_eq!(r.changed_vips, ["web"]);
    let vips: Vec<VipStatus> = c.get("/v1/vips").await.unwrap();
    assert_eq!(vips[1].name, "dns");
    let v: VipStatus = c.get("/v1/vips/dns").await.unwrap();
    assert_eq!(v.port, 53);
    let add = json!({ "address": "10.0.0.9", "port": 443, "protocol": "tcp" });
    let r: ChangeResult = c.post("/v1/vips", &add).await.unwrap();
    assert!(r.changed);
    let _: ChangeResult = c.delete("/v1/vips/web").await.unwrap();
    let b: Vec<BackendStatus> = c.get("/v1/vips/web/backends").await.unwrap();
    assert_eq!(b[1].state_override, Some(AdminState::Drain));
    let _: ChangeResult = c
        .post(
            "/v1/vips/web/backends",
            &json!({ "address": "10.0.1.3", "weight": 5 }),
        )
        .await
        .unwrap();
    let _: ChangeResult = c.delete("/v1/vips/web/backends/b1").await.unwrap();
    let _: ChangeResult = c
        .put(
            "/v1/vips/web/backends/b2/state",
            &SetState {
                state: AdminState::Maint,
            },
        )
        .await
        .unwrap();
    let _: ChangeResult = c
        .put("/v1/vips/web/backends/b2/weight", &SetWeight { weight: 7 })
        .await
        .unwrap();
    let f: FlowCount = c.get("/v1/vips/web/backends/b2/flows").await.unwrap();
    assert_eq!((f.active, f.idle_timeout_secs), (3, 300));
    let e: Explain = c
        .get(&format!(
            "/v1/explain?vip=web&client={}",
            encode("192.0.2.1:5555")
        ))
        .await
        .unwrap();
    assert_eq!(e.client, "192.0.2.1:5555");
    let _: ChangeResult = c.post_empty("/v1/teardown").await.unwrap();
    assert_eq!(
        h.seen(),
        [
            "status",
            "stats",
            "config",
            "reload",
            "status",
            "status",
            "add-vip 10.0.0.9 443 Some(Tcp)",
            "remove-vip web",
            "status",
            "add-backend web 10.0.1.3 Some(5)",
            "remove-backend web b1",
            "set-state web b2 maint",
            "set-weight web b2 7",
            "flows web b2",
            "explain web 192.0.2.1:5555",
            "teardown",
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn vip_ids_arrive_decoded() {
    let h = Harness::start().await;
    let c = h.client();
    let _: ChangeResult = c
        .put(
            &format!(
                "/v1/vips/{}/backends/{}/state",
                encode("10.0.0.1:80/tcp"),
                encode("b 2")
            ),
            &json!({ "state": "drain" }),
        )
        .await
        .unwrap();
    assert_eq!(h.seen(), ["set-state 10.0.0.1:80/tcp b 2 drain"]);
    // The server resolves ADDRESS:PORT/PROTO itself for the read-only views.
    let b: Vec<BackendStatus> = c
        .get("/v1/vips/10.0.0.1%3A80%2Ftcp/backends")
        .await
        .unwrap();
    assert_eq!(b.len(), 2);
    let v: VipStatus = c
        .get(&format!("/v1/vips/{}", encode("[2001:db8::53]:53/udp")))
        .await
        .unwrap();
    assert_eq!(v.name, "dns");
    let err = c
        .get::<Value>(&format!("/v1/vips/{}/backends", encode("10.0.0.1:80/udp")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Api(e) if e.code == 404),
        "{err:?}"
    );
}

#[tokio::test]
async fn api_errors_keep_their_code() {
    let h = Harness::start().await;
    let r = h.raw(&request("DELETE", "/v1/vips/missing", "")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.reason(), "no VIP `missing`");
    let err = h
        .client()
        .delete::<Value>("/v1/vips/missing")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Api(e) if e.code == 404 && e.reason == "no VIP `missing`"),
        "{err:?}"
    );
    // Missing content type is fine; a JSON answer says so.
    let r = h
        .raw(&request(
            "POST",
            "/v1/vips",
            r#"{"address": "10.0.0.9", "port": 80}"#,
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
}
