//! Everything the doctor's checks look at, read from the host in one place
//! ([`Host::gather`]) so that the checks themselves are pure functions of a
//! configuration and a `Host` (and tests can build one by hand).

use std::{
    collections::BTreeMap,
    ffi::CStr,
    fs,
    path::{Path, PathBuf},
};

use lb_config::Config;

use super::{
    netlink::{self, LinkInfo},
    procfs::{self, Listener, Process},
};

/// `BPF_FS_MAGIC` (`linux/magic.h`).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// What was read, or why it could not be.
pub type Fact<T> = Result<T, String>;

/// The host as the checks see it.
#[derive(Clone, Debug)]
pub struct Host {
    /// `uname -r`.
    pub kernel_release: String,
    /// Whether `/sys/kernel/btf/vmlinux` exists.
    pub vmlinux_btf: bool,
    /// The pin directory's nearest existing ancestor and whether it is on a bpffs.
    pub pin_fs: Fact<(PathBuf, bool)>,
    /// Links by name.
    pub links: Fact<BTreeMap<String, LinkInfo>>,
    /// `NETDEV_XDP_ACT_*` by ifindex; `Ok(None)`: the kernel cannot say.
    pub xdp_features: Fact<Option<BTreeMap<u32, u64>>>,
    /// Names of the XDP programs attached to configured interfaces, by id.
    pub program_names: Fact<BTreeMap<u32, String>>,
    /// The sysctls the checks read (`net.ipv4.conf.eth0.rp_filter`, ...);
    /// a missing one was unreadable.
    pub sysctls: BTreeMap<String, String>,
    /// This process's `RLIMIT_MEMLOCK` (soft), `None` for unlimited.
    pub memlock: Option<u64>,
    /// `MemAvailable`, bytes.
    pub mem_available: Option<u64>,
    pub processes: Vec<Process>,
    /// Listening sockets, each with the processes holding it.
    pub listeners: Vec<(Listener, Vec<Process>)>,
    /// Who holds the pin directory's writer lock, and the unit it runs in.
    pub pin_lock: Option<PinHolder>,
}

/// The holder of the pin directory's lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinHolder {
    pub pid: u32,
    pub cmdline: String,
    /// `lb.service` when systemd runs it.
    pub unit: Option<String>,
}

impl Host {
    /// Reads everything the checks of `config` need.
    pub fn gather(config: &Config) -> Host {
        let pin_dir = &config.agent.bpffs;
        let links = netlink::links().map_err(|e| format!("listing links over rtnetlink: {e}"));
        let program_names = match &links {
            Ok(l) => program_names(config, l),
            Err(e) => Err(e.clone()),
        };
        let processes = procfs::processes();
        Host {
            kernel_release: kernel_release(),
            vmlinux_btf: Path::new("/sys/kernel/btf/vmlinux").exists(),
            pin_fs: pin_fs(pin_dir),
            xdp_features: netlink::xdp_features()
                .map_err(|e| format!("asking the netdev netlink family: {e}")),
            links,
            program_names,
            sysctls: sysctls(config),
            memlock: memlock(),
            mem_available: fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| procfs::mem_available(&m)),
            listeners: listeners(&processes),
            pin_lock: pin_holder(pin_dir),
            processes,
        }
    }
}

fn kernel_release() -> String {
    // SAFETY: `uts` is a plain struct uname fills; the result is checked.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return String::new();
    }
    // SAFETY: uname NUL-terminates `release` within the array.
    unsafe { CStr::from_ptr(uts.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The nearest existing ancestor of `pin_dir` (the agent mounts a bpffs
/// when that is not one) and whether it is a bpffs.
fn pin_fs(pin_dir: &Path) -> Fact<(PathBuf, bool)> {
    let probe = pin_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let c =
        std::ffi::CString::new(probe.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: `st` is a plain struct statfs fills; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(format!(
            "statfs {}: {}",
            probe.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok((probe.to_owned(), st.f_type as i64 == BPF_FS_MAGIC))
}

/// Names of the programs attached to configured interfaces (`bpf()` needs
/// root; without it every attached program stays unnamed).
fn program_names(
    config: &Config,
    links: &BTreeMap<String, LinkInfo>,
) -> Fact<BTreeMap<u32, String>> {
    let wanted: Vec<u32> = config
        .interfaces
        .iter()
        .filter_map(|i| Some(links.get(&i.name)?.xdp?.prog_id))
        .collect();
    let mut names = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(names);
    }
    for info in aya::programs::loaded_programs() {
        let info = info.map_err(|e| format!("listing BPF programs (needs root): {e}"))?;
        if wanted.contains(&info.id()) {
            names.insert(info.id(), info.name_as_str().unwrap_or("?").to_owned());
        }
    }
    Ok(names)
}

/// The sysctls [`super::checks`] read, for every configured interface.
pub fn sysctl_keys(config: &Config) -> Vec<String> {
    let mut keys = vec![
        "net.ipv4.conf.all.rp_filter".to_owned(),
        "net.ipv4.ip_forward".to_owned(),
    ];
    for i in &config.interfaces {
        keys.push(format!("net.ipv4.conf.{}.rp_filter", i.name));
    }
    keys
}

fn sysctls(config: &Config) -> BTreeMap<String, String> {
    sysctl_keys(config)
        .into_iter()
        .filter_map(|key| {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            let value = fs::read_to_string(path).ok()?;
            Some((key, value.trim().to_owned()))
        })
        .collect()
}

fn memlock() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills `rl`; the result is checked.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) } != 0
        || rl.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(rl.rlim_cur)
}

fn listeners(processes: &[Process]) -> Vec<(Listener, Vec<Process>)> {
    let all = procfs::listeners();
    let inodes: Vec<u64> = all.iter().map(|l| l.inode).collect();
    let mut owners = procfs::socket_owners(&inodes, processes);
    all.into_iter()
        .map(|l| {
            let who = owners.remove(&l.inode).unwrap_or_default();
            (l, who)
        })
        .collect()
}

fn pin_holder(pin_dir: &Path) -> Option<PinHolder> {
    let holder = lb_dataplane::holder_of(pin_dir)?;
    let unit = fs::read_to_string(format!("/proc/{}/cgroup", holder.pid))
        .ok()
        .and_then(|c| procfs::unit_of(&c));
    Some(PinHolder {
        pid: holder.pid,
        cmdline: holder.cmdline,
        unit,
    })
}
