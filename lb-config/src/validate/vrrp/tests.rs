//! `vrrp:`: the seed's keepalived instance, defaults, and each error at its place.

use std::time::Duration;

use crate::tests::{errors, ok};
use crate::vrrp::*;

/// The users' keepalived.conf, key for key.
const SEED: &str = "\
pools:
  web:
    backends: [{address: 192.168.31.66}]
vrrp:
  track_scripts:
    chk_nginx: {script: \"/data/shell/check_nginx.sh\", interval: 2, weight: 2}
  instances:
    VI_1:
      state: MASTER
      interface: eth0
      virtual_router_id: 51
      mcast_src_ip: 192.168.60.93
      priority: 100
      advert_int: 1
      authentication: {auth_type: PASS, auth_pass: xiaoqi}
      virtual_ipaddress:
        - 192.168.60.88
      track_script: [chk_nginx]
";

#[test]
fn the_seed_instance_reads_as_keepalived_means_it() {
    let c = ok(SEED).config.vrrp;
    let i = &c.instances[0];
    assert_eq!(
        (i.name.as_str(), i.interface.as_str(), i.vrid, i.priority),
        ("VI_1", "eth0", 51, 100)
    );
    assert_eq!(
        (i.version, i.initial, i.advert_int),
        (
            VrrpVersion::V2,
            InitialState::Master,
            Duration::from_secs(1)
        )
    );
    assert_eq!(i.source, Some("192.168.60.93".parse().unwrap()));
    assert_eq!(i.auth_pass.as_deref(), Some("xiaoqi"));
    assert_eq!(i.addresses[0].prefix, 32);
    assert!(i.preempt && i.peers.is_empty() && !i.use_vmac);
    assert_eq!(i.garp, GarpConfig::default());
    assert_eq!(
        i.track_scripts,
        [TrackScriptRef {
            name: "chk_nginx".into(),
            weight: None
        }]
    );
    let s = c.script("chk_nginx").unwrap();
    assert_eq!(s.command, ["/data/shell/check_nginx.sh"]);
    assert_eq!(
        (s.interval, s.timeout, s.weight, s.rise, s.fall),
        (Duration::from_secs(2), Duration::from_secs(2), 2, 1, 1)
    );
}

#[test]
fn v3_unicast_and_tracking() {
    let c = ok("\
pools: {web: {backends: [{address: 2001:db8::5}]}}
vrrp:
  version: 3
  instances:
    V6:
      interface: eth1
      virtual_router_id: 7
      advert_int: 100ms
      unicast_peer: [fe80::2]
      virtual_ipaddress: ['2001:db8::1/64 dev eth2']
      nopreempt: true
      track_interface: [eth1, {name: eth3, weight: -20}]
      track_pool: [{name: web, weight: -60}]
      notify: [/etc/lb/vrrp.sh, x]
      notify_master: /etc/lb/master.sh --now
  sync_groups:
    G: [V6]
")
    .config
    .vrrp;
    let i = &c.instances[0];
    assert_eq!(
        (i.version, i.advert_int),
        (VrrpVersion::V3, Duration::from_millis(100))
    );
    assert_eq!(
        i.peers, i.unicast_peers,
        "unicast peers are the accepted sources"
    );
    assert!(!i.preempt && i.is_ipv6());
    assert_eq!(i.addresses[0].dev.as_deref(), Some("eth2"));
    assert_eq!(
        i.track_interfaces[1],
        TrackInterface {
            name: "eth3".into(),
            weight: -20
        }
    );
    assert_eq!(i.track_pools[0].weight, -60);
    assert_eq!(
        i.notify.master.as_deref(),
        Some(&["/etc/lb/master.sh".to_owned(), "--now".to_owned()][..])
    );
    assert_eq!(c.group_of("V6").map(|g| g.name.as_str()), Some("G"));
}

fn one(keys: &str) -> String {
    format!(
        "vrrp:\n  instances:\n    VI_1:\n      interface: eth0\n      virtual_router_id: 51\n      virtual_ipaddress: [10.0.0.1]\n{keys}"
    )
}

#[test]
fn each_error_is_located() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "      priority: 0\n",
            (7, 17),
            "priority 0 is out of range 1..=255",
        ),
        (
            "      advert_int: 0.5\n",
            (7, 19),
            "VRRPv2 adverts carry whole seconds",
        ),
        (
            "      version: 3\n      advert_int: 0.005\n",
            (8, 19),
            "centiseconds",
        ),
        ("      version: 4\n", (7, 16), "versions are 2"),
        (
            "      state: LEADER\n",
            (7, 14),
            "expected `MASTER` or `BACKUP`",
        ),
        (
            "      version: 3\n      authentication: {auth_type: PASS, auth_pass: x}\n",
            (8, 23),
            "VRRPv3 has no authentication",
        ),
        (
            "      authentication: {auth_type: AH, auth_pass: x}\n",
            (7, 35),
            "AH is not supported",
        ),
        (
            "      authentication: {auth_type: PASS}\n",
            (7, 23),
            "needs a non-empty",
        ),
        (
            "      mcast_src_ip: 2001:db8::2\n",
            (7, 21),
            "not of the instance's family",
        ),
        (
            "      track_script: [nope]\n",
            (7, 22),
            "unknown track script `nope`",
        ),
        ("      track_pool: [nope]\n", (7, 20), "unknown pool `nope`"),
        (
            "      track_interface: [{name: eth1, weight: 300}]\n",
            (7, 46),
            "weight 300 is out of range",
        ),
        (
            "      notify_master: master.sh\n",
            (7, 22),
            "must be an absolute path",
        ),
        ("      smtp_alert: true\n", (7, 19), "set `notify.email`"),
        ("      colour: red\n", (7, 7), "unknown key `colour`"),
    ];
    for (keys, (line, col), want) in cases {
        let text = one(keys);
        let got = errors(&text);
        assert_eq!(got.len(), 1, "{keys}: {got:#?}");
        let (l, c, msg) = &got[0];
        assert!(msg.contains(want), "{keys}: {msg}");
        assert_eq!((*l, *c), (*line, *col), "{keys}: {msg}");
    }
}

#[test]
fn whole_section_rules() {
    let missing = errors("vrrp:\n  instances:\n    VI_1: {priority: 3}\n");
    let msgs: Vec<&str> = missing.iter().map(|(_, _, m)| m.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "missing required key `interface`",
            "missing required key `virtual_router_id`",
            "missing required key `virtual_ipaddress`"
        ]
    );
    let dup = one(
        "    VI_2:\n      interface: eth0\n      virtual_router_id: 51\n      virtual_ipaddress: [10.0.0.2]\n",
    );
    let got = errors(&dup);
    assert!(
        got[0]
            .2
            .contains("virtual_router_id 51 is already used on eth0"),
        "{got:?}"
    );
    assert_eq!((got[0].0, got[0].1), (9, 26));
    let mixed = errors(&one("").replace("[10.0.0.1]", "[10.0.0.1, '2001:db8::1']"));
    assert!(mixed[0].2.contains("of one family"), "{mixed:?}");
    let v2v6 = errors(&one("").replace("[10.0.0.1]", "['2001:db8::1']"));
    assert!(v2v6[0].2.contains("VRRPv2 is IPv4 only"), "{v2v6:?}");
    let group = errors(&format!("{}  sync_groups:\n    G: [VI_1, VI_9]\n", one("")));
    assert!(group[0].2.contains("unknown instance `VI_9`"), "{group:?}");
}
