//! The netns rig on its own, with no load balancer: the topology, addressing, ARP/NDP ownership of
//! the VIPs, the HTTP backends and cleanup. Needs root (run with `cargo nextest run -p lb-tests
//! --test rig`; nextest runs tests as concurrent processes, which also exercises unique prefixes).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lb_tests::http::{HttpBackend, HttpConn, http_get};
use lb_tests::lab::{self, Lab, LabSpec};
use lb_tests::netns::{self, NetNs};

const TIMEOUT: Duration = Duration::from_secs(5);

fn lab(spec: LabSpec) -> Lab {
    Lab::new(spec).unwrap_or_else(|e| panic!("{e:#}"))
}

fn get(ns: &NetNs, src: Option<IpAddr>, dst: impl Into<SocketAddr>) -> String {
    http_get(ns, src, dst.into(), TIMEOUT).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The client's neighbour entry for `ip` (`ip neigh show`), e.g. `… lladdr 02:77:00:00:00:02 REACHABLE`.
fn neigh(lab: &Lab, ip: IpAddr) -> String {
    lab.client()
        .ns
        .ip(&["neigh", "show", &ip.to_string(), "dev", lab::IFNAME])
        .expect("ip neigh")
}

#[test]
fn netns_basics() {
    let ns = NetNs::new_unique("solo").expect("netns");
    assert!(netns::list().unwrap().contains(&ns.name().to_owned()));
    assert_eq!(ns.ifindex("lo").unwrap(), 1);

    ns.sysctl("net.ipv4.conf.all.arp_ignore", "1").unwrap();
    assert_eq!(ns.sysctl_get("net.ipv4.conf.all.arp_ignore").unwrap(), "1");
    // The sysctl was written inside the namespace only.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/arp_ignore")
            .unwrap()
            .trim(),
        "0"
    );

    // Errors carry the command line and its stderr.
    let err = format!(
        "{:#}",
        ns.ip(&["link", "show", "dev", "nosuch0"]).unwrap_err()
    );
    assert!(
        err.contains("link show dev nosuch0") && err.contains("nosuch0"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        ns.exec(&["sh", "-c", "echo oops >&2; exit 3"]).unwrap_err()
    );
    assert!(err.contains("sh -c") && err.contains("oops"), "{err}");
    assert_eq!(ns.exec(&["sh", "-c", "echo hi"]).unwrap(), "hi\n");

    // A socket made inside stays inside, and is usable from any thread: 192.0.2.1 (TEST-NET-1)
    // exists only in the namespace.
    ns.ip(&["address", "add", "192.0.2.1/32", "dev", "lo"])
        .unwrap();
    let listener = ns
        .run(|| std::net::TcpListener::bind("192.0.2.1:0"))
        .unwrap();
    assert!(std::net::TcpListener::bind("192.0.2.1:0").is_err());
    let addr = listener.local_addr().unwrap();
    let stream = ns.run(|| std::net::TcpStream::connect(addr)).unwrap();
    let (accepted, peer) = listener.accept().unwrap();
    assert_eq!(peer, stream.local_addr().unwrap());
    drop((stream, accepted));

    // Processes left running inside are killed with it.
    ns.exec(&["sh", "-c", "sleep 600 >/dev/null 2>&1 &"])
        .unwrap();
    let pids = netns_pids(ns.name());
    assert_eq!(pids.len(), 1, "{pids:?}");
    let name = ns.name().to_owned();
    drop(ns);
    assert!(!netns::exists(&name));
    assert!(!std::path::Path::new(&format!("/proc/{}", pids[0])).exists() || is_zombie(pids[0]));
}

fn netns_pids(name: &str) -> Vec<u32> {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

/// (a) The client reaches every backend on its real addresses, and each answers with its name;
/// keep-alive connections carry several requests.
#[test]
fn backends_answer_on_real_addresses() {
    let lab = lab(LabSpec {
        backends: 3,
        client_aliases: 0,
        ipv6: true,
    });
    let servers = lab.start_http(80).expect("http");
    let client = &lab.client().ns;
    for (b, server) in lab.backends().iter().zip(&servers) {
        assert_eq!(get(client, None, (b.ipv4, 80)), b.name);
        assert_eq!(get(client, None, (b.ipv6.unwrap(), 80)), b.name);
        assert_eq!(server.requests(), 2);
        assert_eq!(server.connections(), 2);
        let by_source = server.requests_by_source();
        assert_eq!(
            by_source.get(&IpAddr::from(lab::CLIENT_V4)),
            Some(&1),
            "{by_source:?}"
        );
        assert_eq!(
            by_source.get(&IpAddr::from(lab::CLIENT_V6)),
            Some(&1),
            "{by_source:?}"
        );
    }

    let b2 = lab.backend("b2");
    let mut conn = HttpConn::open(client, None, (b2.ipv4, 80).into()).expect("connect");
    for _ in 0..5 {
        assert_eq!(conn.get().unwrap(), "b2");
    }
    assert_eq!(servers[1].requests(), 7);
    assert_eq!(
        servers[1].connections(),
        3,
        "keep-alive requests share one connection"
    );
}

/// (b) The LB answers ARP and NDP for the VIPs; the backends, which hold them on lo, stay silent.
#[test]
fn vips_belong_to_the_lb() {
    let lab = lab(LabSpec {
        backends: 2,
        client_aliases: 0,
        ipv6: true,
    });
    let lb = lab.lb();
    let echo_replies = |ns: &NetNs| {
        ns.snmp_counter("Icmp", "OutEchoReps").unwrap()
            + ns.snmp_counter("Icmp6", "OutEchoReplies").unwrap()
    };
    let before = echo_replies(&lb.ns);
    for vip in [lab.vip(false), lab.vip(true)] {
        lab.client()
            .ns
            .ping(vip, TIMEOUT)
            .unwrap_or_else(|e| panic!("{e:#}"));
        let entry = neigh(&lab, vip);
        assert!(
            entry.contains(&format!("lladdr {}", lb.mac)),
            "client's neighbour entry for {vip}: {entry:?}"
        );
    }
    assert_eq!(
        echo_replies(&lb.ns),
        before + 2,
        "the LB answered both pings"
    );
    for b in lab.backends() {
        assert_eq!(echo_replies(&b.ns), 0, "{} answered a ping", b.name);
        // Its own address is its own: the backends are on the same segment.
        lab.client().ns.ping(b.ipv4.into(), TIMEOUT).unwrap();
        assert!(neigh(&lab, b.ipv4.into()).contains(&format!("lladdr {}", b.mac)));
    }
    // DR: the LB must not route what XDP does not handle.
    assert_eq!(lb.ns.sysctl_get("net.ipv4.ip_forward").unwrap(), "0");
    // Veth gotcha 2 (docs/testing.md): TX checksum offload is off on the client's veth.
    let features = lab
        .client()
        .ns
        .exec(&["ethtool", "-k", lab::IFNAME])
        .unwrap();
    assert!(features.contains("tx-checksumming: off"), "{features}");
    let (sw, lb_peer) = lab.lb_peer();
    let features = sw.exec(&["ethtool", "-k", lb_peer]).unwrap();
    assert!(features.contains("tx-checksumming: off"), "{features}");
}

/// (c) Many client aliases work as source addresses towards a backend's real address.
#[test]
fn client_aliases_are_usable_sources() {
    let spec = LabSpec {
        backends: 1,
        client_aliases: 60,
        ipv6: true,
    };
    let lab = lab(spec);
    let b1 = lab.backend("b1");
    let server = HttpBackend::start(&b1.ns, "b1", 8080).expect("http");
    let client = &lab.client().ns;
    let sources: Vec<IpAddr> = lab
        .client_aliases4()
        .into_iter()
        .map(IpAddr::from)
        .chain(lab.client_aliases6().into_iter().map(IpAddr::from))
        .collect();
    assert_eq!(sources.len(), 120);
    for &src in &sources {
        let dst = SocketAddr::new(b1.ip(src.is_ipv6()), 8080);
        assert_eq!(get(client, Some(src), dst), "b1", "from {src}");
    }
    let by_source = server.requests_by_source();
    for src in &sources {
        assert_eq!(
            by_source.get(src),
            Some(&1),
            "requests from {src}: {by_source:?}"
        );
    }
    // A keep-alive connection from an alias keeps its source.
    let alias = sources[7];
    let mut conn = HttpConn::open(client, Some(alias), (b1.ipv4, 8080).into()).unwrap();
    assert_eq!(conn.local_addr().ip(), alias);
    assert_eq!(conn.get().unwrap(), "b1");
    // A source of the wrong family is refused, with the addresses in the error.
    let err = format!(
        "{:#}",
        http_get(
            client,
            Some(alias),
            (b1.ipv6.unwrap(), 8080).into(),
            TIMEOUT
        )
        .unwrap_err()
    );
    assert!(err.contains(&alias.to_string()), "{err}");
}

/// (d) Dropping the lab removes all its namespaces.
#[test]
fn drop_removes_namespaces() {
    let lab = lab(LabSpec {
        backends: 2,
        client_aliases: 3,
        ipv6: false,
    });
    let names = lab.namespaces();
    assert_eq!(names.len(), 5, "{names:?}");
    let prefix = lab.prefix().to_owned();
    assert!(
        names.iter().all(|n| n.starts_with(&format!("{prefix}-"))),
        "{names:?}"
    );
    let listed = netns::list().unwrap();
    assert!(
        names.iter().all(|n| listed.contains(n)),
        "{names:?} not all in {listed:?}"
    );
    // IPv6 off means off.
    assert!(lab.client().ipv6.is_none());
    drop(lab);
    let listed = netns::list().unwrap();
    assert!(
        !listed.iter().any(|n| n.starts_with(&format!("{prefix}-"))),
        "left over: {listed:?}"
    );
}

/// A build that fails halfway removes what it made, and nothing it did not make.
#[test]
fn failed_build_cleans_up() {
    let prefix = netns::unique_prefix();
    let squatter = NetNs::new(&format!("{prefix}-b2")).unwrap();
    let err = format!(
        "{:#}",
        Lab::with_prefix(&prefix, LabSpec::default()).unwrap_err()
    );
    assert!(
        err.contains(squatter.name()) && err.contains("already exists"),
        "{err}"
    );
    let left: Vec<_> = netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .collect();
    assert_eq!(left, [squatter.name()]);
    assert!(
        Lab::with_prefix(
            &prefix,
            LabSpec {
                backends: 0,
                ..LabSpec::default()
            }
        )
        .is_err()
    );
}

/// `cargo xtask rig up|down`: a persistent lab outlives its handle, can be attached to, and is
/// removed by `down`.
#[test]
fn persistent_lab() {
    // Not RIG_PREFIX: that one is the developer's own rig.
    let prefix = netns::unique_prefix();
    struct Down<'a>(&'a str);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = Lab::down(self.0);
        }
    }
    let _guard = Down(&prefix);

    let spec = LabSpec {
        backends: 2,
        client_aliases: 4,
        ipv6: true,
    };
    let lab = Lab::up_persistent(&prefix, spec).unwrap_or_else(|e| panic!("{e:#}"));
    let (names, lb_mac, peer) = (lab.namespaces(), lab.lb().mac, lab.lb_peer().1.to_owned());
    drop(lab);
    assert!(names.iter().all(|n| netns::exists(n)), "{names:?}");

    let lab = Lab::attach(&prefix).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(lab.spec(), spec);
    assert_eq!(lab.lb().mac, lb_mac);
    assert_eq!(lab.lb_peer().1, peer);
    assert_eq!(lab.lb().peer_ifindex, lab.sw().ifindex(&peer).unwrap());
    let server = HttpBackend::start(&lab.backend("b2").ns, "b2", 80).unwrap();
    assert_eq!(get(&lab.client().ns, None, (lab::backend_v4(2), 80)), "b2");
    drop(server);
    drop(lab);
    assert!(names.iter().all(|n| netns::exists(n)), "{names:?}");

    // `up` again replaces it.
    let lab = Lab::up_persistent(
        &prefix,
        LabSpec {
            backends: 1,
            ..spec
        },
    )
    .unwrap();
    assert_eq!(lab.backends().len(), 1);
    assert!(!netns::exists(&format!("{prefix}-b2")));
    drop(lab);

    let removed = Lab::down(&prefix).unwrap();
    assert_eq!(removed.len(), 4, "{removed:?}");
    assert!(names.iter().all(|n| !netns::exists(n)), "{names:?}");
}

/// Dropping a backend with a keep-alive connection open neither hangs nor leaves it serving.
#[test]
fn http_backend_stops_on_drop() {
    let lab = lab(LabSpec {
        backends: 1,
        client_aliases: 0,
        ipv6: false,
    });
    let b1 = lab.backend("b1");
    let server = HttpBackend::start(&b1.ns, "b1", 0).unwrap();
    let port = server.port();
    let mut conn = HttpConn::open(&lab.client().ns, None, (b1.ipv4, port).into()).unwrap();
    assert_eq!(conn.get().unwrap(), "b1");
    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "drop took {:?}",
        start.elapsed()
    );
    assert!(conn.get().is_err());
    assert!(http_get(&lab.client().ns, None, (b1.ipv4, port).into(), TIMEOUT).is_err());
}
