//! Two VRRP routers on the lab's segment: the lab's `lb` (10.77.0.2) and a
//! second node `lb2` (10.77.0.3, MAC 02:77:00:00:00:03), each running either
//! lb's agent or Debian's keepalived. The lab's static VIPs are removed from
//! `lb`: VRRP owns them now. The client and the backends are the lab's.
//!
//! ```text
//!   client ─┐                      ┌─ b1, b2 (VIPs on lo, HTTP on :80)
//!   lb  ────┼── br0 (sw) ──────────┤
//!   lb2 ────┘                      └─
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use lb_dataplane::{Dataplane, Options};

use crate::agent::{agent_section, lb_ctl, remove_agent_files, spawn_agent};
use crate::http::HttpBackend;
use crate::lab::{IFNAME, Lab, LabSpec, PREFIX4, PREFIX6, VIP4, VIP6};
use crate::lb::{MODE, PeerPass};
use crate::netns::NetNs;

/// The second router's addresses.
pub const LB2_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);
pub const LB2_V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 3);

/// The lab, its second router, the backends' HTTP servers and the XDP pass
/// program on the second router's bridge port.
pub struct Pair {
    pub lab: Lab,
    pub lb2: NetNs,
    pub http: Vec<HttpBackend>,
    _peers: (PeerPass, Dataplane),
}

impl Pair {
    pub fn new(ipv6: bool) -> Result<Pair> {
        let lab = Lab::new(LabSpec {
            backends: 2,
            client_aliases: 0,
            ipv6,
        })?;
        lab.lb().ns.ip(&[
            "address",
            "flush",
            "dev",
            IFNAME,
            "to",
            &format!("{VIP4}/32"),
        ])?;
        if ipv6 {
            lab.lb().ns.ip(&[
                "-6",
                "address",
                "del",
                &format!("{VIP6}/128"),
                "dev",
                IFNAME,
            ])?;
        }
        let lb2 = second_router(&lab, ipv6)?;
        let http = lab.start_http(80)?;
        let peer2 = pass_on(lab.sw(), "vlb2")?;
        Ok(Pair {
            _peers: (PeerPass::attach(&lab)?, peer2),
            lab,
            lb2,
            http,
        })
    }

    /// Node 1 (`lb`) or node 2 (`lb2`).
    pub fn node(&self, n: usize) -> &NetNs {
        if n == 1 { &self.lab.lb().ns } else { &self.lb2 }
    }

    /// A node's own address.
    pub fn address(&self, n: usize, ipv6: bool) -> IpAddr {
        match (n, ipv6) {
            (1, false) => self.lab.lb().ipv4.into(),
            (1, true) => self.lab.lb().ip(true),
            (_, false) => LB2_V4.into(),
            (_, true) => LB2_V6.into(),
        }
    }

    /// Whether node `n` holds `vip` (as `ip addr` shows it).
    pub fn holds(&self, n: usize, vip: IpAddr) -> bool {
        let addrs = self
            .node(n)
            .try_run(|| lb_agent::vrrp::netlink::addresses(IFNAME));
        matches!(addrs, Ok(Ok(a)) if a.contains(&vip))
    }

    /// Waits until exactly node `n` holds `vip`; the time it took.
    pub fn wait_owner(&self, n: usize, vip: IpAddr, within: Duration) -> Result<Duration> {
        let start = Instant::now();
        let other = 3 - n;
        while start.elapsed() < within {
            if self.holds(n, vip) && !self.holds(other, vip) {
                return Ok(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bail!(
            "node {n} is not the only owner of {vip} after {within:?} (node 1: {}, node 2: {})",
            self.holds(1, vip),
            self.holds(2, vip)
        )
    }

    /// Waits until the client can open a connection to `vip:80` (through
    /// whichever node owns it): owning the address is not yet serving it
    /// (the client's ARP cache, the owner's next hops).
    pub fn wait_served(&self, vip: IpAddr, within: Duration) -> Result<()> {
        let to = std::net::SocketAddr::new(vip, 80);
        let deadline = Instant::now() + within;
        let connect = || std::net::TcpStream::connect_timeout(&to, Duration::from_millis(300));
        loop {
            match self.lab.client().ns.run(connect) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    bail!("the client cannot reach {to} after {within:?}: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// `lb2`: a host on the bridge, made like the lab's, with forwarding off.
fn second_router(lab: &Lab, ipv6: bool) -> Result<NetNs> {
    let ns = NetNs::new(&format!("{}-lb2", lab.prefix()))?;
    for scope in ["all", "default"] {
        ns.sysctl(&format!("net.ipv6.conf.{scope}.accept_dad"), "0")?;
        ns.sysctl(
            &format!("net.ipv6.conf.{scope}.disable_ipv6"),
            if ipv6 { "0" } else { "1" },
        )?;
    }
    let sw = lab.sw();
    let link = format!(
        "link add vlb2 type veth peer name {IFNAME} address 02:77:00:00:00:03 netns {}",
        ns.name()
    );
    sw.ip(&link.split(' ').collect::<Vec<_>>())?;
    sw.ip(&["link", "set", "vlb2", "master", "br0", "up"])?;
    sw.exec(&["ethtool", "-K", "vlb2", "tx", "off"])?;
    ns.ip(&[
        "address",
        "add",
        &format!("{LB2_V4}/{PREFIX4}"),
        "dev",
        IFNAME,
    ])?;
    if ipv6 {
        ns.ip(&[
            "address",
            "add",
            &format!("{LB2_V6}/{PREFIX6}"),
            "dev",
            IFNAME,
            "nodad",
        ])?;
    }
    ns.ip(&["link", "set", IFNAME, "up"])?;
    ns.sysctl("net.ipv4.ip_forward", "0")?;
    Ok(ns)
}

/// `lb_pass` on a bridge port whose host runs XDP (veth gotcha 1).
fn pass_on(sw: &NetNs, port: &str) -> Result<Dataplane> {
    let mut dp = Dataplane::open(&Options {
        flow_table_size: 1024,
        ..Options::default()
    })?;
    sw.try_run(|| dp.attach_pass(port, MODE))?
        .with_context(|| format!("lb_pass on {port}"))?;
    Ok(dp)
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp directory.
fn scratch(what: &str) -> Result<PathBuf> {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("lb-vrrp-{what}-{}x{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// lb's agent on one node, with its own pins, socket and log.
pub struct LbNode {
    child: Option<Child>,
    netns: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    bpffs: PathBuf,
}

impl LbNode {
    /// Writes `body` (everything after `agent:`) and starts the agent in `ns`.
    pub fn start(ns: &NetNs, body: &str) -> Result<LbNode> {
        let dir = scratch("lb")?;
        let bpffs = PathBuf::from(format!(
            "/sys/fs/bpf/lb-{}",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        ));
        let config = dir.join("lb.yaml");
        std::fs::write(&config, format!("{}{body}", agent_section(&dir, &bpffs)))?;
        let mut n = LbNode {
            child: None,
            netns: ns.name().to_owned(),
            socket: dir.join("lb.sock"),
            dir,
            config,
            bpffs,
        };
        n.spawn()?;
        Ok(n)
    }

    /// (Re)starts the agent; returns once it answers.
    pub fn spawn(&mut self) -> Result<()> {
        let log = self.dir.join("agent.log");
        let ready = || self.ctl(&["status"]).status.success();
        self.child = Some(spawn_agent(&self.netns, &self.config, &log, &[], ready)?);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the agent with `sig` and waits for it.
    pub fn stop(&mut self, sig: libc::c_int) -> Result<()> {
        let mut c = self.child.take().context("no agent running")?;
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(c.id() as i32, sig) };
        c.wait()?;
        Ok(())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        lb_ctl(&self.socket, args)
    }

    /// Waits for instance `name` to report `state` (`master`, `backup`, ...).
    pub fn wait_state(&self, name: &str, state: &str, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while self.instance(name)["state"] != state {
            if Instant::now() > deadline {
                bail!("{name} not {state}: {}", self.instance(name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The data path's verdict counters (`lb-ctl -o json stats`, `reasons`).
    pub fn reasons(&self) -> std::collections::BTreeMap<String, u64> {
        let out = self.ctl(&["-o", "json", "stats"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        serde_json::from_value(v["reasons"].clone()).unwrap_or_default()
    }

    /// `lb-ctl -o json vrrp status`, instance `name`.
    pub fn instance(&self, name: &str) -> serde_json::Value {
        let out = self.ctl(&["-o", "json", "vrrp", "status"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["instances"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"] == name).cloned())
            .unwrap_or_default()
    }
}

impl Drop for LbNode {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop(libc::SIGTERM);
        }
        remove_agent_files(&self.bpffs, &self.dir);
    }
}

/// Debian's keepalived on one node: `keepalived -n -l -D -f CONF` with its
/// pid files in a temp directory. The test process is a child subreaper, so
/// the VRRP child it forks is reaped here when its parent is gone.
pub struct Keepalived {
    child: Option<Child>,
    netns: String,
    pub dir: PathBuf,
    pub conf: PathBuf,
}

impl Keepalived {
    /// Writes `conf` and starts keepalived in `ns`.
    pub fn start(ns: &NetNs, conf: &str) -> Result<Keepalived> {
        let mut k = Keepalived::new(ns)?;
        std::fs::write(&k.conf, conf)?;
        k.spawn()?;
        Ok(k)
    }

    /// Its directory, not started yet (write `conf`, then [`Keepalived::spawn`]).
    pub fn new(ns: &NetNs) -> Result<Keepalived> {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
        let dir = scratch("keepalived")?;
        Ok(Keepalived {
            child: None,
            netns: ns.name().to_owned(),
            conf: dir.join("keepalived.conf"),
            dir,
        })
    }

    pub fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("keepalived.log"))?;
        let pid = |f: &str| self.dir.join(f);
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns,
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-f",
            ])
            .arg(&self.conf)
            .arg("-p")
            .arg(pid("keepalived.pid"))
            .arg("-r")
            .arg(pid("vrrp.pid"))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting keepalived (apt-get install keepalived)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.vrrp_pid().is_none() {
            if Instant::now() > deadline {
                bail!("keepalived did not start its VRRP process:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The VRRP child's pid, once it runs.
    pub fn vrrp_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join("vrrp.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        alive(pid).then_some(pid)
    }

    /// Stops keepalived (SIGTERM: it resigns with priority 0) and waits.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            c.wait()?;
        }
        reap_file(&self.dir.join("vrrp.pid"));
        Ok(())
    }

    /// `kill -9` of the VRRP child (keepalived's parent respawns it).
    pub fn kill_vrrp(&self) -> Result<i32> {
        let pid = self.vrrp_pid().context("no VRRP process")?;
        // SAFETY: kill(2) on a pid we read from keepalived's pid file.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        Ok(pid)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("keepalived.log")).unwrap_or_default()
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with(['Z', 'X']))
        })
        .is_some_and(|zombie| !zombie)
}

/// Waits for the process named in a pid file to be gone, reaping it if it
/// became ours (subreaper).
fn reap_file(path: &Path) {
    let Some(pid) = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        // SAFETY: waitpid on one pid, without blocking.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        if !alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
