//! `lb-ctl stats [--rate]`: per-service then per-backend counters or rates,
//! the way `ipvsadm -L -n --stats` / `--rate` lays them out, and the data
//! path's verdict counters.

use anyhow::Result;

use super::{Exit, Output, answer, table};
use lb_api::{
    client::Client,
    paths::Route,
    types::{Counters, Rates, Stats},
};
use lb_config::ServiceKey;

pub async fn run(client: &Client, out: Output, rate: bool) -> Result<Exit> {
    let answer = answer::get(client, &Route::Stats.path()).await?;
    answer.show(out, |s| render(s, rate))
}

/// Three numbers of a row: totals, or rates.
type Numbers = fn(&Counters, &Rates) -> [String; 3];

fn totals(c: &Counters, _: &Rates) -> [String; 3] {
    [
        c.new_flows.to_string(),
        c.packets.to_string(),
        table::bytes(c.bytes),
    ]
}

fn rates(_: &Counters, r: &Rates) -> [String; 3] {
    [
        table::rate(r.new_flows_per_sec),
        table::rate(r.packets_per_sec),
        table::byte_rate(r.bytes_per_sec),
    ]
}

fn render(s: &Stats, rate: bool) -> String {
    let (head, numbers): ([&str; 3], Numbers) = if rate {
        (["FLOWS/S", "PKTS/S", "BYTES/S"], rates)
    } else {
        (["NEW FLOWS", "PACKETS", "BYTES"], totals)
    };
    let head = [&["SERVICE / BACKEND", "NAME", "STATE", "WEIGHT"][..], &head].concat();
    let mut t = table::Table::new(&head).right(&[3, 4, 5, 6]);
    for svc in &s.services {
        let key = ServiceKey {
            address: svc.address,
            port: svc.port,
            protocol: svc.protocol,
        };
        let cells = [
            key.to_string(),
            svc.name.clone(),
            String::new(),
            String::new(),
        ];
        t.row(cells.into_iter().chain(numbers(&svc.counters, &svc.rates)));
        for b in &svc.backends {
            let cells = [
                format!("  -> {}", b.address),
                format!("{}/{}", svc.pool, b.name),
                b.state.to_string(),
                b.weight.to_string(),
            ];
            t.row(cells.into_iter().chain(numbers(&b.counters, &b.rates)));
        }
    }
    let mut out = if s.services.is_empty() {
        "no services\n".to_owned()
    } else {
        t.render()
    };
    if rate {
        out.push_str(&format!("(rates over the last {:.0}s)\n", s.interval_secs));
    } else {
        out.push_str(&verdicts(s));
    }
    out
}

fn verdicts(s: &Stats) -> String {
    let mut t = table::Table::new(&["VERDICT", "PACKETS"])
        .right(&[1])
        .indent(2);
    for (reason, n) in s.reasons.iter().filter(|(_, n)| **n > 0) {
        t.row([reason.clone(), n.to_string()]);
    }
    let body = if t.is_empty() {
        "  none yet\n".to_owned()
    } else {
        t.render()
    };
    format!("\ndata path verdicts (all traffic seen):\n{body}")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use lb_api::types::{BackendState, BackendStats, ServiceStats};
    use lb_config::Protocol;

    fn stats() -> Stats {
        let counters = Counters {
            packets: 3400,
            bytes: 1536 * 1024,
            new_flows: 12,
        };
        Stats {
            interval_secs: 10.0,
            services: vec![ServiceStats {
                name: "web".into(),
                address: "10.0.0.1".parse().unwrap(),
                port: 80,
                protocol: Protocol::Tcp,
                pool: "web".into(),
                counters,
                rates: Rates {
                    packets_per_sec: 340.0,
                    bytes_per_sec: 2048.0,
                    new_flows_per_sec: 1.2,
                },
                backends: vec![BackendStats {
                    name: "b1".into(),
                    address: "10.0.1.1".parse().unwrap(),
                    state: BackendState::Up,
                    weight: 100,
                    counters,
                    rates: Rates::default(),
                }],
            }],
            reasons: BTreeMap::from([("tx".into(), 3400), ("pass_not_vip".into(), 0)]),
            checks: Vec::new(),
        }
    }

    #[test]
    fn counters_like_ipvsadm_stats() {
        assert_eq!(
            render(&stats(), false),
            "SERVICE / BACKEND  NAME    STATE  WEIGHT  NEW FLOWS  PACKETS    BYTES\n\
             10.0.0.1:80/tcp    web                           12     3400  1.5 MiB\n\
             \x20 -> 10.0.1.1      web/b1  up        100         12     3400  1.5 MiB\n\
             \n\
             data path verdicts (all traffic seen):\n\
             \x20 VERDICT  PACKETS\n\
             \x20 tx          3400\n"
        );
    }

    #[test]
    fn rates_like_ipvsadm_rate() {
        assert_eq!(
            render(&stats(), true),
            "SERVICE / BACKEND  NAME    STATE  WEIGHT  FLOWS/S  PKTS/S    BYTES/S\n\
             10.0.0.1:80/tcp    web                        1.2     340  2.0 KiB/s\n\
             \x20 -> 10.0.1.1      web/b1  up        100        0       0      0 B/s\n\
             (rates over the last 10s)\n"
        );
    }

    #[test]
    fn nothing_yet() {
        let empty = Stats {
            interval_secs: 1.0,
            services: vec![],
            reasons: BTreeMap::new(),
            checks: Vec::new(),
        };
        assert_eq!(
            render(&empty, false),
            "no services\n\ndata path verdicts (all traffic seen):\n  none yet\n"
        );
    }
}
