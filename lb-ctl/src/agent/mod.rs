//! `lb-ctl agent`: the daemon.

use std::path::Path;

use anyhow::Result;

use crate::cli::Exit;

/// Runs the agent until SIGTERM/SIGINT or a teardown request.
pub fn run(config: &Path) -> Result<Exit> {
    let _ = config;
    anyhow::bail!("the agent is not written yet")
}
