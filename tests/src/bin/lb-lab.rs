//! `lb-lab`: what `cargo xtask demo|bench|rig` run once the toolchain is in
//! place (xtask cannot link lb-ctl itself: building lb-ctl needs the eBPF
//! toolchain that xtask installs).

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};
use lb_tests::{
    bench::{self, XdpBenchArgs},
    bench_control::{self, ControlBenchArgs},
    bench_health::{self, HealthBenchArgs, KillMethod},
    bench_json,
    bench_l7::{self, L7BenchArgs},
    bench_vrrp::{self, VrrpBenchArgs},
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
    /// Control plane: cold apply, adopt, one change, reload per scale (docs/benchmarks.md).
    BenchControl {
        /// Numbers of services, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10,1000")]
        scales: Vec<usize>,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 100)]
        changes: usize,
        #[arg(long, default_value_t = 5)]
        reloads: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// `-v` flags for the agent.
        #[arg(long, default_value_t = 1)]
        agent_verbosity: u8,
        /// Where the JSON report goes.
        #[arg(long)]
        json: PathBuf,
    },
    /// Health checks at scale: lb's CPU and memory, detection delays; HAProxy
    /// and keepalived on the same servers (docs/benchmarks.md).
    BenchHealth {
        #[arg(long, default_value_t = 10_000)]
        servers: usize,
        #[arg(long, default_value = "1s", value_parser = lb_config::duration::parse_duration)]
        inter: std::time::Duration,
        /// The window over which CPU is measured, per run.
        #[arg(long, default_value = "30s", value_parser = lb_config::duration::parse_duration)]
        duration: std::time::Duration,
        /// Servers killed at once.
        #[arg(long, default_value_t = 100)]
        kill: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Kill methods, in order (the first gives `detection_ms`).
        #[arg(long, value_delimiter = ',', default_value = "close,blackhole")]
        kill_method: Vec<KillMethod>,
        /// Measure lb only (no HAProxy, no keepalived).
        #[arg(long)]
        lb_only: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        json: PathBuf,
    },
    /// The L7 proxy: wrk through lb, HAProxy and nginx, and nginx direct,
    /// server keep-alive and server-close (docs/benchmarks.md).
    BenchL7 {
        /// Rounds; each measures every target once.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value = "10s", value_parser = lb_config::duration::parse_duration)]
        duration: std::time::Duration,
        #[arg(long, default_value_t = 64)]
        connections: u32,
        /// HAProxy's nbthread and nginx's workers; lb has one worker per core.
        #[arg(long, default_value_t = 2)]
        proxy_threads: u32,
        #[arg(long)]
        json: PathBuf,
    },
    /// Start `bench-l7`'s rig for one mode (nginx servers; lb, HAProxy and
    /// nginx in front) and keep it up until Enter, to profile by hand.
    L7Rig {
        /// Close server connections after each response (the seed's mode).
        #[arg(long)]
        server_close: bool,
        #[arg(long, default_value_t = 2)]
        proxy_threads: u32,
    },
    /// VRRP failover gaps, lb and keepalived (docs/vrrp.md).
    BenchVrrp {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
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
            bench_json::save(&report, &json)
        }
        Cmd::BenchControl {
            scales,
            runs,
            changes,
            reloads,
            seed,
            agent_verbosity,
            json,
        } => {
            let args = ControlBenchArgs {
                scales,
                runs,
                changes,
                reloads,
                seed,
                agent_verbosity,
            };
            let report = bench_control::control(&args, &mut |what| eprintln!("bench: {what}"))?;
            print!("{}", bench_control::control_table(&report));
            bench_json::save(&report, &json)
        }
        Cmd::BenchHealth {
            servers,
            inter,
            duration,
            kill,
            runs,
            kill_method,
            lb_only,
            seed,
            json,
        } => {
            let args = HealthBenchArgs {
                servers,
                inter,
                duration,
                kill,
                runs,
                methods: kill_method,
                compare: !lb_only,
                seed,
            };
            let report = bench_health::health(&args, &mut |what| eprintln!("bench: {what}"))?;
            print!("{}", bench_health::table(&report));
            bench_json::save(&report, &json)
        }
        Cmd::BenchL7 {
            rounds,
            duration,
            connections,
            proxy_threads,
            json,
        } => {
            let args = L7BenchArgs {
                rounds,
                duration,
                connections,
                wrk_threads: 2,
                proxy_threads,
            };
            let report = bench_l7::l7(&args, &mut |what| eprintln!("bench: {what}"))?;
            print!("{}", bench_l7::table(&report));
            bench_json::save(&report, &json)
        }
        Cmd::L7Rig {
            server_close,
            proxy_threads,
        } => bench_l7::hold(
            proxy_threads,
            server_close,
            &mut |line| println!("{line}"),
            || {
                println!("up; Enter stops it");
                let _ = std::io::stdin().read_line(&mut String::new());
            },
        ),
        Cmd::BenchVrrp { runs, seed, json } => {
            let args = VrrpBenchArgs { runs, seed };
            let report = bench_vrrp::vrrp(&args, &mut |what| eprintln!("bench: {what}"))?;
            print!("{}", bench_vrrp::table(&report));
            bench_json::save(&report, &json)
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
