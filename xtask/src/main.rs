//! `cargo xtask`: lb's developer and CI commands, one module per command.

mod bench;
mod build_ebpf;
mod cargo;
mod demo;
mod disk;
mod lab;
mod package;
mod packages;
mod process;
mod rig;
mod test;
mod toolchain;

use std::{path::Path, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "lb's build, test and demo tasks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the XDP program (lb-ebpf) for the BPF target, installing the eBPF toolchain if needed.
    BuildEbpf(build_ebpf::BuildEbpf),
    /// What CI runs: toolchain and packages, fmt, clippy (host and eBPF), then all tests (as root).
    Test(test::Test),
    /// Bring up a demo: client, load balancer and backends in network namespaces.
    Demo(demo::Demo),
    /// Measure the data path.
    Bench(bench::Bench),
    /// Create or remove the test rig's network namespaces by hand.
    Rig(rig::Rig),
    /// Build the Debian package (target/debian/lb_<version>_<arch>.deb).
    Package(package::Package),
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::BuildEbpf(args) => build_ebpf::run(&args),
        Task::Test(args) => test::run(&args),
        Task::Demo(args) => demo::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Rig(args) => rig::run(&args),
        Task::Package(args) => package::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::from(process::exit_code(&err))
        }
    }
}

/// The workspace root: every child command runs there, so `cargo xtask` works from any directory.
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ sits one level below the workspace root")
}
