//! `lb-ctl stats [--rate]`: per-VIP then per-backend counters or rates, the
//! way `ipvsadm -L -n --stats` / `--rate` lays them out, and the data path's
//! verdict counters.

use anyhow::Result;

use super::{Exit, Output, answer, table, vip};
use lb_api::{client::Client, types::Stats};

pub async fn run(client: &Client, out: Output, rate: bool) -> Result<Exit> {
    let answer = answer::get(client, "/v1/stats").await?;
    if out == Output::Json {
        answer.print_json();
    } else {
        let stats: Stats = answer.typed()?;
        print!(
            "{}",
            if rate {
                render_rates(&stats)
            } else {
                render_counters(&stats)
            }
        );
    }
    Ok(Exit::Ok)
}

const HEAD: [&str; 4] = ["VIP / BACKEND", "NAME", "STATE", "WEIGHT"];

fn render_counters(s: &Stats) -> String {
    let mut t = table::Table::new(&[&HEAD[..], &["NEW FLOWS", "PACKETS", "BYTES"]].concat())
        .right(&[3, 4, 5, 6]);
    for v in &s.vips {
        let c = v.counters;
        t.row([
            vip::vip_id(v.address, v.port, v.protocol),
            v.name.clone(),
            String::new(),
            String::new(),
            c.new_flows.to_string(),
            c.packets.to_string(),
            table::bytes(c.bytes),
        ]);
        for b in &v.backends {
            let c = b.counters;
            t.row([
                format!("  -> {}", b.address),
                b.name.clone(),
                b.state.clone(),
                b.weight.to_string(),
                c.new_flows.to_string(),
                c.packets.to_string(),
                table::bytes(c.bytes),
            ]);
        }
    }
    let mut out = if s.vips.is_empty() {
        "no VIPs\n".to_owned()
    } else {
        t.render()
    };
    let mut verdicts = table::Table::new(&["VERDICT", "PACKETS"])
        .right(&[1])
        .indent(2);
    for (reason, n) in s.reasons.iter().filter(|(_, n)| **n > 0) {
        verdicts.row([reason.clone(), n.to_string()]);
    }
    out.push_str("\ndata path verdicts (all traffic seen):\n");
    if verdicts.is_empty() {
        out.push_str("  none yet\n");
    } else {
        out.push_str(&verdicts.render());
    }
    out
}

fn render_rates(s: &Stats) -> String {
    let mut t = table::Table::new(&[&HEAD[..], &["FLOWS/S", "PKTS/S", "BYTES/S"]].concat())
        .right(&[3, 4, 5, 6]);
    for v in &s.vips {
        let r = v.rates;
        t.row([
            vip::vip_id(v.address, v.port, v.protocol),
            v.name.clone(),
            String::new(),
            String::new(),
            table::rate(r.new_flows_per_sec),
            table::rate(r.packets_per_sec),
            table::byte_rate(r.bytes_per_sec),
        ]);
        for b in &v.backends {
            let r = b.rates;
            t.row([
                format!("  -> {}", b.address),
                b.name.clone(),
                b.state.clone(),
                b.weight.to_string(),
                table::rate(r.new_flows_per_sec),
                table::rate(r.packets_per_sec),
                table::byte_rate(r.bytes_per_sec),
            ]);
        }
    }
    let mut out = if s.vips.is_empty() {
        "no VIPs\n".to_owned()
    } else {
        t.render()
    };
    out.push_str(&format!("(rates over the last {:.0}s)\n", s.interval_secs));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use lb_api::types::{BackendStats, Counters, Rates, VipStats};
    use lb_config::Protocol;

    fn stats() -> Stats {
        Stats {
            interval_secs: 10.0,
            vips: vec![VipStats {
                name: "web".into(),
                address: "10.0.0.1".parse().unwrap(),
                port: 80,
                protocol: Protocol::Tcp,
                counters: Counters {
                    packets: 3400,
                    bytes: 1536 * 1024,
                    new_flows: 12,
                },
                rates: Rates {
                    packets_per_sec: 340.0,
                    bytes_per_sec: 2048.0,
                    new_flows_per_sec: 1.2,
                },
                backends: vec![BackendStats {
                    name: "b1".into(),
                    address: "10.0.1.1".parse().unwrap(),
                    state: "up".into(),
                    weight: 100,
                    counters: Counters {
                        packets: 3400,
                        bytes: 1536 * 1024,
                        new_flows: 12,
                    },
                    rates: Rates::default(),
                }],
            }],
            reasons: BTreeMap::from([("tx".into(), 3400), ("pass_not_vip".into(), 0)]),
        }
    }

    #[test]
    fn counters_like_ipvsadm_stats() {
        assert_eq!(
            render_counters(&stats()),
            "VIP / BACKEND    NAME  STATE  WEIGHT  NEW FLOWS  PACKETS    BYTES\n\
             10.0.0.1:80/tcp  web                         12     3400  1.5 MiB\n\
             \x20 -> 10.0.1.1    b1    up        100         12     3400  1.5 MiB\n\
             \n\
             data path verdicts (all traffic seen):\n\
             \x20 VERDICT  PACKETS\n\
             \x20 tx          3400\n"
        );
    }

    #[test]
    fn rates_like_ipvsadm_rate() {
        assert_eq!(
            render_rates(&stats()),
            "VIP / BACKEND    NAME  STATE  WEIGHT  FLOWS/S  PKTS/S    BYTES/S\n\
             10.0.0.1:80/tcp  web                      1.2     340  2.0 KiB/s\n\
             \x20 -> 10.0.1.1    b1    up        100        0       0      0 B/s\n\
             (rates over the last 10s)\n"
        );
    }
}
