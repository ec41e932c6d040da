//! Running a notification script the way keepalived's `notify_exec` does:
//! the program itself (never a shell), in its own process group, stdin
//! and stdout on /dev/null, without `IFS`, `LD_PRELOAD` or
//! `LD_LIBRARY_PATH`, and terminated if the agent dies. Unlike keepalived it
//! has a timeout: SIGTERM to the whole group, then SIGKILL a second later.

use std::{process::Stdio, time::Duration};

use tokio::{io::AsyncReadExt as _, process::Command};

/// How long a script's group has between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(1);
/// Most of a script's stderr quoted when it fails.
const STDERR_QUOTED: usize = 1024;

/// Runs `argv` with `env` added; `Err` says why it failed (its exit status
/// and the end of its stderr, or the timeout).
pub async fn run(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("IFS")
        .env_remove("LD_PRELOAD")
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let mut stderr = child.stderr.take();
    let read_stderr = async move {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 * 1024).read_to_end(&mut buf).await;
        }
        buf
    };
    let reader = tokio::spawn(read_stderr);
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status.map_err(|e| format!("waiting for {program}: {e}"))?,
        Err(_) => {
            stop_group(pgid, &mut child).await;
            reader.abort();
            return Err(format!(
                "{program} ran longer than {timeout:?}; its process group was killed"
            ));
        }
    };
    if status.success() {
        reader.abort();
        return Ok(());
    }
    // The group may hold stderr open; quote what came by now.
    let err = tokio::time::timeout(Duration::from_millis(200), reader)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Err(format!("{program} failed ({status}){}", quote(&err)))
}

/// SIGTERM to the group, SIGKILL if the script outlives the grace period.
async fn stop_group(pgid: Option<i32>, child: &mut tokio::process::Child) {
    let signal = |sig| {
        if let Some(g) = pgid {
            // SAFETY: signals the group we made for the script (pgid = its pid).
            unsafe { libc::kill(-g, sig) };
        }
    };
    signal(libc::SIGTERM);
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        signal(libc::SIGKILL);
        let _ = child.wait().await;
    }
    // What is left of the group (children that ignored SIGTERM) goes too.
    signal(libc::SIGKILL);
}

/// `: <the end of stderr>`, or nothing.
fn quote(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let start = text
        .char_indices()
        .rev()
        .nth(STDERR_QUOTED)
        .map_or(0, |(i, _)| i);
    format!(": {}", &text[start..])
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn sh(script: &str) -> Vec<String> {
        ["/bin/sh", "-c", script, "sh"].map(String::from).to_vec()
    }

    #[tokio::test]
    async fn arguments_and_environment_reach_the_script() {
        let dir = std::env::temp_dir().join(format!("lb-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let mut argv = sh(&format!("echo \"$1 $2 $LB_X\" > {}", out.display()));
        argv.extend(["a b".into(), "c".into()]);
        let env = [("LB_X".to_owned(), "x".to_owned())];
        run(&argv, &env, Duration::from_secs(10)).await.unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "a b c x\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn failures_quote_stderr() {
        let e = run(&sh("echo oops >&2; exit 3"), &[], Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(e.contains("exit status: 3") && e.ends_with(": oops"), "{e}");
        let e = run(&["/nonexistent/x".to_owned()], &[], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.starts_with("cannot run /nonexistent/x"), "{e}");
    }

    #[tokio::test]
    async fn a_script_past_its_timeout_is_killed_with_its_children() {
        let start = Instant::now();
        // A child that ignores SIGTERM and holds stderr open.
        let e = run(
            &sh("trap '' TERM; sleep 30 & wait"),
            &[],
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(e.contains("ran longer than 300ms"), "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }
}
