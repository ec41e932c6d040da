//! Health checks end to end: the real `lb-ctl agent` in the LB namespace
//! checking real servers in the backends' namespaces (an HTTP server whose
//! status flips, Python listeners and TLS, MariaDB, scripts), read back
//! through `lb-ctl -o json status` and `events`. Needs root.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lb_tests::agent::Agent;
use lb_tests::health::{
    FlipServer, Mariadb, PY_HTTPS, PY_LISTENER, Python, backend, events_about, exists,
    last_failure, running, self_signed, wait_backend, wait_until,
};
use lb_tests::http::http_get;
use lb_tests::lab::{Lab, LabSpec};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn lab(backends: usize, client_aliases: usize, ipv6: bool) -> Lab {
    Lab::new(LabSpec {
        backends,
        client_aliases,
        ipv6,
    })
    .expect("building the lab (needs root)")
}

/// A pool: its name, its `check:` lines, its backends.
struct Pool<'a> {
    name: &'a str,
    check: &'a str,
    backends: Vec<(&'a str, IpAddr)>,
}

/// The pools, and service `web` on the VIP and `port` using the first pool.
fn config(lab: &Lab, pools: &[Pool], port: u16) -> String {
    let mut y = String::from("interfaces:\n  - name: eth0\npools:\n");
    for p in pools {
        y += &format!("  {}:\n    check:\n", p.name);
        for line in p.check.lines() {
            y += &format!("      {line}\n");
        }
        y += "    backends:\n";
        for (name, address) in &p.backends {
            y += &format!("      - name: {name}\n        address: {address}\n");
        }
    }
    y + &format!(
        "services:\n  - name: web\n    address: {}\n    port: {port}\n    pool: {}\n",
        lab.vip4(),
        pools[0].name
    )
}

/// An agent checking pool `web` of `b1` alone with `check`; returns once b1
/// is up.
fn start_checking_b1(lab: &Lab, check: &str) -> Agent {
    let pools = [Pool {
        name: "web",
        check,
        backends: vec![("b1", addr(lab, "b1"))],
    }];
    let agent = Agent::start(lab, &config(lab, &pools, 80)).unwrap();
    wait_backend(&agent, "web", "b1", WAIT, "up", is_up);
    agent
}

fn addr(lab: &Lab, name: &str) -> IpAddr {
    lab.backend(name).ipv4.into()
}

fn is_up(b: &Value) -> bool {
    b["state"] == "up" && b["check"]["healthy"] == true && b["check"]["last"].is_object()
}

fn is_down(b: &Value) -> bool {
    b["state"] == "down"
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("lb-health-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn an_http_check_takes_a_500_backend_down_after_fall_and_back_after_rise() {
    let lab = lab(1, 0, false);
    let b1 = lab.backend("b1");
    let server = FlipServer::start(&b1.ns, SocketAddr::new(b1.ipv4.into(), 8080), 200).unwrap();
    let check = "type: http\nport: 8080\npath: /health\nbody: status=200\n\
                 inter: 200ms\nrise: 2\nfall: 3";
    let agent = start_checking_b1(&lab, check);
    let request = server.last_request();
    assert!(
        request.starts_with(
            "GET /health HTTP/1.1\r\nHost: 10.77.0.101:8080\r\nUser-Agent: lb-check\r\n"
        ) && request.contains("\r\nConnection: close\r\n"),
        "{request:?}"
    );

    let before = server.requests();
    server.set_status(500);
    let down = wait_backend(&agent, "web", "b1", WAIT, "down", is_down);
    let failure = json!({"kind": "http_status", "status": 500});
    assert_eq!(
        down["down_reason"],
        json!({"kind": "check", "check": "http", "failure": failure})
    );
    assert_eq!(down["check"]["last"]["failure"], failure);
    assert!(
        server.requests() - before >= 3,
        "down only after fall = 3 failed checks"
    );
    let text = String::from_utf8_lossy(&agent.ctl(&["status"]).stdout).into_owned();
    assert!(text.contains("HTTP 500"), "{text}");

    let before = server.requests();
    server.set_status(200);
    wait_backend(&agent, "web", "b1", WAIT, "up again", is_up);
    assert!(server.requests() - before >= 2, "up only after rise = 2");

    let health: Vec<(bool, Value)> = events_about(&agent, "health", "web", "b1")
        .iter()
        .map(|e| (e["healthy"] == true, e["reason"].clone()))
        .collect();
    assert_eq!(
        health,
        [(false, json!("HTTP 500")), (true, Value::Null)],
        "one health event each way"
    );
    let states: Vec<(Value, Value)> = events_about(&agent, "backend_state", "web", "b1")
        .iter()
        .filter(|e| e["cause"] == "health")
        .map(|e| (e["to"].clone(), e["reason"].clone()))
        .collect();
    assert_eq!(
        states,
        [
            (json!("down"), json!("http check failed: HTTP 500")),
            (json!("up"), json!("health check passes")),
        ],
    );
}

#[test]
fn a_tcp_check_says_connection_refused_when_the_listener_is_killed() {
    let lab = lab(1, 0, false);
    let b1 = lab.backend("b1");
    let mut listener = Python::start(&b1.ns, PY_LISTENER, &["10.77.0.101", "9000"]).unwrap();
    let agent = start_checking_b1(&lab, "type: tcp\nport: 9000\ninter: 200ms\nfall: 2");
    listener.kill();
    let down = wait_backend(&agent, "web", "b1", WAIT, "down", is_down);
    assert_eq!(down["down_reason"]["failure"], json!({"kind": "refused"}));
}

#[test]
fn an_icmp_check_times_out_when_the_backends_link_goes_down() {
    let lab = lab(2, 0, true);
    let v6: IpAddr = lab.backend("b2").ipv6.unwrap().into();
    let check = "type: icmp\ninter: 200ms\nfall: 2";
    let pools = [
        Pool {
            name: "web",
            check,
            backends: vec![("b1", addr(&lab, "b1"))],
        },
        Pool {
            name: "web6",
            check,
            backends: vec![("b2", v6)],
        },
    ];
    // The LB holds the IPv6 VIP on eth0, where source address selection
    // (RFC 6724) would pick it to reach the backends, which hold it too and
    // would answer themselves: deprecate it, as is usual for a VIP.
    let vip6 = format!("{}/128", lab.vip6());
    lab.lb()
        .ns
        .ip(&[
            "address",
            "change",
            &vip6,
            "dev",
            "eth0",
            "preferred_lft",
            "0",
            "nodad",
        ])
        .unwrap();
    let agent = Agent::start(&lab, &config(&lab, &pools, 80)).unwrap();
    wait_backend(&agent, "web", "b1", WAIT, "up", is_up);
    wait_backend(&agent, "web6", "b2", WAIT, "up over IPv6", is_up);
    lab.backend("b1")
        .ns
        .ip(&["link", "set", "eth0", "down"])
        .unwrap();
    let down = wait_backend(&agent, "web", "b1", WAIT, "down", is_down);
    assert_eq!(
        down["down_reason"]["failure"],
        json!({"kind": "timeout", "after_ms": 200})
    );
    assert!(is_up(&backend(&agent, "web6", "b2")));
}

#[test]
fn an_icmp_check_on_a_ping_socket_reports_an_unreachable_host() {
    let lab = lab(1, 0, false);
    let (lb, b1) = (&lab.lb().ns, &lab.backend("b1").ns);
    // Ping sockets for root in the LB's namespace.
    lb.sysctl("net.ipv4.ping_group_range", "0 2147483647")
        .unwrap();
    // 10.88.0.1 is behind b1, a router that answers "host unreachable".
    lb.ip(&["route", "add", "10.88.0.0/16", "via", "10.77.0.101"])
        .unwrap();
    b1.sysctl("net.ipv4.ip_forward", "1").unwrap();
    b1.ip(&["route", "add", "unreachable", "10.88.0.0/16"])
        .unwrap();
    let check = "type: icmp\ninter: 500ms\nfall: 1";
    let pools = [Pool {
        name: "web",
        check,
        backends: vec![("ghost", "10.88.0.1".parse().unwrap())],
    }];
    let agent = Agent::start(&lab, &config(&lab, &pools, 80)).unwrap();
    let b = wait_backend(&agent, "web", "ghost", WAIT, "unreachable", |b| {
        last_failure(b).as_deref() == Some("unreachable")
    });
    let detail = b["check"]["last"]["failure"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("No route to host") && detail.ends_with("(ping socket)"),
        "{detail}"
    );
}

#[test]
fn a_mysql_check_logs_in_and_quits_without_an_aborted_connect() {
    let lab = lab(1, 0, false);
    let b1 = lab.backend("b1");
    let mut db = Mariadb::start(&b1.ns, b1.ipv4.into(), 3306, &["--max-connect-errors=5"]).unwrap();
    db.sql("CREATE USER 'lbcheck'@'%'").unwrap();
    let with_user = Pool {
        name: "db",
        check: "type: mysql\nuser: lbcheck\nport: 3306\ninter: 100ms\nfall: 2",
        backends: vec![("b1", addr(&lab, "b1"))],
    };
    let mut agent = Agent::start(&lab, &config(&lab, &[with_user], 3306)).unwrap();
    wait_backend(&agent, "db", "b1", WAIT, "up", is_up);
    let aborted = db.counter("Aborted_connects").unwrap();
    let connections = db.counter("Connections").unwrap();
    wait_until(WAIT, "30 checks", || checks_since(&db, connections, 30));
    assert_eq!(
        db.counter("Aborted_connects").unwrap(),
        aborted,
        "{}",
        db.error_log()
    );

    // Without a user the check is refused a login, which must not get the
    // LB blocked (max_connect_errors is 5 here).
    let with_user = Pool {
        name: "db",
        check: "type: mysql\nuser: lbcheck\nport: 3306\ninter: 100ms\nfall: 2",
        backends: vec![("b1", addr(&lab, "b1"))],
    };
    let anonymous = Pool {
        name: "anon",
        check: "type: mysql\nport: 3306\ninter: 100ms\nfall: 2",
        backends: vec![("b1", addr(&lab, "b1"))],
    };
    let body = config(&lab, &[with_user, anonymous], 3306);
    std::fs::write(&agent.config, format!("{}{body}", agent_section(&agent))).unwrap();
    assert!(agent.ctl(&["reload"]).status.success());
    wait_backend(&agent, "anon", "b1", WAIT, "up", is_up);
    let connections = db.counter("Connections").unwrap();
    wait_until(WAIT, "20 more checks", || {
        checks_since(&db, connections, 20)
    });
    assert!(is_up(&backend(&agent, "anon", "b1")));
    assert!(is_up(&backend(&agent, "db", "b1")));

    db.stop().unwrap();
    for pool in ["db", "anon"] {
        let down = wait_backend(&agent, pool, "b1", WAIT, "down", is_down);
        assert_eq!(down["down_reason"]["failure"], json!({"kind": "refused"}));
    }
    agent.stop(libc::SIGTERM).unwrap();
}

/// Whether the server counted `n` connections since `from`.
fn checks_since(db: &Mariadb, from: u64, n: u64) -> Result<(), String> {
    let now = db.counter("Connections").map_err(|e| e.to_string())?;
    if now >= from + n {
        return Ok(());
    }
    Err(format!("{} so far", now - from))
}

/// The `agent:` section the file started with (everything before `interfaces:`).
fn agent_section(agent: &Agent) -> String {
    let text = std::fs::read_to_string(&agent.config).unwrap();
    text[..text.find("interfaces:").unwrap()].to_owned()
}

#[test]
fn a_script_check_follows_exit_codes_and_a_hung_script_dies_with_its_group() {
    let lab = lab(1, 0, false);
    let dir = TempDir::new("script");
    let d = dir.0.display();
    std::fs::write(dir.0.join("code"), "0").unwrap();
    script(
        &dir.0.join("check.sh"),
        &format!(
            "echo \"$LB_POOL $LB_BACKEND $LB_ADDRESS $LB_PORT $1\" > {d}/env\nexit $(cat {d}/code)"
        ),
    );
    script(
        &dir.0.join("hang.sh"),
        &format!("sleep 1000 &\necho $$ $! >> {d}/pids\nwait"),
    );
    let check = format!(
        "type: script\ncommand: [{d}/check.sh, first-arg]\nport: 8080\ninter: 200ms\nrise: 2\nfall: 2"
    );
    let hang = format!("type: script\ncommand: [{d}/hang.sh]\ninter: 500ms\ntimeout: 300ms");
    let pools = [
        Pool {
            name: "web",
            check: &check,
            backends: vec![("b1", addr(&lab, "b1"))],
        },
        Pool {
            name: "hang",
            check: &hang,
            backends: vec![("b1", addr(&lab, "b1"))],
        },
    ];
    let agent = Agent::start(&lab, &config(&lab, &pools, 80)).unwrap();
    wait_backend(&agent, "web", "b1", WAIT, "up", is_up);
    let env = std::fs::read_to_string(dir.0.join("env")).unwrap();
    assert_eq!(env, "web b1 10.77.0.101 8080 first-arg\n");

    std::fs::write(dir.0.join("code"), "1").unwrap();
    let down = wait_backend(&agent, "web", "b1", WAIT, "down", is_down);
    assert_eq!(
        down["down_reason"]["failure"],
        json!({"kind": "script_exit", "code": 1})
    );
    let text = String::from_utf8_lossy(&agent.ctl(&["status"]).stdout).into_owned();
    assert!(text.contains("script exited with 1"), "{text}");
    std::fs::write(dir.0.join("code"), "0").unwrap();
    wait_backend(&agent, "web", "b1", WAIT, "up again", is_up);

    let timed_out = wait_backend(&agent, "hang", "b1", WAIT, "timed out", |b| {
        last_failure(b).as_deref() == Some("timeout")
    });
    assert_eq!(
        timed_out["check"]["last"]["failure"],
        json!({"kind": "timeout", "after_ms": 300})
    );
    let first = std::fs::read_to_string(dir.0.join("pids")).unwrap();
    let mut pids = first.lines().next().unwrap().split(' ');
    let script_pid: u32 = pids.next().unwrap().parse().unwrap();
    let child_pid: u32 = pids.next().unwrap().parse().unwrap();
    // The script is reaped (no zombie); its child killed (its new parent,
    // PID 1, reaps it, or not: no longer our process).
    wait_until(Duration::from_secs(2), "killed by the timeout", || {
        match (exists(script_pid), running(child_pid)) {
            (false, false) => Ok(()),
            (script, child) => Err(format!(
                "script {script_pid} exists: {script}, its child {child_pid} runs: {child}"
            )),
        }
    });
}

#[test]
fn a_killed_server_leaves_the_ring_within_fall_inters_and_gets_no_new_connection() {
    let lab = lab(3, 30, false);
    let mut http = lab.start_http(80).unwrap();
    let check = "type: tcp\ninter: 200ms\nfall: 3\nrise: 2";
    let names = ["b1", "b2", "b3"];
    let pools = [Pool {
        name: "web",
        check,
        backends: names.iter().map(|n| (*n, addr(&lab, n))).collect(),
    }];
    let agent = Agent::start(&lab, &config(&lab, &pools, 80)).unwrap();
    for n in names {
        wait_backend(&agent, "web", n, WAIT, "up", is_up);
    }
    // Clients, round robin over their addresses, each request a new connection.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, client) = (stop.clone(), lab.client().ns.name().to_owned());
        let sources = lab.client_aliases4();
        let vip = SocketAddr::new(lab.vip4().into(), 80);
        std::thread::spawn(move || {
            let ns = lb_tests::netns::NetNs::open(&client).unwrap();
            let mut seen = Vec::new();
            for src in sources.iter().cycle() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let at = now_ms();
                let got = http_get(&ns, Some((*src).into()), vip, Duration::from_millis(500));
                seen.push((at, got.map_err(|e| e.to_string())));
            }
            seen
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let killed = now_ms();
    drop(http.remove(1)); // b2's server: its port now refuses
    wait_backend(&agent, "web", "b2", WAIT, "down", is_down);
    let event = events_about(&agent, "backend_state", "web", "b2")
        .into_iter()
        .find(|e| e["to"] == "down" && e["cause"] == "health")
        .expect("a backend_state event for b2");
    let detected = event["time_ms"].as_u64().unwrap();
    eprintln!(
        "b2 left the ring {} ms after its server died",
        detected - killed
    );
    assert!(
        detected - killed <= 3 * 200 + 200,
        "b2 left the ring {} ms after its server died (inter 200ms × fall 3 + one inter = 800)",
        detected - killed
    );
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let seen = traffic.join().unwrap();
    let after: Vec<_> = seen.iter().filter(|(at, _)| *at > detected).collect();
    assert!(
        after.len() > 20,
        "traffic went on: {} requests",
        after.len()
    );
    for (at, got) in after {
        assert!(
            matches!(got, Ok(b) if b != "b2"),
            "request at {at} ({} ms after detection): {got:?}",
            at - detected
        );
    }
    assert!(
        seen.iter().any(|(_, g)| g.as_deref() == Ok("b2")),
        "b2 served before"
    );
}

#[test]
fn an_https_check_passes_without_verification_and_fails_with_it() {
    let lab = lab(1, 0, false);
    let dir = TempDir::new("tls");
    let b1 = lab.backend("b1");
    let (cert, key) = self_signed(&dir.0, b1.ipv4.into()).unwrap();
    let _server = Python::start(
        &b1.ns,
        PY_HTTPS,
        &[
            "10.77.0.101",
            "8443",
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
        ],
    )
    .unwrap();
    let pools = [
        Pool {
            name: "web",
            check: "type: https\nport: 8443\nbody: tls ok\ninter: 200ms\nfall: 1",
            backends: vec![("b1", addr(&lab, "b1"))],
        },
        Pool {
            name: "strict",
            // The first verifying check loads the system's roots (slow in a
            // debug build under load): room for it, so the failure is TLS's.
            check: "type: https\nport: 8443\nverify: true\ninter: 200ms\ntimeout: 3s\nfall: 1",
            backends: vec![("b1", addr(&lab, "b1"))],
        },
    ];
    let agent = Agent::start(&lab, &config(&lab, &pools, 443)).unwrap();
    wait_backend(&agent, "web", "b1", WAIT, "up", is_up);
    let down = wait_backend(&agent, "strict", "b1", WAIT, "down", is_down);
    let failure = &down["down_reason"]["failure"];
    assert_eq!(failure["kind"], "tls", "{failure}");
    let detail = failure["detail"].as_str().unwrap();
    assert!(detail.contains("invalid peer certificate"), "{detail}");
}

#[test]
fn via_service_checks_the_vip_through_each_backend_and_cleans_up() {
    let lab = lab(2, 0, false);
    let lb = &lab.lb().ns;
    // The LB owns the VIP: its local rule must come after lb's (docs/config.md).
    lb.ip(&["rule", "add", "pref", "101", "lookup", "local"])
        .unwrap();
    lb.ip(&["rule", "del", "pref", "0", "lookup", "local"])
        .unwrap();
    lb.sysctl("net.ipv4.conf.eth0.accept_local", "1").unwrap();
    // What an earlier run might have left.
    let leftover = (0x4c42_0000u32 + 0xffff).to_string();
    lb.ip(&[
        "rule",
        "add",
        "pref",
        "100",
        "fwmark",
        "0x4c42ffff",
        "lookup",
        &leftover,
    ])
    .unwrap();
    lb.ip(&[
        "route",
        "add",
        "10.99.0.1/32",
        "dev",
        "eth0",
        "table",
        &leftover,
    ])
    .unwrap();
    let servers: Vec<FlipServer> = ["b1", "b2"]
        .iter()
        .map(|n| {
            let ns = &lab.backend(n).ns;
            FlipServer::start(ns, "0.0.0.0:80".parse().unwrap(), 200).unwrap()
        })
        .collect();
    let via = "type: http\nvia_service: web\ninter: 200ms\nfall: 2";
    let pool = |check| Pool {
        name: "web",
        check,
        backends: vec![("b1", addr(&lab, "b1")), ("b2", addr(&lab, "b2"))],
    };
    let agent = Agent::start(&lab, &config(&lab, &[pool(via)], 80)).unwrap();
    for n in ["b1", "b2"] {
        wait_backend(&agent, "web", n, WAIT, "up", is_up);
    }
    assert!(
        servers[0]
            .last_request()
            .contains("\r\nHost: 10.77.100.1\r\n"),
        "the check asked the VIP: {:?}",
        servers[0].last_request()
    );
    let rules = lb.ip(&["rule", "show"]).unwrap();
    assert_eq!(
        rules.lines().filter(|l| l.starts_with("100:")).count(),
        2,
        "{rules}"
    );
    assert!(
        !rules.contains("0x4c42ffff"),
        "the leftover rule is gone: {rules}"
    );
    let all_routes = lb.ip(&["route", "show", "table", "all"]).unwrap();
    assert!(!all_routes.contains("10.99.0.1"), "{all_routes}");

    // b2 loses the VIP: it drops packets for it, so its check times out.
    lab.backend("b2")
        .ns
        .ip(&["address", "del", "10.77.100.1/32", "dev", "lo"])
        .unwrap();
    let down = wait_backend(&agent, "web", "b2", WAIT, "down", is_down);
    assert_eq!(down["down_reason"]["failure"]["kind"], "timeout");
    assert!(is_up(&backend(&agent, "web", "b1")));

    // Without via_service, the rules and routes go.
    let plain = config(&lab, &[pool("type: tcp\ninter: 200ms")], 80);
    std::fs::write(&agent.config, format!("{}{plain}", agent_section(&agent))).unwrap();
    assert!(agent.ctl(&["reload"]).status.success());
    wait_until(WAIT, "cleaned up", || {
        let rules = lb.ip(&["rule", "show"]).unwrap();
        let routes = lb.ip(&["route", "show", "table", "all"]).unwrap();
        if rules.contains("100:") || routes.contains("10.77.100.1 via") {
            return Err(format!("left behind:\n{rules}\n{routes}"));
        }
        Ok(())
    });
}
