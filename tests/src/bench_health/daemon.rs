//! A legacy checker (HAProxy, keepalived) as a child process in the LB's
//! namespace. `ip netns exec` execs the daemon, so the child's pid is the
//! daemon's. Its output goes to a [`LogWatch`]; it is stopped (SIGTERM, then
//! SIGKILL) and reaped on drop.

use std::{
    io::Read,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use super::logwatch::{LogWatch, Parse};

pub struct Daemon {
    child: Child,
    name: &'static str,
}

impl Daemon {
    /// Runs `name args…` (found in `$PATH`) in namespace `ns`, reading its
    /// stdout and stderr.
    pub fn start(
        ns: &str,
        name: &'static str,
        args: &[&str],
        parse: Parse,
    ) -> Result<(Daemon, LogWatch)> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name} (is it installed?)"))?;
        let mut pipes: Vec<Box<dyn Read + Send>> = Vec::new();
        if let Some(o) = child.stdout.take() {
            pipes.push(Box::new(o));
        }
        if let Some(e) = child.stderr.take() {
            pipes.push(Box::new(e));
        }
        Ok((Daemon { child, name }, LogWatch::start(pipes, parse)))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("waiting for {}", self.name))
    }

    /// SIGTERM, and SIGKILL if it is still there 10 s later.
    pub fn stop(&mut self) -> Result<()> {
        if self.exited()?.is_some() {
            return Ok(());
        }
        // SAFETY: kill(2) on our own child, not reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if self.exited()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        anyhow::bail!("{} ignored SIGTERM for 10 s and was killed", self.name)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("lb-lab: stopping {}: {e:#}", self.name);
        }
    }
}
