//! A `vrrp_script`: run every `interval` (the program itself, no shell,
//! killed with its process group past `timeout`); `rise` successes in a row
//! make it pass, `fall` failures make it fail. One runner per script,
//! whatever number of instances track it (as keepalived).

use lb_config::vrrp::TrackScript;
use tokio::sync::watch;

use super::Facts;
use crate::notify::script::run::run as run_once;

pub(super) async fn run(s: TrackScript, tx: watch::Sender<Facts>) {
    let mut tick = tokio::time::interval(s.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut streak = Streak::default();
    loop {
        tick.tick().await;
        let result = run_once(&s.command, &[], s.timeout).await;
        if let Err(why) = &result {
            tracing::debug!(script = %s.name, "vrrp track script fails: {why}");
        }
        if let Some(ok) = streak.push(result.is_ok(), s.rise, s.fall) {
            tx.send_if_modified(|f| f.scripts.insert(s.name.clone(), Some(ok)) != Some(Some(ok)));
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// Consecutive results; the verdict once `rise` or `fall` is reached.
#[derive(Default)]
struct Streak {
    last: Option<bool>,
    count: u32,
}

impl Streak {
    fn push(&mut self, ok: bool, rise: u32, fall: u32) -> Option<bool> {
        if self.last == Some(ok) {
            self.count = self.count.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.count = 1;
        }
        let need = if ok { rise } else { fall };
        (self.count >= need).then_some(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall() {
        let mut s = Streak::default();
        assert_eq!(s.push(true, 2, 3), None);
        assert_eq!(s.push(true, 2, 3), Some(true));
        assert_eq!(s.push(false, 2, 3), None);
        assert_eq!(s.push(false, 2, 3), None);
        assert_eq!(s.push(true, 2, 3), None, "a pass breaks the streak");
        for _ in 0..2 {
            s.push(false, 2, 3);
        }
        assert_eq!(s.push(false, 2, 3), Some(false));
    }
}
