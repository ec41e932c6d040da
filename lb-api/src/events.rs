//! The agent's event stream as its subscribers see it: what changed, when
//! and why. Logs, metrics and (later) notifiers read the same records that
//! `GET /v1/events` streams as JSON lines and `lb-ctl events` prints.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{BackendState, Source};
use crate::vrrp::VrrpState;

/// One event: a sequence number (gapless from 1 for one agent run), its
/// time, and what happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    /// Unix time in milliseconds.
    pub time_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The agent took over the data path (loaded it, or adopted a pinned one).
    AgentStarted {
        version: String,
        adopted: bool,
    },
    /// The agent is stopping; the data path keeps forwarding.
    AgentStopping,
    /// A backend's state in effect changed.
    BackendState {
        pool: String,
        backend: String,
        /// The backend's address and port, so a subscriber needs no lookup
        /// (the backend may have been added at runtime, or removed since).
        address: std::net::IpAddr,
        port: Option<u16>,
        /// `None` when the backend is new.
        from: Option<BackendState>,
        to: BackendState,
        cause: Cause,
        /// In words: "drained by an operator", "next hop 10.0.0.2 unreachable: ...".
        reason: String,
    },
    /// A backend's health check result changed what it says (healthy or
    /// not), whether or not that changes the state in effect (a backend in
    /// maintenance is still checked).
    Health {
        pool: String,
        backend: String,
        healthy: bool,
        check: String,
        /// The failure, when it went unhealthy.
        reason: Option<String>,
    },
    /// A backend was added to or removed from a pool.
    BackendAdded {
        pool: String,
        backend: String,
        source: Source,
    },
    BackendRemoved {
        pool: String,
        backend: String,
    },
    /// A pool was added or removed.
    PoolAdded {
        pool: String,
        source: Source,
    },
    PoolRemoved {
        pool: String,
    },
    /// A service started or stopped being served.
    ServiceAdded {
        service: String,
        source: Source,
    },
    ServiceRemoved {
        service: String,
    },
    /// A service's Maglev ring changed size (every client is re-hashed; open
    /// flows stay where they are).
    RingResized {
        service: String,
        from: u32,
        to: u32,
        backends: usize,
    },
    /// A reload was applied or refused.
    Reload {
        ok: bool,
        changed_services: Vec<String>,
        error: Option<String>,
    },
    /// A VRRP instance changed state (keepalived's notify: INSTANCE name state priority).
    Vrrp {
        instance: String,
        from: VrrpState,
        to: VrrpState,
        priority: u8,
        reason: String,
    },
}

/// Who or what made a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The agent's start (states as first seen).
    Startup,
    /// The configuration file, on reload.
    Config,
    /// An operator, through the CLI or the API.
    Operator,
    /// Next-hop resolution (ARP/NDP, routes).
    NextHop,
    /// A health check.
    Health,
}

impl Cause {
    pub const fn as_str(self) -> &'static str {
        match self {
            Cause::Startup => "startup",
            Cause::Config => "config",
            Cause::Operator => "operator",
            Cause::NextHop => "next_hop",
            Cause::Health => "health",
        }
    }
}

impl EventKind {
    /// The `type` tag, as in the JSON.
    pub const fn name(&self) -> &'static str {
        match self {
            EventKind::AgentStarted { .. } => "agent_started",
            EventKind::AgentStopping => "agent_stopping",
            EventKind::BackendState { .. } => "backend_state",
            EventKind::Health { .. } => "health",
            EventKind::BackendAdded { .. } => "backend_added",
            EventKind::BackendRemoved { .. } => "backend_removed",
            EventKind::PoolAdded { .. } => "pool_added",
            EventKind::PoolRemoved { .. } => "pool_removed",
            EventKind::ServiceAdded { .. } => "service_added",
            EventKind::ServiceRemoved { .. } => "service_removed",
            EventKind::RingResized { .. } => "ring_resized",
            EventKind::Reload { .. } => "reload",
            EventKind::Vrrp { .. } => "vrrp",
        }
    }
}

/// One line for people: `lb-ctl events` and the agent's log.
impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::AgentStarted { version, adopted } => write!(
                f,
                "agent {version} started ({} the data path)",
                if *adopted { "adopted" } else { "loaded" }
            ),
            EventKind::AgentStopping => {
                f.write_str("agent stopping; the data path keeps forwarding")
            }
            EventKind::BackendState {
                pool,
                backend,
                from,
                to,
                reason,
                ..
            } => match from {
                Some(from) => write!(f, "backend {pool}/{backend} {from} -> {to}: {reason}"),
                None => write!(f, "backend {pool}/{backend} is {to}: {reason}"),
            },
            EventKind::Health {
                pool,
                backend,
                healthy,
                check,
                reason,
            } => match (healthy, reason) {
                (true, _) => write!(f, "backend {pool}/{backend}: {check} check passes"),
                (false, Some(r)) => write!(f, "backend {pool}/{backend}: {check} check fails: {r}"),
                (false, None) => write!(f, "backend {pool}/{backend}: {check} check fails"),
            },
            EventKind::BackendAdded {
                pool,
                backend,
                source,
            } => write!(f, "backend {pool}/{backend} added ({})", source.as_str()),
            EventKind::BackendRemoved { pool, backend } => {
                write!(f, "backend {pool}/{backend} removed")
            }
            EventKind::PoolAdded { pool, source } => {
                write!(f, "pool {pool} added ({})", source.as_str())
            }
            EventKind::PoolRemoved { pool } => write!(f, "pool {pool} removed"),
            EventKind::ServiceAdded { service, source } => {
                write!(f, "service {service} added ({})", source.as_str())
            }
            EventKind::ServiceRemoved { service } => write!(f, "service {service} removed"),
            EventKind::RingResized {
                service,
                from,
                to,
                backends,
            } => write!(
                f,
                "service {service}: ring resized {from} -> {to} slots for {backends} backends \
                 (new connections re-hashed)"
            ),
            EventKind::Reload {
                ok: true,
                changed_services,
                ..
            } => {
                if changed_services.is_empty() {
                    f.write_str("reloaded: nothing changed")
                } else {
                    write!(f, "reloaded: changed {}", changed_services.join(", "))
                }
            }
            EventKind::Reload { error, .. } => write!(
                f,
                "reload refused, the running configuration stays: {}",
                error.as_deref().unwrap_or("invalid")
            ),
            EventKind::Vrrp {
                instance,
                from,
                to,
                priority,
                reason,
            } => write!(
                f,
                "vrrp {instance} {from} -> {to} (priority {priority}): {reason}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_flat_json_with_a_type_tag() {
        let e = Event {
            seq: 7,
            time_ms: 1_700_000_000_000,
            kind: EventKind::BackendState {
                pool: "web".into(),
                backend: "web2".into(),
                address: [10, 0, 0, 2].into(),
                port: Some(80),
                from: Some(BackendState::Up),
                to: BackendState::Drain,
                cause: Cause::Operator,
                reason: "drained by an operator".into(),
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "backend_state");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["to"], "drain");
        assert_eq!(v["cause"], "operator");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.kind.name(), "backend_state");
        assert_eq!(
            e.kind.to_string(),
            "backend web/web2 up -> drain: drained by an operator"
        );
    }
}
