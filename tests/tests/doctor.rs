//! `lb-ctl doctor` against network namespaces set up wrong on purpose: a
//! driver without native XDP (a bridge) configured native, a veth configured generic,
//! another XDP program attached, strict rp_filter, a pin directory held by
//! another process; and the same checks passing on a namespace set up right.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use lb_dataplane::{Dataplane, Options, XdpMode};
use lb_tests::{agent::lb_ctl_bin, netns::NetNs};
use serde_json::Value;

/// Runs `lb-ctl --netns NS doctor -c CONFIG -o json`; its exit code and report.
fn doctor(ns: &NetNs, config: &str) -> (i32, Value) {
    let file = std::env::temp_dir().join(format!(
        "lb-doctor-{}-{}.yaml",
        std::process::id(),
        ns.name()
    ));
    std::fs::write(&file, config).unwrap();
    let out = Command::new(lb_ctl_bin())
        .args(["--netns", ns.name(), "doctor", "-o", "json", "-c"])
        .arg(&file)
        .output()
        .expect("running lb-ctl doctor");
    let _ = std::fs::remove_file(&file);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exit code"), report)
}

/// The finding of `check` about `subject`.
fn finding<'a>(report: &'a Value, check: &str, subject: Option<&str>) -> &'a Value {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["check"] == check && f["subject"].as_str() == subject)
        .unwrap_or_else(|| panic!("no {check} {subject:?} finding in {report:#}"))
}

fn config(interfaces: &str, bpffs: &str) -> String {
    format!(
        "agent: {{bpffs: {bpffs}, metrics_listen: null}}\n\
         interfaces: [{interfaces}]\n\
         pools: {{web: {{backends: [{{name: b1, address: 10.78.0.2}}]}}}}\n\
         services: [{{name: web, address: 10.78.0.100, port: 80, pool: web}}]\n"
    )
}

/// A pin directory of this test's own, `dir` under /sys/fs/bpf or /tmp.
fn pin_dir(base: &str) -> PathBuf {
    PathBuf::from(base).join(format!("lbt-doctor-{}", std::process::id()))
}

/// `flock --no-fork DIR sleep 60`: another process (sleep itself, killed on
/// drop) holding a pin directory's lock.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Three links set up wrong: veth `lb0` with another XDP program (lb's
/// trivial pass program, loaded privately; dropping the `Dataplane` detaches
/// it), veth `gen0` and bridge `br0`, strict rp_filter on all.
fn wrong_namespace() -> (NetNs, Dataplane) {
    let ns = NetNs::new_unique("dr-bad").expect("netns");
    ns.ip_batch(&[
        "link add lb0 type veth peer name peer0",
        "link add gen0 type veth peer name peer1",
        "link add br0 type bridge",
        "link set lb0 up",
        "link set gen0 up",
        "link set br0 up",
        "addr add 10.78.0.1/24 dev lb0",
    ])
    .unwrap();
    ns.sysctl("net.ipv4.conf.all.rp_filter", "1").unwrap();
    let mut other = Dataplane::open(&Options {
        flow_table_size: 1024,
        ..Options::default()
    })
    .expect("loading the XDP object");
    ns.try_run(|| other.attach_pass("lb0", XdpMode::Driver))
        .unwrap()
        .expect("attaching lb_pass to lb0");
    (ns, other)
}

/// Another process holding `dir`'s writer lock, once /proc/locks says so.
fn hold(dir: &Path) -> Holder {
    std::fs::create_dir_all(dir).unwrap();
    let holder = Holder(
        Command::new("flock")
            .arg("--no-fork")
            .arg(dir)
            .args(["sleep", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("flock"),
    );
    // flock takes the lock, then becomes sleep.
    let held = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        lb_dataplane::holder_of(dir).is_some()
    });
    assert!(held, "flock never took the lock on {}", dir.display());
    holder
}

#[test]
fn a_namespace_set_up_wrong_shows_each_problem_with_its_fix() {
    let (ns, _other) = wrong_namespace();
    let dir = pin_dir("/tmp");
    let holder = hold(&dir);

    let interfaces = "{name: lb0}, {name: gen0, xdp_mode: generic}, {name: br0}";
    let (code, report) = doctor(&ns, &config(interfaces, &dir.display().to_string()));
    drop(holder);
    let _ = std::fs::remove_dir(&dir);

    assert_eq!(code, 1, "{report:#}");
    let program = finding(&report, "xdp_program", Some("lb0"));
    assert_eq!(program["level"], "problem", "{program}");
    assert!(
        program["message"].as_str().unwrap().contains("lb_pass"),
        "{program}"
    );
    assert!(
        program["fix"]
            .as_str()
            .unwrap()
            .contains("ip link set dev lb0 xdp off")
    );
    let bridge = finding(&report, "xdp_mode", Some("br0"));
    assert_eq!(bridge["level"], "problem", "{bridge}");
    assert!(
        bridge["fix"]
            .as_str()
            .unwrap()
            .contains("xdp_mode: generic")
    );
    let generic = finding(&report, "xdp_mode", Some("gen0"));
    assert_eq!(generic["level"], "warning", "{generic}");
    for iface in ["lb0", "gen0", "br0"] {
        let rp = finding(&report, "rp_filter", Some(iface));
        assert_eq!(rp["level"], "problem", "{rp}");
        let fix = format!("net.ipv4.conf.{iface}.rp_filter=2");
        assert!(rp["fix"].as_str().unwrap().contains(&fix), "{rp}");
    }
    let writer = finding(&report, "lb_writer", None);
    assert_eq!(writer["level"], "warning", "{writer}");
    assert!(
        writer["message"].as_str().unwrap().contains("sleep 60"),
        "{writer}"
    );
    let bpffs = finding(&report, "bpffs", None);
    assert_eq!(bpffs["level"], "warning", "/tmp is no bpffs: {bpffs}");
}

#[test]
fn a_namespace_set_up_right_has_no_problem() {
    let ns = NetNs::new_unique("dr-ok").expect("netns");
    ns.ip_batch(&[
        "link add lb0 type veth peer name peer0",
        "link set lb0 up",
        "link set peer0 up",
        "addr add 10.78.0.1/24 dev lb0",
    ])
    .unwrap();
    ns.sysctl("net.ipv4.conf.all.rp_filter", "0").unwrap();
    ns.sysctl("net.ipv4.conf.lb0.rp_filter", "2").unwrap();
    let bpffs = pin_dir("/sys/fs/bpf");
    let (code, report) = doctor(&ns, &config("{name: lb0}", &bpffs.display().to_string()));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["problems"], 0);
    assert_eq!(finding(&report, "xdp_mode", Some("lb0"))["level"], "ok");
    assert_eq!(finding(&report, "xdp_program", Some("lb0"))["level"], "ok");
    let rp = finding(&report, "rp_filter", Some("lb0"));
    assert_eq!(rp["level"], "ok", "{rp}");
    assert_eq!(finding(&report, "bpffs", None)["level"], "ok");
    let advice = finding(&report, "dr_backend", Some("10.78.0.2"));
    assert!(
        advice["fix"]
            .as_str()
            .unwrap()
            .contains("ip addr add 10.78.0.100/32 dev lo")
    );
}
