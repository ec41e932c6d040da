//! Network namespaces for tests: create, run code or commands inside, tear down on drop.
//!
//! A namespace is made with `ip netns add` (so it is visible to `ip netns list` and can be cleaned
//! up by name after a crash) and removed on drop together with any process still inside it.
//! Namespaces are per *thread*: [`NetNs::run`] runs a closure on a fresh thread that has joined the
//! namespace with `setns(2)`. Sockets keep the namespace they were created in, so a socket made
//! inside `run` can be used from any thread afterwards.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};

/// Prefix of every namespace made with a per-process unique prefix ([`unique_prefix`]):
/// `lbt<pid>x<counter>`. [`cleanup_orphans`] recognises these names.
pub const TEST_PREFIX: &str = "lbt";

/// Where `ip netns add` puts the namespace handles.
const NETNS_RUN_DIR: &str = "/run/netns";

/// A prefix no other live process or other call in this process uses: `lbt<pid>x<n>`.
///
/// Short on purpose (`lbt4194304x99` is 13 characters) so that names built from it stay readable.
/// Interface names never include it: interfaces are created directly inside their namespace.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{TEST_PREFIX}{}x{n}", std::process::id())
}

/// An Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for Mac {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut mac = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut mac {
            let part = parts
                .next()
                .ok_or_else(|| anyhow!("MAC {s:?}: too short"))?;
            *byte = u8::from_str_radix(part, 16).with_context(|| format!("MAC {s:?}"))?;
        }
        if parts.next().is_some() {
            bail!("MAC {s:?}: too long");
        }
        Ok(Mac(mac))
    }
}

/// A named network namespace, deleted on drop unless made persistent.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    /// Delete the namespace (and kill what runs in it) on drop.
    owned: bool,
}

impl NetNs {
    /// Creates namespace `name` with `lo` up. Fails if it already exists: a leftover from a crashed
    /// run is removed with [`cleanup_stale`], never silently reused.
    pub fn new(name: &str) -> Result<Self> {
        if name.is_empty() || name.contains('/') || name.len() > 64 {
            bail!("invalid namespace name {name:?}");
        }
        if exists(name) {
            bail!("network namespace {name:?} already exists (leftover? see cleanup_stale)");
        }
        // Several test processes may run `ip netns add` at once; the first ones race on making
        // /run/netns a shared mount point. A retry gets past that.
        let mut tries = 0;
        loop {
            match run_cmd(Command::new("ip").args(["netns", "add", name])) {
                Ok(_) => break,
                Err(e) if tries < 3 && !exists(name) => {
                    tries += 1;
                    eprintln!("lb-tests: retrying after: {e:#}");
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
        let ns = NetNs {
            name: name.to_owned(),
            owned: true,
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Creates namespace `<unique prefix>-<role>` (see [`unique_prefix`] and [`NetNs::new`]).
    pub fn new_unique(role: &str) -> Result<Self> {
        NetNs::new(&format!("{}-{role}", unique_prefix()))
    }

    /// A handle on an existing namespace (for instance one left by `cargo xtask rig up`). The
    /// namespace is left in place on drop.
    pub fn open(name: &str) -> Result<Self> {
        if !exists(name) {
            bail!("network namespace {name:?} does not exist");
        }
        Ok(NetNs {
            name: name.to_owned(),
            owned: false,
        })
    }

    /// Leaves the namespace in place when this handle is dropped.
    pub fn persist(&mut self) {
        self.owned = false;
    }

    /// The namespace's name, as `ip netns list` shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `args` inside the namespace (`ip netns exec`) and returns its stdout. A non-zero exit
    /// is an error naming the command line and its stderr.
    pub fn exec<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        run_cmd(&mut cmd)
    }

    /// Runs `ip -n <ns> args…` (faster than `exec(["ip", …])`: no mount namespace is set up).
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run_cmd(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Runs several `ip` commands (one per line, without the leading `ip`) in one process with
    /// `ip -batch -`. It stops at the first failing line, which the error names.
    pub fn ip_batch<S: AsRef<str>>(&self, lines: &[S]) -> Result<()> {
        let script: String = lines.iter().map(|l| format!("{}\n", l.as_ref())).collect();
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name, "-batch", "-"]);
        let what = format!("{} <<< {} lines", describe(&cmd), lines.len());
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {what}"))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // Write from another thread: `ip` may fill its stdout/stderr pipes before reading all input.
        let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
        let out = child
            .wait_with_output()
            .with_context(|| format!("waiting for {what}"))?;
        // A write error (EPIPE) only means `ip` stopped reading early; its exit status says why.
        let _ = writer.join();
        if !out.status.success() {
            bail!(
                "{what} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Runs `f` on a fresh thread that has joined this namespace, and returns its result. A panic
    /// in `f` is propagated. Panics if the thread cannot join the namespace; see [`Self::try_run`].
    pub fn run<T: Send, F: FnOnce() -> T + Send>(&self, f: F) -> T {
        self.try_run(f).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Like [`Self::run`], but failing to join the namespace is an error rather than a panic.
    pub fn try_run<T: Send, F: FnOnce() -> T + Send>(&self, f: F) -> Result<T> {
        let path = format!("{NETNS_RUN_DIR}/{}", self.name);
        let handle = File::open(&path).with_context(|| format!("opening {path}"))?;
        std::thread::scope(|s| {
            let thread = std::thread::Builder::new()
                .name(format!("netns-{}", self.name))
                .spawn_scoped(s, move || {
                    // SAFETY: `handle` is an open namespace file that outlives the call; setns only
                    // changes this thread's network namespace, and this thread runs nothing but `f`.
                    let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
                    if rc != 0 {
                        let e = std::io::Error::last_os_error();
                        return Err(anyhow!("setns into {path}: {e}"));
                    }
                    drop(handle);
                    Ok(f())
                })
                .context("spawning a thread")?;
            match thread.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Writes a sysctl inside the namespace, e.g. `sysctl("net.ipv4.conf.all.arp_ignore", "1")`.
    /// Dots separate path components, so interface names containing dots are not supported.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = sysctl_path(key);
        self.try_run(|| std::fs::write(&path, value))?
            .with_context(|| {
                format!(
                    "setting {key}={value} (writing {path}) in netns {}",
                    self.name
                )
            })
    }

    /// Reads a sysctl inside the namespace, trimmed.
    pub fn sysctl_get(&self, key: &str) -> Result<String> {
        let path = sysctl_path(key);
        let value = self
            .try_run(|| std::fs::read_to_string(&path))?
            .with_context(|| format!("reading {path} in netns {}", self.name))?;
        Ok(value.trim().to_owned())
    }

    /// Reads `/proc/net/<file>` (e.g. `snmp`, `netstat`) as seen from inside the namespace.
    ///
    /// `/proc/net` links to `/proc/self/net`, which is the namespace of the whole *process*, not of
    /// the calling thread; `/proc/thread-self/net` is the thread's own.
    pub fn proc_net(&self, file: &str) -> Result<String> {
        let path = format!("/proc/thread-self/net/{file}");
        self.try_run(|| std::fs::read_to_string(&path))?
            .with_context(|| format!("reading {path} in netns {}", self.name))
    }

    /// One counter of `/proc/net/snmp` or `/proc/net/netstat` (e.g. `("Icmp", "OutEchoReps")`,
    /// `("Tcp", "OutRsts")`, `("TcpExt", "ListenDrops")`).
    pub fn snmp_counter(&self, group: &str, field: &str) -> Result<u64> {
        for file in ["snmp", "netstat", "snmp6"] {
            let text = self.proc_net(file)?;
            if let Some(v) = parse_snmp(&text, group, field) {
                return Ok(v);
            }
        }
        bail!("no counter {group}:{field} in netns {}", self.name)
    }

    /// Sends one ICMP echo request to `dst` from inside the namespace and waits up to `timeout`
    /// for the reply; returns the round-trip time.
    ///
    /// Uses an unprivileged ICMP socket (`SOCK_DGRAM`, the kernel fills in the identifier and
    /// matches replies to the socket), so it first opens `net.ipv4.ping_group_range` in this
    /// namespace (it is closed, `1 0`, in every new namespace).
    pub fn ping(&self, dst: IpAddr, timeout: Duration) -> Result<Duration> {
        self.sysctl("net.ipv4.ping_group_range", "0 2147483647")?;
        self.try_run(|| ping_once(dst, timeout))?
            .with_context(|| format!("ping {dst} from netns {}", self.name))
    }

    /// The index of interface `ifname` inside the namespace.
    pub fn ifindex(&self, ifname: &str) -> Result<u32> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        let index = out.split(':').next().unwrap_or_default().trim();
        index.parse().with_context(|| {
            format!(
                "no ifindex in `ip -n {} link show {ifname}`: {out:?}",
                self.name
            )
        })
    }

    /// The MAC address of interface `ifname` inside the namespace.
    pub fn mac(&self, ifname: &str) -> Result<Mac> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        let mut words = out.split_whitespace();
        words
            .find(|w| *w == "link/ether")
            .and_then(|_| words.next())
            .ok_or_else(|| {
                anyhow!(
                    "no link/ether in `ip -n {} link show {ifname}`: {out:?}",
                    self.name
                )
            })?
            .parse()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if self.owned
            && let Err(e) = delete(&self.name)
        {
            eprintln!("lb-tests: cleaning up netns {}: {e:#}", self.name);
        }
    }
}

/// Whether a network namespace `name` exists (as `ip netns add` makes them).
pub fn exists(name: &str) -> bool {
    std::path::Path::new(NETNS_RUN_DIR).join(name).exists()
}

/// Names of all namespaces in `ip netns list`.
pub fn list() -> Result<Vec<String>> {
    let out = run_cmd(Command::new("ip").args(["netns", "list"]))?;
    // Lines look like `name` or `name (id: 3)`.
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Kills every process in namespace `name` and deletes it. Missing namespaces are not an error.
pub fn delete(name: &str) -> Result<()> {
    if !exists(name) {
        return Ok(());
    }
    let pids = run_cmd(Command::new("ip").args(["netns", "pids", name])).unwrap_or_default();
    let me = std::process::id();
    for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        if u32::try_from(pid).is_ok_and(|p| p == me) {
            continue;
        }
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` came from `ip netns pids`.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    match run_cmd(Command::new("ip").args(["netns", "delete", name])) {
        // Someone else (a concurrent cleanup) may have removed it in between.
        Err(_) if !exists(name) => Ok(()),
        r => r.map(drop),
    }
}

/// Deletes every namespace whose name starts with `prefix` followed by `-` (how [`crate::lab::Lab`]
/// names its namespaces), e.g. `cleanup_stale("lbrig")` after an interrupted run. Returns the names
/// removed.
pub fn cleanup_stale(prefix: &str) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let want = format!("{prefix}-");
    for name in list()? {
        if name.starts_with(&want) {
            delete(&name)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Deletes namespaces made under a [`unique_prefix`] by processes that no longer exist (a test run
/// stopped with Ctrl-C does not run destructors). Namespaces of live processes are left alone.
pub fn cleanup_orphans() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in list()? {
        let Some(pid) = prefix_pid(&name) else {
            continue;
        };
        if process_alive(pid) {
            continue;
        }
        delete(&name)?;
        removed.push(name);
    }
    Ok(removed)
}

/// Whether process `pid` exists and has not exited (a zombie, killed but not yet reaped, has).
fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S …`: the state follows the last `)` (comm may contain anything).
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X"))
}

/// The pid in `lbt<pid>x<n>…`, if `name` has that shape.
fn prefix_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEST_PREFIX)?;
    let (pid, rest) = rest.split_once('x')?;
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// One echo request/reply over an ICMP datagram socket of the calling thread's namespace.
fn ping_once(dst: IpAddr, timeout: Duration) -> Result<Duration> {
    // RFC 792 echo (8) / echo reply (0); RFC 4443 §4.1–4.2 echo request (128) / reply (129).
    let (domain, proto, request, reply) = match dst {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP, 8u8, 0u8),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6, 128, 129),
    };
    // SAFETY: socket(2) takes no pointers; the result is checked before use.
    let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("opening an ICMP socket");
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let sock = UdpSocket::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // A datagram ICMP socket sends and receives bare ICMP messages; the kernel sets the identifier
    // and checksum and delivers only replies carrying this socket's identifier.
    let seq = (std::process::id() as u16).to_be_bytes();
    let mut msg = vec![request, 0, 0, 0, 0, 0, seq[0], seq[1]];
    msg.extend_from_slice(b"lb-tests ping");
    let start = Instant::now();
    sock.send_to(&msg, SocketAddr::new(dst, 0))
        .context("sending echo request")?;
    let mut buf = [0u8; 1500];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            bail!("no echo reply within {timeout:?}");
        }
        sock.set_read_timeout(Some(left))?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if n >= 8 && buf[0] == reply && buf[6..8] == seq && from.ip() == dst => {
                return Ok(start.elapsed());
            }
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                bail!("no echo reply within {timeout:?}")
            }
            Err(e) => return Err(e).context("receiving echo reply"),
        }
    }
}

fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Finds `field` in the `group` table of a `/proc/net/snmp`-style file (a header line of names
/// followed by a line of values, both starting with `group:`) or a `snmp6`-style file (`name value`).
fn parse_snmp(text: &str, group: &str, field: &str) -> Option<u64> {
    let tag = format!("{group}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&tag));
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let names = names.split_whitespace().skip(1);
        let values = values.split_whitespace().skip(1);
        if let Some((_, v)) = names.zip(values).find(|(n, _)| *n == field) {
            return v.parse().ok();
        }
    }
    // snmp6: one `Icmp6InEchos 3` per line.
    let key = format!("{group}{field}");
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next()? == key).then(|| words.next()?.parse().ok())?
    })
}

/// Shell-like rendering of a command for error messages.
fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to completion; non-zero exit is an error with the command line and stderr.
pub(crate) fn run_cmd(cmd: &mut Command) -> Result<String> {
    let what = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let mac: Mac = "02:0a:ff:00:10:9b".parse().unwrap();
        assert_eq!(mac, Mac([2, 10, 255, 0, 16, 155]));
        assert_eq!(mac.to_string(), "02:0a:ff:00:10:9b");
        assert!("02:0a:ff:00:10".parse::<Mac>().is_err());
        assert!("02:0a:ff:00:10:9b:00".parse::<Mac>().is_err());
    }

    #[test]
    fn orphan_names() {
        assert_eq!(prefix_pid("lbt1234x0-client"), Some(1234));
        assert_eq!(prefix_pid("lbt1234x17-b3"), Some(1234));
        assert_eq!(prefix_pid("lbrig-client"), None);
        assert_eq!(prefix_pid("lbtx0-sw"), None);
        assert_eq!(prefix_pid("lbt12x-sw"), None);
    }

    #[test]
    fn snmp_tables() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 2 64\nIcmp: InMsgs OutEchoReps\nIcmp: 5 3\n";
        assert_eq!(parse_snmp(snmp, "Icmp", "OutEchoReps"), Some(3));
        assert_eq!(parse_snmp(snmp, "Ip", "DefaultTTL"), Some(64));
        assert_eq!(parse_snmp(snmp, "Tcp", "OutRsts"), None);
        let snmp6 = "Ip6InReceives                   \t12\nIcmp6InEchos 4\n";
        assert_eq!(parse_snmp(snmp6, "Icmp6", "InEchos"), Some(4));
    }
}
