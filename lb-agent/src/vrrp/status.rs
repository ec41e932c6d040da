//! What every instance looks like now, for `GET /v1/vrrp` and the metrics:
//! one board per agent, each instance task writing its own row.

use std::sync::{Mutex, PoisonError};

use lb_api::vrrp::{VrrpInstanceStatus, VrrpStatus};

use super::validate::Reason;

static BOARD: Mutex<Vec<VrrpInstanceStatus>> = Mutex::new(Vec::new());

/// Every instance, in configuration order (none when VRRP is not configured).
pub fn snapshot() -> VrrpStatus {
    VrrpStatus {
        instances: lock().clone(),
    }
}

/// Puts `row` on the board; returns its place.
pub(super) fn register(mut row: VrrpInstanceStatus) -> usize {
    for r in Reason::ALL {
        row.errors.entry(r.as_str().to_owned()).or_insert(0);
    }
    let mut board = lock();
    board.push(row);
    board.len() - 1
}

/// Changes row `at`.
pub(super) fn update(at: usize, f: impl FnOnce(&mut VrrpInstanceStatus)) {
    if let Some(row) = lock().get_mut(at) {
        f(row);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<VrrpInstanceStatus>> {
    BOARD.lock().unwrap_or_else(PoisonError::into_inner)
}
