//! The configuration in effect: provenance, orphans after a file change and
//! their return, shadowing, and the YAML round trip `check` relies on.

use super::*;
use lb_config::AdminState::{Drain, Maint, Up};

#[test]
fn no_overrides_is_the_file() {
    let file = file();
    let eff = effective(&file, &Overrides::default());
    assert_eq!(eff.config, file);
    assert!(eff.orphans().is_empty() && eff.shadowed().is_empty());
    for (v, p) in file.vips.iter().zip(&eff.provenance) {
        assert_eq!(p.source, Source::Config);
        for (b, bp) in v.backends.iter().zip(&p.backends) {
            assert_eq!(
                (
                    bp.config_state,
                    bp.config_weight,
                    bp.state_override,
                    bp.weight_override
                ),
                (Some(b.state), Some(b.weight), None, None)
            );
        }
    }
}

#[test]
fn provenance_of_every_vip_and_backend() {
    let file = file();
    let mut ov = Overrides::default();
    set_state(&mut ov, &file, "web", "b1", Drain).expect("drain");
    set_weight(&mut ov, &file, "web", "b2", 5).expect("weight");
    let b9 = AddBackend {
        weight: Some(3),
        ..backend_req(Some("b9"), "10.0.1.9")
    };
    add_backend(&mut ov, &file, "web", b9).expect("add b9");
    let api = AddVip {
        backends: vec![backend_req(Some("a1"), "10.0.5.1")],
        ..vip_req(Some("api"), "10.0.0.5", 443)
    };
    add_vip(&mut ov, &file, api).expect("add api");
    set_state(&mut ov, &file, "api", "a1", Maint).expect("maint");

    type Row = (
        &'static str,
        &'static str,
        Source,
        Option<AdminState>,
        Option<u32>,
        Option<AdminState>,
        Option<u32>,
        AdminState,
        u32,
    );
    use Source::{Config as F, Runtime as R};
    // vip, backend, source, file state, file weight, state override, weight
    // override, state and weight in effect.
    let want: Vec<Row> = vec![
        (
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
        (
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
        ("web", "10.0.1.3", F, Some(Up), Some(1), None, None, Up, 1),
        ("web", "b9", R, None, None, None, None, Up, 3),
        (DNS, "10.0.2.1", F, Some(Up), Some(1), None, None, Up, 1),
        ("api", "a1", R, None, None, Some(Maint), None, Maint, 1),
    ];
    let eff = effective(&file, &ov);
    let mut got: Vec<Row> = Vec::new();
    for (v, p) in eff.config.vips.iter().zip(&eff.provenance) {
        for (b, bp) in v.backends.iter().zip(&p.backends) {
            let vip = want
                .iter()
                .map(|w| w.0)
                .find(|n| *n == v.name)
                .expect("known VIP");
            let name = want
                .iter()
                .map(|w| w.1)
                .find(|n| *n == b.name)
                .expect("known backend");
            got.push((
                vip,
                name,
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
    let sources: Vec<Source> = eff.provenance.iter().map(|p| p.source).collect();
    assert_eq!(sources, [F, F, R]);
    check(&eff.config).expect("valid");
}

#[test]
fn orphans_after_a_file_change_and_their_return() {
    let file = file();
    let mut ov = Overrides::default();
    set_state(&mut ov, &file, "web", "b1", Drain).expect("drain");
    set_weight(&mut ov, &file, "web", "b2", 3).expect("weight");
    remove_backend(&mut ov, &file, "web", "10.0.1.3").expect("remove");
    add_backend(&mut ov, &file, "web", backend_req(Some("b9"), "10.0.1.9")).expect("add");
    remove_vip(&mut ov, &file, DNS).expect("remove VIP");
    let saved = ov.clone();

    // The file loses both VIPs and gains another.
    let other = config(
        "interfaces: [{name: eth0}]\nvips:\n  - {name: other, address: 10.0.0.7, port: 80, backends: [{address: 10.0.7.1}]}\n",
    );
    let eff = effective(&other, &ov);
    assert_eq!(
        layout(&eff),
        [(
            "other".into(),
            Source::Config,
            vec![("10.0.7.1".into(), Source::Config)]
        )]
    );
    let kept = "(kept, inactive; it applies again if the target returns)";
    assert_eq!(
        eff.orphans(),
        [
            format!("removal of VIP `10.0.0.2:53/udp`: it is not in the configuration file {kept}"),
            format!(
                "removal of backend `10.0.1.3` of VIP `web`: VIP `web` is not in the configuration file {kept}"
            ),
            format!(
                "backend `b9` added at runtime to VIP `web`: VIP `web` is not in the configuration file {kept}"
            ),
            format!(
                "state drain set at runtime for backend `b1` of VIP `web`: no VIP `web` is in effect {kept}"
            ),
            format!(
                "weight 3 set at runtime for backend `b2` of VIP `web`: no VIP `web` is in effect {kept}"
            ),
        ]
    );
    // Changes go on meanwhile, and never drop the orphans.
    assert_eq!(
        set_state(&mut ov, &other, "other", "10.0.7.1", Drain),
        Ok(true)
    );
    assert_eq!(
        set_state(&mut ov, &other, "other", "10.0.7.1", Up),
        Ok(true)
    );
    assert_eq!(ov, saved);

    // `web` returns without b1 and 10.0.1.3: the weight of b2 applies again.
    let partial = config(
        &FILE
            .replace("      - {name: b1, address: 10.0.1.1, weight: 2}\n", "")
            .replace("      - {address: 10.0.1.3}\n", ""),
    );
    let eff = effective(&partial, &ov);
    assert_eq!(
        layout(&eff),
        [(
            "web".into(),
            Source::Config,
            vec![
                ("b2".into(), Source::Config),
                ("b9".into(), Source::Runtime)
            ]
        )]
    );
    assert_eq!(backend(&eff, "web", "b2").0.weight, 3);
    assert_eq!(
        eff.orphans(),
        [
            format!(
                "removal of backend `10.0.1.3` of VIP `web`: the configuration file has no such backend {kept}"
            ),
            format!(
                "state drain set at runtime for backend `b1` of VIP `web`: VIP `web` has no backend `b1` in effect {kept}"
            ),
        ]
    );

    // The original file: everything applies again.
    let eff = effective(&file, &ov);
    assert!(eff.orphans().is_empty(), "{:?}", eff.orphans());
    assert_eq!(
        layout(&eff),
        [(
            "web".into(),
            Source::Config,
            vec![
                ("b1".into(), Source::Config),
                ("b2".into(), Source::Config),
                ("b9".into(), Source::Runtime)
            ]
        )]
    );
    assert_eq!(backend(&eff, "web", "b1").0.state, Drain);
}

#[test]
fn runtime_entries_hide_file_entries_that_appear_later() {
    let file = file();
    let mut ov = Overrides::default();
    let api = AddVip {
        backends: vec![backend_req(Some("a1"), "10.0.5.1")],
        ..vip_req(Some("api"), "10.0.0.5", 443)
    };
    add_vip(&mut ov, &file, api).expect("add api");
    add_backend(&mut ov, &file, "web", backend_req(Some("b9"), "10.0.1.9")).expect("add b9");

    // The file gains a VIP named `api` elsewhere and a backend at b9's address.
    let later = config(&format!(
        "{}  - {{name: api, address: 10.0.0.6, port: 443, backends: [{{address: 10.0.6.1}}]}}\n",
        FILE.replace(
            "      - {address: 10.0.1.3}\n",
            "      - {address: 10.0.1.3}\n      - {name: nine, address: 10.0.1.9}\n"
        )
    ));
    let eff = effective(&later, &ov);
    assert_eq!(
        eff.shadowed(),
        [
            "backend `nine` of VIP `web` in the configuration file is hidden by backend `b9` added at runtime (same address); remove the runtime backend to use the file's",
            "VIP `api` of the configuration file is hidden by VIP `api` added at runtime (same name); remove the runtime VIP to use the file's",
        ]
    );
    let names: Vec<_> = layout(&eff)
        .into_iter()
        .map(|(n, s, b)| (n, s, b.len()))
        .collect();
    assert_eq!(
        names,
        [
            ("web".into(), Source::Config, 4),
            (DNS.into(), Source::Config, 1),
            ("api".into(), Source::Runtime, 1)
        ]
    );
    check(&eff.config).expect("the result is valid");

    // Removing the runtime entries brings the file's.
    assert_eq!(remove_vip(&mut ov, &later, "api"), Ok(true));
    assert_eq!(remove_backend(&mut ov, &later, "web", "b9"), Ok(true));
    assert!(ov.is_empty());
    assert_eq!(effective(&later, &ov).config, later);
}

#[test]
fn lookup_by_key_accepts_any_spelling_of_the_address() {
    let v6 = config(
        "interfaces: [{name: eth0}]\nvips:\n  - {address: '2001:db8::1', port: 443, backends: [{address: '2001:db8::10'}]}\n",
    );
    let eff = effective(&v6, &Overrides::default());
    assert_eq!(eff.config.vips[0].name, "[2001:db8::1]:443/tcp");
    for spelling in ["[2001:db8::1]:443/tcp", "[2001:db8:0:0::1]:443/tcp"] {
        assert_eq!(eff.find_vip(spelling), Ok(0), "{spelling}");
    }
    assert_eq!(
        eff.find_backend("[2001:db8::1]:443/tcp", "2001:db8:0::10"),
        Ok((0, 0))
    );
    assert_err(eff.find_vip("[2001:db8::1]:443"), 404, "no VIP");
    let empty = effective(&Config::default(), &Overrides::default());
    assert_err(empty.find_vip("web"), 404, "no VIPs are in effect");
}

/// `check` writes the configuration as YAML and parses it back: that must
/// give the same configuration, tricky spellings included.
#[test]
fn configurations_survive_the_yaml_round_trip() {
    let texts = [
        FILE,
        lb_config::DEFAULTS_DOC,
        "\
agent:
  bpffs: /sys/fs/bpf/lb2
  state_dir: /var/lib/lb2
  socket: /run/lb2.sock
  api_listen: '[::1]:9180'
  api_token_file: /etc/lb/token
  metrics_listen: null
  flow_table_size: 2048
  flow_idle_timeout: 1m30s
  ebpf_log: debug
  log_level: warn
interfaces:
  - name: eth0
  - {name: eth1, xdp_mode: generic}
vips:
  - name: 'yes'
    address: 10.77.100.1
    port: 80
    hash: source-port
    ring_size: 1009
    backends:
      - {address: 10.77.0.101, name: '123', port: 80, weight: 3, interface: eth1, mac: '02:00:00:00:00:01'}
      - {address: 10.77.0.102, name: '~', state: drain, weight: 0}
      - {address: 10.77.0.103, name: 'a: b #c', state: maint}
      - {address: 10.77.0.104, name: '[x]'}
      - {address: 10.77.0.105, name: 'null'}
  - address: 2001:db8::1
    port: 0
    protocol: udp
    backends:
      - {address: '2001:db8::10', port: 0}
      - address: 2001:db8::11
  - {name: '*star', address: 10.77.100.2, port: 0, backends: []}
  - {name: '0x1F', address: 10.77.100.3, port: 8080, protocol: udp}
",
    ];
    for text in texts {
        let c = config(text);
        let yaml = serde_yaml::to_string(&c).expect("serialize");
        let back = parse(&yaml, "<runtime>")
            .unwrap_or_else(|d| panic!("does not parse back:\n{d}\n---\n{yaml}"))
            .config;
        assert_eq!(back, c, "---\n{yaml}");
    }
}

/// The file format, as documented in the report: stable key order, empty
/// sections left out.
#[test]
fn json_format() {
    let file = file();
    let mut ov = Overrides::default();
    assert_eq!(
        serde_json::to_string(&ov).expect("json"),
        r#"{"version":1}"#
    );
    set_state(&mut ov, &file, "web", "b1", Drain).expect("drain");
    set_weight(&mut ov, &file, "web", "b2", 3).expect("weight");
    let api = AddVip {
        backends: vec![AddBackend {
            mac: Some("02:00:00:00:00:01".into()),
            ..backend_req(Some("a1"), "10.0.5.1")
        }],
        ring_size: Some(251),
        ..vip_req(Some("api"), "10.0.0.5", 443)
    };
    add_vip(&mut ov, &file, api).expect("add api");
    add_backend(&mut ov, &file, "web", backend_req(None, "10.0.1.9")).expect("add");
    remove_backend(&mut ov, &file, "web", "10.0.1.3").expect("remove");
    remove_vip(&mut ov, &file, DNS).expect("remove VIP");
    let want = serde_json::json!({
        "version": 1,
        "backend_overrides": {"web": {"b1": {"state": "drain"}, "b2": {"weight": 3}}},
        "added_vips": [{
            "name": "api", "address": "10.0.0.5", "port": 443, "protocol": "tcp",
            "mode": "dr", "hash": "source", "ring_size": 251,
            "backends": [{"name": "a1", "address": "10.0.5.1", "weight": 1, "state": "up",
                          "mac": "02:00:00:00:00:01"}]
        }],
        "added_backends": {"web": [{"name": "10.0.1.9", "address": "10.0.1.9", "weight": 1, "state": "up"}]},
        "removed_vips": ["10.0.0.2:53/udp"],
        "removed_backends": {"web": ["10.0.1.3"]}
    });
    assert_eq!(serde_json::to_value(&ov).expect("json"), want);
    let back: Overrides = serde_json::from_value(want).expect("reads back");
    assert_eq!(back, ov);
}
