//! CPU time of a process and its children (nginx's workers), from `/proc`:
//! utime + stime of every thread, in seconds.

use anyhow::{Context as _, Result};

/// utime + stime of `pid` and of every process whose parent it is.
pub fn tree_secs(pid: u32) -> Result<f64> {
    let mut ticks = ticks_of(pid)?.0;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok((t, parent)) = ticks_of(child)
            && parent == pid
        {
            ticks += t;
        }
    }
    // SAFETY: sysconf(3) takes no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 })
}

/// (utime + stime, parent pid) from `/proc/PID/stat`. The command name in
/// parentheses may hold blanks, so fields are counted after its last `)`.
fn ticks_of(pid: u32) -> Result<(u64, u32)> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the name: state (3), ppid (4), …, utime (14), stime (15).
    let num = |i: usize| -> Result<u64> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("field {i} of {path}"))
    };
    Ok((num(14)? + num(15)?, u32::try_from(num(4)?)?))
}
