//! `type: script` (keepalived MISC_CHECK): runs `command[0]` with
//! `command[1..]` as its arguments (never through a shell) and passes iff
//! it exits 0. It runs in a process group of its own, with stdin, stdout
//! and stderr on `/dev/null` and the backend in its environment:
//! `LB_POOL`, `LB_BACKEND`, `LB_ADDRESS` (the checked address) and
//! `LB_PORT` (the checked port, empty when there is none). keepalived
//! passes nothing implicitly either: put what the script needs in
//! `command` or read those variables.
//!
//! When the check ends, the whole group gets SIGKILL: at the deadline (the
//! runner drops this future), and after a normal exit too, so nothing the
//! script left behind keeps running. The script itself is reaped by tokio
//! (a dropped child is reaped in the background), so no zombie is left.

use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitStatus, Stdio};

use lb_api::types::CheckFailure;
use tokio::process::{Child, Command};

use super::Aim;

pub async fn check(aim: &Aim, command: &[String]) -> Result<(), CheckFailure> {
    let Some((program, args)) = command.split_first() else {
        return Err(CheckFailure::Io {
            detail: "the script's command is empty".into(),
        });
    };
    let child = Command::new(program)
        .args(args)
        .envs(environment(aim))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CheckFailure::Io {
            detail: format!("running {program}: {e}"),
        })?;
    let mut group = Group::new(child);
    let status = group.child.wait().await.map_err(|e| CheckFailure::Io {
        detail: format!("waiting for {program}: {e}"),
    })?;
    verdict(status)
}

/// What the script learns about the backend.
fn environment(aim: &Aim) -> [(&'static str, String); 4] {
    let port = match aim.target.port() {
        0 => String::new(),
        p => p.to_string(),
    };
    [
        ("LB_POOL", aim.pool.clone()),
        ("LB_BACKEND", aim.backend.clone()),
        ("LB_ADDRESS", aim.target.ip().to_string()),
        ("LB_PORT", port),
    ]
}

/// Exit 0 passes; another code or a signal fails, saying which.
fn verdict(status: ExitStatus) -> Result<(), CheckFailure> {
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(CheckFailure::ScriptExit { code }),
        (None, Some(signal)) => Err(CheckFailure::ScriptSignal { signal }),
        (None, None) => Err(CheckFailure::Io {
            detail: format!("the script ended oddly: {status}"),
        }),
    }
}

/// The script and its process group, which dies with this value.
struct Group {
    child: Child,
    pgid: Option<libc::pid_t>,
}

impl Group {
    fn new(child: Child) -> Group {
        // `process_group(0)`: the group's id is the script's pid.
        let pgid = child.id().and_then(|p| libc::pid_t::try_from(p).ok());
        Group { child, pgid }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            // SAFETY: kill(2) takes no pointers. The id cannot name another
            // group: Linux does not reuse a pid while a group of that id
            // has members, and with none left the call fails with ESRCH.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        // Dropping `child` (kill_on_drop) hands it to tokio to reap.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aim(port: u16) -> Aim {
        Aim {
            target: std::net::SocketAddr::new([10, 77, 0, 101].into(), port),
            pool: "web".into(),
            backend: "b1".into(),
            mark: None,
        }
    }

    #[test]
    fn exit_codes_and_signals_are_told_apart() {
        // Wait statuses as waitpid(2) reports them.
        assert_eq!(verdict(ExitStatus::from_raw(0)), Ok(()));
        assert_eq!(
            verdict(ExitStatus::from_raw(1 << 8)),
            Err(CheckFailure::ScriptExit { code: 1 })
        );
        assert_eq!(
            verdict(ExitStatus::from_raw(libc::SIGKILL)),
            Err(CheckFailure::ScriptSignal { signal: 9 })
        );
        assert_eq!(
            CheckFailure::ScriptExit { code: 1 }.to_string(),
            "script exited with 1"
        );
    }

    #[test]
    fn the_environment_names_the_backend() {
        let env = environment(&aim(8080));
        assert_eq!(env[0], ("LB_POOL", "web".into()));
        assert_eq!(env[1], ("LB_BACKEND", "b1".into()));
        assert_eq!(env[2], ("LB_ADDRESS", "10.77.0.101".into()));
        assert_eq!(env[3], ("LB_PORT", "8080".into()));
        assert_eq!(environment(&aim(0))[3], ("LB_PORT", String::new()));
    }

    #[tokio::test]
    async fn a_script_runs_without_a_shell_and_sees_its_backend() {
        let cmd = |s: &str| {
            ["/bin/sh", "-c", s, "ignored-argv0"]
                .map(String::from)
                .to_vec()
        };
        let a = aim(80);
        assert_eq!(check(&a, &cmd("exit 0")).await, Ok(()));
        assert_eq!(
            check(&a, &cmd("exit 3")).await,
            Err(CheckFailure::ScriptExit { code: 3 })
        );
        let env = "[ \"$LB_POOL/$LB_BACKEND $LB_ADDRESS:$LB_PORT\" = 'web/b1 10.77.0.101:80' ]";
        assert_eq!(check(&a, &cmd(env)).await, Ok(()));
        let missing = check(&a, &["/nonexistent/check".to_owned()]).await;
        assert!(
            matches!(&missing, Err(CheckFailure::Io { detail }) if detail.starts_with("running /nonexistent/check: ")),
            "{missing:?}"
        );
    }
}
