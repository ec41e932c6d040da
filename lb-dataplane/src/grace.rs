//! Grace periods: when may a buffer that packets stopped reading be rewritten?
//!
//! Every atomic change here is a flip: write the buffer packets do not read
//! (a VIP-table half, a backend copy, a ring), then store-release the word
//! that names it. A packet that loaded the word just before the flip may
//! still be reading the retired buffer, so the next writer must not touch
//! that buffer until every program run that started before the flip has
//! finished.
//!
//! The kernel gives exactly that guarantee, and a way to wait for it: XDP
//! programs (and `BPF_PROG_TEST_RUN`) run inside RCU read-side critical
//! sections, and every update of an array-of-maps calls `synchronize_rcu()`
//! before returning to userspace (kernel/bpf/syscall.c,
//! `maybe_wait_bpf_programs`: "wait for any running non-sleepable BPF
//! programs to complete so that userspace, when we return to it, knows that
//! all non-sleepable programs that could be running use the new map value").
//! So a no-op update of a slot of `LB_RINGS` that no VIP uses
//! (`RING_GRACE_INDEX`) is a barrier: when it returns, every run that
//! started before it began has ended (~8 ms here, up to ~24 ms).
//!
//! [`Grace`] runs those barriers on a thread of its own, only while some flip
//! awaits one, and counts them. A flip takes a [`Ticket`]: the number of the
//! first barrier that *starts after* the flip. The writer that wants to reuse
//! the retired buffer waits for that ticket — normally long done, so nothing
//! waits on the path of an API answer.
//!
//! Why that suffices: the flip's store precedes the ticket (program order,
//! and the mutex), the ticket's barrier starts after the ticket is issued
//! (same mutex), and `synchronize_rcu()` waits for every read-side critical
//! section that began before it started. A program run that began later
//! loads the word after the flip's store, which `synchronize_rcu()`'s full
//! barriers make visible to it, and so reads the new buffer. Either way, once
//! the ticket's barrier has returned no run can still be reading the retired
//! buffer (docs/datapath.md, "Grace periods").

use std::{
    io,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::Duration,
};

/// A barrier number: the first barrier that started after some flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

#[derive(Default)]
struct State {
    /// Highest ticket handed out.
    requested: u64,
    /// Number of the last barrier started (barriers run one at a time).
    started: u64,
    /// Number of the last barrier that returned.
    completed: u64,
    /// The last barrier's error, until one succeeds.
    failed: Option<String>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain counters: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How long the thread waits before retrying a barrier that failed.
const RETRY: Duration = Duration::from_millis(100);

/// The barrier thread and its counters.
pub struct Grace {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Grace {
    /// Starts the thread; `barrier` returns once every program run that
    /// started before the call has finished.
    pub fn new(mut barrier: impl FnMut() -> io::Result<()> + Send + 'static) -> io::Result<Grace> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("lb-grace".into())
            .spawn(move || {
                let mut st = s.lock();
                loop {
                    if st.stop {
                        return;
                    }
                    if st.requested <= st.completed {
                        st = s.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                        continue;
                    }
                    st.started = st.completed + 1;
                    let n = st.started;
                    drop(st);
                    let r = barrier();
                    st = s.lock();
                    match r {
                        Ok(()) => {
                            st.completed = n;
                            st.failed = None;
                        }
                        Err(e) => {
                            // Not a grace period: retry the same number.
                            st.started = n - 1;
                            st.failed = Some(e.to_string());
                            s.cv.notify_all();
                            st =
                                s.cv.wait_timeout(st, RETRY)
                                    .unwrap_or_else(|p| p.into_inner())
                                    .0;
                            continue;
                        }
                    }
                    s.cv.notify_all();
                }
            })?;
        Ok(Grace {
            shared,
            thread: Some(thread),
        })
    }

    /// Called right after a flip: the ticket of the first barrier that
    /// starts after it, which the thread will run.
    pub fn ticket(&self) -> Ticket {
        let mut st = self.shared.lock();
        let t = st.started + 1;
        if st.requested < t {
            st.requested = t;
            self.shared.cv.notify_all();
        }
        Ticket(t)
    }

    /// Whether the barrier of `t` has returned.
    #[cfg(test)]
    pub fn is_done(&self, t: Ticket) -> bool {
        self.shared.lock().completed >= t.0
    }

    /// Returns once the barrier of `t` has returned: every program run that
    /// could have read what `t`'s flip retired has ended. Fails (at once)
    /// while barriers fail.
    pub fn wait(&self, t: Ticket) -> io::Result<()> {
        let mut st = self.shared.lock();
        while st.completed < t.0 {
            if let Some(e) = &st.failed {
                return Err(io::Error::other(format!(
                    "grace-period barrier failed: {e}"
                )));
            }
            st = self.shared.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        Ok(())
    }

    /// Barriers returned so far.
    pub fn completed(&self) -> u64 {
        self.shared.lock().completed
    }
}

impl Drop for Grace {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The later of two optional tickets.
pub fn later(a: Option<Ticket>, b: Option<Ticket>) -> Option<Ticket> {
    a.max(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        sync::atomic::{AtomicBool, AtomicU64, Ordering},
        time::Instant,
    };

    /// A barrier that takes `ms` and counts its runs.
    fn slow(ms: u64, runs: Arc<AtomicU64>) -> impl FnMut() -> io::Result<()> + Send {
        move || {
            std::thread::sleep(Duration::from_millis(ms));
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn idle_without_flips_and_one_barrier_per_burst() {
        let runs = Arc::new(AtomicU64::new(0));
        let g = Grace::new(slow(5, runs.clone())).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(runs.load(Ordering::SeqCst), 0, "no flip, no barrier");
        // Many flips before the thread starts: one barrier serves them all.
        let tickets: Vec<Ticket> = (0..100).map(|_| g.ticket()).collect();
        assert!(tickets.windows(2).all(|w| w[0] <= w[1]));
        g.wait(*tickets.last().unwrap()).unwrap();
        assert!(runs.load(Ordering::SeqCst) <= 2, "{runs:?}");
        assert!(tickets.iter().all(|t| g.is_done(*t)));
    }

    #[test]
    fn a_flip_during_a_barrier_waits_for_the_next_one() {
        let started = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(AtomicU64::new(0));
        let (s, r) = (started.clone(), runs.clone());
        let g = Grace::new(move || {
            s.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(40));
            r.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        let first = g.ticket();
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // Barrier 1 is running: it began before this flip, so it cannot
        // count for it.
        let second = g.ticket();
        assert!(second > first);
        let t0 = Instant::now();
        g.wait(second).unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(t0.elapsed() >= Duration::from_millis(40));
        assert_eq!(g.completed(), 2);
    }

    #[test]
    fn a_failing_barrier_fails_waiters_and_is_retried() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let g = Grace::new(move || {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(io::Error::other("first one fails"))
            } else {
                Ok(())
            }
        })
        .unwrap();
        let t = g.ticket();
        // Either the failure is seen, or (after the retry) success.
        match g.wait(t) {
            Err(e) => assert!(e.to_string().contains("first one fails")),
            Ok(()) => assert!(calls.load(Ordering::SeqCst) >= 2),
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !g.is_done(t) {
            assert!(Instant::now() < deadline, "the retry never came");
            std::thread::sleep(Duration::from_millis(10));
        }
        g.wait(t).unwrap();
    }
}
