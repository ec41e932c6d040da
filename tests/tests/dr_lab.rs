//! The DR data path on the netns rig (docs/testing.md) with real TCP: a client
//! namespace, the LB namespace with XDP on its veth, three backends with the
//! VIP on `lo` answering HTTP with their names. Needs root.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use lb_common::consts::state;
use lb_tests::{
    http::{HttpConn, http_get},
    lab::{Lab, LabSpec},
    lb::{InProcessLb, TestVip},
};

const T: Duration = Duration::from_secs(5);

fn lab(aliases: usize) -> (Lab, Vec<lb_tests::http::HttpBackend>) {
    let lab = Lab::new(LabSpec {
        backends: 3,
        client_aliases: aliases,
        ipv6: true,
    })
    .expect("building the lab (needs root)");
    let http = lab.start_http(80).expect("starting HTTP backends");
    (lab, http)
}

fn get(lab: &Lab, src: IpAddr, vip: IpAddr) -> String {
    http_get(&lab.client().ns, Some(src), SocketAddr::new(vip, 80), T)
        .unwrap_or_else(|e| panic!("GET http://{vip}/ from {src}: {e:#}"))
}

#[test]
fn every_backend_serves_and_each_client_sticks_to_the_predicted_one() {
    let (lab, _http) = lab(60);
    for ipv6 in [false, true] {
        let vip = TestVip::tcp(&lab, ipv6, 80);
        let lb = InProcessLb::start(&lab, vec![vip.clone()]).unwrap();
        let clients: Vec<IpAddr> = if ipv6 {
            lab.client_aliases6()
                .into_iter()
                .map(IpAddr::from)
                .collect()
        } else {
            lab.client_aliases4()
                .into_iter()
                .map(IpAddr::from)
                .collect()
        };
        let mut served: BTreeMap<String, usize> = BTreeMap::new();
        for &c in &clients {
            let first = get(&lab, c, vip.addr);
            for _ in 0..2 {
                assert_eq!(
                    get(&lab, c, vip.addr),
                    first,
                    "{c} moved between connections"
                );
            }
            let predicted = lb.predict(&vip, c, 0).unwrap();
            assert_eq!(
                first, predicted,
                "{c}: served by {first}, the shared hash says {predicted}"
            );
            *served.entry(first).or_default() += 1;
        }
        assert_eq!(
            served.len(),
            3,
            "ipv6={ipv6}: all three backends serve: {served:?}"
        );
        drop(lb);
        // Detached again: the VIP is the LB host's own address now, and nothing listens there.
        assert!(
            http_get(
                &lab.client().ns,
                Some(clients[0]),
                SocketAddr::new(vip.addr, 80),
                Duration::from_secs(1)
            )
            .is_err()
        );
    }
}

#[test]
fn connections_spread_by_weight_within_ten_percent() {
    let (lab, http) = lab(1200);
    let mut vip = TestVip::tcp(&lab, false, 80);
    for (b, w) in vip.backends.iter_mut().zip([1, 2, 3]) {
        b.weight = w;
    }
    let lb = InProcessLb::start(&lab, vec![vip.clone()]).unwrap();
    let clients = lab.client_aliases4();
    for &c in &clients {
        get(&lab, c.into(), vip.addr);
    }
    let total: u64 = http.iter().map(|h| h.requests()).sum();
    assert_eq!(total, clients.len() as u64);
    for (h, w) in http.iter().zip([1.0, 2.0, 3.0]) {
        let want = total as f64 * w / 6.0;
        let got = h.requests() as f64;
        assert!(
            (got - want).abs() <= 0.1 * want,
            "{}: {got} requests, weight share {want:.0}",
            h.name()
        );
    }
    // And the in-kernel counters saw every new flow.
    let vip_id = lb.actual.vips[&vip.key()].id;
    assert_eq!(lb.dp.vip_counters(vip_id).unwrap().new_flows, total);
}

#[test]
fn drain_keeps_open_connections_and_down_moves_them() {
    let (lab, http) = lab(200);
    let vip = TestVip::tcp(&lab, false, 80);
    let mut lb = InProcessLb::start(&lab, vec![vip.clone()]).unwrap();
    let clients: Vec<IpAddr> = lab
        .client_aliases4()
        .into_iter()
        .map(IpAddr::from)
        .collect();

    // A long-lived keep-alive connection, and the backend serving it.
    let mut conn = HttpConn::open(
        &lab.client().ns,
        Some(clients[0]),
        SocketAddr::new(vip.addr, 80),
    )
    .unwrap();
    let victim = conn.get().unwrap();
    let victim_http = http.iter().find(|h| h.name() == victim).unwrap();
    let victim_clients: Vec<IpAddr> = clients
        .iter()
        .copied()
        .filter(|&c| lb.predict(&vip, c, 0).as_deref() == Some(victim.as_str()))
        .collect();
    assert!(victim_clients.len() > 20, "enough clients hash to {victim}");

    lb.set_state(&victim, state::DRAIN).unwrap();
    let before = victim_http.connections();
    for &c in &clients {
        assert_ne!(
            get(&lab, c, vip.addr),
            victim,
            "{c}: a new connection reached drained {victim}"
        );
    }
    assert_eq!(
        victim_http.connections(),
        before,
        "no new connection reached {victim}"
    );
    for _ in 0..3 {
        assert_eq!(
            conn.get().unwrap(),
            victim,
            "the open connection keeps its drained backend"
        );
    }

    // Down: new connections still avoid it, and the open flow is re-hashed
    // to a backend that never saw its handshake (which resets it).
    lb.set_state(&victim, state::DOWN).unwrap();
    for &c in &victim_clients {
        assert_ne!(get(&lab, c, vip.addr), victim);
    }
    assert!(
        conn.get().is_err(),
        "the flow of a down backend is re-hashed, not kept"
    );

    // Back up: its clients return to it.
    lb.set_state(&victim, state::UP).unwrap();
    for &c in victim_clients.iter().take(10) {
        assert_eq!(get(&lab, c, vip.addr), victim);
    }
}
