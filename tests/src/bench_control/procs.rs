//! The processes the benchmark runs: the release `lb-ctl` for `apply` and
//! `teardown`, and `lb-ctl agent`; each with a guard that cleans up on drop
//! (pins torn down, agent stopped), errors included.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};

use super::client::Conn;

/// `$LB_CTL` (what `cargo xtask bench control` sets: the release build), else
/// `lb-ctl` next to this binary.
pub fn lb_ctl() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LB_CTL") {
        let p = PathBuf::from(p);
        ensure!(p.is_file(), "$LB_CTL={} is not a file", p.display());
        return Ok(p);
    }
    let exe = std::env::current_exe().context("finding this binary")?;
    let p = exe.with_file_name("lb-ctl");
    ensure!(
        p.is_file(),
        "no lb-ctl next to {}: run `cargo xtask bench control`, or set $LB_CTL",
        exe.display()
    );
    Ok(p)
}

/// What one `lb-ctl apply` did and how long the process took.
#[derive(Clone, Debug)]
pub struct ApplyRun {
    pub ms: f64,
    pub adopted: bool,
    pub map_writes: u64,
}

/// `lb-ctl --netns NS -o json apply -c FILE`: the wall time of the process.
pub fn apply(bin: &Path, netns: &str, config: &Path) -> Result<ApplyRun> {
    let mut cmd = Command::new(bin);
    cmd.args(["--netns", netns, "-o", "json", "apply", "-c"])
        .arg(config)
        .stdin(Stdio::null());
    let start = Instant::now();
    let out = cmd.output().context("running lb-ctl apply")?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "lb-ctl apply -c {} failed ({}): {}{}",
        config.display(),
        out.status,
        stdout.trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let v: serde_json::Value = serde_json::from_str(&stdout)
        .with_context(|| format!("lb-ctl apply printed no JSON: {stdout:?}"))?;
    let (Some(adopted), Some(map_writes)) = (v["adopted"].as_bool(), v["map_writes"].as_u64())
    else {
        bail!("lb-ctl apply: no `adopted` or `map_writes` in {v}");
    };
    Ok(ApplyRun {
        ms,
        adopted,
        map_writes,
    })
}

/// A pin directory of the benchmark's own; torn down on drop.
pub struct Pins {
    bin: PathBuf,
    pub dir: PathBuf,
}

impl Pins {
    /// `/sys/fs/bpf/lb-bench-<pid>-<tag>`, which must not exist yet.
    pub fn new(bin: &Path, tag: &str) -> Result<Pins> {
        let dir = PathBuf::from(format!("/sys/fs/bpf/lb-bench-{}-{tag}", std::process::id()));
        ensure!(!dir.exists(), "{} exists already", dir.display());
        Ok(Pins {
            bin: bin.to_owned(),
            dir,
        })
    }

    /// `lb-ctl teardown --bpffs DIR` (directly: the socket named is nobody's),
    /// then makes sure nothing is left.
    pub fn teardown(&self) -> Result<()> {
        let out = Command::new(&self.bin)
            .arg("teardown")
            .arg("--bpffs")
            .arg(&self.dir)
            // No agent listens there (nothing does), so lb-ctl unpins directly.
            .arg("--socket")
            .arg(
                std::env::temp_dir().join(format!("lb-bench-{}-no-agent.sock", std::process::id())),
            )
            .stdin(Stdio::null())
            .output()
            .context("running lb-ctl teardown")?;
        ensure!(
            out.status.success(),
            "lb-ctl teardown --bpffs {} failed ({}): {}",
            self.dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        ensure!(
            !self.dir.exists(),
            "{} still exists after lb-ctl teardown",
            self.dir.display()
        );
        Ok(())
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        if self.dir.exists()
            && let Err(e) = self.teardown()
        {
            eprintln!("lb-lab: {e:#}; removing the pins directly");
            if let Err(e) = lb_dataplane::teardown(&self.dir) {
                eprintln!("lb-lab: removing {}: {e}", self.dir.display());
            }
        }
    }
}

/// A running `lb-ctl agent`; stopped (SIGTERM, then SIGKILL) on drop. Its pins
/// are the caller's ([`Pins`], dropped after it).
pub struct AgentProc {
    child: Child,
    log: PathBuf,
}

impl AgentProc {
    /// Starts `lb-ctl --netns NS [-v…] agent --config FILE`, its output to `log`.
    pub fn start(
        bin: &Path,
        netns: &str,
        config: &Path,
        log: &Path,
        verbosity: u8,
    ) -> Result<AgentProc> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.args(["--netns", netns]);
        if verbosity > 0 {
            cmd.arg(format!("-{}", "v".repeat(verbosity.into())));
        }
        let child = cmd
            .arg("agent")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .context("starting lb-ctl agent")?;
        Ok(AgentProc {
            child,
            log: log.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `GET /v1/status` answers 200 on `socket`; returns the
    /// connection. Fails if the agent exits or `deadline` passes.
    pub fn wait_ready(&mut self, socket: &Path, deadline: Duration) -> Result<Conn> {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait()? {
                bail!("the agent exited ({st}) at start:\n{}", self.log_tail());
            }
            super::stop::check()?;
            if let Ok(mut c) = Conn::connect(socket)
                && c.request("GET", "/v1/status", None)
                    .is_ok_and(|a| a.status == 200)
            {
                return Ok(c);
            }
            if start.elapsed() > deadline {
                bail!(
                    "the agent did not answer within {deadline:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `VmRSS` and `VmHWM` (peak) of the agent, in KiB.
    pub fn rss_kib(&self) -> Result<(u64, u64)> {
        let path = format!("/proc/{}/status", self.pid());
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> Result<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .with_context(|| format!("no {name} in {path}"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// The last lines of the agent's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("(last lines of {})\n{tail}", self.log.display())
    }

    /// SIGTERM, and SIGKILL if it has not exited within 10 s.
    pub fn stop(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!("the agent ignored SIGTERM for 10 s and was killed")
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("lb-lab: stopping the agent: {e:#}");
        }
    }
}
