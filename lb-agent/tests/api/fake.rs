//! The fake reconciler: answers every `Request` from canned data and
//! records what it was asked.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, mpsc},
};

use lb_agent::api::Request;
use lb_api::types::*;
use lb_config::{AdminState, HashMode, Protocol};
use serde_json::json;

/// What the fake reconciler was asked, one line per request.
pub(crate) type Seen = Arc<Mutex<Vec<String>>>;

fn status() -> Status {
    let backend = |name: &str, addr: &str, state: &str| BackendStatus {
        name: name.into(),
        address: addr.parse().unwrap(),
        port: 80,
        weight: 100,
        config_weight: Some(100),
        weight_override: None,
        state: state.into(),
        config_state: Some(AdminState::Up),
        state_override: (state == "drain").then_some(AdminState::Drain),
        down_reason: None,
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
    };
    Status {
        version: "0.1.0".into(),
        config_file: "/etc/lb/lb.yaml".into(),
        state_file: "/var/lib/lb/state.json".into(),
        precedence: "runtime overrides > config file".into(),
        bpffs: "/sys/fs/bpf/lb".into(),
        adopted: false,
        interfaces: vec![InterfaceStatus {
            name: "eth0".into(),
            xdp_mode: "native".into(),
        }],
        reloads: ReloadInfo::default(),
        vips: vec![
            VipStatus {
                name: "web".into(),
                address: "10.0.0.1".parse().unwrap(),
                port: 80,
                protocol: Protocol::Tcp,
                hash: HashMode::Source,
                ring_size: 65537,
                source: Source::Config,
                counters: Counters::default(),
                backends: vec![
                    backend("b1", "10.0.1.1", "up"),
                    backend("b2", "10.0.1.2", "drain"),
                ],
            },
            VipStatus {
                name: "dns".into(),
                address: "2001:db8::53".parse().unwrap(),
                port: 53,
                protocol: Protocol::Udp,
                hash: HashMode::SourcePort,
                ring_size: 251,
                source: Source::Runtime,
                counters: Counters::default(),
                backends: vec![],
            },
        ],
    }
}

fn stats() -> Stats {
    Stats {
        interval_secs: 10.0,
        vips: vec![VipStats {
            name: "web".into(),
            address: "10.0.0.1".parse().unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
            counters: Counters {
                packets: 5,
                bytes: 500,
                new_flows: 1,
            },
            rates: Rates::default(),
            backends: vec![],
        }],
        reasons: BTreeMap::from([("tx".to_owned(), 5)]),
    }
}

fn changed() -> Result<ChangeResult, ApiError> {
    Ok(ChangeResult {
        changed: true,
        map_writes: 1,
        warnings: vec![],
    })
}

/// Answers like a reconciler would; `drop-me` as a VIP drops the reply,
/// `missing` is unknown (404). Ends when the server is gone.
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
                let _ = r.send(Ok(json!({ "vips": [] })));
            }
            Request::Reload(r) => {
                log("reload".into());
                let _ = r.send(Ok(ReloadResult {
                    map_writes: 2,
                    changed_vips: vec!["web".into()],
                    warnings: vec![],
                }));
            }
            Request::AddVip(v, r) => {
                log(format!("add-vip {} {} {:?}", v.address, v.port, v.protocol));
                let _ = r.send(changed());
            }
            Request::RemoveVip { vip, reply } => {
                log(format!("remove-vip {vip}"));
                match vip.as_str() {
                    "drop-me" => drop(reply),
                    "missing" => {
                        let _ = reply.send(Err(ApiError::not_found("no VIP `missing`")));
                    }
                    _ => {
                        let _ = reply.send(changed());
                    }
                }
            }
            Request::AddBackend {
                vip,
                backend,
                reply,
            } => {
                log(format!(
                    "add-backend {vip} {} {:?}",
                    backend.address, backend.weight
                ));
                let _ = reply.send(changed());
            }
            Request::RemoveBackend {
                vip,
                backend,
                reply,
            } => {
                log(format!("remove-backend {vip} {backend}"));
                let _ = reply.send(changed());
            }
            Request::SetState {
                vip,
                backend,
                state,
                reply,
            } => {
                log(format!("set-state {vip} {backend} {state}"));
                let _ = reply.send(changed());
            }
            Request::SetWeight {
                vip,
                backend,
                weight,
                reply,
            } => {
                log(format!("set-weight {vip} {backend} {weight}"));
                let _ = reply.send(changed());
            }
            Request::Flows {
                vip,
                backend,
                reply,
            } => {
                log(format!("flows {vip} {backend}"));
                let _ = reply.send(Ok(FlowCount {
                    vip,
                    backend,
                    active: 3,
                    closing: 1,
                    idle: 0,
                    idle_timeout_secs: 300,
                }));
            }
            Request::Explain { vip, client, reply } => {
                log(format!("explain {vip} {client}"));
                let _ = reply.send(Ok(Explain {
                    vip,
                    client,
                    hash: HashMode::Source,
                    slot: 7,
                    ring_size: 65537,
                    backend: Some("b1".into()),
                    backend_address: Some("10.0.1.1".parse().unwrap()),
                    flow_backend: None,
                }));
            }
            Request::Teardown(r) => {
                log("teardown".into());
                let _ = r.send(changed());
            }
        }
    }
}
