//! `cargo xtask bench`: data-path measurements, by the method in DESIGN.md §9.

use anyhow::{Result, bail};

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
        // Wired to lb-tests' bench functions once they exist.
        BenchTarget::Xdp { .. } => bail!("not yet wired"),
    }
}
