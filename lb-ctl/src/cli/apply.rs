//! `lb-ctl apply -c FILE`: loads (or adopts) the pinned data path, attaches it
//! to the configured interfaces and makes its maps match the file, then exits,
//! leaving it forwarding. The minimal loader; the agent does the same on start
//! and on every reload.

use std::path::Path;

use anyhow::Result;
use lb_agent::loader::{Applied, apply_once};
use lb_config::{self as config, LoadError};
use serde_json::json;

use super::{Exit, Output};

pub fn run(path: &Path, out: Output) -> Result<Exit> {
    let checked = match config::load(path) {
        Ok(c) => c,
        Err(LoadError::Invalid(d)) => {
            eprintln!("{d}");
            eprintln!(
                "{}: not applied ({} errors); nothing was changed",
                path.display(),
                d.error_count()
            );
            return Ok(Exit::BadInput);
        }
        Err(e) => return Err(e.into()),
    };
    for w in &checked.warnings {
        eprintln!("{w}");
    }
    let cfg = checked.config;
    let Applied {
        adopted,
        map_writes: writes,
        unresolved,
    } = apply_once(&cfg)?;
    for u in &unresolved {
        eprintln!("lb-ctl: warning: {u}");
    }

    match out {
        Output::Json => println!(
            "{}",
            json!({
                "bpffs": cfg.agent.bpffs,
                "adopted": adopted,
                "interfaces": cfg.interfaces.iter().map(|i| &i.name).collect::<Vec<_>>(),
                "services": cfg.services.len(),
                "pools": cfg.pools.len(),
                "map_writes": writes,
                "unresolved": unresolved,
            })
        ),
        Output::Table => println!(
            "applied {}: {} services, {} pools on {} ({} map writes; {} data path at {})",
            path.display(),
            cfg.services.len(),
            cfg.pools.len(),
            cfg.interfaces
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            writes,
            if adopted {
                "adopted the running"
            } else {
                "loaded a new"
            },
            cfg.agent.bpffs.display()
        ),
    }
    Ok(if unresolved.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}
