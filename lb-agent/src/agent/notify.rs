//! systemd `Type=notify`: READY, RELOADING and STOPPING, as sd_notify(3)
//! describes. Without `$NOTIFY_SOCKET` (not under systemd) these do nothing.

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify");
    }
}

pub fn ready() {
    send(&[NotifyState::Ready, NotifyState::Status("forwarding")]);
}

/// Sent before a reload; [`ready`] follows when it is done.
pub fn reloading() {
    send(&[
        NotifyState::Reloading,
        NotifyState::monotonic_usec_now().unwrap_or(NotifyState::Status("reloading")),
    ]);
}

pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping; the data path keeps forwarding"),
    ]);
}

pub fn status(s: &str) {
    send(&[NotifyState::Status(s)]);
}
