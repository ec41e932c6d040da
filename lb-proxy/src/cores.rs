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

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Where connections are served: the handles of the core threads.
#[derive(Debug)]
pub(crate) struct Cores {
    handles: Box<[Handle]>,
    next: AtomicUsize,
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
    /// Starts one thread per core the process may run on.
    pub(crate) fn start() -> io::Result<(Arc<Cores>, Running)> {
        let n = std::thread::available_parallelism().map_or(1, usize::from);
        let mut handles = Vec::with_capacity(n);
        let mut running = Running {
            stop: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
        };
        for i in 0..n {
            let (handle, stopper, thread) = core(i)?;
            handles.push(handle);
            running.stop.push(stopper);
            running.threads.push(thread);
        }
        let cores = Cores {
            handles: handles.into(),
            next: AtomicUsize::new(0),
        };
        Ok((Arc::new(cores), running))
    }

    /// The core the next connection goes to (in turn: connections are
    /// many and alike, so turns spread them evenly).
    pub(crate) fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Relaxed) % self.handles.len();
        &self.handles[i]
    }
}

/// Starts core thread `i`: its runtime's handle, what stops it, the thread.
fn core(i: usize) -> io::Result<(Handle, oneshot::Sender<()>, std::thread::JoinHandle<()>)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = rt.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("lb-proxy-{i}"))
        .spawn(move || {
            // Serves the tasks handed to it until told to stop (or the
            // sender is dropped).
            let _ = rt.block_on(stopped);
        })?;
    Ok((handle, stop, thread))
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
        let (cores, running) = Cores::start().expect("the threads start");
        let n = cores.handles.len();
        for i in 0..2 * n {
            let name = run_next(&cores).expect("the task ran");
            assert_eq!(name, format!("lb-proxy-{}", i % n));
        }
        drop(running);
        assert_eq!(run_next(&cores), None, "a stopped core runs nothing");
    }
}
