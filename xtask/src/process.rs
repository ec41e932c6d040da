//! Child commands: announcing them, streaming their output, and turning their failures into errors
//! whose exit code `cargo xtask` passes on.

use std::{
    env,
    ffi::OsStr,
    fmt,
    os::unix::process::ExitStatusExt as _,
    process::{Command, ExitStatus, Output},
};

use anyhow::{Context as _, Result};

/// Prints one progress line. Progress goes to stderr, like cargo's own, so stdout stays clean.
pub fn say(message: impl fmt::Display) {
    eprintln!("xtask: {message}");
}

/// Whether this process runs as root (effective uid 0): needed for apt, BPF and namespaces.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() == 0 }
}

/// A child command that ran and exited unsuccessfully.
#[derive(Debug)]
pub struct ChildFailed {
    command: String,
    status: ExitStatus,
    /// What it printed on stderr, when we captured that rather than streamed it.
    stderr: String,
}

impl fmt::Display for ChildFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed ({})", self.command, self.status)?;
        if !self.stderr.is_empty() {
            write!(f, ": {}", self.stderr)?;
        }
        Ok(())
    }
}

impl std::error::Error for ChildFailed {}

/// The exit code `cargo xtask` ends with for `err`: a failed child's own code (128 + signal when it
/// was killed, as a shell reports it), 1 for anything else.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<ChildFailed>())
        .and_then(|failed| {
            let status = failed.status;
            let code = status.code().or_else(|| status.signal().map(|s| 128 + s))?;
            u8::try_from(code).ok().filter(|&c| c != 0)
        })
        .unwrap_or(1)
}

/// Announces `what` with the command line, runs `cmd` with stdin/stdout/stderr inherited (its
/// output streams straight through) and fails with [`ChildFailed`] unless it exits 0.
pub fn run(what: &str, cmd: &mut Command) -> Result<()> {
    let line = describe(cmd);
    say(format_args!("{what} ({line})"));
    let status = cmd
        .status()
        .with_context(|| format!("failed to start `{line}`"))?;
    if status.success() {
        Ok(())
    } else {
        Err(ChildFailed {
            command: line,
            status,
            stderr: String::new(),
        }
        .into())
    }
}

/// Runs `cmd` quietly and returns its output whatever its exit status; fails only if it cannot
/// be started at all (the `io::Error` stays in the chain, so callers can tell "not installed").
pub fn capture(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .with_context(|| format!("failed to start `{}`", describe(cmd)))
}

/// Runs `cmd` quietly and returns its stdout; a non-zero exit is an error carrying its stderr.
pub fn stdout_of(cmd: &mut Command) -> Result<String> {
    let output = capture(cmd)?;
    if !output.status.success() {
        return Err(ChildFailed {
            command: describe(cmd),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        }
        .into());
    }
    String::from_utf8(output.stdout)
        .with_context(|| format!("`{}` printed something that is not UTF-8", describe(cmd)))
}

/// The command line as one could paste it into a shell: variables it sets, program, arguments.
/// A `PATH` that extends the current one shows as `PATH=<added>:$PATH`.
pub fn describe(cmd: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        let Some(value) = value else { continue };
        let value = if key == "PATH" {
            abbreviate_path(value)
        } else {
            quote(value)
        };
        words.push(format!("{}={value}", key.to_string_lossy()));
    }
    words.push(quote(cmd.get_program()));
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

fn abbreviate_path(value: &OsStr) -> String {
    let value = value.to_string_lossy();
    match env::var("PATH") {
        Ok(current) if !current.is_empty() => match value.strip_suffix(&*current) {
            Some(added) if added.ends_with(':') => format!("{}$PATH", quote(OsStr::new(added))),
            _ => quote(OsStr::new(&*value)),
        },
        _ => quote(OsStr::new(&*value)),
    }
}

/// Shell quoting: plain words as they are, control characters (the `\x1f` in
/// `CARGO_ENCODED_RUSTFLAGS`) in bash's `$'...'`, anything else in single quotes.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.into_owned()
    } else if word.chars().any(char::is_control) {
        let mut quoted = String::from("$'");
        for c in word.chars() {
            match c {
                '\'' | '\\' => quoted.extend(['\\', c]),
                c if c.is_control() => quoted.push_str(&format!("\\x{:02x}", u32::from(c))),
                c => quoted.push(c),
            }
        }
        quoted.push('\'');
        quoted
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_quotes_like_a_shell() {
        let mut cmd = Command::new("cargo");
        cmd.env("CARGO_ENCODED_RUSTFLAGS", "--cfg=a=\"x\"\x1f-Cdebuginfo=2")
            .args(["nextest", "run", "-E", "package(lb-common)", "it's"]);
        assert_eq!(
            describe(&cmd),
            r#"CARGO_ENCODED_RUSTFLAGS=$'--cfg=a="x"\x1f-Cdebuginfo=2' cargo nextest run -E 'package(lb-common)' 'it'\''s'"#
        );
    }

    #[test]
    fn exit_code_is_the_childs() {
        let err = anyhow::Error::from(ChildFailed {
            command: "false".into(),
            status: ExitStatus::from_raw(3 << 8),
            stderr: String::new(),
        })
        .context("step failed");
        assert_eq!(exit_code(&err), 3);
        assert_eq!(exit_code(&anyhow::anyhow!("no child")), 1);
    }
}
