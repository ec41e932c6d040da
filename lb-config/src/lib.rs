//! lb's configuration file: YAML read through serde into raw structs that reject
//! unknown keys, then checked into a typed [`Config`]. Nothing touches the kernel
//! until the whole file is valid, and a check reports every problem at once as
//! `file:line:col: message`, like `haproxy -c` and `keepalived -t`.
//!
//! The pipeline, each stage reporting and carrying on where it can:
//! 1. `serde_yaml` parses the text into a `Value` (a syntax error stops here);
//! 2. `positions` indexes where every node sits, from yaml-rust2's marked events;
//! 3. `raw` deserializes section by section and list element by element,
//!    reporting each unknown key or wrong type at its node;
//! 4. `validate` checks ranges, references and uniqueness and builds the model.

pub mod check;
mod diagnostic;
pub mod duration;
mod model;
pub mod notify;
mod positions;
pub mod proxy;
mod raw;
pub mod rules;
pub mod stats;
mod validate;
pub mod vrrp;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use model::*;

use diagnostic::Problems;
use positions::{Positions, YamlPath};

/// A configuration that passed every check, with the warnings it raised.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub config: Config,
    /// Non-fatal findings, sorted by position.
    pub warnings: Vec<Diagnostic>,
}

/// Why [`load`] returned no configuration.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read and has problems, listed one per line.
    #[error("{0}")]
    Invalid(#[from] Diagnostics),
}

/// Reads and checks the file at `path`; diagnostics name it as given.
pub fn load(path: &Path) -> Result<Checked, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse(&text, &path.display().to_string())?)
}

/// Checks `text`; `file` names it in diagnostics. On failure every problem found
/// is returned, errors and warnings, sorted by position.
pub fn parse(text: &str, file: &str) -> Result<Checked, Diagnostics> {
    let positions = Positions::index(text);
    let mut problems = Problems::new(file, &positions);
    let root = YamlPath::root();
    let config = match document(text, &positions, &mut problems) {
        Some(mut value) => {
            if value.is_null() {
                // An empty file (or one with only comments) is an empty mapping.
                value = serde_yaml::Value::Mapping(Default::default());
            }
            raw::drop_non_string_keys(&mut value, &root, &mut problems);
            let v1 = validate::take_schema_v1(&mut value, &mut problems);
            raw::deserialize_all::<raw::RawConfig>(value, &root, &mut problems)
                .map(|(raw, broken)| validate::config(raw, &broken, v1, &mut problems))
        }
        None => None,
    };
    match config {
        Some(config) if !problems.has_errors() => Ok(Checked {
            config,
            warnings: problems.into_sorted(),
        }),
        _ => Err(Diagnostics(problems.into_sorted())),
    }
}

/// The YAML document as a `Value`, merge keys (`<<: *base`) applied; `None` after
/// reporting a syntax error.
fn document(
    text: &str,
    positions: &Positions,
    problems: &mut Problems,
) -> Option<serde_yaml::Value> {
    let root = YamlPath::root();
    let mut value = match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(v) => v,
        Err(e) => {
            let mut message = e.to_string();
            let mut pos = e.location().map(|l| positions::Pos {
                line: l.line(),
                col: l.column(),
            });
            if let Some(l) = e.location() {
                // The message repeats the position the diagnostic already starts with.
                message = message.replacen(
                    &format!(" at line {} column {}", l.line(), l.column()),
                    "",
                    1,
                );
            }
            if message.contains("duplicate entry with key") {
                // libyaml points at the mapping; our index knows the repeated key.
                if let Some((_, at)) = positions.first_duplicate_key() {
                    pos = Some(at);
                }
            }
            problems.push_at(pos.unwrap_or(positions::Pos::START), &root, message);
            return None;
        }
    };
    if let Err(e) = value.apply_merge() {
        let pos = positions.find_key("<<").unwrap_or(positions::Pos::START);
        problems.push_at(pos, &root, format!("merge key `<<`: {e}"));
        return None;
    }
    Some(value)
}
