//! The real `lb-ctl agent` run in a [`Lab`]'s LB namespace, and `lb-ctl`
//! commands against it, as an operator would use them.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{lab::Lab, lb::PeerPass};

/// `$LB_CTL`, or the `lb-ctl` binary cargo built in the same target directory
/// as the running binary or test.
pub fn lb_ctl_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LB_CTL") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // A binary in target/<profile>/, or a test in target/<profile>/deps/.
    let here = exe.parent().expect("exe dir");
    [here, here.parent().unwrap_or(here)]
        .iter()
        .map(|d| d.join("lb-ctl"))
        .find(|b| b.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no lb-ctl next to {}: build it first (`cargo build -p lb-ctl`; `cargo xtask test` does so before the tests)",
                exe.display()
            )
        })
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Starts `lb-ctl --netns NETNS -v agent --config CONFIG` with `env`, its
/// output appended to `log`; returns once `ready` says it answers. If it
/// exits, or is not ready within 20 s, it is stopped and the error quotes
/// its log.
pub fn spawn_agent(
    netns: &str,
    config: &Path,
    log: &Path,
    env: &[(String, String)],
    ready: impl Fn() -> bool,
) -> Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut child = Command::new(lb_ctl_bin())
        .args(["--netns", netns, "-v", "agent", "--config"])
        .arg(config)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out))
        .spawn()
        .context("starting lb-ctl agent")?;
    let text = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait()? {
            bail!("the agent exited ({st}) at start:\n{}", text());
        }
        if ready() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the agent did not answer within 20 s:\n{}", text());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An agent process and the files it uses; stops it and tears the data path
/// down on drop.
pub struct Agent {
    child: Option<Child>,
    env: Vec<(String, String)>,
    netns: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub bpffs: PathBuf,
    /// None for an agent outside a [`Lab`] ([`Agent::start_in`]).
    _peer: Option<PeerPass>,
}

/// Where test agents serve metrics (in their own network namespace).
pub const METRICS_PORT: u16 = 8480;

/// The `agent:` section a test config needs: its own pins, state and socket.
pub fn agent_section(dir: &Path, bpffs: &Path) -> String {
    format!(
        "agent:\n  bpffs: {}\n  state_dir: {}\n  socket: {}\n  metrics_listen: 127.0.0.1:{METRICS_PORT}\n  flow_table_size: 65536\n  flow_idle_timeout: 30s\n",
        bpffs.display(),
        dir.join("state").display(),
        dir.join("lb.sock").display()
    )
}

impl Agent {
    /// Writes `body` (everything after `agent:`) as the config and starts the
    /// agent in the lab's LB namespace; returns once it answers `status`.
    pub fn start(lab: &Lab, body: &str) -> Result<Agent> {
        Agent::start_env(lab, body, &[])
    }

    /// [`Agent::start`] with extra environment variables for the agent.
    pub fn start_env(lab: &Lab, body: &str, env: &[(&str, &str)]) -> Result<Agent> {
        Agent::start_with(lab, "", body, env)
    }

    /// [`Agent::start`] with extra `agent:` lines (indented by two spaces) and
    /// environment variables.
    pub fn start_with(
        lab: &Lab,
        agent_extra: &str,
        body: &str,
        env: &[(&str, &str)],
    ) -> Result<Agent> {
        let peer = PeerPass::attach(lab)?;
        let ns = lab.lb().ns.name();
        Agent::start_tagged(ns, lab.prefix(), agent_extra, body, env, Some(peer))
    }

    /// [`Agent::start`] in namespace `ns`, outside any [`Lab`] (no XDP on
    /// a veth peer is arranged: for agents that serve only the L7 proxy).
    pub fn start_in(ns: &crate::netns::NetNs, body: &str) -> Result<Agent> {
        Agent::start_tagged(ns.name(), ns.name(), "", body, &[], None)
    }

    fn start_tagged(
        netns: &str,
        prefix: &str,
        agent_extra: &str,
        body: &str,
        env: &[(&str, &str)],
        peer: Option<PeerPass>,
    ) -> Result<Agent> {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{prefix}x{n}");
        let dir = std::env::temp_dir().join(format!("lb-agent-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let bpffs = PathBuf::from(format!("/sys/fs/bpf/lb-{tag}"));
        let config = dir.join("lb.yaml");
        std::fs::write(
            &config,
            format!("{}{agent_extra}{body}", agent_section(&dir, &bpffs)),
        )?;
        let mut a = Agent {
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            netns: netns.to_owned(),
            socket: dir.join("lb.sock"),
            dir,
            config,
            bpffs,
            _peer: peer,
        };
        a.spawn()?;
        Ok(a)
    }

    /// Starts the agent process (again) with the current config file.
    pub fn spawn(&mut self) -> Result<()> {
        let log = self.dir.join("agent.log");
        let ready = || self.ctl(&["status"]).status.success();
        let child = spawn_agent(&self.netns, &self.config, &log, &self.env, ready)?;
        self.child = Some(child);
        Ok(())
    }

    /// The running agent's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    /// `lb-ctl --socket S ARGS...`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        lb_ctl(&self.socket, args)
    }

    /// `lb-ctl -o json ARGS...`, which must succeed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        let out = self.ctl(&all);
        assert!(
            out.status.success(),
            "lb-ctl {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("lb-ctl {}: not JSON ({e})", args.join(" ")))
    }

    /// `lb-ctl -o json events`: the events the agent kept, oldest first
    /// (JSON lines, one event each).
    pub fn events(&self) -> Vec<serde_json::Value> {
        let out = self.ctl(&["-o", "json", "events"]);
        assert!(out.status.success(), "lb-ctl events: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event {l:?}: {e}")))
            .collect()
    }

    /// `lb-ctl -o json events --follow` in the background: every line it
    /// prints (history first, then events as they happen) arrives on the
    /// receiver; the follower stops when the returned guard is dropped.
    pub fn follow_events(&self) -> (Follower, std::sync::mpsc::Receiver<String>) {
        use std::io::BufRead as _;
        let mut child = Command::new(lb_ctl_bin())
            .arg("--socket")
            .arg(&self.socket)
            .args(["-o", "json", "events", "--follow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("running lb-ctl events --follow");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        (Follower(child), rx)
    }

    /// Sends `sig` to the running agent.
    pub fn signal(&self, sig: libc::c_int) -> Result<()> {
        let c = self.child.as_ref().context("no agent running")?;
        // SAFETY: sending a signal to our own child by pid.
        anyhow::ensure!(unsafe { libc::kill(c.id() as i32, sig) } == 0, "kill");
        Ok(())
    }

    /// Stops the agent with `sig` and waits for it.
    pub fn stop(&mut self, sig: libc::c_int) -> Result<std::process::ExitStatus> {
        let mut c = self.child.take().context("no agent running")?;
        // SAFETY: sending a signal to our own child by pid.
        unsafe { libc::kill(c.id() as i32, sig) };
        Ok(c.wait()?)
    }

    /// Scrapes the agent's `/metrics` (in the LB namespace).
    pub fn metrics(&self, lab: &Lab) -> Result<String> {
        use std::io::{Read as _, Write as _};
        lab.lb().ns.try_run(|| -> Result<String> {
            let mut s = std::net::TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], METRICS_PORT)),
                Duration::from_secs(5),
            )?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })?
    }
}

/// A running `lb-ctl events --follow`; killed on drop.
pub struct Follower(Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop(libc::SIGTERM);
        }
        remove_agent_files(&self.bpffs, &self.dir);
    }
}

/// `lb-ctl --socket SOCKET ARGS...`.
pub fn lb_ctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(lb_ctl_bin())
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("running lb-ctl")
}

/// After an agent stopped: its data path (pinned under `bpffs`) torn
/// down without it, and its directory removed.
pub fn remove_agent_files(bpffs: &Path, dir: &Path) {
    let _ = Command::new(lb_ctl_bin())
        .args(["teardown", "--bpffs"])
        .arg(bpffs)
        .arg("--socket")
        .arg(dir.join("none.sock"))
        .output();
    let _ = std::fs::remove_dir_all(dir);
}
