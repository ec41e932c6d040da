//! The agent and the operator CLI on the netns rig: the real `lb-ctl agent`
//! binary in the LB namespace, real `lb-ctl` commands, real TCP/UDP traffic.
//! Needs root.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use lb_tests::{
    agent::{Agent, lb_ctl_bin},
    http::{HttpConn, http_get},
    lab::{Lab, LabSpec},
};

const T: Duration = Duration::from_secs(5);

fn lab(aliases: usize) -> (Lab, Vec<lb_tests::http::HttpBackend>) {
    let lab = Lab::new(LabSpec {
        backends: 3,
        client_aliases: aliases,
        ipv6: false,
    })
    .expect("building the lab (needs root)");
    let http = lab.start_http(80).expect("HTTP backends");
    (lab, http)
}

/// A config with service `web` (TCP 80) over pool `web` of the given
/// backends, and `dns` (UDP 5353) over pool `all`, all three backends.
fn config(lab: &Lab, web: &[&str], web_weights: &[u32]) -> String {
    let mut y = String::from("interfaces:\n  - name: eth0\npools:\n  web:\n    backends:\n");
    for (name, w) in web.iter().zip(web_weights) {
        y += &format!(
            "      - name: {name}\n        address: {}\n        weight: {w}\n",
            lab.backend(name).ipv4
        );
    }
    y += "  all:\n    backends:\n";
    for b in lab.backends() {
        y += &format!("      - name: {}\n        address: {}\n", b.name, b.ipv4);
    }
    y += &format!(
        "services:\n  - name: web\n    address: {vip}\n    port: 80\n    pool: web\n  \
         - name: dns\n    address: {vip}\n    port: 5353\n    protocol: udp\n    pool: all\n",
        vip = lab.vip4()
    );
    y
}

/// Backend `name` of pool `pool` in a `status` answer.
fn backend_status(status: &serde_json::Value, pool: &str, name: &str) -> serde_json::Value {
    pool_status(status, pool)["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no backend {pool}/{name} in {status}"))
}

/// Pool `pool` in a `status` answer.
fn pool_status(status: &serde_json::Value, pool: &str) -> serde_json::Value {
    status["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == pool)
        .cloned()
        .unwrap_or_else(|| panic!("no pool {pool} in {status}"))
}

fn get(lab: &Lab, src: IpAddr) -> String {
    http_get(
        &lab.client().ns,
        Some(src),
        SocketAddr::new(lab.vip4().into(), 80),
        T,
    )
    .unwrap_or_else(|e| panic!("GET from {src}: {e:#}"))
}

fn clients(lab: &Lab) -> Vec<IpAddr> {
    lab.client_aliases4()
        .into_iter()
        .map(IpAddr::from)
        .collect()
}

fn explain(agent: &Agent, vip: &str, client: &str) -> String {
    agent.json(&["explain", vip, client])["backend"]
        .as_str()
        .unwrap_or_else(|| panic!("explain {vip} {client}: no backend"))
        .to_owned()
}

#[test]
fn a_backend_added_with_lb_ctl_takes_its_share() {
    let (lab, _http) = lab(60);
    let agent = Agent::start(&lab, &config(&lab, &["b1", "b2"], &[1, 1])).unwrap();
    for c in clients(&lab).iter().take(20) {
        assert_ne!(get(&lab, *c), "b3", "b3 is not configured yet");
    }
    let b3 = lab.backend("b3").ipv4.to_string();
    agent.json(&["backend", "add", "web", "--address", &b3, "--name", "b3"]);
    let mine: Vec<IpAddr> = clients(&lab)
        .into_iter()
        .filter(|c| explain(&agent, "web", &c.to_string()) == "b3")
        .collect();
    assert!(
        mine.len() >= 5,
        "the ring gives b3 a share of the clients: {}",
        mine.len()
    );
    for c in &mine {
        assert_eq!(get(&lab, *c), "b3", "{c} is predicted on b3");
    }
    let b3s = backend_status(&agent.json(&["status"]), "web", "b3");
    assert_eq!(b3s["source"], "runtime");
    assert_eq!(b3s["state"], "up");
    let added = agent.events();
    assert!(
        added.iter().any(|e| e["type"] == "backend_added"
            && e["pool"] == "web"
            && e["backend"] == "b3"
            && e["source"] == "runtime"),
        "the event stream says b3 was added: {added:#?}"
    );
}

#[test]
fn drain_keeps_the_open_connection_and_drain_wait_returns_when_it_closes() {
    let (lab, http) = lab(60);
    let agent = Agent::start(&lab, &config(&lab, &["b1", "b2", "b3"], &[1, 1, 1])).unwrap();
    let cs = clients(&lab);
    let mut conn = HttpConn::open(
        &lab.client().ns,
        Some(cs[0]),
        SocketAddr::new(lab.vip4().into(), 80),
    )
    .unwrap();
    let victim = conn.get().unwrap();
    agent.json(&["backend", "drain", "web", &victim]);
    let before = http
        .iter()
        .find(|h| h.name() == victim)
        .unwrap()
        .connections();
    for c in &cs {
        assert_ne!(
            get(&lab, *c),
            victim,
            "{c}: a new connection reached drained {victim}"
        );
    }
    assert_eq!(
        http.iter()
            .find(|h| h.name() == victim)
            .unwrap()
            .connections(),
        before
    );
    assert_eq!(
        conn.get().unwrap(),
        victim,
        "the open connection keeps working"
    );

    // `drain --wait` waits while the connection is open...
    let mut wait = std::process::Command::new(lb_ctl_bin())
        .arg("--socket")
        .arg(&agent.socket)
        .args([
            "backend",
            "drain",
            "web",
            &victim,
            "--wait",
            "--timeout",
            "60s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        wait.try_wait().unwrap().is_none(),
        "drain --wait returned while a flow is open"
    );
    // ...and returns once it closes (the client's FIN ends the flow).
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = wait.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "drain --wait did not return after the connection closed"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "drain --wait: {status}");
}

#[test]
fn restarts_by_sigterm_and_sigkill_lose_no_connection_and_no_runtime_change() {
    let (lab, _http) = lab(60);
    let mut agent = Agent::start(&lab, &config(&lab, &["b1", "b2", "b3"], &[1, 1, 1])).unwrap();
    agent.json(&["backend", "drain", "web", "b2"]);
    agent.json(&["backend", "set-weight", "web", "b3", "3"]);

    // A client opening connections back to back for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let traffic = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let ns = lab.client().ns.name().to_owned();
        let (cs, vip) = (clients(&lab), SocketAddr::new(lab.vip4().into(), 80));
        std::thread::spawn(move || {
            let ns = lb_tests::netns::NetNs::open(&ns).unwrap();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                match http_get(&ns, Some(cs[i % cs.len()]), vip, T) {
                    Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                    Err(_) => failed.fetch_add(1, Ordering::SeqCst),
                };
                i += 1;
            }
        })
    };
    let wait_for = |n: u64| {
        let target = ok.load(Ordering::SeqCst) + n;
        let deadline = Instant::now() + Duration::from_secs(20);
        while ok.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "traffic stalled");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(20);
    for sig in [libc::SIGTERM, libc::SIGKILL] {
        let st = agent.stop(sig).unwrap();
        // With no agent at all, the pinned data path keeps forwarding.
        wait_for(30);
        assert!(sig == libc::SIGKILL || st.success(), "SIGTERM exit: {st}");
        agent.spawn().unwrap();
        wait_for(30);
        let status = agent.json(&["status"]);
        assert_eq!(
            status["adopted"], true,
            "the restarted agent adopts the pinned data path"
        );
        let web = &pool_status(&status, "web")["backends"];
        let by_name: BTreeMap<String, serde_json::Value> = web
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["name"].as_str().unwrap().to_owned(), b.clone()))
            .collect();
        assert_eq!(
            by_name["b2"]["state"], "drain",
            "runtime drain survives a restart"
        );
        assert_eq!(by_name["b2"]["state_override"], "drain");
        assert_eq!(
            by_name["b3"]["weight"], 3,
            "runtime weight survives a restart"
        );
    }
    stop.store(true, Ordering::SeqCst);
    traffic.join().unwrap();
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "failed connections ({} succeeded)",
        ok.load(Ordering::SeqCst)
    );
}

#[test]
fn a_broken_reload_is_rejected_and_changes_nothing() {
    let (lab, _http) = lab(30);
    let agent = Agent::start(&lab, &config(&lab, &["b1", "b2", "b3"], &[1, 1, 1])).unwrap();
    agent.json(&["backend", "drain", "web", "b1"]);
    let before = agent.json(&["status"]);
    let good = std::fs::read_to_string(&agent.config).unwrap();
    std::fs::write(
        &agent.config,
        good.replace("port: 80", "port: 80\n    wieght: 3"),
    )
    .unwrap();
    let out = agent.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(2), "an invalid file is bad input");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wieght"),
        "the reason names the problem: {err}"
    );
    let after = agent.json(&["status"]);
    assert_eq!(before["pools"], after["pools"], "state unchanged");
    assert_eq!(before["services"], after["services"], "state unchanged");
    for c in clients(&lab).iter().take(10) {
        assert_ne!(get(&lab, *c), "b1", "traffic unchanged (b1 still drained)");
    }
    assert_eq!(after["reloads"]["last_result"], "error");
    let metrics = agent.metrics(&lab).unwrap();
    assert!(
        metrics.contains("lb_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );
}

/// Each VIP's ring word (which ring, what size), read from the pinned map.
fn ring_words(agent: &Agent) -> BTreeMap<u32, u64> {
    use aya::maps::{Array, Map, MapData};
    let words = MapData::from_pin(
        agent
            .bpffs
            .join("maps")
            .join(lb_common::consts::MAP_RING_WORDS),
    )
    .unwrap();
    let words: Array<MapData, u64> = Map::Array(words).try_into().unwrap();
    (0..lb_common::consts::MAX_VIPS)
        .filter_map(|i| Some((i, words.get(&i, 0).ok().filter(|w| *w != 0)?)))
        .collect()
}

/// The inner map id in each slot of the pinned outer ring map.
fn ring_ids(agent: &Agent) -> BTreeMap<u32, u32> {
    use aya::maps::{ArrayOfMaps, Map, MapData};
    let outer =
        MapData::from_pin(agent.bpffs.join("maps").join(lb_common::consts::MAP_RINGS)).unwrap();
    let rings: ArrayOfMaps<MapData, MapData> = Map::ArrayOfMaps(outer).try_into().unwrap();
    (0..lb_common::abi::RING_GRACE_INDEX)
        .filter_map(|i| rings.get(&i, 0).ok().map(|m| (i, m.info().unwrap().id())))
        .collect()
}

#[test]
fn reload_with_a_changed_weight_flips_only_that_services_ring() {
    let (lab, _http) = lab(30);
    let agent = Agent::start(&lab, &config(&lab, &["b1", "b2", "b3"], &[1, 1, 1])).unwrap();
    let (words, rings) = (ring_words(&agent), ring_ids(&agent));
    assert_eq!(words.len(), 2);
    assert_eq!(rings.len(), 4, "two rings per service: {rings:?}");
    let text = std::fs::read_to_string(&agent.config).unwrap();
    let changed = text.replacen("weight: 1", "weight: 4", 1);
    std::fs::write(&agent.config, changed).unwrap();
    let r = agent.json(&["reload"]);
    assert_eq!(r["changed_services"], serde_json::json!(["web"]));
    // A weight is not in the backend's data-path entry: the one write is web's ring.
    assert_eq!(r["map_writes"], 1, "{r}");
    let after = ring_words(&agent);
    let flipped: Vec<u32> = words
        .keys()
        .filter(|k| words[k] != after[k])
        .copied()
        .collect();
    assert_eq!(
        flipped.len(),
        1,
        "exactly one ring word flipped: {words:?} -> {after:?}"
    );
    assert_eq!(
        ring_ids(&agent),
        rings,
        "the ring was rewritten in place: no outer-map update"
    );
    let status = agent.json(&["status"]);
    assert_eq!(backend_status(&status, "web", "b1")["weight"], 4);
    assert_eq!(backend_status(&status, "all", "b1")["weight"], 1);
}

#[test]
fn a_reload_that_changes_two_services_names_each_once() {
    let (lab, _http) = lab(10);
    let agent = Agent::start(&lab, &config(&lab, &["b1", "b2", "b3"], &[1, 1, 1])).unwrap();
    let text = std::fs::read_to_string(&agent.config).unwrap();
    // Both pools change: one weight in each.
    let changed = text.replace("weight: 1", "weight: 2").replace(
        "  all:\n    backends:\n      - name: b1\n",
        "  all:\n    backends:\n      - name: b1\n        weight: 5\n",
    );
    std::fs::write(&agent.config, changed).unwrap();
    let r = agent.json(&["reload"]);
    assert_eq!(
        r["changed_services"],
        serde_json::json!(["dns", "web"]),
        "{r}"
    );
    let events = agent.events();
    let reloads: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["type"] == "reload").collect();
    assert_eq!(reloads.len(), 1, "{events:#?}");
    assert_eq!(reloads[0]["ok"], true);
    assert_eq!(
        reloads[0]["changed_services"],
        serde_json::json!(["dns", "web"])
    );
}

#[test]
fn a_drain_of_a_shared_pool_applies_to_every_service_using_it() {
    let (lab, _http) = lab(40);
    let mut body = config(&lab, &["b1", "b2", "b3"], &[1, 1, 1]);
    body += &format!(
        "  - name: web-alt\n    address: {}\n    port: 8080\n    pool: all\n",
        lab.vip4()
    );
    let agent = Agent::start(&lab, &body).unwrap();
    let _alt = lab.start_http(8080).expect("HTTP backends on 8080");
    let (follower, lines) = agent.follow_events();
    agent.json(&["backend", "drain", "all", "b2"]);
    for c in clients(&lab) {
        let served = http_get(
            &lab.client().ns,
            Some(c),
            SocketAddr::new(lab.vip4().into(), 8080),
            T,
        )
        .unwrap_or_else(|e| panic!("GET :8080 from {c}: {e:#}"));
        assert_ne!(served, "b2", "{c}: web-alt avoids drained b2");
    }
    // History first (the agent's start), then the drain as it happens.
    let deadline = Instant::now() + Duration::from_secs(5);
    let event = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("the drain arrives on the followed stream");
        let e: serde_json::Value = serde_json::from_str(&line).unwrap();
        if e["type"] == "backend_state" {
            break e;
        }
    };
    assert_eq!(
        (
            &event["pool"],
            &event["backend"],
            &event["from"],
            &event["to"],
            &event["cause"]
        ),
        (
            &"all".into(),
            &"b2".into(),
            &"up".into(),
            &"drain".into(),
            &"operator".into()
        )
    );
    drop(follower);
    let status = agent.json(&["status"]);
    assert_eq!(backend_status(&status, "all", "b2")["state"], "drain");
    assert_eq!(
        backend_status(&status, "web", "b2")["state"],
        "up",
        "another pool's b2"
    );
}

#[test]
fn explain_predicts_the_backend_each_connection_reaches() {
    let (lab, _http) = lab(40);
    let agent = Agent::start(&lab, &config(&lab, &["b1", "b2", "b3"], &[1, 1, 1])).unwrap();
    let mut seen = BTreeMap::new();
    for c in clients(&lab) {
        let predicted = explain(&agent, "web", &c.to_string());
        assert_eq!(get(&lab, c), predicted, "{c}");
        *seen.entry(predicted).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
}

#[test]
fn metrics_count_exactly_the_packets_sent() {
    let (lab, _http) = lab(5);
    let agent = Agent::start(&lab, &config(&lab, &["b1", "b2", "b3"], &[1, 1, 1])).unwrap();
    const N: usize = 250;
    let payload = [7u8; 100];
    let vip = SocketAddr::new(lab.vip4().into(), 5353);
    lab.client().ns.run(|| {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for _ in 0..N {
            s.send_to(&payload, vip).unwrap();
        }
    });
    // 20 bytes IPv4 + 8 UDP + payload, per datagram.
    let want_bytes = N * (20 + 8 + payload.len());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = agent.metrics(&lab).unwrap();
        let line = |name: &str| {
            m.lines()
                .find(|l| l.starts_with(name) && l.contains("service=\"dns\""))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if line("lb_service_packets_total") == Some(N as f64) {
            assert_eq!(
                line("lb_service_bytes_total"),
                Some(want_bytes as f64),
                "{m}"
            );
            assert_eq!(
                line("lb_service_new_flows_total"),
                Some(1.0),
                "one client socket, one flow: {m}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lb_service_packets_total for dns never reached {N}:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_backend_behind_a_gateway_is_down_with_the_reason_and_macs_are_followed() {
    let (lab, _http) = lab(30);
    // 10.99.0.1 is routed through b3: not on a directly connected network.
    lab.lb()
        .ns
        .ip(&[
            "route",
            "add",
            "10.99.0.0/24",
            "via",
            &lab.backend("b3").ipv4.to_string(),
        ])
        .unwrap();
    let mut body = config(&lab, &["b1", "b2"], &[1, 1]);
    body = body.replacen(
        "      - name: b2\n",
        "      - name: far\n        address: 10.99.0.1\n      - name: b2\n",
        1,
    );
    let agent = Agent::start(&lab, &body).unwrap();
    let far = backend_status(&agent.json(&["status"]), "web", "far");
    assert_eq!(far["state"], "down");
    assert_eq!(far["down_reason"]["kind"], "no_next_hop");
    let reason = far["down_reason"]["detail"].as_str().unwrap_or_default();
    assert!(reason.contains("directly connected"), "{reason}");
    let table = String::from_utf8(agent.ctl(&["status"]).stdout).unwrap();
    assert!(
        table.contains("directly connected"),
        "the table says why:\n{table}"
    );

    // b1 changes its MAC (a replaced NIC); once the LB's neighbour table
    // learns it, the agent follows and b1 gets its traffic again.
    let b1_clients: Vec<IpAddr> = clients(&lab)
        .into_iter()
        .filter(|c| explain(&agent, "web", &c.to_string()) == "b1")
        .collect();
    assert!(!b1_clients.is_empty());
    assert_eq!(get(&lab, b1_clients[0]), "b1");
    let new_mac = "02:77:00:00:0a:01";
    lab.backend("b1")
        .ns
        .ip(&["link", "set", "dev", "eth0", "address", new_mac])
        .unwrap();
    assert!(
        http_get(
            &lab.client().ns,
            Some(b1_clients[0]),
            SocketAddr::new(lab.vip4().into(), 80),
            Duration::from_secs(1)
        )
        .is_err(),
        "frames to the old MAC go nowhere"
    );
    lab.lb()
        .ns
        .ip(&[
            "neigh",
            "replace",
            &lab.backend("b1").ipv4.to_string(),
            "lladdr",
            new_mac,
            "dev",
            "eth0",
            "nud",
            "reachable",
        ])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let b1 = backend_status(&agent.json(&["status"]), "web", "b1");
        if b1["next_hop"]["mac"] == new_mac {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not follow the MAC change: {b1}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for c in b1_clients.iter().take(5) {
        assert_eq!(get(&lab, *c), "b1");
    }
}

#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    let (lab, _http) = lab(2);
    let dir = std::env::temp_dir().join(format!("lb-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut agent = Agent::start_env(
        &lab,
        &config(&lab, &["b1", "b2", "b3"], &[1, 1, 1]),
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    )
    .unwrap();
    // Each call waits for a datagram containing `what`, consuming those before it.
    let expect = |what: &str| {
        let mut buf = [0u8; 4096];
        let mut seen = String::new();
        loop {
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}; got: {seen}"));
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.contains(what) {
                return;
            }
            seen.push_str(&msg);
            seen.push('\n');
        }
    };
    expect("READY=1");
    agent.ctl(&["reload"]);
    expect("RELOADING=1");
    // SIGHUP reloads too (systemctl reload): the file gets re-read.
    let before = agent.json(&["status"])["reloads"]["count"]
        .as_u64()
        .unwrap();
    agent.signal(libc::SIGHUP).unwrap();
    expect("RELOADING=1");
    expect("READY=1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while agent.json(&["status"])["reloads"]["count"]
        .as_u64()
        .unwrap()
        != before + 1
    {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = agent.stop(libc::SIGTERM).unwrap();
    assert!(st.success());
    expect("STOPPING=1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ebpf_log_debug_shows_the_data_paths_decisions_in_the_agent_log() {
    let (lab, _http) = lab(3);
    let agent = Agent::start_with(
        &lab,
        "  ebpf_log: debug\n",
        &config(&lab, &["b1", "b2", "b3"], &[1, 1, 1]),
        &[],
    )
    .unwrap();
    let c = clients(&lab)[0];
    let served = get(&lab, c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !agent.log().contains("new flow vip") {
        assert!(
            Instant::now() < deadline,
            "no aya-log event in the agent log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!served.is_empty());
    // Off by default: the other tests' agents run without it, and their log has none.
}
