//! Located problems (`file:line:col: message`) and the sink validation reports them to.

use std::fmt;

use serde::Serialize;

use super::positions::{Pos, Positions, Spot, YamlPath};

/// Whether a problem stops the file from loading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is rejected; nothing is applied.
    Error,
    /// Suspicious but valid; the file loads.
    Warning,
}

/// One problem in a configuration file.
///
/// Displays as `file:line:col: message` (`file:line:col: warning: message` for a
/// warning), the format of compilers, `haproxy -c` and `keepalived -t`, which
/// editors and CI annotators turn into links. Lines and columns are 1-based;
/// columns count characters. Line 0 means the problem concerns the whole file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub severity: Severity,
    /// Path of the node the problem is about, e.g. `pools.web.backends[0].weight`
    /// (empty for the document itself).
    pub path: String,
    pub message: String,
}

impl Diagnostic {
    /// Whether this problem rejects the file.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a file that did not validate, errors and warnings
/// together, sorted by position. Displays one per line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// How many of the problems are errors (at least one, for a rejected file).
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    /// How many are warnings.
    pub fn warning_count(&self) -> usize {
        self.0.len() - self.error_count()
    }

    /// The errors alone.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects problems, placing each with the position index.
pub(super) struct Problems<'a> {
    file: &'a str,
    positions: &'a Positions,
    list: Vec<Diagnostic>,
}

impl<'a> Problems<'a> {
    pub fn new(file: &'a str, positions: &'a Positions) -> Self {
        Problems {
            file,
            positions,
            list: Vec::new(),
        }
    }

    /// An error about the value at `path`.
    pub fn error(&mut self, path: &YamlPath, message: impl Into<String>) {
        self.push(Severity::Error, path, Spot::Value, message.into());
    }

    /// An error about the key of the entry at `path`.
    pub fn error_at_key(&mut self, path: &YamlPath, message: impl Into<String>) {
        self.push(Severity::Error, path, Spot::Key, message.into());
    }

    /// A warning about the value at `path`.
    pub fn warning(&mut self, path: &YamlPath, message: impl Into<String>) {
        self.push(Severity::Warning, path, Spot::Value, message.into());
    }

    /// A warning about the key of the entry at `path`.
    pub fn warning_at_key(&mut self, path: &YamlPath, message: impl Into<String>) {
        self.push(Severity::Warning, path, Spot::Key, message.into());
    }

    /// An error about `word`, found `offset` bytes into the string at `path`
    /// (at the word's column when the file shows it as written).
    pub fn error_in(
        &mut self,
        path: &YamlPath,
        offset: usize,
        word: &str,
        message: impl Into<String>,
    ) {
        self.push_word(Severity::Error, path, (offset, word), message.into());
    }

    /// A warning about `word` inside the string at `path`, as [`Self::error_in`].
    pub fn warning_in(
        &mut self,
        path: &YamlPath,
        offset: usize,
        word: &str,
        message: impl Into<String>,
    ) {
        self.push_word(Severity::Warning, path, (offset, word), message.into());
    }

    /// `file:line:col` of `word` inside the string at `path`, for models
    /// that say where they come from.
    pub fn place_of(&self, path: &YamlPath, offset: usize, word: &str) -> String {
        let pos = self.positions.locate_word(path, offset, word);
        format!("{}:{}:{}", self.file, pos.line, pos.col)
    }

    /// A problem at an explicit position (syntax errors come with their own).
    pub fn push_at(&mut self, pos: Pos, path: &YamlPath, message: impl Into<String>) {
        self.list
            .push(self.diagnostic(Severity::Error, pos, path, message.into()));
    }

    /// The line of the node at `path`, for messages like "first defined at line 12".
    pub fn line_of(&self, path: &YamlPath) -> usize {
        self.positions.locate(path, Spot::Value).line
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }

    /// Everything reported, sorted by position (stable: problems at one place keep
    /// the order they were found in).
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|d| (d.line, d.col));
        self.list
    }

    fn push_word(
        &mut self,
        severity: Severity,
        path: &YamlPath,
        (offset, word): (usize, &str),
        message: String,
    ) {
        let pos = self.positions.locate_word(path, offset, word);
        self.list
            .push(self.diagnostic(severity, pos, path, message));
    }

    fn push(&mut self, severity: Severity, path: &YamlPath, spot: Spot, message: String) {
        let pos = self.positions.locate(path, spot);
        self.list
            .push(self.diagnostic(severity, pos, path, message));
    }

    fn diagnostic(
        &self,
        severity: Severity,
        pos: Pos,
        path: &YamlPath,
        message: String,
    ) -> Diagnostic {
        Diagnostic {
            file: self.file.to_owned(),
            line: pos.line,
            col: pos.col,
            severity,
            path: path.to_string(),
            message,
        }
    }
}
