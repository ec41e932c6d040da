//! Every mutation: happy paths, idempotence, overrides equal to the file,
//! tombstones, and each error leaving the overrides untouched.

use super::*;
use lb_config::AdminState::{Drain, Maint, Up};

/// One `set_state`/`set_weight` call and what it should do.
enum Set {
    State(&'static str, &'static str, AdminState, bool),
    Weight(&'static str, &'static str, u32, bool),
}

#[test]
fn set_state_and_weight() {
    use Set::*;
    // (description, calls with the `changed` each returns, then the backend
    // looked at: its effective (state, weight) and (state, weight) overrides).
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
            "backend by address, VIP by address:port/protocol",
            vec![State("10.0.0.1:80/tcp", "10.0.1.3", Maint, true)],
            ("web", "10.0.1.3"),
            (Maint, 1),
            (Some(Maint), None),
        ),
        (
            "VIP by its default name",
            vec![State(DNS, "10.0.2.1", Drain, true)],
            (DNS, "10.0.2.1"),
            (Drain, 1),
            (Some(Drain), None),
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
    let file = file();
    for (desc, calls, (vip, b), want_value, want_override) in cases {
        let mut ov = Overrides::default();
        for (n, call) in calls.into_iter().enumerate() {
            let (r, want_changed) = match call {
                State(v, b, s, c) => (set_state(&mut ov, &file, v, b, s), c),
                Weight(v, b, w, c) => (set_weight(&mut ov, &file, v, b, w), c),
            };
            let changed = r.unwrap_or_else(|e| panic!("{desc}: call {n}: {e}"));
            assert_eq!(changed, want_changed, "{desc}: call {n}");
        }
        let eff = effective(&file, &ov);
        let (cfg, prov) = backend(&eff, vip, b);
        assert_eq!((cfg.state, cfg.weight), want_value, "{desc}");
        assert_eq!(
            (prov.state_override, prov.weight_override),
            want_override,
            "{desc}"
        );
        assert_eq!(prov.source, Source::Config, "{desc}");
        assert_eq!(
            ov.is_empty(),
            want_override == (None, None),
            "{desc}: only real overrides are stored: {ov:?}"
        );
    }
}

/// Every refused change, on overrides that already hold changes: the error
/// and the overrides untouched.
#[test]
fn refused_changes_leave_overrides_untouched() {
    type Mutation = Box<dyn Fn(&mut Overrides, &Config) -> Result<bool, ApiError>>;
    let with_port = |port| AddBackend {
        port: Some(port),
        ..backend_req(Some("b9"), "10.0.1.9")
    };
    let cases: Vec<(&str, Mutation, u16, &str)> = vec![
        (
            "state: unknown VIP",
            Box::new(|ov, f| set_state(ov, f, "nope", "b1", Drain)),
            404,
            "no VIP `nope` in effect",
        ),
        (
            "state: unknown VIP lists the known ones",
            Box::new(|ov, f| set_state(ov, f, "nope", "b1", Drain)),
            404,
            "VIPs in effect: `web`, `10.0.0.2:53/udp`, `api`",
        ),
        (
            "state: unknown backend",
            Box::new(|ov, f| set_state(ov, f, "web", "b7", Drain)),
            404,
            "VIP `web` has no backend `b7` in effect (name it by name or address; backends in effect: `b1`, `b2`, `10.0.1.3`)",
        ),
        (
            "state: a VIP key of another protocol",
            Box::new(|ov, f| set_state(ov, f, "10.0.0.1:80/udp", "b1", Drain)),
            404,
            "no VIP `10.0.0.1:80/udp`",
        ),
        (
            "weight: unknown backend",
            Box::new(|ov, f| set_weight(ov, f, "web", "10.0.1.99", 3)),
            404,
            "no backend `10.0.1.99`",
        ),
        (
            "weight: out of range",
            Box::new(|ov, f| set_weight(ov, f, "web", "b1", 70_000)),
            422,
            "weight 70000 is out of range 0..=65535",
        ),
        (
            "remove VIP: unknown",
            Box::new(|ov, f| remove_vip(ov, f, "10.9.9.9:80/tcp")),
            404,
            "no VIP `10.9.9.9:80/tcp`",
        ),
        (
            "remove backend: unknown VIP",
            Box::new(|ov, f| remove_backend(ov, f, "nope", "b1")),
            404,
            "no VIP `nope`",
        ),
        (
            "remove backend: unknown",
            Box::new(|ov, f| remove_backend(ov, f, "web", "b7")),
            404,
            "no backend `b7`",
        ),
        (
            "add backend: unknown VIP",
            Box::new(|ov, f| add_backend(ov, f, "nope", backend_req(None, "10.0.1.9"))),
            404,
            "no VIP `nope`",
        ),
        (
            "add backend: bad MAC",
            Box::new(|ov, f| {
                let req = AddBackend {
                    mac: Some("02:00:00:00:00".into()),
                    ..backend_req(None, "10.0.1.9")
                };
                add_backend(ov, f, "web", req)
            }),
            400,
            "`02:00:00:00:00` is not a MAC address",
        ),
        (
            "add backend: multicast MAC",
            Box::new(|ov, f| {
                let req = AddBackend {
                    mac: Some("01:00:5e:00:00:01".into()),
                    ..backend_req(None, "10.0.1.9")
                };
                add_backend(ov, f, "web", req)
            }),
            422,
            "mac 01:00:5e:00:00:01 is not a unicast station address",
        ),
        (
            "add backend: DR cannot change ports",
            Box::new(move |ov, f| add_backend(ov, f, "web", with_port(8080))),
            422,
            "backend port 8080 differs from the VIP's port 80: DR mode cannot change ports",
        ),
        (
            "add backend: wrong family",
            Box::new(|ov, f| add_backend(ov, f, "web", backend_req(None, "2001:db8::9"))),
            422,
            "backend 2001:db8::9 is IPv6 but VIP `web` is IPv4",
        ),
        (
            "add backend: the VIP's own address",
            Box::new(|ov, f| add_backend(ov, f, "web", backend_req(None, "10.0.0.1"))),
            422,
            "backend 10.0.0.1 is the VIP's own address",
        ),
        (
            "add backend: unknown interface",
            Box::new(|ov, f| {
                let req = AddBackend {
                    interface: Some("eth9".into()),
                    ..backend_req(None, "10.0.1.9")
                };
                add_backend(ov, f, "web", req)
            }),
            422,
            "unknown interface `eth9` (known: eth0, eth1)",
        ),
        (
            "add backend: weight out of range",
            Box::new(|ov, f| {
                let req = AddBackend {
                    weight: Some(65_536),
                    ..backend_req(None, "10.0.1.9")
                };
                add_backend(ov, f, "web", req)
            }),
            422,
            "weight 65536 is out of range 0..=65535",
        ),
        (
            "add backend: name taken",
            Box::new(|ov, f| add_backend(ov, f, "web", backend_req(Some("b1"), "10.0.1.9"))),
            409,
            "VIP `web` already has backend `b1` at 10.0.1.1, defined differently (address: in effect 10.0.1.1, requested 10.0.1.9; weight: in effect 2, requested 1; \
             state: in effect drain, requested up); remove it first to replace it",
        ),
        (
            "add backend: address taken",
            Box::new(|ov, f| add_backend(ov, f, "web", backend_req(Some("new"), "10.0.1.2"))),
            409,
            "already has backend `b2` at 10.0.1.2",
        ),
        (
            "add backend: the ring is full",
            Box::new(|ov, f| add_backend(ov, f, DNS, backend_req(None, "10.0.2.3"))),
            422,
            "ring_size 2 is smaller than the number of backends (3)",
        ),
        (
            "add VIP: ring size not prime",
            Box::new(|ov, f| {
                let req = AddVip {
                    ring_size: Some(1000),
                    ..vip_req(Some("new"), "10.0.0.9", 80)
                };
                add_vip(ov, f, req)
            }),
            422,
            "ring_size 1000 is not prime (Maglev needs a prime; the next one is 1009)",
        ),
        (
            "add VIP: name taken",
            Box::new(|ov, f| add_vip(ov, f, vip_req(Some("web"), "10.0.0.9", 80))),
            409,
            "VIP `web` already exists, defined differently (address: in effect 10.0.0.1, requested 10.0.0.9",
        ),
        (
            "add VIP: address taken",
            Box::new(|ov, f| add_vip(ov, f, vip_req(Some("www"), "10.0.0.1", 80))),
            409,
            "VIP 10.0.0.1:80/tcp already exists as `web`",
        ),
        (
            "add VIP: address of a runtime VIP taken",
            Box::new(|ov, f| add_vip(ov, f, vip_req(None, "10.0.0.5", 443))),
            409,
            "VIP 10.0.0.5:443/tcp already exists as `api`",
        ),
        (
            "add VIP: bad MAC in a backend",
            Box::new(|ov, f| {
                let req = AddVip {
                    backends: vec![AddBackend {
                        mac: Some("nope".into()),
                        ..backend_req(None, "10.0.9.1")
                    }],
                    ..vip_req(None, "10.0.0.9", 80)
                };
                add_vip(ov, f, req)
            }),
            400,
            "`nope` is not a MAC address",
        ),
        (
            "add VIP: a backend twice, without the synthetic file's line",
            Box::new(|ov, f| {
                let req = AddVip {
                    backends: vec![
                        backend_req(Some("x"), "10.0.9.1"),
                        backend_req(Some("y"), "10.0.9.1"),
                    ],
                    ..vip_req(None, "10.0.0.9", 80)
                };
                add_vip(ov, f, req)
            }),
            422,
            "the configuration would be invalid: backend 10.0.9.1 is listed twice in VIP `10.0.0.9:80/tcp`",
        ),
        (
            "add VIP: link-local address",
            Box::new(|ov, f| add_vip(ov, f, vip_req(None, "fe80::1", 80))),
            422,
            "VIP address fe80::1 is link-local",
        ),
    ];
    let file = file();
    let mut before = Overrides::default();
    assert!(set_state(&mut before, &file, "web", "b1", Drain).expect("drain"));
    assert!(add_vip(&mut before, &file, vip_req(Some("api"), "10.0.0.5", 443)).expect("add api"));
    assert!(
        add_backend(&mut before, &file, DNS, backend_req(None, "10.0.2.2")).expect("fill the ring")
    );
    for (desc, mutation, code, want) in cases {
        let mut ov = before.clone();
        let r = mutation(&mut ov, &file);
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

#[test]
fn runtime_vip_added_removed_and_idempotent() {
    let file = file();
    let mut ov = Overrides::default();
    let req = AddVip {
        backends: vec![
            backend_req(Some("a1"), "10.0.5.1"),
            backend_req(None, "10.0.5.2"),
        ],
        ring_size: Some(251),
        ..vip_req(None, "10.0.0.5", 443)
    };
    assert_eq!(add_vip(&mut ov, &file, req.clone()), Ok(true));
    assert_eq!(add_vip(&mut ov, &file, req), Ok(false), "identical again");
    let eff = effective(&file, &ov);
    let (i, j) = eff
        .find_backend("10.0.0.5:443/tcp", "10.0.5.2")
        .expect("added");
    assert_eq!(eff.provenance[i].source, Source::Runtime);
    assert_eq!(eff.provenance[i].backends[j].config_state, None);
    assert_eq!(eff.config.vips[i].ring_size, 251);
    assert_eq!(
        eff.config.vips[i].hash,
        lb_config::HashMode::Source,
        "default"
    );
    // Its backends can be overridden like any other, and set back.
    assert_eq!(
        set_weight(&mut ov, &file, "10.0.0.5:443/tcp", "a1", 4),
        Ok(true)
    );
    let eff = effective(&file, &ov);
    let (b, p) = backend(&eff, "10.0.0.5:443/tcp", "a1");
    assert_eq!(
        (b.weight, p.config_weight, p.weight_override),
        (4, None, Some(4))
    );
    assert_eq!(
        set_weight(&mut ov, &file, "10.0.0.5:443/tcp", "a1", 1),
        Ok(true)
    );
    assert_eq!(
        backend(&effective(&file, &ov), "10.0.0.5:443/tcp", "a1")
            .1
            .weight_override,
        None
    );
    // Backends added to a runtime VIP, and removed, by name or address.
    assert_eq!(
        add_backend(
            &mut ov,
            &file,
            "10.0.0.5:443/tcp",
            backend_req(None, "10.0.5.3")
        ),
        Ok(true)
    );
    assert_eq!(ov.added_vips[0].backends.len(), 3, "kept in the VIP's spec");
    assert_eq!(
        remove_backend(&mut ov, &file, "10.0.0.5:443/tcp", "10.0.5.3"),
        Ok(true)
    );
    assert_eq!(
        set_state(&mut ov, &file, "10.0.0.5:443/tcp", "a1", Drain),
        Ok(true)
    );
    assert_eq!(remove_vip(&mut ov, &file, "10.0.0.5:443/tcp"), Ok(true));
    assert!(ov.is_empty(), "deleted with its overrides: {ov:?}");
    assert_err(
        remove_vip(&mut ov, &file, "10.0.0.5:443/tcp"),
        404,
        "no VIP",
    );
}

#[test]
fn config_vip_tombstone_and_restore() {
    let file = file();
    let mut ov = Overrides::default();
    assert_eq!(set_state(&mut ov, &file, "web", "b1", Maint), Ok(true));
    assert_eq!(
        add_backend(&mut ov, &file, "web", backend_req(None, "10.0.1.9")),
        Ok(true)
    );
    assert_eq!(remove_backend(&mut ov, &file, "web", "b2"), Ok(true));
    assert_eq!(remove_vip(&mut ov, &file, "10.0.0.1:80/tcp"), Ok(true));
    let eff = effective(&file, &ov);
    assert_eq!(layout(&eff).len(), 1, "only the UDP VIP is left");
    assert_eq!(
        eff.orphans(),
        &[] as &[String],
        "its changes were forgotten, not orphaned"
    );
    assert_eq!(ov.removed_vips.iter().collect::<Vec<_>>(), ["web"]);
    assert!(
        ov.backend_overrides.is_empty()
            && ov.added_backends.is_empty()
            && ov.removed_backends.is_empty()
    );
    assert_err(remove_vip(&mut ov, &file, "web"), 404, "no VIP `web`");
    assert_err(
        set_state(&mut ov, &file, "web", "b1", Up),
        404,
        "no VIP `web`",
    );

    // Back only as the file has it; the reason names what differs.
    let before = ov.clone();
    let mut other = web_as_in_file();
    other.ring_size = None;
    other.backends[0].weight = None;
    assert_err(
        add_vip(&mut ov, &file, other),
        409,
        "VIP `web` of the configuration file was removed at runtime; it can only be added back \
         exactly as the file defines it, or under another name and address \
         (ring_size: file 1009, requested 65537; backend `b1` weight: file 2, requested 1)",
    );
    assert_err(
        add_vip(&mut ov, &file, vip_req(Some("www"), "10.0.0.1", 80)),
        409,
        "name: file `web`, requested `www`",
    );
    assert_eq!(ov, before);
    // The request's backends may come in any order, the port may be spelled out.
    let mut same = web_as_in_file();
    same.backends.reverse();
    same.backends[0].port = Some(80);
    assert_eq!(add_vip(&mut ov, &file, same), Ok(true));
    assert!(ov.is_empty(), "{ov:?}");
    assert_eq!(effective(&file, &ov).config, file);
}

#[test]
fn config_backend_tombstone_and_restore() {
    let file = file();
    let mut ov = Overrides::default();
    assert_eq!(set_weight(&mut ov, &file, "web", "b1", 9), Ok(true));
    assert_eq!(remove_backend(&mut ov, &file, "web", "10.0.1.1"), Ok(true));
    assert_eq!(remove_backend(&mut ov, &file, "web", "10.0.1.3"), Ok(true));
    assert!(ov.backend_overrides.is_empty(), "the weight went with it");
    let eff = effective(&file, &ov);
    assert_eq!(
        layout(&eff)[0],
        (
            "web".into(),
            Source::Config,
            vec![("b2".into(), Source::Config)]
        )
    );
    assert_err(
        remove_backend(&mut ov, &file, "web", "b1"),
        404,
        "no backend `b1`",
    );
    let before = ov.clone();
    let changed = AddBackend {
        weight: Some(5),
        ..backend_req(Some("b1"), "10.0.1.1")
    };
    assert_err(
        add_backend(&mut ov, &file, "web", changed),
        409,
        "backend `b1` of VIP `web` in the configuration file was removed at runtime; it can only \
         be added back exactly as the file defines it, or under another name and address \
         (weight: file 2, requested 5)",
    );
    assert_err(
        add_backend(
            &mut ov,
            &file,
            "web",
            backend_req(Some("b1bis"), "10.0.1.1"),
        ),
        409,
        "name: file `b1`, requested `b1bis`",
    );
    assert_eq!(ov, before);
    let same = AddBackend {
        weight: Some(2),
        ..backend_req(Some("b1"), "10.0.1.1")
    };
    assert_eq!(add_backend(&mut ov, &file, "web", same.clone()), Ok(true));
    assert_eq!(
        add_backend(&mut ov, &file, "web", same),
        Ok(false),
        "now in effect"
    );
    assert_eq!(
        add_backend(&mut ov, &file, "web", backend_req(None, "10.0.1.3")),
        Ok(true)
    );
    assert!(ov.is_empty(), "{ov:?}");
}

#[test]
fn runtime_backend_on_a_config_vip() {
    let file = file();
    let mut ov = Overrides::default();
    let req = AddBackend {
        state: Some(Drain),
        interface: Some("eth1".into()),
        mac: Some("02:00:00:00:00:09".into()),
        ..backend_req(Some("b9"), "10.0.1.9")
    };
    assert_eq!(add_backend(&mut ov, &file, "web", req.clone()), Ok(true));
    assert_eq!(add_backend(&mut ov, &file, "web", req), Ok(false));
    let eff = effective(&file, &ov);
    let (b, p) = backend(&eff, "web", "10.0.1.9");
    assert_eq!(b.mac, Some(lb_config::MacAddr([2, 0, 0, 0, 0, 9])));
    assert_eq!(
        (p.source, p.config_state, p.state_override, b.state),
        (Source::Runtime, None, None, Drain)
    );
    // Its base is the state it was added with.
    assert_eq!(set_state(&mut ov, &file, "web", "b9", Drain), Ok(false));
    assert_eq!(set_state(&mut ov, &file, "web", "b9", Up), Ok(true));
    let eff = effective(&file, &ov);
    assert_eq!(backend(&eff, "web", "b9").1.state_override, Some(Up));
    assert_eq!(remove_backend(&mut ov, &file, "web", "b9"), Ok(true));
    assert!(ov.is_empty(), "{ov:?}");
}

#[test]
fn check_reports_warnings_of_a_valid_change() {
    let file = file();
    let mut ov = Overrides::default();
    assert_eq!(set_state(&mut ov, &file, "web", "b1", Drain), Ok(true));
    assert_eq!(set_weight(&mut ov, &file, "web", "10.0.1.3", 0), Ok(true));
    let warnings = check(&effective(&file, &ov).config).expect("valid");
    assert!(
        warnings.iter().any(|w| w
            == "no backend of VIP `web` takes new flows (all drained, in maintenance or weight 0)"),
        "{warnings:?}"
    );
}
