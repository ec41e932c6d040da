//! Debian packages the tests run, installed with apt when missing.

use std::{io, process::Command};

use anyhow::Result;

use crate::process::{self, is_root, say};

/// What the integration tests call: `ip`, `ethtool`, `ping`, `bpftool`, `tcpdump`, `curl`,
/// `sysctl`/`ps`, `modprobe`; `python3` for the rig's backends (`cargo xtask rig up`); and
/// Debian's `python3-aiosmtpd`, the SMTP server the notification tests mail to; MariaDB
/// (`mariadbd`, `mariadb-install-db`, the `mariadb` client) and `openssl` (a self-signed
/// certificate) for the health-check tests; `keepalived`, the other VRRP router of the VRRP
/// interop tests and bench; `haproxy` and `nftables` (`nft`, which black-holes servers) for the
/// health-check bench, which also runs keepalived's checker; `nft` also marks the replies to the
/// proxy's transparent sockets in the `usesrc` tests (tests/tests/proxy_transparent.rs); `haproxy -c` also judges
/// lb-config's reading of ACL lines (lb-config/tests/haproxy.rs), and HAProxy is the reference
/// of the L7 differential test; `nginx` (servers and a proxy) and `wrk` (the load) for
/// `bench l7`; `vagrant` for `vagrant validate` of the lab (no provider or VM needed); `chromium`,
/// the headless browser that logs in to the statistics page and clicks its buttons
/// (tests/tests/stats_browser.rs, tests/tests/chromium_driver.rs); `rsyslog`, a real syslog
/// daemon that must parse the proxy's access log lines (tests/tests/proxy_log.rs). Sorted.
pub const TEST_PACKAGES: &[&str] = &[
    "bpftool",
    "chromium",
    "curl",
    "ethtool",
    "haproxy",
    "iproute2",
    "iputils-ping",
    "keepalived",
    "kmod",
    "mariadb-client",
    "mariadb-server",
    "nftables",
    "nginx",
    "openssl",
    "procps",
    "python3",
    "python3-aiosmtpd",
    "rsyslog",
    "tcpdump",
    "vagrant",
    "wrk",
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
