//! `cargo xtask test`: the one command CI runs. Installs what the tests need, lints host and eBPF
//! code, then runs every test with nextest; it refuses to run without root rather than skip.

use std::{
    ffi::OsString,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use crate::{
    cargo, disk, package, packages,
    process::{self, is_root, say},
    toolchain::{self, NIGHTLY},
    workspace_root,
};

#[derive(clap::Args)]
pub struct Test {
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    no_lint: bool,
    /// Passed on to `cargo nextest run`, e.g. `-- -E 'package(lb-common)'`.
    #[arg(last = true)]
    nextest_args: Vec<OsString>,
}

pub fn run(args: &Test) -> Result<()> {
    if !is_root() {
        bail!("integration tests need root and BPF: run as root");
    }
    disk::warn_if_low(workspace_root());
    let mut steps = Steps::default();
    steps.run("eBPF toolchain", toolchain::ensure_ebpf_toolchain)?;
    steps.run("Debian packages", || {
        packages::ensure_debian_packages(packages::TEST_PACKAGES)
    })?;
    if args.no_lint {
        say("skipping fmt and clippy (--no-lint)");
    } else {
        steps.run("fmt", || {
            process::run(
                "checking formatting",
                cargo::host()?.args(["fmt", "--all", "--", "--check"]),
            )
        })?;
        steps.run("clippy (host)", || {
            process::run(
                "linting host crates",
                cargo::host()?
                    .args(["clippy", "--workspace", "--all-targets"])
                    .args(["--", "-D", "warnings"]),
            )
        })?;
        steps.run("clippy (eBPF)", || {
            toolchain::ensure_component(NIGHTLY, "clippy")?;
            process::run(
                "linting lb-ebpf on its BPF target",
                cargo::ebpf("clippy")?.args(["--", "-D", "warnings"]),
            )
        })?;
    }
    // The agent tests run the real `lb-ctl` binary, which no test target of
    // its own package builds for them.
    steps.run("build lb-ctl", || {
        process::run(
            "building the lb-ctl binary the agent tests run",
            cargo::host()?.args(["build", "-p", "lb-ctl", "--bin", "lb-ctl"]),
        )
    })?;
    // tests/tests/package.rs installs this package in a throwaway root. The
    // debug build just made: packaging it takes seconds, a release build minutes.
    steps.run("package (debug)", || {
        let out = workspace_root().join(package::Profile::Debug.default_out_dir());
        package::build(package::Profile::Debug, &out).map(drop)
    })?;
    steps.run("tests", || {
        process::run(
            "running all tests",
            cargo::host()?
                .args([
                    "nextest",
                    "run",
                    "--workspace",
                    "--all-features",
                    "--no-fail-fast",
                ])
                .args(&args.nextest_args),
        )
    })?;
    steps.finish();
    Ok(())
}

/// Runs named steps in order, timing each, and sums them up at the end or at the first failure.
#[derive(Default)]
struct Steps {
    passed: Vec<(&'static str, Duration)>,
}

impl Steps {
    fn run(&mut self, name: &'static str, step: impl FnOnce() -> Result<()>) -> Result<()> {
        say(format_args!("== {name}"));
        let start = Instant::now();
        let result = step();
        let elapsed = start.elapsed();
        match &result {
            Ok(()) => {
                say(format_args!("== {name}: ok in {}", seconds(elapsed)));
                self.passed.push((name, elapsed));
            }
            Err(_) => say(format_args!(
                "test: FAILED at {name} after {}; passed before it: {}",
                seconds(elapsed),
                self.timings()
            )),
        }
        result
    }

    fn finish(&self) {
        let total = self.passed.iter().map(|(_, elapsed)| *elapsed).sum();
        say(format_args!(
            "test: all {} steps passed in {} ({})",
            self.passed.len(),
            seconds(total),
            self.timings()
        ));
    }

    fn timings(&self) -> String {
        if self.passed.is_empty() {
            return "none".into();
        }
        let timings: Vec<_> = self
            .passed
            .iter()
            .map(|(name, elapsed)| format!("{name} {}", seconds(*elapsed)))
            .collect();
        timings.join(", ")
    }
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}
