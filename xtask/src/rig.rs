//! `cargo xtask rig up|down`: the test rig's namespaces (docs/testing.md) by hand, to poke at them.

use anyhow::Result;

#[derive(clap::Args)]
pub struct Rig {
    #[command(subcommand)]
    action: RigAction,
}

#[derive(clap::Subcommand)]
enum RigAction {
    /// Create client, lb and backend namespaces joined by veths and a bridge, and leave them up.
    Up {
        /// Number of backends (b1..bN).
        #[arg(long, default_value_t = 3)]
        backends: u8,
    },
    /// Remove everything `rig up` created.
    Down,
}

pub fn run(args: &Rig) -> Result<()> {
    match args.action {
        RigAction::Up { backends } => crate::lab::run(&[
            "rig-up".to_string(),
            "--backends".into(),
            backends.to_string(),
        ]),
        RigAction::Down => crate::lab::run(&["rig-down"]),
    }
}
