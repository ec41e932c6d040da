//! A batch of events as a mail: a subject that names the first state change
//! (or the first event) and counts the rest, and a body with one line per
//! event, its time and its text (`EventKind`'s `Display`, as `lb-ctl events`
//! prints it).

use std::time::{Duration, UNIX_EPOCH};

use lb_api::events::{Event, EventKind};

/// Longest reason quoted in a subject.
const SUBJECT_REASON_CHARS: usize = 60;

/// `PREFIX SUMMARY[ and N more]`, e.g. `[lb lb1] web/web2 down (HTTP 503) and 2 more`.
pub fn subject(prefix: &str, events: &[Event]) -> String {
    let lead = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::BackendState { .. }))
        .or(events.first());
    let mut s = match lead {
        Some(e) => format!("{prefix} {}", summary(&e.kind)),
        None => format!("{prefix} no events"),
    };
    if events.len() > 1 {
        s += &format!(" and {} more", events.len() - 1);
    }
    // One line, whatever a reason holds.
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// An event in a few words.
fn summary(kind: &EventKind) -> String {
    match kind {
        EventKind::BackendState {
            pool,
            backend,
            to,
            reason,
            ..
        } => format!("{pool}/{backend} {to} ({})", clip(reason)),
        EventKind::Health {
            pool,
            backend,
            healthy: true,
            check,
            ..
        } => format!("{pool}/{backend} {check} check passes"),
        EventKind::Health {
            pool,
            backend,
            check,
            reason,
            ..
        } => match reason {
            Some(r) => format!("{pool}/{backend} {check} check fails ({})", clip(r)),
            None => format!("{pool}/{backend} {check} check fails"),
        },
        other => clip(&other.to_string()),
    }
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(SUBJECT_REASON_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// One line per event, oldest first, then where to look for more.
pub fn body(host: &str, events: &[Event]) -> String {
    let mut out = format!(
        "lb on {host}: {} event{}\n\n",
        events.len(),
        if events.len() == 1 { "" } else { "s" }
    );
    for e in events {
        out += &format!("{}  {}\n", time(e.time_ms), e.kind);
    }
    if let (Some(first), Some(last)) = (events.first(), events.last()) {
        out += &format!(
            "\nEvents {}..{} of this agent run; `lb-ctl events` on {host} lists the recent ones.\n",
            first.seq, last.seq
        );
    }
    out
}

/// `Tue, 14 Nov 2023 22:13:20 GMT` (the `Date:` header's form).
fn time(ms: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use lb_api::{events::Cause, types::BackendState};

    use super::*;

    fn event(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            time_ms: 1_700_000_000_000 + seq * 1000,
            kind,
        }
    }

    fn down(seq: u64, backend: &str, reason: &str) -> Event {
        event(
            seq,
            EventKind::BackendState {
                pool: "web".into(),
                backend: backend.into(),
                address: [10, 0, 0, 2].into(),
                port: Some(80),
                from: Some(BackendState::Up),
                to: BackendState::Down,
                cause: Cause::Health,
                reason: reason.into(),
            },
        )
    }

    fn reload(seq: u64) -> Event {
        event(
            seq,
            EventKind::Reload {
                ok: true,
                changed_services: vec![],
                error: None,
            },
        )
    }

    #[test]
    fn the_subject_leads_with_the_first_state_change() {
        let batch = [reload(1), down(2, "web2", "HTTP 503"), down(3, "web3", "x")];
        assert_eq!(
            subject("[lb LVS_DEVEL]", &batch),
            "[lb LVS_DEVEL] web/web2 down (HTTP 503) and 2 more"
        );
        assert_eq!(
            subject("[lb1]", &[reload(1)]),
            "[lb1] reloaded: nothing changed"
        );
        let multi = subject("[p]", &[down(1, "b", "exit 1: line 1\nline 2")]);
        assert_eq!(multi, "[p] web/b down (exit 1: line 1 line 2)");
        let long = "x".repeat(100);
        let s = subject("[p]", &[down(1, "b", &long)]);
        assert_eq!(s, format!("[p] web/b down ({}…)", "x".repeat(60)));
    }

    #[test]
    fn the_body_lists_each_event_with_its_time() {
        let b = body("lb1", &[down(2, "web2", "HTTP 503"), reload(3)]);
        assert_eq!(
            b,
            "lb on lb1: 2 events\n\n\
             Tue, 14 Nov 2023 22:13:22 GMT  backend web/web2 up -> down: HTTP 503\n\
             Tue, 14 Nov 2023 22:13:23 GMT  reloaded: nothing changed\n\
             \nEvents 2..3 of this agent run; `lb-ctl events` on lb1 lists the recent ones.\n"
        );
    }
}
