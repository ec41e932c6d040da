//! What the page shows, in one shape for the HTML, the CSV and the JSON: a
//! row per frontend (L7 frontends and L4 services), and per pool a row per
//! server and a summary row, joining the reconciler's `Status` (states,
//! checks, weights, L4 counters), the proxy's statistics (sessions, bytes,
//! responses) and the downtime the page tracks.

use std::collections::HashMap;

use lb_api::types::{BackendState, BackendStatus, CheckFailure, CheckStatus, Counters, Status};
use lb_config::AdminState;
use lb_proxy::stats::{PoolStats, ServerStats, Stats as ProxyStats};
use lb_proxy::upstream::Snapshot;
use serde::Serialize;

use super::downtime::Tracked;

/// The whole page at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    /// Unix time of the snapshot.
    pub time: u64,
    pub frontends: Vec<Frontend>,
    pub pools: Vec<Pool>,
}

/// An L7 frontend (`mode: http|tcp`) or an L4 service (`mode: l4`).
#[derive(Clone, Debug, Serialize)]
pub struct Frontend {
    pub name: String,
    pub mode: &'static str,
    /// Connections open now, most allowed (L7 only).
    pub scur: u64,
    pub slim: Option<u32>,
    /// Connections (L7) or flows (L4) since the start.
    pub stot: u64,
    /// Bytes from clients; to clients (L7 only: L4 answers go direct).
    pub bin: u64,
    pub bout: u64,
    pub requests: u64,
    /// By class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub responses: [u64; 6],
    /// Requests refused by a rule (`dreq`), invalid requests (`ereq`).
    pub denied: u64,
    pub invalid: u64,
    /// Connections and requests refused by `src_deny`/`src_allow` and
    /// `rate_limit`, by reason (`deny_list`, `conn_rate`, `conn_cur`,
    /// `http_req_rate`), as `lb-ctl frontend list` and the metrics count them.
    pub refused: Vec<(&'static str, u64)>,
    /// Packets (L4 only).
    pub packets: u64,
}

/// A pool: its servers and their sum.
#[derive(Clone, Debug, Serialize)]
pub struct Pool {
    pub name: String,
    /// The L4 services using it.
    pub services: Vec<String>,
    /// Whether the L7 proxy has it (a frontend may send it requests).
    pub proxied: bool,
    pub servers: Vec<Server>,
    /// The pool as a whole (HAProxy's BACKEND row); its `name` is `BACKEND`.
    pub total: Server,
}

/// One server (backend) of a pool, or a pool's sum.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Server {
    pub name: String,
    pub address: String,
    /// `up`, `drain`, `down`, `maint`; a pool is `up` while a server is.
    pub state: String,
    /// Why it cannot take traffic.
    pub reason: Option<String>,
    /// The administrative state (`up`, `drain`, `maint`).
    pub admin: String,
    pub weight: u64,
    /// Servers up (the pool row), or 1/0.
    pub active: u64,
    pub qcur: u64,
    pub qmax: u64,
    pub scur: u64,
    pub smax: u64,
    pub slim: Option<u32>,
    /// L7 requests sent, plus L4 flows.
    pub stot: u64,
    pub bin: u64,
    pub bout: u64,
    pub responses: [u64; 6],
    pub econ: u64,
    pub eresp: u64,
    pub wretr: u64,
    pub wredis: u64,
    /// The L4 data path's share (already in `stot` and `bin`).
    pub l4: Counters,
    pub check: Option<Check>,
    /// Health checks that took it down, since the agent started.
    pub chkdown: u64,
    /// Seconds since its state last changed.
    pub lastchg: Option<u64>,
    /// Seconds spent `down` or `maint` since the agent started.
    pub downtime: u64,
}

/// A server's health check, HAProxy's way.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// `L4OK`, `L7OK`, `L4CON`, `L4TOUT`, `L7STS`, `L7RSP`, `L6RSP`,
    /// `PROCOK`, `PROCERR`, `SOCKERR`, or `INI` before the first result.
    pub status: &'static str,
    /// The HTTP status of a failed HTTP check.
    pub code: Option<u16>,
    pub duration_ms: Option<f64>,
    pub healthy: bool,
    /// The last failure, in words.
    pub detail: Option<String>,
}

/// The table of `status` and `proxy` (absent: no proxy runs) at `now`.
pub fn build(status: &Status, proxy: Option<&ProxyStats>, tracked: &Tracked, now: u64) -> Table {
    let l7: HashMap<&str, &PoolStats> = proxy
        .map(|p| p.pools.iter().map(|s| (s.name.as_str(), s)).collect())
        .unwrap_or_default();
    let mut frontends: Vec<Frontend> = proxy
        .map(|p| p.frontends.iter().map(l7_frontend).collect())
        .unwrap_or_default();
    frontends.extend(status.services.iter().map(|s| Frontend {
        name: s.name.clone(),
        mode: "l4",
        scur: 0,
        slim: None,
        stot: s.counters.new_flows,
        bin: s.counters.bytes,
        bout: 0,
        requests: 0,
        responses: [0; 6],
        denied: 0,
        refused: Vec::new(),
        invalid: 0,
        packets: s.counters.packets,
    }));
    let pools = status
        .pools
        .iter()
        .map(|p| {
            let proxied = l7.get(p.name.as_str()).copied();
            let servers: Vec<Server> = p
                .backends
                .iter()
                .map(|b| {
                    let l7 = proxied.and_then(|ps| ps.servers.iter().find(|s| s.name == b.name));
                    server(b, l7, tracked.of(&p.name, &b.name, now), now)
                })
                .collect();
            let total = total(&servers, proxied);
            Pool {
                name: p.name.clone(),
                services: p.services.clone(),
                proxied: proxied.is_some(),
                servers,
                total,
            }
        })
        .collect();
    Table {
        time: now,
        frontends,
        pools,
    }
}

fn l7_frontend(f: &lb_proxy::stats::FrontendStats) -> Frontend {
    let c = &f.counters;
    Frontend {
        name: f.name.clone(),
        mode: match f.mode {
            lb_config::proxy::ProxyMode::Http => "http",
            lb_config::proxy::ProxyMode::Tcp => "tcp",
        },
        scur: c.active,
        slim: Some(f.maxconn),
        stot: c.connections,
        bin: c.bytes_in,
        bout: c.bytes_out,
        requests: c.requests,
        responses: c.responses,
        denied: c.denied,
        invalid: c.invalid,
        refused: lb_proxy::reject::Reason::ALL
            .iter()
            .map(|r| (r.as_str(), c.rejected[*r as usize]))
            .collect(),
        packets: 0,
    }
}

/// One server: its state from `b`, its L7 traffic from `l7`.
fn server(b: &BackendStatus, l7: Option<&ServerStats>, down: (u64, u64), now: u64) -> Server {
    let address = match b.port {
        Some(port) => std::net::SocketAddr::new(b.address, port).to_string(),
        None => b.address.to_string(),
    };
    let mut s = Server {
        name: b.name.clone(),
        address,
        state: b.state.as_str().into(),
        reason: b.down_reason.as_ref().map(ToString::to_string),
        admin: b.admin.as_str().into(),
        weight: b.weight.into(),
        active: u64::from(b.state == BackendState::Up),
        l4: b.counters,
        check: b.check.as_ref().map(check),
        chkdown: down.1,
        lastchg: b.since.map(|t| now.saturating_sub(t)),
        downtime: down.0,
        ..Server::default()
    };
    if let Some(l7) = l7 {
        s.scur = l7.active.into();
        s.qcur = l7.queued.into();
        s.slim = l7.maxconn;
        add_l7(&mut s, &l7.counters);
    }
    s.stot += b.counters.new_flows;
    s.bin += b.counters.bytes;
    s
}

/// The proxy's counters of a server or pool, added to `s`.
fn add_l7(s: &mut Server, c: &Snapshot) {
    s.smax = s.smax.max(c.active_max.into());
    s.qmax = s.qmax.max(c.queue_max.into());
    s.stot += c.sessions;
    s.bin += c.bytes_in;
    s.bout += c.bytes_out;
    for (sum, n) in s.responses.iter_mut().zip(c.responses) {
        *sum += n;
    }
    s.econ += c.connect_errors;
    s.eresp += c.response_errors;
    s.wretr += c.retries;
    s.wredis += c.redispatches;
}

/// The pool row: HAProxy's BACKEND line. Its weight is that of the servers
/// up; its L7 counters are the pool's own (they include requests that got
/// no server), its L4 ones the servers' sum.
fn total(servers: &[Server], l7: Option<&PoolStats>) -> Server {
    let active = servers.iter().map(|s| s.active).sum();
    let mut t = Server {
        name: "BACKEND".into(),
        state: if active > 0 { "up" } else { "down" }.into(),
        admin: AdminState::Up.as_str().into(),
        weight: servers
            .iter()
            .filter(|s| s.active > 0)
            .map(|s| s.weight)
            .sum(),
        active,
        scur: servers.iter().map(|s| s.scur).sum(),
        chkdown: servers.iter().map(|s| s.chkdown).sum(),
        ..Server::default()
    };
    for s in servers {
        t.l4 = t.l4.plus(s.l4);
    }
    if let Some(p) = l7 {
        t.qcur = p.queued.into();
        add_l7(&mut t, &p.counters);
    } else {
        for s in servers {
            for (sum, n) in t.responses.iter_mut().zip(s.responses) {
                *sum += n;
            }
        }
    }
    t.stot += t.l4.new_flows;
    t.bin += t.l4.bytes;
    t
}

/// HAProxy's `check_status` for our last result.
fn check(c: &CheckStatus) -> Check {
    let last = c.last.as_ref();
    let failure = last.and_then(|l| l.failure.as_ref());
    let status = match (last, failure) {
        (None, _) => "INI",
        (Some(_), None) => match c.check.as_str() {
            "tcp" => "L4OK",
            "script" => "PROCOK",
            _ => "L7OK",
        },
        (Some(_), Some(f)) => failure_status(f),
    };
    Check {
        status,
        code: match failure {
            Some(CheckFailure::HttpStatus { status }) => Some(*status),
            _ => None,
        },
        duration_ms: last.map(|l| l.duration_ms),
        healthy: c.healthy,
        detail: failure.map(ToString::to_string),
    }
}

fn failure_status(f: &CheckFailure) -> &'static str {
    match f {
        CheckFailure::Refused | CheckFailure::Reset | CheckFailure::Unreachable { .. } => "L4CON",
        CheckFailure::Timeout { .. } => "L4TOUT",
        CheckFailure::HttpStatus { .. } => "L7STS",
        CheckFailure::BodyMismatch
        | CheckFailure::DigestMismatch { .. }
        | CheckFailure::ExpectMismatch
        | CheckFailure::Protocol { .. } => "L7RSP",
        CheckFailure::Tls { .. } => "L6RSP",
        CheckFailure::ScriptExit { .. } | CheckFailure::ScriptSignal { .. } => "PROCERR",
        CheckFailure::Io { .. } => "SOCKERR",
    }
}
