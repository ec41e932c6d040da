//! Runs `lb-lab` (the demo, benchmarks and rig, in lb-tests) after making sure
//! the eBPF toolchain and Debian packages are there. xtask cannot link lb-ctl
//! itself: building lb-ctl needs the toolchain xtask installs.

use std::{ffi::OsStr, process::Command};

use anyhow::{Result, bail};

use crate::{
    cargo, packages,
    process::{self, is_root},
    toolchain, workspace_root,
};

/// Builds lb-ctl and lb-lab in release mode and runs `lb-lab <args>`, with
/// Ctrl-C left to lb-lab (it cleans up its namespaces and pins before exiting).
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Result<()> {
    if !is_root() {
        bail!("the lab needs root (network namespaces, XDP, bpffs): run as root");
    }
    toolchain::ensure_ebpf_toolchain()?;
    packages::ensure_debian_packages(packages::TEST_PACKAGES)?;
    // Not quiet: a first release build takes minutes, and cargo's progress
    // shows it is moving.
    process::run(
        "building lb-ctl and lb-lab (release; the first build takes a few minutes)",
        cargo::host()?.args([
            "build",
            "--release",
            "-p",
            "lb-ctl",
            "-p",
            "lb-tests",
            "--bins",
        ]),
    )?;
    let bin = workspace_root().join("target/release");
    let mut cmd = Command::new(bin.join("lb-lab"));
    cmd.args(args).env("LB_CTL", bin.join("lb-ctl"));
    // The terminal's Ctrl-C reaches lb-lab too; xtask waits for it to clean up.
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    let old = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let r = process::run("running", &mut cmd);
    // SAFETY: restoring the disposition saved above.
    unsafe { libc::signal(libc::SIGINT, old) };
    r
}
