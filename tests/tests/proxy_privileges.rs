//! The running agent seen from outside, through /proc: its proxy threads
//! (`lb-proxy-N`) hold no capability and run under a seccomp filter, its
//! other threads keep what the data path, VRRP and checks need, and the
//! proxy still serves. Needs root.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use lb_tests::agent::Agent;
use lb_tests::http::{HttpBackend, http_get};
use lb_tests::routed::{CLIENT, LB_FRONT, Routed, SERVER};

/// `CAP_NET_RAW`, as a bit of the Cap* masks.
const NET_RAW: u64 = 1 << 13;

/// One thread's name and the fields of its status this test reads.
#[derive(Debug)]
struct Thread {
    name: String,
    cap_eff: u64,
    cap_prm: u64,
    seccomp: u32,
    no_new_privs: u32,
}

/// Every thread of process `pid`, by thread id.
fn threads(pid: u32) -> BTreeMap<u32, Thread> {
    let dir = format!("/proc/{pid}/task");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("the agent's threads") {
        let path = entry.expect("a thread").path();
        let tid: u32 = path
            .file_name()
            .and_then(|n| n.to_str()?.parse().ok())
            .expect("a thread id");
        // A thread may end between the listing and the reads.
        let (Ok(comm), Ok(status)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("status")),
        ) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
                .unwrap_or_else(|| panic!("{name} in {}", path.display()))
                .to_owned()
        };
        let hex = |name: &str| u64::from_str_radix(&field(name), 16).expect("a hex mask");
        let dec = |name: &str| field(name).parse::<u32>().expect("a number");
        out.insert(
            tid,
            Thread {
                name: comm.trim().to_owned(),
                cap_eff: hex("CapEff"),
                cap_prm: hex("CapPrm"),
                seccomp: dec("Seccomp"),
                no_new_privs: dec("NoNewPrivs"),
            },
        );
    }
    out
}

/// A frontend on LB_FRONT:8080 to the server, its pool with `source`
/// lines `source` (indented 4).
fn config(source: &str) -> String {
    format!(
        "pools:\n  web:\n{source}    backends:\n      - {{name: s, address: {SERVER}, port: 80}}\nfrontends:\n  main: {{bind: \"{LB_FRONT}:8080\", default_backend: web}}\n"
    )
}

/// Starts the agent with `source` on its pool, checks one request goes
/// through, and returns its threads.
fn running_agent(source: &str) -> BTreeMap<u32, Thread> {
    let r = Routed::new().expect("namespaces (needs root)");
    // Harmless without `usesrc`; needed with it.
    r.divert_to_local_sockets().expect("the transparent recipe");
    let _server = HttpBackend::start(&r.server, "s", 80).expect("the server");
    let agent = Agent::start_in(&r.lb, &config(source)).expect("the agent");
    let front = SocketAddr::new(LB_FRONT.into(), 8080);
    let body = http_get(
        &r.client,
        Some(IpAddr::from(CLIENT)),
        front,
        lb_tests::http::DEFAULT_TIMEOUT,
    )
    .expect("the proxy serves with its threads confined");
    assert_eq!(body, "s");
    let pid = agent.pid().expect("the agent runs");
    let seen = threads(pid);
    let main = &seen[&pid];
    assert_ne!(
        main.cap_eff, 0,
        "the agent's main thread keeps its capabilities"
    );
    assert_eq!(
        (main.seccomp, main.no_new_privs),
        (0, 0),
        "and has no filter"
    );
    seen
}

fn proxy_threads(all: &BTreeMap<u32, Thread>) -> Vec<&Thread> {
    let cores: Vec<&Thread> = all
        .values()
        .filter(|t| t.name.starts_with("lb-proxy-"))
        .collect();
    assert!(!cores.is_empty(), "no lb-proxy-N thread among {all:#?}");
    cores
}

#[test]
fn the_proxy_threads_drop_every_capability_and_run_filtered() {
    let all = running_agent("");
    for t in proxy_threads(&all) {
        assert_eq!((t.cap_eff, t.cap_prm), (0, 0), "{t:?}");
        assert_eq!((t.seccomp, t.no_new_privs), (2, 1), "{t:?}");
    }
}

#[test]
fn with_usesrc_the_proxy_threads_keep_net_raw_only() {
    let all = running_agent("    source: \"0.0.0.0 usesrc clientip\"\n");
    for t in proxy_threads(&all) {
        assert_eq!((t.cap_eff, t.cap_prm), (NET_RAW, NET_RAW), "{t:?}");
        assert_eq!((t.seccomp, t.no_new_privs), (2, 1), "{t:?}");
    }
}
