//! A client connection's one timer, for the deadlines that move on with
//! every request (`timeout http-keep-alive` between requests, `timeout
//! http-request` for a head that comes in pieces).
//!
//! A tokio timer armed per request costs an insertion into the timer wheel
//! and a removal, under the driver's lock, and whenever its deadline is
//! earlier than every other timer of the thread (10 s of keep-alive
//! against the minute of `timeout server` of the requests in flight), a
//! write to the event loop's eventfd, waking a thread that is not even
//! asleep. This one is armed once per connection and then moved: moving a
//! pending timer later only records the new deadline (the wheel finds it
//! when the old one comes up), which is what keep-alive does all the time.

use std::pin::Pin;

use tokio::time::{Instant, Sleep, sleep_until};

/// The timer, armed on first use.
#[derive(Debug, Default)]
pub struct Timer(Option<Pin<Box<Sleep>>>);

impl Timer {
    /// The timer, set to go off at `deadline`.
    pub fn until(&mut self, deadline: Instant) -> Pin<&mut Sleep> {
        let sleep = self
            .0
            .get_or_insert_with(|| Box::pin(sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn goes_off_at_the_deadline_in_force_after_moves_either_way() {
        let start = Instant::now();
        let mut timer = Timer::default();
        let at = |ms| start + Duration::from_millis(ms);
        // Polled once at 100 ms, then moved later: it goes off at the later one.
        assert!(
            futures_util::FutureExt::now_or_never(timer.until(at(100))).is_none(),
            "not yet"
        );
        timer.until(at(300)).await;
        assert_eq!(Instant::now(), at(300));
        // Moved earlier than a pending deadline, and again after it went off.
        let _ = futures_util::FutureExt::now_or_never(timer.until(at(1_000)));
        timer.until(at(400)).await;
        assert_eq!(Instant::now(), at(400));
        timer.until(at(450)).await;
        assert_eq!(Instant::now(), at(450));
    }
}
