//! Balancers against HAProxy 2.6: every expected sequence and server below
//! was recorded from Debian's haproxy 2.6.12 running the same backend
//! (servers `s1`… in that order with those weights), sequential requests.

use std::net::IpAddr;

use lb_config::proxy::{Balance, HashType, PoolL7};

use super::hash::HashKey;
use super::{Balancer, Pick};
use crate::servers::testing::{allocations, specs};
use crate::servers::{ServerSpec, ServerState};

fn cfg(balance: Balance, hash_type: HashType) -> PoolL7 {
    PoolL7 {
        balance,
        hash_type,
        ..PoolL7::default()
    }
}

fn rr(weights: &[u32]) -> (Balancer, Vec<ServerSpec>) {
    let (specs, _) = specs(weights);
    (
        Balancer::new(&cfg(Balance::RoundRobin, HashType::MapBased), &specs, None),
        specs,
    )
}

/// `n` picks without a key, as server numbers.
fn picks(b: &Balancer, n: usize) -> String {
    (0..n)
        .map(|_| name(b, b.pick_key(HashKey::Absent, None)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn name(b: &Balancer, p: Pick) -> String {
    match p {
        Pick::Server(id) => b
            .servers()
            .get(id)
            .map_or("?".into(), |s| s.name()[1..].to_string()),
        Pick::Full => "full".into(),
        Pick::NoServer => "none".into(),
    }
}

/// `s` repeated to `n` items.
fn cycle(s: &str, n: usize) -> String {
    s.split(' ').cycle().take(n).collect::<Vec<_>>().join(" ")
}

#[test]
fn roundrobin_order_is_haproxys() {
    let cases: [(&[u32], &str); 8] = [
        (&[6, 6], "1 2"),
        (&[1, 2, 3], "3 2 3 1 3 2"),
        (&[5, 1, 1], "1 1 1 2 1 1 3"),
        (&[1, 1, 1], "1 2 3"),
        (&[4, 3, 2], "1 2 1 3 2 1 1 2 3"),
        (&[10, 1], "1 1 1 1 1 1 1 1 1 1 2"),
        (&[3, 2, 1, 7], "4 4 1 4 2 4 1 4 3 4 2 1 4"),
        (&[2, 7, 1, 1, 5], "2 5 2 1 5 2 2 5 3 2 5 2 1 2 5 4"),
    ];
    for (weights, period) in cases {
        let (b, _) = rr(weights);
        assert_eq!(picks(&b, 60), cycle(period, 60), "weights {weights:?}");
    }
}

#[test]
fn roundrobin_heavy_weight_gives_the_light_server_one_turn_per_period() {
    let (b, _) = rr(&[256, 1]);
    let seq = picks(&b, 514);
    let light: Vec<usize> = seq
        .split(' ')
        .enumerate()
        .filter(|(_, s)| *s == "2")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(light, [256, 513]);
}

/// Applies `change` to the specs and rebuilds from `b`, as the agent does.
fn rebuild(
    b: &Balancer,
    specs: &mut [ServerSpec],
    change: impl FnOnce(&mut [ServerSpec]),
) -> Balancer {
    change(specs);
    Balancer::new(
        &cfg(Balance::RoundRobin, HashType::MapBased),
        specs,
        Some(b),
    )
}

#[test]
fn roundrobin_weight_change_applies_at_once_without_restarting() {
    let (b, mut s) = rr(&[1, 2, 3]);
    assert_eq!(picks(&b, 4), "3 2 3 1");
    let b = rebuild(&b, &mut s, |s| s[0].weight = 5);
    let after = "3 2 1 3 1 2 1 3 1 1 3 2 1 3 1 2 1 3 1 1 3 2 1 3 1 2 1 3 1 1";
    assert_eq!(picks(&b, 30), after);
}

#[test]
fn roundrobin_weight_zero_and_maintenance_take_a_server_out_in_place() {
    let (b, mut s) = rr(&[4, 3, 2]);
    assert_eq!(picks(&b, 5), "1 2 1 3 2");
    let b = rebuild(&b, &mut s, |s| s[1].weight = 0);
    assert_eq!(picks(&b, 20), "1 1 1 3 1 1 3 1 1 3 1 1 3 1 1 3 1 1 3 1");

    let (b, mut s) = rr(&[4, 3, 2]);
    assert_eq!(picks(&b, 5), "1 2 1 3 2");
    let b = rebuild(&b, &mut s, |s| s[2].state = ServerState::Maint);
    assert_eq!(picks(&b, 10), "1 1 2 1 2 1 1 2 1 2");
}

#[test]
fn roundrobin_server_back_from_maintenance_rejoins_the_sequence() {
    let (b, mut s) = rr(&[4, 3, 2]);
    assert_eq!(picks(&b, 7), "1 2 1 3 2 1 1");
    let b = rebuild(&b, &mut s, |s| s[2].state = ServerState::Maint);
    let b = rebuild(&b, &mut s, |s| s[2].state = ServerState::Up);
    let after = "2 1 2 1 3 2 1 1 2 3 1 2 1 3 2 1 1 2 3 1 2 1 3 2 1 1 2 3 1 2";
    assert_eq!(picks(&b, 30), after);
}

#[test]
fn roundrobin_two_weight_changes_at_once() {
    let (b, mut s) = rr(&[2, 7, 1, 1, 5]);
    assert_eq!(picks(&b, 9), "2 5 2 1 5 2 2 5 3");
    let b = rebuild(&b, &mut s, |s| {
        s[1].weight = 1;
        s[4].weight = 10;
    });
    let after = "4 5 5 1 5 5 5 5 1 5 2 5 5 5 3 4 5 5 1 5 5 5 5 1 5 2 5 5 5 3 4 5 5 1 5 5 5 5 1 5";
    assert_eq!(picks(&b, 40), after);
}

#[test]
fn roundrobin_follows_servers_added_and_removed_by_name() {
    let (b, mut s) = rr(&[1, 1, 1]);
    assert_eq!(picks(&b, 2), "1 2");
    let removed = s.remove(1);
    let b = Balancer::new(&cfg(Balance::RoundRobin, HashType::MapBased), &s, Some(&b));
    assert_eq!(picks(&b, 4), "3 1 3 1");
    s.push(removed);
    let b = Balancer::new(&cfg(Balance::RoundRobin, HashType::MapBased), &s, Some(&b));
    let seq = picks(&b, 30);
    for n in ["1", "2", "3"] {
        assert_eq!(seq.split(' ').filter(|x| *x == n).count(), 10, "{seq}");
    }
}

#[test]
fn static_rr_order_is_haproxys() {
    let cases: [(&[u32], &str); 6] = [
        (&[6, 6], "1 2"),
        (&[1, 2, 3], "1 3 2 3 2 3"),
        (&[5, 1, 1], "1 1 1 2 1 1 3"),
        (&[4, 3, 2], "1 2 1 2 3 1 1 2 3"),
        (&[3, 2, 1, 7], "1 4 2 4 1 4 2 4 1 4 3 4 4"),
        (&[2, 7, 1, 1, 5], "1 2 2 5 2 3 5 1 2 5 2 2 5 2 4 5"),
    ];
    for (weights, period) in cases {
        let (specs, _) = specs(weights);
        let b = Balancer::new(&cfg(Balance::StaticRr, HashType::MapBased), &specs, None);
        assert_eq!(picks(&b, 48), cycle(period, 48), "weights {weights:?}");
    }
}

#[test]
fn unusable_servers_are_never_picked() {
    for state in [ServerState::Drain, ServerState::Down, ServerState::Maint] {
        for balance in [
            Balance::RoundRobin,
            Balance::StaticRr,
            Balance::LeastConn,
            Balance::Source,
        ] {
            let (mut s, _) = specs(&[1, 1, 1]);
            s[0].state = state;
            s[2].weight = 0;
            let b = Balancer::new(&cfg(balance.clone(), HashType::MapBased), &s, None);
            assert_eq!(picks(&b, 6), "2 2 2 2 2 2", "{balance:?} with s1 {state:?}");
        }
    }
}

#[test]
fn no_usable_server_is_no_server() {
    let (mut s, _) = specs(&[1, 1]);
    s[0].state = ServerState::Down;
    s[1].weight = 0;
    for balance in [
        Balance::RoundRobin,
        Balance::StaticRr,
        Balance::LeastConn,
        Balance::Uri,
    ] {
        let b = Balancer::new(&cfg(balance, HashType::Consistent), &s, None);
        assert_eq!(b.pick_key(HashKey::Absent, None), Pick::NoServer);
    }
}

#[test]
fn round_robins_skip_full_servers_and_report_all_full() {
    for balance in [Balance::RoundRobin, Balance::StaticRr, Balance::LeastConn] {
        let (mut s, counts) = specs(&[1, 1, 1]);
        for spec in &mut s {
            spec.maxconn = Some(2);
        }
        let b = Balancer::new(&cfg(balance.clone(), HashType::MapBased), &s, None);
        counts[0].set(2, 0);
        counts[2].set(1, 1);
        assert_eq!(picks(&b, 3), "2 2 2", "{balance:?}");
        counts[1].set(2, 0);
        assert_eq!(picks(&b, 1), "full", "{balance:?}");
    }
}

#[test]
fn avoid_is_taken_only_when_nothing_else_will_do() {
    for balance in [Balance::RoundRobin, Balance::StaticRr, Balance::LeastConn] {
        let (s, _) = specs(&[1, 1]);
        let b = Balancer::new(&cfg(balance.clone(), HashType::MapBased), &s, None);
        let s1 = b.servers().find("s1");
        for _ in 0..4 {
            assert_eq!(
                name(&b, b.pick_key(HashKey::Absent, s1)),
                "2",
                "{balance:?}"
            );
        }
        let (s, _) = specs(&[1]);
        let b = Balancer::new(&cfg(balance.clone(), HashType::MapBased), &s, None);
        assert_eq!(
            name(&b, b.pick_key(HashKey::Absent, b.servers().find("s1"))),
            "1"
        );
    }
}

#[test]
fn leastconn_picks_the_lowest_load_per_weight() {
    let (s, counts) = specs(&[1, 3, 1]);
    let b = Balancer::new(&cfg(Balance::LeastConn, HashType::MapBased), &s, None);
    counts[0].set(1, 0); // (1 + 1) × 256 / 1 = 512
    counts[1].set(2, 0); // (2 + 1) × 256 / 3 = 256
    counts[2].set(1, 1); // (2 + 1) × 256 / 1 = 768
    assert_eq!(picks(&b, 2), "2 2");
    counts[1].set(6, 0); // 7 × 256 / 3 = 597
    assert_eq!(picks(&b, 1), "1");
    counts[2].set(0, 0); // idle: 0, whatever the weight
    assert_eq!(picks(&b, 1), "3");
}

#[test]
fn leastconn_ties_rotate() {
    let (s, counts) = specs(&[1, 5, 1]);
    let b = Balancer::new(&cfg(Balance::LeastConn, HashType::MapBased), &s, None);
    assert_eq!(picks(&b, 6), "1 2 3 1 2 3");
    for c in &counts {
        c.set(3, 0);
    }
    counts[1].set(15, 0); // 16 × 256 / 5 = 819, below the others' 4 × 256 = 1024
    assert_eq!(picks(&b, 2), "2 2");
}

fn source(b: &Balancer, ips: &[&str]) -> String {
    ips.iter()
        .map(|ip| {
            let ip: IpAddr = ip.parse().unwrap();
            format!("{ip}={}", name(b, b.pick_key(HashKey::Source(ip), None)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const CLIENTS: [&str; 7] = [
    "127.0.0.1",
    "127.0.0.2",
    "127.0.0.3",
    "127.0.0.10",
    "127.1.2.3",
    "127.0.0.77",
    "127.200.0.9",
];

#[test]
fn source_lands_where_haproxy_sends_it() {
    let cases = [
        (HashType::MapBased, &[1, 1, 1][..], "3 1 2 3 2 1 1"),
        (HashType::MapBased, &[2, 3, 1], "3 1 2 1 2 2 2"),
        (HashType::Consistent, &[1, 1, 1], "2 1 3 3 3 3 2"),
        (HashType::Consistent, &[2, 3, 1], "2 1 2 2 2 3 2"),
    ];
    for (hash_type, weights, expected) in cases {
        let (s, _) = specs(weights);
        let b = Balancer::new(&cfg(Balance::Source, hash_type), &s, None);
        let want: Vec<String> = CLIENTS
            .iter()
            .zip(expected.split(' '))
            .map(|(c, e)| format!("{c}={e}"))
            .collect();
        assert_eq!(
            source(&b, &CLIENTS),
            want.join(" "),
            "{hash_type:?} {weights:?}"
        );
    }
}

#[test]
fn ipv6_source_lands_where_haproxy_sends_it() {
    // Recorded with the clients' addresses on `lo` in a network namespace.
    let clients = [
        "2001:db8::1:0:0:1",
        "2001:db8::5",
        "fd00::abcd:1234",
        "2002:c000:204::1",
        "::1",
    ];
    for (hash_type, expected) in [
        (HashType::MapBased, "3 2 2 3 2"),
        (HashType::Consistent, "1 2 3 2 3"),
    ] {
        let (s, _) = specs(&[1, 1, 1]);
        let b = Balancer::new(&cfg(Balance::Source, hash_type), &s, None);
        assert_eq!(
            source(&b, &clients),
            expect(&clients, expected),
            "{hash_type:?}"
        );
    }
}

#[test]
fn source_reads_ipv4_mapped_ipv6_as_ipv4() {
    let (s, _) = specs(&[1, 1, 1]);
    let b = Balancer::new(&cfg(Balance::Source, HashType::MapBased), &s, None);
    assert_eq!(source(&b, &["::ffff:127.0.0.1"]), "::ffff:127.0.0.1=3");
}

/// Requests for `targets`, each as `target=server`.
fn by_request(
    b: &Balancer,
    build: impl Fn(&str) -> hyper::http::request::Parts,
    targets: &[&str],
) -> String {
    let client: IpAddr = "192.0.2.1".parse().unwrap();
    targets
        .iter()
        .map(|t| {
            let head = build(t);
            format!("{t}={}", name(b, b.pick(client, Some(&head), None)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn get(target: &str) -> hyper::http::request::Parts {
    hyper::Request::get(target).body(()).unwrap().into_parts().0
}

fn with_header(value: &str) -> hyper::http::request::Parts {
    let mut req = hyper::Request::get("/");
    if value != "-" {
        req = req.header("X-Key", value);
    }
    req.body(()).unwrap().into_parts().0
}

fn expect(keys: &[&str], servers: &str) -> String {
    keys.iter()
        .zip(servers.split(' '))
        .map(|(k, s)| format!("{k}={s}"))
        .collect::<Vec<_>>()
        .join(" ")
}

const URIS: [&str; 12] = [
    "/",
    "/index.html",
    "/static/app.js",
    "/a/b/c?x=1",
    "/a/b/c?y=2",
    "/img/logo.png",
    "/api/v1/users",
    "/x",
    "/y",
    "/z",
    "/q1",
    "/q2",
];

#[test]
fn uri_lands_where_haproxy_sends_it() {
    let cases = [
        (HashType::MapBased, &[1, 1, 1][..], "3 1 3 3 3 1 3 3"),
        (HashType::MapBased, &[6, 6], "2 1 1 2 2 2 1 2"),
        (HashType::Consistent, &[1, 2, 3], "2 3 2 1 1 2 2 3"),
        (
            HashType::Consistent,
            &[1, 1, 1, 1],
            "2 4 1 1 1 2 3 4 1 3 1 1",
        ),
    ];
    for (hash_type, weights, expected) in cases {
        let (s, _) = specs(weights);
        let b = Balancer::new(&cfg(Balance::Uri, hash_type), &s, None);
        let n = expected.split(' ').count();
        assert_eq!(
            by_request(&b, get, &URIS[..n]),
            expect(&URIS[..n], expected),
            "{hash_type:?} {weights:?}"
        );
    }
}

#[test]
fn a_server_out_of_the_map_or_ring_moves_keys_as_under_haproxy() {
    // s2 disabled: the consistent ring moves only s2's keys; the map moves most.
    for (hash_type, expected) in [
        (HashType::Consistent, "1 4 1 1 1 3 3 4 1 3 1 1"),
        (HashType::MapBased, "4 1 4 4 4 1 4 4 1 3 1 3"),
    ] {
        let (mut s, _) = specs(&[1, 1, 1, 1]);
        s[1].state = ServerState::Maint;
        let b = Balancer::new(&cfg(Balance::Uri, hash_type), &s, None);
        assert_eq!(
            by_request(&b, get, &URIS),
            expect(&URIS, expected),
            "{hash_type:?}"
        );
    }
}

#[test]
fn consistent_ring_moves_only_the_keys_of_a_server_that_leaves() {
    let (mut s, _) = specs(&[1, 2, 1, 3, 1]);
    let cfg = cfg(Balance::Uri, HashType::Consistent);
    let before = Balancer::new(&cfg, &s, None);
    let keys: Vec<String> = (0..2000).map(|i| format!("/k/{i}")).collect();
    let on =
        |b: &Balancer, k: &str| name(b, b.pick(IpAddr::from([0, 0, 0, 0]), Some(&get(k)), None));
    let was: Vec<String> = keys.iter().map(|k| on(&before, k)).collect();
    let gone = s.remove(3);
    let after = Balancer::new(&cfg, &s, Some(&before));
    let mut moved = 0;
    for (k, w) in keys.iter().zip(&was) {
        let now = on(&after, k);
        if *w == gone.name[1..] {
            moved += 1;
        } else {
            assert_eq!(now, *w, "{k} moved though its server stayed");
        }
    }
    // s4 had weight 3 of 8: about 3/8 of the keys, none of the others'.
    assert!((500..1000).contains(&moved), "{moved} keys were on s4");
}

#[test]
fn url_param_lands_where_haproxy_sends_it_and_falls_back_to_round_robin() {
    let name_cfg = |t| cfg(Balance::UrlParam("user".into()), t);
    let (s, _) = specs(&[1, 1, 1]);
    let b = Balancer::new(&name_cfg(HashType::MapBased), &s, None);
    let targets = [
        "/p?user=alice",
        "/p?user=bob",
        "/p?a=1&user=carol",
        "/p?user=",
        "/p?users=x",
        "/p?x=1;user=dave",
        "/p?user=alice",
    ];
    assert_eq!(
        by_request(&b, get, &targets),
        expect(&targets, "3 3 2 1 1 2 3")
    );

    let (s, _) = specs(&[1, 1, 1, 1]);
    let b = Balancer::new(&name_cfg(HashType::Consistent), &s, None);
    let targets = [
        "/p?user=alice",
        "/p?user=bob",
        "/p?a=1&user=carol",
        "/p?user=eve",
    ];
    assert_eq!(by_request(&b, get, &targets), expect(&targets, "4 1 2 1"));
}

#[test]
fn hdr_lands_where_haproxy_sends_it_and_falls_back_to_round_robin() {
    let hdr_cfg = |t| cfg(Balance::Hdr("X-Key".into()), t);
    let (s, _) = specs(&[1, 1, 1]);
    let b = Balancer::new(&hdr_cfg(HashType::MapBased), &s, None);
    let values = [
        "alice",
        "bob",
        "carol",
        "alice, bob",
        " alice ",
        "-",
        "dave",
    ];
    assert_eq!(
        by_request(&b, with_header, &values),
        expect(&values, "3 3 2 3 3 1 1")
    );

    let b = Balancer::new(&hdr_cfg(HashType::Consistent), &s, None);
    let values = ["alice", "bob", "carol", "dave"];
    assert_eq!(
        by_request(&b, with_header, &values),
        expect(&values, "1 1 2 1")
    );

    // No header at all, six times: the ring's own round robin.
    let b = Balancer::new(&hdr_cfg(HashType::Consistent), &s, None);
    assert_eq!(picks(&b, 6), "3 3 2 1 3 1");
}

#[test]
fn a_tcp_connection_falls_back_for_http_hashes() {
    let (s, _) = specs(&[1, 1, 1]);
    let b = Balancer::new(&cfg(Balance::Uri, HashType::MapBased), &s, None);
    let client: IpAddr = "192.0.2.1".parse().unwrap();
    let seq: Vec<String> = (0..3)
        .map(|_| name(&b, b.pick(client, None, None)))
        .collect();
    assert_eq!(seq, ["1", "2", "3"]);
}

#[test]
fn consistent_hash_avoids_the_failed_server_for_the_next_point() {
    let (s, _) = specs(&[1, 1, 1]);
    let b = Balancer::new(&cfg(Balance::Uri, HashType::Consistent), &s, None);
    let head = get("/index.html");
    let client = IpAddr::from([0, 0, 0, 0]);
    let Pick::Server(first) = b.pick(client, Some(&head), None) else {
        panic!("no server")
    };
    let Pick::Server(other) = b.pick(client, Some(&head), Some(first)) else {
        panic!("no server")
    };
    assert_ne!(first, other);
}

#[test]
fn hash_returns_its_server_even_when_full() {
    let (mut s, counts) = specs(&[1, 1, 1]);
    for spec in &mut s {
        spec.maxconn = Some(1);
    }
    let b = Balancer::new(&cfg(Balance::Source, HashType::MapBased), &s, None);
    counts[2].set(1, 3);
    assert_eq!(source(&b, &["127.0.0.1"]), "127.0.0.1=3");
}

#[test]
fn large_weights_keep_their_proportions() {
    let (s, _) = specs(&[3000, 1000]);
    for balance in [Balance::RoundRobin, Balance::StaticRr] {
        let b = Balancer::new(&cfg(balance.clone(), HashType::MapBased), &s, None);
        let seq = picks(&b, 4000);
        assert_eq!(
            seq.split(' ').filter(|x| *x == "1").count(),
            3000,
            "{balance:?}"
        );
    }
    let b = Balancer::new(&cfg(Balance::Uri, HashType::Consistent), &s, None);
    let on_1 = (0..4000)
        .filter(|i| {
            name(
                &b,
                b.pick(
                    IpAddr::from([0, 0, 0, 0]),
                    Some(&get(&format!("/{i}"))),
                    None,
                ),
            ) == "1"
        })
        .count();
    assert!(
        (2700..3300).contains(&on_1),
        "{on_1} of 4000 on the server of weight 3000"
    );
}

#[test]
fn queue_first_for_round_robins_only() {
    let (s, _) = specs(&[1]);
    let q = |balance| Balancer::new(&cfg(balance, HashType::MapBased), &s, None).queue_first();
    assert!(q(Balance::RoundRobin) && q(Balance::StaticRr));
    assert!(!q(Balance::LeastConn) && !q(Balance::Source) && !q(Balance::Uri));
}

#[test]
fn picks_allocate_nothing() {
    let cases = [
        (Balance::RoundRobin, HashType::MapBased),
        (Balance::StaticRr, HashType::MapBased),
        (Balance::LeastConn, HashType::MapBased),
        (Balance::Uri, HashType::MapBased),
        (Balance::Uri, HashType::Consistent),
        (Balance::Hdr("x-key".into()), HashType::Consistent),
        (Balance::UrlParam("u".into()), HashType::MapBased),
    ];
    let heads = [get("/a/b?u=1"), with_header("k"), get("/")];
    let client: IpAddr = "192.0.2.1".parse().unwrap();
    for (balance, hash_type) in cases {
        let (s, _) = specs(&[3, 1, 2]);
        let b = Balancer::new(&cfg(balance.clone(), hash_type), &s, None);
        let mut found = 0;
        let n = allocations(|| {
            for _ in 0..20 {
                for head in &heads {
                    found +=
                        usize::from(matches!(b.pick(client, Some(head), None), Pick::Server(_)));
                }
            }
        });
        assert_eq!((n, found), (0, 60), "{balance:?} {hash_type:?}");
    }
}
