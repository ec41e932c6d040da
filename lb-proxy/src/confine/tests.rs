//! The confinement as a core thread lives it: code run on a real core
//! thread is refused BPF (a new map, a pinned map) while the test's own
//! thread, which still holds its capabilities, is not. Needs root and a
//! bpffs at /sys/fs/bpf, as the data path does.

use std::ffi::CString;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;

use crate::cores::Cores;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_MAP_TYPE_ARRAY: u32 = 2;

/// `union bpf_attr`, as words: big enough for the commands used here.
type Attr = [u32; 32];

fn bpf(cmd: libc::c_long, attr: &Attr) -> std::io::Result<OwnedFd> {
    // SAFETY: bpf(2) reads `attr`, a zero-padded `union bpf_attr` of the
    // size given, alive across the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_ptr(), size_of::<Attr>()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor the kernel just gave us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A one-entry array map.
fn map_create() -> std::io::Result<OwnedFd> {
    let mut attr: Attr = [0; 32];
    attr[..4].copy_from_slice(&[BPF_MAP_TYPE_ARRAY, 4, 4, 1]);
    bpf(BPF_MAP_CREATE, &attr)
}

/// `BPF_OBJ_PIN` (`fd` Some) or `BPF_OBJ_GET` of `path`.
fn obj(path: &CString, fd: Option<&OwnedFd>) -> std::io::Result<OwnedFd> {
    use std::os::fd::AsRawFd as _;
    let mut attr: Attr = [0; 32];
    let ptr = path.as_ptr() as u64;
    attr[0] = ptr as u32;
    attr[1] = (ptr >> 32) as u32;
    match fd {
        Some(fd) => {
            attr[2] = fd.as_raw_fd() as u32;
            bpf(BPF_OBJ_PIN, &attr)
        }
        None => bpf(BPF_OBJ_GET, &attr),
    }
}

/// `Name:\tVALUE` of the calling thread's status.
fn status(name: &str) -> String {
    let text = std::fs::read_to_string("/proc/thread-self/status").expect("the thread's status");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(":\t").map(str::to_owned))
        .unwrap_or_else(|| panic!("no {name} in the status"))
}

/// Runs `f` on the next core thread and returns what it gave.
fn on_core<T: Send + 'static>(cores: &Cores, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    cores.next().spawn(async move {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the core ran it")
}

/// `io_uring_setup(1, NULL)`: EFAULT when allowed (no parameters),
/// EPERM when filtered.
fn io_uring_setup() -> i32 {
    // SAFETY: a NULL parameter pointer is refused by the kernel, never
    // dereferenced here.
    let r = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, std::ptr::null_mut::<u8>()) };
    assert_eq!(r, -1);
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn errno(r: std::io::Result<OwnedFd>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn a_core_thread_holds_no_capability_and_cannot_use_bpf() {
    let path = format!("/sys/fs/bpf/lb-proxy-confine-{}", std::process::id());
    let path = CString::new(path).expect("no NUL");
    let map = map_create().expect("the test thread creates a map (root, CAP_BPF)");
    obj(&path, Some(&map)).expect("and pins it");
    let (cores, running) = Cores::start(false).expect("the threads start");
    let (create, get, uring) = on_core(&cores, {
        let path = path.clone();
        move || {
            (
                errno(map_create()),
                errno(obj(&path, None)),
                io_uring_setup(),
            )
        }
    });
    let seen = on_core(&cores, || {
        [
            "CapEff",
            "CapPrm",
            "CapInh",
            "CapAmb",
            "Seccomp",
            "NoNewPrivs",
        ]
        .map(status)
    });
    let here = obj(&path, None);
    let _ = std::fs::remove_file(path.to_str().expect("UTF-8"));
    drop(running);
    assert_eq!(create, Some(libc::EPERM), "BPF_MAP_CREATE on a core");
    assert_eq!(
        get,
        Some(libc::EPERM),
        "BPF_OBJ_GET of a pinned map on a core"
    );
    assert_eq!(
        uring,
        libc::EPERM,
        "the last call of the list is refused too"
    );
    assert_eq!(
        io_uring_setup(),
        libc::EFAULT,
        "here it is only missing its argument"
    );
    assert_eq!(
        seen,
        [
            "0000000000000000",
            "0000000000000000",
            "0000000000000000",
            "0000000000000000",
            "2",
            "1"
        ]
    );
    here.expect("the test's own thread keeps its capabilities and no filter");
    assert_eq!(status("Seccomp"), "0");
}

#[test]
fn usesrc_keeps_net_raw_for_transparent_binds_but_no_raw_socket() {
    let (cores, running) = Cores::start(true).expect("the threads start");
    assert!(
        cores.net_raw(),
        "the test runs as root: CAP_NET_RAW is there to keep"
    );
    let seen = on_core(&cores, || {
        let transparent = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .and_then(|s| s.set_ip_transparent_v4(true));
        let raw = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::RAW,
            Some(socket2::Protocol::ICMPV4),
        );
        let packet = socket2::Socket::new(socket2::Domain::PACKET, socket2::Type::DGRAM, None);
        let code = |r: std::io::Result<socket2::Socket>| r.err().and_then(|e| e.raw_os_error());
        (
            transparent.is_ok(),
            code(raw),
            code(packet),
            status("CapEff"),
            errno(map_create()),
        )
    });
    drop(running);
    let net_raw = format!("{:016x}", 1u64 << 13);
    assert_eq!(
        seen,
        (
            true,
            Some(libc::EPERM),
            Some(libc::EPERM),
            net_raw,
            Some(libc::EPERM)
        )
    );
}

#[test]
fn the_filter_jumps_land_on_its_last_instruction() {
    let p = super::filter::program();
    let last = p.len() - 1;
    assert_eq!(u32::from(p[last].code), libc::BPF_RET | libc::BPF_K);
    assert_eq!(p[last].k, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    // Every conditional jump stays inside the program.
    for (i, ins) in p.iter().enumerate() {
        if u32::from(ins.code) & 0x07 == libc::BPF_JMP {
            assert!(
                i + 1 + usize::from(ins.jt.max(ins.jf)) <= last,
                "instruction {i}"
            );
        }
    }
}
