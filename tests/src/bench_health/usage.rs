//! What a process costs, from `/proc`: CPU time (user + system, all its
//! threads) and memory (`VmRSS`, `VmHWM`, and `RssAnon`: the part that is
//! the process's own, without mapped files such as lb's BPF maps). CPU over
//! a window is the time used divided by the wall time, as a percentage of
//! one core.

use std::time::Instant;

use anyhow::{Context as _, Result};

/// One reading of a process.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    pub at: Instant,
    /// utime + stime, in seconds.
    pub cpu_secs: f64,
    pub rss_kib: u64,
    pub peak_kib: u64,
    pub anon_kib: u64,
}

impl Reading {
    /// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
    pub fn of(pid: u32) -> Result<Reading> {
        let at = Instant::now();
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {path} (did the process exit?)"))?;
        let cpu_secs = cpu_ticks(&stat).with_context(|| format!("parsing {path}: {stat:?}"))?
            as f64
            / ticks_per_sec();
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field =
            |name: &str| kib_field(&status, name).with_context(|| format!("no {name} in {path}"));
        Ok(Reading {
            at,
            cpu_secs,
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
            anon_kib: field("RssAnon:")?,
        })
    }

    /// CPU used since `earlier`, as a percentage of one core.
    pub fn cpu_percent_since(&self, earlier: &Reading) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        100.0 * (self.cpu_secs - earlier.cpu_secs) / wall
    }
}

/// utime + stime (fields 14 and 15) of a `stat` line. The command name in
/// parentheses may hold spaces, so fields are counted after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th.
    let utime: u64 = rest.nth(11)?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS:     1234 kB` → 1234.
fn kib_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (lb ctl) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    1234 567 0 0 20 0 4 0 100 1000000 2000 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(cpu_ticks("12 (x) S 1 2"), None);
        let status = "Name:\tlb-ctl\nVmHWM:\t  20480 kB\nVmRSS:\t  10240 kB\nRssAnon:\t 4096 kB\n";
        assert_eq!(kib_field(status, "VmRSS:"), Some(10240));
        assert_eq!(kib_field(status, "VmHWM:"), Some(20480));
        assert_eq!(kib_field(status, "RssAnon:"), Some(4096));
        assert_eq!(kib_field(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_uses_cpu_and_memory() {
        let a = Reading::of(std::process::id()).unwrap();
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed().as_millis() < 200 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let b = Reading::of(std::process::id()).unwrap();
        assert!(b.cpu_secs > a.cpu_secs, "{a:?} {b:?}");
        assert!(b.cpu_percent_since(&a) > 0.0);
        assert!(b.rss_kib > 0 && b.peak_kib >= b.rss_kib);
        assert!(b.anon_kib > 0 && b.anon_kib <= b.rss_kib);
    }
}
