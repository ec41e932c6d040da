//! Loading with least privilege, and one writer per pin directory.
//!
//! Each test runs in network and mount namespaces of its own, with a private
//! bpffs, and runs the loader (`lb-dp-probe`) as a child process: with its
//! capability bounding set cut down by `setpriv`, or holding the pin
//! directory while this process tries to open it. Needs root.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use lb_dataplane::{Dataplane, Options};

const PROBE: &str = env!("CARGO_BIN_EXE_lb-dp-probe");

fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bpffs mounted in a mount namespace private to this thread (and its
/// children), in a network namespace with a veth pair `lbc0`/`lbc1`.
struct Isolated {
    dir: PathBuf,
}

impl Isolated {
    fn new() -> Isolated {
        // SAFETY: unshare affects only this thread, which runs the whole test.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) };
        assert_eq!(rc, 0, "unshare needs root");
        // SAFETY: plain mount(2) calls with valid NUL-terminated strings.
        unsafe {
            let rc = libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            );
            assert_eq!(rc, 0, "making mounts private");
        }
        let dir = std::env::temp_dir().join(format!(
            "lb-privs-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
        // SAFETY: as above.
        let rc = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                c.as_ptr(),
                c"bpf".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "mounting bpffs: {}", std::io::Error::last_os_error());
        sh(
            "ip link set lo up && ip link add lbc0 type veth peer name lbc1 \
            && ip link set lbc0 up && ip link set lbc1 up",
        );
        Isolated { dir }
    }

    fn pin_dir(&self) -> PathBuf {
        self.dir.join("lb")
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        let _ = lb_dataplane::teardown(&self.pin_dir());
        let c = std::ffi::CString::new(self.dir.to_str().unwrap()).unwrap();
        // SAFETY: unmounting what `new` mounted.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `lb-dp-probe open PIN IFACE` with the capability bounding set `caps`
/// (root's effective set becomes exactly that at exec).
fn probe_open(caps: &str, pin: &Path) -> Output {
    Command::new("setpriv")
        .args(["--bounding-set", caps, "--", PROBE, "open"])
        .arg(pin)
        .arg("lbc0")
        .output()
        .expect("running setpriv (util-linux)")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// CAP_NET_ADMIN (12), CAP_PERFMON (38), CAP_BPF (39) and nothing else.
const EXACT: &str = "000000c000001000";

#[test]
fn load_attach_pin_and_adopt_need_exactly_bpf_net_admin_and_perfmon() {
    let iso = Isolated::new();
    let pin = iso.pin_dir();

    let first = probe_open("-all,+bpf,+net_admin,+perfmon", &pin);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(
        text(&first.stdout).trim(),
        format!("adopted=false cap_eff={EXACT}"),
        "loaded with exactly CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON"
    );
    for p in [
        "maps/LB_RINGS",
        "maps/LB_RING_WORDS",
        "links/lbc0",
        "rings/0",
        "rings/1",
    ] {
        assert!(pin.join(p).exists(), "{p} is pinned");
    }
    let link = Command::new("ip")
        .args(["link", "show", "lbc0"])
        .output()
        .unwrap();
    assert!(text(&link.stdout).contains("xdp"), "{}", text(&link.stdout));

    // A second run adopts what the first pinned: maps, rings, link.
    let second = probe_open("-all,+bpf,+net_admin,+perfmon", &pin);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(
        text(&second.stdout).trim(),
        format!("adopted=true cap_eff={EXACT}")
    );

    // Without CAP_PERFMON: refused up front, naming it and why.
    let without = probe_open("-all,+bpf,+net_admin", &pin);
    assert!(!without.status.success());
    let err = text(&without.stderr);
    assert!(
        err.contains("lacks CAP_PERFMON") && err.contains("offsets known only at run time"),
        "{err}"
    );
    let without_bpf = probe_open("-all,+net_admin,+perfmon", &pin);
    assert!(text(&without_bpf.stderr).contains("lacks CAP_BPF"));
}

#[test]
fn a_second_writer_is_refused_at_once_naming_the_first() {
    let iso = Isolated::new();
    let pin = iso.pin_dir();
    let mut holder = Command::new(PROBE)
        .arg("hold")
        .arg(&pin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");

    let opts = Options {
        pin_dir: Some(pin.clone()),
        flow_table_size: 4096,
        ..Options::default()
    };
    let t0 = std::time::Instant::now();
    let err = match Dataplane::open(&opts) {
        Ok(_) => panic!("a second writer opened the pin directory"),
        Err(e) => e.to_string(),
    };
    assert!(t0.elapsed() < std::time::Duration::from_secs(1), "at once");
    let pid = holder.id().to_string();
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert!(err.contains("lb-dp-probe hold"), "{err}");
    assert!(err.contains(pin.to_str().unwrap()), "{err}");

    // The holder goes: the directory is free, and what it pinned is adopted.
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    let dp = Dataplane::open(&opts).expect("free once the holder exited");
    assert!(dp.adopted());
}
