//! `lb-lab`: what `cargo xtask demo|bench|rig` run once the toolchain is in
//! place (xtask cannot link lb-ctl itself: building lb-ctl needs the eBPF
//! toolchain that xtask installs).

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use lb_tests::{
    bench::{self, XdpBenchArgs},
    demo, rig,
};

#[derive(Parser)]
#[command(name = "lb-lab", about = "lb's demo, benchmarks and test rig")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the lab, run lb on it, send traffic, show the spread, tear down.
    Demo {
        /// Client addresses (aliases in the client namespace).
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Connections per client address.
        #[arg(long, default_value_t = 3)]
        connections: usize,
    },
    /// XDP data path ns/packet (method: docs/benchmarks.md); prints a table, writes JSON.
    BenchXdp {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value_t = 100_000)]
        calls: usize,
        #[arg(long, default_value_t = 0)]
        cpu: usize,
        /// Where the JSON report goes.
        #[arg(long)]
        json: PathBuf,
    },
    /// Create the rig's namespaces (lbrig-*) and leave them up.
    RigUp {
        #[arg(long, default_value_t = 3)]
        backends: usize,
    },
    /// Remove the rig's namespaces.
    RigDown,
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Demo {
            clients,
            connections,
        } => demo::run(clients, connections),
        Cmd::BenchXdp {
            runs,
            calls,
            cpu,
            json,
        } => {
            let args = XdpBenchArgs { runs, calls, cpu };
            let report = bench::xdp(&args, &mut |what| eprintln!("bench: measuring {what}"))?;
            print!("{}", bench::xdp_table(&report));
            if let Some(dir) = json.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&json, serde_json::to_string_pretty(&report)?)
                .with_context(|| format!("writing {}", json.display()))?;
            println!("JSON: {}", json.display());
            Ok(())
        }
        Cmd::RigUp { backends } => rig::up(backends),
        Cmd::RigDown => rig::down(),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lb-lab: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
