//! `cargo xtask bench`: data-path measurements, by the method in docs/benchmarks.md.

use anyhow::Result;

#[derive(clap::Args)]
pub struct Bench {
    #[command(subcommand)]
    what: BenchTarget,
}

#[derive(clap::Subcommand)]
enum BenchTarget {
    /// ns per packet of the XDP program through BPF_PROG_TEST_RUN (repeat = 1 per call), minus the
    /// same loop over a trivial `XDP_TX` program, for each packet class.
    Xdp {
        /// Runs per packet class; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: u32,
        /// BPF_PROG_TEST_RUN calls per run.
        #[arg(long, default_value_t = 100_000)]
        calls: u32,
        /// CPU to pin the measuring thread to.
        #[arg(long, default_value_t = 0)]
        cpu: usize,
    },
    /// The control plane at several scales: cold `lb-ctl apply`, adopt, one change through the
    /// API, a reload (method: docs/benchmarks.md); table, and target/bench/control.json.
    Control {
        /// Numbers of services, comma-separated.
        #[arg(long, default_value = "10,1000")]
        scales: String,
        /// Cold apply / adopt repetitions per scale; the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Runtime changes per series.
        #[arg(long, default_value_t = 100)]
        changes: u32,
        /// Seed of the generated pools and of the changes' targets.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Health checks of 10,000 TCP servers: lb's CPU and RSS, how fast killed servers leave the
    /// ring; HAProxy and keepalived on the same servers (docs/benchmarks.md): table, and
    /// target/bench/health.json. Takes about 2 minutes per run.
    Health {
        /// TCP servers checked (a multiple of 10).
        #[arg(long, default_value_t = 10_000)]
        servers: u32,
        /// Check interval (`1s`, `500ms`).
        #[arg(long, default_value = "1s")]
        inter: String,
        /// Window over which CPU is measured, per run.
        #[arg(long, default_value = "30s")]
        duration: String,
        /// Servers killed at once.
        #[arg(long, default_value_t = 100)]
        kill: u32,
        /// Runs; CPU and RSS are medians, delays are pooled.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// How servers die, in order: `close` (the check gets a reset), `blackhole` (no answer).
        #[arg(long, default_value = "close,blackhole")]
        kill_method: String,
        /// Measure lb only.
        #[arg(long)]
        lb_only: bool,
    },
    /// The L7 proxy against HAProxy 2.6 and nginx: wrk req/s, p99 and CPU per request, with
    /// server keep-alive and with the seed's http-server-close (docs/benchmarks.md): table,
    /// and target/bench/l7.json. Takes about 5 minutes.
    L7 {
        /// Rounds; each measures every target once; medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// wrk's duration per run.
        #[arg(long, default_value = "10s")]
        duration: String,
    },
    /// VRRP failover service gaps, lb and keepalived on the same rig (docs/vrrp.md):
    /// table, and target/bench/vrrp.json. Takes about 11 minutes (2 per run of all 24 cells).
    Vrrp {
        /// Runs per cell; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
}

pub fn run(args: &Bench) -> Result<()> {
    match args.what {
        BenchTarget::Control {
            ref scales,
            runs,
            changes,
            seed,
        } => crate::lab::run(&[
            "bench-control".to_string(),
            format!("--scales={scales}"),
            format!("--runs={runs}"),
            format!("--changes={changes}"),
            format!("--seed={seed}"),
            format!(
                "--json={}",
                crate::workspace_root()
                    .join("target/bench/control.json")
                    .display()
            ),
        ]),
        BenchTarget::Health {
            servers,
            ref inter,
            ref duration,
            kill,
            runs,
            ref kill_method,
            lb_only,
        } => {
            let mut a = vec![
                "bench-health".to_string(),
                format!("--servers={servers}"),
                format!("--inter={inter}"),
                format!("--duration={duration}"),
                format!("--kill={kill}"),
                format!("--runs={runs}"),
                format!("--kill-method={kill_method}"),
                format!(
                    "--json={}",
                    crate::workspace_root()
                        .join("target/bench/health.json")
                        .display()
                ),
            ];
            if lb_only {
                a.push("--lb-only".into());
            }
            crate::lab::run(&a)
        }
        BenchTarget::L7 {
            rounds,
            ref duration,
        } => crate::lab::run(&[
            "bench-l7".to_string(),
            format!("--rounds={rounds}"),
            format!("--duration={duration}"),
            format!(
                "--json={}",
                crate::workspace_root()
                    .join("target/bench/l7.json")
                    .display()
            ),
        ]),
        BenchTarget::Vrrp { runs } => crate::lab::run(&[
            "bench-vrrp".to_string(),
            format!("--runs={runs}"),
            format!(
                "--json={}",
                crate::workspace_root()
                    .join("target/bench/vrrp.json")
                    .display()
            ),
        ]),
        BenchTarget::Xdp { runs, calls, cpu } => {
            let json = crate::workspace_root().join("target/bench/xdp.json");
            crate::lab::run(&[
                "bench-xdp".to_string(),
                "--runs".into(),
                runs.to_string(),
                "--calls".into(),
                calls.to_string(),
                "--cpu".into(),
                cpu.to_string(),
                "--json".into(),
                json.display().to_string(),
            ])
        }
    }
}
