//! A VRRP backup forwards nothing flooded to it (docs/vrrp.md, "How the data
//! path and listeners follow ownership"). Two lb agents on the lab's segment,
//! both with the VIP's service loaded in XDP; the switch is made a hub (it
//! forgets every MAC at once), so every frame for the master, and every
//! frame the master sends a backend, reaches the backup's XDP program too.
//! The backup must pass them (its kernel drops them as not its own); only the
//! master forwards. Needs root and the lb-ctl binary.

use std::net::SocketAddr;
use std::time::Duration;

use lb_tests::http::http_get;
use lb_tests::vrrp::{LbNode, Pair};
use lb_tests::vrrp_conf::Router;

const T: Duration = Duration::from_secs(10);

#[test]
fn a_backup_passes_frames_flooded_to_it() {
    flooded(false);
}

/// With `use_vmac` the frames go to 00-00-5E-00-01-33, a MAC both nodes
/// have (the macvlan is up on both); only the master's data path holds it.
#[test]
fn a_backup_passes_frames_to_a_virtual_mac_it_does_not_hold() {
    flooded(true);
}

fn flooded(vmac: bool) {
    let pair = Pair::new(false).unwrap();
    let extra = if vmac { "      use_vmac: true\n" } else { "" };
    let node = |n: usize, priority: u8| {
        let r = Router::new(3, priority, 1000);
        let node = LbNode::start(pair.node(n), &format!("{}{extra}", r.lb_yaml(&pair.lab)));
        node.unwrap()
    };
    let master = node(1, 150);
    let state = |n: &LbNode, s: &str| {
        n.wait_state("VI_1", s, T)
            .unwrap_or_else(|e| panic!("{e}\n{}", n.log()))
    };
    state(&master, "master");
    let backup = node(2, 100);
    state(&backup, "backup");
    pair.lab
        .sw()
        .ip(&["link", "set", "br0", "type", "bridge", "ageing_time", "0"])
        .unwrap();

    let vip = SocketAddr::new(pair.lab.vip(false), 80);
    let client = &pair.lab.client().ns;
    for i in 0..20 {
        http_get(client, None, vip, T).unwrap_or_else(|e| panic!("request {i}: {e:#}"));
    }
    let (m, b) = (master.reasons(), backup.reasons());
    let n = |r: &std::collections::BTreeMap<String, u64>, k: &str| r.get(k).copied().unwrap_or(0);
    assert!(n(&m, "tx") > 0, "the master forwards: {m:?}");
    assert!(
        n(&b, "pass_other_host") > 0,
        "the backup saw the flooded frames: {b:?}"
    );
    assert_eq!(
        n(&b, "tx") + n(&b, "redirect"),
        0,
        "the backup forwarded frames sent to another node: {b:?}"
    );
    if vmac {
        // The client reached the VIP through the virtual MAC, which the
        // master's data path holds.
        let neigh = client.ip(&["neigh", "show", "10.77.100.1"]).unwrap();
        assert!(neigh.contains("00:00:5e:00:01:33"), "{neigh}");
    }
}

/// The case the switch floods by itself: the master's link goes down, the
/// bridge forgets its MAC and floods the client's frames for it to every
/// port. Until the backup has taken over (Master_Down_Interval), nobody
/// serves the VIP: the backup passes those frames instead of forwarding
/// them, and forwards once it is master.
#[test]
fn a_backup_forwards_nothing_while_the_masters_link_is_down() {
    let pair = Pair::new(false).unwrap();
    let node = |n: usize, priority: u8| {
        let r = Router::new(3, priority, 1000);
        LbNode::start(pair.node(n), &r.lb_yaml(&pair.lab)).unwrap()
    };
    let master = node(1, 150);
    master.wait_state("VI_1", "master", T).unwrap();
    let backup = node(2, 100);
    backup.wait_state("VI_1", "backup", T).unwrap();
    let vip = SocketAddr::new(pair.lab.vip(false), 80);
    let client = &pair.lab.client().ns;
    http_get(client, None, vip, T).expect("served before the link goes down");

    pair.node(1).ip(&["link", "set", "eth0", "down"]).unwrap();
    let before = backup.reasons();
    let short = Duration::from_millis(100);
    let mut refused = 0;
    // The counters as last read before the backup took the address (it
    // announces it, and clients send it frames, only after).
    let mut after = before.clone();
    loop {
        let now = backup.reasons();
        if pair.holds(2, vip.ip()) {
            break;
        }
        after = now;
        if http_get(client, None, vip, short).is_err() {
            refused += 1;
        }
    }
    let moved = |k: &str| after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
    assert!(refused > 0, "no request was tried while the backup waited");
    assert!(
        moved("pass_other_host") > 0,
        "nothing flooded to the backup: {after:?}"
    );
    assert_eq!(
        moved("tx") + moved("redirect"),
        0,
        "the backup forwarded: {after:?}"
    );
    backup.wait_state("VI_1", "master", T).unwrap();
    http_get(client, None, vip, T).expect("the new master serves");
}
