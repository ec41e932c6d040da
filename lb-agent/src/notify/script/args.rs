//! What a notification script is told, as arguments appended to its own.
//!
//! keepalived's `notify` script gets `TYPE NAME STATE PRIORITY`
//! (`INSTANCE VI_1 MASTER 100`, keepalived/vrrp/vrrp_notify.c); lb's
//! `notify.script` gets `TYPE NAME STATE` and details the same way, for
//! every event. keepalived's `notify_up`/`notify_down` get nothing appended
//! (keepalived/check/ipwrapper.c, `do_rs_notifies`); lb appends
//! `POOL BACKEND ADDRESS PORT STATE`, which an existing script may ignore.
//! Every script also gets the event as JSON in `$LB_EVENT`.

use lb_api::{events::EventKind, types::BackendState};

/// `TYPE NAME STATE [DETAIL...]` for `notify.script`.
pub fn event_args(kind: &EventKind) -> Vec<String> {
    use EventKind as K;
    let b = |pool: &str, backend: &str| format!("{pool}/{backend}");
    match kind {
        K::BackendState {
            pool,
            backend,
            from,
            to,
            cause,
            ..
        } => {
            let from = from.map_or("NEW".into(), |f| upper(f.as_str()));
            let state = upper(to.as_str());
            words(
                "BACKEND",
                &b(pool, backend),
                &state,
                &[&from, cause.as_str()],
            )
        }
        K::Health {
            pool,
            backend,
            healthy,
            check,
            ..
        } => {
            let verdict = if *healthy { "PASS" } else { "FAIL" };
            words("HEALTH", &b(pool, backend), verdict, &[check])
        }
        K::BackendAdded {
            pool,
            backend,
            source,
        } => words("BACKEND", &b(pool, backend), "ADDED", &[source.as_str()]),
        K::BackendRemoved { pool, backend } => words("BACKEND", &b(pool, backend), "REMOVED", &[]),
        K::PoolAdded { pool, source } => words("POOL", pool, "ADDED", &[source.as_str()]),
        K::PoolRemoved { pool } => words("POOL", pool, "REMOVED", &[]),
        K::ServiceAdded { service, source } => {
            words("SERVICE", service, "ADDED", &[source.as_str()])
        }
        K::ServiceRemoved { service } => words("SERVICE", service, "REMOVED", &[]),
        K::RingResized {
            service, from, to, ..
        } => words(
            "SERVICE",
            service,
            "RESIZED",
            &[&from.to_string(), &to.to_string()],
        ),
        K::Reload { ok: true, .. } => words("AGENT", "lb", "RELOADED", &[]),
        K::Reload { .. } => words("AGENT", "lb", "RELOAD_REFUSED", &[]),
        K::AgentStarted { version, adopted } => {
            let how = if *adopted { "ADOPTED" } else { "LOADED" };
            words("AGENT", "lb", "STARTED", &[version, how])
        }
        K::AgentStopping => words("AGENT", "lb", "STOPPING", &[]),
        K::Vrrp {
            instance,
            to,
            priority,
            ..
        } => words(
            "INSTANCE",
            instance,
            to.keepalived(),
            &[&priority.to_string()],
        ),
    }
}

fn words(kind: &str, name: &str, state: &str, details: &[&str]) -> Vec<String> {
    [kind, name, state]
        .iter()
        .chain(details)
        .map(|w| (*w).to_owned())
        .collect()
}

fn upper(s: &str) -> String {
    s.to_ascii_uppercase()
}

/// Which of a pool's commands a change of state fires: `notify_up` when a
/// backend comes up, `notify_down` when it leaves `up` (to drain, down or
/// maint). A backend first seen (agent start, added) changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    Up,
    Down,
}

pub fn edge(from: Option<BackendState>, to: BackendState) -> Option<Edge> {
    match (from?, to) {
        (f, BackendState::Up) if f != BackendState::Up => Some(Edge::Up),
        (BackendState::Up, t) if t != BackendState::Up => Some(Edge::Down),
        _ => None,
    }
}

/// `POOL BACKEND ADDRESS PORT STATE` for `notify_up`/`notify_down`; PORT is
/// `-` when the backend takes each service's port. The event carries the
/// address, so a backend added at runtime or removed since needs no lookup.
pub fn backend_args(kind: &EventKind) -> Option<Vec<String>> {
    let EventKind::BackendState {
        pool,
        backend,
        address,
        port,
        to,
        ..
    } = kind
    else {
        return None;
    };
    Some(vec![
        pool.clone(),
        backend.clone(),
        address.to_string(),
        port.map_or("-".into(), |p| p.to_string()),
        upper(to.as_str()),
    ])
}

#[cfg(test)]
mod tests {
    use lb_api::{events::Cause, types::Source};

    use super::*;

    fn state(from: Option<BackendState>, to: BackendState) -> EventKind {
        EventKind::BackendState {
            pool: "web".into(),
            backend: "web2".into(),
            address: [10, 0, 0, 2].into(),
            port: Some(80),
            from,
            to,
            cause: Cause::Operator,
            reason: "set by an operator".into(),
        }
    }

    #[test]
    fn keepalived_like_type_name_state() {
        assert_eq!(
            event_args(&state(Some(BackendState::Up), BackendState::Maint)),
            ["BACKEND", "web/web2", "MAINT", "UP", "operator"]
        );
        assert_eq!(event_args(&state(None, BackendState::Down))[3], "NEW");
        let added = EventKind::ServiceAdded {
            service: "web".into(),
            source: Source::Runtime,
        };
        assert_eq!(event_args(&added), ["SERVICE", "web", "ADDED", "runtime"]);
        let refused = EventKind::Reload {
            ok: false,
            changed_services: vec![],
            error: Some("bad".into()),
        };
        assert_eq!(event_args(&refused), ["AGENT", "lb", "RELOAD_REFUSED"]);
    }

    #[test]
    fn up_and_down_edges() {
        use BackendState::*;
        assert_eq!(edge(Some(Down), Up), Some(Edge::Up));
        assert_eq!(edge(Some(Maint), Up), Some(Edge::Up));
        for to in [Drain, Down, Maint] {
            assert_eq!(edge(Some(Up), to), Some(Edge::Down), "{to:?}");
        }
        assert_eq!(edge(Some(Drain), Down), None);
        assert_eq!(edge(None, Down), None);
        assert_eq!(edge(None, Up), None);
    }

    #[test]
    fn backend_arguments() {
        let mut kind = state(Some(BackendState::Up), BackendState::Down);
        if let EventKind::BackendState { address, port, .. } = &mut kind {
            *address = "192.168.31.55".parse().unwrap();
            *port = None;
        }
        assert_eq!(
            backend_args(&kind).unwrap(),
            ["web", "web2", "192.168.31.55", "-", "DOWN"]
        );
        let up = state(Some(BackendState::Down), BackendState::Up);
        assert_eq!(backend_args(&up).unwrap()[3], "80");
        assert_eq!(backend_args(&EventKind::AgentStopping), None);
    }
}
