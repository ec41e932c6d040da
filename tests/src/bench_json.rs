//! Every benchmark's JSON report: written pretty to the path given (its
//! directory made if needed), and its path printed after the table.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

/// Writes `report` as pretty JSON to `path` and says where.
pub fn save(report: &impl Serialize, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("JSON: {}", path.display());
    Ok(())
}
