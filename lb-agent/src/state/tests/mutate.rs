//! Every mutation: happy paths, what each touches, idempotence, overrides
//! equal to the file, tombstones, each error leaving the overrides
//! untouched, and a seeded random script that keeps the configuration valid.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use lb_api::types::RingSizeSetting;
use lb_common::consts::MAX_BACKENDS;
use lb_config::AdminState::{Drain, Maint, Up};

/// One `set_state`/`set_weight` call and the `changed` it should return.
enum Set {
    State(&'static str, &'static str, AdminState, bool),
    Weight(&'static str, &'static str, u32, bool),
}

#[test]
fn set_state_and_weight() {
    use Set::*;
    // (description, calls, then the backend looked at: its effective
    // (state, weight) and its (state, weight) overrides).
    type Case = (
        &'static str,
        Vec<Set>,
        (&'static str, &'static str),
        (AdminState, u32),
        (Option<AdminState>, Option<u32>),
    );
    let cases: Vec<Case> = vec![
        (
            "drain an up backend",
            vec![State("web", "b1", Drain, true)],
            ("web", "b1"),
            (Drain, 2),
            (Some(Drain), None),
        ),
        (
            "the same state twice changes nothing the second time",
            vec![
                State("web", "b1", Drain, true),
                State("web", "b1", Drain, false),
            ],
            ("web", "b1"),
            (Drain, 2),
            (Some(Drain), None),
        ),
        (
            "enable after drain returns to no override",
            vec![
                State("web", "b1", Drain, true),
                State("web", "b1", Up, true),
            ],
            ("web", "b1"),
            (Up, 2),
            (None, None),
        ),
        (
            "maint then drain replaces the override",
            vec![
                State("web", "b1", Maint, true),
                State("web", "b1", Drain, true),
            ],
            ("web", "b1"),
            (Drain, 2),
            (Some(Drain), None),
        ),
        (
            "the file's own state is no change",
            vec![State("web", "b2", Drain, false)],
            ("web", "b2"),
            (Drain, 1),
            (None, None),
        ),
        (
            "enable a backend the file drains",
            vec![State("web", "b2", Up, true)],
            ("web", "b2"),
            (Up, 1),
            (Some(Up), None),
        ),
        (
            "a backend by its address",
            vec![State("web", "10.0.1.1", Maint, true)],
            ("web", "b1"),
            (Maint, 2),
            (Some(Maint), None),
        ),
        (
            "a backend by its default name",
            vec![State("dns", "10.0.2.1", Drain, true)],
            ("dns", "10.0.2.1"),
            (Drain, 1),
            (Some(Drain), None),
        ),
        (
            "a backend of a pool no service uses",
            vec![State("spare", "s1", Maint, true)],
            ("spare", "s1"),
            (Maint, 1),
            (Some(Maint), None),
        ),
        (
            "set a weight",
            vec![Weight("web", "b1", 5, true)],
            ("web", "b1"),
            (Up, 5),
            (None, Some(5)),
        ),
        (
            "weight 0 is a weight",
            vec![Weight("web", "b1", 0, true)],
            ("web", "b1"),
            (Up, 0),
            (None, Some(0)),
        ),
        (
            "the same weight twice changes nothing the second time",
            vec![Weight("web", "b1", 5, true), Weight("web", "b1", 5, false)],
            ("web", "b1"),
            (Up, 5),
            (None, Some(5)),
        ),
        (
            "the file's weight again clears the override",
            vec![Weight("web", "b1", 5, true), Weight("web", "b1", 2, true)],
            ("web", "b1"),
            (Up, 2),
            (None, None),
        ),
        (
            "the file's weight is no change",
            vec![Weight("web", "b1", 2, false)],
            ("web", "b1"),
            (Up, 2),
            (None, None),
        ),
        (
            "state and weight are independent",
            vec![
                State("web", "b1", Drain, true),
                Weight("web", "b1", 7, true),
                State("web", "b1", Up, true),
            ],
            ("web", "b1"),
            (Up, 7),
            (None, Some(7)),
        ),
    ];
    for (desc, calls, (pool, b), want_value, want_override) in cases {
        let mut l = Live::new(file());
        for (n, call) in calls.into_iter().enumerate() {
            let (r, want_changed) = match call {
                State(p, b, s, c) => (l.set_state(p, b, s), c),
                Weight(p, b, w, c) => (l.set_weight(p, b, w), c),
            };
            let changed = r.unwrap_or_else(|e| panic!("{desc}: call {n}: {e:?}"));
            assert_eq!(changed, want_changed, "{desc}: call {n}");
        }
        let (cfg, prov) = backend(&l.eff, pool, b);
        assert_eq!((cfg.state, cfg.weight), want_value, "{desc}");
        assert_eq!(
            (prov.state_override, prov.weight_override),
            want_override,
            "{desc}"
        );
        assert_eq!(prov.source, Source::Config, "{desc}");
        assert_eq!(
            l.ov.is_empty(),
            want_override == (None, None),
            "{desc}: only real overrides are stored: {:?}",
            l.ov
        );
    }
}

/// A backend of a pool shared by two services is one backend: draining it
/// is one override, touches one pool, and both services see it drained.
#[test]
fn a_shared_backend_is_changed_once_for_every_service() {
    let mut l = Live::new(file());
    let t = l
        .run(Box::new(|ov, f, e| set_state(ov, f, e, "web", "b1", Drain)))
        .expect("drain");
    assert_eq!(t, touched(&["web"], false, false));
    let want: BTreeMap<String, BTreeMap<String, BackendOverride>> = BTreeMap::from([(
        "web".to_owned(),
        BTreeMap::from([(
            "b1".to_owned(),
            BackendOverride {
                state: Some(Drain),
                weight: None,
            },
        )]),
    )]);
    assert_eq!(l.ov.backend_overrides, want, "one override");
    assert_eq!(l.eff.users("web"), [0, 1], "both services keep the pool");
    for &s in l.eff.users("web") {
        let svc = &l.eff.services[s];
        let pool = l.eff.pool(&svc.pool).expect("pool in effect");
        let b1 = pool.backend("b1").expect("b1");
        assert_eq!(b1.state, Drain, "{}", svc.name);
        assert_eq!(pool.backends.len(), 3, "{}", svc.name);
    }
    let t = l
        .run(Box::new(|ov, f, e| set_weight(ov, f, e, "web", "b1", 9)))
        .expect("weight");
    assert_eq!(t.pools, BTreeSet::from(["web".to_owned()]));
    // Back to the file's values: touched, and nothing stored.
    l.set_state("web", "b1", Up).expect("up");
    let t = l
        .run(Box::new(|ov, f, e| set_weight(ov, f, e, "web", "b1", 2)))
        .expect("weight back");
    assert_eq!(t, touched(&["web"], false, false));
    assert!(l.ov.is_empty(), "{:?}", l.ov);
    let t = l
        .run(Box::new(|ov, f, e| set_weight(ov, f, e, "web", "b1", 2)))
        .expect("again");
    assert_eq!(t, Touched::default(), "unchanged touches nothing");
}

/// Every refused change, on overrides that already hold changes: the error
/// and the overrides untouched.
#[test]
fn refused_changes_leave_overrides_untouched() {
    type Case = (&'static str, Mutation<'static>, u16, &'static str);
    fn m(
        f: impl FnOnce(&mut Overrides, &Config, &Effective) -> Result<Touched, ApiError> + 'static,
    ) -> Mutation<'static> {
        Box::new(f)
    }
    let with = |f: fn(&mut AddBackend)| {
        let mut b = backend_req(Some("b9"), "10.0.1.9");
        f(&mut b);
        b
    };
    let svc_with = |f: fn(&mut AddService)| {
        let mut s = service_req(Some("new"), "10.0.0.9", 80, "spare");
        f(&mut s);
        s
    };
    let cases: Vec<Case> =
        vec![
            (
                "state: unknown pool, listing the known ones",
                m(|ov, f, e| set_state(ov, f, e, "nope", "b1", Drain)),
                404,
                "no pool `nope` in effect (pools in effect: `web`, `dns`, `spare`, `api`)",
            ),
            (
                "state: pools are named by name only",
                m(|ov, f, e| set_state(ov, f, e, "10.0.0.1:80/tcp", "b1", Drain)),
                404,
                "no pool `10.0.0.1:80/tcp` in effect",
            ),
            (
                "state: unknown backend",
                m(|ov, f, e| set_state(ov, f, e, "web", "b7", Drain)),
                404,
                "pool `web` has no backend `b7` in effect (name it by name or address; backends in \
             effect: `b1`, `b2`, `10.0.1.3`)",
            ),
            (
                "weight: unknown backend",
                m(|ov, f, e| set_weight(ov, f, e, "web", "10.0.1.99", 3)),
                404,
                "no backend `10.0.1.99`",
            ),
            (
                "weight: out of range",
                m(|ov, f, e| set_weight(ov, f, e, "web", "b1", 70_000)),
                400,
                "weight 70000 is out of range 0..=65535",
            ),
            (
                "remove service: unknown, listing the known ones",
                m(|ov, f, e| remove_service(ov, f, e, "10.9.9.9:80/tcp")),
                404,
                "no service `10.9.9.9:80/tcp` in effect (name it by name or as \
             address:port/protocol; services in effect: `web`, `web-tls`, `10.0.0.2:53/udp`, \
             `api`)",
            ),
            (
                "remove backend: unknown pool",
                m(|ov, f, e| remove_backend(ov, f, e, "nope", "b1")),
                404,
                "no pool `nope`",
            ),
            (
                "remove backend: unknown",
                m(|ov, f, e| remove_backend(ov, f, e, "web", "b7")),
                404,
                "no backend `b7`",
            ),
            (
                "remove pool: unknown",
                m(|ov, f, e| remove_pool(ov, f, e, "nope")),
                404,
                "no pool `nope` in effect",
            ),
            (
                "remove pool: used by two file services",
                m(|ov, f, e| remove_pool(ov, f, e, "web")),
                409,
                "pool `web` is used by web, web-tls: remove or change those first",
            ),
            (
                "remove pool: a runtime pool used by a runtime service",
                m(|ov, f, e| remove_pool(ov, f, e, "api")),
                409,
                "pool `api` is used by api: remove or change those first",
            ),
            (
                "add backend: unknown pool",
                m(|ov, f, e| add_backend(ov, f, e, "nope", &backend_req(None, "10.0.1.9"))),
                404,
                "no pool `nope`",
            ),
            (
                "add backend: bad MAC",
                m(move |ov, f, e| {
                    let req = with(|b| b.mac = Some("02:00:00:00:00".into()));
                    add_backend(ov, f, e, "web", &req)
                }),
                400,
                "`02:00:00:00:00` is not a MAC address (e.g. `02:00:00:00:00:01`)",
            ),
            (
                "add backend: multicast MAC",
                m(move |ov, f, e| {
                    let req = with(|b| b.mac = Some("01:00:5e:00:00:01".into()));
                    add_backend(ov, f, e, "web", &req)
                }),
                400,
                "mac 01:00:5e:00:00:01 is not a unicast station address",
            ),
            (
                "add backend: unknown interface",
                m(move |ov, f, e| {
                    let req = with(|b| b.interface = Some("eth9".into()));
                    add_backend(ov, f, e, "web", &req)
                }),
                400,
                "backend `b9`: unknown interface `eth9` (known: eth0, eth1)",
            ),
            (
                "add backend: weight out of range",
                m(move |ov, f, e| {
                    let req = with(|b| b.weight = Some(65_536));
                    add_backend(ov, f, e, "web", &req)
                }),
                400,
                "weight 65536 is out of range 0..=65535",
            ),
            (
                "add backend: a name with a slash",
                m(move |ov, f, e| {
                    let req = with(|b| b.name = Some("a/b".into()));
                    add_backend(ov, f, e, "web", &req)
                }),
                400,
                "backend name `a/b` contains '/'",
            ),
            (
                "add backend: a broadcast address",
                m(|ov, f, e| add_backend(ov, f, e, "web", &backend_req(None, "255.255.255.255"))),
                400,
                "backend address 255.255.255.255 is the broadcast address",
            ),
            (
                "add backend: the address of a service using the pool",
                m(|ov, f, e| add_backend(ov, f, e, "web", &backend_req(None, "10.0.0.1"))),
                422,
                "the configuration would be invalid: backend `10.0.0.1` of pool `web` has the \
             address of service `web` (10.0.0.1)",
            ),
            (
                "add backend: name taken",
                m(|ov, f, e| add_backend(ov, f, e, "web", &backend_req(Some("b1"), "10.0.1.9"))),
                409,
                "pool `web` already has backend `b1` at 10.0.1.1, defined differently (address: in \
             effect 10.0.1.1, requested 10.0.1.9; weight: in effect 2, requested 1; state: in \
             effect drain, requested up); remove it first to replace it",
            ),
            (
                "add backend: address taken",
                m(|ov, f, e| add_backend(ov, f, e, "web", &backend_req(Some("new"), "10.0.1.2"))),
                409,
                "pool `web` already has backend `b2` at 10.0.1.2",
            ),
            (
                "add backend: the ring is full",
                m(|ov, f, e| add_backend(ov, f, e, "dns", &backend_req(None, "10.0.2.3"))),
                422,
                "the configuration would be invalid: ring_size 2 of service `10.0.0.2:53/udp` is \
             smaller than its pool's number of backends (3)",
            ),
            (
                "add service: ring size not prime",
                m(move |ov, f, e| {
                    let req = svc_with(|s| s.ring_size = Some(RingSizeSetting::Fixed(1000)));
                    add_service(ov, f, e, &req)
                }),
                400,
                "ring_size 1000 is not prime (Maglev needs a prime; the next one is 1009)",
            ),
            (
                "add service: ring size too large",
                m(move |ov, f, e| {
                    let req = svc_with(|s| s.ring_size = Some(RingSizeSetting::Fixed(2_000_003)));
                    add_service(ov, f, e, &req)
                }),
                400,
                "ring_size 2000003 is out of range 1..=1048573",
            ),
            (
                "add service: name taken",
                m(move |ov, f, e| {
                    let req = svc_with(|s| s.name = Some("web".into()));
                    add_service(ov, f, e, &req)
                }),
                409,
                "service `web` already exists, defined differently (address: in effect 10.0.0.1, \
             requested 10.0.0.9; ring_size: in effect 1009, requested auto; pool: in effect web, \
             requested spare); remove it first to replace it",
            ),
            (
                "add service: address taken",
                m(|ov, f, e| {
                    add_service(ov, f, e, &service_req(Some("www"), "10.0.0.1", 80, "web"))
                }),
                409,
                "service 10.0.0.1:80/tcp already exists as `web`",
            ),
            (
                "add service: address of a runtime service taken",
                m(|ov, f, e| add_service(ov, f, e, &service_req(None, "10.0.0.5", 443, "api"))),
                409,
                "service 10.0.0.5:443/tcp already exists as `api`",
            ),
            (
                "add service: link-local address",
                m(|ov, f, e| add_service(ov, f, e, &service_req(None, "fe80::1", 80, "spare"))),
                400,
                "service address fe80::1 is link-local; services must be routable",
            ),
            (
                "add service: IPv4-mapped address",
                m(|ov, f, e| {
                    add_service(ov, f, e, &service_req(None, "::ffff:10.0.0.9", 80, "spare"))
                }),
                400,
                "service address ::ffff:10.0.0.9 is IPv4-mapped; write it as 10.0.0.9",
            ),
            (
                "add service: a name with a space",
                m(move |ov, f, e| {
                    let req = svc_with(|s| s.name = Some("my web".into()));
                    add_service(ov, f, e, &req)
                }),
                400,
                "service name `my web` contains ' '",
            ),
            (
                "add service: its pool does not exist",
                m(move |ov, f, e| {
                    let req = svc_with(|s| s.pool = "nope".into());
                    add_service(ov, f, e, &req)
                }),
                422,
                "the configuration would be invalid: service `new` names pool `nope`, which is not \
             in effect (add it first: `lb-ctl pool add`)",
            ),
            (
                "add service: a backend of its pool cannot serve it",
                m(|ov, f, e| {
                    add_service(ov, f, e, &service_req(Some("v6"), "2001:db8::1", 80, "web"))
                }),
                422,
                "the configuration would be invalid: backend `b1` (10.0.1.1) of pool `web` is IPv4 \
             but service `v6` is IPv6",
            ),
            (
                "add service: its fixed ring cannot hold the pool",
                m(move |ov, f, e| {
                    let req = AddService {
                        ring_size: Some(RingSizeSetting::Fixed(2)),
                        ..service_req(Some("small"), "10.0.0.9", 80, "web")
                    };
                    add_service(ov, f, e, &req)
                }),
                422,
                "ring_size 2 of service `small` is smaller than its pool's number of backends (3)",
            ),
            (
                "add pool: bad MAC in a backend",
                m(|ov, f, e| {
                    let req = pool_req(
                        "new",
                        vec![AddBackend {
                            mac: Some("nope".into()),
                            ..backend_req(None, "10.0.9.1")
                        }],
                    );
                    add_pool(ov, f, e, &req)
                }),
                400,
                "`nope` is not a MAC address",
            ),
            (
                "add pool: a backend twice",
                m(|ov, f, e| {
                    let req = pool_req(
                        "new",
                        vec![
                            backend_req(Some("x"), "10.0.9.1"),
                            backend_req(Some("y"), "10.0.9.1"),
                        ],
                    );
                    add_pool(ov, f, e, &req)
                }),
                400,
                "backend `y` (10.0.9.1) is listed twice in the new pool `new`",
            ),
            (
                "add pool: a name with a space",
                m(|ov, f, e| add_pool(ov, f, e, &pool_req("a b", vec![]))),
                400,
                "pool name `a b` contains ' '",
            ),
            (
                "add pool: name of a file pool taken",
                m(|ov, f, e| {
                    let req = pool_req("web", vec![backend_req(Some("x"), "10.0.9.1")]);
                    add_pool(ov, f, e, &req)
                }),
                409,
                "pool `web` already exists, defined differently (backend `b1`: not in the request; \
             backend `b2`: not in the request; backend `10.0.1.3`: not in the request; backend \
             `x`: only in the request); remove it first to replace it",
            ),
            (
                "add pool: name of a runtime pool taken",
                m(|ov, f, e| add_pool(ov, f, e, &pool_req("api", vec![]))),
                409,
                "pool `api` already exists, defined differently (backend `a1`: not in the request)",
            ),
        ];
    let mut l = Live::new(file());
    assert_eq!(l.set_state("web", "b1", Drain), Ok(true));
    let api = pool_req("api", vec![backend_req(Some("a1"), "10.0.5.1")]);
    assert_eq!(l.add_pool(api), Ok(true));
    let api = service_req(Some("api"), "10.0.0.5", 443, "api");
    assert_eq!(l.add_service(api), Ok(true));
    assert_eq!(
        l.add_backend("dns", backend_req(None, "10.0.2.2")),
        Ok(true),
        "fill the ring"
    );
    let before = l.ov.clone();
    for (desc, mutation, code, want) in cases {
        let mut ov = before.clone();
        let r = mutation(&mut ov, &l.file, &l.eff);
        if let Err(e) = &r {
            assert!(
                !e.reason.contains("line"),
                "{desc}: positions leak: {}",
                e.reason
            );
        }
        assert_err(r, code, want);
        assert_eq!(ov, before, "{desc}: overrides changed");
    }
}

/// A new backend must suit every service using its pool, and fit the data path.
#[test]
fn add_backend_must_suit_every_service_using_the_pool() {
    let mut l = Live::new(config(
        "interfaces: [{name: eth0}]
pools:
  web:
    backends:
      - {name: w1, address: 10.0.1.1}
      - {name: w2, address: 10.0.1.2, port: 80}
services:
  - {name: http, address: 10.0.0.1, port: 80, pool: web}
  - {name: alt, address: 10.0.0.2, port: 80, ring_size: 2, pool: web}
",
    ));
    // Each refused for the first service it does not suit.
    let cases = [
        // DR cannot change ports.
        (
            AddBackend {
                port: Some(8080),
                ..backend_req(Some("w3"), "10.0.1.3")
            },
            "backend `w3` of pool `web` listens on port 8080 but service `http` is on port 80: \
             DR mode cannot change ports (remove `port`, or give the service its own pool)",
        ),
        // The address family.
        (
            backend_req(Some("w3"), "2001:db8::3"),
            "backend `w3` (2001:db8::3) of pool `web` is IPv6 but service `http` is IPv4",
        ),
        // The same endpoint as another backend for the service.
        (
            AddBackend {
                port: Some(80),
                ..backend_req(Some("w1bis"), "10.0.1.1")
            },
            "backends `w1` and `w1bis` of pool `web` are the same endpoint 10.0.1.1:80 for \
             service `http`",
        ),
        // A fixed ring too small.
        (
            backend_req(Some("w3"), "10.0.1.3"),
            "ring_size 2 of service `alt` is smaller than its pool's number of backends (3)",
        ),
    ];
    for (req, want) in cases {
        assert_err(l.add_backend("web", req), 422, want);
    }
    // Without the service with the small ring, the last one fits.
    assert_eq!(l.remove_service("alt"), Ok(true));
    assert_eq!(
        l.add_backend("web", backend_req(Some("w3"), "10.0.1.3")),
        Ok(true)
    );
    // A port is fine when it is the service's.
    let w4 = AddBackend {
        port: Some(80),
        ..backend_req(Some("w4"), "10.0.1.4")
    };
    assert_eq!(l.add_backend("web", w4), Ok(true));
}

/// Each service has one data-path entry per backend of its pool; the data
/// path holds [`MAX_BACKENDS`] in all.
#[test]
fn the_data_path_backend_entries_are_counted_per_service() {
    let half = MAX_BACKENDS / 2;
    let backends: String = (0..half)
        .map(|i| {
            let a = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 1, 0, 1)) + i);
            format!("      - {{address: {a}}}\n")
        })
        .collect();
    let mut l = Live::new(config(&format!(
        "interfaces: [{{name: eth0}}]
pools:
  big:
    backends:
{backends}  small:
    backends:
      - {{address: 10.2.0.1}}
services:
  - {{name: a, address: 10.0.0.1, port: 80, pool: big}}
  - {{name: b, address: 10.0.0.1, port: 443, pool: big}}
"
    )));
    let full = format!("and the data path holds at most {MAX_BACKENDS}");
    // Full: one more backend of `big` is one more entry for each service.
    assert_err(
        l.add_backend("big", backend_req(None, "10.3.0.1")),
        422,
        &format!(
            "too many backends across services: each service has one data-path entry per \
             backend of its pool, {} in all, {full}",
            MAX_BACKENDS + 2
        ),
    );
    assert_err(
        l.add_service(service_req(Some("c"), "10.0.0.1", 8080, "big")),
        422,
        &format!("{} in all", MAX_BACKENDS + half),
    );
    assert_err(
        l.add_service(service_req(Some("c"), "10.0.0.1", 8080, "small")),
        422,
        &format!("{} in all", MAX_BACKENDS + 1),
    );
    // A backend of a pool no service uses takes no entry.
    assert_eq!(
        l.add_backend("small", backend_req(None, "10.2.0.2")),
        Ok(true)
    );
    // Two entries freed: a service of `small` (now two backends) fits, and
    // then neither pool can grow.
    assert_eq!(l.remove_backend("big", "10.1.0.1"), Ok(true));
    assert_eq!(
        l.add_service(service_req(Some("c"), "10.0.0.1", 8080, "small")),
        Ok(true)
    );
    assert_err(
        l.add_backend("small", backend_req(None, "10.2.0.3")),
        422,
        &full,
    );
    assert_err(
        l.add_backend("big", backend_req(None, "10.1.0.1")),
        422,
        &full,
    );
}

#[test]
fn add_service_must_suit_its_pool() {
    let mut l = Live::new(file());
    // Identical to a service in effect: nothing to do.
    let dns = AddService {
        protocol: Some(lb_config::Protocol::Udp),
        ring_size: Some(RingSizeSetting::Fixed(2)),
        ..service_req(None, "10.0.0.2", 53, "dns")
    };
    assert_eq!(l.add_service(dns), Ok(false));
    assert_eq!(l.add_service(web_service_as_in_file()), Ok(false));
    // Another protocol is another service.
    let udp = AddService {
        protocol: Some(lb_config::Protocol::Udp),
        ..service_req(None, "10.0.0.1", 80, "web")
    };
    assert_eq!(l.add_service(udp), Ok(true));
    assert_eq!(
        l.eff.services[3].name, "10.0.0.1:80/udp",
        "the default name"
    );
    assert_eq!(l.eff.users("web"), [0, 1, 3]);

    // A pool with a backend on port 8080 serves only port 8080, in DR.
    let ported = pool_req(
        "ported",
        vec![AddBackend {
            port: Some(8080),
            ..backend_req(Some("p1"), "10.0.4.1")
        }],
    );
    assert_eq!(l.add_pool(ported), Ok(true));
    assert_err(
        l.add_service(service_req(Some("all"), "10.0.0.9", 0, "ported")),
        422,
        "service `all` serves every port (port 0), so backends of pool `ported` cannot name a \
         port (backend `p1` has 8080)",
    );
    assert_err(
        l.add_service(service_req(Some("http"), "10.0.0.9", 80, "ported")),
        422,
        "backend `p1` of pool `ported` listens on port 8080 but service `http` is on port 80",
    );
    assert_eq!(
        l.add_service(service_req(Some("alt"), "10.0.0.9", 8080, "ported")),
        Ok(true)
    );
    // Two backends that are one endpoint for the new service.
    let pair = pool_req(
        "pair",
        vec![
            backend_req(Some("q1"), "10.0.4.5"),
            AddBackend {
                port: Some(80),
                ..backend_req(Some("q2"), "10.0.4.5")
            },
        ],
    );
    assert_eq!(l.add_pool(pair), Ok(true));
    assert_err(
        l.add_service(service_req(Some("q"), "10.0.0.10", 80, "pair")),
        422,
        "backends `q1` and `q2` of pool `pair` are the same endpoint 10.0.4.5:80 for service `q`",
    );
    // A backend at the service's own address.
    assert_err(
        l.add_service(service_req(Some("self"), "10.0.1.1", 80, "web")),
        422,
        "backend `b1` of pool `web` has the address of service `self` (10.0.1.1)",
    );
}

#[test]
fn services_need_an_interface() {
    let mut l = Live::new(config("pools:\n  web: {backends: [{address: 10.0.1.1}]}\n"));
    assert_err(
        l.add_service(service_req(Some("web"), "10.0.0.1", 80, "web")),
        422,
        "services need at least one interface for the XDP program",
    );
}

#[test]
fn runtime_pool_added_removed_and_idempotent() {
    let mut l = Live::new(file());
    let req = pool_req(
        "api",
        vec![
            backend_req(Some("a1"), "10.0.5.1"),
            backend_req(None, "10.0.5.2"),
        ],
    );
    let t = l
        .run(Box::new(|ov, f, e| add_pool(ov, f, e, &req)))
        .expect("add");
    assert_eq!(t, touched(&["api"], true, false));
    assert_eq!(l.add_pool(req.clone()), Ok(false), "identical again");
    let mut reordered = req.clone();
    reordered.backends.reverse();
    assert_eq!(l.add_pool(reordered), Ok(false), "backends in any order");
    assert_err(
        l.add_pool(pool_req("api", vec![backend_req(Some("a1"), "10.0.5.1")])),
        409,
        "pool `api` already exists, defined differently (backend `10.0.5.2`: not in the \
         request); remove it first to replace it",
    );
    let (i, j) = l.eff.find_backend("api", "10.0.5.2").expect("added");
    assert_eq!(l.eff.pool_provenance[i].source, Source::Runtime);
    let p = &l.eff.pool_provenance[i].backends[j];
    assert_eq!(
        (p.source, p.config_state, p.config_weight),
        (Source::Runtime, None, None)
    );
    assert_eq!(l.eff.users("api"), [] as [usize; 0]);

    // A service uses it; its backends are overridden like any other, and set back.
    assert_eq!(
        l.add_service(service_req(Some("api"), "10.0.0.5", 443, "api")),
        Ok(true)
    );
    assert_eq!(l.eff.users("api"), [3]);
    assert_eq!(l.set_weight("api", "a1", 4), Ok(true));
    let (b, p) = backend(&l.eff, "api", "a1");
    assert_eq!(
        (b.weight, p.config_weight, p.weight_override),
        (4, None, Some(4))
    );
    assert_eq!(l.set_weight("api", "a1", 1), Ok(true));
    assert_eq!(backend(&l.eff, "api", "a1").1.weight_override, None);
    // Backends added to a runtime pool are kept in its spec, and removed from it.
    assert_eq!(
        l.add_backend("api", backend_req(None, "10.0.5.3")),
        Ok(true)
    );
    assert_eq!(
        l.ov.added_pools[0].backends.len(),
        3,
        "kept in the pool's spec"
    );
    assert!(l.ov.added_backends.is_empty());
    assert_eq!(l.remove_backend("api", "10.0.5.3"), Ok(true));
    assert_eq!(l.ov.added_pools[0].backends.len(), 2);
    assert_eq!(l.set_state("api", "a1", Drain), Ok(true));

    // Not while a service uses it.
    assert_err(l.remove_pool("api"), 409, "pool `api` is used by api");
    assert_eq!(l.remove_service("10.0.0.5:443/tcp"), Ok(true));
    let t = l
        .run(Box::new(|ov, f, e| remove_pool(ov, f, e, "api")))
        .expect("remove");
    assert_eq!(t, touched(&["api"], true, false));
    assert!(l.ov.is_empty(), "deleted with its overrides: {:?}", l.ov);
    assert_err(l.remove_pool("api"), 404, "no pool `api`");
}

#[test]
fn runtime_service_added_removed_and_idempotent() {
    let mut l = Live::new(file());
    let req = AddService {
        hash: Some(lb_config::HashMode::SourcePort),
        ring_size: Some(RingSizeSetting::Fixed(251)),
        ..service_req(None, "2001:db8::5", 443, "v6")
    };
    assert_err(
        l.add_service(req.clone()),
        422,
        "service `[2001:db8::5]:443/tcp` names pool `v6`, which is not in effect",
    );
    let v6 = pool_req("v6", vec![backend_req(Some("six"), "2001:db8::10")]);
    assert_eq!(l.add_pool(v6), Ok(true));
    let t = l
        .run(Box::new(|ov, f, e| add_service(ov, f, e, &req)))
        .expect("add");
    assert_eq!(t, touched(&[], false, true));
    assert_eq!(l.add_service(req.clone()), Ok(false), "identical again");
    let i = l.eff.find_service("[2001:db8::5]:443/tcp").expect("added");
    let s = &l.eff.services[i];
    assert_eq!(l.eff.service_sources[i], Source::Runtime);
    assert_eq!(
        (s.protocol, s.mode, s.hash, s.ring_size),
        (
            lb_config::Protocol::Tcp,
            lb_config::Mode::Dr,
            lb_config::HashMode::SourcePort,
            lb_config::RingSize::Fixed(251)
        )
    );
    assert_err(
        l.add_service(AddService {
            ring_size: None,
            ..req.clone()
        }),
        409,
        "service `[2001:db8::5]:443/tcp` already exists, defined differently (ring_size: in \
         effect 251, requested auto)",
    );
    // Removed by its key as well as its name; then it is gone.
    assert_eq!(l.remove_service("[2001:db8:0::5]:443/tcp"), Ok(true));
    assert_eq!(l.remove_pool("v6"), Ok(true));
    assert!(l.ov.is_empty(), "{:?}", l.ov);
    assert_err(l.remove_service("[2001:db8::5]:443/tcp"), 404, "no service");
}

#[test]
fn config_pool_tombstone_and_restore() {
    let mut l = Live::new(file());
    assert_eq!(l.set_state("web", "b1", Maint), Ok(true));
    assert_eq!(
        l.add_backend("web", backend_req(None, "10.0.1.9")),
        Ok(true)
    );
    assert_eq!(l.remove_backend("web", "b2"), Ok(true));
    // Not while a service uses it; the error names them all.
    assert_err(
        l.remove_pool("web"),
        409,
        "pool `web` is used by web, web-tls: remove or change those first",
    );
    assert_eq!(l.remove_service("web"), Ok(true));
    assert_err(l.remove_pool("web"), 409, "pool `web` is used by web-tls:");
    assert_eq!(l.remove_service("web-tls"), Ok(true));
    let t = l
        .run(Box::new(|ov, f, e| remove_pool(ov, f, e, "web")))
        .expect("remove");
    assert_eq!(t, touched(&["web"], true, false));
    assert_eq!(
        layout(&l.eff),
        want_layout(&[
            ("dns", Source::Config, &[("10.0.2.1", Source::Config)]),
            ("spare", Source::Config, &[("s1", Source::Config)]),
        ])
    );
    assert!(
        l.orphans().is_empty(),
        "its changes were forgotten, not orphaned"
    );
    assert_eq!(l.ov.removed_pools, BTreeSet::from(["web".to_owned()]));
    assert!(
        l.ov.backend_overrides.is_empty()
            && l.ov.added_backends.is_empty()
            && l.ov.removed_backends.is_empty()
    );
    assert_err(l.remove_pool("web"), 404, "no pool `web`");
    assert_err(l.set_state("web", "b1", Up), 404, "no pool `web`");
    assert_err(
        l.add_service(web_service_as_in_file()),
        422,
        "service `web` names pool `web`, which is not in effect",
    );

    // Back only as the file has it; the reason names what differs.
    let mut other = web_pool_as_in_file();
    other.backends[0].weight = None;
    other.backends.pop();
    assert_err(
        l.add_pool(other),
        409,
        "pool `web` of the configuration file was removed at runtime; it can only be added \
         back exactly as the file defines it, or under another name (backend `b1` weight: file \
         2, requested 1; backend `10.0.1.3`: not in the request)",
    );
    // The request's backends may come in any order.
    let mut same = web_pool_as_in_file();
    same.backends.reverse();
    let t = l
        .run(Box::new(|ov, f, e| add_pool(ov, f, e, &same)))
        .expect("restore");
    assert_eq!(t, touched(&["web"], true, false));
    assert_eq!(l.eff.pool("web"), l.file.pool("web"), "exactly the file's");
    assert_eq!(l.add_service(web_service_as_in_file()), Ok(true));
    let tls = service_req(Some("web-tls"), "10.0.0.1", 443, "web");
    assert_eq!(l.add_service(tls), Ok(true));
    assert!(l.ov.is_empty(), "{:?}", l.ov);
    assert_eq!(l.config(), l.file);
}

#[test]
fn config_service_tombstone_and_restore() {
    let mut l = Live::new(file());
    let t = l
        .run(Box::new(|ov, f, e| {
            remove_service(ov, f, e, "10.0.0.1:80/tcp")
        }))
        .expect("remove by key");
    assert_eq!(t, touched(&[], false, true));
    assert_eq!(l.ov.removed_services, BTreeSet::from(["web".to_owned()]));
    assert_eq!(l.eff.users("web"), [0], "web-tls still uses the pool");
    assert_err(l.remove_service("web"), 404, "no service `web`");

    // Back only as the file has it.
    assert_err(
        l.add_service(service_req(Some("web"), "10.0.0.1", 80, "spare")),
        409,
        "service `web` of the configuration file was removed at runtime; it can only be added \
         back exactly as the file defines it, or under another name and address (ring_size: \
         file 1009, requested auto; pool: file web, requested spare)",
    );
    assert_err(
        l.add_service(AddService {
            name: Some("www".into()),
            ..web_service_as_in_file()
        }),
        409,
        "name: file `web`, requested `www`",
    );
    assert_eq!(
        l.add_service(service_req(Some("web2"), "10.0.0.3", 80, "web")),
        Ok(true),
        "under another name and address"
    );
    assert_eq!(l.add_service(web_service_as_in_file()), Ok(true));
    assert_eq!(l.remove_service("web2"), Ok(true));
    assert!(l.ov.is_empty(), "{:?}", l.ov);

    // A service with the default name comes back without naming it.
    assert_eq!(l.remove_service(DNS), Ok(true));
    let dns = AddService {
        protocol: Some(lb_config::Protocol::Udp),
        ring_size: Some(RingSizeSetting::Fixed(2)),
        ..service_req(None, "10.0.0.2", 53, "dns")
    };
    assert_eq!(l.add_service(dns), Ok(true));
    assert!(l.ov.is_empty(), "{:?}", l.ov);
    assert_eq!(l.config(), l.file);
}

#[test]
fn config_backend_tombstone_and_restore() {
    let mut l = Live::new(file());
    assert_eq!(l.set_weight("web", "b1", 9), Ok(true));
    assert_eq!(l.remove_backend("web", "10.0.1.1"), Ok(true));
    assert_eq!(l.remove_backend("web", "10.0.1.3"), Ok(true));
    assert!(l.ov.backend_overrides.is_empty(), "the weight went with it");
    assert_eq!(
        layout(&l.eff)[0],
        want_layout(&[("web", Source::Config, &[("b2", Source::Config)])])[0]
    );
    assert_err(l.remove_backend("web", "b1"), 404, "no backend `b1`");
    let changed = AddBackend {
        weight: Some(5),
        ..backend_req(Some("b1"), "10.0.1.1")
    };
    assert_err(
        l.add_backend("web", changed),
        409,
        "backend `b1` of pool `web` in the configuration file was removed at runtime; it can \
         only be added back exactly as the file defines it, or under another name and address \
         (weight: file 2, requested 5)",
    );
    assert_err(
        l.add_backend("web", backend_req(Some("b1bis"), "10.0.1.1")),
        409,
        "name: file `b1`, requested `b1bis`",
    );
    let same = AddBackend {
        weight: Some(2),
        ..backend_req(Some("b1"), "10.0.1.1")
    };
    assert_eq!(l.add_backend("web", same.clone()), Ok(true));
    assert_eq!(l.add_backend("web", same), Ok(false), "now in effect");
    assert_eq!(
        l.add_backend("web", backend_req(None, "10.0.1.3")),
        Ok(true)
    );
    assert!(l.ov.is_empty(), "{:?}", l.ov);
    assert_eq!(l.config(), l.file);
}

#[test]
fn runtime_backend_on_a_config_pool() {
    let mut l = Live::new(file());
    let req = AddBackend {
        state: Some(Drain),
        interface: Some("eth1".into()),
        mac: Some("02:00:00:00:00:09".into()),
        ..backend_req(Some("b9"), "10.0.1.9")
    };
    assert_eq!(l.add_backend("web", req.clone()), Ok(true));
    assert_eq!(l.add_backend("web", req), Ok(false));
    let (b, p) = backend(&l.eff, "web", "10.0.1.9");
    assert_eq!(b.mac, Some(lb_config::MacAddr([2, 0, 0, 0, 0, 9])));
    assert_eq!(
        (p.source, p.config_state, p.state_override, b.state),
        (Source::Runtime, None, None, Drain)
    );
    // Its base is the state it was added with.
    assert_eq!(l.set_state("web", "b9", Drain), Ok(false));
    assert_eq!(l.set_state("web", "b9", Up), Ok(true));
    assert_eq!(backend(&l.eff, "web", "b9").1.state_override, Some(Up));
    assert_eq!(l.remove_backend("web", "b9"), Ok(true));
    assert!(l.ov.is_empty(), "{:?}", l.ov);
}

/// splitmix64: a tiny deterministic PRNG, enough to script changes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// The file of the random script: two pools, three services.
const SCRIPT_FILE: &str = "\
interfaces: [{name: eth0}]
pools:
  p1:
    backends:
      - {name: a, address: 10.0.1.1}
      - {name: b, address: 10.0.1.2, weight: 3}
  p2:
    backends:
      - {name: c, address: 10.0.2.1, port: 53}
services:
  - {name: s1, address: 10.0.0.1, port: 80, pool: p1}
  - {name: s2, address: 10.0.0.1, port: 443, ring_size: 3, pool: p1}
  - {name: s3, address: 10.0.0.2, port: 53, protocol: udp, pool: p2}
";

/// Backends the script adds: (name, address, port), some of them unfit for
/// some services (a port, another family, an endpoint another has).
const SCRIPT_BACKENDS: &[(Option<&str>, &str, Option<u16>)] = &[
    (Some("a"), "10.0.1.1", None),
    (Some("b"), "10.0.1.2", None),
    (Some("c"), "10.0.2.1", Some(53)),
    (Some("d"), "10.0.1.4", None),
    (Some("e"), "10.0.1.5", Some(80)),
    (Some("f"), "10.0.1.1", Some(80)),
    (Some("g"), "2001:db8::7", None),
    (None, "10.0.2.2", None),
    (None, "10.0.1.6", None),
];

const SCRIPT_POOLS: &[&str] = &["p1", "p2", "p3", "nope"];

/// Services the script adds: the file's three exactly, and others.
fn script_service(rng: &mut Rng) -> AddService {
    let udp = Some(lb_config::Protocol::Udp);
    let pool = rng.pick(&SCRIPT_POOLS[..3]);
    let ring = rng.pick(&[None, Some(3), Some(2), Some(1009)]);
    let ring_size = ring.map(RingSizeSetting::Fixed);
    match rng.below(7) {
        0 => service_req(Some("s1"), "10.0.0.1", 80, "p1"),
        1 => AddService {
            ring_size: Some(RingSizeSetting::Fixed(3)),
            ..service_req(Some("s2"), "10.0.0.1", 443, "p1")
        },
        2 => AddService {
            protocol: udp,
            ..service_req(Some("s3"), "10.0.0.2", 53, "p2")
        },
        3 => AddService {
            ring_size,
            ..service_req(Some("s4"), "10.0.0.4", 80, pool)
        },
        4 => AddService {
            ring_size,
            ..service_req(Some("s5"), "10.0.0.5", 0, pool)
        },
        5 => service_req(Some("s6"), "2001:db8::1", 80, pool),
        _ => AddService {
            protocol: udp,
            ring_size,
            ..service_req(None, "10.0.0.2", 53, pool)
        },
    }
}

fn script_backend(rng: &mut Rng) -> AddBackend {
    let (name, address, port) = rng.pick(SCRIPT_BACKENDS);
    AddBackend {
        port,
        weight: rng.pick(&[None, Some(3)]),
        state: rng.pick(&[None, Some(Drain)]),
        ..backend_req(name, address)
    }
}

/// A backend named in a change: mostly one in effect, by name or address.
fn script_backend_name(rng: &mut Rng, l: &Live, pool: &str) -> String {
    match l.eff.pool(pool) {
        Some(p) if !p.backends.is_empty() && rng.chance(80) => {
            let b = &p.backends[rng.below(p.backends.len())];
            if rng.chance(70) {
                b.name.clone()
            } else {
                b.address.to_string()
            }
        }
        _ => rng.pick(&["a", "x", "10.0.1.6"]).to_owned(),
    }
}

/// Whatever sequence of changes is accepted, the configuration in effect
/// stays valid and the incrementally refreshed `Effective` equals one
/// computed from scratch (both checked by [`Live::run`]); the overrides
/// survive JSON.
#[test]
fn random_changes_keep_the_configuration_valid() {
    const KINDS: [&str; 8] = [
        "set_state",
        "set_weight",
        "add_backend",
        "remove_backend",
        "add_pool",
        "remove_pool",
        "add_service",
        "remove_service",
    ];
    // How often each kind is drawn: more additions than removals, so that
    // the configuration stays populated.
    const WEIGHTS: [usize; 8] = [3, 2, 5, 2, 2, 1, 3, 1];
    let mut accepted = [0usize; KINDS.len()];
    let mut refused = 0;
    for seed in 1..=10 {
        let mut rng = Rng(seed);
        let mut l = Live::new(config(SCRIPT_FILE));
        for step in 0..200 {
            let mut draw = rng.below(WEIGHTS.iter().sum());
            let kind = WEIGHTS
                .iter()
                .position(|&w| {
                    let hit = draw < w;
                    draw = draw.saturating_sub(w);
                    hit
                })
                .expect("within the weights");
            // Mostly a pool in effect.
            let pool = match l.eff.pools.len() {
                n if n > 0 && rng.chance(75) => {
                    let name = &l.eff.pools[rng.below(n)].name;
                    SCRIPT_POOLS
                        .iter()
                        .copied()
                        .find(|p| *p == name)
                        .expect("the script's pool")
                }
                _ => rng.pick(SCRIPT_POOLS),
            };
            let r = match kind {
                0 => {
                    let b = script_backend_name(&mut rng, &l, pool);
                    let s = rng.pick(&[Up, Drain, Maint]);
                    l.set_state(pool, &b, s)
                }
                1 => {
                    let b = script_backend_name(&mut rng, &l, pool);
                    let w = rng.pick(&[0, 1, 2, 3, 70_000]);
                    l.set_weight(pool, &b, w)
                }
                2 => {
                    let req = script_backend(&mut rng);
                    l.add_backend(pool, req)
                }
                3 => {
                    let b = script_backend_name(&mut rng, &l, pool);
                    l.remove_backend(pool, &b)
                }
                4 => {
                    let req = match pool {
                        // The file's own definition, to restore it.
                        "p1" if rng.chance(70) => pool_req(
                            "p1",
                            vec![
                                backend_req(Some("a"), "10.0.1.1"),
                                AddBackend {
                                    weight: Some(3),
                                    ..backend_req(Some("b"), "10.0.1.2")
                                },
                            ],
                        ),
                        "p2" if rng.chance(70) => pool_req(
                            "p2",
                            vec![AddBackend {
                                port: Some(53),
                                ..backend_req(Some("c"), "10.0.2.1")
                            }],
                        ),
                        _ => {
                            let n = rng.below(3);
                            pool_req(pool, (0..n).map(|_| script_backend(&mut rng)).collect())
                        }
                    };
                    l.add_pool(req)
                }
                5 => l.remove_pool(pool),
                6 => {
                    let req = script_service(&mut rng);
                    l.add_service(req)
                }
                _ => {
                    let names = ["s1", "s2", "s3", "s4", "s5", "10.0.0.2:53/udp"];
                    let s = match l.eff.services.len() {
                        n if n > 0 && rng.chance(70) => l.eff.services[rng.below(n)].name.clone(),
                        _ => rng.pick(&names).to_owned(),
                    };
                    l.remove_service(&s)
                }
            };
            match r {
                Ok(true) => accepted[kind] += 1,
                Ok(false) => {}
                Err(e) => {
                    assert!(e.code != 500, "seed {seed} step {step}: {e:?}");
                    refused += 1;
                }
            }
            let json = serde_json::to_string(&l.ov).expect("json");
            let back: Overrides = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, l.ov, "seed {seed} step {step}");
        }
    }
    // The script reaches every kind of change, accepted and refused.
    for (kind, n) in KINDS.iter().zip(accepted) {
        assert!(n >= 20, "only {n} accepted {kind}: {accepted:?}");
    }
    assert!(refused >= 200, "only {refused} refused");
}

/// A runtime service hides a file service of the same name that the file
/// gained on reload; the file's uses a pool removed at runtime since. Removing
/// the runtime service would bring back a service without its pool: refused,
/// like an add that does not fit.
#[test]
fn removing_a_runtime_entry_that_hides_a_file_entry_checks_what_comes_back() {
    let mut l = Live::new(file());
    l.add_service(service_req(Some("api"), "10.0.0.9", 80, "web"))
        .unwrap();
    let with_api = FILE.replace(
        "services:\n",
        "services:\n  - {name: api, address: 10.0.0.8, port: 80, pool: spare}\n",
    );
    l.reload(config(&with_api));
    assert_eq!(l.eff.services.iter().filter(|s| s.name == "api").count(), 1);
    assert!(
        l.remove_pool("spare").unwrap(),
        "nothing in effect uses spare"
    );
    let e = l.remove_service("api").unwrap_err();
    assert_eq!(e.code, 422, "{e}");
    assert!(
        e.reason
            .contains("brings back the configuration file's entry")
            && e.reason.contains("pool `spare`, which does not exist"),
        "{e}"
    );
    // Once the pool is back, the removal goes through and the file's `api` returns.
    assert!(
        l.add_pool(pool_req("spare", vec![backend_req(Some("s1"), "10.0.3.1")]))
            .unwrap()
    );
    assert!(l.remove_service("api").unwrap());
    let api = &l.eff.services[l.eff.find_service("api").unwrap()];
    assert_eq!(api.pool, "spare");
}
