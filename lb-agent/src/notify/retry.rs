//! Trying a delivery again: the first try, then after `backoff`, doubled
//! each time up to `max_backoff`, `attempts` tries in all. Only failures
//! that may pass are tried again (no answer, a timeout, HTTP 5xx, SMTP 4xx);
//! a refusal (HTTP 4xx, SMTP 5xx) is final.

use std::time::Duration;

use lb_config::notify::RetryConfig;

use super::stats::{Channel, Counters};

/// Why a try failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// May pass if tried again.
    Transient(String),
    /// Will not pass: do not try again.
    Permanent(String),
}

impl Failure {
    fn reason(&self) -> &str {
        match self {
            Failure::Transient(r) | Failure::Permanent(r) => r,
        }
    }
}

/// The waits between tries: `attempts - 1` of them.
pub fn schedule(policy: &RetryConfig) -> impl Iterator<Item = Duration> + use<> {
    let (first, cap) = (policy.backoff, policy.max_backoff);
    (0..policy.attempts.saturating_sub(1)).map(move |i| {
        first
            .checked_mul(1u32.checked_shl(i).unwrap_or(u32::MAX))
            .map_or(cap, |d| d.min(cap))
    })
}

/// Runs `attempt` until it succeeds, fails for good, or the tries are used
/// up; counts and logs each retry. The error says why the last try failed.
pub async fn deliver<F, Fut>(
    policy: &RetryConfig,
    channel: Channel,
    counters: &Counters,
    mut attempt: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let mut waits = schedule(policy);
    let mut n = 0u32;
    loop {
        n += 1;
        let failure = match attempt().await {
            Ok(()) => return Ok(()),
            Err(f @ Failure::Permanent(_)) => return Err(f.reason().to_owned()),
            Err(f) => f,
        };
        let Some(wait) = waits.next() else {
            return Err(format!("{} (gave up after {n} tries)", failure.reason()));
        };
        counters.retried(channel);
        tracing::warn!(
            channel = channel.as_str(),
            attempt = n,
            of = policy.attempts,
            "notification failed, trying again in {wait:?}: {}",
            failure.reason()
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::Cell, time::Duration};

    use super::*;

    fn policy(attempts: u32, backoff_ms: u64, max_ms: u64) -> RetryConfig {
        RetryConfig {
            attempts,
            backoff: Duration::from_millis(backoff_ms),
            max_backoff: Duration::from_millis(max_ms),
        }
    }

    fn ms(policy: &RetryConfig) -> Vec<u128> {
        schedule(policy).map(|d| d.as_millis()).collect()
    }

    #[test]
    fn doubles_up_to_the_cap() {
        assert_eq!(ms(&policy(5, 1000, 60_000)), [1000, 2000, 4000, 8000]);
        assert_eq!(ms(&policy(6, 1000, 5000)), [1000, 2000, 4000, 5000, 5000]);
        assert_eq!(ms(&policy(1, 1000, 5000)), Vec::<u128>::new());
        assert_eq!(ms(&policy(100, 1000, 60_000)).last(), Some(&60_000));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_and_counted_permanent_ones_are_not() {
        let counters = Counters::new();
        let tries = Cell::new(0);
        let p = policy(3, 100, 1000);
        let r = deliver(&p, Channel::Webhook, &counters, || {
            tries.set(tries.get() + 1);
            async { Err(Failure::Transient("503".into())) }
        })
        .await;
        assert_eq!(r, Err("503 (gave up after 3 tries)".into()));
        assert_eq!(tries.get(), 3);
        assert_eq!(counters.snapshot().0[1].1.retries, 2);

        let r = deliver(&p, Channel::Email, &counters, || async {
            Err(Failure::Permanent("550 no such user".into()))
        })
        .await;
        assert_eq!(r, Err("550 no such user".into()));
        assert_eq!(counters.snapshot().0[0].1.retries, 0);

        tries.set(0);
        let r = deliver(&p, Channel::Email, &counters, || {
            tries.set(tries.get() + 1);
            let ok = tries.get() == 2;
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(Failure::Transient("421".into()))
                }
            }
        })
        .await;
        assert_eq!((r, tries.get()), (Ok(()), 2));
    }
}
