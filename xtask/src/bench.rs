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
}

pub fn run(args: &Bench) -> Result<()> {
    match args.what {
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
