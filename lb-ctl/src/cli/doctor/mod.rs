//! `lb-ctl doctor`: checks this host for what lb needs and what gets in its
//! way — the things an operator otherwise debugs by hand after the agent
//! failed to start — and prints each finding with its fix.
//!
//! The host is read once ([`host::Host::gather`]); the checks are pure
//! functions of the configuration and that snapshot. Exit status: 0 when no
//! problem was found (warnings allowed), 1 when one was, 2 when the
//! configuration itself is unusable (as `lb-ctl config check`).

mod checks;
mod conflicts;
mod finding;
mod host;
mod netlink;
mod procfs;
#[cfg(test)]
mod tests;

use std::path::Path;

use lb_config::{Config, LoadError};

pub use finding::{Finding, Level, Report};
use host::Host;

use super::{Exit, Output};

/// Runs every check against the configuration at `path`.
pub fn run(path: &Path, out: Output) -> Exit {
    let config = match lb_config::load(path) {
        Ok(checked) => checked.config,
        Err(e) => {
            // The same report `lb-ctl config check` gives.
            if matches!(e, LoadError::Invalid(_)) {
                super::config_check::run(path, out);
            } else {
                super::print_error(&anyhow::Error::new(e).context(
                    "the doctor checks the host against a configuration: pass --config FILE",
                ));
            }
            return Exit::BadInput;
        }
    };
    let host = Host::gather(&config);
    let findings = diagnose(&config, &host);
    let report = Report::new(path, &findings);
    match out {
        Output::Json => super::print_json(&serde_json::to_value(&report).unwrap_or_default()),
        Output::Table => print!("{}", report.to_text()),
    }
    if report.problems > 0 {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

/// Every finding, in the order an operator fixes things: kernel first, then
/// interfaces, sysctls, memory, conflicts, and advice for other hosts last.
pub fn diagnose(config: &Config, host: &Host) -> Vec<Finding> {
    let mut out = vec![
        checks::kernel(host),
        checks::btf(host),
        checks::bpffs(config, host),
    ];
    out.extend(checks::interfaces(config, host));
    out.extend(checks::rp_filter(config, host));
    out.extend(checks::forwarding(host));
    out.push(checks::memory(config, host));
    out.extend(conflicts::legacy_daemons(config, host));
    out.extend(conflicts::listeners(config, host));
    out.push(conflicts::pin_lock(config, host));
    out.extend(checks::dr_backends(config));
    out
}
