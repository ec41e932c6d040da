//! Debian packages the tests run, installed with apt when missing.

use std::{io, process::Command};

use anyhow::Result;

use crate::process::{self, is_root, say};

/// What the integration tests call: `ip`, `ethtool`, `ping`, `bpftool`, `tcpdump`, `curl`,
/// `sysctl`/`ps`, `modprobe`; and `python3` for the rig's backends (`cargo xtask rig up`).
// Later tests add keepalived, haproxy, nginx, wrk, iperf3, mariadb-server and python3-aiosmtpd
// (comparisons with the legacy stack, L7 backends, load, SMTP notify): extend this list then.
pub const TEST_PACKAGES: &[&str] = &[
    "iproute2",
    "ethtool",
    "iputils-ping",
    "bpftool",
    "tcpdump",
    "curl",
    "procps",
    "python3",
    "kmod",
];

/// Installs those of `packages` that dpkg does not list as installed (`apt-get update` once,
/// then one `apt-get install`). Without root it says what is missing and installs nothing.
pub fn ensure_debian_packages(packages: &[&str]) -> Result<()> {
    let mut missing = Vec::new();
    for &package in packages {
        match is_installed(package) {
            Ok(true) => {}
            Ok(false) => missing.push(package),
            Err(err) if is_not_found(&err) => {
                say(format_args!(
                    "dpkg-query not found, so not Debian: make sure these are installed yourself: {}",
                    packages.join(" ")
                ));
                return Ok(());
            }
            Err(err) => return Err(err),
        }
    }
    if missing.is_empty() {
        say(format_args!(
            "Debian packages: present ({})",
            packages.join(" ")
        ));
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        say(format_args!(
            "Debian packages missing: {list}; not installing them: installing needs root"
        ));
        return Ok(());
    }
    process::run(
        "refreshing apt's package lists",
        Command::new("apt-get").arg("update"),
    )?;
    process::run(
        &format!("installing Debian packages: {list}"),
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )
}

/// dpkg's verdict: `dpkg-query` exits non-zero for a package it has never heard of, and reports
/// "deinstall ok config-files" and the like for ones that are not (fully) installed.
fn is_installed(package: &str) -> Result<bool> {
    let output =
        process::capture(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))?;
    Ok(output.status.success() && output.stdout == b"install ok installed")
}

fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|err| err.kind() == io::ErrorKind::NotFound)
}
