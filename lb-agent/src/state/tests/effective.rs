//! The configuration in effect: provenance, the services using each pool,
//! orphans after a file change and their return, shadowing, lookups, and
//! the persisted JSON shape.

use super::*;
use Source::{Config as F, Runtime as R};
use lb_config::AdminState::{Drain, Maint, Up};

/// Appended to every orphan.
const KEPT: &str = "(kept, inactive; it applies again if the target returns)";

#[test]
fn no_overrides_is_the_file() {
    let file = file();
    let ov = Overrides::default();
    let eff = effective(&file, &ov);
    assert_eq!(eff.config(&file), file);
    assert!(eff.orphans(&file, &ov).is_empty() && eff.shadowed().is_empty());
    assert_eq!(eff.service_sources, [F, F, F]);
    for (p, prov) in file.pools.iter().zip(&eff.pool_provenance) {
        assert_eq!(prov.source, F);
        for (b, bp) in p.backends.iter().zip(&prov.backends) {
            assert_eq!(
                (
                    bp.source,
                    bp.config_state,
                    bp.config_weight,
                    bp.state_override,
                    bp.weight_override
                ),
                (F, Some(b.state), Some(b.weight), None, None)
            );
        }
    }
    assert_eq!(eff.users("web"), [0, 1], "a pool shared by two services");
    assert_eq!(eff.users("dns"), [2]);
    assert_eq!(eff.users("spare"), [] as [usize; 0]);
    assert_eq!(eff.users("nope"), [] as [usize; 0]);
}

#[test]
fn provenance_of_every_pool_backend_and_service() {
    let mut l = Live::new(file());
    l.set_state("web", "b1", Drain).expect("drain");
    l.set_weight("web", "b2", 5).expect("weight");
    let b9 = AddBackend {
        weight: Some(3),
        ..backend_req(Some("b9"), "10.0.1.9")
    };
    l.add_backend("web", b9).expect("add b9");
    l.add_pool(pool_req("api", vec![backend_req(Some("a1"), "10.0.5.1")]))
        .expect("add pool api");
    l.set_state("api", "a1", Maint).expect("maint");
    l.add_service(service_req(Some("api"), "10.0.0.5", 443, "api"))
        .expect("add service api");

    // pool, backend, source, file state, file weight, state override, weight
    // override, state and weight in effect.
    type Row = (
        String,
        String,
        Source,
        Option<AdminState>,
        Option<u32>,
        Option<AdminState>,
        Option<u32>,
        AdminState,
        u32,
    );
    #[allow(clippy::too_many_arguments)]
    fn row(
        p: &str,
        b: &str,
        src: Source,
        fs: Option<AdminState>,
        fw: Option<u32>,
        so: Option<AdminState>,
        wo: Option<u32>,
        s: AdminState,
        w: u32,
    ) -> Row {
        (p.into(), b.into(), src, fs, fw, so, wo, s, w)
    }
    let want = vec![
        row(
            "web",
            "b1",
            F,
            Some(Up),
            Some(2),
            Some(Drain),
            None,
            Drain,
            2,
        ),
        row(
            "web",
            "b2",
            F,
            Some(Drain),
            Some(1),
            None,
            Some(5),
            Drain,
            5,
        ),
        row("web", "10.0.1.3", F, Some(Up), Some(1), None, None, Up, 1),
        row("web", "b9", R, None, None, None, None, Up, 3),
        row("dns", "10.0.2.1", F, Some(Up), Some(1), None, None, Up, 1),
        row("spare", "s1", F, Some(Up), Some(1), None, None, Up, 1),
        row("api", "a1", R, None, None, Some(Maint), None, Maint, 1),
    ];
    let mut got: Vec<Row> = Vec::new();
    for (p, prov) in l.eff.pools.iter().zip(&l.eff.pool_provenance) {
        for (b, bp) in p.backends.iter().zip(&prov.backends) {
            got.push((
                p.name.clone(),
                b.name.clone(),
                bp.source,
                bp.config_state,
                bp.config_weight,
                bp.state_override,
                bp.weight_override,
                b.state,
                b.weight,
            ));
        }
    }
    assert_eq!(got, want);
    let sources: Vec<Source> = l.eff.pool_provenance.iter().map(|p| p.source).collect();
    assert_eq!(sources, [F, F, F, R]);
    assert_eq!(l.eff.service_sources, [F, F, F, R]);
    assert_eq!(l.eff.users("api"), [3]);
    assert_eq!(l.eff.users("web"), [0, 1]);
}

#[test]
fn orphans_after_a_file_change_and_their_return() {
    let mut l = Live::new(file());
    l.set_state("web", "b1", Drain).expect("drain");
    l.set_weight("web", "b2", 3).expect("weight");
    l.remove_backend("web", "10.0.1.3").expect("remove backend");
    l.add_backend("web", backend_req(Some("b9"), "10.0.1.9"))
        .expect("add backend");
    l.remove_service(DNS).expect("remove service");
    l.remove_pool("spare").expect("remove pool");
    let saved = l.ov.clone();

    // The file loses every pool and service and gains others.
    l.reload(config(
        "interfaces: [{name: eth0}]
pools:
  other: {backends: [{address: 10.0.7.1}]}
services:
  - {name: other, address: 10.0.0.7, port: 80, pool: other}
",
    ));
    assert_eq!(
        layout(&l.eff),
        want_layout(&[("other", F, &[("10.0.7.1", F)])])
    );
    assert_eq!(
        l.orphans(),
        [
            format!("removal of pool `spare`: it is not in the configuration file {KEPT}"),
            format!(
                "removal of service `10.0.0.2:53/udp`: it is not in the configuration file {KEPT}"
            ),
            format!(
                "removal of backend `10.0.1.3` of pool `web`: pool `web` is not in the \
                 configuration file {KEPT}"
            ),
            format!(
                "backend `b9` added at runtime to pool `web`: pool `web` is not in the \
                 configuration file {KEPT}"
            ),
            format!(
                "state drain set at runtime for backend `b1` of pool `web`: no pool `web` is in \
                 effect {KEPT}"
            ),
            format!(
                "weight 3 set at runtime for backend `b2` of pool `web`: no pool `web` is in \
                 effect {KEPT}"
            ),
        ]
    );
    // Changes go on meanwhile, and never drop the orphans.
    assert_eq!(l.set_state("other", "10.0.7.1", Drain), Ok(true));
    assert_eq!(l.set_state("other", "10.0.7.1", Up), Ok(true));
    assert_eq!(l.ov, saved);

    // `web` returns without b1 and 10.0.1.3: the weight of b2 applies again.
    l.reload(config(
        &FILE
            .replace("      - {name: b1, address: 10.0.1.1, weight: 2}\n", "")
            .replace("      - {address: 10.0.1.3}\n", ""),
    ));
    assert_eq!(
        layout(&l.eff),
        want_layout(&[
            ("web", F, &[("b2", F), ("b9", R)]),
            ("dns", F, &[("10.0.2.1", F)]),
        ])
    );
    assert_eq!(backend(&l.eff, "web", "b2").0.weight, 3);
    assert_eq!(
        l.orphans(),
        [
            format!(
                "removal of backend `10.0.1.3` of pool `web`: the configuration file has no such \
                 backend {KEPT}"
            ),
            format!(
                "state drain set at runtime for backend `b1` of pool `web`: pool `web` has no \
                 backend `b1` in effect {KEPT}"
            ),
        ]
    );

    // The original file: everything applies again.
    l.reload(file());
    assert!(l.orphans().is_empty(), "{:?}", l.orphans());
    assert_eq!(
        layout(&l.eff),
        want_layout(&[
            ("web", F, &[("b1", F), ("b2", F), ("b9", R)]),
            ("dns", F, &[("10.0.2.1", F)]),
        ])
    );
    assert_eq!(backend(&l.eff, "web", "b1").0.state, Drain);
    assert_eq!(
        services(&l.eff),
        [
            ("web".into(), F, "web".into()),
            ("web-tls".into(), F, "web".into())
        ]
    );
}

#[test]
fn runtime_entries_hide_file_entries_that_appear_later() {
    let mut l = Live::new(file());
    l.add_pool(pool_req("api", vec![backend_req(Some("a1"), "10.0.5.1")]))
        .expect("add pool api");
    l.add_service(service_req(Some("api"), "10.0.0.5", 443, "api"))
        .expect("add service api");
    l.add_backend("web", backend_req(Some("b9"), "10.0.1.9"))
        .expect("add b9");

    // The file gains a pool and a service named `api`, and a backend at b9's
    // address.
    let later = config(&format!(
        "{}  - {{name: api, address: 10.0.0.6, port: 443, pool: web}}\n",
        FILE.replace(
            "      - {address: 10.0.1.3}\n",
            "      - {address: 10.0.1.3}\n      - {name: nine, address: 10.0.1.9}\n"
        )
        .replace(
            "services:\n",
            "  api:\n    backends:\n      - {address: 10.0.6.1}\nservices:\n"
        )
    ));
    l.reload(later.clone());
    assert_eq!(
        l.eff.shadowed(),
        [
            "backend `nine` of pool `web` in the configuration file is hidden by backend `b9` \
             added at runtime (same address); remove the runtime backend to use the file's",
            "pool `api` of the configuration file is hidden by the pool of that name added at \
             runtime; remove the runtime pool to use the file's",
            "service `api` of the configuration file is hidden by service `api` added at runtime \
             (same name); remove the runtime service to use the file's",
        ]
    );
    assert!(l.orphans().is_empty(), "hidden is not orphaned");
    assert_eq!(
        layout(&l.eff),
        want_layout(&[
            (
                "web",
                F,
                &[("b1", F), ("b2", F), ("10.0.1.3", F), ("b9", R)]
            ),
            ("dns", F, &[("10.0.2.1", F)]),
            ("spare", F, &[("s1", F)]),
            ("api", R, &[("a1", R)]),
        ])
    );
    assert_eq!(l.eff.service_sources, [F, F, F, R]);
    assert_eq!(
        lb_config::rules::check_config(&l.config()),
        Vec::<String>::new()
    );

    // Removing the runtime entries brings the file's.
    assert_eq!(l.remove_service("api"), Ok(true));
    assert_eq!(l.eff.users("web"), [0, 1, 3], "the file's `api` uses `web`");
    assert_eq!(l.remove_pool("api"), Ok(true));
    assert_eq!(l.remove_backend("web", "b9"), Ok(true));
    assert!(l.ov.is_empty(), "{:?}", l.ov);
    assert!(l.eff.shadowed().is_empty());
    assert_eq!(l.config(), later);
}

/// Changes to a file pool wait, as orphans, while a pool added at runtime
/// hides it, and apply again once that one is removed.
#[test]
fn changes_to_a_hidden_file_pool_are_kept() {
    let mut l = Live::new(file());
    l.add_backend("spare", backend_req(Some("x"), "10.0.3.9"))
        .expect("add x");
    l.set_weight("spare", "s1", 4).expect("weight");
    let without_spare = FILE.replace(
        "  spare:\n    backends:\n      - {name: s1, address: 10.0.3.1}\n",
        "",
    );
    l.reload(config(&without_spare));
    assert_eq!(
        l.orphans(),
        [
            format!(
                "backend `x` added at runtime to pool `spare`: pool `spare` is not in the \
                 configuration file {KEPT}"
            ),
            format!(
                "weight 4 set at runtime for backend `s1` of pool `spare`: no pool `spare` is in \
                 effect {KEPT}"
            ),
        ]
    );
    // A runtime pool of that name: value overrides follow the backend's name.
    l.add_pool(pool_req("spare", vec![backend_req(Some("s1"), "10.0.3.5")]))
        .expect("add runtime spare");
    assert_eq!(backend(&l.eff, "spare", "s1").0.weight, 4);
    assert_eq!(l.orphans().len(), 1, "{:?}", l.orphans());

    // The file's pool returns, hidden by the runtime one.
    l.reload(file());
    assert_eq!(
        l.orphans(),
        [format!(
            "backend `x` added at runtime to pool `spare`: pool `spare` of the configuration \
             file is not in effect {KEPT}"
        )]
    );
    assert_eq!(
        l.eff.shadowed(),
        [
            "pool `spare` of the configuration file is hidden by the pool of that name added at \
          runtime; remove the runtime pool to use the file's"
        ]
    );
    // Removing the runtime pool forgets its own changes, not the file pool's.
    assert_eq!(l.remove_pool("spare"), Ok(true));
    assert!(l.orphans().is_empty(), "{:?}", l.orphans());
    assert_eq!(
        layout(&l.eff)[2],
        want_layout(&[("spare", F, &[("s1", F), ("x", R)])])[0]
    );
    assert_eq!(backend(&l.eff, "spare", "s1").0.weight, 1);
}

#[test]
fn lookups_by_name_key_or_address() {
    let c = config(
        "interfaces: [{name: eth0}]
pools:
  v6: {backends: [{address: '2001:db8::10'}]}
  twin: {backends: [{name: t80, address: 10.0.9.1, port: 80}, {name: t443, address: 10.0.9.1, port: 443}]}
services:
  - {address: '2001:db8::1', port: 443, pool: v6}
",
    );
    let eff = effective(&c, &Overrides::default());
    assert_eq!(eff.services[0].name, "[2001:db8::1]:443/tcp");
    for spelling in [
        "[2001:db8::1]:443/tcp",
        "[2001:db8:0:0::1]:443/tcp",
        "2001:db8::1:443/tcp",
    ] {
        assert_eq!(eff.find_service(spelling), Ok(0), "{spelling}");
    }
    assert_err(eff.find_service("[2001:db8::1]:443"), 404, "no service");
    assert_err(eff.find_service("[2001:db8::1]:443/udp"), 404, "no service");
    assert_eq!(eff.find_pool("twin"), Ok(1));
    assert_eq!(eff.find_backend("v6", "2001:db8:0::10"), Ok((0, 0)));
    assert_eq!(eff.find_backend("twin", "t443"), Ok((1, 1)));
    assert_err(
        eff.find_backend("twin", "10.0.9.1"),
        400,
        "several backends of pool `twin` have address 10.0.9.1; name one by its name",
    );
    assert_err(
        eff.find_backend("[2001:db8::1]:443/tcp", "2001:db8::10"),
        404,
        "no pool `[2001:db8::1]:443/tcp` in effect (pools in effect: `v6`, `twin`)",
    );

    let empty = effective(&Config::default(), &Overrides::default());
    assert_err(empty.find_service("web"), 404, "no services are in effect");
    assert_err(empty.find_pool("web"), 404, "no pools are in effect");

    // Long lists are cut short.
    let many: String = (1..=10)
        .map(|i| format!("{{address: 10.0.8.{i}}}"))
        .collect::<Vec<_>>()
        .join(", ");
    let c = config(&format!("pools:\n  big: {{backends: [{many}]}}\n"));
    assert_err(
        effective(&c, &Overrides::default()).find_backend("big", "b"),
        404,
        "backends in effect: `10.0.8.1`, `10.0.8.2`, `10.0.8.3`, `10.0.8.4`, `10.0.8.5`, \
         `10.0.8.6`, `10.0.8.7`, `10.0.8.8` and 2 more)",
    );
}

/// The file format: stable key order, empty sections left out.
#[test]
fn json_format() {
    let mut l = Live::new(file());
    assert_eq!(
        serde_json::to_string(&l.ov).expect("json"),
        r#"{"version":2}"#
    );
    l.set_state("web", "b1", Drain).expect("drain");
    l.set_weight("web", "b2", 3).expect("weight");
    let a1 = AddBackend {
        mac: Some("02:00:00:00:00:01".into()),
        ..backend_req(Some("a1"), "10.0.5.1")
    };
    l.add_pool(pool_req("api", vec![a1])).expect("add pool");
    l.add_backend(
        "api",
        AddBackend {
            port: Some(443),
            ..backend_req(None, "10.0.5.2")
        },
    )
    .expect("add to the runtime pool");
    l.add_service(AddService {
        ring_size: Some(lb_api::types::RingSizeSetting::Fixed(251)),
        ..service_req(Some("api"), "10.0.0.5", 443, "api")
    })
    .expect("add service");
    l.add_backend("web", backend_req(None, "10.0.1.9"))
        .expect("add backend");
    l.remove_backend("web", "10.0.1.3").expect("remove backend");
    l.remove_service(DNS).expect("remove service");
    l.remove_pool("dns").expect("remove pool");
    let want = serde_json::json!({
        "version": 2,
        "backend_overrides": {"web": {"b1": {"state": "drain"}, "b2": {"weight": 3}}},
        "added_pools": [{"name": "api", "backends": [
            {"name": "a1", "address": "10.0.5.1", "weight": 1, "state": "up",
             "mac": "02:00:00:00:00:01"},
            {"name": "10.0.5.2", "address": "10.0.5.2", "port": 443, "weight": 1, "state": "up"},
        ]}],
        "added_backends": {"web": [{"name": "10.0.1.9", "address": "10.0.1.9", "weight": 1, "state": "up"}]},
        "removed_pools": ["dns"],
        "removed_backends": {"web": ["10.0.1.3"]},
        "added_services": [{
            "name": "api", "address": "10.0.0.5", "port": 443, "protocol": "tcp",
            "mode": "dr", "hash": "source", "ring_size": 251, "pool": "api"
        }],
        "removed_services": ["10.0.0.2:53/udp"],
    });
    assert_eq!(serde_json::to_value(&l.ov).expect("json"), want);
    let text = serde_json::to_string(&l.ov).expect("json");
    let keys = [
        "\"version\"",
        "\"backend_overrides\"",
        "\"added_pools\"",
        "\"added_backends\"",
        "\"removed_pools\"",
        "\"removed_backends\"",
        "\"added_services\"",
        "\"removed_services\"",
    ];
    let at: Vec<usize> = keys.iter().map(|k| text.find(k).expect(k)).collect();
    assert!(at.is_sorted(), "key order: {text}");
    let back: Overrides = serde_json::from_value(want).expect("reads back");
    assert_eq!(back, l.ov);
}
