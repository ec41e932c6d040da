//! `cargo xtask demo`: a client, the load balancer and backends in namespaces, traffic through
//! the VIP, and what the agent reports about it.

use anyhow::{Result, bail};

#[derive(clap::Args)]
pub struct Demo {}

pub fn run(_args: &Demo) -> Result<()> {
    // Wired to the rig in lb-tests once it offers a demo entry point.
    bail!("not yet wired")
}
