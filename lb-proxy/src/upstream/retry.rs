//! What to do after a failed attempt: try the same server again, another
//! one, or give up — HAProxy 2.6's rules (`back_handle_st_cer` and
//! `stream_choose_redispatch`, as of 2.6.12, checked against Debian's
//! build), as a pure function.
//!
//! - `retries N` allows N attempts after the first; then the request fails
//!   (503 for a connection that could not be made).
//! - With `option redispatch`, an attempt goes to another server when the
//!   server is down, on the last retry, or at once when any server would do
//!   anyway: the request is not bound to the server (no persistence
//!   cookie), the balance is not a hash (a hash would pick the same server
//!   again), and more than one server is usable.
//! - After an immediate error (refused, reset) on a new connection, an
//!   attempt on the same server (or on the only one) waits `min(1 s,
//!   timeout connect)`: a server that just refused would most likely refuse
//!   again at once.

use std::time::Duration;

/// The pool's retry settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rules {
    pub(crate) retries: u32,
    pub(crate) redispatch: bool,
    /// The balance is a hash (`source`, `uri`, `url_param`, `hdr`).
    pub(crate) hash: bool,
    pub(crate) connect_timeout: Duration,
}

/// The failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// Retries already made for this request.
    pub(crate) retries_done: u32,
    /// The server is up (health) — not down, not in maintenance.
    pub(crate) server_running: bool,
    /// The request was sent to the server because of its persistence
    /// cookie.
    pub(crate) persistent: bool,
    /// Servers usable in the pool now.
    pub(crate) usable_servers: usize,
    /// The error came at once (refused, reset) rather than after a timeout.
    pub(crate) immediate: bool,
    /// It happened on a connection taken from the idle pool.
    pub(crate) reused: bool,
}

/// The next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Give up: retries exhausted.
    GiveUp,
    /// Attempt again, after `wait`, on the same server or (`redispatch`)
    /// on one the balancer picks, avoiding the failed one.
    Retry {
        redispatch: bool,
        wait: Option<Duration>,
    },
}

/// HAProxy's wait before an attempt that follows an immediate error.
const TURNAROUND: Duration = Duration::from_secs(1);

pub(crate) fn after_failure(rules: &Rules, f: &Failure) -> Next {
    if f.retries_done >= rules.retries {
        return Next::GiveUp;
    }
    let retry = f.retries_done + 1;
    // `option redispatch` without a number: on the last retry (HAProxy's
    // default interval of -1).
    let last = retry.is_multiple_of(rules.retries);
    let any_server_will_do = !f.persistent && f.usable_servers > 1 && !rules.hash;
    let redispatch = rules.redispatch && (!f.server_running || last || any_server_will_do);
    let waits = f.immediate && !f.reused && (!redispatch || f.usable_servers <= 1);
    let wait = waits.then(|| TURNAROUND.min(rules.connect_timeout));
    Next::Retry { redispatch, wait }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        retries: 3,
        redispatch: true,
        hash: false,
        connect_timeout: Duration::from_secs(10),
    };
    const REFUSED: Failure = Failure {
        retries_done: 0,
        server_running: true,
        persistent: true,
        usable_servers: 2,
        immediate: true,
        reused: false,
    };
    const SECOND: Option<Duration> = Some(Duration::from_secs(1));

    fn run(rules: &Rules, f: Failure) -> Vec<Next> {
        (0..=rules.retries)
            .map(|done| {
                after_failure(
                    rules,
                    &Failure {
                        retries_done: done,
                        ..f
                    },
                )
            })
            .collect()
    }

    #[test]
    fn persistent_request_retries_its_server_then_redispatches_on_the_last() {
        use Next::*;
        assert_eq!(
            run(&RULES, REFUSED),
            [
                Retry {
                    redispatch: false,
                    wait: SECOND
                },
                Retry {
                    redispatch: false,
                    wait: SECOND
                },
                Retry {
                    redispatch: true,
                    wait: None
                },
                GiveUp,
            ]
        );
    }

    #[test]
    fn balanced_request_moves_at_once_unless_hashed() {
        let f = Failure {
            persistent: false,
            ..REFUSED
        };
        assert_eq!(
            run(&RULES, f)[0],
            Next::Retry {
                redispatch: true,
                wait: None
            }
        );
        let hashed = Rules {
            hash: true,
            ..RULES
        };
        let steps = run(&hashed, f);
        assert_eq!(
            steps[0],
            Next::Retry {
                redispatch: false,
                wait: SECOND
            }
        );
        assert_eq!(
            steps[2],
            Next::Retry {
                redispatch: true,
                wait: None
            }
        );
    }

    #[test]
    fn the_only_server_is_waited_for_even_when_moving() {
        let f = Failure {
            persistent: false,
            usable_servers: 1,
            ..REFUSED
        };
        let steps = run(&RULES, f);
        assert_eq!(
            steps[0],
            Next::Retry {
                redispatch: false,
                wait: SECOND
            }
        );
        assert_eq!(
            steps[2],
            Next::Retry {
                redispatch: true,
                wait: SECOND
            }
        );
    }

    #[test]
    fn down_server_is_left_at_once() {
        let f = Failure {
            server_running: false,
            ..REFUSED
        };
        assert_eq!(
            after_failure(&RULES, &f),
            Next::Retry {
                redispatch: true,
                wait: None
            }
        );
    }

    #[test]
    fn without_redispatch_every_retry_is_the_same_server() {
        let rules = Rules {
            redispatch: false,
            ..RULES
        };
        let f = Failure {
            persistent: false,
            server_running: false,
            ..REFUSED
        };
        let steps = run(&rules, f);
        assert!(steps[..3].iter().all(|s| *s
            == Next::Retry {
                redispatch: false,
                wait: SECOND
            }));
        assert_eq!(steps[3], Next::GiveUp);
    }

    #[test]
    fn timeouts_and_reused_connections_retry_without_waiting() {
        let timeout = Failure {
            immediate: false,
            ..REFUSED
        };
        let reused = Failure {
            reused: true,
            ..REFUSED
        };
        for f in [timeout, reused] {
            assert_eq!(
                after_failure(&RULES, &f),
                Next::Retry {
                    redispatch: false,
                    wait: None
                }
            );
        }
    }

    #[test]
    fn the_wait_is_at_most_timeout_connect() {
        let rules = Rules {
            connect_timeout: Duration::from_millis(200),
            ..RULES
        };
        let wait = Some(Duration::from_millis(200));
        assert_eq!(
            after_failure(&rules, &REFUSED),
            Next::Retry {
                redispatch: false,
                wait
            }
        );
    }

    #[test]
    fn no_retries_gives_up_at_once() {
        let rules = Rules {
            retries: 0,
            ..RULES
        };
        assert_eq!(after_failure(&rules, &REFUSED), Next::GiveUp);
    }

    #[test]
    fn one_retry_is_the_last_and_redispatches() {
        let rules = Rules {
            retries: 1,
            ..RULES
        };
        assert_eq!(
            after_failure(&rules, &REFUSED),
            Next::Retry {
                redispatch: true,
                wait: None
            }
        );
    }
}
