//! The threads that serve connections: one per core, each running a
//! single-threaded tokio runtime. An accepted connection is handed to one
//! of them (in turn) and stays there to its end, with its server
//! connections and its timers, as HAProxy's and nginx's threads keep
//! theirs.
//!
//! Why not the agent's multi-threaded runtime: its scheduler wakes an idle
//! worker whenever a task becomes ready, so that it may steal work; on a
//! proxy that is a wake-up of another thread (an eventfd write and a
//! context switch) for nearly every request, which on two busy cores cost
//! about a third of the requests per second. What connections share (the
//! runtime in force, queues, counters, limits) is behind `Arc`s and
//! atomics and works from any thread; a queued request woken by a slot
//! freed on another core is the only cross-thread wake-up left.
//!
//! Each thread confines itself (crate::confine) before it serves anything,
//! and [`Cores::start`] waits for all of them to have done so: no
//! connection is ever served by a thread that still holds privileges.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, mpsc};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::ProxyError;
use crate::confine;

thread_local! {
    /// The core this thread is ([`home`]); [`ELSEWHERE`] on any other thread.
    static HOME: Cell<u32> = const { Cell::new(ELSEWHERE) };
}

/// [`home`] on a thread that is not a core (tests, the agent's runtime).
pub(crate) const ELSEWHERE: u32 = u32::MAX;

/// The core thread this code runs on. A socket belongs to the event loop
/// of the thread that opened it: its readiness is seen there, and a task on
/// another core waiting on it has to be woken across threads (an eventfd
/// write and often a context switch). Whatever is shared between cores and
/// holds sockets (the idle server connections) hands each core its own.
pub(crate) fn home() -> u32 {
    HOME.get()
}

/// Makes this thread core `i` as far as [`home`] is concerned.
#[cfg(test)]
pub(crate) fn pose_as(i: u32) {
    HOME.set(i);
}

/// Where connections are served: the handles of the core threads.
#[derive(Debug)]
pub(crate) struct Cores {
    handles: Box<[Handle]>,
    next: AtomicUsize,
    /// The threads kept `CAP_NET_RAW` (for `usesrc`).
    net_raw: bool,
}

/// Keeps the core threads running; dropping it stops them, and with them
/// every connection still open, and waits for them to end.
#[derive(Debug)]
pub(crate) struct Running {
    stop: Vec<oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.clear();
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            // A core cannot wait for itself (the proxy dropped by a task).
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

impl Cores {
    /// Starts one thread per core the process may run on, each confined
    /// before this returns; `keep_net_raw`: they keep `CAP_NET_RAW` (if the
    /// process has it), for `usesrc`.
    pub(crate) fn start(keep_net_raw: bool) -> Result<(Arc<Cores>, Running), ProxyError> {
        let n = std::thread::available_parallelism().map_or(1, usize::from);
        let mut handles = Vec::with_capacity(n);
        let mut running = Running {
            stop: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
        };
        let mut net_raw = keep_net_raw;
        for i in 0..n {
            let (confined, handle, stopper, thread) = core(i, keep_net_raw)?;
            handles.push(handle);
            running.stop.push(stopper);
            running.threads.push(thread);
            // A thread that could not confine itself serves nothing (it
            // stops when `running` is dropped) and the proxy does not start.
            let kept = confined
                .recv()
                .unwrap_or(Err(confine::ConfineError::Gone))?;
            net_raw &= kept;
        }
        let cores = Cores {
            handles: handles.into(),
            next: AtomicUsize::new(0),
            net_raw,
        };
        Ok((Arc::new(cores), running))
    }

    /// Whether the threads kept `CAP_NET_RAW`, which `usesrc` needs.
    pub(crate) fn net_raw(&self) -> bool {
        self.net_raw
    }

    /// The core the next connection goes to (in turn: connections are
    /// many and alike, so turns spread them evenly).
    pub(crate) fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Relaxed) % self.handles.len();
        &self.handles[i]
    }
}

/// What [`core`] gives back: how its confinement went (whether it kept
/// `CAP_NET_RAW`), its runtime's handle, what stops it, the thread.
type Core = (
    mpsc::Receiver<Result<bool, confine::ConfineError>>,
    Handle,
    oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
);

/// Starts core thread `i`, which confines itself first.
fn core(i: usize, keep_net_raw: bool) -> Result<Core, ProxyError> {
    let rt = crate::cork::runtime().map_err(ProxyError::Threads)?;
    let handle = rt.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let (tell, confined) = mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name(format!("lb-proxy-{i}"))
        .spawn(move || {
            HOME.set(u32::try_from(i).unwrap_or(ELSEWHERE));
            let outcome = confine::confine(keep_net_raw);
            let ok = outcome.is_ok();
            let _ = tell.send(outcome);
            if ok {
                // Serves the tasks handed to it until told to stop (or the
                // sender is dropped).
                let _ = crate::cork::serve(&rt, stopped);
            }
        })
        .map_err(ProxyError::Threads)?;
    Ok((confined, handle, stop, thread))
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Where a task handed to the next core ran: its thread's name.
    fn run_next(cores: &Cores) -> Option<String> {
        let (tx, rx) = mpsc::channel();
        cores.next().spawn(async move {
            let _ = tx.send(std::thread::current().name().map(str::to_owned));
        });
        rx.recv_timeout(Duration::from_secs(5)).ok().flatten()
    }

    /// No runtime on this thread: the cores run what they are given on
    /// their own, each in turn, and stop when told.
    #[test]
    fn tasks_run_on_the_core_threads_in_turn_until_stopped() {
        let (cores, running) = Cores::start(false).expect("the threads start");
        let n = cores.handles.len();
        for i in 0..2 * n {
            let name = run_next(&cores).expect("the task ran");
            assert_eq!(name, format!("lb-proxy-{}", i % n));
        }
        drop(running);
        assert_eq!(run_next(&cores), None, "a stopped core runs nothing");
    }
}
