//! VRRP on the netns rig: lb's agent and Debian's keepalived as the two
//! routers of one segment, then two lb agents under traffic (docs/vrrp.md,
//! "Interoperability"). Needs root, keepalived and the lb-ctl binary
//! (`cargo build -p lb-ctl`). Node 1 is the lab's `lb` (10.77.0.2), node 2
//! `lb2` (10.77.0.3); the VIP is the lab's, 10.77.100.1 (fd77::100:1).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lb_tests::vrrp::{Keepalived, LbNode, Pair};
use lb_tests::vrrp_conf::Router;
use lb_tests::vrrp_probe::{Listener, Watch, gap, overlap};

const T: Duration = Duration::from_secs(10);

fn owner(pair: &Pair, n: usize, vip: IpAddr, node: &LbNode) -> Duration {
    pair.wait_owner(n, vip, T)
        .unwrap_or_else(|e| panic!("{e}\nlb's log:\n{}", node.log()))
}

/// Waits for instance VI_1 to report `state`: the address moves first
/// (added before the transition is recorded, as keepalived does before its
/// notify scripts), so the status may trail `ip addr` by a moment.
fn wait_state(node: &LbNode, state: &str) {
    node.wait_state("VI_1", state, T)
        .unwrap_or_else(|e| panic!("{e}\n{}", node.log()));
}

/// The client reaches the VIP through whoever owns it (its ARP cache
/// follows the gratuitous ARP): lb's XDP path to a backend, or the
/// keepalived node's own listener.
fn reachable(pair: &Pair, vip: IpAddr) {
    pair.wait_served(vip, T).unwrap_or_else(|e| panic!("{e}"));
}

/// keepalived on node 2 with a listener on port 80 behind its VIP.
fn keepalived(pair: &Pair, r: &Router) -> (Keepalived, Listener) {
    let k = Keepalived::start(pair.node(2), &r.keepalived_conf()).unwrap();
    (k, Listener::start(pair.node(2), 80))
}

/// lb on node 1 with `lb`, keepalived on node 2 with `ka`: lb is master
/// (it has the higher priority), then SIGTERM hands over to keepalived,
/// then a restarted lb preempts.
fn lb_over_keepalived(pair: &Pair, lb: &Router, ka: &Router) {
    let vip = lb.vip();
    let _k = keepalived(pair, ka);
    let mut node = LbNode::start(pair.node(1), &lb.lb_yaml(&pair.lab)).unwrap();
    owner(pair, 1, vip, &node);
    reachable(pair, vip);
    wait_state(&node, "master");
    node.stop(libc::SIGTERM).unwrap();
    pair.wait_owner(2, vip, T).unwrap();
    reachable(pair, vip);
    node.spawn().unwrap();
    owner(pair, 1, vip, &node);
    reachable(pair, vip);
    let i = node.instance("VI_1");
    assert!(
        i["adverts_received"].as_u64() > Some(0),
        "it heard keepalived: {i}"
    );
    let errors: u64 = i["errors"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(errors, 0, "keepalived's adverts all valid: {i}");
}

/// keepalived on node 2 with the higher priority is master, lb backup; a
/// stopped keepalived (priority 0) is replaced by lb; a restarted one preempts.
fn keepalived_over_lb(pair: &Pair, lb: &Router, ka: &Router) {
    let vip = lb.vip();
    let (mut k, _listener) = keepalived(pair, ka);
    let node = LbNode::start(pair.node(1), &lb.lb_yaml(&pair.lab)).unwrap();
    pair.wait_owner(2, vip, T)
        .unwrap_or_else(|e| panic!("{e}\n{}", k.log()));
    wait_state(&node, "backup");
    k.stop().unwrap();
    owner(pair, 1, vip, &node);
    reachable(pair, vip);
    k.spawn().unwrap();
    pair.wait_owner(2, vip, T)
        .unwrap_or_else(|e| panic!("{e}\n{}", k.log()));
    reachable(pair, vip);
}

/// (a) VRRPv3, advert 1 s: lb 150 over keepalived 100.
#[test]
fn v3_lb_master_keepalived_backup() {
    let pair = Pair::new(false).unwrap();
    lb_over_keepalived(
        &pair,
        &Router::new(3, 150, 1000),
        &Router::new(3, 100, 1000),
    );
}

/// (b) The reverse: keepalived 150 over lb 100.
#[test]
fn v3_keepalived_master_lb_backup() {
    let pair = Pair::new(false).unwrap();
    keepalived_over_lb(
        &pair,
        &Router::new(3, 100, 1000),
        &Router::new(3, 150, 1000),
    );
}

/// (a) and (b) with VRRPv2 and `auth_type PASS`, the keepalived default.
#[test]
fn v2_pass_both_ways() {
    let pair = Pair::new(false).unwrap();
    let with = |p| Router {
        auth: Some("xiaoqi".into()),
        ..Router::new(2, p, 1000)
    };
    lb_over_keepalived(&pair, &with(150), &with(100));
    keepalived_over_lb(&pair, &with(100), &with(150));
}

/// (c) A wrong password on one side: each refuses the other's adverts,
/// says so, and is not moved by them.
#[test]
fn v2_wrong_password_is_refused_and_not_obeyed() {
    let pair = Pair::new(false).unwrap();
    let lb = Router {
        auth: Some("right".into()),
        ..Router::new(2, 100, 1000)
    };
    let ka = Router {
        auth: Some("wrong".into()),
        ..Router::new(2, 150, 1000)
    };
    let k = Keepalived::start(pair.node(2), &ka.keepalived_conf()).unwrap();
    let node = LbNode::start(pair.node(1), &lb.lb_yaml(&pair.lab)).unwrap();
    // keepalived's higher priority would make lb backup, were it obeyed.
    owner_both(&pair, lb.vip(), &node);
    wait_state(&node, "master");
    let i = node.instance("VI_1");
    assert!(i["errors"]["auth_password"].as_u64() > Some(0), "{i}");
    assert!(
        node.log().contains("wrong password from 10.77.0.3"),
        "{}",
        node.log()
    );
    assert!(
        k.log().contains("invalid passwd"),
        "keepalived refuses ours too:\n{}",
        k.log()
    );
}

fn owner_both(pair: &Pair, vip: IpAddr, node: &LbNode) {
    let deadline = Instant::now() + T;
    while !(pair.holds(1, vip) && pair.holds(2, vip)) {
        assert!(
            Instant::now() < deadline,
            "both should be master:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (d) VRRPv3 with advert_int 0.1, both ways, IPv6 this time.
#[test]
fn v3_fast_adverts_ipv6() {
    let pair = Pair::new(true).unwrap();
    let r = |p| Router {
        ipv6: true,
        ..Router::new(3, p, 100)
    };
    lb_over_keepalived(&pair, &r(150), &r(100));
    keepalived_over_lb(&pair, &r(100), &r(150));
}

/// (d) VRRPv3 with advert_int 0.1 over IPv4.
#[test]
fn v3_fast_adverts_ipv4() {
    let pair = Pair::new(false).unwrap();
    lb_over_keepalived(&pair, &Router::new(3, 150, 100), &Router::new(3, 100, 100));
}

/// (e) Unicast peers (implying `peers`): adverts go to the other router only.
#[test]
fn unicast_peers_both_ways() {
    let pair = Pair::new(false).unwrap();
    let (a1, a2) = (pair.address(1, false), pair.address(2, false));
    let lb = |p| Router {
        unicast_peers: vec![a2],
        ..Router::new(3, p, 1000)
    };
    let ka = |p| Router {
        unicast_peers: vec![a1],
        ..Router::new(3, p, 1000)
    };
    lb_over_keepalived(&pair, &lb(150), &ka(100));
    keepalived_over_lb(&pair, &lb(100), &ka(150));
}

/// Two lb agents under traffic: the master's agent is killed with -9. Its
/// watchdog resigns and removes the VIP at once, the XDP path keeps
/// forwarding until the backup's gratuitous ARP moves the client; never
/// two owners, and the restarted agent preempts without a gap.
#[test]
fn kill_9_under_traffic_never_two_owners() {
    let pair = Pair::new(false).unwrap();
    let (r1, r2) = (Router::new(3, 150, 1000), Router::new(3, 100, 1000));
    let vip = r1.vip();
    let mut n1 = LbNode::start(pair.node(1), &r1.lb_yaml(&pair.lab)).unwrap();
    let n2 = LbNode::start(pair.node(2), &r2.lb_yaml(&pair.lab)).unwrap();
    owner(&pair, 1, vip, &n1);
    reachable(&pair, vip);
    let (w1, w2) = (
        Watch::owner(pair.node(1), vip),
        Watch::owner(pair.node(2), vip),
    );
    let probe = Watch::probe(&pair.lab.client().ns, vip, 80);
    std::thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    n1.stop(libc::SIGKILL).unwrap();
    // The watchdog resigned: the backup (100) waits Skew_Time, 609 ms, not
    // the whole Master_Down_Interval.
    let took = owner(&pair, 2, vip, &n2);
    assert!(
        took < Duration::from_millis(1500),
        "takeover after {took:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    n1.spawn().unwrap();
    owner(&pair, 1, vip, &n1);
    std::thread::sleep(Duration::from_millis(500));
    let (r, o1, o2) = (probe.finish(), w1.finish(), w2.finish());
    let failed = r.iter().filter(|(t, ok)| *t > killed && !ok).count();
    let g = gap(&r, killed);
    let two = overlap(&o1, &o2);
    eprintln!(
        "kill -9: {failed} failed probes of {}, gap {g:?}, two owners {two:?}",
        r.len()
    );
    assert!(
        g <= Duration::from_millis(100),
        "service gap {g:?} ({failed} failed probes)"
    );
    assert!(
        two <= Duration::from_millis(20),
        "two routers held the VIP for {two:?}"
    );
}

/// The users' check: counts "nginx: master process" and stops the VRRP
/// daemon when there is none. The stop command is this rig's, and so is the
/// end of the pattern: other nginx masters may run on a shared test machine.
fn check_nginx(dir: &std::path::Path, stop: &str) -> std::path::PathBuf {
    let path = dir.join("check_nginx.sh");
    let text = format!(
        "#!/bin/bash\nCode=$(ps -ef | grep -v grep | grep -c \"{}\")\nif [ ${{Code}} -eq 0 ]; then {stop}; fi\n",
        nginx_title()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// A process `ps -ef` shows as nginx's master; killed when dropped.
struct FakeNginx(std::process::Child);

impl FakeNginx {
    fn start() -> FakeNginx {
        let c = std::process::Command::new("bash")
            .args(["-c", &format!("exec -a '{}' sleep 600", nginx_title())])
            .spawn()
            .unwrap();
        FakeNginx(c)
    }
}

/// "nginx: master process", then this test process's own mark.
fn nginx_title() -> String {
    format!(
        "nginx: master process /usr/sbin/nginx lbtest{}",
        std::process::id()
    )
}

impl Drop for FakeNginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The seed's keepalived.conf, its addresses and interface this rig's.
fn seed_conf(script: &std::path::Path) -> String {
    format!(
        "vrrp_script chk_nginx {{\n    script \"{}\"\n    interval 2\n    weight 2\n}}\n\
         vrrp_instance VI_1 {{\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    \
         mcast_src_ip 10.77.0.3\n    priority 100\n    advert_int 1\n    authentication {{\n        \
         auth_type PASS\n        auth_pass xiaoqi\n    }}\n    virtual_ipaddress {{\n        10.77.100.1\n    }}\n    \
         track_script {{\n        chk_nginx\n    }}\n}}\n",
        script.display()
    )
}

/// (f) The seed on both sides, one after the other: its script counts every
/// "nginx: master process" on the machine, so two at once would see each
/// other's fake nginx.
#[test]
fn seed_on_either_side() {
    seed_keepalived_master_lb_backup();
    seed_chk_nginx_stopping_lb_hands_over_cleanly();
}

/// (f) keepalived runs the seed; lb (priority 90, the seed's translation)
/// is its backup. When nginx dies the seed's script stops keepalived, which
/// resigns: lb takes over within Skew_Time.
fn seed_keepalived_master_lb_backup() {
    let pair = Pair::new(false).unwrap();
    let nginx = FakeNginx::start();
    let mut k = Keepalived::new(pair.node(2)).unwrap();
    let stop = format!(
        "kill -TERM $(cat {})",
        k.dir.join("keepalived.pid").display()
    );
    std::fs::write(&k.conf, seed_conf(&check_nginx(&k.dir, &stop))).unwrap();
    k.spawn().unwrap();
    let _listener = Listener::start(pair.node(2), 80);
    let lb = Router {
        auth: Some("xiaoqi".into()),
        ..Router::new(2, 90, 1000)
    };
    let node = LbNode::start(pair.node(1), &lb.lb_yaml(&pair.lab)).unwrap();
    pair.wait_owner(2, lb.vip(), T)
        .unwrap_or_else(|e| panic!("{e}\n{}", k.log()));
    let deadline = Instant::now() + T;
    while node.instance("VI_1")["master_priority"] != 102 {
        assert!(
            Instant::now() < deadline,
            "keepalived advertises 100 + 2: {}",
            node.instance("VI_1")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(nginx);
    let took = owner(&pair, 1, lb.vip(), &node);
    wait_state(&node, "master");
    assert!(k.log().contains("sent 0 priority"), "{}", k.log());
    let i = node.instance("VI_1");
    assert!(
        i["last_transition"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("the master resigned"),
        "{i}"
    );
    eprintln!("handover after nginx died: {took:?} (script interval 2 s + Skew_Time)");
    reachable(&pair, lb.vip());
}

/// (f) The seed's chk_nginx on lb's side, unchanged but for what it stops:
/// lb. The stopped agent resigns; keepalived takes over within Skew_Time
/// and the client sees no gap (lb's XDP path serves until then).
fn seed_chk_nginx_stopping_lb_hands_over_cleanly() {
    let pair = Pair::new(false).unwrap();
    let nginx = FakeNginx::start();
    let ka = Router {
        auth: Some("xiaoqi".into()),
        ..Router::new(2, 90, 1000)
    };
    let (k, _listener) = keepalived(&pair, &ka);
    let pidfile = k.dir.join("lb.pid");
    let script = check_nginx(&k.dir, &format!("kill -TERM $(cat {})", pidfile.display()));
    let lb = Router {
        auth: Some("xiaoqi".into()),
        ..Router::new(2, 100, 1000)
    };
    let yaml = lb.lb_yaml(&pair.lab).replace(
        "vrrp:\n",
        &format!(
            "vrrp:\n  track_scripts:\n    chk_nginx: {{script: \"{}\", interval: 2, weight: 2}}\n",
            script.display()
        ),
    );
    let node = LbNode::start(
        pair.node(1),
        &format!("{yaml}      track_script: [chk_nginx]\n"),
    )
    .unwrap();
    std::fs::write(&pidfile, node.pid().unwrap().to_string()).unwrap();
    owner(&pair, 1, lb.vip(), &node);
    let deadline = Instant::now() + T;
    while node.instance("VI_1")["effective_priority"] != 102 {
        assert!(
            Instant::now() < deadline,
            "100 + 2 while nginx runs: {}",
            node.instance("VI_1")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let probe = Watch::probe(&pair.lab.client().ns, lb.vip(), 80);
    let from = Instant::now();
    drop(nginx);
    pair.wait_owner(2, lb.vip(), T).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let g = gap(&probe.finish(), from);
    assert!(node.log().contains("entering STOP state"), "{}", node.log());
    assert!(g <= Duration::from_millis(100), "service gap {g:?}");
}

/// The owner (255, `state: MASTER`) is master at once; its notify scripts run
/// with keepalived's arguments; the transitions are `vrrp` events; stopping
/// runs notify_stop.
#[test]
fn owner_notify_scripts_and_events() {
    let pair = Pair::new(false).unwrap();
    let r = Router::new(3, 255, 1000);
    let node = LbNode::start(pair.node(1), "").unwrap();
    let out = node.dir.join("notified");
    let script = node.dir.join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", out.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s = script.display();
    let yaml = r.lb_yaml(&pair.lab).replace(
        "      priority: 255\n",
        "      priority: 255\n      state: MASTER\n",
    );
    let yaml = format!(
        "{yaml}      notify_master: [{s}, master]\n      notify_stop: [{s}, stop]\n      notify: {s}\n"
    );
    let mut node = restart_with(node, &yaml);
    let took = owner(&pair, 1, r.vip(), &node);
    assert!(
        took < Duration::from_millis(500),
        "the owner is master at once: {took:?}"
    );
    wait_file(&out, "INSTANCE VI_1 MASTER 255");
    let events = node.ctl(&["-o", "json", "events"]);
    let text = String::from_utf8_lossy(&events.stdout);
    assert!(
        text.contains(r#""type":"vrrp","instance":"VI_1","from":"backup","to":"master""#)
            || text.contains(r#""to":"master""#),
        "{text}"
    );
    node.stop(libc::SIGTERM).unwrap();
    assert!(!pair.holds(1, r.vip()), "released on stop");
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        got,
        "master\nINSTANCE VI_1 MASTER 255\nstop\nINSTANCE VI_1 STOP 255\n"
    );
}

/// Replaces the node's configuration and restarts it.
fn restart_with(mut node: LbNode, body: &str) -> LbNode {
    node.stop(libc::SIGTERM).unwrap();
    let text = std::fs::read_to_string(&node.config).unwrap();
    let agent = text.split("interfaces:").next().unwrap_or(&text).to_owned();
    std::fs::write(&node.config, format!("{agent}{body}")).unwrap();
    node.spawn().unwrap();
    node
}

fn wait_file(path: &std::path::Path, line: &str) {
    let deadline = Instant::now() + T;
    while !std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .any(|l| l == line)
    {
        assert!(
            Instant::now() < deadline,
            "{line:?} not in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// lb's own health: when the pool it serves has no backend up, the instance
/// drops its priority by the pool's weight and keepalived takes over; back
/// up, lb preempts again.
#[test]
fn track_pool_hands_over_when_no_backend_is_up() {
    let pair = Pair::new(false).unwrap();
    let lb = Router::new(3, 150, 1000);
    let (_k, _listener) = keepalived(&pair, &Router::new(3, 100, 1000));
    let yaml = format!(
        "{}      track_pool: [{{name: web, weight: -60}}]\n",
        lb.lb_yaml(&pair.lab)
    );
    let node = LbNode::start(pair.node(1), &yaml).unwrap();
    owner(&pair, 1, lb.vip(), &node);
    for b in ["10.77.0.101", "10.77.0.102"] {
        assert!(node.ctl(&["backend", "maint", "web", b]).status.success());
    }
    pair.wait_owner(2, lb.vip(), T)
        .unwrap_or_else(|e| panic!("{e}\n{}", node.log()));
    assert_eq!(node.instance("VI_1")["effective_priority"], 90);
    assert!(
        node.ctl(&["backend", "enable", "web", "10.77.0.101"])
            .status
            .success()
    );
    owner(&pair, 1, lb.vip(), &node);
    assert_eq!(node.instance("VI_1")["effective_priority"], 150);
}

/// `lb-ctl vrrp release` (systemd's ExecStopPost) removes what the file's
/// instances may own, with no agent running.
#[test]
fn release_without_an_agent() {
    let pair = Pair::new(false).unwrap();
    let r = Router::new(3, 150, 1000);
    let mut node = LbNode::start(pair.node(1), &r.lb_yaml(&pair.lab)).unwrap();
    owner(&pair, 1, r.vip(), &node);
    node.stop(libc::SIGKILL).unwrap();
    let deadline = Instant::now() + T;
    while pair.holds(1, r.vip()) {
        assert!(
            Instant::now() < deadline,
            "the watchdog releases the VIP of a killed agent"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Both the agent and its watchdog gone, the address left behind:
    pair.node(1)
        .ip(&["address", "replace", "10.77.100.1/32", "dev", "eth0"])
        .unwrap();
    let out = std::process::Command::new(lb_tests::agent::lb_ctl_bin())
        .args([
            "--netns",
            pair.node(1).name(),
            "vrrp",
            "release",
            "--config",
        ])
        .arg(&node.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("released 10.77.100.1/32 on eth0"));
    assert!(!pair.holds(1, r.vip()));
}

/// `use_vmac`: the master holds the VIP on `vrrp.51`, whose MAC is
/// 00:00:5e:00:01:33, and the client's ARP entry names that MAC.
#[test]
fn use_vmac_puts_the_vip_behind_the_virtual_mac() {
    let pair = Pair::new(false).unwrap();
    let r = Router::new(3, 150, 1000);
    let node = LbNode::start(
        pair.node(1),
        &format!("{}      use_vmac: true\n", r.lb_yaml(&pair.lab)),
    )
    .unwrap();
    // Listed as soon as the agent answers, before it has built the instance.
    let row = node.instance("VI_1");
    assert_eq!(row["vrid"], 51, "no VI_1 in `vrrp status` at READY: {row}");
    let deadline = Instant::now() + T;
    while !pair
        .node(1)
        .ip(&["-o", "addr", "show", "dev", "vrrp.51"])
        .unwrap_or_default()
        .contains("10.77.100.1")
    {
        assert!(
            Instant::now() < deadline,
            "no VIP on vrrp.51:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    reachable(&pair, r.vip());
    let neigh = pair
        .lab
        .client()
        .ns
        .ip(&["neigh", "show", "10.77.100.1"])
        .unwrap();
    assert!(neigh.contains("00:00:5e:00:01:33"), "{neigh}");
}
