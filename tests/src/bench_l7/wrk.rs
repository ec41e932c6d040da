//! wrk as the load: `wrk -tT -cC -dDs --latency URL`, its requests per
//! second and its 99th percentile latency read from what it prints.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// What one wrk run measured.
#[derive(Clone, Copy, Debug)]
pub struct WrkRun {
    pub requests: u64,
    pub rps: f64,
    pub p99_ms: f64,
    /// Non-2xx/3xx answers and socket errors wrk counted.
    pub errors: u64,
}

/// Runs wrk against `url` for `duration` with `threads` and `connections`.
pub fn run(url: &str, threads: u32, connections: u32, duration: Duration) -> Result<WrkRun> {
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs()))
        .arg("--latency")
        .arg(url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk {url}: {}{text}", String::from_utf8_lossy(&out.stderr));
    }
    parse(&text).with_context(|| format!("reading wrk's output:\n{text}"))
}

/// Reads `Requests/sec:`, the `99%` latency line, the `N requests in`
/// line and the error lines.
fn parse(text: &str) -> Option<WrkRun> {
    let mut run = WrkRun {
        requests: 0,
        rps: 0.0,
        p99_ms: 0.0,
        errors: 0,
    };
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => run.rps = n.parse().ok()?,
            ["99%", t] => run.p99_ms = millis(t)?,
            [n, "requests", "in", ..] => run.requests = n.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => run.errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                run.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    (run.rps > 0.0).then_some(run)
}

/// `812.00us`, `3.21ms`, `1.02s` in milliseconds.
fn millis(t: &str) -> Option<f64> {
    let split = t.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().ok()?;
    match unit {
        "us" => Some(n / 1000.0),
        "ms" => Some(n),
        "s" => Some(n * 1000.0),
        "m" => Some(n * 60_000.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_wrk_4_1_prints() {
        let text = "Running 10s test @ http://127.0.0.1:8080/\n  2 threads and 64 connections\n\
            \x20 Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
            \x20   Latency     1.52ms  300.00us  12.00ms   90.00%\n\
            \x20 Latency Distribution\n     50%    1.40ms\n     75%    1.60ms\n\
            \x20    90%    1.90ms\n     99%  812.00us\n\
            \x20 412345 requests in 10.00s, 50.00MB read\n\
            \x20 Socket errors: connect 0, read 2, write 0, timeout 1\n\
            \x20 Non-2xx or 3xx responses: 4\nRequests/sec:  41234.50\nTransfer/sec:      5.00MB\n";
        let r = parse(text).expect("parsed");
        assert_eq!(r.requests, 412_345);
        assert_eq!(r.rps, 41_234.5);
        assert!((r.p99_ms - 0.812).abs() < 1e-9);
        assert_eq!(r.errors, 7);
    }
}
