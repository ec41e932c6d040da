//! What a check finds, and how findings are printed: a table for people (the
//! fix under each finding that needs one), or one JSON document.

use serde::Serialize;

/// How much a finding matters. Only [`Level::Problem`] makes the exit status 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Checked and fine.
    Ok,
    /// Worth knowing, nothing to change (advice for other hosts, numbers).
    Info,
    /// The check does not apply to this configuration.
    NotApplicable,
    /// Works, but not as well as it could, or could not be checked.
    Warning,
    /// lb will not work, or not as configured, until this is fixed.
    Problem,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::NotApplicable => "n/a",
            Level::Warning => "WARNING",
            Level::Problem => "PROBLEM",
        }
    }
}

/// One result: which check, about what, what it found and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check's name, stable for scripts: `kernel`, `xdp_program`, ...
    pub check: &'static str,
    /// What it is about (an interface, a process, an address), if not the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub level: Level,
    pub message: String,
    /// Commands or changes that fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn new(check: &'static str, level: Level, message: impl Into<String>) -> Finding {
        Finding {
            check,
            subject: None,
            level,
            message: message.into(),
            fix: None,
        }
    }

    pub fn about(mut self, subject: impl Into<String>) -> Finding {
        self.subject = Some(subject.into());
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// The whole report, as `-o json` prints it.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub config: &'a std::path::Path,
    pub problems: usize,
    pub warnings: usize,
    pub findings: &'a [Finding],
}

impl<'a> Report<'a> {
    pub fn new(config: &'a std::path::Path, findings: &'a [Finding]) -> Report<'a> {
        let count = |l| findings.iter().filter(|f| f.level == l).count();
        Report {
            config,
            problems: count(Level::Problem),
            warnings: count(Level::Warning),
            findings,
        }
    }

    /// The table: one line per finding, its fix indented below it.
    pub fn to_text(&self) -> String {
        let width = self
            .findings
            .iter()
            .map(|f| heading(f).len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for f in self.findings {
            out.push_str(&format!(
                "{:<7}  {:<width$}  {}\n",
                f.level.label(),
                heading(f),
                f.message
            ));
            if let Some(fix) = &f.fix {
                for line in fix.lines() {
                    out.push_str(&format!("{:<7}  {:<width$}    {line}\n", "", ""));
                }
            }
        }
        out.push_str(&format!(
            "{}: {}, {}\n",
            self.config.display(),
            count(self.problems, "problem"),
            count(self.warnings, "warning")
        ));
        out
    }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn heading(f: &Finding) -> String {
    match &f.subject {
        Some(s) => format!("{} {s}", f.check),
        None => f.check.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_aligns_and_indents_fixes() {
        let findings = vec![
            Finding::new("kernel", Level::Ok, "Linux 6.18"),
            Finding::new("rp_filter", Level::Problem, "strict")
                .about("eth0")
                .fix("sysctl -w a=2\nsysctl -w b=2"),
        ];
        let report = Report::new("/etc/lb/lb.yaml".as_ref(), &findings);
        assert_eq!((report.problems, report.warnings), (1, 0));
        assert_eq!(
            report.to_text(),
            "ok       kernel          Linux 6.18\n\
             PROBLEM  rp_filter eth0  strict\n\
             \x20                          sysctl -w a=2\n\
             \x20                          sysctl -w b=2\n\
             /etc/lb/lb.yaml: 1 problem, 0 warnings\n"
        );
    }
}
