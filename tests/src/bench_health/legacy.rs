//! The measurement of a legacy checker (HAProxy, keepalived) once it runs:
//! the same window and kills as lb's, its verdicts read from its log.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use serde::Serialize;

use super::{
    Context,
    daemon::Daemon,
    layout::Server,
    logwatch::LogWatch,
    phase::{self, Cost, Detection},
};

/// What one run of a legacy checker measured.
#[derive(Clone, Debug, Serialize)]
pub struct LegacyRun {
    pub cost: Cost,
    /// Servers it took down from its start to the window (every server
    /// answers: each is a check that failed on a loaded machine), and
    /// during the window.
    pub start_downs: usize,
    pub window_downs: usize,
    pub detections: Vec<Detection>,
}

/// Waits until the log says no server is down, at least until `idle`:
/// every server answers, so one taken down missed a check on a loaded
/// machine, and comes back after `rise` passes.
fn settle(watch: &mut LogWatch, idle: Instant, patience: Duration) -> Result<()> {
    watch.idle(idle)?;
    let deadline = Instant::now() + patience;
    while !watch.down().is_empty() {
        ensure!(
            Instant::now() < deadline,
            "{} servers still down after {patience:?}, e.g. {}; last lines:\n{}",
            watch.down().len(),
            watch
                .down()
                .first()
                .map(|s| s.socket().to_string())
                .unwrap_or_default(),
            watch.tail.join("\n")
        );
        watch.idle(Instant::now() + Duration::from_millis(100))?;
    }
    Ok(())
}

/// Measures `daemon` (whose checking process is `pid`): waits until every
/// server was checked (the checks are spread over one interval, so two
/// intervals and a second), measures the window, kills `victims` once per
/// method.
pub fn measure(
    cx: &mut Context,
    label: &str,
    daemon: &mut Daemon,
    watch: &mut LogWatch,
    pid: u32,
    victims: &[Server],
    progress: &mut dyn FnMut(&str),
) -> Result<LegacyRun> {
    let patience = cx.patience();
    settle(
        watch,
        Instant::now() + cx.timing.inter * 2 + Duration::from_secs(1),
        patience * 4,
    )?;
    let start_downs = watch.downs;
    progress(&format!(
        "{label}: {start_downs} servers taken down at start; measuring {:?} of steady checking",
        cx.duration
    ));
    let cost = phase::cost(pid, cx.duration)?;
    watch.pump(Instant::now());
    let window_downs = watch.downs - start_downs;
    ensure!(
        daemon.exited()?.is_none(),
        "{label} exited:\n{}",
        watch.tail.join("\n")
    );
    progress(&format!(
        "{label}: {:.1} % of a core, RSS {:.0} MiB, {window_downs} servers taken down",
        cost.cpu_percent, cost.rss_mib
    ));
    settle(watch, Instant::now(), patience * 4)?;
    let mut detections = Vec::new();
    for &how in &cx.methods.clone() {
        let d = phase::detect(&mut cx.rig(), watch, how, victims, patience)?;
        progress(&cx.detection_line(label, &d));
        detections.push(d);
    }
    Ok(LegacyRun {
        cost,
        start_downs,
        window_downs,
        detections,
    })
}
