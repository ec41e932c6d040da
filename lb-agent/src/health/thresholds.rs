//! A backend's health as HAProxy 2.x counts it (src/check.c, `health`): a
//! counter from 0 to `rise + fall - 1`, healthy while it is at least `rise`.
//! A failure takes one off (and, below `rise`, drops it to 0); a success
//! adds one (and, at `rise`, jumps to the top). So a healthy backend needs
//! `fall` failures in a row to go down, and a down one `rise` successes in
//! a row to come back; one success while falling restores it fully.
//!
//! HAProxy starts a server at `rise`: healthy, yet one failure takes it
//! down. lb does the same: a backend is in its pool's rotation from the
//! start (so a start or a new backend does not wait `rise` checks), and the
//! first check decides.

use std::time::Duration;

use lb_config::check::CheckTiming;

/// The counter and its thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    value: u32,
    rise: u32,
    fall: u32,
}

impl Health {
    /// A new backend: healthy, on probation (one failure takes it down).
    pub fn new(rise: u32, fall: u32) -> Health {
        let (rise, fall) = (rise.max(1), fall.max(1));
        Health {
            value: rise,
            rise,
            fall,
        }
    }

    fn top(&self) -> u32 {
        self.rise + self.fall - 1
    }

    pub fn healthy(&self) -> bool {
        self.value >= self.rise
    }

    /// Counts one result; `Some(healthy)` when that changes `healthy`.
    pub fn observe(&mut self, passed: bool) -> Option<bool> {
        let before = self.healthy();
        if passed {
            if self.value < self.top() {
                self.value += 1;
                if self.value >= self.rise {
                    self.value = self.top();
                }
            }
        } else if self.value > 0 {
            self.value -= 1;
            if self.value < self.rise {
                self.value = 0;
            }
        }
        (self.healthy() != before).then_some(self.healthy())
    }

    /// Results in a row toward the next change, and how many it takes:
    /// failures out of `fall` while healthy, successes out of `rise` while not.
    pub fn progress(&self) -> (u32, u32) {
        if self.healthy() {
            (self.top() - self.value, self.fall)
        } else {
            (self.value, self.rise)
        }
    }

    /// When the next check is due (HAProxy `srv_getinter`): `inter` while
    /// fully healthy, `downinter` while fully down, `fastinter` in between.
    pub fn interval(&self, t: &CheckTiming) -> Duration {
        if self.value == self.top() {
            t.inter
        } else if self.value == 0 {
            t.downinter
        } else {
            t.fastinter
        }
    }

    /// Keeps what the counter says under new thresholds (a reload), healthy
    /// or not, as fully so.
    pub fn rethreshold(&mut self, rise: u32, fall: u32) {
        let healthy = self.healthy();
        *self = Health::new(rise, fall);
        self.value = if healthy { self.top() } else { 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> CheckTiming {
        CheckTiming {
            inter: Duration::from_secs(2),
            fastinter: Duration::from_millis(500),
            downinter: Duration::from_secs(5),
            rise: 2,
            fall: 3,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_new_backend_is_healthy_but_one_failure_takes_it_down() {
        let mut h = Health::new(2, 3);
        assert!(h.healthy());
        assert_eq!(h.observe(false), Some(false));
        assert_eq!(h.progress(), (0, 2));
    }

    #[test]
    fn a_new_backend_that_passes_is_fully_healthy() {
        let mut h = Health::new(2, 3);
        assert_eq!(h.observe(true), None);
        assert_eq!(h.progress(), (0, 3));
        assert_eq!(h.interval(&timing()), timing().inter);
    }

    #[test]
    fn from_up_fall_failures_in_a_row_take_it_down() {
        let mut h = Health::new(2, 3);
        h.observe(true);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.progress(), (1, 3));
        assert_eq!(
            h.interval(&timing()),
            timing().fastinter,
            "changing: fastinter"
        );
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(false));
        assert_eq!(h.interval(&timing()), timing().downinter, "down: downinter");
    }

    #[test]
    fn one_success_while_falling_restores_it_fully() {
        let mut h = Health::new(2, 3);
        h.observe(true);
        h.observe(false);
        h.observe(false);
        assert_eq!(h.observe(true), None);
        assert_eq!(h.progress(), (0, 3));
        // It takes `fall` failures again.
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(false));
    }

    #[test]
    fn from_down_rise_successes_in_a_row_bring_it_up_and_a_failure_restarts_the_count() {
        let mut h = Health::new(2, 3);
        h.observe(false);
        assert_eq!(h.observe(true), None);
        assert_eq!(h.progress(), (1, 2));
        assert_eq!(h.interval(&timing()), timing().fastinter);
        assert_eq!(h.observe(false), None, "back to 0");
        assert_eq!(h.progress(), (0, 2));
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), Some(true));
        assert_eq!(h.progress(), (0, 3));
    }

    #[test]
    fn rise_and_fall_of_one_flip_on_every_change() {
        let mut h = Health::new(1, 1);
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(false), Some(false));
        assert_eq!(h.observe(true), Some(true));
    }

    #[test]
    fn new_thresholds_keep_the_verdict() {
        let mut h = Health::new(2, 3);
        h.observe(false);
        h.rethreshold(5, 5);
        assert!(!h.healthy());
        assert_eq!(h.progress(), (0, 5));
    }
}
