//! Servers for unit tests: specs named `s1`, `s2`, … with load counters
//! the test sets by hand; and a count of the heap allocations a piece of
//! code makes, for the request path's no-allocation promises.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::{Load, ServerSpec, ServerState};

/// Load counters a test sets.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) active: AtomicU32,
    pub(crate) queued: AtomicU32,
}

impl Counts {
    pub(crate) fn set(&self, active: u32, queued: u32) {
        self.active.store(active, Relaxed);
        self.queued.store(queued, Relaxed);
    }
}

impl Load for Counts {
    fn active(&self) -> u32 {
        self.active.load(Relaxed)
    }

    fn queued(&self) -> u32 {
        self.queued.load(Relaxed)
    }
}

/// Server `name` with `weight`, up, at 127.0.0.1:(8000 + weight).
pub(crate) fn spec(name: &str, weight: u32) -> ServerSpec {
    ServerSpec {
        name: name.to_string(),
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8000)),
        config_weight: weight,
        weight,
        state: ServerState::Up,
        cookie: None,
        maxconn: None,
        load: Arc::new(Counts::default()),
    }
}

/// `s1`, `s2`, … with these weights, and their counters.
pub(crate) fn specs(weights: &[u32]) -> (Vec<ServerSpec>, Vec<Arc<Counts>>) {
    let counts: Vec<Arc<Counts>> = weights.iter().map(|_| Arc::default()).collect();
    let specs = weights
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(i, (w, c))| ServerSpec {
            load: c.clone(),
            ..spec(&format!("s{}", i + 1), *w)
        })
        .collect();
    (specs, counts)
}

/// The test binary's allocator: the system's, counting per thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is passed on unchanged to the system allocator; the
// count is a const-initialised thread-local, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Heap allocations `f` makes on this thread.
pub(crate) fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}
