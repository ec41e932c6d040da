//! `lb-ctl`: see `lb-ctl --help`.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use lb_ctl::{
    cli::{self, Exit, Output},
    config::DEFAULT_BPFFS,
    dataplane, sys,
};

/// lb: an XDP load balancer (LVS-DR data path) with its control plane.
#[derive(Parser)]
#[command(name = "lb-ctl", version, about, propagate_version = true)]
struct Cli {
    /// Run in this network namespace (`ip netns` name or path), keeping the
    /// host's mount namespace so pins under /sys/fs/bpf stay shared.
    #[arg(long, global = true, value_name = "NAME")]
    netns: Option<String>,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less log output.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load or adopt the data path, attach it, and make it match a config file; then exit
    /// (the data path keeps forwarding).
    Apply {
        /// The configuration file.
        #[arg(short, long, default_value = "/etc/lb/lb.yaml")]
        config: PathBuf,
    },
    /// Detach the XDP programs and remove every pinned map and link.
    Teardown {
        /// Pin directory of the data path.
        #[arg(long, default_value = DEFAULT_BPFFS)]
        bpffs: PathBuf,
    },
    /// Configuration file tools.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file: every problem as file:line:col, exit 2 if any.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("LB_LOG").unwrap_or_else(|_| level.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    if let Some(ns) = &cli.netns {
        sys::enter_netns(ns)?;
    }
    match cli.command {
        Command::Apply { config } => cli::apply::run(&config, cli.output),
        Command::Teardown { bpffs } => {
            let removed = dataplane::teardown(&bpffs)?;
            match cli.output {
                Output::Json => println!("{}", serde_json::json!({ "removed": removed })),
                Output::Table => {
                    println!("removed {} pins under {}", removed.len(), bpffs.display())
                }
            }
            Ok(Exit::Ok)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            Ok(cli::config_check::run(&file, cli.output))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match run(cli) {
        Ok(e) => e.into(),
        Err(e) => {
            cli::print_error(&e);
            Exit::Failed.into()
        }
    }
}
