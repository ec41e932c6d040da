//! The fake reconciler: answers every `Request` from canned data and
//! records what it was asked.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, mpsc},
};

use lb_agent::api::{Reply, Request};
use lb_api::types::*;
use lb_config::{AdminState, HashMode, Protocol, RingSize};
use serde_json::json;

/// What the fake reconciler was asked, one line per request.
pub(crate) type Seen = Arc<Mutex<Vec<String>>>;

fn backend(name: &str, addr: &str, state: BackendState) -> BackendStatus {
    let admin = if state == BackendState::Drain {
        AdminState::Drain
    } else {
        AdminState::Up
    };
    BackendStatus {
        name: name.into(),
        address: addr.parse().unwrap(),
        port: None,
        weight: 100,
        config_weight: Some(100),
        weight_override: None,
        admin,
        config_state: Some(AdminState::Up),
        state_override: (admin != AdminState::Up).then_some(admin),
        state,
        down_reason: None,
        check: None,
        since: Some(1_700_000_000),
        source: Source::Config,
        next_hop: Some(NextHopInfo {
            ifindex: 2,
            mac: "02:00:00:00:00:01".into(),
        }),
        counters: Counters {
            packets: 10,
            bytes: 1000,
            new_flows: 1,
        },
    }
}

fn service(name: &str, addr: &str, port: u16, protocol: Protocol, pool: &str) -> ServiceStatus {
    ServiceStatus {
        name: name.into(),
        address: addr.parse().unwrap(),
        port,
        protocol,
        hash: HashMode::Source,
        ring_size: RingSizeSetting::from(RingSize::Auto),
        ring_slots: 8191,
        pool: pool.into(),
        source: Source::Config,
        counters: Counters::default(),
        backends: vec![],
    }
}

pub(crate) fn status() -> Status {
    Status {
        version: "0.1.0".into(),
        config_file: "/etc/lb/lb.yaml".into(),
        state_file: "/var/lib/lb/overrides.json".into(),
        precedence: "runtime overrides > config file".into(),
        bpffs: "/sys/fs/bpf/lb".into(),
        adopted: false,
        interfaces: vec![InterfaceStatus {
            name: "eth0".into(),
            xdp_mode: "native".into(),
        }],
        reloads: ReloadInfo::default(),
        pools: vec![
            PoolStatus {
                name: "web".into(),
                source: Source::Config,
                services: vec!["web".into()],
                backends: vec![
                    backend("b1", "10.0.1.1", BackendState::Up),
                    backend("b2", "10.0.1.2", BackendState::Drain),
                ],
            },
            PoolStatus {
                name: "dns-pool".into(),
                source: Source::Runtime,
                services: vec!["dns".into()],
                backends: vec![],
            },
        ],
        services: vec![
            service("web", "10.0.0.1", 80, Protocol::Tcp, "web"),
            service("dns", "2001:db8::53", 53, Protocol::Udp, "dns-pool"),
        ],
    }
}

fn stats() -> Stats {
    Stats {
        interval_secs: 10.0,
        services: vec![ServiceStats {
            name: "web".into(),
            address: "10.0.0.1".parse().unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
            pool: "web".into(),
            counters: Counters {
                packets: 5,
                bytes: 500,
                new_flows: 1,
            },
            rates: Rates::default(),
            backends: vec![],
        }],
        reasons: BTreeMap::from([("tx".to_owned(), 5)]),
        checks: Vec::new(),
    }
}

/// Answers a change: `drop-me` drops the reply (the reconciler went away
/// mid-request), `missing` is unknown (404), anything else changed.
fn change(name: &str, reply: Reply<ChangeResult>) {
    match name {
        "drop-me" => drop(reply),
        "missing" => drop(reply.send(Err(ApiError::not_found("no service `missing`")))),
        _ => drop(reply.send(Ok(ChangeResult {
            changed: true,
            map_writes: 1,
            warnings: vec![],
        }))),
    }
}

/// Answers like a reconciler would. Ends when the server is gone.
pub(crate) fn fake_reconciler(rx: mpsc::Receiver<Request>, seen: Seen) {
    let log = |s: String| seen.lock().unwrap().push(s);
    for req in rx {
        match req {
            Request::Status(r) => {
                log("status".into());
                let _ = r.send(Ok(status()));
            }
            Request::Stats(r) => {
                log("stats".into());
                let _ = r.send(Ok(stats()));
            }
            Request::Config(r) => {
                log("config".into());
                let _ = r.send(Ok(json!({ "services": [] })));
            }
            Request::Reload(r) => {
                log("reload".into());
                let _ = r.send(Ok(ReloadResult {
                    map_writes: 2,
                    changed_services: vec!["web".into()],
                    warnings: vec![],
                }));
            }
            other => answer_change(other, &log),
        }
    }
}

/// A change as the log says it, the name [`change`] answers by, and the reply.
type Change = (String, String, Reply<ChangeResult>);

fn answer_change(req: Request, log: &impl Fn(String)) {
    match describe(req) {
        Ok((line, name, reply)) => {
            log(line);
            change(&name, reply);
        }
        Err(other) => answer_read(*other, log),
    }
}

/// A change, or the request back if it is not one.
fn describe(req: Request) -> Result<Change, Box<Request>> {
    Ok(match req {
        Request::AddService(s, r) => {
            let line = format!(
                "add-service {} {} {:?} {}",
                s.address, s.port, s.protocol, s.pool
            );
            (line, String::new(), r)
        }
        Request::RemoveService { service, reply } => {
            (format!("remove-service {service}"), service, reply)
        }
        Request::AddPool(p, r) => (
            format!("add-pool {} {}", p.name, p.backends.len()),
            p.name,
            r,
        ),
        Request::RemovePool { pool, reply } => (format!("remove-pool {pool}"), pool, reply),
        Request::Teardown(reply) => ("teardown".into(), String::new(), reply),
        other => return describe_backend(other),
    })
}

fn describe_backend(req: Request) -> Result<Change, Box<Request>> {
    Ok(match req {
        Request::AddBackend {
            pool,
            backend: b,
            reply,
        } => {
            let line = format!("add-backend {pool} {} {:?}", b.address, b.weight);
            (line, String::new(), reply)
        }
        Request::RemoveBackend {
            pool,
            backend: b,
            reply,
        } => (format!("remove-backend {pool} {b}"), b, reply),
        Request::SetState {
            pool,
            backend: b,
            state,
            reply,
        } => (format!("set-state {pool} {b} {state}"), b, reply),
        Request::SetWeight {
            pool,
            backend: b,
            weight,
            reply,
        } => (format!("set-weight {pool} {b} {weight}"), b, reply),
        other => return Err(Box::new(other)),
    })
}

fn answer_read(req: Request, log: &impl Fn(String)) {
    match req {
        Request::Flows {
            pool,
            backend,
            reply,
        } => {
            log(format!("flows {pool} {backend}"));
            let _ = reply.send(Ok(FlowCount {
                pool,
                backend,
                active: 3,
                closing: 1,
                idle: 0,
                idle_timeout_secs: 300,
            }));
        }
        Request::Explain {
            service,
            client,
            reply,
        } => {
            log(format!("explain {service} {client}"));
            let _ = reply.send(Ok(Explain {
                service,
                client,
                hash: HashMode::Source,
                slot: 7,
                ring_slots: 8191,
                backend: Some("b1".into()),
                backend_address: Some("10.0.1.1".parse().unwrap()),
                flow_backend: None,
            }));
        }
        other => panic!("the fake reconciler does not expect {other:?}"),
    }
}
