//! `source` and `usesrc` in the real agent: client, lb and server in three
//! namespaces routed in a line (the server's way back to the client goes
//! through lb), the agent in the lb namespace, and the server telling
//! which address and port each connection came from. Needs root.

use std::net::{IpAddr, SocketAddr};

use lb_tests::agent::Agent;
use lb_tests::http::{HttpBackend, HttpConn};
use lb_tests::l7::client;
use lb_tests::routed::{CLIENT, LB_BACK, LB_BACK_ALIAS, LB_FRONT, Routed, SERVER};

/// A second address of the client, for connection reuse across clients.
const CLIENT2: &str = "10.92.1.3";

/// One pool per way of choosing the source, each behind its own frontend
/// (HTTP on 8001..=8004, TCP on 8005 to the `clientip` pool), and a pool
/// whose source is no address of the lb host (8006).
fn config() -> String {
    let pool = |name: &str, source: &str| {
        format!(
            "  {name}:\n{source}    backends:\n      - {{name: s, address: {SERVER}, port: 80}}\n"
        )
    };
    let front = |name: &str, port: u16, pool: &str, mode: &str| {
        format!(
            "  {name}: {{bind: \"{LB_FRONT}:{port}\", mode: {mode}, default_backend: {pool}}}\n"
        )
    };
    [
        "pools:\n".to_owned(),
        pool("clientip", "    source: \"0.0.0.0 usesrc clientip\"\n"),
        pool("client", "    source: \"0.0.0.0 usesrc client\"\n"),
        pool("fixed", &format!("    source: {LB_BACK_ALIAS}\n")),
        pool("plain", ""),
        pool("wrong", "    source: 10.92.3.3\n    retries: 1\n"),
        "frontends:\n".to_owned(),
        front("clientip", 8001, "clientip", "http"),
        front("client", 8002, "client", "http"),
        front("fixed", 8003, "fixed", "http"),
        front("plain", 8004, "plain", "http"),
        front("relay", 8005, "clientip", "tcp"),
        front("wrong", 8006, "wrong", "http"),
    ]
    .concat()
}

fn lb(port: u16) -> SocketAddr {
    SocketAddr::new(LB_FRONT.into(), port)
}

/// The addresses the server saw for the connections made while `f` ran.
fn new_peers(server: &HttpBackend, f: impl FnOnce()) -> Vec<SocketAddr> {
    let before = server.peers().len();
    f();
    server.peers().split_off(before)
}

/// `GET /` from `src` in the client namespace: status and body.
fn get(r: &Routed, src: IpAddr, port: u16) -> (u16, String) {
    let res = r
        .client
        .run(|| client::get(src, lb(port), "/", &[]))
        .unwrap_or_else(|e| panic!("GET {port} from {src}: {e:#}"));
    (res.status, res.body)
}

struct Setup {
    // Dropped first: the agent, then the server, then the namespaces.
    agent: Agent,
    server: HttpBackend,
    r: Routed,
}

fn setup() -> Setup {
    let r = Routed::new().expect("the three namespaces (needs root)");
    r.client
        .ip(&["addr", "add", &format!("{CLIENT2}/24"), "dev", "eth0"])
        .expect("a second client address");
    r.divert_to_local_sockets()
        .expect("the nftables rule, ip rule and local route");
    let server = HttpBackend::start(&r.server, "s", 80).expect("the server");
    let agent = Agent::start_in(&r.lb, &config()).expect("the agent");
    Setup { agent, server, r }
}

#[test]
fn the_server_sees_the_address_each_source_setting_gives() {
    let s = setup();
    let (server, r) = (&s.server, &s.r);
    let client = IpAddr::from(CLIENT);
    let one = |port| {
        new_peers(server, || {
            assert_eq!(get(r, client, port), (200, "s\n".to_owned()), "port {port}");
        })
    };
    let ips = |peers: Vec<SocketAddr>| peers.iter().map(SocketAddr::ip).collect::<Vec<_>>();
    assert_eq!(
        ips(one(8004)),
        [IpAddr::from(LB_BACK)],
        "no source: lb's own address"
    );
    assert_eq!(ips(one(8003)), [IpAddr::from(LB_BACK_ALIAS)], "source ADDR");
    assert_eq!(
        ips(one(8001)),
        [client],
        "usesrc clientip: the client's address"
    );
    assert_eq!(
        ips(one(8005)),
        [client],
        "usesrc clientip in a tcp frontend"
    );
    // `usesrc client`: the client's port too.
    let mut conn = HttpConn::open(&r.client, Some(client), lb(8002)).expect("connect");
    let seen = new_peers(server, || {
        assert_eq!(conn.get().expect("GET over usesrc client"), "s");
    });
    assert_eq!(seen, [conn.local_addr()], "usesrc client: address and port");
}

#[test]
fn a_server_connection_kept_for_one_client_never_carries_another() {
    let s = setup();
    let (server, r) = (&s.server, &s.r);
    let (first, second): (IpAddr, IpAddr) = (CLIENT.into(), CLIENT2.parse().expect("an address"));
    let seen = new_peers(server, || {
        for src in [first, second, first, second] {
            assert_eq!(get(r, src, 8001).0, 200);
        }
    });
    // One connection per client, each reused by that client only.
    let ips: Vec<IpAddr> = seen.iter().map(SocketAddr::ip).collect();
    assert_eq!(ips, [first, second], "{seen:?}");
    assert_eq!(server.requests_by_source().get(&second), Some(&2));
}

#[test]
fn a_source_the_host_lacks_is_a_503_with_the_reason_logged_once() {
    let s = setup();
    let (agent, server, r) = (&s.agent, &s.server, &s.r);
    for _ in 0..3 {
        let (status, _) = get(r, CLIENT.into(), 8006);
        assert_eq!(status, 503);
    }
    assert!(server.peers().is_empty(), "nothing reached the server");
    // The other pools are unaffected.
    assert_eq!(get(r, CLIENT.into(), 8004).0, 200);
    let log = agent.log();
    let warned = log
        .lines()
        .filter(|l| l.contains("cannot connect from the pool's `source`"))
        .collect::<Vec<_>>();
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].contains("10.92.3.3") && warned[0].contains("not one of this host's"),
        "{}",
        warned[0]
    );
}
