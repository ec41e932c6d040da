//! Installing lb as operators do: the Debian package `cargo xtask test`
//! builds from the debug binary (`cargo xtask package --debug`), its file
//! list, installing, running and removing it in a throwaway root made from the
//! host's Debian 12 `/usr` (tests/src/chroot.rs), and the Vagrant lab's
//! Vagrantfile and generated configurations.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use lb_tests::{agent::lb_ctl_bin, chroot::ThrowawayRoot, netns::NetNs};

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
}

/// The package `cargo xtask test` built before the tests.
fn deb() -> PathBuf {
    let arch = stdout(Command::new("dpkg").arg("--print-architecture"));
    let deb = workspace().join(format!(
        "target/debug/debian/lb_{}_{}.deb",
        env!("CARGO_PKG_VERSION"),
        arch.trim()
    ));
    assert!(
        deb.is_file(),
        "no {}: build it with `cargo xtask package --debug` (`cargo xtask test` does)",
        deb.display()
    );
    deb
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `dpkg-deb -c`: path (without the leading `.`) -> mode string.
fn contents(deb: &Path) -> BTreeMap<String, String> {
    stdout(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f.get(5)?.trim_start_matches('.').trim_end_matches('/');
            Some((path.to_owned(), (*f.first()?).to_owned()))
        })
        .collect()
}

/// The subcommands `lb-ctl --help` lists.
fn subcommands() -> Vec<String> {
    let help = stdout(Command::new(lb_ctl_bin()).arg("--help"));
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_package_holds_every_file_with_its_mode() {
    let deb = deb();
    let files = contents(&deb);
    let expect = [
        ("/usr/bin/lb-ctl", "-rwxr-xr-x"),
        ("/lib/systemd/system/lb.service", "-rw-r--r--"),
        ("/etc/lb/lb.yaml", "-rw-r--r--"),
        ("/var/lib/lb", "drwx------"),
        (
            "/usr/share/bash-completion/completions/lb-ctl",
            "-rw-r--r--",
        ),
        ("/usr/share/zsh/vendor-completions/_lb-ctl", "-rw-r--r--"),
        (
            "/usr/share/fish/vendor_completions.d/lb-ctl.fish",
            "-rw-r--r--",
        ),
        ("/usr/share/man/man8/lb-ctl.8.gz", "-rw-r--r--"),
        ("/usr/share/doc/lb/copyright", "-rw-r--r--"),
        ("/usr/share/doc/lb/changelog.gz", "-rw-r--r--"),
        ("/usr/share/lintian/overrides/lb", "-rw-r--r--"),
        ("/usr/share/doc/lb/README.md", "-rw-r--r--"),
        ("/usr/share/doc/lb/docs/operators-guide.md", "-rw-r--r--"),
        ("/usr/share/doc/lb/examples/lb.yaml", "-rw-r--r--"),
    ];
    for (path, mode) in expect {
        assert_eq!(
            files.get(path).map(String::as_str),
            Some(mode),
            "{path} in {files:#?}"
        );
    }
    // A page for every subcommand --help lists.
    let commands = subcommands();
    assert!(commands.contains(&"doctor".to_owned()), "{commands:?}");
    for c in commands {
        let page = format!("/usr/share/man/man8/lb-ctl-{c}.8.gz");
        assert!(files.contains_key(&page), "no {page}");
    }
    // Nothing in /run (systemd makes /run/lb), nothing under /usr/local.
    assert!(
        !files
            .keys()
            .any(|p| p.starts_with("/run") || p.starts_with("/usr/local")),
        "{files:#?}"
    );
    let conffiles = stdout(
        Command::new("dpkg-deb")
            .args(["-I"])
            .arg(&deb)
            .arg("conffiles"),
    );
    assert_eq!(conffiles, "/etc/lb/lb.yaml\n");
    let depends = stdout(
        Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg("Depends"),
    );
    assert!(depends.starts_with("libc6 (>= "), "{depends}");
}

/// Runs `script` in `root`, panicking with its output unless it exits `code`.
fn run(root: &ThrowawayRoot, netns: Option<&str>, script: &str, code: i32) -> String {
    let out = root
        .run(netns, script)
        .expect("running in the throwaway root");
    assert_eq!(out.status.code(), Some(code), "`{script}`: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `lb-ctl doctor -o json` in `root`: a report whose exit status matches its
/// problems. It reads this host through the root's /proc and /sys; the
/// example names eth0 and eth1, which may not exist here (then exit 1).
fn doctor_reports_in(root: &ThrowawayRoot) {
    let out = root.run(None, "lb-ctl doctor -o json").unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor's JSON: {e}: {}", text(&out)));
    let problems = report["problems"].as_u64().expect("problems");
    assert_eq!(
        out.status.code(),
        Some(if problems > 0 { 1 } else { 0 }),
        "{report:#}"
    );
    let findings = report["findings"].as_array().expect("findings");
    let kernel = findings
        .iter()
        .find(|f| f["check"] == "kernel")
        .expect("kernel");
    assert_eq!(kernel["level"], "ok", "{kernel}");
}

#[test]
fn it_installs_runs_upgrades_removes_and_purges_in_a_throwaway_root() {
    let root = ThrowawayRoot::new().expect("throwaway root");
    root.copy_in(&deb(), "/tmp/lb.deb").unwrap();

    let install = run(&root, None, "dpkg -i /tmp/lb.deb", 0);
    assert!(install.contains("neither enabled nor started"), "{install}");
    let version = run(&root, None, "lb-ctl --version", 0);
    assert_eq!(version, format!("lb-ctl {}\n", env!("CARGO_PKG_VERSION")));
    run(&root, None, "lb-ctl config check /etc/lb/lb.yaml", 0);
    run(
        &root,
        None,
        "systemd-analyze verify /lib/systemd/system/lb.service",
        0,
    );
    assert_eq!(run(&root, None, "stat -c %a /var/lib/lb", 0), "700\n");
    let unit = run(&root, None, "cat /lib/systemd/system/lb.service", 0);
    assert!(unit.contains("ExecStart=/usr/bin/lb-ctl agent --config /etc/lb/lb.yaml"));

    doctor_reports_in(&root);

    // An edited conffile survives a reinstall (an upgrade to the same
    // version), which does not print the first-install advice.
    run(&root, None, "echo '# edited' >> /etc/lb/lb.yaml", 0);
    let again = run(&root, None, "dpkg -i /tmp/lb.deb", 0);
    assert!(!again.contains("neither enabled"), "{again}");
    run(
        &root,
        None,
        "tail -n 1 /etc/lb/lb.yaml | grep -qx '# edited'",
        0,
    );

    run(&root, None, "dpkg -r lb", 0);
    run(
        &root,
        None,
        "test ! -e /usr/bin/lb-ctl && test -e /etc/lb/lb.yaml",
        0,
    );
    let status = run(&root, None, "dpkg-query -W -f='${Status}' lb", 0);
    assert_eq!(status, "deinstall ok config-files");
    run(&root, None, "dpkg -P lb", 0);
    run(&root, None, "test ! -e /etc/lb && test ! -e /var/lib/lb", 0);
}

/// What the removal test's agent serves: one service on a veth of its own,
/// and an L7 frontend on port 80 (binding it needs CAP_NET_BIND_SERVICE).
const AGENT_CONFIG: &str = "\
agent: {metrics_listen: null}
interfaces: [{name: veth0}]
pools:
  web:
    backends: [{name: b1, address: 10.77.0.2, interface: veth0, mac: \"02:77:00:00:00:02\"}]
  web_http:
    backends: [{name: b1, address: 10.77.0.2, port: 8080}]
services: [{name: web, address: 10.77.0.100, port: 80, pool: web}]
frontends:
  main: {bind: \"10.77.0.1:80\", default_backend: web_http}
";

/// The agent started as systemd starts the packaged unit's root service:
/// every capability outside `CapabilityBoundingSet=` dropped before exec.
#[test]
fn the_agent_runs_with_the_units_capabilities_and_removing_it_tears_it_down() {
    let ns = NetNs::new_unique("pkg").expect("netns");
    ns.ip_batch(&[
        "link add veth0 type veth peer name veth1",
        "addr add 10.77.0.1/24 dev veth0",
        "link set veth0 up",
        "link set veth1 up",
    ])
    .unwrap();
    let root = ThrowawayRoot::new().expect("throwaway root");
    root.copy_in(&deb(), "/tmp/lb.deb").unwrap();
    run(&root, None, "dpkg -i /tmp/lb.deb", 0);
    std::fs::write(root.root().join("etc/lb/lb.yaml"), AGENT_CONFIG).unwrap();

    // One run, so the agent, its bpffs and the removal share a mount namespace.
    let script = r#"
caps=$(sed -n 's/^CapabilityBoundingSet=//p' /lib/systemd/system/lb.service)
caps=$(echo $caps | tr 'A-Z ' 'a-z,' | sed 's/cap_/+/g')
setpriv --bounding-set "-all,$caps" --inh-caps=-all \
    lb-ctl agent --config /etc/lb/lb.yaml >/tmp/agent.log 2>&1 &
agent=$!
for i in $(seq 100); do
    lb-ctl status >/dev/null 2>&1 || ! kill -0 "$agent" 2>/dev/null && break
    sleep 0.2
done
lb-ctl status >/dev/null || { echo "bounding set $caps"; cat /tmp/agent.log; exit 10; }
bound() { ss -Hltn 'sport = :80' | grep -q '10.77.0.1:80'; }
for i in $(seq 50); do bound && break; sleep 0.2; done
bound || { echo 'frontend not bound'; cat /tmp/agent.log; exit 16; }
ip -d link show dev veth0 | grep -q 'prog/xdp' || { echo 'no XDP program'; exit 11; }
test -d /sys/fs/bpf/lb || exit 12
dpkg -r lb
for i in $(seq 50); do kill -0 "$agent" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$agent" 2>/dev/null; then echo 'agent still running'; exit 13; fi
if ip -d link show dev veth0 | grep -q 'prog/xdp'; then echo 'XDP still attached'; exit 14; fi
if test -e /sys/fs/bpf/lb; then ls -R /sys/fs/bpf/lb; exit 15; fi
echo removed-and-torn-down
"#;
    let out = run(&root, Some(ns.name()), script, 0);
    assert!(out.contains("removed-and-torn-down"), "{out}");
}

#[test]
fn the_vagrant_lab_validates_and_its_generated_configs_check() {
    let lab = workspace().join("vagrant");
    let dotfiles = std::env::temp_dir().join(format!("lb-vagrant-{}", std::process::id()));
    let out = Command::new("vagrant")
        .args(["validate", "--ignore-provider"])
        .current_dir(&lab)
        .env("VAGRANT_DOTFILE_PATH", &dotfiles)
        .output()
        .expect("vagrant (Debian's package) is installed");
    let _ = std::fs::remove_dir_all(&dotfiles);
    assert!(out.status.success(), "vagrant validate: {}", text(&out));

    // Both lb nodes' configurations, as provisioning writes them.
    for (node, addr, state, priority) in [
        ("lb1", "192.168.60.93", "MASTER", "100"),
        ("lb2", "192.168.60.94", "BACKUP", "90"),
    ] {
        let yaml = stdout(
            Command::new("sh")
                .arg(lab.join("provision/lb-yaml.sh"))
                .args([node, "eth1", addr, state, priority, "native", "192.168.60"]),
        );
        let file = std::env::temp_dir().join(format!("lb-lab-{node}-{}.yaml", std::process::id()));
        std::fs::write(&file, &yaml).unwrap();
        let check = Command::new(lb_ctl_bin())
            .args(["config", "check"])
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&file);
        assert!(check.status.success(), "{node}: {}", text(&check));
        assert!(yaml.contains(&format!("state: {state}")), "{yaml}");
    }
}

#[test]
fn the_operators_guide_lists_every_key_as_config_defaults_prints_them() {
    const BEGIN: &str = "<!-- lb-ctl config defaults: begin -->\n```yaml\n";
    const END: &str = "```\n<!-- lb-ctl config defaults: end -->";
    let defaults = stdout(Command::new(lb_ctl_bin()).args(["config", "defaults"]));
    let path = workspace().join("docs/operators-guide.md");
    let guide = std::fs::read_to_string(&path).expect("docs/operators-guide.md");
    let start = guide.find(BEGIN).expect("the guide's begin marker") + BEGIN.len();
    let end = start + guide[start..].find(END).expect("the guide's end marker");
    if guide[start..end] == defaults {
        return;
    }
    if std::env::var_os("LB_UPDATE_GUIDE").is_some_and(|v| v == "1") {
        let updated = format!("{}{defaults}{}", &guide[..start], &guide[end..]);
        std::fs::write(&path, updated).expect("rewriting the guide");
        return;
    }
    panic!(
        "docs/operators-guide.md lists other keys than `lb-ctl config defaults` prints: \
         rerun this test with LB_UPDATE_GUIDE=1 to copy them in"
    );
}
