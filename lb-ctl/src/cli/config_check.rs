//! `lb-ctl config check FILE`: every problem as `file:line:col: message`, like
//! `haproxy -c` and `keepalived -t`; exit 2 when there are errors.

use std::path::Path;

use serde_json::json;

use super::{Exit, Output};
use lb_config::{self as config, LoadError};

pub fn run(path: &Path, out: Output) -> Exit {
    match config::load(path) {
        Ok(checked) => {
            let services = checked.config.services.len();
            let pools = checked.config.pools.len();
            let backends: usize = checked.config.pools.iter().map(|p| p.backends.len()).sum();
            match out {
                Output::Json => println!(
                    "{}",
                    json!({
                        "file": path,
                        "valid": true,
                        "services": services,
                        "pools": pools,
                        "backends": backends,
                        "warnings": checked.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
                    })
                ),
                Output::Table => {
                    for w in &checked.warnings {
                        eprintln!("{w}");
                    }
                    println!(
                        "{}: configuration valid ({services} services, {pools} pools, {backends} backends, {} warnings)",
                        path.display(),
                        checked.warnings.len()
                    );
                }
            }
            Exit::Ok
        }
        Err(LoadError::Invalid(diags)) => {
            match out {
                Output::Json => println!(
                    "{}",
                    json!({
                        "file": path,
                        "valid": false,
                        "problems": diags.0.iter().map(|d| json!({
                            "line": d.line, "col": d.col, "path": d.path,
                            "severity": format!("{:?}", d.severity).to_lowercase(),
                            "message": d.message,
                        })).collect::<Vec<_>>(),
                    })
                ),
                Output::Table => {
                    eprintln!("{diags}");
                    eprintln!("{}: {} errors", path.display(), diags.error_count());
                }
            }
            Exit::BadInput
        }
        Err(e @ LoadError::Io { .. }) => {
            super::print_error(&anyhow::Error::new(e));
            Exit::BadInput
        }
    }
}
