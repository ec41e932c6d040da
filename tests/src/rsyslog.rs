//! Debian's rsyslogd as a real syslog receiver: started in a namespace with
//! an imudp input and a template that writes each message's facility,
//! severity, program name and text to a file, so tests see how a syslog
//! daemon parses what lb sends. Stopped and its files removed on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::netns::NetNs;

/// A running rsyslogd.
pub struct Rsyslog {
    child: Child,
    dir: PathBuf,
    /// Where it listens (UDP).
    pub addr: SocketAddr,
}

impl Rsyslog {
    /// Starts rsyslogd in `ns`, listening on UDP `addr`, and waits until a
    /// probe message sent there comes out in its file.
    pub fn start(ns: &NetNs, addr: SocketAddr) -> Result<Rsyslog> {
        let dir =
            std::env::temp_dir().join(format!("lb-rsyslog-{}-{}", std::process::id(), addr.port()));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{d}\")\n\
                 module(load=\"imudp\")\n\
                 input(type=\"imudp\" address=\"{ip}\" port=\"{port}\")\n\
                 template(name=\"t\" type=\"string\" string=\"%syslogfacility-text%.%syslogseverity-text% %programname% %msg%\\n\")\n\
                 action(type=\"omfile\" file=\"{d}/out\" template=\"t\")\n",
                d = dir.display(),
                ip = addr.ip(),
                port = addr.port()
            ),
        )?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns.name(), "rsyslogd", "-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .context("starting rsyslogd (apt-get install rsyslog)")?;
        let r = Rsyslog { child, dir, addr };
        r.wait_ready(ns)?;
        Ok(r)
    }

    /// Sends probes until one is written out (its inputs are up).
    fn wait_ready(&self, ns: &NetNs) -> Result<()> {
        let socket = ns.try_run(|| std::net::UdpSocket::bind("127.0.0.1:0"))??;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            socket.send_to(b"<13>probe: ready", self.addr)?;
            if self.lines().iter().any(|l| l.contains("ready")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("rsyslogd wrote nothing within 10 s")
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("out"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until a line contains `needle`.
    pub fn wait_for(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return Some(l);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
