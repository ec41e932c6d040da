//! Every route, through `Client` and `lb_api::paths`: what the reconciler is
//! asked and what comes back.

use lb_api::{
    client::ClientError,
    paths::{ExplainQuery, Route},
    types::*,
};
use lb_config::AdminState;
use serde_json::{Value, json};

use crate::harness::{Harness, request};

fn p(route: Route) -> String {
    route.path()
}

fn pool_backend(f: fn(String, String) -> Route, pool: &str, backend: &str) -> String {
    f(pool.into(), backend.into()).path()
}

#[tokio::test]
async fn reads_round_trip() {
    let h = Harness::start().await;
    let c = h.client();
    let s: Status = c.get(&p(Route::Status)).await.unwrap();
    assert_eq!((s.pools.len(), s.services.len()), (2, 2));
    let st: Stats = c.get(&p(Route::Stats)).await.unwrap();
    assert_eq!(st.reasons["tx"], 5);
    let cfg: Value = c.get(&p(Route::Config)).await.unwrap();
    assert_eq!(cfg, json!({ "services": [] }));
    let services: Vec<ServiceStatus> = c.get(&p(Route::Services)).await.unwrap();
    assert_eq!(services[1].name, "dns");
    let pools: Vec<PoolStatus> = c.get(&p(Route::Pools)).await.unwrap();
    assert_eq!(pools[0].backends.len(), 2);
    let pool: PoolStatus = c.get(&p(Route::Pool("dns-pool".into()))).await.unwrap();
    assert_eq!(pool.services, ["dns"]);
    let b: Vec<BackendStatus> = c.get(&p(Route::Backends("web".into()))).await.unwrap();
    assert_eq!(b[1].state_override, Some(AdminState::Drain));
    let b: BackendStatus = c
        .get(&pool_backend(Route::Backend, "web", "b2"))
        .await
        .unwrap();
    assert_eq!(b.state, BackendState::Drain);
    let f: FlowCount = c
        .get(&pool_backend(Route::Flows, "web", "b2"))
        .await
        .unwrap();
    assert_eq!(
        (f.pool.as_str(), f.active, f.idle_timeout_secs),
        ("web", 3, 300)
    );
    let query = ExplainQuery {
        service: "web".into(),
        client: "192.0.2.1:5555".into(),
    };
    let e: Explain = c.get(&query.path()).await.unwrap();
    assert_eq!(
        (e.service.as_str(), e.client.as_str()),
        ("web", "192.0.2.1:5555")
    );
    assert_eq!(
        h.seen(),
        [
            "status",
            "stats",
            "config",
            "status",
            "status",
            "status",
            "status",
            "status",
            "flows web b2",
            "explain web 192.0.2.1:5555",
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn changes_round_trip() {
    let h = Harness::start().await;
    let c = h.client();
    let r: ReloadResult = c.post_empty(&p(Route::Reload)).await.unwrap();
    assert_eq!(r.changed_services, ["web"]);
    let add = json!({ "address": "10.0.0.9", "port": 443, "protocol": "tcp", "pool": "web" });
    let r: ChangeResult = c.post(&p(Route::Services), &add).await.unwrap();
    assert!(r.changed);
    let _: ChangeResult = c.delete(&p(Route::Service("web".into()))).await.unwrap();
    let add = json!({ "name": "api", "backends": [{ "address": "10.0.2.1" }] });
    let _: ChangeResult = c.post(&p(Route::Pools), &add).await.unwrap();
    let _: ChangeResult = c.delete(&p(Route::Pool("api".into()))).await.unwrap();
    let add = json!({ "address": "10.0.1.3", "weight": 5 });
    let _: ChangeResult = c
        .post(&p(Route::Backends("web".into())), &add)
        .await
        .unwrap();
    let _: ChangeResult = c
        .delete(&pool_backend(Route::Backend, "web", "b1"))
        .await
        .unwrap();
    let state = SetState {
        state: AdminState::Maint,
    };
    let _: ChangeResult = c
        .put(&pool_backend(Route::BackendState, "web", "b2"), &state)
        .await
        .unwrap();
    let weight = SetWeight { weight: 7 };
    let _: ChangeResult = c
        .put(&pool_backend(Route::BackendWeight, "web", "b2"), &weight)
        .await
        .unwrap();
    let _: ChangeResult = c.post_empty(&p(Route::Teardown)).await.unwrap();
    assert_eq!(
        h.seen(),
        [
            "reload",
            "add-service 10.0.0.9 443 Some(Tcp) web",
            "remove-service web",
            "add-pool api 1",
            "remove-pool api",
            "add-backend web 10.0.1.3 Some(5)",
            "remove-backend web b1",
            "set-state web b2 maint",
            "set-weight web b2 7",
            "teardown",
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn names_arrive_decoded_and_views_resolve_them() {
    let h = Harness::start().await;
    let c = h.client();
    let _: ChangeResult = c
        .put(
            &pool_backend(Route::BackendState, "web pool", "b 2"),
            &json!({ "state": "drain" }),
        )
        .await
        .unwrap();
    let _: ChangeResult = c
        .delete(&p(Route::Service("10.0.0.1:80/tcp".into())))
        .await
        .unwrap();
    assert_eq!(
        h.seen(),
        [
            "set-state web pool b 2 drain",
            "remove-service 10.0.0.1:80/tcp"
        ]
    );
    // The server resolves ADDRESS:PORT/PROTO and backend addresses itself
    // for the read-only views.
    let s: ServiceStatus = c
        .get(&p(Route::Service("[2001:db8::53]:53/udp".into())))
        .await
        .unwrap();
    assert_eq!(s.name, "dns");
    let b: BackendStatus = c
        .get(&pool_backend(Route::Backend, "web", "10.0.1.2"))
        .await
        .unwrap();
    assert_eq!(b.name, "b2");
    for (path, reason) in [
        (
            p(Route::Service("10.0.0.1:80/udp".into())),
            "no service `10.0.0.1:80/udp`",
        ),
        (p(Route::Pool("nope".into())), "no pool `nope`"),
        (p(Route::Backends("nope".into())), "no pool `nope`"),
        (
            pool_backend(Route::Backend, "web", "b9"),
            "no backend `b9` in pool `web`",
        ),
    ] {
        let err = c.get::<Value>(&path).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Api(e) if e.code == 404 && e.reason.starts_with(reason)),
            "{path}: {err:?}"
        );
    }
}

#[tokio::test]
async fn api_errors_keep_their_code() {
    let h = Harness::start().await;
    let path = p(Route::Service("missing".into()));
    let r = h.raw(&request("DELETE", &path, "")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.reason(), "no service `missing`");
    let err = h.client().delete::<Value>(&path).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Api(e) if e.code == 404 && e.reason == "no service `missing`"),
        "{err:?}"
    );
    // Missing content type is fine; a JSON answer says so.
    let body = r#"{"address": "10.0.0.9", "port": 80, "pool": "web"}"#;
    let r = h.raw(&request("POST", "/v1/services", body)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
}
