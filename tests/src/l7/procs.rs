//! The two proxies under comparison, each run on a [`Setup`] in the host's
//! network namespace on loopback: Debian's HAProxy 2.6 (`haproxy -db`, in
//! the foreground) and lb (`lb-ctl agent` with frontends and pools only, so
//! no XDP program is attached anywhere). Both stop on drop.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::setup::Setup;
use crate::agent::{lb_ctl, lb_ctl_bin, remove_agent_files};

/// A loopback port nothing listens on now (the kernel's pick).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// One loopback address and free port per frontend of `setup`.
fn binds(setup: &Setup) -> Result<Vec<SocketAddr>> {
    setup
        .frontends
        .iter()
        .map(|_| Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?))))
        .collect()
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory for one proxy's files.
fn workdir(kind: &str) -> Result<PathBuf> {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("lb-l7-{kind}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Waits until every address accepts a connection, or `child` exits.
fn wait_listening(child: &mut Child, binds: &[SocketAddr], log: &dyn Fn() -> String) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait()? {
            bail!("exited ({st}) at start:\n{}", log());
        }
        let up = binds
            .iter()
            .all(|b| TcpStream::connect_timeout(b, Duration::from_millis(200)).is_ok());
        if up {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not listening on {binds:?} within 20 s:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(child: &mut Child) {
    // SAFETY: kill(2) takes no pointers; the pid is our own child's.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Debian's HAProxy 2.6 on the generated haproxy.cfg.
pub struct Haproxy {
    child: Child,
    pub dir: PathBuf,
    pub binds: Vec<SocketAddr>,
    stats: PathBuf,
}

impl Haproxy {
    pub fn start(setup: &Setup) -> Result<Haproxy> {
        let dir = workdir("haproxy")?;
        let binds = binds(setup)?;
        let stats = dir.join("stats.sock");
        let cfg = dir.join("haproxy.cfg");
        std::fs::write(&cfg, super::haproxy_cfg::render(setup, &binds, &stats))?;
        let log = dir.join("haproxy.log");
        let out = std::fs::File::create(&log)?;
        let mut child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .context("starting haproxy (apt-get install haproxy)")?;
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        if let Err(e) = wait_listening(&mut child, &binds, &text) {
            stop(&mut child);
            return Err(e.context(format!("haproxy on {}", cfg.display())));
        }
        Ok(Haproxy {
            child,
            dir,
            binds,
            stats,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the stats socket answers to `cmd`.
    pub fn command(&self, cmd: &str) -> Result<String> {
        let mut s = UnixStream::connect(&self.stats)
            .with_context(|| format!("connecting {}", self.stats.display()))?;
        s.write_all(format!("{cmd}\n").as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// The `status` column of `show stat` for `backend/server`
    /// (`UP`, `DOWN`, `MAINT`, …).
    pub fn server_status(&self, backend: &str, server: &str) -> Result<String> {
        let csv = self.command("show stat")?;
        let mut lines = csv.lines();
        let head: Vec<&str> = lines
            .next()
            .unwrap_or("")
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = head
            .iter()
            .position(|c| *c == "status")
            .context("no status column in show stat")?;
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            if f.first() == Some(&backend) && f.get(1) == Some(&server) {
                return Ok(f.get(col).unwrap_or(&"").to_string());
            }
        }
        bail!("no {backend}/{server} in show stat:\n{csv}")
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// lb: `lb-ctl agent` on the generated lb.yaml.
pub struct Lb {
    child: Child,
    pub dir: PathBuf,
    pub binds: Vec<SocketAddr>,
    pub socket: PathBuf,
    bpffs: PathBuf,
    metrics: SocketAddr,
}

impl Lb {
    pub fn start(setup: &Setup) -> Result<Lb> {
        let dir = workdir("lb")?;
        let binds = binds(setup)?;
        let metrics = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let bpffs = PathBuf::from(format!(
            "/sys/fs/bpf/{}",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("lb-l7")
        ));
        let socket = dir.join("lb.sock");
        let cfg = dir.join("lb.yaml");
        let agent = format!(
            "agent:\n  bpffs: {}\n  state_dir: {}\n  socket: {}\n  metrics_listen: {metrics}\n",
            bpffs.display(),
            dir.join("state").display(),
            socket.display()
        );
        std::fs::write(&cfg, agent + &super::lb_yaml::render(setup, &binds))?;
        let log = dir.join("agent.log");
        let out = std::fs::File::create(&log)?;
        let mut child = Command::new(lb_ctl_bin())
            .args(["agent", "--config"])
            .arg(&cfg)
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .context("starting lb-ctl agent")?;
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        if let Err(e) = wait_listening(&mut child, &binds, &text) {
            stop(&mut child);
            remove_agent_files(&bpffs, &dir);
            return Err(e.context(format!("lb on {}", cfg.display())));
        }
        Ok(Lb {
            child,
            dir,
            binds,
            socket,
            bpffs,
            metrics,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    /// `lb-ctl --socket S ARGS`, which must succeed; its stdout.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        let out = lb_ctl(&self.socket, args);
        if !out.status.success() {
            bail!(
                "lb-ctl {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> Result<String> {
        let mut s = TcpStream::connect(self.metrics)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// The value of the metric line that starts with `series` (name and
    /// labels as printed), 0 if absent.
    pub fn metric(&self, series: &str) -> Result<f64> {
        let m = self.metrics()?;
        Ok(m.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0))
    }

    /// The state the proxy has for `pool/server` (`up`, `down`, `maint`,
    /// `drain`).
    pub fn server_state(&self, pool: &str, server: &str) -> Result<Option<String>> {
        let prefix = format!("lb_proxy_server_state{{pool=\"{pool}\",server=\"{server}\",state=\"");
        let m = self.metrics()?;
        Ok(m.lines().find_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (state, value) = rest.split_once("\"}")?;
            (value.trim() == "1").then(|| state.to_owned())
        }))
    }
}

impl Drop for Lb {
    fn drop(&mut self) {
        stop(&mut self.child);
        remove_agent_files(&self.bpffs, &self.dir);
    }
}

/// Polls `f` until it is true, for up to 20 s.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        if Instant::now() > deadline {
            bail!("never: {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
